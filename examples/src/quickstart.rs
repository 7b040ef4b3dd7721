//! The quickstart: a hello HTTP function and a cron tick, served by the local
//! executor. `cargo run --example quickstart` runs [`app`]; so do the
//! integration tests, on port 0.
//!
//! The functions below are the ones the README shows, character for
//! character (a test keeps them in step).

use std::net::SocketAddr;

use faas_core::{CloudEvent, Json, LocalExecutor, Registry, function, functions};
use faas_triggers::cron::CronTrigger;
use faas_triggers::http::{HttpTrigger, HttpTriggerConfig};

use crate::App;

// README: begin
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Greeting {
    name: String,
}

#[derive(Serialize)]
struct Reply {
    message: String,
}

/// Greets the caller by name.
#[function(trigger = http(path = "/hello", methods = ["POST"]), timeout = "5s")]
async fn hello(Json(greeting): Json<Greeting>) -> Json<Reply> {
    Json(Reply {
        message: format!("Hello, {}!", greeting.name),
    })
}

/// Logs a line every ten seconds.
#[function(trigger = cron("*/10 * * * * *"))]
async fn tick(event: CloudEvent) {
    tracing::info!(time = event.time.as_deref().unwrap_or("?"), "tick");
}
// README: end

/// The quickstart's functions: `hello` (`POST /hello`, also
/// `/function/hello` and `/async-function/hello`) and `tick` (every ten seconds).
///
/// # Errors
///
/// [`faas_core::Error`] when a name is taken twice (it is not).
pub fn registry() -> faas_core::Result<Registry> {
    Registry::try_from_iter(functions![hello, tick])
}

/// The quickstart, ready to run: the functions of [`registry`] on a
/// [`LocalExecutor`] with an HTTP trigger bound to `addr` (port 0: any free
/// port, see [`App::local_addr`]) and a cron trigger.
///
/// ```no_run
/// # async fn start() -> faas_examples::Result<()> {
/// let app = faas_examples::quickstart::app(([127, 0, 0, 1], 8080).into()).await?;
/// app.shutdown_on_signal().run().await
/// # }
/// ```
///
/// # Errors
///
/// [`Error::Triggers`](crate::Error::Triggers) when `addr` cannot be bound.
pub async fn app(addr: SocketAddr) -> crate::Result<App> {
    let registry = registry()?;
    let http = HttpTrigger::bind(HttpTriggerConfig::new(addr)).await?;
    let addr = http.local_addr()?;
    let cron = CronTrigger::from_registry(&registry)?;
    let executor = LocalExecutor::builder(registry)
        .trigger(http)
        .trigger(cron)
        .build();
    Ok(App::new(executor, addr))
}

#[cfg(test)]
mod tests {
    use faas_core::{Context, ErrorKind, Invocation, TriggerSpec};

    use super::*;

    #[tokio::test]
    async fn hello_greets_by_name() {
        let Json(reply) = hello(Json(Greeting { name: "ada".into() })).await;
        assert_eq!(reply.message, "Hello, ada!");
    }

    #[tokio::test]
    async fn hello_refuses_malformed_json() {
        let executor = LocalExecutor::new(registry().unwrap());
        let invocation =
            Invocation::new(r#"{"name":"#).with_header("content-type", "application/json");
        let error = executor.invoke("hello", invocation).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::BadInput);
    }

    #[tokio::test]
    async fn tick_takes_the_cron_event() {
        let event = CloudEvent::new("1", "/faas/cron/tick", "dev.faas.cron.tick")
            .with_time("2025-01-01T00:00:10Z");
        let invocation = Invocation::from_event(event).with_context(Context::new("tick"));
        let executor = LocalExecutor::new(registry().unwrap());
        let response = executor.invoke("tick", invocation).await.unwrap();
        assert_eq!(response.status(), 204);
    }

    #[test]
    fn triggers_are_declared() {
        let registry = registry().unwrap();
        assert_eq!(registry.names(), ["hello", "tick"]);
        let hello = registry.get("hello").unwrap();
        assert_eq!(
            hello.meta().triggers,
            [TriggerSpec::Http {
                path: "/hello".into(),
                methods: vec!["POST".into()]
            }]
        );
        let tick = registry.get("tick").unwrap();
        assert_eq!(tick.meta().triggers, [TriggerSpec::cron("*/10 * * * * *")]);
    }

    /// The README's example is this module's functions, unchanged.
    #[test]
    fn the_readme_shows_these_functions() {
        let source = include_str!("quickstart.rs");
        let readme = include_str!("../../README.md");
        let begin = source.find("// README: begin\n").unwrap() + "// README: begin\n".len();
        let end = source.find("// README: end").unwrap();
        let functions = &source[begin..end];
        assert!(
            readme.contains(functions),
            "README.md must show examples/src/quickstart.rs between the README markers, unchanged:\n{functions}"
        );
    }
}
