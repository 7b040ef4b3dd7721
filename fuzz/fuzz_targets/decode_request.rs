//! Fuzzes the request side of the HTTP trigger with real code:
//! `faas_triggers::http::RequestDecoder::decode` (routing, body limit,
//! `x-timeout`, `x-callback-url`, `traceparent`, CloudEvents structured mode),
//! `faas_triggers::http::encode_response`, and `faas_core::CloudEvent::decode`
//! with re-encoding in both modes.
//!
//! Run with `cargo +nightly fuzz run decode_request` from this directory.

#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use faas_core::{CloudEvent, FunctionDefinition, InvocationPolicy, Registry, TriggerSpec};
use faas_triggers::http::{Decoded, ReplyMode, RequestDecoder, Router, encode_response};
use http::{HeaderName, HeaderValue, Method, Request};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;

async fn echo(body: Bytes) -> Bytes {
    body
}

fn decoder() -> &'static RequestDecoder {
    static DECODER: OnceLock<RequestDecoder> = OnceLock::new();
    DECODER.get_or_init(|| {
        let registry = Registry::from([
            FunctionDefinition::from_handler("echo", echo),
            FunctionDefinition::from_handler("small", echo)
                .with_policy(InvocationPolicy::default().with_max_body_bytes(64)),
            FunctionDefinition::from_handler("orders", echo).with_trigger(TriggerSpec::Http {
                path: "/api/orders/{id}".into(),
                methods: vec!["POST".into()],
            }),
        ]);
        let router = Router::new()
            .with_default_function("echo")
            .with_path("/api/orders/{id}", "orders", &["POST"])
            .expect("a valid route")
            .with_path("/files/{*path}", "echo", &[] as &[&str])
            .expect("a valid route");
        RequestDecoder::new(registry, router, 64 * 1024)
    })
}

const NAMES: &[&str] = &[
    "content-type",
    "accept",
    "x-timeout",
    "x-call-id",
    "x-callback-url",
    "traceparent",
    "ce-specversion",
    "ce-id",
    "ce-source",
    "ce-type",
    "ce-time",
    "ce-subject",
];

const VALUES: &[&str] = &[
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
    "application/json",
    "text/plain",
    "1.0",
    "2s",
    "http://127.0.0.1:9/cb",
];

const PATHS: &[&str] = &[
    "/",
    "/function/echo",
    "/function/small/x",
    "/async-function/echo",
    "/api/orders/1",
    "/api/orders/%ff",
    "/api/orders/a%20b/",
    "/files/a/b%2Fc",
    "/function/orders/api/orders/7",
    "/_/health",
    "/metrics",
];

fn request(input: &mut Unstructured<'_>) -> Result<Option<Request<Bytes>>> {
    let method = match input.int_in_range(0..=4)? {
        0 => Method::GET,
        1 => Method::POST,
        2 => Method::PUT,
        3 => Method::DELETE,
        _ => match Method::from_bytes(input.arbitrary::<&[u8]>()?) {
            Ok(method) => method,
            Err(_) => return Ok(None),
        },
    };
    let path = if input.arbitrary()? {
        (*input.choose(PATHS)?).to_owned()
    } else {
        input.arbitrary::<String>()?
    };
    let Ok(mut request) = Request::builder().method(method).uri(path).body(Bytes::new()) else {
        return Ok(None);
    };
    for _ in 0..input.int_in_range(0..=8)? {
        let name = if input.arbitrary()? {
            HeaderName::from_static(input.choose(NAMES)?)
        } else {
            match HeaderName::from_bytes(input.arbitrary::<&[u8]>()?) {
                Ok(name) => name,
                Err(_) => continue,
            }
        };
        let value = if input.arbitrary()? {
            HeaderValue::from_static(input.choose(VALUES)?)
        } else {
            match HeaderValue::from_bytes(input.arbitrary::<&[u8]>()?) {
                Ok(value) => value,
                Err(_) => continue,
            }
        };
        request.headers_mut().append(name, value);
    }
    let rest = input.len();
    *request.body_mut() = Bytes::copy_from_slice(input.bytes(rest)?);
    Ok(Some(request))
}

fuzz_target!(|data: &[u8]| {
    let mut input = Unstructured::new(data);
    let Ok(Some(request)) = request(&mut input) else {
        return;
    };
    let headers = request.headers().clone();
    let body = request.body().clone();

    // The HTTP trigger's decoding, then its encoding of an answer.
    match decoder().decode(request) {
        Ok(Decoded::Call(call)) => {
            assert!(call.invocation.uri().path().starts_with('/'));
            let answer = http::Response::new(call.invocation.body().clone());
            let written = encode_response(answer, HeaderValue::from_static("fuzz"), call.reply);
            assert_eq!(written.headers()["x-call-id"], "fuzz");
        }
        Ok(_) => {}
        Err(rejection) => {
            let status = rejection.error.status().as_u16();
            assert!((400..500).contains(&status), "a refusal is the caller's error: {status}");
        }
    }

    // CloudEvents decoding; whatever decodes re-encodes into something that decodes.
    if let Ok(event) = CloudEvent::decode(&headers, &body) {
        let structured = event.clone().encode_structured();
        CloudEvent::decode(structured.headers(), structured.body()).expect("structured re-decodes");
        let binary = event.encode_binary();
        let written = encode_response(binary, HeaderValue::from_static("fuzz"), ReplyMode::Structured);
        let _ = CloudEvent::decode(written.headers(), written.body());
    }
});
