//! Decoding allocates in proportion to the datagram, never from a length a
//! peer merely claims. Measured with a counting global allocator; one test
//! in this binary, so no other test thread allocates meanwhile.

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tibet_ping::{DecodeError, Frame, HEADER_LEN, PacketCodec};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn frame(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![b'T', b'P', 1, flags];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Bytes requested from the allocator while decoding `datagram` (allocations
/// plus net growth by realloc), and the result.
fn measure(datagram: &[u8]) -> (usize, Result<Frame, DecodeError>) {
    let codec = PacketCodec::default();
    let region = Region::new(GLOBAL);
    let result = codec.decode(datagram);
    let s = region.change();
    let bytes = s.bytes_allocated + usize::try_from(s.bytes_reallocated.max(0)).unwrap_or(0);
    (bytes, result)
}

fn mp_str(s: &str) -> Vec<u8> {
    rmp_serde::to_vec(s).unwrap()
}

/// A response map with the four required fields, then `extra` entries.
fn response_head(extra: u8) -> Vec<u8> {
    let mut b = vec![0x80 | (4 + extra)];
    for (k, v) in [
        ("response_id", "r"),
        ("in_response_to", "p"),
        ("responder_did", "d"),
        ("decision", "accept"),
    ] {
        b.extend(mp_str(k));
        b.extend(mp_str(v));
    }
    b
}

#[test]
fn allocation_follows_the_datagram_not_the_claims() {
    // msgpack length prefixes claiming 4 billion items or bytes: without the
    // guard, serde would pre-allocate up to 1 MiB for `capabilities`.
    let huge_claims: Vec<(&str, Vec<u8>)> = vec![
        (
            "capabilities array32",
            [&[0xdd, 0xff, 0xff, 0xff, 0xff][..], &[0xa0]].concat(),
        ),
        (
            "capabilities array16",
            [&[0xdc, 0xff, 0xff][..], &[0xa0; 3]].concat(),
        ),
        (
            "payload map32",
            vec![0xdf, 0xff, 0xff, 0xff, 0xff, 0xa0, 0xc0],
        ),
        (
            "trust_score str32",
            vec![0xdb, 0xff, 0xff, 0xff, 0xff, b'x'],
        ),
    ];
    for (what, tail) in huge_claims {
        let key = match what.split(' ').next().unwrap() {
            "capabilities" => "capabilities",
            "payload" => "payload",
            _ => "trust_score",
        };
        let mut body = response_head(1);
        body.extend(mp_str(key));
        body.extend(tail);
        let datagram = frame(3, &body);
        let (bytes, result) = measure(&datagram);
        assert!(result.is_err(), "{what}: {result:?}");
        assert!(
            bytes <= 4096,
            "{what}: {bytes} bytes allocated for a {} byte datagram",
            datagram.len()
        );
    }

    // Deep nesting in both formats: refused, with little allocation.
    let mut deep = b"{\"packet_id\":\"p\",\"payload\":{\"a\":".to_vec();
    deep.extend(std::iter::repeat_n(b'[', 60_000));
    let (bytes, result) = measure(&frame(0, &deep));
    assert!(
        matches!(result, Err(DecodeError::Payload { .. })),
        "{result:?}"
    );
    assert!(bytes <= 16 * 1024, "deep JSON: {bytes} bytes");
    let mut deep = response_head(1);
    deep.extend(mp_str("payload"));
    deep.extend(std::iter::repeat_n(0x91u8, 60_000));
    deep.push(0xc0);
    let (bytes, result) = measure(&frame(3, &deep));
    assert!(matches!(result, Err(DecodeError::Payload { .. })));
    assert!(bytes <= 4096, "deep msgpack: {bytes} bytes");

    // Valid frames packed with the smallest possible items: the decoded value
    // is bigger than its wire form (a `String` is 24 bytes, an empty msgpack
    // string 1), but stays within a fixed factor of the datagram.
    let n = 20_000;
    let mut caps = response_head(1);
    caps.extend(mp_str("capabilities"));
    caps.extend([0xdc, (n >> 8) as u8, n as u8]);
    caps.extend(std::iter::repeat_n(0xa0u8, n));
    let mut json = br#"{"response_id":"r","in_response_to":"p","responder_did":"d","decision":"accept","payload":{"a":["#.to_vec();
    json.extend(std::iter::repeat_n(&b"0,"[..], 30_000).flatten());
    json.extend(br#"0]}}"#);
    let mut mp_zeros = response_head(1);
    mp_zeros.extend(mp_str("payload"));
    mp_zeros.extend([0x81, 0xa1, b'a', 0xdc, 0xea, 0x60]); // {"a": [60,000 items]}
    mp_zeros.extend(std::iter::repeat_n(0u8, 60_000));
    for (what, datagram) in [
        ("msgpack capabilities of empty strings", frame(3, &caps)),
        ("JSON payload array of zeros", frame(1, &json)),
        ("msgpack payload array of zeros", frame(3, &mp_zeros)),
    ] {
        let (bytes, result) = measure(&datagram);
        assert!(result.is_ok(), "{what}: {result:?}");
        let len = datagram.len() - HEADER_LEN;
        // A `serde_json::Value` takes 80 bytes (with `preserve_order`) for a
        // one- or two-byte wire item, and `Vec` growth doubles: a fixed
        // factor, however hostile the content (at most ~13 MiB requested
        // for a 64 KiB payload).
        assert!(
            bytes <= 200 * len + 65_536,
            "{what}: {bytes} bytes for a {len} byte payload"
        );
        println!(
            "{what}: {len} byte payload, {bytes} bytes allocated ({:.1}x)",
            bytes as f64 / len as f64
        );
    }
}
