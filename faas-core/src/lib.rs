//! The function model of faas: a function is a plain `async fn`, and this crate
//! holds everything a host needs to call it the same way everywhere.
//!
//! - **Functions**: [`Function`] (dyn-compatible), built from an `async fn` whose
//!   arguments are extractors ([`FromInvocation`]: [`Json`], `Bytes`, `String`,
//!   [`Context`], [`CloudEvent`], [`State`], [`Extension`], [`Path`],
//!   [`Query`], ...; [`AsyncFromInvocation`] for one that waits) and whose
//!   return is an output ([`IntoOutput`], headers included); any
//!   [`tower::Service`] of invocations is a function too
//!   ([`FunctionDefinition::from_service`]), and a function can be wrapped in
//!   tower [`layer`]s before it is registered; [`FunctionDefinition`] adds a name, triggers, an
//!   [`InvocationPolicy`] and [`ScalingHints`]; a [`Registry`] holds them.
//! - **Calls**: an [`Invocation`] is an HTTP-shaped request plus a [`Context`]
//!   (call id, deadline, attempt, cancellation). A [`FunctionError`] has a kind
//!   that every host answers the same way, with
//!   [`FunctionError::to_response`].
//! - **Hosting**: a [`Trigger`] feeds invocations to a [`Dispatcher`], which applies
//!   the policy (in-flight limit, deadline, panic isolation, retries, dead letter);
//!   the [`LocalExecutor`] runs triggers in-process and shuts down gracefully;
//!   a [`Provider`] deploys, scales, invokes and tails functions
//!   ([`LocalProvider`] in-process; Kubernetes in `faas-k8s`).
//!
//! No server and no Kubernetes here: triggers live in `faas-triggers`, the
//! cluster side in `faas-k8s`.
//!
//! # Example
//!
//! A plain async fn, registered and called through the local executor:
//!
//! ```
//! use faas_core::prelude::*;
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
//! async fn hello(Json(req): Json<Greet>, ctx: Context) -> Result<Json<Greeting>, FunctionError> {
//!     if req.name.is_empty() {
//!         return Err(FunctionError::bad_input("`name` must not be empty"));
//!     }
//!     Ok(Json(Greeting { message: format!("hello, {} (call {})", req.name, ctx.call_id()) }))
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let registry = Registry::new();
//! registry.register(
//!     FunctionDefinition::from_handler("hello", hello)
//!         .with_trigger(TriggerSpec::http("/hello"))
//!         .with_policy(InvocationPolicy::default().with_timeout(std::time::Duration::from_secs(5))),
//! )?;
//! let executor = LocalExecutor::builder(registry).build();
//!
//! let call = Invocation::new(r#"{"name":"ada"}"#).with_header("content-type", "application/json");
//! let response = executor.invoke("hello", call).await?;
//! assert_eq!(response.status(), 200);
//!
//! // Errors come back with their kind; hosts turn them into the same JSON answer.
//! let error = executor.invoke("hello", Invocation::new(r#"{"name":""}"#)).await.unwrap_err();
//! assert_eq!(error.kind(), ErrorKind::BadInput);
//! # Ok(())
//! # })
//! # }
//! ```
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `macros` | yes | re-exports [`#[function]`](macro@function) and [`functions!`](functions), which record a function's name, triggers and policy and give readable errors on a wrong signature |
//! | `local` | yes | the in-process host: [`LocalExecutor`], [`Dispatcher`], [`Trigger`], Prometheus [`Metrics`], the [`InvocationLog`] buffer, shutdown on SIGINT/SIGTERM and [`LocalProvider`] |
//!
//! Everything compiles and works without the macros: they only write the
//! [`FunctionDefinition`] for you.
//!
//! ## The model without the host
//!
//! A crate that only defines functions (a library of handlers, a crate a
//! provider or gateway links for the types) needs none of the hosting
//! machinery. With `default-features = false` (plus `macros` if wanted) it
//! gets the model alone: [`Function`], [`Handler`], the extractors and
//! outputs, [`Invocation`], [`Context`], [`FunctionError`],
//! [`InvocationPolicy`] and its [`layer`]s, [`FunctionDefinition`],
//! [`Registry`], [`Provider`] and the [`Lag`](trigger::Lag) contract; tokio
//! comes without its `signal` driver and prometheus-client not at all.
//!
//! ```toml
//! [dependencies]
//! faas-core = { version = "0.1", default-features = false, features = ["macros"] }
//! ```

mod cancellation;
pub mod cloudevent;
pub mod context;
pub mod definition;
pub mod error;
#[cfg(feature = "local")]
pub mod executor;
pub mod extract;
pub mod function;
pub mod handler;
pub mod invocation;
pub mod json;
pub mod layer;
pub mod logs;
#[cfg(feature = "local")]
pub mod metrics;
pub mod output;
pub mod policy;
pub mod provider;
pub mod registry;
pub mod trigger;

pub use cloudevent::CloudEvent;
pub use context::{CALL_ID_HEADER, CallId, Context, TRACEPARENT_HEADER};
pub use definition::{FunctionDefinition, FunctionMeta, ScalingHints, TriggerSpec};
pub use error::{BoxError, Error, ErrorBody, ErrorDetail, ErrorKind, FunctionError, Result};
#[cfg(feature = "local")]
pub use executor::{HostShutdown, LocalExecutor, LocalExecutorBuilder};
pub use extract::{
    AsyncFromInvocation, Extension, FromInvocation, OptionalFromInvocation, Path, PathParams,
    Query, State,
};
pub use function::{Function, FunctionService, ServiceFunction, SharedFunction};
pub use handler::{Handler, HandlerFunction, HandlerFuture, handler_fn};
pub use invocation::Invocation;
pub use json::Json;
#[cfg(feature = "local")]
pub use logs::InvocationLog;
pub use logs::{LogLine, LogQuery};
#[cfg(feature = "local")]
pub use metrics::Metrics;
pub use output::{IntoOutput, IntoOutputParts, Response};
pub use policy::{DeadLetter, DeadLetterEntry, InMemoryDeadLetter, InvocationPolicy, RetryPolicy};
#[cfg(feature = "local")]
pub use provider::LocalProvider;
pub use provider::{
    FunctionDeployment, FunctionRef, FunctionStatus, Provider, ProviderError, ProviderResult,
};
pub use registry::{RegisteredFunction, Registry};
pub use trigger::Delivery;
#[cfg(feature = "local")]
pub use trigger::{Dispatcher, Trigger};

#[cfg(feature = "macros")]
pub use faas_macros::{function, functions};

/// The items most functions and hosts use: `use faas_core::prelude::*;`.
pub mod prelude {
    pub use crate::{
        CloudEvent, Context, ErrorKind, Extension, FromInvocation, Function, FunctionDefinition,
        FunctionError, IntoOutput, Invocation, InvocationPolicy, Json, Path, Query, Registry,
        Response, RetryPolicy, State, TriggerSpec,
    };

    #[cfg(feature = "local")]
    pub use crate::LocalExecutor;

    #[cfg(feature = "macros")]
    pub use crate::{function, functions};
}
