#!/usr/bin/env bash
# The cost of identity, in one run, on loopback: `tibet-iot listen` unsigned
# (`--trust`) and signed (`--key --pin`: it verifies every ping and signs
# every answer), each measured by `tibet-iot bench` (unsigned, and `--key`)
# at the given concurrency; the listener's CPU time per answered ping comes
# from /proc/PID/stat (utime + stime) before and after each run. The extra
# CPU per signed ping is set beside the raw cost of one Ed25519 sign plus
# one verify (`cargo bench -p tibet-ping --bench signing`, run separately;
# docs/PERFORMANCE.md).
#
#   bash scripts/bench-identity.sh              # 3 s per run
#   DURATION=5 CONCURRENCY="1 32" bash scripts/bench-identity.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-3}
CONCURRENCY=${CONCURRENCY:-"32"}
CLIENT=jis:bench:client
HUB=jis:bench:hub

cargo build --release --quiet -p tibet-iot-cli --bin tibet-iot
BIN=$PWD/target/release/tibet-iot

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

"$BIN" keygen --out "$work/hub.key" > "$work/hub.pub"
"$BIN" keygen --out "$work/client.key" > "$work/client.pub"
HUB_PUB=$(cat "$work/hub.pub")
CLIENT_PUB=$(cat "$work/client.pub")

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
start unsigned "$BIN" listen --did "$HUB" --bind 127.0.0.1 --port 0 --no-discovery \
  --trust "$CLIENT=0.9"
measure "unsigned" "$PID" "$PORT" "$HUB"
stop "$PID"
start signed "$BIN" listen --did "$HUB" --bind 127.0.0.1 --port 0 --no-discovery \
  --trust "$CLIENT=0.9" --key "$work/hub.key" --pin "$CLIENT=$CLIENT_PUB"
measure "signed" "$PID" "$PORT" "$HUB" --key "$work/client.key"
stop "$PID"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
: "$HUB_PUB"

python3 - "$work/rows.jsonl" "$DURATION" "$load_start" "$load_end" <<'PYEOF'
import json, sys, os
path, duration, load_start, load_end = sys.argv[1:]
rows = [json.loads(l) for l in open(path)]
print(f"{os.cpu_count()} cores, {duration} s per run, load average {load_start} at start, {load_end} at end")
print()
print("| listener | in flight | answered/s | lost | listener CPU µs/ping | client CPU µs/ping | load avg |")
print("|---|---|---|---|---|---|---|")
cpu = {}
for r in rows:
    answered = r.get("answered") or 0
    per = r["responder_cpu_s"] * 1e6 / answered if answered else None
    cpu[(r["responder"], r["c"])] = per
    print("| {} | {} | {} | {} | {} | {} | {:.2f} |".format(
        r["responder"], r["c"], format(r.get("answered_per_s") or 0, ",.0f"), r.get("lost", "-"),
        "-" if per is None else format(per, ".2f"),
        "-" if r.get("client_cpu_us_per_ping") is None else format(r["client_cpu_us_per_ping"], ".2f"),
        r["load"]))
print()
for (name, c), per in cpu.items():
    base = cpu.get(("unsigned", c))
    if name == "signed" and per and base:
        print(f"c={c}: identity costs the listener {per - base:.2f} µs per ping (signed {per:.2f} - unsigned {base:.2f})")
PYEOF
