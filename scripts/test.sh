#!/usr/bin/env bash
# The whole test suite: lints, docs, unit, property, interop (against the
# Python reference installed into target/pyref) and network-namespace tests.
set -euo pipefail
cd "$(dirname "$0")/.."

TIBET_PY=$(bash scripts/pyref.sh)
export TIBET_PY TIBET_REQUIRE_INTEROP=1

echo "== cargo fmt";    cargo fmt --all -- --check
echo "== cargo clippy"; cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo doc";    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
echo "== cargo test";   cargo test --workspace --locked
