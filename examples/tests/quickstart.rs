//! The README's `curl` lines, sent to the quickstart app as they are written
//! there, checked against the output the README shows.
//!
//! The app is the one `cargo run --example quickstart` runs
//! (`faas_examples::quickstart::app`), in-process on a free port.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

const README: &str = include_str!("../../README.md");

/// Where the README says the quickstart listens.
const README_ADDR: &str = "127.0.0.1:8080";

/// A generous bound on each request, so a hang fails the test instead of
/// blocking it; no assertion is made on how long anything takes.
const REQUEST_LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_curl_lines_work_against_the_quickstart() {
    let app = faas_examples::quickstart::app(([127, 0, 0, 1], 0).into())
        .await
        .expect("the quickstart binds a free port");
    let addr = app.local_addr();
    let stop = app.shutdown_handle();
    let serving = tokio::spawn(app.run());

    let examples = readme_examples();
    let [hello, malformed, enqueue, metrics] = examples.as_slice() else {
        panic!(
            "the README shows 4 curl lines after `With the quickstart running`, found {examples:#?}"
        );
    };

    // 1. The JSON round trip: the body is exactly what the README shows.
    let (status, _, body) = hello.curl.send(addr).await;
    assert_eq!(status, StatusCode::OK, "{hello:?}");
    assert_eq!(body, hello.shown.join("\n"), "{hello:?}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["message"], "Hello, world!");

    // 2. Malformed JSON: 400, with the error body every host writes, its
    // call id the one in `x-call-id`, its kind and message the README's.
    let (status, headers, body) = malformed.curl.send(addr).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(malformed.shown[0], status_line(status));
    assert_eq!(headers["content-type"], "application/json");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["kind"], "bad_input", "{body}");
    assert_eq!(
        error["error"]["call_id"],
        headers["x-call-id"].to_str().unwrap()
    );
    let shown: Value = serde_json::from_str(malformed.shown.last().unwrap()).unwrap();
    assert_eq!(shown["error"]["kind"], error["error"]["kind"]);
    assert_eq!(shown["error"]["message"], error["error"]["message"]);

    // 3. An asynchronous call: 202 at once, with the call's id.
    let (status, headers, body) = enqueue.curl.send(addr).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(enqueue.shown[0], status_line(status));
    let call_id = headers["x-call-id"].to_str().unwrap();
    assert!(!call_id.is_empty());
    assert!(
        enqueue
            .shown
            .iter()
            .any(|line| line.starts_with("x-call-id: "))
    );

    // 4. The metrics count the calls above (the queued one may still run:
    // at least the synchronous success and the bad input are there).
    let (status, _, body) = metrics.curl.send(addr).await;
    assert_eq!(status, StatusCode::OK);
    let grep = metrics
        .curl
        .grep
        .as_deref()
        .expect("the metrics line pipes into grep");
    let lines: Vec<&str> = body.lines().filter(|line| line.contains(grep)).collect();
    assert!(
        lines.iter().any(|line| line
            .starts_with(r#"faas_invocations_total{function="hello",outcome="success"}"#)),
        "{body}"
    );
    assert!(
        lines
            .iter()
            .any(|line| line
                .starts_with(r#"faas_invocations_total{function="hello",outcome="error"}"#)),
        "{body}"
    );
    // The README's run also caught a tick; a test run may come before the first one.
    for line in metrics
        .shown
        .iter()
        .filter(|line| line.contains(r#"function="hello""#))
    {
        let series = line.split_whitespace().next().unwrap();
        assert!(
            lines.iter().any(|line| line.starts_with(series)),
            "the README shows {line}, the app serves {lines:?}"
        );
    }

    stop.shutdown();
    serving
        .await
        .unwrap()
        .expect("the quickstart shuts down cleanly");
}

/// A `curl` line of the README and the output shown under it (`# ...`).
#[derive(Debug)]
struct Example {
    curl: Curl,
    shown: Vec<String>,
}

/// The `sh` block after "With the quickstart running": each command (lines
/// joined at a trailing `\`) and the comment lines that follow it.
fn readme_examples() -> Vec<Example> {
    let start = README
        .find("With the quickstart running")
        .expect("the README has a `With the quickstart running` section");
    let block = README[start..]
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("an sh code block follows `With the quickstart running`");
    let mut examples: Vec<Example> = Vec::new();
    let mut command = String::new();
    for line in block.lines() {
        if let Some(output) = line.strip_prefix('#') {
            let output = output.strip_prefix(' ').unwrap_or(output);
            examples
                .last_mut()
                .expect("output follows a command")
                .shown
                .push(output.to_owned());
        } else if let Some(part) = line.trim_end().strip_suffix('\\') {
            command.push_str(part);
            command.push(' ');
        } else if !line.trim().is_empty() {
            command.push_str(line);
            examples.push(Example {
                curl: Curl::parse(&command),
                shown: Vec::new(),
            });
            command.clear();
        }
    }
    for example in &mut examples {
        while example.shown.last().is_some_and(|line| line.is_empty()) {
            example.shown.pop();
        }
    }
    examples
}

/// The part of `curl` the README uses: `-s`, `-i`, `-X`, `-H`, `-d`, one URL,
/// and optionally `| grep WORD`.
#[derive(Debug)]
struct Curl {
    method: Option<Method>,
    url: String,
    headers: Vec<(String, String)>,
    data: Option<String>,
    grep: Option<String>,
}

impl Curl {
    fn parse(command: &str) -> Curl {
        let words = shell_words(command);
        let (curl, grep) = match words.iter().position(|word| word == "|") {
            Some(pipe) => {
                let grep = &words[pipe + 1..];
                assert_eq!(grep.len(), 2, "only `| grep WORD` is understood: {command}");
                assert_eq!(
                    grep[0], "grep",
                    "only `| grep WORD` is understood: {command}"
                );
                (&words[..pipe], Some(grep[1].clone()))
            }
            None => (&words[..], None),
        };
        assert_eq!(
            curl.first().map(String::as_str),
            Some("curl"),
            "not a curl line: {command}"
        );
        let mut parsed = Curl {
            method: None,
            url: String::new(),
            headers: Vec::new(),
            data: None,
            grep,
        };
        let mut args = curl[1..].iter();
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .unwrap_or_else(|| panic!("{arg} needs a value: {command}"))
                    .clone()
            };
            match arg.as_str() {
                "-s" | "-i" => {}
                "-X" => parsed.method = Some(value().parse().expect("a method")),
                "-H" => {
                    let header = value();
                    let (name, value) = header.split_once(':').expect("a header is `name: value`");
                    parsed
                        .headers
                        .push((name.trim().to_owned(), value.trim().to_owned()));
                }
                "-d" => parsed.data = Some(value()),
                url if url.starts_with("http://") => parsed.url = url.to_owned(),
                other => panic!("curl option {other} is not understood by this test: {command}"),
            }
        }
        assert!(!parsed.url.is_empty(), "no URL in {command}");
        parsed
    }

    /// Sends the request as curl would, to `addr` instead of the README's address.
    async fn send(&self, addr: SocketAddr) -> (StatusCode, HeaderMap, String) {
        let url = self.url.replacen(README_ADDR, &addr.to_string(), 1);
        assert_ne!(url, self.url, "the README's URLs name {README_ADDR}");
        let method = match (&self.method, &self.data) {
            (Some(method), _) => method.clone(),
            (None, Some(_)) => Method::POST,
            (None, None) => Method::GET,
        };
        let mut request = Request::builder()
            .method(method)
            .uri(url)
            .header("accept", "*/*");
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let has_content_type = self
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        if self.data.is_some() && !has_content_type {
            // What `curl -d` sends unless told otherwise.
            request = request.header("content-type", "application/x-www-form-urlencoded");
        }
        let body = Full::new(Bytes::from(self.data.clone().unwrap_or_default()));
        let request = request.body(body).unwrap();

        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let exchange = async {
            let response = client
                .request(request)
                .await
                .expect("the quickstart answers");
            let (parts, body) = response.into_parts();
            let body = body.collect().await.expect("the body arrives").to_bytes();
            (
                parts.status,
                parts.headers,
                String::from_utf8(body.to_vec()).expect("a UTF-8 body"),
            )
        };
        tokio::time::timeout(REQUEST_LIMIT, exchange)
            .await
            .unwrap_or_else(|_| panic!("no answer to {self:?}"))
    }
}

/// Splits a command line into words as a POSIX shell does for the quoting the
/// README uses: single quotes, double quotes (no escapes inside), and `|`.
fn shell_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                let word = word.get_or_insert_with(String::new);
                for quoted in chars.by_ref() {
                    if quoted == c {
                        break;
                    }
                    word.push(quoted);
                }
            }
            '|' => {
                words.extend(word.take());
                words.push("|".to_owned());
            }
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

fn status_line(status: StatusCode) -> String {
    format!(
        "HTTP/1.1 {} {}",
        status.as_str(),
        status.canonical_reason().unwrap_or_default()
    )
}

#[test]
fn shell_words_follow_the_quotes() {
    assert_eq!(
        shell_words(r#"curl -s -d '{"name":"world"}' http://x/metrics | grep faas"#),
        [
            "curl",
            "-s",
            "-d",
            r#"{"name":"world"}"#,
            "http://x/metrics",
            "|",
            "grep",
            "faas"
        ]
    );
}
