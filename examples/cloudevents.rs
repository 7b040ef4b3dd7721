//! CloudEvents: a function that takes an event and answers with one, over
//! HTTP, in both modes of the CloudEvents HTTP binding.
//!
//! ```sh
//! cargo run --example cloudevents   # 127.0.0.1:8080, or PORT, or an argument
//! ```
//!
//! Binary mode: the attributes travel as `ce-*` headers, the data is the body.
//! The answer comes back in binary mode:
//!
//! ```sh
//! curl -s -i http://127.0.0.1:8080/function/confirm \
//!      -H 'ce-specversion: 1.0' -H 'ce-id: 42' -H 'ce-source: /shop' \
//!      -H 'ce-type: dev.faas.examples.order.placed' \
//!      -H 'content-type: application/json' -d '{"order":7,"items":2}'
//! # HTTP/1.1 200 OK
//! # ce-specversion: 1.0
//! # ce-id: 42-confirmed
//! # ce-source: /faas/examples/confirm
//! # ce-type: dev.faas.examples.order.confirmed
//! # ce-subject: orders/7
//! # content-type: application/json
//! # x-call-id: 01a213f0-7749-7313-9d54-0be8c70dabfc
//! # content-length: 42
//! # date: Wed, 25 Nov 2026 18:20:56 GMT
//! #
//! # {"order":7,"items":2,"status":"confirmed"}
//! ```
//!
//! Structured mode: the whole event is the JSON body
//! (`application/cloudevents+json`). The answer comes back structured:
//!
//! ```sh
//! curl -s http://127.0.0.1:8080/function/confirm \
//!      -H 'content-type: application/cloudevents+json' \
//!      -d '{"specversion":"1.0","id":"43","source":"/shop","type":"dev.faas.examples.order.placed","data":{"order":8,"items":1}}'
//! # {"data":{"items":1,"order":8,"status":"confirmed"},"datacontenttype":"application/json","id":"43-confirmed","source":"/faas/examples/confirm","specversion":"1.0","subject":"orders/8","type":"dev.faas.examples.order.confirmed"}
//! ```
//!
//! The function sees the same `CloudEvent` either way; the HTTP trigger reads
//! both modes and writes the answer in the mode of the request.

use std::process::ExitCode;

use faas_core::{CloudEvent, FunctionError, LocalExecutor, Registry, function, functions};
use faas_examples::{App, listen_addr, report};
use faas_triggers::http::{HttpTrigger, HttpTriggerConfig};
use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

/// The type of the events `confirm` takes.
const ORDER_PLACED: &str = "dev.faas.examples.order.placed";
/// The type of the events `confirm` answers with.
const ORDER_CONFIRMED: &str = "dev.faas.examples.order.confirmed";

#[derive(Deserialize)]
struct Placed {
    order: u64,
    items: u32,
}

#[derive(Serialize)]
struct Confirmed {
    order: u64,
    items: u32,
    status: &'static str,
}

/// Confirms a placed order: answers an `order.placed` event with an
/// `order.confirmed` one about the same order.
#[function]
async fn confirm(placed: CloudEvent) -> Result<CloudEvent, FunctionError> {
    if placed.ty != ORDER_PLACED {
        return Err(FunctionError::bad_input(format!(
            "expected an event of type {ORDER_PLACED}, got {}",
            placed.ty
        )));
    }
    let order: Placed = placed.data_json()?;
    let confirmed = CloudEvent::new(
        format!("{}-confirmed", placed.id),
        "/faas/examples/confirm",
        ORDER_CONFIRMED,
    )
    .with_subject(format!("orders/{}", order.order))
    .with_json(&Confirmed {
        order: order.order,
        items: order.items,
        status: "confirmed",
    })?;
    Ok(confirmed)
}

