//! CoAP-like retransmission of requests: an initial timeout with jitter,
//! doubled after every try, a bounded number of tries.

use core::time::Duration;

use rand::Rng;

/// When to resend a request that got no answer yet.
///
/// The first resend happens after `initial_timeout` times a random factor in
/// `[1, random_factor]`; every later wait doubles. At most `max_retransmits`
/// resends are made, all within the request's overall timeout. The resent
/// datagram is byte-identical (same packet id and nonce), so the receiver
/// answers it from its response cache instead of calling it a replay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetransmitPolicy {
    /// Number of resends; 0 turns retransmission off.
    pub max_retransmits: u32,
    /// Wait before the first resend (CoAP's ACK_TIMEOUT).
    pub initial_timeout: Duration,
    /// Upper bound of the jitter factor applied to the first wait (>= 1).
    pub random_factor: f64,
}

impl Default for RetransmitPolicy {
    /// [`RetransmitPolicy::OFF`].
    fn default() -> Self {
        RetransmitPolicy::OFF
    }
}

impl RetransmitPolicy {
    /// No resends (CoAP's 2 s / 1.5 are kept for when it is turned on). The
    /// default.
    pub const OFF: RetransmitPolicy = RetransmitPolicy {
        max_retransmits: 0,
        initial_timeout: Duration::from_secs(2),
        random_factor: 1.5,
    };

    /// CoAP's defaults: 4 resends, 2 s initial timeout, factor 1.5.
    pub fn coap() -> Self {
        RetransmitPolicy {
            max_retransmits: 4,
            ..RetransmitPolicy::OFF
        }
    }

    /// Whether any resend will be made.
    pub fn enabled(&self) -> bool {
        self.max_retransmits > 0
    }

    /// The wait before the first resend, jitter drawn from `rng`.
    pub fn first_wait(&self, rng: &mut (impl Rng + ?Sized)) -> Duration {
        let factor = if self.random_factor > 1.0 && self.random_factor.is_finite() {
            rng.gen_range(1.0..=self.random_factor)
        } else {
            1.0
        };
        // mul_f64 panics on overflow; a huge timeout simply stays as it is.
        Duration::try_from_secs_f64(self.initial_timeout.as_secs_f64() * factor)
            .unwrap_or(self.initial_timeout)
    }
}

/// Retransmission state of one request.
#[derive(Clone, Debug)]
pub(crate) struct RetransmitState {
    remaining: u32,
    wait: Duration,
}

impl RetransmitState {
    pub(crate) fn new(policy: &RetransmitPolicy, rng: &mut (impl Rng + ?Sized)) -> Option<Self> {
        policy.enabled().then(|| RetransmitState {
            remaining: policy.max_retransmits,
            wait: policy.first_wait(rng),
        })
    }

    /// The wait until the next resend.
    pub(crate) fn wait(&self) -> Duration {
        self.wait
    }

    /// Records a resend; returns the wait before the following one, if any.
    pub(crate) fn on_resend(&mut self) -> Option<Duration> {
        self.remaining = self.remaining.saturating_sub(1);
        self.wait = self.wait.saturating_mul(2);
        (self.remaining > 0).then_some(self.wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn extreme_settings_do_not_panic() {
        let mut rng = StdRng::seed_from_u64(1);
        let huge = RetransmitPolicy {
            max_retransmits: u32::MAX,
            initial_timeout: Duration::MAX,
            random_factor: 1e300,
        };
        let mut st = RetransmitState::new(&huge, &mut rng).unwrap();
        assert_eq!(st.wait(), Duration::MAX);
        assert_eq!(st.on_resend(), Some(Duration::MAX));
        let nan = RetransmitPolicy {
            random_factor: f64::NAN,
            ..RetransmitPolicy::coap()
        };
        assert_eq!(nan.first_wait(&mut rng), Duration::from_secs(2));
    }

    #[test]
    fn off_by_default() {
        let mut rng = StdRng::seed_from_u64(1);
        assert!(RetransmitState::new(&RetransmitPolicy::OFF, &mut rng).is_none());
        assert_eq!(RetransmitPolicy::default(), RetransmitPolicy::OFF);
    }

    #[test]
    fn doubles_with_bounded_tries_and_jitter() {
        let mut rng = StdRng::seed_from_u64(1);
        let policy = RetransmitPolicy {
            max_retransmits: 3,
            initial_timeout: Duration::from_millis(100),
            random_factor: 1.5,
        };
        let mut st = RetransmitState::new(&policy, &mut rng).unwrap();
        let first = st.wait();
        assert!(
            first >= Duration::from_millis(100) && first <= Duration::from_millis(150),
            "{first:?}"
        );
        assert_eq!(st.on_resend(), Some(first * 2));
        assert_eq!(st.on_resend(), Some(first * 4));
        assert_eq!(st.on_resend(), None);
        let waits: Vec<_> = (0..20).map(|_| policy.first_wait(&mut rng)).collect();
        assert!(
            waits.iter().any(|w| *w != waits[0]),
            "jitter varies the first wait"
        );
    }
}
