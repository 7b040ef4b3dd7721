//! Bad input over real HTTP: every error is answered with its status and the
//! JSON body of `FunctionError::to_response`, and the server keeps serving.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{TestServer, eventually};
use faas_core::{Context, FunctionDefinition, InvocationPolicy, Json, Registry};
use faas_triggers::http::HttpTriggerConfig;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

#[derive(Deserialize)]
struct Greet {
    name: String,
}

#[derive(Serialize)]
struct Greeting {
    message: String,
}

async fn greet(Json(req): Json<Greet>) -> Json<Greeting> {
    Json(Greeting {
        message: format!("hello, {}", req.name),
    })
}

async fn explode(_body: Bytes) -> &'static str {
    panic!("the function blew up");
}

async fn never_ends(ctx: Context) -> &'static str {
    ctx.cancellation().cancelled().await;
    "cancelled"
}

fn registry() -> Registry {
    Registry::from([
        FunctionDefinition::from_handler("greet", greet),
        FunctionDefinition::from_handler("explode", explode),
        FunctionDefinition::from_handler("slow", never_ends)
            .with_policy(InvocationPolicy::default().with_timeout(Duration::from_millis(200))),
        FunctionDefinition::from_handler("patient", never_ends),
    ])
}

async fn assert_still_serving(server: &TestServer) {
    let ok = server
        .client
        .post("/function/greet", "application/json", r#"{"name":"ada"}"#)
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json()["message"], "hello, ada");
    assert!(ok.header("x-call-id").is_some());
}

#[tokio::test]
async fn malformed_json_is_400() {
    let server = TestServer::start(registry()).await;
    let answer = server
        .client
        .post("/function/greet", "application/json", r#"{"name": "#)
        .await;
    answer.assert_error(400, "bad_input");
    let answer = server
        .client
        .post("/function/greet", "application/json", r#"{"nom":"ada"}"#)
        .await;
    answer.assert_error(400, "bad_input");
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let server = TestServer::start(registry()).await;
    let answer = server
        .client
        .post("/function/greet", "text/plain", r#"{"name":"ada"}"#)
        .await;
    let body = answer.assert_error(415, "unsupported_media_type");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("text/plain")
    );
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn oversized_body_is_413() {
    let config = HttpTriggerConfig::default().with_max_body(1024);
    let server = TestServer::start_with(registry(), config).await;
    let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(64 * 1024));
    let answer = server
        .client
        .post("/function/greet", "application/json", big)
        .await;
    answer.assert_error(413, "payload_too_large");
    // A chunked body (no content-length) is cut off at the limit as well.
    let chunks =
        futures::stream::iter((0..64).map(|_| {
            Ok::<_, std::io::Error>(hyper::body::Frame::data(Bytes::from(vec![b'x'; 1024])))
        }));
    let request = http::Request::post(server.url("/function/greet"))
        .header("content-type", "application/json")
        .body(http_body_util::StreamBody::new(chunks))
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 413);
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn unknown_function_and_path_are_404() {
    let server = TestServer::start(registry()).await;
    let answer = server
        .client
        .post("/function/nope", "application/json", "{}")
        .await;
    let body = answer.assert_error(404, "not_found");
    assert!(body["error"]["message"].as_str().unwrap().contains("nope"));
    server
        .client
        .get("/nowhere")
        .await
        .assert_error(404, "not_found");
    server
        .client
        .get("/function/")
        .await
        .assert_error(404, "not_found");
    // Several functions and no default: `/` names none.
    server
        .client
        .post("/", "application/json", "{}")
        .await
        .assert_error(404, "not_found");
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let server = TestServer::start(registry()).await;
    let answer = server.client.get("/async-function/greet").await;
    answer.assert_error(405, "bad_input");
    assert_eq!(answer.header("allow"), Some("POST"));
    let answer = server
        .client
        .send(server.client.request("DELETE", "/_/health"), Bytes::new())
        .await;
    assert_eq!(answer.status, 405);
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn panic_is_500_and_the_server_survives() {
    let server = TestServer::start(registry()).await;
    for _ in 0..3 {
        let answer = server
            .client
            .post("/function/explode", "text/plain", "boom")
            .await;
        let body = answer.assert_error(500, "panicked");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("blew up"),
            "{body}"
        );
    }
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn deadline_is_504() {
    let server = TestServer::start(registry()).await;
    // The policy's deadline.
    let answer = server.client.post("/function/slow", "text/plain", "").await;
    answer.assert_error(504, "timeout");
    // A shorter deadline asked for with x-timeout, under a 30 s policy.
    let answer = server
        .client
        .send(
            server
                .client
                .request("POST", "/function/patient")
                .header("x-timeout", "150ms"),
            Bytes::new(),
        )
        .await;
    answer.assert_error(504, "timeout");
    // A malformed x-timeout is bad input.
    let answer = server
        .client
        .send(
            server
                .client
                .request("POST", "/function/patient")
                .header("x-timeout", "soon"),
            Bytes::new(),
        )
        .await;
    let body = answer.assert_error(400, "bad_input");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-timeout")
    );
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn flood_over_max_in_flight_is_429() {
    let gate = Arc::new(Semaphore::new(0));
    let entered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let held = {
        let gate = Arc::clone(&gate);
        let entered = Arc::clone(&entered);
        move |_body: Bytes| {
            let gate = Arc::clone(&gate);
            let entered = Arc::clone(&entered);
            async move {
                entered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _permit = gate.acquire().await.expect("gate open");
                "done"
            }
        }
    };
    let registry = registry();
    registry
        .register(
            FunctionDefinition::from_handler("gated", held)
                .with_policy(InvocationPolicy::default().with_max_in_flight(2)),
        )
        .unwrap();
    let server = TestServer::start(registry).await;

    let mut running = Vec::new();
    for _ in 0..2 {
        let client = server.client.clone();
        running.push(tokio::spawn(async move {
            client.post("/function/gated", "text/plain", "x").await
        }));
    }
    eventually("two calls in flight", || {
        entered.load(std::sync::atomic::Ordering::SeqCst) == 2
    })
    .await;
    // The flood: every call over the limit is refused at once, nothing queues.
    for _ in 0..5 {
        let answer = server
            .client
            .post("/function/gated", "text/plain", "x")
            .await;
        answer.assert_error(429, "overloaded");
    }
    gate.add_permits(2);
    for call in running {
        let answer = call.await.unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.text(), "done");
    }
    // The limit is free again.
    gate.add_permits(1);
    let answer = server
        .client
        .post("/function/gated", "text/plain", "x")
        .await;
    assert_eq!(answer.status, 200);
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected_and_others_are_served() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let config = HttpTriggerConfig::default().with_header_read_timeout(Duration::from_millis(300));
    let server = TestServer::start_with(registry(), config).await;
    let mut slow = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"POST /function/greet HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // The server closes the connection: the read ends (0 bytes, or a reset).
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(60), slow.read(&mut buffer))
        .await
        .expect("the server closes a connection whose headers never end");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert_still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn a_client_that_sends_nothing_or_stops_inside_the_http2_preface_is_disconnected() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let config = HttpTriggerConfig::default().with_header_read_timeout(Duration::from_millis(300));
    let server = TestServer::start_with(registry(), config).await;
    let silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut halfway = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    halfway.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    for mut client in [silent, halfway] {
        // The server closes the connection: the read ends (0 bytes, or a reset).
        let mut buffer = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(60), client.read(&mut buffer))
            .await
            .expect("the server closes a connection that never sends a request");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    assert_still_serving(&server).await;
    server.stop().await;
}
