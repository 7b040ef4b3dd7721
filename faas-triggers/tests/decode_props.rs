//! Property tests of the HTTP request side: arbitrary requests never panic
//! the decoder, and CloudEvents survive encode -> decode in both modes.

use std::collections::BTreeMap;

use bytes::Bytes;
use faas_core::{
    CallId, CloudEvent, FunctionDefinition, FunctionError, InvocationPolicy, Registry, TriggerSpec,
};
use faas_triggers::http::{Decoded, ReplyMode, RequestDecoder, Router, encode_response};
use http::{HeaderName, HeaderValue, Method, Request};
use proptest::prelude::*;

async fn echo(body: Bytes) -> Bytes {
    body
}

fn decoder() -> RequestDecoder {
    let registry = Registry::from([
        FunctionDefinition::from_handler("echo", echo),
        FunctionDefinition::from_handler("small", echo)
            .with_policy(InvocationPolicy::default().with_max_body_bytes(16)),
        FunctionDefinition::from_handler("orders", echo).with_trigger(TriggerSpec::Http {
            path: "/api/orders".into(),
            methods: vec!["POST".into()],
        }),
    ]);
    let router = Router::new()
        .with_default_function("echo")
        .with_path("/api/orders", "orders", &["POST"])
        .unwrap();
    RequestDecoder::new(registry, router, 1024)
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::HEAD),
        "[A-Z]{1,10}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
    ]
}

fn path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("function".to_owned()),
        Just("async-function".to_owned()),
        Just("echo".to_owned()),
        Just("small".to_owned()),
        Just("_".to_owned()),
        Just("health".to_owned()),
        Just("api".to_owned()),
        Just("orders".to_owned()),
        Just(String::new()),
        "[a-zA-Z0-9._~%-]{1,12}",
    ];
    (
        prop::collection::vec(segment, 0..6),
        prop::option::of("[a-z0-9=&%]{0,12}"),
    )
        .prop_map(|(segments, query)| {
            let mut path = format!("/{}", segments.join("/"));
            if let Some(query) = query {
                path.push('?');
                path.push_str(&query);
            }
            path
        })
}

fn header() -> impl Strategy<Value = (HeaderName, HeaderValue)> {
    let name = prop_oneof![
        Just("content-type".to_owned()),
        Just("accept".to_owned()),
        Just("x-timeout".to_owned()),
        Just("x-call-id".to_owned()),
        Just("x-callback-url".to_owned()),
        Just("traceparent".to_owned()),
        Just("ce-specversion".to_owned()),
        Just("ce-id".to_owned()),
        Just("ce-source".to_owned()),
        Just("ce-type".to_owned()),
        "ce-[a-z0-9]{1,8}",
        "x-[a-z-]{1,10}",
    ];
    let value = prop_oneof![
        Just("application/cloudevents+json".to_owned()),
        Just("application/cloudevents-batch+json".to_owned()),
        Just("application/json".to_owned()),
        Just("1.0".to_owned()),
        Just("2s".to_owned()),
        Just("http://127.0.0.1:9/cb".to_owned()),
        Just("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
        "[ -~]{0,40}",
    ];
    let raw = prop::collection::vec(any::<u8>(), 0..20)
        .prop_filter_map("a header value", |bytes| {
            HeaderValue::from_bytes(&bytes).ok()
        });
    (
        name.prop_map(|n| HeaderName::from_bytes(n.as_bytes()).unwrap()),
        prop_oneof![
            value.prop_filter_map("a header value", |v| HeaderValue::from_str(&v).ok()),
            raw
        ],
    )
}

fn body() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048).prop_map(Bytes::from),
        Just(Bytes::from_static(
            br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":1}}"#
        )),
        "[ -~]{0,200}".prop_map(Bytes::from),
    ]
}

