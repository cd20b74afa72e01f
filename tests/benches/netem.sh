#!/usr/bin/env bash
# Propagation to all of N = 5, 10, 20 nodes under 100 ms delay and 2 % loss on every
# packet: the `network` bench's propagation, run inside a network namespace of its own
# whose loopback has a `tc netem` qdisc. Needs root and iproute2; sends nothing outside
# this machine. Documented in docs/performance.md.
#
#   sudo tests/benches/netem.sh                 # 100ms delay, 2% loss
#   DELAY=200ms LOSS=5% sudo tests/benches/netem.sh
# Where the kernel has no sch_netem, the bench can degrade its links itself:
#   PASSERELLE_BENCH_DELAY_MS=100 PASSERELLE_BENCH_LOSS=0.02 cargo bench … --bench network
set -euo pipefail
cd "$(dirname "$0")/../.."

delay=${DELAY:-100ms}
loss=${LOSS:-2%}
if [ "$(id -u)" -ne 0 ]; then
    echo "netem.sh: network namespaces and tc need root (sudo)" >&2
    exit 2
fi
binary=$(cargo bench -p passerelle-tests --bench network --no-run 2>&1 |
    sed -n 's/.*Executable .*(\(.*\))/\1/p' | tail -n 1)
[ -x "$binary" ] || { echo "netem.sh: could not build the network bench" >&2; exit 2; }

ns="passerelle-bench-$$"
ip netns add "$ns"
trap 'ip netns del "$ns"' EXIT
ip netns exec "$ns" ip link set lo up
ip netns exec "$ns" tc qdisc add dev lo root netem delay "$delay" loss "$loss"
echo "netem on the namespace's loopback: delay $delay, loss $loss (each packet, each way)"
ip netns exec "$ns" env PASSERELLE_BENCH_ONLY=propagation PASSERELLE_BENCH_MESH_SECS=10 \
    "$binary" --bench
