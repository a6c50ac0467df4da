"""Independent implementation of the signing input and Ed25519 signatures
of docs/PROTOCOL.md section 6, using the `cryptography` package.

    python signing.py input                 < packet.json   -> signing input bytes
    python signing.py sign SEED_HEX [resp]  < packet.json   -> packet JSON with "signature"
    python signing.py verify PUBKEY [resp]  < packet.json   -> "ok" or "bad"

A packet's input leaves out "signature" and "hop_count"; with "resp" (a
response) only "signature". Extension keys are not part of the object.
"""
import base64
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

PACKET_KEYS = [
    "packet_id", "source_did", "target_did", "ping_type", "priority", "routing_mode",
    "intent", "purpose", "payload", "pod_id", "station_id", "hop_count", "max_hops",
    "nonce", "timestamp", "tibet_token_id", "vouched_by", "vouch_signature", "signature",
]
RESPONSE_KEYS = [
    "response_id", "in_response_to", "responder_did", "decision", "payload", "capabilities",
    "trust_score", "fira_breakdown", "tibet_token_id", "timestamp", "rtt_ms", "airlock_zone",
    "applied_rule", "signature",
]


def signing_input(obj, response=False):
    keys = RESPONSE_KEYS if response else PACKET_KEYS
    drop = {"signature"} if response else {"signature", "hop_count"}
    body = {k: obj[k] for k in keys if k in obj and k not in drop}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def main():
    mode = sys.argv[1]
    response = sys.argv[-1] == "resp"
    obj = json.loads(sys.stdin.read())
    data = signing_input(obj, response)
    if mode == "input":
        sys.stdout.buffer.write(data)
    elif mode == "sign":
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(sys.argv[2]))
        obj["signature"] = base64.b64encode(key.sign(data)).decode()
        print(json.dumps(obj, separators=(",", ":")))
    elif mode == "verify":
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(sys.argv[2], validate=True))
        try:
            key.verify(base64.b64decode(obj.get("signature", ""), validate=True), data)
        except (InvalidSignature, ValueError):
            print("bad")
            return
        print("ok")
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
