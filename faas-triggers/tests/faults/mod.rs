//! The fault run every queue source passes: 10,000 messages while the
//! consumer process is killed with SIGKILL mid-batch and the broker is
//! restarted, none lost, duplicates counted.
//!
//! A fault test is a test binary without the libtest harness: run plainly
//! it orchestrates (a private server it can restart, the messages, two
//! consumer processes); run with `FAAS_FAULT_ROLE=consumer` it is the
//! consumer, a host whose function appends each event id to a file before
//! the message is acknowledged.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faas_core::{
    FunctionDefinition, InvocationPolicy, LocalExecutor, Registry, RetryPolicy, Trigger,
};

use crate::events::process::ServerProcess;

/// Messages in a run.
pub const MESSAGES: usize = 10_000;

/// The whole run's bound; never a timing assertion.
const PATIENCE: Duration = Duration::from_secs(300);

/// What differs between the queue sources.
pub trait FaultSource {
    /// `nats`, `redis`, ...
    fn name(&self) -> &'static str;
    /// Starts a private server with its data in `dir`.
    fn start_server(&self, dir: &Path) -> ServerProcess;
    /// The URL of that server.
    fn url(&self, server: &ServerProcess) -> String;
    /// Makes the stream (or table) and fills it with `count` messages,
    /// each with a distinct payload.
    fn fill(&self, url: &str, count: usize);
    /// The trigger a consumer process runs.
    fn trigger(
        &self,
        url: &str,
        consumer: &str,
    ) -> Box<dyn FnOnce(LocalExecutorBuilderHook) -> LocalExecutor>;
}

/// Adds a trigger to a builder (a trigger's type differs per source).
pub type LocalExecutorBuilderHook = faas_core::LocalExecutorBuilder;

/// A trigger as a builder step.
pub fn with_trigger(
    trigger: impl Trigger,
) -> Box<dyn FnOnce(LocalExecutorBuilderHook) -> LocalExecutor> {
    Box::new(move |builder| builder.trigger(trigger).build())
}

/// The entry point of a fault test binary.
pub fn main_for(source: &dyn FaultSource) {
    if std::env::var("FAAS_FAULT_ROLE").as_deref() == Ok("consumer") {
        consume(source);
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--list") {
        println!("faults: test");
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|arg| !arg.starts_with('-')).collect();
    if !filters.is_empty()
        && !filters
            .iter()
            .any(|filter| "faults".contains(filter.as_str()))
    {
        println!(
            "\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out\n"
        );
        return;
    }
    println!("\nrunning 1 test");
    let started = Instant::now();
    let report = orchestrate(source);
    println!(
        "{} faults: {} messages, {} lost, {} duplicate calls ({} messages called more than once); \
         consumer SIGKILLed at {} effects, broker restarted at {}; {:.1} s",
        source.name(),
        MESSAGES,
        report.lost,
        report.duplicates,
        report.repeated,
        report.killed_at,
        report.restarted_at,
        started.elapsed().as_secs_f64()
    );
    assert_eq!(report.lost, 0, "messages lost");
    println!(
        "test faults ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n"
    );
}

struct Report {
    lost: usize,
    duplicates: usize,
    repeated: usize,
    killed_at: usize,
    restarted_at: usize,
}

