//! B8's sources: each queue trigger and a consumer written directly on the
//! same client crate with the same ack, behind one interface.

pub mod nats;
pub mod postgres;
pub mod redis;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use faas_core::{FunctionDefinition, InvocationPolicy, Registry};
use hdrhistogram::Histogram;
use tokio_util::sync::CancellationToken;

/// What a consumer does with each payload, before its ack.
pub type Handle = Arc<dyn for<'a> Fn(&'a [u8]) + Send + Sync>;

/// What B8 needs of a queue source.
#[async_trait]
pub trait Source: Send + Sync {
    /// `nats`, `redis` or `postgres`.
    fn name(&self) -> &'static str;
    /// Makes a fresh stream (table) named after `tag` and returns its name.
    async fn prepare(&self, tag: &str) -> String;
    /// Stores `payloads` in it.
    async fn publish(&self, queue: &str, payloads: Vec<Bytes>);
    /// Runs the trigger of `queue` into `registry`'s function `noop` until `done`.
    async fn run_trigger(&self, queue: &str, registry: Registry, done: Arc<Counter>);
    /// Runs the hand-written consumer of `queue`, calling `handle` per
    /// message before its ack, until `done`.
    async fn run_bare(&self, queue: &str, handle: Handle, done: Arc<Counter>);
}

/// Counts handled messages; `finished` is cancelled at the target.
#[derive(Debug)]
pub struct Counter {
    seen: AtomicU64,
    target: u64,
    /// Cancelled once the target is reached: the consumer stops.
    pub finished: CancellationToken,
}

impl Counter {
    /// A counter up to `target`.
    pub fn new(target: u64) -> Arc<Self> {
        Arc::new(Counter {
            seen: AtomicU64::new(0),
            target,
            finished: CancellationToken::new(),
        })
    }

    /// One more message.
    pub fn add(&self) {
        if self.seen.fetch_add(1, Ordering::AcqRel) + 1 == self.target {
            self.finished.cancel();
        }
    }

    /// Whether the target is reached.
    pub fn done(&self) -> bool {
        self.seen.load(Ordering::Acquire) >= self.target
    }
}

fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("b8_{tag}_{nanos}")
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
}

/// Runs one consumer (the trigger when `ours`) until `count` messages were
/// handled; `handle` sees each payload.
async fn consume(source: &dyn Source, queue: &str, ours: bool, count: u64, handle: Handle) {
    let done = Counter::new(count);
    if ours {
        let counted = Arc::clone(&done);
        let noop = move |body: Bytes| {
            handle(&body);
            counted.add();
            async {}
        };
        let registry = Registry::from([FunctionDefinition::from_handler("noop", noop)
            .with_policy(InvocationPolicy::default().with_max_in_flight(256))]);
        source.run_trigger(queue, registry, done).await;
    } else {
        let counted = Arc::clone(&done);
        let handle: Handle = Arc::new(move |payload: &[u8]| {
            handle(payload);
            counted.add();
        });
        source.run_bare(queue, handle, done).await;
    }
}

/// Messages per second through one consumer of `count` stored messages.
pub async fn throughput(source: &dyn Source, ours: bool, count: u64) -> f64 {
    let queue = source.prepare(if ours { "faas" } else { "bare" }).await;
    let payloads = (0..count)
        .map(|n| Bytes::from(format!("{{\"n\":{n}}}")))
        .collect();
    source.publish(&queue, payloads).await;
    let started = Instant::now();
    consume(source, &queue, ours, count, Arc::new(|_| {})).await;
    count as f64 / started.elapsed().as_secs_f64()
}

/// p50 and p99 in ms from publication to the handler, `count` messages
/// published at `rate` per second while one consumer runs.
pub async fn latency(source: &dyn Source, ours: bool, count: u64, rate: u64) -> (f64, f64) {
    let queue = source
        .prepare(if ours { "faas_lat" } else { "bare_lat" })
        .await;
    let histogram = Arc::new(Mutex::new(Histogram::<u64>::new(3).expect("a histogram")));
    let recorded = Arc::clone(&histogram);
    let handle: Handle = Arc::new(move |payload: &[u8]| {
        if let Some(sent) = sent_at(payload) {
            let micros = now_nanos().saturating_sub(sent) / 1_000;
            let _ = recorded
                .lock()
                .expect("not poisoned")
                .record(u64::try_from(micros).unwrap_or(u64::MAX));
        }
    });
    let consumer = consume(source, &queue, ours, count, handle);
    let publisher = async {
        // Let the consumer connect first.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut ticks = tokio::time::interval(Duration::from_secs_f64(10.0 / rate.max(1) as f64));
        let mut sent = 0;
        while sent < count {
            ticks.tick().await;
            let batch: Vec<Bytes> = (0..10.min(count - sent))
                .map(|_| Bytes::from(now_nanos().to_string()))
                .collect();
            sent += batch.len() as u64;
            source.publish(&queue, batch).await;
        }
    };
    tokio::join!(consumer, publisher);
    let histogram = histogram.lock().expect("not poisoned");
    (
        histogram.value_at_quantile(0.50) as f64 / 1_000.0,
        histogram.value_at_quantile(0.99) as f64 / 1_000.0,
    )
}

/// The publication time a latency message carries: the payload itself, or
/// the `payload` column of a row delivered as JSON.
fn sent_at(payload: &[u8]) -> Option<u128> {
    let text = std::str::from_utf8(payload).ok()?;
    text.parse().ok().or_else(|| {
        let row: serde_json::Value = serde_json::from_str(text).ok()?;
        row.get("payload")?.as_str()?.parse().ok()
    })
}

/// Runs `executor` until `done`, then shuts it down and waits for it.
async fn run_until(executor: faas_core::LocalExecutor, done: Arc<Counter>) {
    let shutdown = executor.shutdown_handle();
    let task = tokio::spawn(executor.run());
    done.finished.cancelled().await;
    shutdown.shutdown();
    let _ = task.await;
}
