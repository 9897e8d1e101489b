#!/usr/bin/env bash
# Installs the Kafka-protocol peer the tansu interop test runs against, once per machine:
# `tansu` built from crates.io into a cache directory, skipped when the binary is already there.
# Prints the binary's path on stdout; everything else goes to stderr.
set -euo pipefail

TOOLS="${AIWARDEN_TOOLS:-$HOME/.cache/aiwarden-tools}"
TANSU_VERSION="${TANSU_VERSION:-}"
BIN="$TOOLS/bin/tansu"

if [ ! -x "$BIN" ]; then
  echo "== building tansu into $TOOLS (about ten minutes, cached afterwards)" >&2
  mkdir -p "$TOOLS"
  # Its own target dir so the build neither pollutes nor waits on the project's.
  version_arg=()
  if [ -n "$TANSU_VERSION" ]; then version_arg=(--version "$TANSU_VERSION"); fi
  CARGO_TARGET_DIR="$TOOLS/build" cargo install tansu --locked --features dynostore \
    --root "$TOOLS" "${version_arg[@]}" >&2
fi
echo "$BIN"
