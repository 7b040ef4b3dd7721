//! The `#[function]` attribute of faas: it turns a plain `async fn` into a
//! faas function with a name, triggers and an invocation policy, checks its
//! signature at compile time, and never touches its body.
//!
//! Most code reaches these macros through `faas-core` (`faas_core::function`,
//! `faas_core::functions`, re-exported under its default `macros` feature);
//! this crate can also be used on its own next to `faas-core`.
//!
//! ```
//! use faas_core::{Context, FunctionError, Json, Registry};
//! use faas_macros::{function, functions};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Greeting {
//!     name: String,
//! }
//!
//! #[derive(Serialize)]
//! struct Reply {
//!     message: String,
//! }
//!
//! /// Greets the caller by name.
//! #[function(trigger = http(path = "/hello", methods = ["POST"]), timeout = "5s")]
//! async fn hello(Json(greeting): Json<Greeting>, ctx: Context) -> Result<Json<Reply>, FunctionError> {
//!     if greeting.name.is_empty() {
//!         return Err(FunctionError::bad_input("`name` is empty"));
//!     }
//!     Ok(Json(Reply { message: format!("Hello, {}! ({})", greeting.name, ctx.call_id()) }))
//! }
//!
//! /// Cleans up every night at 02:00, Paris time.
//! #[function(trigger = cron("0 0 2 * * *", timezone = "Europe/Paris"), max_attempts = 4)]
//! async fn cleanup() {}
//!
//! fn main() {
//!     let registry = Registry::from_iter(functions![hello, cleanup]);
//!     assert_eq!(registry.names(), ["cleanup", "hello"]);
//!     let hello = registry.get("hello").unwrap();
//!     assert_eq!(hello.meta().description.as_deref(), Some("Greets the caller by name."));
//! }
//! ```
//!
//! # What the expansion guarantees
//!
//! `#[function(..)] async fn hello(..)` expands to:
//!
//! - **the fn itself, token for token**: same signature, same body, same
//!   attributes, same spans. It stays an ordinary `async fn` that a unit
//!   test can call directly.
//! - **a hidden unit struct `__faas_function_hello`** with the fn's
//!   visibility, whose inherent `pub fn definition() -> FunctionDefinition`
//!   builds the definition: `FunctionDefinition::from_handler(name, hello)`
//!   followed by `.with_trigger(..)` for each trigger, `.with_policy(..)`
//!   when `timeout`, `concurrency` or `max_attempts` is given (starting from
//!   `InvocationPolicy::default()`), and `.with_description(..)`. Each call
//!   builds a fresh definition; nothing is registered globally and nothing
//!   runs before `main`. [`functions!`] names these structs for you.
//! - **hidden compile-time checks**, whose errors land on your own tokens:
//!   every argument type implements `FromInvocation` (error on that
//!   argument's type), the return type implements `IntoOutput` (error on the
//!   return type), and the returned future is `Send` (error on the fn's name,
//!   with a note on the value held across an `.await`).
//!
//! Every path in the expansion is absolute (`::faas_core`, `::core`,
//! `::std`), so no `use` is needed at the call site; `crate = ".."` replaces
//! `::faas_core` for crates that re-export it.
//!
//! When the attribute is misused, the fn is still emitted unchanged next to
//! a `compile_error!` on the offending token (so an IDE keeps resolving the
//! fn), every mistake of one attribute is reported at once, and each
//! message lists the valid choices and the fix.
//!
//! # Compile errors
//!
//! | mistake | reported on |
//! |---|---|
//! | a fn that is not `async`, is `unsafe`, `const` or `extern` | the `fn`, `unsafe`, `const` or `extern` token |
//! | type, const or lifetime parameters | each parameter |
//! | a method taking `self` | the receiver |
//! | `impl Trait` as an argument type | the `impl Trait` |
//! | more than 8 arguments | the ninth argument |
//! | an argument that is not an extractor (`FromInvocation`) | the argument's type |
//! | a return type that is not an output (`IntoOutput`) | the return type |
//! | a future that is not `Send` | the fn's name |
//! | an unknown option (with "did you mean `...`?") | the option's name |
//! | an option given twice (only `trigger` may repeat) | the second one |
//! | a malformed duration, cron expression, time zone, HTTP method or path, or name | the string literal |
//! | `#[function]` on something other than a fn | the attribute |

mod checks;
mod cron;
mod definition;
mod duration;
mod errors;
mod event_trigger;
mod expand;
mod functions;
mod options;
mod signature;
mod suggest;
mod trigger;

use proc_macro::TokenStream;

