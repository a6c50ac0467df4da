//! [`Event`]: what a node reports, as plain data.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use core::net::SocketAddr;

use tibet_ping::{AirlockZone, BeaconDecision, PingDecision, PingResponse, PingType};

use crate::error::SendError;
use crate::requests::RequestId;

/// Something that happened in a node.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A ping addressed to this node went through the pipeline.
    PingDecided {
        /// Where it came from.
        from: SocketAddr,
        /// Its packet id.
        packet_id: String,
        /// Its sender.
        source_did: String,
        /// What it asked for.
        intent: String,
        /// Its type.
        ping_type: PingType,
        /// The zone it landed in.
        zone: AirlockZone,
        /// The decision (a response is sent for accept and pending).
        decision: PingDecision,
        /// The sender's trust as the pipeline computed it for this ping.
        trust: f64,
        /// Dropped by the replay check.
        replay: bool,
        /// Whether the sender is authenticated: signed by the key its DID is
        /// pinned to (or admitted by a vouch credential). Otherwise the DID
        /// is a claim anyone could make (docs/SECURITY.md).
        authenticated: bool,
    },
    /// A request made through this node was answered by its target.
    RequestAnswered {
        /// The request.
        id: RequestId,
        /// The answer.
        response: Box<PingResponse>,
    },
    /// A request made through this node got no answer in time.
    RequestTimedOut {
        /// The request.
        id: RequestId,
    },
    /// A request made through this node ended without an answer for a known
    /// reason: [`SendError::Unreachable`] (as soon as the ICMP error is
    /// read) or [`SendError::AnswerRefused`] (at its deadline, when the
    /// only answers were refused).
    RequestFailed {
        /// The request.
        id: RequestId,
        /// Why.
        error: SendError,
    },
    /// A beacon or an announcement was heard.
    PeerDiscovered {
        /// The announcing DID.
        did: String,
        /// Its transport address (for the reference's beacons, the source
        /// address of the beacon).
        address: SocketAddr,
        /// The beacon handler's decision (auto-vouched or waiting for review).
        decision: BeaconDecision,
        /// Announced device type.
        device_type: String,
        /// Announced capabilities.
        capabilities: Vec<String>,
    },
    /// A peer entered the peer table.
    PeerJoined {
        /// Its DID.
        did: String,
        /// Its address.
        address: SocketAddr,
    },
    /// A peer proved it receives at its address (it answered, from there,
    /// a request we sent there): it now gets relayed traffic.
    PeerProven {
        /// Its DID.
        did: String,
        /// Its address.
        address: SocketAddr,
    },
    /// A peer was pruned for idleness.
    PeerExpired {
        /// Its DID.
        did: String,
        /// Its last address.
        address: SocketAddr,
    },
    /// A mesh packet for another node was forwarded.
    PacketRelayed {
        /// Its packet id.
        packet_id: String,
        /// Its target.
        target_did: String,
        /// Its hop count after this hop.
        hop_count: u32,
        /// How many peers it was sent to.
        next_hops: usize,
    },
    /// A response to a relayed packet was sent back along the reverse path.
    ResponseRelayed {
        /// The packet answered.
        in_response_to: String,
        /// The previous hop it went to.
        to: SocketAddr,
    },
    /// A direct (not mesh) ping addressed to another DID was dropped: this
    /// node relays only mesh pings. Usually a wrong target DID, or the
    /// right address for another node.
    Misdirected {
        /// Where it came from.
        from: SocketAddr,
        /// Its packet id.
        packet_id: String,
        /// Its sender.
        source_did: String,
        /// The DID it was addressed to.
        target_did: String,
    },
    /// A packet (or an answer to our request) failed the identity check
    /// and was dropped (docs/PROTOCOL.md section 6).
    IdentityRefused {
        /// Where it came from.
        from: SocketAddr,
        /// The DID it claimed.
        did: String,
        /// Why, as counted in the identity stats (`unsigned`,
        /// `bad_signature`, `wrong_key`, `response_refused`, ...).
        reason: &'static str,
    },
    /// A datagram that was not a valid frame was dropped.
    MalformedDropped {
        /// Where it came from.
        from: SocketAddr,
        /// Why it was refused.
        reason: String,
    },
}
