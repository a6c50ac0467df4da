//! The hostile-LAN attacks that reach the engine, one test per row of the
//! table in docs/SECURITY.md, each asserting the bound: bytes out per byte
//! in, entries held, records made, and trusted pings still answered.
//!
//! Deterministic: one engine driven with a virtual clock, input from any
//! source address (spoofed sources need no raw sockets here; the engine
//! takes the address it is given, as it takes the kernel's).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use tibet_iot_proto::{
    AuditRecord, Engine, MonoTime, Now, TRANSPORT_PORT_KEY, Transmit, TransportConfig,
};
use tibet_ping::{
    Announcement, AutoVouchRule, JsonMap, PacketCodec, PingNode, PingNodeConfig, PingOptions,
    PingPacket, RoutingMode, Timestamp,
};

const WALL0: i64 = 1_800_000_000;
const NODE: &str = "jis:adv:node";
const FRIEND: &str = "jis:adv:friend";

fn ip(a: u8, b: u8, c: u8) -> IpAddr {
    IpAddr::from([10, a, b, c])
}

/// The `i`-th forged source address (distinct for i below 14,750,000).
fn forged(i: u32) -> SocketAddr {
    SocketAddr::new(
        ip(
            20 + (i / 62_500) as u8,
            (i / 250 % 250) as u8,
            (i % 250) as u8,
        ),
        40000,
    )
}

/// One engine under attack, with byte accounting per address.
struct Rig {
    e: Engine,
    mono: MonoTime,
    bytes_in: HashMap<IpAddr, u64>,
    bytes_out: HashMap<IpAddr, u64>,
    out: Vec<Transmit>,
    audit: Vec<AuditRecord>,
    codec: PacketCodec,
}

impl Rig {
    fn new(config: TransportConfig) -> Rig {
        let mut e = Engine::new(NODE, config, 7);
        let mono = MonoTime::from_secs(1000);
        e.set_audit_enabled(true);
        e.set_events_enabled(false);
        let mut rig = Rig {
            e,
            mono,
            bytes_in: HashMap::new(),
            bytes_out: HashMap::new(),
            out: Vec::new(),
            audit: Vec::new(),
            codec: PacketCodec::json(),
        };
        let now = rig.now();
        rig.e.start(now);
        rig.e.set_trust(now, FRIEND, 0.9);
        rig.drain();
        rig.audit.clear();
        rig
    }

    fn config() -> TransportConfig {
        TransportConfig {
            discovery_enabled: false,
            ..TransportConfig::default()
        }
    }

    fn now(&self) -> Now {
        Now::new(
            self.mono,
            Timestamp::from_secs(WALL0) + self.mono.saturating_duration_since(MonoTime::ZERO),
        )
    }

    /// Runs timers up to `d` later, in steps of at most one second.
    fn advance(&mut self, d: Duration) {
        let end = self.mono + d;
        while self.mono < end {
            let next = self.e.poll_timeout().unwrap_or(end).min(end);
            self.mono = next.max(self.mono).min(end);
            let now = self.now();
            if self.e.poll_timeout().is_some_and(|t| t <= now.mono) {
                self.e.handle_timeout(now);
            }
            self.drain();
            if next >= end {
                break;
            }
        }
        self.mono = end;
    }

    fn feed(&mut self, from: SocketAddr, bytes: &[u8]) {
        *self.bytes_in.entry(from.ip()).or_default() += bytes.len() as u64;
        let now = self.now();
        self.e.handle_datagram(now, from, bytes);
        self.drain();
    }

    fn feed_discovery(&mut self, from: SocketAddr, bytes: &[u8]) {
        *self.bytes_in.entry(from.ip()).or_default() += bytes.len() as u64;
        let now = self.now();
        self.e.handle_discovery_datagram(now, from, bytes);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(t) = self.e.poll_transmit() {
            *self.bytes_out.entry(t.destination.ip()).or_default() += t.payload.len() as u64;
            self.out.push(t);
        }
        while let Some(r) = self.e.poll_audit() {
            self.audit.push(r);
        }
    }

    fn inn(&self, ip: IpAddr) -> u64 {
        self.bytes_in.get(&ip).copied().unwrap_or(0)
    }

