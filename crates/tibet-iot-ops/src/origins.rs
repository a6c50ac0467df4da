//! The response topics a hub holds for senders that are not its local peers
//! (docs/FLEETS.md).
//!
//! A phone or a script may send a mesh ping through a hub without ever
//! having been the hub's live peer. When the hub publishes that ping, the
//! answer comes back on `PREFIX/response/<sender DID>`, a topic the hub holds
//! only for its local peers; so before publishing, the hub subscribes to the
//! sender's response topic for a while. [`Origins`] is that set of DIDs:
//! each expires [`ORIGIN_TTL`] after the last ping it sent, and at most
//! [`MAX_ORIGINS`] are held at once (beyond that, new senders are refused
//! and counted, and their answers are lost as before). Only pings the hub
//! relays get this far: senders it would drop (ROOD) are never relayed, and
//! untrusted ones only within their buckets, so the set holds DIDs the hub
//! was told about.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// Senders' response topics held at once, at most.
pub(crate) const MAX_ORIGINS: usize = 256;
/// How long a sender's response topic is held after its last ping: longer
/// than a request waits by default (10 s).
pub(crate) const ORIGIN_TTL: Duration = Duration::from_secs(30);

/// What [`Origins::note`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Noted {
    /// A new sender: subscribe to its response topic.
    New,
    /// Held already; its time starts again.
    Renewed,
    /// The set is full: not held.
    Refused,
}

/// Senders whose response topics are held, with when each expires.
#[derive(Debug, Default)]
pub(crate) struct Origins {
    until: HashMap<String, Instant>,
}

impl Origins {
    /// A ping from `did` is about to be published at `now`.
    pub(crate) fn note(&mut self, now: Instant, did: &str) -> Noted {
        if let Some(until) = self.until.get_mut(did) {
            *until = now + ORIGIN_TTL;
            return Noted::Renewed;
        }
        if self.until.len() >= MAX_ORIGINS {
            return Noted::Refused;
        }
        self.until.insert(did.to_owned(), now + ORIGIN_TTL);
        Noted::New
    }

    /// Lets go of `did` (its subscription could not be made).
    pub(crate) fn forget(&mut self, did: &str) {
        self.until.remove(did);
    }

    /// Whether `did`'s response topic is held.
    pub(crate) fn contains(&self, did: &str) -> bool {
        self.until.contains_key(did)
    }

    /// Forgets the senders expired at `now` and returns them (their topics
    /// are to be unsubscribed).
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<String> {
        let expired: Vec<String> = self
            .until
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(did, _)| did.clone())
            .collect();
        for did in &expired {
            self.until.remove(did);
        }
        expired
    }

    /// The senders held now.
    pub(crate) fn dids(&self) -> impl Iterator<Item = &str> {
        self.until.keys().map(String::as_str)
    }

    /// How many are held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.until.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_expire_after_their_last_ping() {
        let t0 = Instant::now();
        let mut o = Origins::default();
        assert_eq!(o.note(t0, "jis:a:phone"), Noted::New);
        assert_eq!(o.note(t0 + ORIGIN_TTL / 2, "jis:a:phone"), Noted::Renewed);
        assert!(o.expire(t0 + ORIGIN_TTL).is_empty(), "renewed");
        assert!(o.contains("jis:a:phone"));
        assert_eq!(
            o.expire(t0 + ORIGIN_TTL + ORIGIN_TTL / 2),
            vec!["jis:a:phone".to_owned()]
        );
        assert!(!o.contains("jis:a:phone"));
        assert_eq!(o.len(), 0);
        assert_eq!(o.note(t0, "jis:a:tablet"), Noted::New);
        o.forget("jis:a:tablet");
        assert_eq!(o.note(t0, "jis:a:tablet"), Noted::New, "forgotten");
    }

    #[test]
    fn at_most_max_origins_are_held_and_room_comes_back_on_expiry() {
        let t0 = Instant::now();
        let mut o = Origins::default();
        for i in 0..MAX_ORIGINS {
            assert_eq!(o.note(t0, &format!("jis:a:s{i}")), Noted::New);
        }
        assert_eq!(o.note(t0, "jis:a:late"), Noted::Refused);
        assert_eq!(o.note(t0, "jis:a:s0"), Noted::Renewed, "held ones renew");
        assert_eq!(o.len(), MAX_ORIGINS);
        assert_eq!(o.dids().count(), MAX_ORIGINS);
        assert_eq!(o.expire(t0 + ORIGIN_TTL).len(), MAX_ORIGINS);
        assert_eq!(o.note(t0 + ORIGIN_TTL, "jis:a:late"), Noted::New);
    }
}
