//! The function runtime as a pod runs it: configured from environment
//! variables, `POST /` to the function, graceful shutdown.

mod common;

use bytes::Bytes;
use common::{PATIENCE, TestClient};
use faas_core::{Context, FunctionDefinition, Registry};
use faas_triggers::{Error, Runtime, RuntimeConfig};

async fn echo(body: Bytes) -> Bytes {
    body
}

async fn upper(text: String) -> String {
    text.to_uppercase()
}

async fn never_ends(ctx: Context) -> &'static str {
    ctx.cancellation().cancelled().await;
    "cancelled"
}

fn registry() -> Registry {
    Registry::from([
        FunctionDefinition::from_handler("echo", echo),
        FunctionDefinition::from_handler("upper", upper),
        FunctionDefinition::from_handler("stuck", never_ends),
    ])
}

async fn start(
    vars: &[(&str, &str)],
) -> (
    TestClient,
    faas_core::HostShutdown,
    tokio::task::JoinHandle<faas_triggers::Result<()>>,
) {
    let mut all = vec![("POD_IP", "127.0.0.1"), ("PORT", "0")];
    all.extend_from_slice(vars);
    let config = RuntimeConfig::from_vars(all).unwrap();
    let runtime = Runtime::new(registry(), config).bind().await.unwrap();
    let addr = runtime.local_addr().unwrap();
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);
    let shutdown = runtime.shutdown_handle();
    let task = tokio::spawn(runtime.run());
    (TestClient::new(addr), shutdown, task)
}

async fn stop(
    shutdown: faas_core::HostShutdown,
    task: tokio::task::JoinHandle<faas_triggers::Result<()>>,
) {
    shutdown.shutdown();
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the runtime stops")
        .unwrap()
        .expect("the runtime stopped cleanly");
}

#[tokio::test]
async fn post_root_calls_faas_function() {
    let (client, shutdown, task) = start(&[("FAAS_FUNCTION", "upper")]).await;
    let answer = client.post("/", "text/plain", "hello").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "HELLO");
    // The other functions stay reachable by name.
    let answer = client.post("/function/echo", "text/plain", "as is").await;
    assert_eq!(answer.text(), "as is");
    assert_eq!(client.get("/_/health").await.status, 200);
    assert_eq!(client.get("/_/ready").await.status, 200);
    stop(shutdown, task).await;
}

#[tokio::test]
async fn faas_timeout_and_max_body_apply() {
    let (client, shutdown, task) = start(&[
        ("FAAS_FUNCTION", "stuck"),
        ("FAAS_TIMEOUT", "100ms"),
        ("FAAS_MAX_BODY", "1KiB"),
    ])
    .await;
    client
        .post("/", "text/plain", "x")
        .await
        .assert_error(504, "timeout");
    client
        .post("/function/echo", "text/plain", vec![b'x'; 4096])
        .await
        .assert_error(413, "payload_too_large");
    let answer = client
        .post("/function/echo", "text/plain", vec![b'x'; 1024])
        .await;
    assert_eq!(answer.status, 200);
    stop(shutdown, task).await;
}

#[tokio::test]
async fn an_unknown_faas_function_fails_at_start() {
    let config = RuntimeConfig::from_vars([
        ("POD_IP", "127.0.0.1"),
        ("PORT", "0"),
        ("FAAS_FUNCTION", "ghost"),
    ])
    .unwrap();
    let error = Runtime::new(registry(), config).run().await.unwrap_err();
    assert!(
        matches!(error, Error::UnknownFunction { ref name, .. } if name == "ghost"),
        "{error}"
    );
    assert!(
        error.to_string().contains("echo"),
        "lists the registered functions: {error}"
    );
}

#[tokio::test]
async fn an_address_in_use_is_a_bind_error() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let config =
        RuntimeConfig::from_vars([("POD_IP", "127.0.0.1"), ("PORT", port.as_str())]).unwrap();
    let error = Runtime::new(registry(), config).bind().await.unwrap_err();
    assert!(matches!(error, Error::Bind { .. }), "{error}");
}

#[tokio::test]
async fn cron_can_run_in_process() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let fired = Arc::new(AtomicUsize::new(0));
    let count = {
        let fired = Arc::clone(&fired);
        move || {
            let fired = Arc::clone(&fired);
            async move {
                fired.fetch_add(1, Ordering::SeqCst);
            }
        }
    };
    let registry = Registry::from([FunctionDefinition::from_handler("tick", count)
        .with_trigger(faas_core::TriggerSpec::cron("* * * * * *"))]);
    let config = RuntimeConfig::from_vars([
        ("POD_IP", "127.0.0.1"),
        ("PORT", "0"),
        ("FAAS_CRON", "true"),
    ])
    .unwrap();
    let runtime = Runtime::new(registry, config).bind().await.unwrap();
    let shutdown = runtime.shutdown_handle();
    let task = tokio::spawn(runtime.run());
    common::eventually("a cron tick", || fired.load(Ordering::SeqCst) >= 1).await;
    stop(shutdown, task).await;
}