    fn outt(&self, ip: IpAddr) -> u64 {
        self.bytes_out.get(&ip).copied().unwrap_or(0)
    }

    fn sent_to(&self, a: SocketAddr) -> usize {
        self.out.iter().filter(|t| t.destination == a).count()
    }

    fn encode(&self, p: &PingPacket) -> Vec<u8> {
        self.codec.encode_packet(p).unwrap()
    }
}

/// A device (honest or not) that makes packets.
fn device(did: &str, seed: u64) -> PingNode {
    PingNode::new(
        did,
        PingNodeConfig::default(),
        Box::new(StdRng::seed_from_u64(seed)),
    )
}

fn mesh(payload: JsonMap) -> PingOptions {
    PingOptions {
        routing_mode: RoutingMode::Mesh,
        payload,
        ..PingOptions::default()
    }
}

fn beacon(dev: &mut PingNode, now: Now, port: u16) -> PingPacket {
    let mut p = dev.discover(
        now.wall,
        &Announcement {
            device_type: Some("sensor".into()),
            ..Announcement::default()
        },
    );
    p.payload.insert(TRANSPORT_PORT_KEY.to_owned(), port.into());
    p
}

/// A trusted neighbour pings the node `n` times; returns how many were
/// answered.
fn trusted_pings_answered(rig: &mut Rig, friend: &mut PingNode, n: usize) -> usize {
    let from = SocketAddr::new(ip(0, 0, 2), 7150);
    let before = rig.sent_to(from);
    for _ in 0..n {
        let p = friend.ping(
            rig.now().wall,
            NODE,
            "read",
            "status",
            PingOptions::default(),
        );
        let bytes = rig.encode(&p);
        rig.feed(from, &bytes);
    }
    rig.sent_to(from) - before
}

// Row 1: spoofed beacons introduce peers at a victim's address; a mesh ping
// to an unknown target would go to each.
#[test]
fn row1_spoofed_beacons_make_no_amplification_toward_the_victim() {
    let mut cfg = Rig::config();
    cfg.guard.beacon_burst = 10_000.0; // let every beacon in: test the credit
    let mut rig = Rig::new(cfg);
    let victim = ip(9, 9, 9);
    let attacker = SocketAddr::new(ip(6, 6, 6), 40000);
    for i in 0..256 {
        let mut dev = device(&format!("jis:fake:{i}"), i);
        let b = beacon(&mut dev, rig.now(), 7150);
        let bytes = rig.encode(&b);
        rig.feed_discovery(SocketAddr::new(victim, 7151), &bytes);
    }
    assert_eq!(rig.e.peers().len(), 256, "beacons may introduce peers");
    // The attacker's DID is not ROOD here (GEEL), so its mesh ping is a
    // candidate for relay; the introduced peers have proven nothing.
    let now = rig.now();
    rig.e.set_trust(now, "jis:evil:a", 0.5);
    let mut evil = device("jis:evil:a", 99);
    let p = evil.ping(now.wall, "jis:nobody", "x", "y", mesh(JsonMap::new()));
    let bytes = rig.encode(&p);
    let challenges = rig.outt(victim);
    assert!(
        challenges <= 2 * rig.inn(victim),
        "challenges within credit"
    );
    rig.feed(attacker, &bytes);
    assert_eq!(
        rig.outt(victim),
        challenges,
        "no relayed copy to an unproven peer"
    );
    assert!(rig.e.stats(rig.now()).engine.relay_unproven_skipped >= 256);
    // Heartbeats (the address challenges) over the peers' lifetime.
    rig.advance(Duration::from_secs(300));
    let (inn, out) = (rig.inn(victim), rig.outt(victim));
    assert!(
        out <= 2 * inn,
        "bytes to the victim {out} exceed twice what came from its address {inn}"
    );
    assert!(rig.outt(attacker.ip()) <= 2 * rig.inn(attacker.ip()));
}