fn orchestrate(source: &dyn FaultSource) -> Report {
    let dir = crate::events::process::scratch_dir(&format!(
        "{}-faults-{}",
        source.name(),
        std::process::id()
    ));
    let mut server = source.start_server(&dir.join("server"));
    let url = source.url(&server);
    source.fill(&url, MESSAGES);
    let effects = dir.join("effects");
    std::fs::write(&effects, b"").unwrap();
    let deadline = Instant::now() + PATIENCE;

    let mut first = spawn_consumer(&url, &effects, "first");
    let killed_at = wait_for_effects(&effects, MESSAGES / 4, deadline, &mut first);
    first.kill().expect("SIGKILL the first consumer");
    first.wait().unwrap();

    let mut second = spawn_consumer(&url, &effects, "second");
    let restarted_at = wait_for_effects(&effects, MESSAGES / 2, deadline, &mut second);
    server.restart();

    loop {
        let seen = read_effects(&effects);
        if seen.len() >= MESSAGES || Instant::now() > deadline {
            break;
        }
        if let Some(status) = second.try_wait().unwrap() {
            panic!("the second consumer exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // A graceful stop: SIGTERM, the host drains.
    let pid = nix::unistd::Pid::from_raw(second.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    second.wait().unwrap();
    server.stop();

    let seen = read_effects(&effects);
    let expected: Vec<String> = (0..MESSAGES).map(|n| format!("m{n}")).collect();
    let lost = expected
        .iter()
        .filter(|payload| !seen.contains_key(*payload))
        .count();
    let duplicates = seen.values().map(|count| count - 1).sum();
    let repeated = seen.values().filter(|count| **count > 1).count();
    if lost == 0 {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Report {
        lost,
        duplicates,
        repeated,
        killed_at,
        restarted_at,
    }
}

fn spawn_consumer(url: &str, effects: &Path, name: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .env("FAAS_FAULT_ROLE", "consumer")
        .env("FAAS_FAULT_URL", url)
        .env("FAAS_FAULT_EFFECTS", effects)
        .env("FAAS_FAULT_CONSUMER", name)
        .spawn()
        .expect("start a consumer process")
}

/// Waits until the effects hold `count` lines; returns how many there were.
fn wait_for_effects(
    effects: &Path,
    count: usize,
    deadline: Instant,
    consumer: &mut Child,
) -> usize {
    loop {
        let lines = std::fs::read(effects)
            .unwrap()
            .iter()
            .filter(|b| **b == b'\n')
            .count();
        if lines >= count {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "only {lines} effects before the deadline"
        );
        if let Some(status) = consumer.try_wait().unwrap() {
            panic!("a consumer exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Calls per message payload.
fn read_effects(effects: &Path) -> HashMap<String, usize> {
    let text = std::fs::read_to_string(effects).unwrap();
    let mut seen = HashMap::new();
    for line in text.lines() {
        *seen.entry(line.to_owned()).or_insert(0) += 1;
    }
    seen
}

/// The consumer process: the source's trigger, a function that records the
/// message's payload and then succeeds, until SIGTERM (or SIGKILL).
fn consume(source: &dyn FaultSource) {
    let url = std::env::var("FAAS_FAULT_URL").unwrap();
    let effects = PathBuf::from(std::env::var("FAAS_FAULT_EFFECTS").unwrap());
    let consumer = std::env::var("FAAS_FAULT_CONSUMER").unwrap();
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&effects)
        .unwrap();
    let file = Arc::new(Mutex::new(file));
    let record = move |body: bytes::Bytes| {
        let file = Arc::clone(&file);
        async move {
            // Some work, so the kill and the restart land mid-stream.
            tokio::time::sleep(Duration::from_millis(3)).await;
            // A row arrives as JSON with its payload column; a message as the payload.
            let payload = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|row| row.get("payload")?.as_str().map(str::to_owned))
                .map_or_else(|| body.to_vec(), String::into_bytes);
            let mut line = payload;
            line.push(b'\n');
            file.lock().unwrap().write_all(&line).unwrap();
            "recorded"
        }
    };
    let policy = InvocationPolicy::default()
        .with_max_in_flight(32)
        .with_retry(RetryPolicy::new(100));
    let registry =
        Registry::from([FunctionDefinition::from_handler("record", record).with_policy(policy)]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let build = source.trigger(&url, &consumer);
    runtime.block_on(async move {
        let executor =
            build(LocalExecutor::builder(registry).shutdown_grace(Duration::from_secs(20)))
                .shutdown_on_signal();
        executor
            .run()
            .await
            .expect("the consumer runs until stopped");
    });
}
