//! What a fresh engine costs in heap: the simulator runs 10,000 of them, so
//! tables must grow with use, not be sized up front. Measured with a
//! counting global allocator; one test in this binary, so no other test
//! thread allocates meanwhile.

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tibet_iot_proto::{Engine, TransportConfig};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn a_fresh_engine_holds_little_heap() {
    let region = Region::new(GLOBAL);
    let engine = Engine::new("jis:test:fresh", TransportConfig::default(), 1);
    let s = region.change();
    let held = s.bytes_allocated as i64 - s.bytes_deallocated as i64;
    eprintln!("a fresh engine holds {held} heap bytes");
    // Its key cache alone used to reserve ~440 KB.
    assert!(held < 64 * 1024, "a fresh engine holds {held} bytes");
    drop(engine);
}