// Row 2: large mesh datagrams with thousands of peers: one copy per hop.
#[test]
fn row2_large_untrusted_mesh_datagrams_are_relayed_within_twice_their_bytes() {
    let mut rig = Rig::new(Rig::config());
    let now = rig.now();
    for i in 0..4096usize {
        let a = SocketAddr::new(ip(1, (i / 250) as u8, (i % 250) as u8), 7150);
        rig.e.add_peer(now, &format!("jis:peer:{i}"), a);
    }
    rig.e.set_trust(now, "jis:evil:b", 0.5);
    let mut evil = device("jis:evil:b", 5);
    let attacker = SocketAddr::new(ip(6, 6, 7), 40000);
    let mut payload = JsonMap::new();
    payload.insert("blob".into(), "x".repeat(60_000).into());
    for _ in 0..20 {
        let p = evil.ping(
            rig.now().wall,
            "jis:nobody",
            "x",
            "y",
            mesh(payload.clone()),
        );
        let bytes = rig.encode(&p);
        assert!(bytes.len() > 60_000);
        rig.feed(attacker, &bytes);
    }
    let inn = rig.inn(attacker.ip());
    let out: u64 = rig.bytes_out.values().sum();
    assert!(out <= 2 * inn, "{out} bytes out for {inn} in");
    assert!(rig.out.len() <= 40, "at most two copies per datagram");
    assert!(rig.e.stats(rig.now()).guard.refused_bytes > 1_000_000);
    // A trusted sender's mesh ping still goes out.
    let mut friend = device(FRIEND, 6);
    let p = friend.ping(rig.now().wall, "jis:peer:7", "x", "y", mesh(JsonMap::new()));
    let bytes = rig.encode(&p);
    let before = rig.out.len();
    rig.feed(SocketAddr::new(ip(0, 0, 2), 7150), &bytes);
    assert_eq!(rig.out.len(), before + 1, "routed to the known peer");
}

// Row 3: one datagram from an unknown DID re-sent for 10 s.
#[test]
fn row3_a_resent_unknown_datagram_costs_one_drop_record_per_interval() {
    let mut rig = Rig::new(Rig::config());
    let mut evil = device("jis:evil:c", 8);
    let attacker = SocketAddr::new(ip(6, 6, 8), 40000);
    let p = evil.ping(rig.now().wall, NODE, "x", "y", PingOptions::default());
    let bytes = rig.encode(&p);
    let mut friend = device(FRIEND, 9);
    let mut answered = 0;
    for _ in 0..10 {
        for _ in 0..10_000 {
            rig.feed(attacker, &bytes);
        }
        answered += trusted_pings_answered(&mut rig, &mut friend, 10);
        rig.advance(Duration::from_secs(1));
    }
    rig.advance(Duration::from_secs(11));
    assert_eq!(answered, 100, "trusted pings answered throughout");
    assert_eq!(rig.outt(attacker.ip()), 0, "ROOD: silent");
    let drops: Vec<_> = rig
        .audit
        .iter()
        .filter_map(|r| match r {
            AuditRecord::Drops(d) => Some(d),
            _ => None,
        })
        .collect();
    let pings = rig
        .audit
        .iter()
        .filter(|r| matches!(r, AuditRecord::Ping { .. }))
        .count();
    assert_eq!(
        pings, 100,
        "one record per trusted ping, none per dropped one"
    );
    assert!(drops.len() <= 3, "{} drop records", drops.len());
    let total: u64 = drops
        .iter()
        .filter(|d| d.source == tibet_ping::DropSource::Addr(attacker))
        .map(|d| d.total())
        .sum();
    assert_eq!(total, 100_000, "every drop counted");
}

// Row 4: a GEEL ping's packet id re-sent with another source DID.
#[test]
fn row4_a_resend_under_another_did_never_changes_the_entry_under_review() {
    let mut rig = Rig::new(Rig::config());
    let now = rig.now();
    rig.e.set_trust(now, "jis:geel:a", 0.5);
    rig.e.set_trust(now, "jis:geel:b", 0.5);
    let mut a = device("jis:geel:a", 10);
    let p = a.ping(now.wall, NODE, "open", "door", PingOptions::default());
    rig.feed(SocketAddr::new(ip(0, 0, 3), 7150), &rig.encode(&p));
    let forged = PingPacket {
        source_did: "jis:geel:b".into(),
        intent: "unlock-all".into(),
        nonce: "another-nonce".into(),
        ..p.clone()
    };
    rig.feed(SocketAddr::new(ip(6, 6, 9), 7150), &rig.encode(&forged));
    let first = rig
        .e
        .pending()
        .find(|q| q.packet.packet_id == p.packet_id)
        .unwrap();
    assert_eq!(first.packet.source_did, "jis:geel:a");
    assert_eq!(first.packet.intent, "open");
    rig.e.approve_pending(rig.now(), &p.packet_id, Some(0.9));
    let wall = rig.now().wall;
    assert_eq!(rig.e.ping_node().trust_of(wall, "jis:geel:b").score, 0.5);
    assert_eq!(rig.e.ping_node().trust_of(wall, "jis:geel:a").score, 0.9);
}

