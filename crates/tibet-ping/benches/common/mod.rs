//! Shared by the codec and signing benches: the same typical packet.

use tibet_ping::PingPacket;

/// A typical intent ping: full identity, a small sensor payload, vouching.
pub(crate) fn typical_packet() -> PingPacket {
    serde_json::from_value(serde_json::json!({
        "packet_id": "ping_3f9a1c2b7d4e5f60",
        "source_did": "jis:home:sensor-42",
        "target_did": "jis:home:hub",
        "ping_type": "intent",
        "priority": 2,
        "routing_mode": "direct",
        "intent": "temperature.report",
        "purpose": "Hourly climate report",
        "payload": {"celsius": 21.5, "humidity": 0.43, "battery": 87},
        "pod_id": "pod-home",
        "station_id": null,
        "hop_count": 0,
        "max_hops": 5,
        "nonce": "9b2f0c7e1a4d8f3b6e5c2a1d0f9e8b7c",
        "timestamp": "2026-11-26T11:00:33.762558+00:00",
        "tibet_token_id": "tibet_20261126110033762558_1a2b3c4d",
        "vouched_by": "jis:home:hub",
        "vouch_signature": null,
        "signature": ""
    }))
    .expect("valid packet")
}
