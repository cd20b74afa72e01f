//! A cut link between two members in two network namespaces (nftables drops every packet,
//! as a dead 4G link does): the dead connection is noticed within seconds, both sides keep
//! writing, and they converge within seconds of the link returning. Many more and longer
//! cuts are measured by the partition bench (docs/performance.md).

use std::time::Duration;

use passerelle_node::network::{PING_INTERVAL, PING_TIMEOUT};
use passerelle_tests::partition::Partitioned;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(passerelle_root),
    ignore = "needs root: network namespaces and nftables"
)]
async fn a_cut_link_is_noticed_and_heals_within_seconds_of_returning() {
    let mut pair = Partitioned::start().await;
    // A short cut (the connection survives it) and one longer than the ping's detection.
    let long = PING_INTERVAL + PING_TIMEOUT + Duration::from_secs(3);
    for cut_for in [Duration::from_secs(5), long] {
        let trial = pair.trial(cut_for).await;
        eprintln!(
            "cut {:?}: healed {:?} after the link returned (noticed: {})",
            trial.cut_for, trial.healed_after, trial.noticed
        );
        if cut_for >= long {
            assert!(trial.noticed, "a dead connection is noticed and dropped");
        }
        // The target is 5 s (the bench measures it); the bound here only catches a
        // regression to the tens of seconds a partition used to take.
        assert!(
            trial.healed_after < Duration::from_secs(10),
            "converged {:?} after the link returned",
            trial.healed_after
        );
    }
    pair.stop().await;
}
