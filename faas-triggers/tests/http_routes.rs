//! Routing, headers, protocols and shutdown of the HTTP trigger over real HTTP.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use common::{PATIENCE, TestServer, eventually};
use faas_core::{Context, FunctionDefinition, Path, Query, Registry, TriggerSpec};
use faas_triggers::http::{HttpTrigger, HttpTriggerConfig};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::Semaphore;

/// Answers with what it saw: method, path and query, a few headers, the body.
async fn inspect(request: http::Request<Bytes>, ctx: Context) -> String {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    serde_json::json!({
        "function": ctx.function_name(),
        "method": request.method().as_str(),
        "uri": request.uri().to_string(),
        "prefix": header("x-forwarded-prefix"),
        "call_id": ctx.call_id().to_string(),
        "traceparent": ctx.trace_parent(),
        "has_deadline": ctx.deadline().is_some(),
        "body": String::from_utf8_lossy(request.body()),
    })
    .to_string()
}

async fn echo(body: Bytes) -> Bytes {
    body
}

fn registry() -> Registry {
    Registry::from([
        FunctionDefinition::from_handler("inspect", inspect),
        FunctionDefinition::from_handler("echo", echo),
        FunctionDefinition::from_handler("orders", inspect).with_trigger(TriggerSpec::Http {
            path: "/api/orders/{id}".into(),
            methods: vec!["POST".into(), "GET".into()],
        }),
    ])
}

#[derive(serde::Deserialize)]
struct Paging {
    page: Option<u32>,
}

/// Reads a route parameter and the query.
async fn item(Path((order, item)): Path<(u64, String)>, Query(paging): Query<Paging>) -> String {
    format!("order {order}, item {item}, page {:?}", paging.page)
}

fn item_registry() -> Registry {
    Registry::from([
        FunctionDefinition::from_handler("item", item)
            .with_trigger(TriggerSpec::http("/orders/{order}/items/{item}")),
        FunctionDefinition::from_handler("echo", echo),
    ])
}

#[tokio::test]
async fn route_templates_give_path_parameters() {
    let server = TestServer::start(item_registry()).await;
    let answer = server.client.get("/orders/42/items/tea%20cup?page=2").await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.text(), "order 42, item tea cup, page Some(2)");

    // Behind the gateway's `/function/{name}` prefix the same template matches.
    let answer = server
        .client
        .get("/function/item/orders/7/items/pen/")
        .await;
    assert_eq!(answer.text(), "order 7, item pen, page None");

    // A parameter that does not parse, a query that does not: 400, JSON body.
    let answer = server.client.get("/orders/forty-two/items/pen").await;
    let body = answer.assert_error(400, "bad_input");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`order`"),
        "{body}"
    );
    server
        .client
        .get("/orders/1/items/pen?page=first")
        .await
        .assert_error(400, "bad_input");
    // A value that is not UTF-8 once decoded.
    server
        .client
        .get("/orders/1/items/%ff")
        .await
        .assert_error(400, "bad_input");

    // No template matches and no default function: 404.
    server
        .client
        .get("/orders/42")
        .await
        .assert_error(404, "not_found");
    // Through `/function/item` with a path none of its templates match: the
    // call has no parameters, and `Path` says so with a 404.
    server
        .client
        .get("/function/item/elsewhere")
        .await
        .assert_error(404, "not_found");
    server.stop().await;
}

#[tokio::test]
async fn sub_paths_reach_the_function_with_their_query() {
    let server = TestServer::start(registry()).await;
    let answer = server
        .client
        .send(
            server
                .client
                .request("PUT", "/function/inspect/users/7?fields=name&x=1"),
            "hi",
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let seen = serde_json::from_str::<serde_json::Value>(&answer.text()).unwrap();
    assert_eq!(seen["function"], "inspect");
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["uri"], "/users/7?fields=name&x=1");
    assert_eq!(seen["prefix"], "/function/inspect");
    assert_eq!(seen["body"], "hi");

    let answer = server.client.get("/function/inspect?q=1").await;
    let seen = serde_json::from_str::<serde_json::Value>(&answer.text()).unwrap();
    assert_eq!(seen["uri"], "/?q=1");
    server.stop().await;
}

#[tokio::test]
async fn declared_paths_and_the_default_function() {
    let config = HttpTriggerConfig::default().with_default_function("echo");
    let server = TestServer::start_with(registry(), config).await;
    let answer = server
        .client
        .post("/api/orders/42/?full=1", "text/plain", "order")
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let seen = serde_json::from_str::<serde_json::Value>(&answer.text()).unwrap();
    assert_eq!(seen["function"], "orders");
    assert_eq!(seen["uri"], "/api/orders/42/?full=1");
    let answer = server
        .client
        .send(
            server.client.request("DELETE", "/api/orders/42"),
            Bytes::new(),
        )
        .await;
    answer.assert_error(405, "bad_input");
    assert_eq!(answer.header("allow"), Some("POST, GET"));

    let answer = server
        .client
        .post("/", "application/json", r#"{"n":1}"#)
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), r#"{"n":1}"#);
    // Like the OpenFaaS watchdog, the default function also serves other paths.
    let answer = server
        .client
        .post("/anything/else", "text/plain", "x")
        .await;
    assert_eq!(answer.text(), "x");
    server.stop().await;
}

