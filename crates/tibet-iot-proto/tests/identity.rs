//! Authenticated identity in the engine (docs/PROTOCOL.md section 6), on the
//! simulated network: signed packets, responses and beacons, pinned DIDs,
//! refusals counted and audited, trust on first use.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{encode, key, keyed, speaker};
use tibet_iot_proto::sim::{Sim, addr, did};
use tibet_iot_proto::{AuditRecord, Engine, SendOptions, TransportConfig};
use tibet_ping::identity::{
    IdentityMode, Keypair, add_beacon_key, sign_packet, verify_packet, verify_response,
};
use tibet_ping::{
    Announcement, AutoVouchRule, Frame, PacketCodec, PingOptions, PingPacket, PingResponse,
    RoutingMode,
};

const ATTACKER: &str = "10.66.0.1:7150";

fn attacker() -> SocketAddr {
    ATTACKER.parse().unwrap()
}

fn identity_refusals(engine: &mut Engine) -> Vec<(String, SocketAddr, &'static str, u64)> {
    std::iter::from_fn(|| engine.poll_audit())
        .filter_map(|r| match r {
            AuditRecord::IdentityRefused {
                did,
                address,
                reason,
                count,
            } => Some((did, address, reason, count)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_pinned_did_cannot_be_spoofed_in_five_ways() {
    let mut sim = Sim::new(11);
    sim.add(0, keyed(0, &[1], IdentityMode::Prefer));
    sim.add(1, keyed(1, &[0], IdentityMode::Prefer));
    sim.link(0, 1);
    sim.trust_all(2);
    sim.node(0).set_audit_enabled(true);
    let now = sim.now();

    let mut owner = speaker(&did(1), Some(key(1)), 1);
    let mut unsigned = speaker(&did(1), None, 2);
    let mut other = speaker(&did(1), Some(key(7)), 3);
    let opts = PingOptions::default;
    let mut variants: Vec<(&str, PingPacket)> = Vec::new();
    variants.push((
        "unsigned",
        unsigned.ping(now.wall, &did(0), "door.unlock", "x", opts()),
    ));
    let mut garbage = unsigned.ping(now.wall, &did(0), "door.unlock", "x", opts());
    garbage.signature = "A".repeat(86) + "==";
    variants.push(("bad_signature", garbage));
    variants.push((
        "bad_signature",
        other.ping(now.wall, &did(0), "door.unlock", "x", opts()),
    ));
    let mut changed = owner.ping(now.wall, &did(0), "temperature.read", "x", opts());
    changed.intent = "door.unlock".into();
    variants.push(("bad_signature", changed));
    let mut raised = owner.ping(now.wall, &did(0), "door.unlock", "x", opts());
    raised.max_hops += 5;
    variants.push(("bad_signature", raised));

    let hub = sim.node(0);
    for (reason, packet) in &variants {
        hub.handle_datagram(now, attacker(), &encode(packet));
        assert!(hub.poll_transmit().is_none(), "{reason}: no answer");
        assert_eq!(
            hub.peers().get_address(now.mono, &did(1)),
            Some(addr(1)),
            "{reason}: the peer entry did not move"
        );
    }
    let stats = hub.stats(now);
    assert_eq!(stats.identity.unsigned, 1);
    assert_eq!(stats.identity.bad_signature, 4);
    assert_eq!(stats.engine.pings_answered, 0);
    assert_eq!(stats.ping.received, 0, "the pipeline never saw them");
    // One audit record for the source in this interval, not five.
    assert_eq!(
        identity_refusals(hub),
        [(did(1), attacker(), "unsigned", 1)]
    );
    assert_eq!(hub.stats(now).identity.audit_suppressed, 4);

    // After the interval, the next refusal is audited with the count of
    // the suppressed ones.
    sim.run_for(Duration::from_secs(61));
    let now = sim.now();
    let again = unsigned.ping(now.wall, &did(0), "door.unlock", "x", opts());
    let hub = sim.node(0);
    hub.handle_datagram(now, attacker(), &encode(&again));
    assert_eq!(
        identity_refusals(hub),
        [(did(1), attacker(), "unsigned", 5)]
    );

    // The owner's own signed packet is answered, and the answer is signed.
    let genuine = owner.ping(now.wall, &did(0), "temperature.read", "x", opts());
    hub.handle_datagram(now, addr(1), &encode(&genuine));
    let t = hub.poll_transmit().expect("answered");
    let Ok(Frame::Response(r)) = PacketCodec::json().decode(&t.payload) else {
        panic!("not a response");
    };
    assert_eq!(verify_response(&r, &r.signature, &key(0).public()), Ok(()));
    assert!(hub.stats(now).identity.verified >= 1);
}

#[test]
fn a_signed_packet_replayed_from_elsewhere_is_still_a_replay() {
    let mut sim = Sim::new(12);
    sim.add(0, keyed(0, &[1], IdentityMode::Prefer));
    sim.add(1, keyed(1, &[0], IdentityMode::Prefer));
    sim.link(0, 1);
    sim.trust_all(2);
    let now = sim.now();
    let mut owner = speaker(&did(1), Some(key(1)), 1);
    let packet = owner.ping(
        now.wall,
        &did(0),
        "temperature.read",
        "x",
        PingOptions::default(),
    );
    let bytes = encode(&packet);
    let hub = sim.node(0);
    hub.handle_datagram(now, addr(1), &bytes);
    assert!(hub.poll_transmit().is_some());
    hub.handle_datagram(now, attacker(), &bytes);
    assert!(hub.poll_transmit().is_none(), "a replay is not answered");
    let stats = hub.stats(now);
    assert_eq!(stats.engine.replays_dropped, 1);
    assert_eq!(stats.identity.verified, 2, "the signature itself is valid");
    assert_eq!(hub.peers().get_address(now.mono, &did(1)), Some(addr(1)));
}

fn forged_answer(in_response_to: &str, responder: &str, signature: String) -> Vec<u8> {
    let r = PingResponse {
        response_id: "resp_00000000000000ff".into(),
        in_response_to: in_response_to.into(),
        responder_did: responder.into(),
        decision: tibet_ping::PingDecision::Accept,
        payload: Default::default(),
        capabilities: vec![],
        trust_score: 1.0,
        fira_breakdown: Default::default(),
        tibet_token_id: None,
        timestamp: String::new(),
        rtt_ms: None,
        airlock_zone: tibet_ping::AirlockZone::Groen,
        applied_rule: None,
        signature,
    };
    PacketCodec::json().encode_response(&r).unwrap()
}

#[test]
fn a_forged_direct_answer_is_refused_and_the_real_one_verifies() {
    let mut sim = Sim::new(13);
    sim.add(0, keyed(0, &[1], IdentityMode::Prefer));
    sim.add(1, keyed(1, &[0], IdentityMode::Prefer));
    sim.link(0, 1);
    sim.trust_all(2);
    let now = sim.now();
    let a = sim.node(0);
    let id = a
        .send_ping(now, &did(1), addr(1), "x", "y", SendOptions::default())
        .unwrap();
    let packet_id = a.request_packet_id(id).unwrap().to_owned();
    // Spoofed from the responder's own address: unsigned, then garbage,
    // then signed by another key.
    let forged_sig = tibet_ping::identity::sign_response(
        &PingResponse {
            ..decode_response(&forged_answer(&packet_id, &did(1), String::new()))
        },
        &key(9),
    );
    for sig in [String::new(), "A".repeat(86) + "==", forged_sig] {
        a.handle_datagram(now, addr(1), &forged_answer(&packet_id, &did(1), sig));
    }
    assert_eq!(a.stats(now).identity.responses_refused, 3);
    sim.run_for(Duration::from_secs(1));
    let resp = sim.outcome(0, id).expect("decided").expect("answered");
    assert_eq!(resp.responder_did, did(1));
    assert_eq!(
        verify_response(&resp, &resp.signature, &key(1).public()),
        Ok(())
    );
    let now = sim.now();
    let stats = sim.node(0).stats(now);
    assert_eq!(stats.identity.responses_verified, 1);
    assert_eq!(stats.engine.responses_matched, 1);
}

fn decode_response(bytes: &[u8]) -> PingResponse {
    match PacketCodec::json().decode(bytes) {
        Ok(Frame::Response(r)) => r,
        _ => panic!("not a response"),
    }
}

#[test]
fn a_mesh_ping_verifies_end_to_end_and_a_forging_relay_is_refused() {
    let mut sim = Sim::new(14);
    sim.add(0, keyed(0, &[2], IdentityMode::Prefer));
    sim.add(1, keyed(1, &[], IdentityMode::Prefer));
    sim.add(2, keyed(2, &[0], IdentityMode::Prefer));
    sim.link(0, 1);
    sim.link(1, 2);
    sim.trust_all(3);
    sim.record_wire(true);
    let now = sim.now();
    let opts = SendOptions {
        ping: PingOptions {
            routing_mode: RoutingMode::Mesh,
            max_hops: Some(5),
            ..PingOptions::default()
        },
        ..SendOptions::default()
    };
    let a = sim.node(0);
    let id = a
        .send_ping(now, &did(2), addr(1), "temperature.read", "via B", opts)
        .unwrap();
    let packet_id = a.request_packet_id(id).unwrap().to_owned();
    // The relay (or anyone at its address) forges C's answer: refused.
    a.handle_datagram(
        now,
        addr(1),
        &forged_answer(&packet_id, &did(2), String::new()),
    );
    assert_eq!(a.stats(now).identity.responses_refused, 1);
    sim.run_for(Duration::from_secs(1));
    let resp = sim
        .outcome(0, id)
        .expect("decided")
        .expect("answered via B");
    assert_eq!(
        verify_response(&resp, &resp.signature, &key(2).public()),
        Ok(())
    );
    // C saw the packet with hop_count raised by B, and it still verified.
    let relayed = sim
        .wire()
        .iter()
        .filter(|d| d.from == addr(1) && d.to == addr(2))
        .find_map(|d| match PacketCodec::json().decode(&d.bytes) {
            Ok(Frame::Packet(p)) => Some(p),
            _ => None,
        })
        .expect("B forwarded to C");
    assert_eq!(relayed.hop_count, 1);
    assert_eq!(verify_packet(&relayed, &key(0).public()), Ok(()));
    let now = sim.now();
    let c = sim.node(2).stats(now);
    assert_eq!(c.identity.verified, 1);
    assert_eq!(c.identity.refused(), 0);
    assert_eq!(c.engine.pings_answered, 1);
}

#[test]
fn unsigned_unpinned_peers_work_in_prefer_and_are_dropped_in_require() {
    let mut sim = Sim::new(15);
    sim.add(0, keyed(0, &[], IdentityMode::Prefer));
    sim.add(1, keyed(1, &[], IdentityMode::Require));
    let now = sim.now();
    for i in 0..2 {
        sim.node(i).set_trust(now, "jis:py:peer", 0.9);
    }
    let mut py = speaker("jis:py:peer", None, 5);
    for i in 0..2 {
        let p = py.ping(now.wall, &did(i), "x", "y", PingOptions::default());
        sim.node(i).handle_datagram(now, attacker(), &encode(&p));
    }
    assert!(sim.node(0).poll_transmit().is_some(), "prefer answers");
    assert!(sim.node(1).poll_transmit().is_none(), "require drops");
    assert_eq!(sim.node(1).stats(now).identity.unpinned_in_require, 1);
    assert!(
        sim.node(1)
            .peers()
            .get_address(now.mono, "jis:py:peer")
            .is_none()
    );
}

fn beacon_of(did: &str, signer: &Keypair, seed: u64, now: tibet_ping::Timestamp) -> Vec<u8> {
    let mut node = speaker(did, None, seed);
    let announce = Announcement {
        device_type: Some("sensor".into()),
        ..Announcement::default()
    };
    let mut p = node.discover(now, &announce);
    add_beacon_key(&mut p.payload, &signer.public());
    sign_packet(&mut p, signer);
    encode(&p)
}

#[test]
fn trust_on_first_use_pins_an_auto_vouched_beacon_and_refuses_a_re_pin() {
    let mut sim = Sim::new(16);
    sim.add(0, keyed(0, &[], IdentityMode::Prefer));
    let device = TransportConfig {
        discovery_enabled: true,
        device_type: "sensor".into(),
        ..keyed(1, &[], IdentityMode::Prefer)
    };
    sim.add(1, device);
    sim.link(0, 1);
    sim.node(0).set_audit_enabled(true);
    sim.node(0)
        .add_auto_vouch_rule(AutoVouchRule {
            name: "sensors".into(),
            device_type: Some("sensor".into()),
            ..AutoVouchRule::default()
        })
        .unwrap();
    assert!(sim.node(0).pins().get(&did(1)).is_none());
    // Node 1's first beacon goes out at start.
    sim.run_for(Duration::from_secs(2));
    let hub = sim.node(0);
    assert_eq!(hub.pins().get(&did(1)), Some(&key(1).public()));
    assert_eq!(hub.pins_generation(), 1);
    let pinned: Vec<_> = std::iter::from_fn(|| hub.poll_audit())
        .filter_map(|r| match r {
            AuditRecord::Pinned { did, key, reason } => Some((did, *key, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(pinned, [(did(1), key(1).public(), "auto_vouched".into())]);

    // Another key claiming the same DID: refused, counted, never re-pinned.
    let now = sim.now();
    let rekeyed = beacon_of(&did(1), &key(8), 99, now.wall);
    let hub = sim.node(0);
    hub.handle_discovery_datagram(now, attacker(), &rekeyed);
    assert_eq!(hub.pins().get(&did(1)), Some(&key(1).public()));
    assert_eq!(hub.pins_generation(), 1);
    let stats = hub.stats(now);
    assert_eq!(stats.identity.wrong_key, 1);
    assert_eq!(stats.identity.pin_conflicts, 1);
}

#[test]
fn an_approved_beacon_review_pins_the_key_it_proved() {
    let mut sim = Sim::new(17);
    sim.add(0, keyed(0, &[], IdentityMode::Require));
    let now = sim.now();
    let hub = sim.node(0);
    // A self-certified beacon passes even in require mode, into review.
    hub.handle_discovery_datagram(
        now,
        attacker(),
        &beacon_of("jis:new:lamp", &key(5), 3, now.wall),
    );
    let waiting: Vec<String> = hub.pending_beacons().map(|b| b.beacon_id.clone()).collect();
    assert_eq!(waiting.len(), 1);
    assert!(
        hub.pins().get("jis:new:lamp").is_none(),
        "not before approval"
    );
    // A forged beacon (key it cannot prove) never reaches review.
    let mut forged =
        match PacketCodec::json().decode(&beacon_of("jis:evil:lamp", &key(6), 4, now.wall)) {
            Ok(Frame::Packet(p)) => p,
            _ => unreachable!(),
        };
    forged.purpose.push('!');
    hub.handle_discovery_datagram(now, attacker(), &encode(&forged));
    assert_eq!(hub.pending_beacons().count(), 1);
    assert_eq!(hub.stats(now).identity.bad_beacon_key, 1);

    let vouch = hub
        .approve_beacon(now, &waiting[0], Default::default())
        .expect("waiting")
        .expect("vouched");
    assert_eq!(vouch.vouched_dids, ["jis:new:lamp"]);
    assert_eq!(hub.pins().get("jis:new:lamp"), Some(&key(5).public()));
    assert_eq!(hub.pins_generation(), 1);
}

#[test]
fn a_vouch_credential_from_a_pinned_voucher_admits_an_unseen_device() {
    let mut sim = Sim::new(18);
    // Node 0 pins and trusts the voucher (node 5's key); it has never
    // heard of the lamp. Node 1 is the same in require mode.
    sim.add(0, keyed(0, &[5], IdentityMode::Prefer));
    sim.add(1, keyed(1, &[5], IdentityMode::Require));
    let now = sim.now();
    for i in 0..2 {
        sim.node(i).set_trust(now, &did(5), 0.9);
    }
    let lamp_key = key(6);
    let expires_at = |secs_from_now: i64| now.wall.as_micros() / 1_000_000 + secs_from_now;
    let credential = |voucher: &Keypair, expires: i64| {
        tibet_ping::identity::VouchCredential {
            voucher_did: did(5),
            device_did: "jis:home:lamp".into(),
            device_key: lamp_key.public(),
            factor: 0.8,
            expires,
        }
        .issue(voucher)
    };
    let mut lamp = speaker("jis:home:lamp", None, 8);
    let mut ping_with = |vouch: String| {
        let mut p = lamp.ping(
            now.wall,
            &did(0),
            "light.on",
            "evening",
            PingOptions::default(),
        );
        p.vouched_by = Some(did(5));
        p.vouch_signature = Some(vouch);
        sign_packet(&mut p, &lamp_key);
        p
    };
    let valid = credential(&key(5), expires_at(3600));
    let expired = credential(&key(5), expires_at(-1));
    let forged = credential(&key(9), expires_at(3600));

    for i in 0..2 {
        let mut p = ping_with(valid.clone());
        p.target_did = did(i);
        sign_packet(&mut p, &lamp_key);
        sim.node(i).handle_datagram(now, attacker(), &encode(&p));
        let t = sim
            .node(i)
            .poll_transmit()
            .expect("a valid vouch is answered");
        let r = decode_response(&t.payload);
        assert_eq!(r.airlock_zone, tibet_ping::AirlockZone::Groen, "node {i}");
        assert!((r.trust_score - 0.72).abs() < 1e-9, "{}", r.trust_score);
        assert_eq!(sim.node(i).stats(now).identity.vouch_credentials, 1);
    }
    let hub = sim.node(0);
    for bad in [expired, forged] {
        hub.handle_datagram(now, attacker(), &encode(&ping_with(bad)));
        assert!(
            hub.poll_transmit().is_none(),
            "an invalid vouch counts as absent"
        );
    }
    let stats = hub.stats(now);
    assert_eq!(stats.identity.vouch_credentials_absent, 2);
    assert_eq!(stats.engine.rood_dropped, 2);

    // Revoked: the same valid credential now counts as absent.
    assert!(hub.revoke_vouch_credential(&did(5), "jis:home:lamp"));
    hub.handle_datagram(now, attacker(), &encode(&ping_with(valid)));
    assert!(
        hub.poll_transmit().is_none(),
        "a revoked vouch counts as absent"
    );
    let stats = hub.stats(now);
    assert_eq!(stats.identity.vouch_credentials_absent, 3);
    assert_eq!(stats.identity.vouch_credentials, 1);
}

#[test]
fn the_uplink_is_no_way_around_the_identity_step() {
    let mut sim = Sim::new(19);
    sim.add(0, keyed(0, &[1], IdentityMode::Prefer));
    let now = sim.now();
    let hub = sim.node(0);
    hub.set_uplink_enabled(true);
    hub.set_trust(now, &did(1), 0.9);
    let mut unsigned = speaker(&did(1), None, 2);
    let spoof = unsigned.ping(
        now.wall,
        &did(0),
        "door.unlock",
        "x",
        PingOptions::default(),
    );
    hub.handle_uplink_frame(now, &encode(&spoof));
    assert!(hub.poll_uplink().is_none(), "no answer over the uplink");
    assert_eq!(hub.stats(now).identity.unsigned, 1);
    let mut owner = speaker(&did(1), Some(key(1)), 1);
    let genuine = owner.ping(
        now.wall,
        &did(0),
        "door.unlock",
        "x",
        PingOptions::default(),
    );
    hub.handle_uplink_frame(now, &encode(&genuine));
    assert!(hub.poll_uplink().is_some(), "the signed one is answered");
}

#[test]
fn signed_heartbeats_carry_route_advertisements_that_verify() {
    // A line 0 - 1 - 2 of signing nodes that pin each other and require
    // signatures: node 0 learns node 2 only from node 1's advertisement,
    // which is added to the heartbeat before it is signed (a heartbeat
    // altered after signing would be refused as a bad signature).
    let mut sim = Sim::new(21);
    for i in 0..3 {
        let pinned: Vec<usize> = (0..3).filter(|&j| j != i).collect();
        sim.add(i, keyed(i, &pinned, IdentityMode::Require));
    }
    sim.link(0, 1);
    sim.link(1, 2);
    sim.trust_all(3);
    sim.run_for(Duration::from_secs(95));
    let now = sim.now();
    let r = sim.node(0).routes().get(now.mono, &did(2)).cloned();
    assert_eq!(r.map(|r| (r.next_hop, r.hops)), Some((addr(1), 2)));
    for i in 0..3 {
        let id = sim.node(i).stats(now).identity;
        assert_eq!(id.bad_signature, 0, "node {i}: {id:?}");
        assert_eq!(id.unsigned + id.wrong_key + id.unpinned_in_require, 0);
        assert!(id.verified > 0);
    }
}
