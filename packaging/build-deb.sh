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

# Manual pages and completions, from the command's own definition: the pages in English
# (man1) and in French (fr/man1, which man shows under a French locale); the completions'
# descriptions in French, the language of most of the network's offices.
assets=target/package-assets
rm -rf "$assets"
mkdir -p "$assets/man/en" "$assets/man/fr" "$assets/completions"
"$binary" --lang en man --dir "$assets/man/en"
"$binary" --lang fr man --dir "$assets/man/fr"
gzip -9n "$assets"/man/*/*.1
"$binary" --lang fr completions bash > "$assets/completions/passerelle"
"$binary" --lang fr completions zsh > "$assets/completions/_passerelle"
"$binary" --lang fr completions fish > "$assets/completions/passerelle.fish"

mkdir -p target/debian
cargo deb -p passerelle --no-build --profile "$profile" --output target/debian/
