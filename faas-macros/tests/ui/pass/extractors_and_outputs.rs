//! Several extractor and output combinations, and what the macro leaves alone.

use bytes::Bytes;
use faas_core::{CloudEvent, Context, FunctionError, Invocation, Json};
use faas_macros::function;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize)]
struct Item {
    name: String,
}

#[function]
async fn no_arguments() {}

#[function]
async fn echo_bytes(body: Bytes) -> Bytes {
    body
}

#[function]
async fn echo_text(body: String, _headers: HeaderMap) -> String {
    body
}

#[function]
async fn optional(item: Option<Json<Item>>) -> (StatusCode, String) {
    match item {
        Some(Json(item)) => (StatusCode::OK, item.name),
        None => (StatusCode::ACCEPTED, String::new()),
    }
}

#[function]
async fn request(request: http::Request<Bytes>) -> http::Response<Bytes> {
    http::Response::new(request.into_body())
}

#[function]
async fn event(event: CloudEvent, ctx: Context) -> Result<StatusCode, FunctionError> {
    if ctx.is_cancelled() || event.data.is_none() {
        return Err(FunctionError::bad_input("an event without data"));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[function]
async fn static_text() -> &'static str {
    "ok"
}

#[function]
async fn vector(Json(items): Json<Vec<Item>>) -> Vec<u8> {
    items.len().to_string().into_bytes()
}

#[function]
async fn returns_impl() -> impl faas_core::IntoOutput {
    Json(Item { name: "x".into() })
}

#[function]
async fn whole_invocation(invocation: Invocation) -> Result<Json<Item>, FunctionError> {
    let name = String::from_utf8(invocation.body().to_vec())
        .map_err(|error| FunctionError::bad_input(error.to_string()))?;
    Ok(Json(Item { name }))
}

/// A function with attributes of its own, all kept.
#[function(trigger = http(path = "/eight"))]
#[allow(clippy::too_many_arguments)]
#[inline]
async fn eight(
    _a: Bytes,
    _b: String,
    _c: HeaderMap,
    _d: Context,
    _e: Option<String>,
    _f: http::Method,
    _g: http::Uri,
    _h: Invocation,
) {
}

fn main() {
    let names: Vec<String> = [
        __faas_function_no_arguments::definition(),
        __faas_function_echo_bytes::definition(),
        __faas_function_echo_text::definition(),
        __faas_function_optional::definition(),
        __faas_function_request::definition(),
        __faas_function_event::definition(),
        __faas_function_static_text::definition(),
        __faas_function_vector::definition(),
        __faas_function_returns_impl::definition(),
        __faas_function_whole_invocation::definition(),
        __faas_function_eight::definition(),
    ]
    .iter()
    .map(|definition| definition.name().to_owned())
    .collect();
    assert_eq!(names.len(), 11);
    assert_eq!(names[10], "eight");
    assert_eq!(
        __faas_function_eight::definition().meta().description.as_deref(),
        Some("A function with attributes of its own, all kept.")
    );

    // The fns are untouched and callable directly.
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert_eq!(runtime.block_on(echo_text("hi".into(), HeaderMap::new())), "hi");
    assert_eq!(runtime.block_on(static_text()), "ok");
}
