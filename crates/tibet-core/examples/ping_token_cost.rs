//! Makes COUNT ping tokens the way an audited listener does (straight from
//! the packet, in batches of 1,024, into a token file with group commit), to
//! count the instructions one token costs:
//!
//! ```text
//! cargo build --release -p tibet-core --example ping_token_cost
//! valgrind --tool=callgrind BIN PATH 0      # the fixed cost
//! valgrind --tool=callgrind BIN PATH 50000  # minus the above, / 50,000
//! ```
//!
//! The packet is the one `tibet-iot bench` sends (empty payload). Keep PATH
//! under `target/`.

use std::time::Instant;

use tibet_core::{NetworkBridge, PingAnswer, Provider, TokenIdGen};
use tibet_ping::{AirlockZone, PingDecision, PingPacket};

mod fixture;

use fixture::group_commit_store;

const BATCH: u64 = 1024;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: ping_token_cost PATH [COUNT]")?;
    let count: u64 = args
        .next()
        .map(|c| c.parse())
        .transpose()?
        .unwrap_or(100_000);
    let _ = std::fs::remove_file(&path);
    let provider = Provider::new("jis:bench:hub")
        .with_store(group_commit_store(&path)?)
        .with_id_gen(TokenIdGen::new(7));
    let mut bridge = NetworkBridge::new(provider);
    let packet = PingPacket::new(
        "ping_114e000000000001",
        "jis:bench:client",
        "jis:bench:hub",
        "bench.ping",
        "tibet-iot bench",
    );
    let answer = PingAnswer {
        decision: PingDecision::Accept,
        trust_score: 0.9,
        zone: AirlockZone::Groen,
    };
    let started = Instant::now();
    let mut made = 0;
    while made < count {
        bridge.begin_batch();
        for _ in 0..BATCH.min(count - made) {
            bridge.add_ping(&packet, Some(answer), Some(false))?;
            made += 1;
        }
        bridge.commit_batch()?;
    }
    bridge.provider_mut().flush()?;
    eprintln!("{count} ping tokens to {path} in {:.2?}", started.elapsed());
    Ok(())
}
