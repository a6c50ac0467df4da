//! The hash map of the crate: the standard library's with `std`, else
//! `hashbrown`'s (the same table, hashed with foldhash).
//!
//! Without `std` there is no OS randomness to seed the hasher: foldhash
//! seeds itself from addresses and a counter, which an attacker cannot read
//! over the network but which is not secret either. Every map here is
//! bounded in entries, so a flood of colliding keys costs time, not memory.

#[cfg(not(feature = "std"))]
pub(crate) use hashbrown::HashMap;
#[cfg(feature = "std")]
pub(crate) use std::collections::HashMap;
