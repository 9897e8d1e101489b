#!/usr/bin/env bash
# Build the .deb and .rpm packages: target/debian/aiwarden_<v>-1_<arch>.deb and
# target/generate-rpm/aiwarden-<v>-1.<arch>.rpm (under CARGO_TARGET_DIR when set).
# Needs cargo-deb and cargo-generate-rpm: `cargo install cargo-deb cargo-generate-rpm --locked`.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --locked
cargo deb --no-build
# cargo-generate-rpm reads assets relative to the repository: point it at the real binary.
cargo generate-rpm --target-dir "$target"
echo "built:"
ls -1 "$target"/debian/*.deb "$target"/generate-rpm/*.rpm