// Row 5: invented beacons fill the beacon review queue.
#[test]
fn row5_invented_beacons_hold_bounded_reviews_that_expire_with_a_record() {
    let mut rig = Rig::new(Rig::config());
    let one = SocketAddr::new(ip(6, 7, 1), 7151);
    for i in 0..256 {
        let mut dev = device(&format!("jis:inv:{i}"), 1000 + i);
        let b = beacon(&mut dev, rig.now(), 7150);
        rig.feed_discovery(one, &rig.encode(&b));
    }
    let burst = rig.e.config().guard.beacon_burst as usize;
    assert_eq!(rig.e.ping_node().pending_beacons().count(), burst);
    assert_eq!(
        rig.e.stats(rig.now()).engine.beacons_rate_limited,
        (256 - burst) as u64
    );
    // From 256 spoofed addresses: the review queue's own bound holds.
    for i in 0..512u64 {
        let mut dev = device(&format!("jis:inv2:{i}"), 5000 + i);
        let b = beacon(&mut dev, rig.now(), 7150);
        let from = SocketAddr::new(ip(7, (i / 250) as u8, (i % 250) as u8), 7151);
        rig.feed_discovery(from, &rig.encode(&b));
    }
    let held = rig.e.ping_node().pending_beacons().count();
    assert!(held <= rig.e.ping_node().config().hitl_capacity, "{held}");
    // Nobody reviews: after the review TTL every entry is gone, each with
    // a record.
    rig.advance(rig.e.ping_node().config().review_ttl + Duration::from_secs(60));
    assert_eq!(rig.e.ping_node().pending_beacons().count(), 0);
    let expired = rig
        .audit
        .iter()
        .filter(|r| matches!(r, AuditRecord::BeaconReviewExpired { .. }))
        .count();
    assert_eq!(expired, held);
    // A new device is reviewed again.
    let mut dev = device("jis:late", 77);
    let b = beacon(&mut dev, rig.now(), 7150);
    rig.feed_discovery(SocketAddr::new(ip(0, 0, 9), 7151), &rig.encode(&b));
    assert_eq!(rig.e.ping_node().pending_beacons().count(), 1);
}

// Row 6: one beacon replayed 16,000 times.
#[test]
fn row6_one_beacon_replayed_16000_times_gives_one_vouch() {
    let mut rig = Rig::new(Rig::config());
    rig.e.add_auto_vouch_rule(AutoVouchRule::default()).unwrap();
    let mut dev = device("jis:replayed", 11);
    let b = beacon(&mut dev, rig.now(), 7150);
    let bytes = rig.encode(&b);
    for i in 0..16_000u32 {
        // From many addresses, so the per-address bucket is not what stops it.
        let from = SocketAddr::new(ip(8, (i / 250 % 250) as u8, (i % 250) as u8), 7151);
        rig.feed_discovery(from, &bytes);
    }
    assert_eq!(rig.e.ping_node().vouches().len(), 1);
}

