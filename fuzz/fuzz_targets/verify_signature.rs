//! Fuzz signature checking: a decoded packet with an arbitrary `signature`
//! text, checked against a fixed key, alone, in a batch and through the
//! identity policy (pinned and unpinned). Never a panic, never a pass.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tibet_ping::identity::{
    IdentityMode, Keypair, PinStore, beacon_proof, check_identity, parse_signature,
    verify_packet, verify_packets,
};
use tibet_ping::{Frame, PacketCodec, PingPacket};

fuzz_target!(|data: &[u8]| {
    let key = Keypair::from_seed(&[0x42; 32]).public();
    // Either a whole frame, or a signature text on a fixed packet.
    let packet = match PacketCodec::default().decode(data) {
        Ok(Frame::Packet(p)) => p,
        _ => {
            let Ok(text) = std::str::from_utf8(data) else {
                return;
            };
            let _ = parse_signature(text);
            let mut p = PingPacket::new("ping_00", "jis:a", "jis:b", "x", "y");
            p.signature = text.to_owned();
            p
        }
    };
    // Nobody holds the seed-0x42 key's signature of fuzz input.
    let alone = verify_packet(&packet, &key);
    let batch = verify_packets(&[(&packet, &key), (&packet, &key)]);
    assert_eq!(batch, vec![alone, alone]);
    let _ = beacon_proof(&packet);
    let mut pins = PinStore::new(4);
    for mode in [IdentityMode::Off, IdentityMode::Prefer, IdentityMode::Require] {
        let _ = check_identity(&packet, &pins, mode);
    }
    let _ = pins.set(&packet.source_did, key);
    let _ = check_identity(&packet, &pins, IdentityMode::Require);
});
