"""Golden TP frames from the Python reference (tibet-ping 0.3.5).

Run with the reference venv (`bash scripts/pyref.sh` prints its python):

  python scripts/golden.py generate   # one JSON object per line:
      {"name", "kind": "packet"|"response", "format": "json"|"msgpack",
       "byte_exact": bool, "frame": hex, "expected": to_dict()}
  python scripts/golden.py decode     # reads lines of hex frames on stdin and
      prints {"kind", "dict": to_dict()} per frame, decoded by the reference
  python scripts/golden.py corpus DIR # writes each golden frame to DIR/<name>.<fmt>

Frames are made by the reference's own PacketCodec
(tibet_ping.transport.codec), so the Rust codec is checked against what
Python peers really put on the wire. `byte_exact` marks vectors whose JSON
form the Rust codec should reproduce byte for byte (ASCII text, floats that
both print alike); msgpack is expected byte-exact for every vector.
"""

import json
import sys

from tibet_ping import PingDecision, PingPacket, PingResponse, PingType, Priority, RoutingMode
from tibet_ping.transport.codec import PacketCodec

NONCE = "00112233445566778899aabbccddeeff"
TS = "2026-11-26T11:00:33.762558+00:00"

UNICODE = [
    "Café ☕",
    "日本語のテキスト",
    "emoji 🦀🔥👍🏽",
    "non-BMP 𝄞 𐍈 \U0010ffff",
    "quotes \" and \\ backslash / slash",
    "controls \n\t\r\x01\x1f and \u2028\u2029",
    "",
]

FLOATS = [0.1, 1e-05, 1e16, -2.5, 1.0, 0.0, -0.0, 5e-324, 1.7976931348623157e308, 123456.789, -1e-07]
INTS = [0, 1, -1, 127, 128, -32, -33, 255, 256, 65535, 65536, 2**31, -(2**31) - 1, 2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1]


def packet(i, **kw):
    base = dict(
        packet_id="ping_%016x" % i,
        source_did="jis:home:sensor-%d" % i,
        target_did="jis:home:hub",
        ping_type=PingType.INTENT,
        priority=Priority.NORMAL,
        routing_mode=RoutingMode.DIRECT,
        intent="temperature.read",
        purpose="Check the temperature",
        payload={},
        nonce=NONCE,
        timestamp=TS,
    )
    base.update(kw)
    return PingPacket(**base)


def response(i, **kw):
    base = dict(
        response_id="resp_%016x" % i,
        in_response_to="ping_%016x" % i,
        responder_did="jis:home:hub",
        decision=PingDecision.ACCEPT,
        timestamp=TS,
    )
    base.update(kw)
    return PingResponse(**base)