// Row 7: an unknown sender floods unique nonces.
#[test]
fn row7_a_unique_nonce_flood_never_starves_trusted_pings() {
    let mut rig = Rig::new(Rig::config());
    let now = rig.now();
    rig.e.set_trust(now, "jis:geel:flood", 0.5);
    let mut unknown = device("jis:evil:d", 12);
    let mut geel = device("jis:geel:flood", 13);
    let mut friend = device(FRIEND, 14);
    let attacker = SocketAddr::new(ip(6, 6, 10), 40000);
    let mut answered = 0;
    for round in 0..20 {
        for _ in 0..2_500 {
            let dev = if round % 2 == 0 {
                &mut unknown
            } else {
                &mut geel
            };
            let p = dev.ping(rig.now().wall, NODE, "x", "y", PingOptions::default());
            let bytes = rig.encode(&p);
            rig.feed(attacker, &bytes);
        }
        answered += trusted_pings_answered(&mut rig, &mut friend, 25);
        rig.advance(Duration::from_millis(500));
    }
    assert_eq!(answered, 500);
    assert!(rig.outt(attacker.ip()) <= 2 * rig.inn(attacker.ip()));
}

// Row 8: 64 KB ids, DIDs and nonces.
#[test]
fn row8_oversized_fields_are_refused_before_anything_is_stored() {
    let mut rig = Rig::new(Rig::config());
    let mut evil = device("jis:evil:e", 15);
    let from = SocketAddr::new(ip(6, 6, 11), 40000);
    let long = "z".repeat(60_000);
    let base = evil.ping(rig.now().wall, NODE, "x", "y", PingOptions::default());
    let frames = [
        PingPacket {
            source_did: long.clone(),
            ..base.clone()
        },
        PingPacket {
            packet_id: long.clone(),
            ..base.clone()
        },
        PingPacket {
            nonce: long.clone(),
            ..base.clone()
        },
        PingPacket {
            target_did: long.clone(),
            routing_mode: RoutingMode::Mesh,
            ..base.clone()
        },
    ];
    for f in &frames {
        let bytes = rig.encode(f);
        rig.feed(from, &bytes);
    }
    let s = rig.e.stats(rig.now());
    assert_eq!(s.engine.decode.did_too_long, 2);
    assert_eq!(s.engine.decode.id_too_long, 1);
    assert_eq!(s.engine.decode.nonce_too_long, 1);
    assert_eq!(s.engine.malformed, 4);
    assert_eq!(s.relay.path_entries + s.relay.seen_entries, 0);
    assert_eq!(s.response_cache_entries, 0);
    assert_eq!(s.peers.tracked, 0);
    assert!(rig.out.is_empty());
}

// Row 8, the tables: bounded in bytes as well as entries, with maximal
// field lengths from a (trusted, so unlimited by buckets) sender.
#[test]
fn row8_engine_tables_are_bounded_in_bytes() {
    let mut cfg = Rig::config();
    cfg.limits.response_cache_bytes = 256 * 1024;
    cfg.limits.relay_path_bytes = 128 * 1024;
    cfg.limits.seen_cache_bytes = 64 * 1024;
    let mut rig = Rig::new(cfg);
    let now = rig.now();
    rig.e
        .add_peer(now, "jis:hop", SocketAddr::new(ip(0, 0, 5), 7150));
    let mut friend = device(FRIEND, 22);
    let from = SocketAddr::new(ip(0, 0, 2), 7150);
    for i in 0..5_000 {
        let mut p = friend.ping(rig.now().wall, NODE, "x", "y", PingOptions::default());
        p.packet_id = format!("{i:0>128}");
        p.nonce = format!("{i:n>128}");
        rig.feed(from, &rig.encode(&p));
        let mut m = friend.ping(rig.now().wall, "jis:far", "x", "y", mesh(JsonMap::new()));
        m.packet_id = format!("{i:m>128}");
        rig.feed(from, &rig.encode(&m));
    }
    let s = rig.e.stats(rig.now());
    assert_eq!(
        s.engine.pings_answered, 5_000,
        "every trusted ping answered"
    );
    assert!(
        s.response_cache_bytes <= 256 * 1024,
        "{}",
        s.response_cache_bytes
    );
    assert!(s.response_cache_entries < 5_000);
    assert!(s.relay.path_bytes <= 128 * 1024, "{}", s.relay.path_bytes);
    assert!(s.relay.seen_bytes <= 64 * 1024, "{}", s.relay.seen_bytes);
    assert!(s.relay.paths_refused > 0 && s.relay.paths_refused_bytes > 0);
}

