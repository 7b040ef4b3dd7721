//! `#[function]` against the real faas-core: the definitions it builds and
//! the functions those definitions call.

// The expansion must not add a warning of its own to the user's crate.
#![deny(warnings)]

use std::time::Duration;

use faas_core::{Context, Function, FunctionError, Invocation, Json, Registry, TriggerSpec};
use faas_macros::{function, functions};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Greeting {
    name: String,
}

#[derive(Serialize)]
struct Reply {
    message: String,
    function: String,
}

/// Greets the caller
/// by name.
///
/// This paragraph is not part of the description.
#[function(
    name = "hello",
    trigger = http(path = "/hello", methods = ["POST"]),
    timeout = "5s",
    concurrency = 10,
    max_attempts = 3
)]
async fn hello(Json(greeting): Json<Greeting>, ctx: Context) -> Result<Json<Reply>, FunctionError> {
    if greeting.name.is_empty() {
        return Err(FunctionError::bad_input("name is empty"));
    }
    Ok(Json(Reply {
        message: format!("Hello, {}!", greeting.name),
        function: ctx.function_name().to_owned(),
    }))
}

#[function(
    trigger = cron("0 */5 * * * *", timezone = "Europe/Paris"),
    trigger = http,
    timeout = "1m30s",
    description = "Runs every five minutes"
)]
async fn tick_tock() {}

mod jobs {
    use faas_macros::function;

    #[function(trigger = cron("@daily"), max_attempts = 1)]
    pub(crate) async fn nightly(body: String) -> String {
        body.to_uppercase()
    }
}

/// Kept for old callers.
#[function(name = "hello-v1")]
#[deprecated(note = "use `hello`")]
async fn old_hello() -> &'static str {
    "hello"
}

// Compiled out: the generated struct and checks must go with the fn, or
// `NotAType` would fail to resolve.
#[function]
#[cfg(any())]
async fn compiled_out(_: NotAType) {}

#[test]
fn attributes_of_the_fn_apply_to_the_expansion() {
    let definition = __faas_function_old_hello::definition();
    assert_eq!(definition.name(), "hello-v1");
    assert_eq!(
        definition.meta().description.as_deref(),
        Some("Kept for old callers.")
    );
}

#[test]
fn the_definition_carries_every_option() {
    let definition = __faas_function_hello::definition();
    let meta = definition.meta();
    assert_eq!(definition.name(), "hello");
    assert_eq!(
        meta.description.as_deref(),
        Some("Greets the caller by name.")
    );
    assert_eq!(
        meta.triggers,
        vec![TriggerSpec::Http {
            path: "/hello".into(),
            methods: vec!["POST".into()],
        }]
    );
    assert_eq!(definition.policy().timeout(), Some(Duration::from_secs(5)));
    assert_eq!(definition.policy().max_in_flight(), Some(10));
    assert_eq!(definition.policy().retry().max_attempts, 3);
}

#[test]
fn defaults_come_from_the_fn_and_from_faas_core() {
    let definition = __faas_function_tick_tock::definition();
    assert_eq!(definition.name(), "tick_tock");
    assert_eq!(
        definition.meta().description.as_deref(),
        Some("Runs every five minutes")
    );
    assert_eq!(
        definition.meta().triggers,
        vec![
            TriggerSpec::Cron {
                schedule: "0 */5 * * * *".into(),
                timezone: Some("Europe/Paris".into()),
            },
            TriggerSpec::Http {
                path: "/tick_tock".into(),
                methods: vec![],
            },
        ]
    );
    let policy = definition.policy();
    assert_eq!(policy.timeout(), Some(Duration::from_secs(90)));
    let defaults = faas_core::InvocationPolicy::default();
    assert_eq!(policy.max_in_flight(), defaults.max_in_flight());
    assert_eq!(policy.retry(), defaults.retry());

    let nightly = jobs::__faas_function_nightly::definition();
    assert_eq!(nightly.meta().description, None);
    assert_eq!(nightly.policy().retry().max_attempts, 1);
    assert_eq!(nightly.policy().timeout(), defaults.timeout());
}

#[tokio::test]
async fn the_definition_calls_the_function() {
    let definition = __faas_function_hello::definition();
    let invocation = Invocation::new(r#"{"name":"Ada"}"#)
        .with_header("content-type", "application/json")
        .with_context(Context::new("hello"));
    let response = definition.function().call(invocation).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"message": "Hello, Ada!", "function": "hello"})
    );

    let error = definition
        .function()
        .call(Invocation::new(r#"{"name":""}"#))
        .await
        .unwrap_err();
    assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
    assert_eq!(error.message(), "name is empty");

    let nightly = jobs::__faas_function_nightly::definition();
    let response = nightly
        .function()
        .call(Invocation::new("shout"))
        .await
        .unwrap();
    assert_eq!(response.body(), "SHOUT");
}

#[test]
fn functions_lists_definitions_for_a_registry() {
    let definitions = functions![hello, tick_tock, jobs::nightly];
    let names: Vec<&str> = definitions.iter().map(|d| d.name()).collect();
    assert_eq!(names, ["hello", "tick_tock", "nightly"]);

    let registry = Registry::from_iter(functions![hello, tick_tock, jobs::nightly,]);
    assert_eq!(registry.len(), 3);
    assert!(registry.contains("nightly"));
    let empty: Registry = functions![].into_iter().collect();
    assert!(empty.is_empty());
}