/// Declares an `async fn` as a faas function.
///
/// The fn is left exactly as written; the attribute adds a hidden
/// `__faas_function_<ident>` struct whose `definition()` returns the
/// function's `FunctionDefinition` (see the [crate documentation](crate)
/// for the whole expansion), and compile-time checks of the signature.
///
/// # The function
///
/// A free (not a method), non-generic `async fn` with 0 to 8 arguments,
/// each an extractor (`FromInvocation`: `Json<T>`, `Bytes`, `String`,
/// `http::Request<Bytes>`, `http::HeaderMap`, `Context`, `CloudEvent`,
/// `Option<T>`, ...), returning an output (`IntoOutput`: `Json<T>`,
/// `String`, `Bytes`, `()`, `http::StatusCode`, `http::Response<Bytes>`,
/// `Result<T, E>` with `E: Into<FunctionError>`, ...), whose future is
/// `Send`.
///
/// # Options
///
/// All options are optional; `#[function]` alone is a function named after
/// its fn, with no trigger and the default policy.
///
/// | option | value | default | effect on the definition |
/// |---|---|---|---|
/// | `name` | string: ASCII letters, digits, `-`, `_`, `.` | the fn's identifier, as written (`hello_world`) | the function's unique name |
/// | `trigger` | `http(path = "/orders/{id}", methods = [..])` (a route template) or `cron("..", timezone = "..")`; may repeat | none | `.with_trigger(TriggerSpec::Http { .. })` / `TriggerSpec::Cron { .. }` |
/// | `timeout` | duration string: `"500ms"`, `"30s"`, `"2m"`, `"1h"`, `"1m30s"` | faas-core's default | `InvocationPolicy::with_timeout` |
/// | `concurrency` | integer, at least 1 | faas-core's default | `InvocationPolicy::with_max_in_flight`: calls beyond it are refused as overloaded |
/// | `max_attempts` | integer, 1 or more (the first attempt included) | faas-core's default | `RetryPolicy::with_max_attempts(max_attempts)` |
/// | `description` | non-empty string | the first paragraph of the fn's doc comment, if any | `.with_description(..)` |
/// | `crate` | string holding a path | `"::faas_core"` | the path every generated item goes through |
///
/// ## `name`
///
/// ```
/// # use faas_macros::function;
/// #[function(name = "place-order")]
/// async fn place_order() {}
///
/// # fn main() {
/// assert_eq!(__faas_function_place_order::definition().name(), "place-order");
/// # }
/// ```
///
/// Without `name`, the identifier is kept as is (a raw identifier loses its
/// `r#`): `async fn hello_world` is named `hello_world`.
///
/// ## `trigger = http(..)`
///
/// `path` must start with `/` and hold no whitespace, query or fragment; it
/// defaults to `/<name>`. `methods` lists standard upper-case methods (`GET`,
/// `HEAD`, `POST`, `PUT`, `DELETE`, `CONNECT`, `OPTIONS`, `TRACE`, `PATCH`);
/// without it, any method is accepted (an empty list in the `TriggerSpec`).
/// `trigger = http` alone is `/<name>`, any method.
///
/// ```
/// # use faas_core::TriggerSpec;
/// # use faas_macros::function;
/// #[function(trigger = http(path = "/orders", methods = ["GET", "POST"]))]
/// async fn orders() {}
///
/// #[function(trigger = http)]
/// async fn health() {}
///
/// # fn main() {
/// assert_eq!(
///     __faas_function_orders::definition().meta().triggers,
///     [TriggerSpec::Http { path: "/orders".into(), methods: vec!["GET".into(), "POST".into()] }],
/// );
/// assert_eq!(__faas_function_health::definition().meta().triggers, [TriggerSpec::http("/health")]);
/// # }
/// ```
///
/// ## `trigger = cron(..)`
///
/// The schedule is checked at compile time with `croner`, configured as the
/// cron trigger configures it, so the macro accepts exactly what the
/// scheduler runs: 5 fields (`minute hour day-of-month month day-of-week`),
/// 6 with `second` first, or a nickname such as `@daily` or `@hourly`, with
/// croner's extensions (`L`, `W`, `#`, names such as `JAN` and `MON-FRI`).
/// `timezone` is an IANA name that `chrono-tz` knows (`"Europe/Pariss"` is a
/// compile error that suggests `"Europe/Paris"`); without it the schedule
/// runs in UTC.
///
/// ```
/// # use faas_core::TriggerSpec;
/// # use faas_macros::function;
/// #[function(
///     trigger = cron("0 30 9 * * MON-FRI", timezone = "Europe/Paris"),
///     trigger = cron("@daily"),
/// )]
/// async fn report() {}
///
/// # fn main() {
/// assert_eq!(
///     __faas_function_report::definition().meta().triggers,
///     [
///         TriggerSpec::Cron {
///             schedule: "0 30 9 * * MON-FRI".into(),
///             timezone: Some("Europe/Paris".into()),
///         },
///         TriggerSpec::cron("@daily"),
///     ],
/// );
/// # }
/// ```
///
/// ## Event sources: `nats(..)`, `redis(..)`, `postgres(..)`, `storage(..)`, `kube(..)`
///
/// Each takes `key = "value"` settings, checked here (a malformed NATS
/// subject, a table name that is not an identifier, a kind written as a
/// plural, ... are compile errors on the value); the function runtime turns
/// them into running sources. `kube` takes `api_version` and `kind`
/// (required), and `namespace`, `labels` and `fields` (selectors):
///
/// ```
/// # use faas_macros::function;
/// # use faas_core::TriggerSpec;
/// #[function(trigger = kube(api_version = "apps/v1", kind = "Deployment", namespace = "shop", labels = "tier=web"))]
/// async fn audit(event: faas_core::CloudEvent) -> String { event.id }
///
/// # fn main() {
/// assert_eq!(
///     __faas_function_audit::definition().meta().triggers,
///     [TriggerSpec::Kube {
///         api_version: "apps/v1".into(),
///         object_kind: "Deployment".into(),
///         namespace: Some("shop".into()),
///         label_selector: Some("tier=web".into()),
///         field_selector: None,
///     }],
/// );
/// # }
/// ```
///
/// ## `timeout`
///
/// A duration as `humantime` reads it, the same grammar as every other
/// duration of the project: `"500ms"`, `"30s"`, `"1m 30s"`, `"2h"`. Zero, and
/// anything shorter than a millisecond, is rejected.
///
/// ```
/// # use std::time::Duration;
/// # use faas_macros::function;
/// #[function(timeout = "1m30s")]
/// async fn slow() {}
///
/// # fn main() {
/// let definition = __faas_function_slow::definition();
/// assert_eq!(definition.policy().timeout(), Some(Duration::from_secs(90)));
/// # }
/// ```
///
/// ## `concurrency`
///
/// ```
/// # use faas_macros::function;
/// #[function(concurrency = 16)]
/// async fn bounded() {}
///
/// # fn main() {
/// assert_eq!(__faas_function_bounded::definition().policy().max_in_flight(), Some(16));
/// # }
/// ```
///
/// ## `max_attempts`
///
/// The number of attempts in all, the first included, as
/// `RetryPolicy::max_attempts` counts them: `max_attempts = 1` means no
/// retry. Retries apply to triggers that redeliver (events, queues,
/// schedules); the other retry settings keep faas-core's defaults.
///
/// ```
/// # use faas_macros::function;
/// #[function(max_attempts = 5)]
/// async fn flaky() {}
///
/// # fn main() {
/// assert_eq!(__faas_function_flaky::definition().policy().retry().max_attempts, 5);
/// # }
/// ```
///
/// ## `description`
///
/// ```
/// # use faas_macros::function;
/// #[function(description = "Resizes uploaded images")]
/// async fn resize() {}
///
/// /// Sends the weekly digest.
/// ///
/// /// Only the first paragraph becomes the description.
/// #[function]
/// async fn digest() {}
///
/// # fn main() {
/// let resize = __faas_function_resize::definition();
/// assert_eq!(resize.meta().description.as_deref(), Some("Resizes uploaded images"));
/// let digest = __faas_function_digest::definition();
/// assert_eq!(digest.meta().description.as_deref(), Some("Sends the weekly digest."));
/// # }
/// ```
///
/// ## `crate`
///
/// For a crate that re-exports faas-core (and this macro) under another
/// path, so that its users need not depend on `faas-core` by name.
///
/// ```
/// mod platform {
///     pub use faas_core as faas;
/// }
///
/// #[faas_macros::function(crate = "crate::platform::faas")]
/// async fn hosted() {}
///
/// # fn main() {
/// let definition: platform::faas::FunctionDefinition = __faas_function_hosted::definition();
/// assert_eq!(definition.name(), "hosted");
/// # }
/// ```
#[proc_macro_attribute]
pub fn function(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::function(attr.into(), item.into()).into()
}

/// The definitions of `#[function]` fns, as an array of
/// `FunctionDefinition`.
///
/// `functions![hello, jobs::nightly]` expands to
/// `[<__faas_function_hello>::definition(), <jobs::__faas_function_nightly>::definition()]`:
/// each entry is the path of a fn that carries `#[function]`, as it would be
/// written to call it. A path to a fn without the attribute fails to compile
/// with "cannot find type `__faas_function_<name>`" on that name.
///
/// ```
/// use faas_core::Registry;
/// use faas_macros::{function, functions};
///
/// #[function]
/// async fn hello() -> &'static str {
///     "hello"
/// }
///
/// mod jobs {
///     #[faas_macros::function(trigger = cron("@daily"))]
///     pub async fn nightly() {}
/// }
///
/// # fn main() {
/// let registry = Registry::try_from_iter(functions![hello, jobs::nightly]).unwrap();
/// assert_eq!(registry.len(), 2);
/// # }
/// ```
#[proc_macro]
pub fn functions(input: TokenStream) -> TokenStream {
    functions::functions(input.into()).into()
}
