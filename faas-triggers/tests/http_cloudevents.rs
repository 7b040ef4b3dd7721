//! CloudEvents 1.0 over HTTP, binary and structured mode, in and out.

mod common;

use common::TestServer;
use faas_core::{CloudEvent, FunctionDefinition, FunctionError, Json, Registry};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Upload {
    key: String,
}

/// Reads an event in either mode and answers with a new event.
async fn on_upload(event: CloudEvent) -> Result<CloudEvent, FunctionError> {
    let upload: Upload = event.data_json()?;
    CloudEvent::new(
        format!("{}-thumb", event.id),
        "/thumbnailer",
        "dev.faas.thumbnail.created",
    )
    .with_subject(upload.key.clone())
    .with_json(&Upload {
        key: format!("thumbs/{}", upload.key),
    })
}

/// Reads only the data of an event, as JSON.
async fn data_only(Json(upload): Json<Upload>) -> Json<Upload> {
    Json(upload)
}

fn registry() -> Registry {
    Registry::from([
        FunctionDefinition::from_handler("thumbnail", on_upload),
        FunctionDefinition::from_handler("data", data_only),
    ])
}

fn binary_request(server: &TestServer, path: &str) -> http::request::Builder {
    server
        .client
        .request("POST", path)
        .header("ce-specversion", "1.0")
        .header("ce-id", "42")
        .header("ce-source", "/buckets/photos")
        .header("ce-type", "dev.faas.storage.created")
        .header("ce-subject", "cat.jpg")
        .header("content-type", "application/json")
}

const STRUCTURED: &str = r#"{
    "specversion": "1.0",
    "id": "42",
    "source": "/buckets/photos",
    "type": "dev.faas.storage.created",
    "datacontenttype": "application/json",
    "data": {"key": "cat.jpg"}
}"#;

#[tokio::test]
async fn binary_in_binary_out() {
    let server = TestServer::start(registry()).await;
    let answer = server
        .client
        .send(
            binary_request(&server, "/function/thumbnail"),
            r#"{"key":"cat.jpg"}"#,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.header("ce-specversion"), Some("1.0"));
    assert_eq!(answer.header("ce-id"), Some("42-thumb"));
    assert_eq!(answer.header("ce-type"), Some("dev.faas.thumbnail.created"));
    assert_eq!(answer.header("ce-subject"), Some("cat.jpg"));
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.json()["key"], "thumbs/cat.jpg");
    assert!(answer.header("x-call-id").is_some());
    server.stop().await;
}

#[tokio::test]
async fn structured_in_structured_out() {
    let server = TestServer::start(registry()).await;
    let answer = server
        .client
        .post(
            "/function/thumbnail",
            "application/cloudevents+json",
            STRUCTURED,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.header("content-type"),
        Some("application/cloudevents+json")
    );
    assert!(answer.header("ce-id").is_none());
    let event = answer.json();
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["id"], "42-thumb");
    assert_eq!(event["source"], "/thumbnailer");
    assert_eq!(event["type"], "dev.faas.thumbnail.created");
    assert_eq!(event["data"]["key"], "thumbs/cat.jpg");
    server.stop().await;
}

#[tokio::test]
async fn binary_in_structured_out_when_accepted() {
    let server = TestServer::start(registry()).await;
    let answer = server
        .client
        .send(
            binary_request(&server, "/function/thumbnail").header(
                "accept",
                "application/json;q=0.5, application/cloudevents+json",
            ),
            r#"{"key":"dog.png"}"#,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.header("content-type"),
        Some("application/cloudevents+json")
    );
    let back = CloudEvent::decode(&answer.headers, &answer.body).unwrap();
    assert_eq!(back.id, "42-thumb");
    assert_eq!(back.data_json::<Upload>().unwrap().key, "thumbs/dog.png");
    server.stop().await;
}

#[tokio::test]
async fn structured_data_reaches_a_json_handler() {
    let server = TestServer::start(registry()).await;
    let answer = server
        .client
        .post("/function/data", "application/cloudevents+json", STRUCTURED)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    // Not an event back: the answer is as the function wrote it.
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.json()["key"], "cat.jpg");
    server.stop().await;
}

#[tokio::test]
async fn malformed_events_are_400() {
    let server = TestServer::start(registry()).await;
    // Structured: not JSON, a missing attribute, a wrong version, a batch.
    for body in [
        "{not json",
        r#"{"specversion":"1.0","source":"/s","type":"t"}"#,
        r#"{"specversion":"0.3","id":"1","source":"/s","type":"t"}"#,
    ] {
        let answer = server
            .client
            .post("/function/thumbnail", "application/cloudevents+json", body)
            .await;
        answer.assert_error(400, "bad_input");
    }
    server
        .client
        .post(
            "/function/thumbnail",
            "application/cloudevents-batch+json",
            "[]",
        )
        .await
        .assert_error(400, "bad_input");
    // Binary: a required attribute missing.
    let answer = server
        .client
        .send(
            server
                .client
                .request("POST", "/function/thumbnail")
                .header("ce-specversion", "1.0")
                .header("ce-id", "1")
                .header("content-type", "application/json"),
            r#"{"key":"x"}"#,
        )
        .await;
    answer.assert_error(400, "bad_input");
    // Not an event at all, to a function that wants one.
    server
        .client
        .post("/function/thumbnail", "application/json", r#"{"key":"x"}"#)
        .await
        .assert_error(400, "bad_input");
    let ok = server
        .client
        .post(
            "/function/thumbnail",
            "application/cloudevents+json",
            STRUCTURED,
        )
        .await;
    assert_eq!(ok.status, 200);
    server.stop().await;
}