// Row 9: tiny untrusted mesh datagrams fill the reverse-path table.
#[test]
fn row9_tiny_untrusted_mesh_datagrams_cannot_fill_the_reverse_path_table() {
    let mut rig = Rig::new(Rig::config());
    let now = rig.now();
    let hop = SocketAddr::new(ip(0, 0, 5), 7150);
    rig.e.add_peer(now, "jis:hop", hop);
    rig.e.set_trust(now, "jis:geel:m", 0.5);
    let mut geel = device("jis:geel:m", 16);
    let mut unknown = device("jis:evil:f", 17);
    let one = SocketAddr::new(ip(6, 6, 12), 40000);
    for i in 0..10_000 {
        let dev = if i % 2 == 0 { &mut geel } else { &mut unknown };
        let p = dev.ping(rig.now().wall, "jis:far", "x", "y", mesh(JsonMap::new()));
        rig.feed(one, &rig.encode(&p));
    }
    let s = rig.e.stats(rig.now());
    let burst = rig.e.config().guard.relay_burst as usize;
    assert_eq!(s.engine.relay_refused_rood, 5_000, "unknown senders: ROOD");
    assert!(s.relay.path_entries <= burst, "{}", s.relay.path_entries);
    // From 10,000 spoofed addresses: the bucket table fails closed before
    // the path table fills.
    for i in 0..10_000u32 {
        let from = forged(i);
        let p = geel.ping(rig.now().wall, "jis:far", "x", "y", mesh(JsonMap::new()));
        rig.feed(from, &rig.encode(&p));
    }
    let s = rig.e.stats(rig.now());
    assert!(s.relay.path_entries <= burst + rig.e.config().guard.bucket_keys);
    assert!(s.relay.path_entries < rig.e.config().limits.relay_paths);
    // A trusted mesh ping is still relayed.
    let mut friend = device(FRIEND, 18);
    let p = friend.ping(rig.now().wall, "jis:far", "x", "y", mesh(JsonMap::new()));
    let before = rig.sent_to(hop);
    rig.feed(SocketAddr::new(ip(0, 0, 2), 7150), &rig.encode(&p));
    assert_eq!(rig.sent_to(hop), before + 1);
}

// Row 9 with time passing, as on real sockets (crates/tibet-iot/tests/
// netns_spoof.rs): an address bucket that has refilled is forgotten, so
// forged addresses spread over time each bring a full bucket; the bucket
// per claimed DID bounds the reverse paths.
#[test]
fn row9_forged_addresses_spread_over_time_are_bounded_by_the_did_bucket() {
    let mut rig = Rig::new(Rig::config());
    let now = rig.now();
    let hop = SocketAddr::new(ip(0, 0, 5), 7150);
    rig.e.add_peer(now, "jis:hop", hop);
    rig.e.set_trust(now, "jis:geel:m", 0.5);
    let mut geel = device("jis:geel:m", 19);
    let start = rig.mono;
    for i in 0..12_000u32 {
        let from = forged(i);
        let p = geel.ping(rig.now().wall, "jis:far", "x", "y", mesh(JsonMap::new()));
        rig.feed(from, &rig.encode(&p));
        rig.advance(Duration::from_millis(1));
    }
    let secs = rig.mono.saturating_duration_since(start).as_secs_f64();
    let s = rig.e.stats(rig.now());
    let g = rig.e.config().guard.clone();
    let bound = (g.relay_burst + g.relay_rate * secs).ceil() as usize;
    assert!(
        s.relay.path_entries <= bound,
        "{} reverse paths in {secs} s, bound {bound}",
        s.relay.path_entries
    );
    assert!(s.engine.relay_rate_limited >= 12_000 - bound as u64);
    assert!(s.guard.relay_dids.refused > 0, "{:?}", s.guard.relay_dids);
    // A trusted mesh ping is still relayed.
    let mut friend = device(FRIEND, 20);
    let p = friend.ping(rig.now().wall, "jis:far", "x", "y", mesh(JsonMap::new()));
    let before = rig.sent_to(hop);
    rig.feed(SocketAddr::new(ip(0, 0, 2), 7150), &rig.encode(&p));
    assert_eq!(rig.sent_to(hop), before + 1);
}

