//! The hash map of the crate: the standard library's with `std`, else
//! `hashbrown`'s (the same table, hashed with foldhash).
//!
//! Without `std` there is no OS randomness to seed the hasher: foldhash
//! seeds itself from the addresses of a stack slot, a function and a static,
//! which on a device without address randomisation are the same on every
//! boot of the same firmware, so an attacker who has the image can predict
//! them. Every map here is bounded in entries, so a flood of colliding keys
//! costs time, not memory (docs/ARCHITECTURE.md, "A core without std").

#[cfg(not(feature = "std"))]
pub(crate) use hashbrown::HashMap;
#[cfg(feature = "std")]
pub(crate) use std::collections::HashMap;
