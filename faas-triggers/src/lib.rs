//! Triggers for faas functions, and the runtime a function's binary serves in a pod.
//!
//! A trigger turns events from the outside world into calls of the functions
//! of a [`Registry`](faas_core::Registry): it implements faas-core's
//! [`Trigger`](faas_core::Trigger), and a host (the
//! [`LocalExecutor`](faas_core::LocalExecutor), or the runtime below) drives
//! it. Every call goes through a [`Dispatcher`](faas_core::Dispatcher), so the
//! function's [`InvocationPolicy`](faas_core::InvocationPolicy) (deadline,
//! in-flight limit, retries, dead letter) applies the same way to every trigger.
//!
//! - [`http::HttpTrigger`]: `/function/{name}` (sync), `/async-function/{name}`
//!   (202, in-memory queue, result POSTed to `x-callback-url`), the paths the
//!   functions declare, health, readiness and metrics; HTTP/1.1 keep-alive
//!   and h2c; CloudEvents in binary and structured mode, in and out; errors
//!   as JSON with their status.
//! - [`cron::CronTrigger`]: cron schedules with seconds in IANA time zones,
//!   no overlapping runs, a stated policy for missed ticks, each tick a
//!   CloudEvent.
//! - [`serve`] / [`Runtime`]: the function runtime. A function's own binary
//!   calls `faas_triggers::serve(registry)`; it reads `PORT`, `POD_IP` and
//!   `FAAS_*` from the environment, serves `POST /` to the function (as the
//!   OpenFaaS watchdog does) and drains on SIGTERM.
//!
//! # Example
//!
//! A function's binary, as it runs in a pod:
//!
//! ```no_run
//! # #[cfg(feature = "http")]
//! # mod pod {
//! use faas_core::{FunctionDefinition, Json, Registry, TriggerSpec};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Greet {
//!     name: String,
//! }
//!
//! #[derive(Serialize)]
//! struct Greeting {
//!     message: String,
//! }
//!
//! async fn hello(Json(req): Json<Greet>) -> Json<Greeting> {
//!     Json(Greeting { message: format!("hello, {}", req.name) })
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), faas_triggers::Error> {
//!     let registry = Registry::new();
//!     registry.register(
//!         FunctionDefinition::from_handler("hello", hello)
//!             .with_trigger(TriggerSpec::http("/hello")),
//!     )?;
//!     // POST / and POST /hello call `hello`; stops gracefully on SIGTERM.
//!     faas_triggers::serve(registry).await
//! }
//! # }
//! # fn main() {}
//! ```
//!
//! In-process, with both triggers under a [`LocalExecutor`](faas_core::LocalExecutor):
//!
//! ```no_run
//! # #[cfg(all(feature = "http", feature = "cron"))]
//! # mod host {
//! use faas_core::{FunctionDefinition, LocalExecutor, Registry, TriggerSpec};
//! use faas_triggers::cron::CronTrigger;
//! use faas_triggers::http::{HttpTrigger, HttpTriggerConfig};
//!
//! async fn report() -> &'static str {
//!     "done"
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = Registry::new();
//! registry.register(
//!     FunctionDefinition::from_handler("report", report)
//!         .with_trigger(TriggerSpec::cron("0 0 9 * * MON-FRI")),
//! )?;
//! LocalExecutor::builder(registry.clone())
//!     .trigger(HttpTrigger::new(HttpTriggerConfig::new(([127, 0, 0, 1], 8080).into())))
//!     .trigger(CronTrigger::from_registry(&registry)?)
//!     .build()
//!     .shutdown_on_signal()
//!     .run()
//!     .await?;
//! # Ok(()) }
//! # }
//! # fn main() {}
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `http` | yes | [`http`]: the HTTP trigger; [`serve`], [`Runtime`], [`RuntimeConfig`]: the function runtime (hyper, hyper-util) |
//! | `cron` | yes | [`cron`]: the cron trigger (croner, chrono-tz) |
//!
//! Other triggers of the design (queues, storage, databases, Kubernetes events)
//! will come as further features.

mod error;
#[cfg(any(
    feature = "nats",
    feature = "redis",
    feature = "postgres",
    feature = "storage"
))]
mod event;
#[cfg(feature = "http")]
pub mod gateway;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "storage")]
pub mod storage;

#[cfg(feature = "cron")]
pub mod cron;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "http")]
mod runtime;

pub use error::{Error, Result};
#[cfg(feature = "http")]
pub use runtime::manifests;
#[cfg(feature = "http")]
pub use runtime::{
    DEFAULT_PORT, ENV_CRON, ENV_DRAIN_TIMEOUT, ENV_FUNCTION, ENV_MAX_BODY, ENV_POD_IP, ENV_PORT,
    ENV_TIMEOUT, Runtime, RuntimeConfig, serve,
};
