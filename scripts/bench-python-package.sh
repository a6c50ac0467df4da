#!/usr/bin/env bash
# The Python package (crates/tibet-iot-py) measured side by side, in one run,
# on loopback, with `tibet-iot bench` as the client:
#   1. listeners: a Python program whose IoTNode comes from our package, the
#      reference's IoTNode (tibet-ping 0.3.5) and `tibet-iot listen` (with
#      and without event lines), each at 32 and 256 pings in flight: answers
#      per second and the listener's CPU time per answered ping
#      (/proc/PID/stat before and after);
#   2. `await node.send_ping(...)` in a sequential loop (our package) against
#      `tibet-iot listen --quiet`, beside `tibet-iot bench -c 1` against the
#      same listener: the time of one round trip each.
# docs/PERFORMANCE.md keeps the figures.
#
#   bash scripts/bench-python-package.sh            # about a minute
#   DURATION=5 CALLS=10000 bash scripts/bench-python-package.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-3}
CONCURRENCY=${CONCURRENCY:-"32 256"}
CALLS=${CALLS:-5000}
CLIENT=jis:bench:client

cargo build --release --quiet -p tibet-iot-cli --bin tibet-iot
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/tibet-iot
PY=$(bash scripts/pypackage.sh release)

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

OURS_LISTENER='
import asyncio, sys
from tibet_iot import IoTNode, TransportConfig
async def main():
    node = IoTNode(sys.argv[1], config=TransportConfig(bind_host="127.0.0.1", bind_port=0, discovery=False),
                   heartbeat_interval=3600, discovery_interval=3600)
    node.set_trust(sys.argv[2], 0.9)
    host, port = await node.start()
    print("ready", port, flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
'
SEND_LOOP='
import asyncio, json, sys, time
from tibet_iot import IoTNode, TransportConfig
async def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    cfg = TransportConfig(bind_host="127.0.0.1", bind_port=0, discovery=False)
    async with IoTNode("jis:bench:client", config=cfg, heartbeat_interval=3600, discovery_interval=3600) as node:
        addr = ("127.0.0.1", port)
        for _ in range(500):
            await node.send_ping("jis:bench:hub", addr, "bench.ping", "bench")
        t, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            if await node.send_ping("jis:bench:hub", addr, "bench.ping", "bench") is None:
                raise SystemExit("a ping went unanswered")
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    print(json.dumps({"calls": n, "us_per_call": wall / n * 1e6, "client_cpu_us_per_call": cpu / n * 1e6}))
asyncio.run(main())
'

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
start ours "$PY" -c "$OURS_LISTENER" jis:bench:hub "$CLIENT"
measure "python tibet_iot (this package)" "$PID" "$PORT" jis:bench:hub
stop "$PID"
start ref "$PY" -c "$REF_LISTENER" jis:bench:hub "$CLIENT"
measure "python tibet-ping 0.3.5" "$PID" "$PORT" jis:bench:hub
stop "$PID"
start rust "$BIN" listen --did jis:bench:hub --bind 127.0.0.1 --port 0 --no-discovery --trust "$CLIENT=0.9"
measure "tibet-iot listen" "$PID" "$PORT" jis:bench:hub
stop "$PID"
start rustq "$BIN" listen --did jis:bench:hub --bind 127.0.0.1 --port 0 --no-discovery --trust "$CLIENT=0.9" --quiet
measure "tibet-iot listen --quiet" "$PID" "$PORT" jis:bench:hub
# The sequential loops, against this last listener.
"$BIN" bench "127.0.0.1:$PORT" --my-did "$CLIENT" --target jis:bench:hub -c 1 --duration "$DURATION" --json \
  > "$work/c1.json" 2>/dev/null
"$PY" -c "$SEND_LOOP" "$PORT" "$CALLS" > "$work/loop.json"
stop "$PID"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$work/rows.jsonl" "$work/c1.json" "$work/loop.json" "$DURATION" "$load_start" "$load_end" <<'PYEOF'
import json, os, sys
rows_path, c1_path, loop_path, duration, load_start, load_end = sys.argv[1:]
rows = [json.loads(l) for l in open(rows_path)]
print(f"{os.cpu_count()} cores, {duration} s per run, load average {load_start} at start, {load_end} at end")
print()
print("| listener | in flight | answered/s | lost | listener CPU µs/ping | RTT p50 µs | RTT p99 µs |")
print("|---|---|---|---|---|---|---|")
per = {}
for r in rows:
    a = r.get("answered") or 0
    cpu = r["responder_cpu_s"] * 1e6 / a if a else None
    rtt = r.get("rtt") or {}
    per[(r["responder"], r["c"])] = (r.get("answered_per_s") or 0, cpu)
    fmt = lambda v, f: "-" if v is None else format(v, f)
    print(f"| {r['responder']} | {r['c']} | {fmt(r.get('answered_per_s'), ',.0f')} | {r.get('lost', '-')} | "
          f"{fmt(cpu, '.2f')} | {fmt(rtt.get('p50_ms') and rtt['p50_ms'] * 1000, '.0f')} | "
          f"{fmt(rtt.get('p99_ms') and rtt['p99_ms'] * 1000, '.0f')} |")
print()
for c in sorted({r["c"] for r in rows}):
    ours = per.get(("python tibet_iot (this package)", c))
    ref = per.get(("python tibet-ping 0.3.5", c))
    cli = per.get(("tibet-iot listen", c))
    if ours and ref and ref[0]:
        print(f"at {c} in flight: this package answers {ours[0] / ref[0]:.1f}x the pings/s of the reference")
    if ours and cli and ours[1] and cli[1]:
        print(f"at {c} in flight: this package costs {ours[1] / cli[1]:.2f}x the CPU per ping of tibet-iot listen")
c1 = json.load(open(c1_path))
loop = json.load(open(loop_path))
native_us = 1e6 / c1["answered_per_s"]
print()
print(f"tibet-iot bench -c 1: {native_us:.1f} µs per round trip ({c1['answered_per_s']:,.0f}/s)")
print(f"await node.send_ping, sequential, {loop['calls']} calls: {loop['us_per_call']:.1f} µs per call "
      f"(client CPU {loop['client_cpu_us_per_call']:.1f} µs per call)")
print(f"difference: {loop['us_per_call'] - native_us:+.1f} µs per call")
PYEOF