// "Cached duplicate answers go only to the address that got the original
// answer."
#[test]
fn cached_answers_go_only_to_the_address_that_got_the_original() {
    let mut rig = Rig::new(Rig::config());
    let mut friend = device(FRIEND, 19);
    let p = friend.ping(rig.now().wall, NODE, "x", "y", PingOptions::default());
    let bytes = rig.encode(&p);
    let origin = SocketAddr::new(ip(0, 0, 2), 7150);
    let victim = SocketAddr::new(ip(9, 9, 8), 7150);
    rig.feed(origin, &bytes);
    rig.feed(origin, &bytes);
    assert_eq!(rig.sent_to(origin), 2, "a resend is answered again");
    assert_eq!(rig.out[0].payload, rig.out[1].payload, "byte for byte");
    for _ in 0..100 {
        rig.feed(victim, &bytes);
    }
    assert_eq!(
        rig.outt(victim.ip()),
        0,
        "a copy from elsewhere is a replay"
    );
    assert_eq!(rig.e.stats(rig.now()).engine.replays_dropped, 100);
}

// Introduced peers get relayed traffic only once an answer to our
// heartbeat came back from their address.
#[test]
fn an_introduced_peer_gets_relayed_traffic_after_it_answers_a_challenge() {
    let mut rig = Rig::new(Rig::config());
    let now = rig.now();
    let peer_addr = SocketAddr::new(ip(0, 0, 6), 7150);
    let mut peer = device("jis:new", 20);
    let b = beacon(&mut peer, now, 7150);
    rig.feed_discovery(SocketAddr::new(peer_addr.ip(), 7151), &rig.encode(&b));
    let mut friend = device(FRIEND, 21);
    let relay = |rig: &mut Rig, friend: &mut PingNode| {
        let p = friend.ping(rig.now().wall, "jis:new", "x", "y", mesh(JsonMap::new()));
        let bytes = rig.encode(&p);
        rig.feed(SocketAddr::new(ip(0, 0, 2), 7150), &bytes);
    };
    // The newcomer is challenged at once: a heartbeat to its address.
    assert_eq!(rig.sent_to(peer_addr), 1);
    relay(&mut rig, &mut friend);
    assert_eq!(rig.sent_to(peer_addr), 1, "unproven: not relayed to");
    let hb = rig
        .out
        .iter()
        .find(|t| t.destination == peer_addr)
        .unwrap()
        .clone();
    let tibet_ping::Frame::Packet(hb) = rig.codec.decode(&hb.payload).unwrap() else {
        panic!("a heartbeat packet");
    };
    assert_eq!(hb.ping_type, tibet_ping::PingType::Heartbeat);
    peer.set_trust(NODE, 0.9);
    let answer = peer.receive(rig.now().wall, &hb).response;
    let answer = rig.codec.encode_response(&answer).unwrap();
    // From another address first: no proof.
    rig.feed(SocketAddr::new(ip(9, 9, 7), 7150), &answer);
    relay(&mut rig, &mut friend);
    assert_eq!(rig.sent_to(peer_addr), 1, "still unproven");
    rig.feed(peer_addr, &answer);
    assert!(rig.e.peers().get(rig.now().mono, "jis:new").unwrap().proven);
    relay(&mut rig, &mut friend);
    assert_eq!(rig.sent_to(peer_addr), 2, "proven: relayed to");
}

// The drops of an unfinished interval are recorded on demand (at stop).
#[test]
fn flush_drops_records_the_unfinished_interval() {
    let mut rig = Rig::new(Rig::config());
    let mut evil = device("jis:evil:g", 23);
    let from = SocketAddr::new(ip(6, 6, 13), 40000);
    for _ in 0..5 {
        let p = evil.ping(rig.now().wall, NODE, "x", "y", PingOptions::default());
        rig.feed(from, &rig.encode(&p));
    }
    rig.feed(from, b"garbage");
    assert!(rig.audit.is_empty(), "nothing before the interval ends");
    let now = rig.now();
    rig.e.flush_drops(now);
    rig.drain();
    let [AuditRecord::Drops(d)] = rig.audit.as_slice() else {
        panic!("one drop record: {:?}", rig.audit);
    };
    assert_eq!(d.counts.get("rood"), Some(&5));
    assert_eq!(d.counts.get("malformed"), Some(&1));
}
