#!/usr/bin/env bash
# A short smoke run of every cargo-fuzz target (docs/FUZZING.md): each one
# runs FUZZ_SECONDS (default 30) under AddressSanitizer from a small seed
# corpus. A crash, leak, timeout or out-of-memory fails the run.
#
# cargo-fuzz is installed when missing and running as root (CI); elsewhere
# the step is skipped with a printed reason. Stable Rust only:
# RUSTC_BOOTSTRAP=1 lets stable rustc take cargo-fuzz's -Z flags.
#
# Usage: bash scripts/fuzz-smoke.sh [TARGET...]   (default: every target)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-30}
export PATH="$HOME/.cargo/bin:$PATH"

if ! cargo fuzz --version >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        echo "== cargo install cargo-fuzz"
        cargo install cargo-fuzz --locked --quiet
    else
        echo "fuzz smoke: skipped (cargo-fuzz is not installed; it is installed only as root, as on CI)"
        exit 0
    fi
fi
export RUSTC_BOOTSTRAP=1

# Seeds: the golden frames of the Python reference where it is installed,
# the documented config example, and a few lines each of the text formats.
corpus=fuzz/corpus
mkdir -p "$corpus"/{decode_frame,config_toml,token_line,control_request,pin_file,parse_key}
if [ -n "${TIBET_PY:-}" ]; then
    "$TIBET_PY" scripts/golden.py corpus "$corpus/decode_frame" >/dev/null
fi
cp examples/hub.toml "$corpus/config_toml/"
printf '[[airlock_rule]]\nname = "x"\nzone = "GEEL"\nintent = "door.*"\n' >"$corpus/config_toml/rule.toml"
printf '{"op":"list"}\n' >"$corpus/control_request/list"
printf '{"op":"approve","id":"p","trust":0.9}\n' >"$corpus/control_request/approve"
printf 'jis:home:sensor ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n' >"$corpus/pin_file/one"

targets=("$@")
if [ ${#targets[@]} = 0 ]; then
    mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi

cd fuzz
echo "== cargo fuzz build (${#targets[@]} targets)"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! cargo fuzz build --release >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz smoke: the build FAILED"
    exit 1
fi
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    # libFuzzer prints its own progress; keep the last lines (the summary).
    if ! out=$(cargo fuzz run --release "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -max_len=8192 -rss_limit_mb=2048 -timeout=10 2>&1); then
        printf '%s\n' "$out" | tail -40
        echo "fuzz smoke: $t FAILED (reproduce: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run $t fuzz/artifacts/$t/<file>)"
        exit 1
    fi
    printf '%s\n' "$out" | grep -E '^Done [0-9]+ runs' | sed "s/^/fuzz smoke: $t: /"
done
