#!/usr/bin/env bash
# Installs the Kafka-protocol peer the tansu interop test runs against, once per machine:
# `tansu` built from crates.io into a cache directory, skipped when the binary is already there.
#
#   bash .ci/kafka-peer.sh           build if needed (about ten minutes cold), then print the path
#   bash .ci/kafka-peer.sh --start   print the path at once; build in the background if needed
#
# With --start, `<path>.building` holds the builder's process id until the build ends (its log
# is `<path>.log`); tests/it/kafka/tansu.rs waits for it, so the build overlaps the rest of CI.
# Everything but the path goes to stderr.
set -euo pipefail

TOOLS="${AIWARDEN_TOOLS:-$HOME/.cache/aiwarden-tools}"
TANSU_VERSION="${TANSU_VERSION:-0.6.0}"
BIN="$TOOLS/bin/tansu"

build() {
  echo "== building tansu $TANSU_VERSION into $TOOLS (about ten minutes, cached afterwards)" >&2
  mkdir -p "$TOOLS"
  # Its own target dir so the build neither pollutes nor waits on the project's.
  CARGO_TARGET_DIR="$TOOLS/build" cargo install tansu --locked --features dynostore \
    --version "$TANSU_VERSION" --root "$TOOLS" >&2
}

if [ -x "$BIN" ]; then
  echo "$BIN"
elif [ "${1:-}" = "--start" ]; then
  mkdir -p "$TOOLS/bin"
  (
    build >"$BIN.log" 2>&1 || echo "tansu build failed" >>"$BIN.log"
    rm -f "$BIN.building"
  ) </dev/null >/dev/null 2>&1 &
  echo $! >"$BIN.building"
  echo "$BIN"
else
  build
  echo "$BIN"
fi
