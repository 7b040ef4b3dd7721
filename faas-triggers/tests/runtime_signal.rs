//! `shutdown_on_signal`: a real SIGTERM to this test process stops the
//! runtime gracefully. Alone in its test binary, so the signal reaches no
//! other test.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use common::{PATIENCE, TestClient, eventually};
use faas_core::{FunctionDefinition, Registry};
use faas_triggers::{Runtime, RuntimeConfig};
use tokio::sync::Semaphore;

#[tokio::test]
async fn sigterm_drains_and_returns() {
    let gate = Arc::new(Semaphore::new(0));
    let entered = Arc::new(AtomicUsize::new(0));
    let held = {
        let gate = Arc::clone(&gate);
        let entered = Arc::clone(&entered);
        move |body: Bytes| {
            let gate = Arc::clone(&gate);
            let entered = Arc::clone(&entered);
            async move {
                entered.fetch_add(1, Ordering::SeqCst);
                let _permit = gate.acquire().await.expect("gate open");
                body
            }
        }
    };
    let registry = Registry::from([FunctionDefinition::from_handler("held", held)]);
    let config = RuntimeConfig::from_vars([("POD_IP", "127.0.0.1"), ("PORT", "0")]).unwrap();
    let runtime = Runtime::new(registry, config)
        .bind()
        .await
        .unwrap()
        .shutdown_on_signal();
    let addr = runtime.local_addr().unwrap();
    let client = TestClient::new(addr);
    let task = tokio::spawn(runtime.run());

    // Once it answers, its signal handlers are installed.
    assert_eq!(client.get("/_/health").await.status, 200);
    let call = {
        let client = client.clone();
        tokio::spawn(async move { client.post("/", "text/plain", "in flight").await })
    };
    eventually("the call to be running", || {
        entered.load(Ordering::SeqCst) == 1
    })
    .await;

    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    // The call in flight still completes; then the runtime returns.
    eventually("the shutdown to start", || {
        task.is_finished() || gate.available_permits() == 0
    })
    .await;
    gate.add_permits(1);
    let answer = call.await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "in flight");
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the runtime stops on SIGTERM")
        .unwrap()
        .expect("the runtime stopped cleanly");
}
