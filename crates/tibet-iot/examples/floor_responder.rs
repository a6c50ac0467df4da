//! Floor responder: the least work a UDP responder on this machine can do
//! per ping, as a measuring stick for the real listener (docs/PERFORMANCE.md).
//!
//! ```text
//! cargo run --release -p tibet-iot --example floor_responder -- [--bind 127.0.0.1] [--port 0] [--did DID] [--work-ns N] [--gso]
//! ```
//!
//! It prints `listening on ADDR as DID` once bound, then answers every JSON
//! ping with a canned, valid TP response whose `in_response_to` is the
//! ping's `packet_id`. Nothing else is parsed: no trust, no airlock, no
//! replay check, no events. Datagrams are received and sent in batches
//! (`recvmmsg`/`sendmmsg` through `nix`, no `unsafe` here), one blocking
//! socket, one thread. Runs until killed. With `--gso`, answers of a batch
//! to one address with one length leave in one `sendmsg` with
//! `UDP_SEGMENT` (as `tibet-iot listen` sends them where it can): the floor
//! for a responder that segments.
//!
//! Not a product path: it answers anyone. What it costs per ping is the
//! kernel's loopback UDP path plus a copy, the floor any listener pays.
//! Dropped without answer (and counted, printed on stderr every 10 s when
//! non-zero): responses, msgpack frames, frames without a `packet_id`
//! string, frames whose answer would not fit a datagram buffer.

use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use memchr::memmem;
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};
use std::io::IoSlice;
use tibet_ping::{
    AirlockZone, FLAG_MSGPACK, FLAG_RESPONSE, HEADER_LEN, MAGIC, PacketCodec, PingDecision,
    PingResponse, Timestamp, VERSION,
};

/// Datagrams per `recvmmsg`/`sendmmsg`.
const BATCH: usize = 64;
/// Receive buffer per datagram (bigger datagrams arrive truncated and are dropped).
const BUF: usize = 4096;
/// The `in_response_to` placeholder in the canned answer.
const PLACEHOLDER: &str = "ping_floorfloorfloor";

struct Args {
    bind: String,
    port: u16,
    did: String,
    /// CPU time spent per answered ping before each batch is sent, in ns
    /// (`--work-ns`, default 0): shows how the kernel's share of a
    /// responder's cost moves when the responder itself takes longer.
    work_ns: u64,
    /// Segmented sends (`--gso`).
    gso: bool,
}

