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
//!   OpenFaaS watchdog does), runs the event sources its functions declare
//!   (`FAAS_NATS_URL`, `FAAS_REDIS_URL`, ... name their servers; see
//!   [`RuntimeConfig`]) and drains on SIGTERM.
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
//! | `nats` | no | `nats`: the NATS JetStream trigger, a durable pull consumer (async-nats) |
//! | `redis` | no | `redis`: the Redis Streams trigger, a consumer group member (redis) |
//! | `postgres` | no | `postgres`: row changes of a table through an outbox (tokio-postgres) |
//! | `storage` | no | `storage`: complete files appearing in a directory (notify, sha2) |
//! | `kube` | no | `kube`: changes of Kubernetes objects of any kind, resuming from a checkpoint (kube, k8s-openapi) |
//!
//! # Event sources
//!
//! The event triggers deliver at least once: one call per delivery, the
//! source's delivery count as [`Context::attempt`](faas_core::Context::attempt),
//! the message settled after the call (ack on success; nack with the
//! policy's backoff as the redelivery delay; terminate once it is safe in
//! the dead letter; in progress while a long call runs). Each event reaches
//! the function as a CloudEvent whose id is stable across redeliveries, or
//! as its typed payload through `Json<T>`. A source that cannot reach its
//! server waits for it with back-off and holds `/_/ready` at 503
//! meanwhile; a bad setting is an [`Error::InvalidConfig`] naming it. Each
//! source has a `lag_source()` for the autoscaler, and calls its function
//! through the host's dispatcher or any other
//! [`Invoker`](faas_core::trigger::Invoker), such as `gateway::GatewayInvoker`
//! for a connector running beside the gateway.

mod error;
#[cfg(any(
    feature = "nats",
    feature = "redis",
    feature = "postgres",
    feature = "storage",
    feature = "kube"
))]
mod event;
#[cfg(feature = "http")]
pub mod gateway;
#[cfg(feature = "kube")]
pub mod kube;
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
    DEFAULT_PORT, ENV_CRON, ENV_DRAIN_TIMEOUT, ENV_EVENTS, ENV_FUNCTION, ENV_KUBE_CHECKPOINT,
    ENV_MAX_BODY, ENV_NATS_URL, ENV_POD_IP, ENV_PORT, ENV_POSTGRES_URL, ENV_REDIS_URL,
    ENV_STORAGE_ROOT, ENV_TIMEOUT, Runtime, RuntimeConfig, serve,
};
