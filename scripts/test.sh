#!/usr/bin/env bash
# Runs every test: the workspace's unit, integration and doc tests (release
# mode, so the stress and model tests are quick), then the loom models of the
# lock-free read protocol in their own target directory (loom needs
# `--cfg loom`, which rebuilds the crate and its dependencies).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --release
RUSTFLAGS="--cfg loom" cargo test -p helios-l1 --lib --release --target-dir target/loom loom_
