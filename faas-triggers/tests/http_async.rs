//! Asynchronous calls: 202 with a call id, the result POSTed to the callback URL.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{PATIENCE, TestServer};
use faas_core::{
    Context, FunctionDefinition, FunctionError, InvocationPolicy, Json, Registry, RetryPolicy,
};
use faas_triggers::http::HttpTriggerConfig;
use http::{HeaderMap, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// A callback receiver on a loopback port; every request it gets lands in the channel.
async fn callback_receiver() -> (SocketAddr, mpsc::UnboundedReceiver<(HeaderMap, Bytes)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let sender = sender.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let sender = sender.clone();
                    async move {
                        let headers = request.headers().clone();
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        let _ = sender.send((headers, body));
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, receiver)
}

async fn next_callback(
    receiver: &mut mpsc::UnboundedReceiver<(HeaderMap, Bytes)>,
) -> (HeaderMap, Bytes) {
    tokio::time::timeout(PATIENCE, receiver.recv())
        .await
        .expect("a callback in time")
        .expect("the receiver runs")
}

#[derive(Deserialize)]
struct Order {
    id: u32,
}

#[derive(Serialize)]
struct Receipt {
    id: u32,
    call_id: String,
}

async fn pay(Json(order): Json<Order>, ctx: Context) -> Result<Json<Receipt>, FunctionError> {
    if order.id == 0 {
        return Err(FunctionError::bad_input("order 0 does not exist"));
    }
    Ok(Json(Receipt {
        id: order.id,
        call_id: ctx.call_id().to_string(),
    }))
}

#[tokio::test]
async fn accepted_with_a_call_id_and_the_result_goes_to_the_callback() {
    let (receiver_addr, mut callbacks) = callback_receiver().await;
    let registry = Registry::from([FunctionDefinition::from_handler("pay", pay)]);
    let server = TestServer::start(registry).await;
    let answer = server
        .client
        .send(
            server
                .client
                .request("POST", "/async-function/pay")
                .header("content-type", "application/json")
                .header("x-callback-url", format!("http://{receiver_addr}/done")),
            r#"{"id":7}"#,
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text());
    let call_id = answer.header("x-call-id").expect("x-call-id").to_owned();
    assert!(answer.body.is_empty());

    let (headers, body) = next_callback(&mut callbacks).await;
    assert_eq!(headers["x-call-id"], call_id.as_str());
    assert_eq!(headers["x-function-status"], "200");
    assert_eq!(headers["x-function-name"], "pay");
    assert_eq!(headers["x-function-attempts"], "1");
    assert_eq!(headers["content-type"], "application/json");
    let receipt: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(receipt["id"], 7);
    assert_eq!(
        receipt["call_id"],
        call_id.as_str(),
        "the function saw the same call id"
    );

    // A failing call: the callback carries the error's status and JSON body.
    let answer = server
        .client
        .send(
            server
                .client
                .request("POST", "/async-function/pay")
                .header("content-type", "application/json")
                .header("x-call-id", "order-zero")
                .header("x-callback-url", format!("http://{receiver_addr}/done")),
            r#"{"id":0}"#,
        )
        .await;
    assert_eq!(answer.status, 202);
    assert_eq!(answer.header("x-call-id"), Some("order-zero"));
    let (headers, body) = next_callback(&mut callbacks).await;
    assert_eq!(headers["x-call-id"], "order-zero");
    assert_eq!(headers["x-function-status"], "400");
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["error"]["kind"], "bad_input");
    assert_eq!(error["error"]["call_id"], "order-zero");
    server.stop().await;
}