fn args() -> Args {
    let mut a = Args {
        bind: "127.0.0.1".into(),
        port: 0,
        did: "jis:bench:floor".into(),
        work_ns: 0,
        gso: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--bind" => a.bind = val(),
            "--port" => a.port = val().parse().expect("--port: a number"),
            "--did" => a.did = val(),
            "--work-ns" => a.work_ns = val().parse().expect("--work-ns: a number"),
            "--gso" => a.gso = true,
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// The canned answer, split around its `in_response_to` value.
struct Canned {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Canned {
    fn new(did: &str) -> Self {
        let response = PingResponse {
            response_id: "resp_0123456789abcdef".into(),
            in_response_to: PLACEHOLDER.into(),
            responder_did: did.into(),
            decision: PingDecision::Accept,
            payload: Default::default(),
            capabilities: Vec::new(),
            trust_score: 1.0,
            fira_breakdown: Default::default(),
            tibet_token_id: None,
            timestamp: Timestamp::now().to_iso(),
            rtt_ms: Some(0.0),
            airlock_zone: AirlockZone::Groen,
            applied_rule: None,
            signature: String::new(),
        };
        let frame = PacketCodec::json()
            .encode_response(&response)
            .expect("canned response encodes");
        let at = memmem::find(&frame, PLACEHOLDER.as_bytes()).expect("placeholder in frame");
        Canned {
            head: frame[..at].to_vec(),
            tail: frame[at + PLACEHOLDER.len()..].to_vec(),
        }
    }

    /// Writes the answer to `ping` into `out`; its length, or `None` to drop.
    fn answer(&self, ping: &[u8], out: &mut [u8]) -> Option<usize> {
        if ping.len() < HEADER_LEN
            || ping[..2] != MAGIC
            || ping[2] != VERSION
            || ping[3] & (FLAG_RESPONSE | FLAG_MSGPACK) != 0
        {
            return None;
        }
        let id = packet_id(&ping[HEADER_LEN..])?;
        let len = self.head.len() + id.len() + self.tail.len();
        let out = out.get_mut(..len)?;
        let (head, rest) = out.split_at_mut(self.head.len());
        let (mid, tail) = rest.split_at_mut(id.len());
        head.copy_from_slice(&self.head);
        mid.copy_from_slice(id);
        tail.copy_from_slice(&self.tail);
        let payload = u32::try_from(len - HEADER_LEN).ok()?;
        out[4..HEADER_LEN].copy_from_slice(&payload.to_be_bytes());
        Some(len)
    }
}

/// The raw (still JSON-escaped) bytes of the `packet_id` string value.
fn packet_id(json: &[u8]) -> Option<&[u8]> {
    const KEY: &[u8] = b"\"packet_id\":";
    let at = memmem::find(json, KEY)? + KEY.len();
    let rest = json[at..].trim_ascii_start().strip_prefix(b"\"")?;
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            b'"' => return Some(&rest[..i]),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    None
}

fn main() {
    let a = args();
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).expect("socket");
    // Room for bursts of a whole bench window (the kernel caps it at rmem_max).
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    let bind: SocketAddr = format!("{}:{}", a.bind, a.port)
        .parse()
        .expect("--bind: an IPv4 address");
    socket.bind(&bind.into()).expect("bind");
    let socket: UdpSocket = socket.into();
    println!(
        "listening on {} as {}",
        socket.local_addr().expect("local address"),
        a.did
    );
    let canned = Canned::new(&a.did);
    let fd = socket.as_raw_fd();
    let mut rx_bufs = vec![[0u8; BUF]; BATCH];
    let mut tx_bufs = vec![[0u8; BUF]; BATCH];
    let mut rx_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut tx_headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let mut received = Vec::with_capacity(BATCH);
    let mut replies: Vec<(usize, Option<SockaddrStorage>)> = Vec::with_capacity(BATCH);
    let no_cmsgs: [ControlMessage<'_>; 0] = [];
    let (mut answered, mut dropped, mut errors) = (0u64, 0u64, 0u64);
    let mut last_report = Instant::now();
    loop {
        received.clear();
        {
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> = rx_bufs
                .iter_mut()
                .map(|b| [IoSliceMut::new(&mut b[..])])
                .collect();
            match recvmmsg(
                fd,
                &mut rx_headers,
                iovs.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(results) => received.extend(results.map(|r| (r.bytes, r.address))),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => panic!("recvmmsg: {e}"),
            }
        }
        replies.clear();
        for (i, (len, from)) in received.iter().enumerate() {
            match canned.answer(&rx_bufs[i][..*len], &mut tx_bufs[replies.len()]) {
                Some(n) => replies.push((n, *from)),
                None => dropped += 1,
            }
        }
        if a.work_ns > 0 && !replies.is_empty() {
            // Spin, not sleep: the point is CPU time on this thread.
            let until = Instant::now() + Duration::from_nanos(a.work_ns * replies.len() as u64);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
        if a.gso {
            let (sent, failed) = send_segmented(fd, &replies, &tx_bufs);
            answered += sent;
            errors += failed;
        } else if !replies.is_empty() {
            let addrs: Vec<Option<SockaddrStorage>> = replies.iter().map(|r| r.1).collect();
            let slices: Vec<[IoSlice<'_>; 1]> = replies
                .iter()
                .zip(&tx_bufs)
                .map(|((n, _), b)| [IoSlice::new(&b[..*n])])
                .collect();
            match sendmmsg(
                fd,
                &mut tx_headers,
                slices.iter(),
                &addrs,
                no_cmsgs,
                MsgFlags::empty(),
            ) {
                Ok(results) => {
                    let sent = results.count();
                    answered += sent as u64;
                    errors += (replies.len() - sent) as u64;
                }
                Err(_) => errors += replies.len() as u64,
            }
        }
        if (dropped > 0 || errors > 0) && last_report.elapsed() > Duration::from_secs(10) {
            eprintln!("answered {answered}, dropped {dropped}, send errors {errors}");
            last_report = Instant::now();
        }
    }
}

/// Sends `replies` in runs of one address and one length, each run in one
/// `sendmsg` with `UDP_SEGMENT`: (answers sent, answers not sent).
fn send_segmented(
    fd: std::os::fd::RawFd,
    replies: &[(usize, Option<SockaddrStorage>)],
    bufs: &[[u8; BUF]],
) -> (u64, u64) {
    let (mut sent, mut failed) = (0u64, 0u64);
    let mut at = 0;
    while at < replies.len() {
        let (len, to) = replies[at];
        let run = replies[at..]
            .iter()
            .take(64)
            .take_while(|r| r.0 == len && r.1 == to)
            .count();
        let slices: Vec<IoSlice<'_>> = bufs[at..at + run]
            .iter()
            .map(|b| IoSlice::new(&b[..len]))
            .collect();
        let segment = len as u16;
        let cmsgs = [ControlMessage::UdpGsoSegments(&segment)];
        let cmsgs: &[ControlMessage<'_>] = if run > 1 { &cmsgs } else { &[] };
        match nix::sys::socket::sendmsg(fd, &slices, cmsgs, MsgFlags::empty(), to.as_ref()) {
            Ok(_) => sent += run as u64,
            Err(_) => failed += run as u64,
        }
        at += run;
    }
    (sent, failed)
}
