//! The replay check at a busy hub's steady state: a tracker with the
//! default 30-s window that holds about `live` unexpired nonces while new
//! ones arrive and old ones expire at the same rate (`live` / 30 pings per
//! second of virtual time). Each iteration checks one fresh nonce.
//!
//! `cargo bench -p tibet-ping --bench nonce -- --warm-up-time 1 --measurement-time 3`

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use tibet_ping::{NonceTracker, Timestamp};

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("nonce");
    for live in [10_000u64, 1_000_000, 3_000_000] {
        let window = Duration::from_secs(30);
        let step = window / live as u32;
        let mut tracker = NonceTracker::new(window, Duration::from_secs(5), 3_200_000);
        let mut now = Timestamp::from_secs(1_790_000_000);
        let mut i = 0u64;
        let mut next = |tracker: &mut NonceTracker| {
            now = now + step;
            i += 1;
            let nonce = format!("{i:032x}");
            tracker.check_at(now, black_box(&nonce), Some(now))
        };
        // Fill to the steady state: as many arrive as expire.
        for _ in 0..live + live / 2 {
            next(&mut tracker).expect("fresh");
        }
        group.bench_function(format!("check_fresh_{live}_live"), |b| {
            b.iter(|| next(&mut tracker).expect("fresh"))
        });
        println!("{live}: {} tracked", tracker.tracked());
    }
    group.finish();
}

criterion_group!(benches, bench);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