/// A CloudEvent whose every attribute survives both modes exactly.
fn event() -> impl Strategy<Value = CloudEvent> {
    let text = "\\PC{1,24}";
    let reserved = [
        "specversion",
        "id",
        "source",
        "type",
        "subject",
        "time",
        "datacontenttype",
        "dataschema",
        "data",
    ];
    let extensions = prop::collection::btree_map(
        "[a-z0-9]{1,12}".prop_filter("not a context attribute", move |name| {
            !reserved.contains(&name.as_str()) && !name.starts_with("data")
        }),
        "\\PC{0,24}",
        0..4,
    );
    let json = prop_oneof![
        any::<i64>().prop_map(serde_json::Value::from),
        "\\PC{0,20}".prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
        prop::collection::btree_map("[a-z]{1,6}", any::<i32>(), 0..4)
            .prop_map(|map| serde_json::json!(map)),
    ];
    let data = prop_oneof![
        Just(None),
        json.prop_map(|value| Some((
            "application/json".to_owned(),
            Bytes::from(serde_json::to_vec(&value).unwrap())
        ))),
        "\\PC{1,40}"
            .prop_map(|text| Some(("text/plain; charset=utf-8".to_owned(), Bytes::from(text)))),
        prop::collection::vec(any::<u8>(), 1..64)
            .prop_map(|bytes| Some(("application/octet-stream".to_owned(), Bytes::from(bytes)))),
    ];
    (
        text,
        text,
        text,
        prop::option::of(text),
        prop::option::of(text),
        prop::option::of(text),
        extensions,
        data,
    )
        .prop_map(
            |(id, source, ty, subject, time, dataschema, extensions, data)| {
                let mut event = CloudEvent::new(id, source, ty);
                event.subject = subject;
                event.time = time;
                event.dataschema = dataschema;
                event.extensions = extensions.into_iter().collect::<BTreeMap<_, _>>();
                if let Some((content_type, data)) = data {
                    event = event.with_data(content_type, data);
                }
                event
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_requests_never_panic(
        method in method(),
        path in path(),
        headers in prop::collection::vec(header(), 0..8),
        body in body(),
    ) {
        let decoder = decoder();
        let Ok(mut request) = Request::builder().method(method).uri(path.as_str()).body(body.clone()) else {
            return Ok(());
        };
        for (name, value) in headers {
            request.headers_mut().append(name, value);
        }
        let call_id = CallId::new();
        match decoder.decode(request) {
            Ok(Decoded::Call(call)) => {
                prop_assert!(call.invocation.body().len() <= 1024);
                prop_assert!(call.invocation.uri().path().starts_with('/'));
                // Whatever the function answers is written without a panic.
                let answer = http::Response::new(call.invocation.body().clone());
                let written = encode_response(answer, HeaderValue::from_static("id"), call.reply);
                prop_assert_eq!(&written.headers()["x-call-id"], "id");
            }
            Ok(_) => {}
            Err(rejection) => {
                let status = rejection.error.status().as_u16();
                prop_assert!((400..500).contains(&status), "status {}", status);
                let response = rejection.error.to_response(&call_id);
                let back = FunctionError::from_response_parts(response.status(), response.body());
                prop_assert!(back.is_some());
            }
        }
    }

    #[test]
    fn arbitrary_responses_are_rewritten_only_when_they_are_events(
        headers in prop::collection::vec(header(), 0..8),
        body in body(),
    ) {
        let mut response = http::Response::new(body.clone());
        for (name, value) in headers {
            response.headers_mut().append(name, value);
        }
        let event = response
            .headers()
            .contains_key("ce-specversion")
            .then(|| CloudEvent::from_binary(response.headers(), response.body()).ok())
            .flatten();
        let written = encode_response(response, HeaderValue::from_static("id"), ReplyMode::Structured);
        prop_assert_eq!(&written.headers()["x-call-id"], "id");
        match event {
            Some(event) => {
                prop_assert_eq!(&written.headers()["content-type"], "application/cloudevents+json");
                prop_assert!(!written.headers().keys().any(|name| name.as_str().starts_with("ce-")));
                let back = CloudEvent::decode(written.headers(), written.body());
                prop_assert_eq!(back.ok(), Some(event));
            }
            None => prop_assert_eq!(written.body(), &body),
        }
    }

    #[test]
    fn binary_mode_round_trips(event in event()) {
        let response = event.clone().encode_binary();
        let back = CloudEvent::decode(response.headers(), response.body());
        prop_assert_eq!(back.as_ref().ok(), Some(&event), "{:?}", back);
    }

    #[test]
    fn structured_mode_round_trips(event in event()) {
        let response = event.clone().encode_structured();
        let back = CloudEvent::decode(response.headers(), response.body());
        prop_assert_eq!(back.as_ref().ok(), Some(&event), "{:?}", back);
    }

    /// A structured request reaches the function in binary mode, and the
    /// function's binary answer goes back in structured mode: the same event.
    #[test]
    fn structured_requests_round_trip_through_the_decoder(event in event()) {
        let structured = event.clone().encode_structured();
        let request = Request::post("/function/echo")
            .header("content-type", "application/cloudevents+json")
            .body(structured.body().clone())
            .unwrap();
        let decoded = decoder().decode(request);
        let Ok(Decoded::Call(call)) = decoded else {
            // Over the 1 KiB limit is the only refusal allowed.
            prop_assert!(structured.body().len() > 1024, "{:?}", decoded);
            return Ok(());
        };
        prop_assert_eq!(call.reply, ReplyMode::Structured);
        let seen = CloudEvent::from_binary(call.invocation.headers(), call.invocation.body());
        prop_assert_eq!(seen.as_ref().ok(), Some(&event), "{:?}", seen);

        let answer = event.clone().encode_binary();
        let written = encode_response(answer, HeaderValue::from_static("id"), call.reply);
        prop_assert_eq!(&written.headers()["content-type"], "application/cloudevents+json");
        let back = CloudEvent::decode(written.headers(), written.body());
        prop_assert_eq!(back.as_ref().ok(), Some(&event), "{:?}", back);
    }
}