def vectors():
    """(name, object, byte_exact) for every golden vector."""
    out = []
    i = 0
    # Every enum value of ping_type x priority x routing_mode.
    for pt in PingType:
        for pr in Priority:
            for rm in RoutingMode:
                i += 1
                out.append((f"enums-{pt.value}-{pr.value}-{rm.value}", packet(
                    i, ping_type=pt, priority=pr, routing_mode=rm,
                    target_did="broadcast" if rm is RoutingMode.BROADCAST else "jis:home:hub",
                    payload={"n": i, "ok": True, "ratio": 0.5}), True))
    # All optional fields set, hop counts, vouching.
    i += 1
    out.append(("packet-all-fields", packet(
        i, pod_id="pod-kitchen", station_id="station-1", hop_count=3, max_hops=9,
        tibet_token_id="tibet_20261126110033762558_1a2b3c4d", vouched_by="jis:home:hub",
        vouch_signature="c2ln", signature="ed25519:abcdef"), True))
    i += 1
    out.append(("packet-empty-strings", packet(
        i, source_did="", target_did="", intent="", purpose="", nonce="", timestamp="",
        pod_id="", signature=""), True))
    i += 1
    out.append(("packet-large-hops", packet(i, hop_count=4294967295, max_hops=0), True))
    # Unicode in every string position and in payload keys and values.
    for j, text in enumerate(UNICODE):
        i += 1
        out.append((f"unicode-{j}", packet(
            i, source_did="jis:" + text, purpose=text, intent="intent." + text,
            payload={text: text, "list": [text, {"k": text}]}, pod_id=text), False))
    # Floats and ints in payloads.
    i += 1
    out.append(("floats", packet(i, payload={"floats": FLOATS, "one": 0.1, "tiny": 1e-05, "big": 1e16}), False))
    i += 1
    out.append(("ints", packet(i, payload={"ints": INTS, "max": 2**64 - 1, "min": -(2**63)}), True))
    i += 1
    out.append(("nested", packet(i, payload={
        "a": {"b": {"c": {"d": {"e": [1, [2, [3, [4, {"f": None}]]]]}}}},
        "empty_obj": {}, "empty_list": [], "null": None, "t": True, "f": False, "s": "",
        "mixed": [None, True, 1, -1, 0.25, "x", [], {}],
    }), True))
    # Responses: every decision x every zone.
    for d in PingDecision:
        for z in ["GROEN", "GEEL", "ROOD"]:
            i += 1
            out.append((f"response-{d.value}-{z}", response(
                i, decision=d, airlock_zone=z, trust_score=0.75,
                fira_breakdown={"score": 0.75, "source": "known"},
                capabilities=["temp", "humidity"], rtt_ms=1.5, applied_rule="allow-sensors"), True))
    i += 1
    out.append(("response-defaults", response(i), True))
    i += 1
    out.append(("response-floats", response(
        i, trust_score=0.1, rtt_ms=1e-05, fira_breakdown={"score": 0.63, "source": "vouched", "vouch_count": 2},
        payload={"reason": "replay_detected", "f": FLOATS}), False))
    i += 1
    out.append(("response-unicode", response(
        i, responder_did="jis:thuis:🏠", capabilities=["temp", "日本", "𝄞", ""],
        payload={"msg": "Welkom 👋", "nested": {"x": [None, "é"]}}, tibet_token_id="tok-é",
        applied_rule="regel-ü", rtt_ms=None, trust_score=0.0), False))
    i += 1
    out.append(("response-int-trust", response(i, trust_score=1, rtt_ms=0.0, capabilities=[]), False))
    return out


def generate():
    for name, obj, byte_exact in vectors():
        kind = "response" if isinstance(obj, PingResponse) else "packet"
        for fmt, codec in (("json", PacketCodec()), ("msgpack", PacketCodec(use_msgpack=True))):
            frame = codec.encode_response(obj) if kind == "response" else codec.encode_packet(obj)
            print(json.dumps({
                "name": name, "kind": kind, "format": fmt, "byte_exact": byte_exact,
                "frame": frame.hex(), "expected": obj.to_dict(),
            }))


def decode():
    codec = PacketCodec()
    # Read all input before writing any output: the caller writes all of
    # stdin before it reads stdout, so interleaving could fill both pipes.
    lines = [line.strip() for line in sys.stdin.read().splitlines() if line.strip()]
    for line in lines:
        obj = codec.decode(bytes.fromhex(line))
        kind = "response" if isinstance(obj, PingResponse) else "packet"
        print(json.dumps({"kind": kind, "dict": obj.to_dict()}))


def corpus():
    """Writes every golden frame as a file into the directory argv[2] (a
    seed corpus for `cargo fuzz run decode_frame`)."""
    import os

    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    n = 0
    for name, obj, _ in vectors():
        for fmt, codec in (("json", PacketCodec()), ("msgpack", PacketCodec(use_msgpack=True))):
            is_resp = isinstance(obj, PingResponse)
            frame = codec.encode_response(obj) if is_resp else codec.encode_packet(obj)
            with open(os.path.join(out, f"{name}.{fmt}"), "wb") as f:
                f.write(frame)
            n += 1
    print(f"wrote {n} frames to {out}")


if __name__ == "__main__":
    {"generate": generate, "decode": decode, "corpus": corpus}[sys.argv[1]]()
