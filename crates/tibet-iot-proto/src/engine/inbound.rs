//! [`Inbound`]: what the engine knows of one frame while it handles it,
//! passed by value along the receive path and gone when the frame is done.

use core::net::{IpAddr, SocketAddr};

use tibet_ping::identity::Identity;

use crate::source::Source;
use crate::source_guard::SourceGuard;
use crate::time::Now;

/// The context of one inbound frame.
#[derive(Debug)]
pub(crate) struct Inbound {
    /// Where it came from.
    pub(crate) source: Source,
    /// What the identity step found (set by the engine's `admit`).
    pub(crate) identity: Identity,
    /// The trust a verified vouch credential of the packet gives its sender.
    pub(crate) credential: Option<f64>,
    /// Where the sender sits in the peer table, once looked up
    /// (`Some(None)`: not there), so it is looked up once.
    pub(crate) peer: Option<Option<usize>>,
    /// The amplification credit the frame earns, not taken yet: a trusted
    /// peer's ping at the address it proved earns none when it is answered
    /// GROEN. Anything that spends credit takes it first
    /// ([`Inbound::settle`]).
    earn: Option<(IpAddr, usize)>,
}

impl Inbound {
    /// A frame from `source`, earning `len` bytes of credit for `source`'s
    /// address (none for `None`: the uplink earns where it is admitted).
    pub(crate) fn new(source: Source, len: Option<usize>) -> Self {
        Inbound {
            source,
            identity: Identity::NotChecked,
            credential: None,
            peer: None,
            earn: len.map(|len| (source.addr().ip(), len)),
        }
    }

    /// The address the frame is named by in tables, events and records.
    pub(crate) fn from(&self) -> SocketAddr {
        self.source.addr()
    }

    /// Whether the sender proved its DID: signed by the DID's pin, or by the
    /// device key a valid vouch credential from a pinned voucher binds to
    /// it. What the `authenticated` mark of an answered ping says.
    pub(crate) fn proved_its_did(&self) -> bool {
        self.identity.is_verified() || self.credential.is_some()
    }

    /// Takes the credit the frame earns into `guard`, if not taken yet.
    pub(crate) fn settle(&mut self, guard: &mut SourceGuard, now: Now) {
        if let Some((ip, len)) = self.earn.take() {
            guard.earn(now.mono, ip, len);
        }
    }

    /// Gives up the credit the frame would earn (a trusted peer's ping
    /// answered GROEN).
    pub(crate) fn forgo_earn(&mut self) {
        self.earn = None;
    }
}
