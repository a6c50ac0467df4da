//! The hash map of the crate: the standard library's with `std`, else
//! `hashbrown`'s (the same table; its default hasher is foldhash).
//!
//! Without `std` there is no OS randomness to seed a hasher: foldhash
//! seeds itself from addresses that, on a device without address
//! randomisation, are the same on every boot of one firmware image. Every
//! map here is bounded in entries, so a flood of colliding keys costs time,
//! not memory (docs/ARCHITECTURE.md, "A core without std").

#[cfg(not(feature = "std"))]
pub(crate) use hashbrown::{HashMap, hash_map};
#[cfg(feature = "std")]
pub(crate) use std::collections::{HashMap, hash_map};
