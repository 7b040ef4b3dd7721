//! A closed-loop HTTP/1.1 load generator.
//!
//! Each connection sends one request, waits for the whole response, records
//! its latency and sends the next, for a fixed duration after a warm-up. The
//! same generator drives the server under test and its baseline, so their
//! figures differ only by the server.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What to send, how hard and for how long.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// Concurrent keep-alive connections, each with one request in flight.
    pub connections: usize,
    /// Time spent sending before measuring starts.
    pub warmup: Duration,
    /// Time measured.
    pub duration: Duration,
    /// The request's method.
    pub method: Method,
    /// The request's path and query.
    pub path: String,
    /// The request's body.
    pub body: Bytes,
    /// The request's content type.
    pub content_type: &'static str,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            connections: 16,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(5),
            method: Method::POST,
            path: "/".to_owned(),
            body: Bytes::from_static(br#"{"name":"bench"}"#),
            content_type: "application/json",
        }
    }
}

/// What one run measured.
#[derive(Debug)]
pub struct LoadResult {
    /// Successful (2xx) responses counted in the measured window.
    pub requests: u64,
    /// Responses that were not 2xx, and failed connections, in the window.
    pub errors: u64,
    /// The measured window's length.
    pub elapsed: Duration,
    /// Latency of the successful requests, in nanoseconds.
    pub latency: Histogram<u64>,
}

impl LoadResult {
    /// Successful requests per second.
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at quantile `q` (0.0 to 1.0).
    pub fn latency_at(&self, q: f64) -> Duration {
        Duration::from_nanos(self.latency.value_at_quantile(q))
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 ns to 60 s at 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// Drives `addr` with `config` and returns what the measured window saw.
///
/// # Errors
///
/// Fails when a connection cannot be established at all.
pub async fn run(addr: SocketAddr, config: &LoadConfig) -> io::Result<LoadResult> {
    let start = Instant::now() + config.warmup;
    let end = start + config.duration;
    let mut workers = Vec::with_capacity(config.connections);
    for _ in 0..config.connections {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        tokio::spawn(connection);
        workers.push(tokio::spawn(drive(
            sender,
            config.clone(),
            addr,
            start,
            end,
        )));
    }
    let mut total = LoadResult {
        requests: 0,
        errors: 0,
        elapsed: config.duration,
        latency: new_histogram(),
    };
    for worker in workers {
        let part = worker.await.map_err(io::Error::other)?;
        total.requests += part.requests;
        total.errors += part.errors;
        total
            .latency
            .add(&part.latency)
            .map_err(|e| io::Error::other(e.to_string()))?;
    }
    Ok(total)
}

async fn drive(
    mut sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    config: LoadConfig,
    addr: SocketAddr,
    start: Instant,
    end: Instant,
) -> LoadResult {
    let mut result = LoadResult {
        requests: 0,
        errors: 0,
        elapsed: config.duration,
        latency: new_histogram(),
    };
    let authority = addr.to_string();
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let request = Request::builder()
            .method(config.method.clone())
            .uri(config.path.as_str())
            .header(header::HOST, authority.as_str())
            .header(header::CONTENT_TYPE, config.content_type)
            .body(Full::new(config.body.clone()))
            .expect("a valid request");
        let ok = match sender.send_request(request).await {
            Ok(response) => {
                let success = response.status().is_success();
                success && response.into_body().collect().await.is_ok()
            }
            Err(_) => false,
        };
        let done = Instant::now();
        if sent >= start {
            if ok {
                result.requests += 1;
                let nanos = u64::try_from((done - sent).as_nanos()).unwrap_or(u64::MAX);
                result.latency.saturating_record(nanos.max(1));
            } else {
                result.errors += 1;
            }
        }
        if !ok && sender.ready().await.is_err() {
            break;
        }
    }
    result
}
