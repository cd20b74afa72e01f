#!/usr/bin/env bash
# Builds the Debian package of Passerelle into target/debian/:
#   packaging/build-deb.sh                  # the dist profile (release, stripped): to ship
#   packaging/build-deb.sh --profile dev    # the debug build CI already made: to test
#   … --no-build                            # package the binary already built
# Needs cargo-deb (cargo install cargo-deb) and dpkg-dev (dpkg-shlibdeps, for $auto).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=dist
build=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile="$2"; shift 2 ;;
    --no-build) build=no; shift ;;
    *) echo "usage: $0 [--profile dist|release|dev] [--no-build]" >&2; exit 2 ;;
  esac
done
case "$profile" in
  dev) folder=debug ;;
  *) folder="$profile" ;;
esac

if [ "$build" = yes ]; then
  cargo build --profile "$profile" -p passerelle
fi
binary="target/$folder/passerelle"

# Manual pages and completions, from the command's own definition.
assets=target/package-assets
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$binary" man --dir "$assets/man"
gzip -9n "$assets"/man/*.1
"$binary" completions bash > "$assets/completions/passerelle"
"$binary" completions zsh > "$assets/completions/_passerelle"
"$binary" completions fish > "$assets/completions/passerelle.fish"

mkdir -p target/debian
cargo deb -p passerelle --no-build --profile "$profile" --output target/debian/
