#!/usr/bin/env bash
# Side by side, in one run, on loopback: the floor responder
# (crates/tibet-iot/examples/floor_responder.rs), our `tibet-iot listen
# --no-discovery` and the Python reference listener (tibet-ping 0.3.5
# IoTNode, installed by scripts/pyref.sh into target/pyref; nothing else is
# installed). Each is measured by `tibet-iot bench --json` at 1, 32 and 256
# pings in flight; the responder's CPU time per answered ping comes from
# /proc/PID/stat (utime + stime) read before and after each run.
# Prints one table (docs/PERFORMANCE.md explains the columns).
#
#   bash scripts/bench-vs-python.sh            # 3 s per run, about 40 s in all
#   DURATION=5 bash scripts/bench-vs-python.sh
#   ONLY="floor rust" bash scripts/bench-vs-python.sh   # skip Python
#   ONLY="rust rust1" ...   # listen on 2 vs 1 tokio worker threads
#   ONLY="floor rust rustq" ... # with and without event lines (--quiet)
#   ONLY="floor floorgso rustq" ... # and the floor sending segmented
#   ONLY="rustq rusta python pythona" ... # with and without the audit file
#   TIBET_IOT_BIN=/tmp/old/tibet-iot ONLY="rustq rusta" ... # another build
#
# The audited rows (rusta: `listen --quiet --audit FILE`; pythona: the
# reference node with a tibet-core NetworkBridge and FileStore recording
# every answered ping) also print, after the table, the tokens in the file
# against the pings the listener answered (the audited listener's stop
# summary).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-3}
CONCURRENCY=${CONCURRENCY:-"1 32 256"}
ONLY=${ONLY:-"floor rust python"}
CLIENT=jis:bench:client

cargo build --release --quiet -p tibet-iot-cli --bin tibet-iot
case " $ONLY " in *" floor"*) cargo build --release --quiet -p tibet-iot --example floor_responder ;; esac
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
# TIBET_IOT_BIN: another build of tibet-iot to measure (e.g. one copied
# from an earlier commit, to compare two builds in one sitting).
BIN=${TIBET_IOT_BIN:-$TARGET/release/tibet-iot}
FLOOR=$TARGET/release/examples/floor_responder
case " $ONLY " in *" python"*) PY=$(bash scripts/pyref.sh) ;; esac

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh


# The reference node recording every answered ping through tibet-core's
# NetworkBridge into a FileStore (the reference IoTNode has no audit hook,
# so its PingNode's receive is wrapped: the token is appended before the
# answer is sent).
PY_AUDITED='
import asyncio, sys
from tibet_ping.transport import IoTNode, TransportConfig
from tibet_ping import PingDecision
from tibet_core import Provider, FileStore, NetworkBridge
async def main():
    node = IoTNode(sys.argv[1], config=TransportConfig(bind_host="127.0.0.1", bind_port=0, broadcast=False),
                   heartbeat_interval=3600, discovery_interval=3600)
    node.set_trust(sys.argv[2], 0.9)
    bridge = NetworkBridge(Provider(sys.argv[1], store=FileStore(sys.argv[3])))
    receive = node.ping_node.receive
    def audited(packet):
        response = receive(packet)
        if response.decision != PingDecision.REJECT:
            bridge.record_ping(packet, response)
        return response
    node.ping_node.receive = audited
    await node.start()
    print("ready", node.transport._transport.get_extra_info("sockname")[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
'

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for who in $ONLY; do
  case $who in
    floor)
      start floor "$FLOOR" --bind 127.0.0.1 --port 0 --did jis:bench:floor
      measure "floor responder" "$PID" "$PORT" jis:bench:floor ;;
    floorgso)
      # The floor sending its answers segmented (UDP_SEGMENT), as the
      # listener does where it can: the floor for a segmenting responder.
      start floorgso "$FLOOR" --bind 127.0.0.1 --port 0 --did jis:bench:floor --gso
      measure "floor responder, segmented" "$PID" "$PORT" jis:bench:floor ;;
    rust)
      start rust "$BIN" listen --did jis:bench:hub --bind 127.0.0.1 --port 0 \
        --no-discovery --trust "$CLIENT=0.9"
      measure "tibet-iot listen" "$PID" "$PORT" jis:bench:hub ;;
    rusta)
      # --quiet, with the audit file: every answered ping has its token.
      start rusta "$BIN" listen --did jis:bench:hub --bind 127.0.0.1 --port 0 \
        --no-discovery --trust "$CLIENT=0.9" --quiet --audit "$work/rusta.jsonl"
      measure "tibet-iot listen --quiet --audit" "$PID" "$PORT" jis:bench:hub
      kill -TERM "$PID"; wait "$PID" 2>/dev/null || true
      echo "rusta: $(wc -l < "$work/rusta.jsonl") tokens in the file; $(grep '^audit:' "$work/rusta.out")" >> "$work/notes"
      continue ;;
    pythona)
      start pythona "$PY" -c "$PY_AUDITED" jis:py:hub "$CLIENT" "$work/pythona.jsonl"
      measure "python tibet-ping 0.3.5 + NetworkBridge" "$PID" "$PORT" jis:py:hub
      echo "pythona: $(wc -l < "$work/pythona.jsonl") tokens in the file" >> "$work/notes" ;;
    rustq)
      # The same listener printing no event lines (--quiet: no events built).
      start rustq "$BIN" listen --did jis:bench:hub --bind 127.0.0.1 --port 0 \
        --no-discovery --trust "$CLIENT=0.9" --quiet
      measure "tibet-iot listen --quiet" "$PID" "$PORT" jis:bench:hub ;;
    rust1)
      # The same listener on one tokio worker thread (plus its main thread).
      start rust1 env TOKIO_WORKER_THREADS=1 "$BIN" listen --did jis:bench:hub --bind 127.0.0.1 --port 0 \
        --no-discovery --trust "$CLIENT=0.9"
      measure "tibet-iot listen, 1 worker" "$PID" "$PORT" jis:bench:hub ;;
    python)
      start python "$PY" -c "$REF_LISTENER" jis:py:hub "$CLIENT"
      measure "python tibet-ping 0.3.5" "$PID" "$PORT" jis:py:hub ;;
    *) echo "unknown responder $who (floor, floorgso, rust, rustq, rusta, rust1, python, pythona)" >&2; exit 1 ;;
  esac
  stop "$PID"
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$work/rows.jsonl" "$DURATION" "$load_start" "$load_end" <<'PYEOF'
import json, sys, os
path, duration, load_start, load_end = sys.argv[1:]
rows = [json.loads(l) for l in open(path)]
def f(v, fmt):
    return "-" if v is None else format(v, fmt)