#[tokio::test]
async fn async_calls_are_retried_per_the_policy() {
    let (receiver_addr, mut callbacks) = callback_receiver().await;
    let attempts = Arc::new(AtomicU32::new(0));
    let flaky = {
        let attempts = Arc::clone(&attempts);
        move |ctx: Context| {
            let attempts = Arc::clone(&attempts);
            async move {
                attempts.fetch_add(1, Ordering::SeqCst);
                if ctx.attempt() < 3 {
                    Err(FunctionError::internal("the database is warming up"))
                } else {
                    Ok(format!("ok on attempt {}", ctx.attempt()))
                }
            }
        }
    };
    let policy = InvocationPolicy::default().with_retry(
        RetryPolicy::new(3)
            .with_initial_backoff(Duration::from_millis(1))
            .with_max_backoff(Duration::from_millis(5)),
    );
    let registry =
        Registry::from([FunctionDefinition::from_handler("flaky", flaky).with_policy(policy)]);
    let server = TestServer::start(registry).await;
    let answer = server
        .client
        .send(
            server
                .client
                .request("POST", "/async-function/flaky")
                .header("x-callback-url", format!("http://{receiver_addr}/")),
            Bytes::new(),
        )
        .await;
    assert_eq!(answer.status, 202);
    let (headers, body) = next_callback(&mut callbacks).await;
    assert_eq!(headers["x-function-status"], "200");
    assert_eq!(headers["x-function-attempts"], "3");
    assert_eq!(body, "ok on attempt 3");
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    server.stop().await;
}

#[tokio::test]
async fn bad_async_requests_are_refused_before_queueing() {
    let registry = Registry::from([FunctionDefinition::from_handler("pay", pay)]);
    let server = TestServer::start(registry).await;
    server
        .client
        .post("/async-function/nope", "application/json", "{}")
        .await
        .assert_error(404, "not_found");
    let answer = server
        .client
        .send(
            server
                .client
                .request("POST", "/async-function/pay")
                .header("x-callback-url", "ftp://example/done"),
            "{}",
        )
        .await;
    let body = answer.assert_error(400, "bad_input");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-callback-url")
    );
    server.stop().await;
}

#[tokio::test]
async fn a_full_queue_is_429_and_every_accepted_call_is_answered_at_shutdown() {
    let (receiver_addr, mut callbacks) = callback_receiver().await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let done = Arc::new(AtomicU32::new(0));
    let held = {
        let gate = Arc::clone(&gate);
        let done = Arc::clone(&done);
        move |_body: Bytes| {
            let gate = Arc::clone(&gate);
            let done = Arc::clone(&done);
            async move {
                let _permit = gate.acquire().await.expect("gate open");
                done.fetch_add(1, Ordering::SeqCst);
            }
        }
    };
    let registry = Registry::from([FunctionDefinition::from_handler("held", held)]);
    let config = HttpTriggerConfig::default()
        .with_async_concurrency(1)
        .with_async_queue_capacity(1);
    let server = TestServer::start_with(registry, config).await;
    // One call runs (held at the gate), one or two wait; then the queue is full.
    let mut accepted = Vec::new();
    let mut refused = None;
    for _ in 0..10 {
        let answer = server
            .client
            .send(
                server
                    .client
                    .request("POST", "/async-function/held")
                    .header("x-callback-url", format!("http://{receiver_addr}/")),
                "x",
            )
            .await;
        match answer.status.as_u16() {
            202 => accepted.push(answer.header("x-call-id").unwrap().to_owned()),
            429 => {
                refused = Some(answer);
                break;
            }
            other => panic!("unexpected status {other}: {}", answer.text()),
        }
    }
    let refused = refused.expect("the queue fills up");
    refused.assert_error(429, "overloaded");
    assert!((2..=3).contains(&accepted.len()), "accepted {accepted:?}");

    // Shutdown: the call that runs finishes; the host admits no new call, so
    // the queued ones are answered on their callback with 503. None is lost.
    server.shutdown.shutdown();
    gate.add_permits(accepted.len());
    let mut answered = Vec::new();
    for _ in 0..accepted.len() {
        let (headers, _) = next_callback(&mut callbacks).await;
        let status = headers["x-function-status"].to_str().unwrap().to_owned();
        assert!(status == "204" || status == "503", "status {status}");
        answered.push((headers["x-call-id"].to_str().unwrap().to_owned(), status));
    }
    let mut ids: Vec<_> = answered.iter().map(|(id, _)| id.clone()).collect();
    ids.sort();
    accepted.sort();
    assert_eq!(ids, accepted);
    let ran = answered
        .iter()
        .filter(|(_, status)| status == "204")
        .count();
    tokio::time::timeout(PATIENCE, server.task)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
    assert_eq!(done.load(Ordering::SeqCst) as usize, ran);
    assert!(ran >= 1);
}