#[tokio::test]
async fn the_only_function_is_the_default() {
    let registry = Registry::from([FunctionDefinition::from_handler("echo", echo)]);
    let server = TestServer::start(registry).await;
    let answer = server.client.post("/", "text/plain", "solo").await;
    assert_eq!(answer.text(), "solo");
    server.stop().await;
}

#[tokio::test]
async fn a_default_function_that_is_not_registered_fails_the_trigger() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trigger = HttpTrigger::from_listener(
        listener,
        HttpTriggerConfig::default().with_default_function("ghost"),
    );
    let dispatcher = faas_core::Dispatcher::new(registry());
    let error = trigger
        .serve(dispatcher, tokio_util::sync::CancellationToken::new())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("ghost"), "{error}");
}

#[tokio::test]
async fn call_id_and_traceparent_propagate() {
    let server = TestServer::start(registry()).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let answer = server
        .client
        .send(
            server
                .client
                .request("POST", "/function/inspect")
                .header("x-call-id", "req-42")
                .header("traceparent", traceparent)
                .header("x-timeout", "5s"),
            Bytes::new(),
        )
        .await;
    assert_eq!(answer.header("x-call-id"), Some("req-42"));
    let seen = serde_json::from_str::<serde_json::Value>(&answer.text()).unwrap();
    assert_eq!(seen["call_id"], "req-42");
    assert_eq!(seen["traceparent"], traceparent);
    assert_eq!(seen["has_deadline"], true);

    // No (or an invalid) call id: a fresh one, on the response too.
    let answer = server
        .client
        .send(
            server
                .client
                .request("POST", "/function/inspect")
                .header("x-call-id", "has spaces")
                .header("traceparent", "garbage"),
            Bytes::new(),
        )
        .await;
    let seen = serde_json::from_str::<serde_json::Value>(&answer.text()).unwrap();
    let call_id = answer.header("x-call-id").unwrap();
    assert_ne!(call_id, "has spaces");
    assert_eq!(seen["call_id"], call_id);
    assert_eq!(seen["traceparent"], serde_json::Value::Null);
    // Built-in endpoints and errors carry one as well.
    assert!(
        server
            .client
            .get("/_/health")
            .await
            .header("x-call-id")
            .is_some()
    );
    assert!(
        server
            .client
            .get("/nowhere")
            .await
            .header("x-call-id")
            .is_some()
    );
    server.stop().await;
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let server = TestServer::start(registry()).await;
    let health = server.client.get("/_/health").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");
    let ready = server.client.get("/_/ready").await;
    assert_eq!(ready.status, 200);
    server
        .client
        .post("/function/echo", "text/plain", "x")
        .await;
    let metrics = server.client.get("/metrics").await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = metrics.text();
    assert!(text.contains("faas_invocations_total"), "{text}");
    assert!(text.contains(r#"function="echo""#), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let server = TestServer::start(registry()).await;
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    for i in 0..20 {
        let request = Request::post("/function/echo")
            .header("host", "test")
            .body(Full::new(Bytes::from(format!("n{i}"))))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, format!("n{i}"));
    }
    drop(sender);
    connection.await.unwrap().unwrap();
    server.stop().await;
}

#[tokio::test]
async fn h2c_with_prior_knowledge() {
    let server = TestServer::start(registry()).await;
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let mut calls = Vec::new();
    for i in 0..10 {
        let request = Request::post(server.url("/function/echo"))
            .body(Full::new(Bytes::from(format!("h2-{i}"))))
            .unwrap();
        calls.push(client.request(request));
    }
    for (i, call) in futures::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        let response = call.unwrap();
        assert_eq!(response.version(), http::Version::HTTP_2);
        assert_eq!(response.status(), 200);
        assert!(response.headers().contains_key("x-call-id"));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, format!("h2-{i}"));
    }
    server.stop().await;
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
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
    let server = TestServer::start(registry).await;
    let client = server.client.clone();
    let in_flight =
        tokio::spawn(async move { client.post("/function/held", "text/plain", "kept").await });
    eventually("the call to be running", || {
        entered.load(Ordering::SeqCst) == 1
    })
    .await;

    server.shutdown.shutdown();
    // The listener closes: new connections are refused.
    let addr = server.addr;
    let mut refused = false;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(refused, "the listener stops accepting");
    assert!(
        !server.task.is_finished(),
        "the server waits for the call in flight"
    );

    gate.add_permits(1);
    let answer = in_flight.await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.text(), "kept");
    tokio::time::timeout(PATIENCE, server.task)
        .await
        .expect("the server stops after draining")
        .unwrap()
        .unwrap();
}
