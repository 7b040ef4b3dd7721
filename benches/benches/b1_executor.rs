//! B1: the local executor's warm invoke of an echo function, against a direct
//! `.await` of the same `async fn` and against a tokio spawn + oneshot, all in
//! one run on the same runtime.
//!
//! `cargo xtask bench` reads criterion's medians from `target/criterion/B1`
//! and reports the time the executor adds.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use faas_core::{
    Function, FunctionDefinition, Invocation, InvocationPolicy, LocalExecutor, Registry, handler_fn,
};

async fn echo(body: Bytes) -> Bytes {
    body
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn b1(c: &mut Criterion) {
    let rt = runtime();
    let payload = Bytes::from_static(br#"{"name":"bench"}"#);
    let mut group = c.benchmark_group("B1");

    group.bench_function("direct_await", |b| {
        b.to_async(&rt)
            .iter(|| async { black_box(echo(black_box(payload.clone())).await) })
    });

    group.bench_function("spawn_oneshot", |b| {
        b.to_async(&rt).iter(|| async {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let body = black_box(payload.clone());
            tokio::spawn(async move {
                let _ = tx.send(echo(body).await);
            });
            black_box(rx.await.expect("the task answers"))
        })
    });

    let function = handler_fn(echo);
    group.bench_function("function_call", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                function
                    .call(Invocation::new(black_box(payload.clone())))
                    .await
                    .expect("echo answers"),
            )
        })
    });

    let registry = Registry::new();
    registry
        .register(
            FunctionDefinition::from_handler("echo", echo)
                .with_policy(InvocationPolicy::default().with_max_in_flight(1024)),
        )
        .expect("one registration");
    let executor = LocalExecutor::builder(registry).build();
    group.bench_function("executor_invoke", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(
                executor
                    .invoke("echo", Invocation::new(black_box(payload.clone())))
                    .await
                    .expect("echo answers"),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, b1);
criterion_main!(benches);
