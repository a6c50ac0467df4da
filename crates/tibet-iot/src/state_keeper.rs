//! Keeping the state store's copies of what changes on the receive path
//! current: the reviews still waiting and the pins learnt on first use.
//! The driver task never writes the store; these change while it handles
//! packets, so they are copied from the engine by the state directory's
//! keeper thread (every [`HORIZON_INTERVAL`](crate::HORIZON_INTERVAL)),
//! by every operator decision (in the decision's own transaction), and at
//! a clean stop (docs/OPERATIONS.md, "Config and state store").

use std::collections::HashMap;

use tibet_iot_proto::{Engine, Now};
use tibet_ping::identity::PublicKey;

use crate::state_store::{Decision, StateStore, StoreError};

/// The reason recorded with a pin found in the engine that no operator
/// decision recorded (an auto-vouch rule's trust on first use).
const LEARNT: &str = "learnt on first use";

/// An open store and what of the engine it holds a copy of.
#[derive(Debug)]
pub(crate) struct KeptStore {
    store: StateStore,
    copied: Copied,
}

/// The engine's counters when the store's copies were last written, and
/// the pins then.
#[derive(Clone, Debug)]
struct Copied {
    reviews_changes: u64,
    pins_generation: u64,
    pins: HashMap<String, PublicKey>,
}

impl Copied {
    fn of(engine: &Engine) -> Self {
        Copied {
            reviews_changes: engine.reviews_changes(),
            pins_generation: engine.pins_generation(),
            pins: engine
                .pins()
                .iter()
                .map(|(did, key)| (did.to_owned(), *key))
                .collect(),
        }
    }
}

impl KeptStore {
    /// `store`, just restored into `engine`: what the engine holds now is
    /// what the store holds (the configured pins are the configuration's,
    /// never copied).
    pub(crate) fn new(store: StateStore, engine: &Engine) -> Self {
        KeptStore {
            store,
            copied: Copied::of(engine),
        }
    }

    /// What changed in `engine` since the last copy, as decisions to write
    /// (the reviews as a whole, and each pin no decision recorded); taken
    /// with the engine locked, written with it unlocked ([`KeptStore::write`]).
    pub(crate) fn changes(&self, engine: &Engine, now: Now) -> Changes {
        let reviews = engine.reviews_changes() != self.copied.reviews_changes;
        let pins = engine.pins_generation() != self.copied.pins_generation;
        if !reviews && !pins {
            return Changes::default();
        }
        let mut decisions = Vec::new();
        if reviews {
            decisions.push(Decision::Reviews(engine.waiting_reviews(now)));
        }
        let next = Copied::of(engine);
        if pins {
            for (did, key) in &next.pins {
                if self.copied.pins.get(did) != Some(key) {
                    decisions.push(crate::decision_records::record_pin(did, key, false, LEARNT));
                }
            }
        }
        Changes {
            decisions,
            next: Some(next),
        }
    }

    /// Writes `changes` and then `decisions` in one transaction (a decision
    /// wins over a copied pin of the same DID: it says why the pin was
    /// made). Nothing to write, nothing written.
    pub(crate) fn write(
        &mut self,
        changes: Changes,
        decisions: Vec<Decision>,
    ) -> Result<(), StoreError> {
        let Changes {
            decisions: mut all,
            next,
        } = changes;
        if all.is_empty() && decisions.is_empty() {
            return Ok(());
        }
        all.extend(decisions);
        self.store.record(&all)?;
        // Only once written: a failed write is tried again at the next tick.
        if let Some(next) = next {
            self.copied = next;
        }
        Ok(())
    }
}

/// What [`KeptStore::changes`] found.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    decisions: Vec<Decision>,
    next: Option<Copied>,
}
