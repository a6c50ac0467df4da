# Shared by the side-by-side benchmark scripts (bench-vs-python.sh,
# bench-identity.sh); sourced, not run. Expects BIN (the tibet-iot binary),
# CLIENT (the bench's DID), DURATION and CONCURRENCY to be set. Sets up a
# scratch directory ($work) and stops every responder started here on exit.

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts a responder in the background: $1 name, rest the command. Waits (up
# to 30 s) for its "listening on ADDR ..." or "ready PORT" line; sets PID and PORT.
start() {
  local name=$1; shift
  "$@" > "$work/$name.out" 2> "$work/$name.err" &
  PID=$!
  pids+=("$PID")
  PORT=
  for _ in $(seq 300); do
    PORT=$(sed -n -e 's/^listening on [^ ]*:\([0-9]*\) .*/\1/p' -e 's/^ready \([0-9]*\)$/\1/p' "$work/$name.out" | head -n1)
    [ -n "$PORT" ] && return 0
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not start:" >&2; cat "$work/$name.err" >&2; exit 1
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# utime + stime of a process, in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the ")" that ends the command name).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

# Measures one responder: $1 name, $2 pid, $3 port, $4 its DID, rest extra
# bench flags. Warms it up (not recorded), then one bench run per
# concurrency; appends a JSON row per run to $work/rows.jsonl.
measure() {
  local name=$1 pid=$2 port=$3 did=$4 c before after load
  shift 4
  "$BIN" bench "127.0.0.1:$port" --my-did "$CLIENT" --target "$did" -n 2000 -c 32 --json "$@" > /dev/null 2>&1 || true
  for c in $CONCURRENCY; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    before=$(cpu_ticks "$pid")
    "$BIN" bench "127.0.0.1:$port" --my-did "$CLIENT" --target "$did" \
      --duration "$DURATION" -c "$c" --json "$@" > "$work/run.json" 2> "$work/run.err" || true
    after=$(cpu_ticks "$pid")
    python3 - "$name" "$c" "$((after - before))" "$(getconf CLK_TCK)" "$load" "$work/run.json" >> "$work/rows.jsonl" <<'PYEOF'
import json, sys
name, c, ticks, hz, load, path = sys.argv[1:]
try:
    r = json.load(open(path))
except Exception:
    r = {}
r.update(responder=name, c=int(c), responder_cpu_s=int(ticks) / int(hz), load=float(load))
print(json.dumps(r))
PYEOF
  done
}

# The Python reference's listener (tibet-ping 0.3.5 IoTNode) for the side by
# side scripts: argv DID and the DID it trusts at 0.9; prints "ready PORT".
REF_LISTENER='
import asyncio, sys
from tibet_ping.transport import IoTNode, TransportConfig
async def main():
    node = IoTNode(sys.argv[1], config=TransportConfig(bind_host="127.0.0.1", bind_port=0, broadcast=False),
                   heartbeat_interval=3600, discovery_interval=3600)
    node.set_trust(sys.argv[2], 0.9)
    await node.start()
    print("ready", node.transport._transport.get_extra_info("sockname")[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
'