print(f"{os.cpu_count()} cores, {duration} s per run, load average {load_start} at start, {load_end} at end")
print()
print("| responder | in flight | answered/s | lost | responder CPU µs/ping | RTT p50 µs | RTT p99 µs | client CPU µs/ping | load avg |")
print("|---|---|---|---|---|---|---|---|---|")
for r in rows:
    answered = r.get("answered") or 0
    cpu = r["responder_cpu_s"] * 1e6 / answered if answered else None
    rtt = r.get("rtt") or {}
    p50 = rtt.get("p50_ms"); p99 = rtt.get("p99_ms")
    print("| {} | {} | {} | {} | {} | {} | {} | {} | {:.2f} |".format(
        r["responder"], r["c"], f(r.get("answered_per_s"), ",.0f"), r.get("lost", "-"), f(cpu, ".2f"),
        f(p50 and p50 * 1000, ".0f"), f(p99 and p99 * 1000, ".0f"),
        f(r.get("client_cpu_us_per_ping"), ".2f"), r["load"]))
by = {(r["responder"], r["c"]): r for r in rows}
floors = ["floor responder", "floor responder, segmented"]
if any(r["responder"] in floors and r.get("answered") for r in rows):
    print()
    for r in rows:
        if r["responder"] in floors or not r.get("answered"):
            continue
        for name, label in zip(floors, ["the floor's", "the segmented floor's"]):
            fl = by.get((name, r["c"]))
            if fl and fl.get("answered") and fl["responder_cpu_s"]:
                ratio = (r["responder_cpu_s"] / r["answered"]) / (fl["responder_cpu_s"] / fl["answered"])
                print(f"{r['responder']} at {r['c']} in flight: {ratio:.2f}x {label} CPU per ping")
for audited, plain in [("tibet-iot listen --quiet --audit", "tibet-iot listen --quiet"),
                       ("python tibet-ping 0.3.5 + NetworkBridge", "python tibet-ping 0.3.5")]:
    for r in rows:
        p = by.get((plain, r["c"]))
        if r["responder"] == audited and p and r.get("answered") and p.get("answered"):
            ratio = (r["responder_cpu_s"] / r["answered"]) / (p["responder_cpu_s"] / p["answered"])
            print(f"{audited} at {r['c']} in flight: {ratio:.2f}x the unaudited CPU per ping")
PYEOF
[ -f "$work/notes" ] && cat "$work/notes"
