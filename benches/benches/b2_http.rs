//! B2: the HTTP trigger serving an echo function, against a bare hyper 1.x
//! server answering the same bytes, driven by the same load generator in
//! alternating rounds of one run.
//!
//! Each server runs on its own one-worker runtime and the load generator on
//! another, so both sides get the same share of the machine. Prints one
//! `BENCH {json}` line per figure for `cargo xtask bench`.
//!
//! Environment: `B2_ROUNDS` (default 3), `B2_SECONDS` per round (default 5),
//! `B2_CONNECTIONS` (default 16).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use faas_benches::bare;
use faas_benches::load::{self, LoadConfig, LoadResult};
use faas_benches::report::Measurement;
use faas_core::{Dispatcher, FunctionDefinition, InvocationPolicy, Registry};
use faas_triggers::http::{HttpTrigger, HttpTriggerConfig};
use tokio_util::sync::CancellationToken;

async fn echo(body: Bytes) -> Bytes {
    body
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn one_worker_runtime(name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

struct Round {
    rps: f64,
    p50_us: f64,
    p99_us: f64,
}

impl From<&LoadResult> for Round {
    fn from(result: &LoadResult) -> Self {
        Round {
            rps: result.requests_per_second(),
            p50_us: result.latency_at(0.50).as_secs_f64() * 1e6,
            p99_us: result.latency_at(0.99).as_secs_f64() * 1e6,
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; this harness takes its settings from the environment.
    let rounds = env_or("B2_ROUNDS", 3);
    let seconds = env_or("B2_SECONDS", 5);
    let connections = env_or("B2_CONNECTIONS", 16) as usize;

    let bare_rt = one_worker_runtime("b2-bare");
    let faas_rt = one_worker_runtime("b2-faas");
    let client_rt = one_worker_runtime("b2-client");

    let bare_addr: SocketAddr = bare_rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the baseline");
        let addr = listener.local_addr().expect("an address");
        bare::spawn_echo(listener);
        addr
    });

    let shutdown = CancellationToken::new();
    let faas_addr: SocketAddr = faas_rt.block_on(async {
        let registry = Registry::new();
        registry
            .register(
                FunctionDefinition::from_handler("echo", echo)
                    .with_policy(InvocationPolicy::default().with_max_in_flight(4096)),
            )
            .expect("one registration");
        let trigger = HttpTrigger::bind(HttpTriggerConfig::new(([127, 0, 0, 1], 0).into()))
            .await
            .expect("bind the HTTP trigger");
        let addr = trigger.local_addr().expect("an address");
        let dispatcher = Dispatcher::new(registry);
        let token = shutdown.clone();
        tokio::spawn(async move { trigger.serve(dispatcher, token).await });
        addr
    });

    let config = LoadConfig {
        connections,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(seconds),
        ..LoadConfig::default()
    };
    // Both servers get the same request bytes: bare hyper answers any path,
    // the trigger routes `/function/echo` to its function.
    let bare_config = LoadConfig {
        path: "/function/echo".to_owned(),
        ..config.clone()
    };
    let faas_config = bare_config.clone();

    let mut bare_rounds = Vec::new();
    let mut faas_rounds = Vec::new();
    for round in 0..rounds {
        for (name, addr, config, into) in [
            ("bare hyper", bare_addr, &bare_config, &mut bare_rounds),
            ("faas http", faas_addr, &faas_config, &mut faas_rounds),
        ] {
            let result = client_rt
                .block_on(load::run(addr, config))
                .expect("the load generator connects");
            let measured = Round::from(&result);
            eprintln!(
                "round {round} {name:>10}: {:>9.0} req/s  p50 {:>7.1} us  p99 {:>7.1} us  errors {}",
                measured.rps, measured.p50_us, measured.p99_us, result.errors
            );
            assert_eq!(result.errors, 0, "{name} answered with errors");
            into.push(measured);
        }
    }
    shutdown.cancel();

    let detail = format!(
        "echo of a 16-byte JSON body POSTed to /function/echo, {connections} keep-alive HTTP/1.1 connections, {rounds} alternating rounds of {seconds}s, medians; server and client on one worker thread each"
    );
    let pick = |rounds: &[Round], f: fn(&Round) -> f64| median(rounds.iter().map(f).collect());
    let rps = (pick(&faas_rounds, |r| r.rps), pick(&bare_rounds, |r| r.rps));
    let p50 = (
        pick(&faas_rounds, |r| r.p50_us),
        pick(&bare_rounds, |r| r.p50_us),
    );
    let p99 = (
        pick(&faas_rounds, |r| r.p99_us),
        pick(&bare_rounds, |r| r.p99_us),
    );
    Measurement::new("B2", "req/s", rps.0, rps.1, detail.clone()).emit();
    Measurement::new("B2", "p50 latency (us)", p50.0, p50.1, detail.clone()).emit();
    Measurement::new("B2", "p99 latency (us)", p99.0, p99.1, detail).emit();
}
