//! B8: each queue trigger (NATS JetStream, Redis Streams, PostgreSQL
//! outbox) delivering to a no-op function with an ack after success,
//! against a consumer written directly on the same client crate with the
//! same ack, in alternating rounds of one run.
//!
//! Throughput: `B8_MESSAGES` messages (default 20,000; PostgreSQL a quarter
//! of it) are stored first, then consumed; messages/s from the consumer's
//! start to the last ack... to the last call. Latency: `B8_PACED` messages
//! (default 2,000) published at `B8_RATE` per second (default 1,000) while
//! the consumer runs; each carries its publication time and the handler
//! records the delay, publish to function. The servers are those `cargo
//! xtask bench` starts (the `FAAS_*_URL` variables).
//!
//! Prints one `BENCH {json}` line per figure for `cargo xtask bench`.

use faas_benches::queue::{self, Source};
use faas_benches::report::Measurement;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let rounds = env_or("B8_ROUNDS", 3);
    let messages = env_or("B8_MESSAGES", 20_000);
    let paced = env_or("B8_PACED", 2_000);
    let rate = env_or("B8_RATE", 1_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let sources: Vec<(Box<dyn Source>, u64)> = vec![
        (Box::new(queue::nats::Nats::from_env()), messages),
        (Box::new(queue::redis::Redis::from_env()), messages),
        (
            Box::new(queue::postgres::Postgres::from_env()),
            messages / 4,
        ),
    ];
    for (source, count) in sources {
        let name = source.name();
        let (mut faas, mut bare) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate which goes first, so neither always meets a warmer server.
            let order = if round % 2 == 0 {
                [true, false]
            } else {
                [false, true]
            };
            for ours in order {
                let rate = runtime.block_on(queue::throughput(&*source, ours, count));
                eprintln!(
                    "B8 {name} round {round} {}: {rate:.0} msg/s",
                    if ours { "faas" } else { "hand-written" }
                );
                if ours {
                    faas.push(rate)
                } else {
                    bare.push(rate)
                }
            }
        }
        let detail = format!(
            "{count} stored messages, no-op handler, ack after success; medians of {rounds} alternating rounds; 2 worker threads; server on the same machine"
        );
        Measurement::new(
            "B8",
            format!("{name} msg/s vs hand-written consumer"),
            median(faas),
            median(bare),
            detail,
        )
        .emit();
        let faas = runtime.block_on(queue::latency(&*source, true, paced, rate));
        let bare = runtime.block_on(queue::latency(&*source, false, paced, rate));
        let detail =
            format!("{paced} messages published at {rate}/s; baseline = the hand-written consumer");
        Measurement::new(
            "B8",
            format!("{name} publish to function p50 (ms)"),
            faas.0,
            bare.0,
            detail.clone(),
        )
        .emit();
        Measurement::new(
            "B8",
            format!("{name} publish to function p99 (ms)"),
            faas.1,
            bare.1,
            detail,
        )
        .emit();
    }
}
