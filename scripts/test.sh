#!/usr/bin/env bash
# The whole test suite: lints, docs, unit, property, interop (against the
# Python reference installed into target/pyref) and network-namespace tests.
set -euo pipefail
cd "$(dirname "$0")/.."

TIBET_PY=$(bash scripts/pyref.sh)
export TIBET_PY TIBET_REQUIRE_INTEROP=1

# Tools the ops tests use where present (promtool, mosquitto, systemd-analyze,
# openssl for the TLS broker's certificates):
# installed when running as root (CI) and missing; otherwise those checks skip.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    missing=""
    command -v promtool >/dev/null || missing="$missing prometheus"
    [ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null || missing="$missing mosquitto"
    command -v systemd-analyze >/dev/null || missing="$missing systemd"
    command -v openssl >/dev/null || missing="$missing openssl"
    if [ -n "$missing" ]; then
        echo "== apt-get install$missing"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing >/dev/null ||
            { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing >/dev/null; }
    fi
fi

echo "== cargo fmt";    cargo fmt --all -- --check
echo "== cargo clippy"; cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo doc";    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
# The protocol core and the engine without std (docs/ARCHITECTURE.md, "A
# core without std"): each crate alone, the no_std crate that uses them,
# and that crate linked as firmware links it (a dependency that brings std
# back fails the link with a second panic handler).
echo "== no_std core"
# Checked with clippy, warnings denied: code only the std build uses (the
# simulator's) must be gated, not left dead in the no_std one.
cargo clippy -p tibet-ping --no-default-features --locked -- -D warnings
cargo clippy -p tibet-iot-proto --no-default-features --locked -- -D warnings
cargo build -p tibet-ping-nostd-check --locked
# Alone, its test runs against the core built without std (in the
# workspace run below, features unify and the core has std).
cargo test -p tibet-ping-nostd-check --locked
cargo rustc -p tibet-ping-nostd-check --locked --profile nostd-size --features firmware --crate-type staticlib
# A hung test fails the run within the limit instead of stalling CI (the
# whole step takes about 3 minutes on 2 cores).
echo "== cargo test";   timeout --kill-after=30 2400 cargo test --workspace --locked
# The 2,000-node mesh scenario takes minutes unoptimised: run optimised
# (about 15 s, plus the build).
echo "== mesh scenario (release)"
timeout --kill-after=30 1200 cargo test --release --locked -p tibet-iot-proto --test areas -- --ignored

# The Python package: built into target/pyvenv with its test tools and the
# reference peers, then its tests (README snippets, interop with the
# reference and with the CLI built above, the API).
echo "== python package (crates/tibet-iot-py)"
PY=$(bash scripts/pypackage.sh)
cargo build -p tibet-iot-cli --locked --quiet
TIBET_IOT_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/tibet-iot" timeout --kill-after=30 900 "$PY" -m pytest -q crates/tibet-iot-py/tests

# Every cargo-fuzz target for a short while under AddressSanitizer
# (docs/FUZZING.md); cargo-fuzz is installed on CI (root) when missing.
echo "== fuzz smoke"
timeout --kill-after=30 1800 bash scripts/fuzz-smoke.sh