/// The example's app: `confirm` on the HTTP trigger at `addr`.
async fn app(addr: std::net::SocketAddr) -> faas_examples::Result<App> {
    let registry = Registry::try_from_iter(functions![confirm])?;
    let http = HttpTrigger::bind(HttpTriggerConfig::new(addr)).await?;
    let addr = http.local_addr()?;
    Ok(App::new(
        LocalExecutor::builder(registry).trigger(http).build(),
        addr,
    ))
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let served = async { app(listen_addr()?).await?.shutdown_on_signal().run().await };
    match served.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{}", report(&error));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::{HeaderMap, Request, StatusCode};
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use serde_json::{Value, json};

    use super::*;

    /// Serves the example on a free port, sends `request` (its URI a path), and
    /// returns the answer.
    async fn exchange(request: Request<Full<Bytes>>) -> (StatusCode, HeaderMap, Bytes) {
        let app = app(([127, 0, 0, 1], 0).into()).await.unwrap();
        let addr = app.local_addr();
        let stop = app.shutdown_handle();
        let serving = tokio::spawn(app.run());

        let (mut parts, body) = request.into_parts();
        parts.uri = format!("http://{addr}{}", parts.uri).parse().unwrap();
        let client = Client::builder(TokioExecutor::new()).build_http();
        let response = client
            .request(Request::from_parts(parts, body))
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();

        stop.shutdown();
        serving.await.unwrap().unwrap();
        (parts.status, parts.headers, body)
    }

    #[tokio::test]
    async fn binary_mode_in_binary_mode_out() {
        let request = Request::post("/function/confirm")
            .header("ce-specversion", "1.0")
            .header("ce-id", "42")
            .header("ce-source", "/shop")
            .header("ce-type", ORDER_PLACED)
            .header("content-type", "application/json")
            .body(Full::from(r#"{"order":7,"items":2}"#))
            .unwrap();
        let (status, headers, body) = exchange(request).await;
        assert_eq!(status, StatusCode::OK, "{body:?}");
        assert_eq!(headers["ce-type"], ORDER_CONFIRMED);
        assert_eq!(headers["ce-id"], "42-confirmed");
        assert_eq!(headers["ce-subject"], "orders/7");
        assert_eq!(headers["content-type"], "application/json");
        let data: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(data, json!({"order": 7, "items": 2, "status": "confirmed"}));
    }

    #[tokio::test]
    async fn structured_mode_in_structured_mode_out() {
        let event = json!({
            "specversion": "1.0",
            "id": "43",
            "source": "/shop",
            "type": ORDER_PLACED,
            "data": {"order": 8, "items": 1},
        });
        let request = Request::post("/function/confirm")
            .header("content-type", "application/cloudevents+json")
            .body(Full::from(event.to_string()))
            .unwrap();
        let (status, headers, body) = exchange(request).await;
        assert_eq!(status, StatusCode::OK, "{body:?}");
        assert_eq!(headers["content-type"], "application/cloudevents+json");
        assert!(!headers.contains_key("ce-type"));
        let event: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(event["type"], ORDER_CONFIRMED);
        assert_eq!(event["id"], "43-confirmed");
        assert_eq!(event["subject"], "orders/8");
        assert_eq!(
            event["data"],
            json!({"order": 8, "items": 1, "status": "confirmed"})
        );
    }

    #[tokio::test]
    async fn a_request_that_is_no_event_is_bad_input() {
        let request = Request::post("/function/confirm")
            .header("content-type", "application/json")
            .body(Full::from(r#"{"order":7}"#))
            .unwrap();
        let (status, _, body) = exchange(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let error: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(error["error"]["kind"], "bad_input");
    }

    #[tokio::test]
    async fn the_handler_sees_the_same_event_either_way() {
        let placed = CloudEvent::new("1", "/shop", ORDER_PLACED)
            .with_json(&json!({"order": 1, "items": 3}))
            .unwrap();
        let confirmed = confirm(placed).await.unwrap();
        assert_eq!(confirmed.ty, ORDER_CONFIRMED);
        let wrong = CloudEvent::new("2", "/shop", "dev.faas.examples.order.cancelled");
        assert_eq!(
            confirm(wrong).await.unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }
}
