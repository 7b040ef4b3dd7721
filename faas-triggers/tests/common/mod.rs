//! Helpers shared by the integration tests: a real server on a loopback port
//! and a real HTTP client.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use faas_core::{HostShutdown, LocalExecutor, Registry};
use faas_triggers::http::{HttpTrigger, HttpTriggerConfig};
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// An upper bound for anything a test waits for; never a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A server under test: an executor running the HTTP trigger on a port of 127.0.0.1.
pub struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: HostShutdown,
    pub task: JoinHandle<faas_core::Result<()>>,
    pub client: TestClient,
}

impl TestServer {
    pub async fn start(registry: Registry) -> Self {
        Self::start_with(registry, HttpTriggerConfig::default()).await
    }

    pub async fn start_with(registry: Registry, config: HttpTriggerConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().unwrap();
        let executor = LocalExecutor::builder(registry)
            .trigger(HttpTrigger::from_listener(listener, config))
            .build();
        let shutdown = executor.shutdown_handle();
        let task = tokio::spawn(executor.run());
        TestServer {
            addr,
            shutdown,
            task,
            client: TestClient::new(addr),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn stop(self) {
        self.shutdown.shutdown();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("the server stops")
            .expect("the server task did not panic")
            .expect("the server stopped cleanly");
    }
}

/// What a test reads back from a response.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub version: http::Version,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an error answer: the status, the JSON body of
    /// `FunctionError::to_response`, and `x-call-id` equal to the body's call id.
    pub fn assert_error(&self, status: u16, kind: &str) -> serde_json::Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
        assert_eq!(self.header("content-type"), Some("application/json"));
        let body = self.json();
        assert_eq!(body["error"]["kind"], kind, "body: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        let call_id = self
            .header("x-call-id")
            .expect("x-call-id on every response");
        assert_eq!(body["error"]["call_id"], call_id);
        body
    }
}

/// An HTTP/1.1 keep-alive client.
#[derive(Clone)]
pub struct TestClient {
    addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl TestClient {
    pub fn new(addr: SocketAddr) -> Self {
        TestClient {
            addr,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    pub fn request(&self, method: &str, path: &str) -> http::request::Builder {
        Request::builder()
            .method(method)
            .uri(format!("http://{}{}", self.addr, path))
    }

    pub async fn send(&self, request: http::request::Builder, body: impl Into<Bytes>) -> Answer {
        let request = request
            .body(Full::new(body.into()))
            .expect("a valid request");
        let response = tokio::time::timeout(PATIENCE, self.client.request(request))
            .await
            .expect("an answer in time")
            .expect("the request is answered");
        let status = response.status();
        let version = response.version();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("a whole body")
            .to_bytes();
        Answer {
            status,
            headers,
            body,
            version,
        }
    }

    pub async fn post(&self, path: &str, content_type: &str, body: impl Into<Bytes>) -> Answer {
        self.send(
            self.request("POST", path)
                .header("content-type", content_type),
            body,
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.request("GET", path), Bytes::new()).await
    }
}

/// Polls `condition` until it holds, for up to [`PATIENCE`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
