#!/usr/bin/env bash
# Build the Splunk app archive: connectors/splunk/build.sh [OUT_DIR] -> OUT_DIR/aiwarden-<version>.tgz
# The archive holds the app as Splunk installs it (aiwarden/default, aiwarden/metadata,
# README); the detection sources beside it (detections/, handwritten/) are not part of the app.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../../target/connectors}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
version="$(sed -n 's/^version = //p' "$here/default/app.conf" | head -n1)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/aiwarden"
cp -R "$here/default" "$here/metadata" "$stage/aiwarden/"
cp "$here/README.md" "$stage/aiwarden/README.md"
chmod -R u=rwX,go=rX "$stage/aiwarden"
# Sorted entries and fixed owner and time, so the same sources give the same archive.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2026-01-01 00:00:00Z' \
  -C "$stage" -czf "$out/aiwarden-$version.tgz" aiwarden
echo "$out/aiwarden-$version.tgz"
