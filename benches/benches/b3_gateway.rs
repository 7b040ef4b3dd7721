//! B3: a call through the gateway to a warm function pod, against the same
//! call straight to the pod, driven by the same load generator in alternating
//! rounds of one run.
//!
//! The "pod" is the function runtime (`faas_triggers::Runtime`) serving an
//! echo function on loopback; the gateway routes to it from a routing table
//! that names it as the function's only ready endpoint, so the figure is the
//! hop itself: reading the call, choosing the endpoint, the pooled upstream
//! connection, streaming the answer back. Each side runs on its own one-worker
//! runtime. Prints one `BENCH {json}` line per figure for `cargo xtask bench`.
//!
//! Environment: `B3_ROUNDS` (default 3), `B3_SECONDS` per round (default 5),
//! `B3_CONNECTIONS` (default 4).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use faas_benches::load::{self, LoadConfig};
use faas_benches::report::Measurement;
use faas_core::{FunctionDefinition, InvocationPolicy, Registry};
use faas_k8s::gateway::{EndpointAddress, FunctionKey, Gateway, GatewayConfig};
use faas_triggers::{Runtime, RuntimeConfig};

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

fn main() {
    let rounds = env_or("B3_ROUNDS", 3);
    let seconds = env_or("B3_SECONDS", 5);
    let connections = env_or("B3_CONNECTIONS", 4) as usize;

    let pod_rt = one_worker_runtime("b3-pod");
    let gateway_rt = one_worker_runtime("b3-gateway");
    let client_rt = one_worker_runtime("b3-client");

    let pod_addr: SocketAddr = pod_rt.block_on(async {
        let registry = Registry::new();
        registry
            .register(
                FunctionDefinition::from_handler("echo", echo)
                    .with_policy(InvocationPolicy::default().with_max_in_flight(4096)),
            )
            .expect("one registration");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the pod");
        let addr = listener.local_addr().expect("an address");
        let runtime = Runtime::new(registry, RuntimeConfig::default()).with_listener(listener);
        tokio::spawn(runtime.run());
        addr
    });

    let gateway_addr: SocketAddr = gateway_rt.block_on(async {
        let gateway = Gateway::builder(GatewayConfig::default()).build();
        gateway.routing_table().set_endpoints(
            &FunctionKey::new("default", "echo"),
            vec![EndpointAddress::new(pod_addr).with_pod("echo-0")],
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the gateway");
        let addr = listener.local_addr().expect("an address");
        tokio::spawn(gateway.serve(listener));
        addr
    });

    let config = LoadConfig {
        connections,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(seconds),
        path: "/function/echo".to_owned(),
        ..LoadConfig::default()
    };
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    let (mut direct_rps, mut through_rps) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for (name, addr, p95s, rps) in [
            ("pod", pod_addr, &mut direct, &mut direct_rps),
            ("gateway", gateway_addr, &mut through, &mut through_rps),
        ] {
            let result = client_rt
                .block_on(load::run(addr, &config))
                .expect("the load generator connects");
            assert_eq!(result.errors, 0, "{name}: every call answers 2xx");
            let p95 = result.latency_at(0.95).as_secs_f64() * 1e6;
            eprintln!(
                "round {round} {name:>8}: {:>8.0} req/s  p50 {:>7.1} us  p95 {:>7.1} us",
                result.requests_per_second(),
                result.latency_at(0.50).as_secs_f64() * 1e6,
                p95
            );
            p95s.push(p95);
            rps.push(result.requests_per_second());
        }
    }
    let (direct_p95, through_p95) = (median(direct), median(through));
    let detail = format!(
        "{connections} connections, {rounds} rounds of {seconds} s; added {:.0} us at p95 (target <= 1000 us)",
        through_p95 - direct_p95
    );
    Measurement::new(
        "B3",
        "p95 latency (us)",
        through_p95,
        direct_p95,
        detail.clone(),
    )
    .emit();
    Measurement::new(
        "B3",
        "req/s",
        median(through_rps),
        median(direct_rps),
        detail,
    )
    .emit();
}
