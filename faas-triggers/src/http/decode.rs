//! From an HTTP request to a call: routing, limits, deadline, trace context
//! and CloudEvents modes.

use std::time::Duration;

use bytes::Bytes;
use faas_core::{
    CloudEvent, Context, FunctionError, Invocation, PathParams, RegisteredFunction, Registry,
};
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, StatusCode, Uri};

use super::body::too_large;
use super::headers::{ContentType, RequestHeaders, X_FORWARDED_PREFIX, text};
use super::route::{CallPath, Route, Router};

/// How the caller wants the answer written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    /// The function's response as it is.
    #[default]
    AsIs,
    /// A response that carries a binary-mode CloudEvent (`ce-*` headers) is
    /// rewritten in structured mode (`application/cloudevents+json`): the
    /// request came in structured mode or `Accept`s it.
    Structured,
}

/// A request that names a function, ready to dispatch.
#[derive(Debug)]
#[non_exhaustive]
pub struct Call {
    /// The function called.
    pub function: RegisteredFunction,
    /// What the function receives. Structured-mode CloudEvents arrive here in
    /// binary mode (`ce-*` headers and the data as body), so handlers read
    /// `Json<T>` of the data or a `CloudEvent` the same way in both modes.
    pub invocation: Invocation,
    /// How the answer is written.
    pub reply: ReplyMode,
    /// For an asynchronous call, where the result is POSTed.
    pub callback: Option<Uri>,
    /// Whether the call is asynchronous (`/async-function/{name}`).
    pub asynchronous: bool,
    /// The deadline asked for with `x-timeout`, capped by the function's
    /// policy. A synchronous call's context already carries it; an
    /// asynchronous call's clock starts when it leaves the queue.
    pub timeout: Option<Duration>,
}

/// What a request asks for.
#[derive(Debug)]
#[non_exhaustive]
pub enum Decoded {
    /// A call of a function (sync or async).
    Call(Box<Call>),
    /// `GET /_/health`.
    Health,
    /// `GET /_/ready`.
    Ready,
    /// `GET /metrics`.
    Metrics,
}

/// A request refused before it reached a function.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Rejection {
    /// The error answered (its status and JSON body).
    pub error: FunctionError,
    /// For 405, the methods the path accepts (the `Allow` header).
    pub allow: Option<HeaderValue>,
}

impl From<FunctionError> for Rejection {
    fn from(error: FunctionError) -> Self {
        Rejection { error, allow: None }
    }
}

/// Where a request goes, decided from its method and path alone.
#[derive(Debug)]
pub(crate) enum Endpoint<'a> {
    Function(Target<'a>),
    Health,
    Ready,
    Metrics,
}

#[derive(Debug)]
pub(crate) struct Target<'a> {
    pub(crate) function: RegisteredFunction,
    pub(crate) path: CallPath<'a>,
    /// The matched template's parameters, not yet percent-decoded.
    pub(crate) params: Vec<(&'a str, &'a str)>,
    pub(crate) asynchronous: bool,
    pub(crate) body_limit: usize,
}

/// Decodes HTTP requests into calls: the request side of the HTTP trigger,
/// with nothing of the network in it.
///
/// The server reads the body itself (streaming, under the limit) and uses the
/// same steps; [`decode`](Self::decode) runs them on a request whose body is
/// already in memory, for tests, fuzzing and embedding.
///
/// ```
/// use bytes::Bytes;
/// use faas_core::{FunctionDefinition, Registry};
/// use faas_triggers::http::{Decoded, RequestDecoder, Router};
///
/// async fn echo(body: Bytes) -> Bytes { body }
/// let registry = Registry::new();
/// registry.register(FunctionDefinition::from_handler("echo", echo))?;
/// let decoder = RequestDecoder::new(registry, Router::new(), 1024);
///
/// let request = http::Request::post("/function/echo/items?page=2")
///     .header("x-timeout", "2s")
///     .body(Bytes::from_static(b"hi"))?;
/// let Ok(Decoded::Call(call)) = decoder.decode(request) else { panic!() };
/// assert_eq!(call.function.name(), "echo");
/// assert_eq!(call.invocation.uri(), "/items?page=2");
/// assert!(call.invocation.context().deadline().is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct RequestDecoder {
    registry: Registry,
    router: Router,
    max_body: usize,
    max_timeout: Option<Duration>,
}

impl RequestDecoder {
    /// A decoder routing with `router` to the functions of `registry`,
    /// refusing bodies over `max_body` bytes (or over a function's own
    /// `max_body_bytes` policy, whichever is smaller).
    pub fn new(registry: Registry, router: Router, max_body: usize) -> Self {
        RequestDecoder {
            registry,
            router,
            max_body,
            max_timeout: None,
        }
    }

    /// Caps every call's deadline at `timeout`, whatever the request asks
    /// and the function's policy allows (the platform's limit for a pod).
    #[must_use]
    pub fn with_max_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.max_timeout = timeout;
        self
    }

    /// The registry calls are looked up in.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The routing table.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The server-wide body limit.
    pub fn max_body(&self) -> usize {
        self.max_body
    }

    /// Decodes a whole request.
    ///
    /// # Errors
    ///
    /// The [`Rejection`] answered instead of calling a function: unknown
    /// function or path (404), method not allowed (405), body over the limit
    /// (413), malformed `x-timeout`, `x-callback-url` or structured CloudEvent
    /// (400).
    pub fn decode(&self, request: http::Request<Bytes>) -> Result<Decoded, Rejection> {
        let (parts, body) = request.into_parts();
        let headers = RequestHeaders::read(&parts.headers);
        let uri = parts.uri.clone();
        match self.endpoint(&parts.method, uri.path())? {
            Endpoint::Health => Ok(Decoded::Health),
            Endpoint::Ready => Ok(Decoded::Ready),
            Endpoint::Metrics => Ok(Decoded::Metrics),
            Endpoint::Function(target) => {
                if body.len() > target.body_limit {
                    return Err(too_large(target.body_limit).into());
                }
                let call = self.call(target, parts, body, headers)?;
                Ok(Decoded::Call(Box::new(call)))
            }
        }
    }

    /// Routes by method and path, and looks the function up.
    pub(crate) fn endpoint<'a>(
        &'a self,
        method: &Method,
        path: &'a str,
    ) -> Result<Endpoint<'a>, Rejection> {
        let (name, call_path, params, asynchronous) = match self.router.route(method, path) {
            Route::Call {
                function,
                path,
                params,
            } => (function, path, params, false),
            Route::Enqueue {
                function,
                path,
                params,
            } => (function, path, params, true),
            Route::Health => return Ok(Endpoint::Health),
            Route::Ready => return Ok(Endpoint::Ready),
            Route::Metrics => return Ok(Endpoint::Metrics),
            Route::NoFunction => {
                return Err(FunctionError::not_found(
                    "no function named: call /function/{name}, or set FAAS_FUNCTION to the function `/` serves",
                )
                .into());
            }
            Route::MethodNotAllowed { allow } => {
                return Err(Rejection {
                    error: FunctionError::bad_input(format!(
                        "method {method} is not allowed at {path}; allowed: {allow}"
                    ))
                    .with_status(StatusCode::METHOD_NOT_ALLOWED),
                    allow: HeaderValue::from_str(allow).ok(),
                });
            }
            Route::NotFound => {
                return Err(
                    FunctionError::not_found(format!("nothing is served at {path}")).into(),
                );
            }
        };
        let Some(function) = self.registry.get(name) else {
            return Err(FunctionError::not_found(format!(
                "no function named {name:?} is registered"
            ))
            .into());
        };
        let body_limit = function
            .policy()
            .max_body_bytes()
            .map_or(self.max_body, |own| own.min(self.max_body));
        Ok(Endpoint::Function(Target {
            function,
            path: call_path,
            params,
            asynchronous,
            body_limit,
        }))
    }

    /// Builds the call once the body is read, from what its `headers` say.
    pub(crate) fn call(
        &self,
        target: Target<'_>,
        mut parts: Parts,
        mut body: Bytes,
        headers: RequestHeaders,
    ) -> Result<Call, Rejection> {
        let Target {
            function,
            path,
            params,
            asynchronous,
            ..
        } = target;
        if !params.is_empty() {
            parts.extensions.insert(PathParams::decode(params)?);
        }
        // The dispatcher names the function in the context when it admits the call.
        let requested = headers.timeout.map_err(|()| {
            FunctionError::bad_input(
                "x-timeout must be a positive duration such as `1500ms`, `2s` or a number of seconds",
            )
        })?;
        let attempt = headers.attempt.map_err(|()| {
            FunctionError::bad_input("x-attempt must be a positive integer such as `1` or `3`")
        })?;
        let mut context = Context::default().with_call_id(headers.call_id);
        // An asynchronous call's attempts are its queue's own.
        if let Some(attempt) = attempt
            && !asynchronous
        {
            context = context.with_attempt(attempt);
        }
        // The shortest of what the caller asks, the server's cap and the policy.
        let timeout = [requested, self.max_timeout]
            .into_iter()
            .flatten()
            .min()
            .map(|timeout| {
                function
                    .policy()
                    .timeout()
                    .map_or(timeout, |own| timeout.min(own))
            });
        if let Some(timeout) = timeout
            && !asynchronous
        {
            context = context.with_deadline(deadline_in(timeout));
        }
        if let Some(trace_parent) = headers.trace_parent {
            context = context.with_trace_parent(trace_parent);
        }
        let callback = match (asynchronous, &headers.callback) {
            (true, Some(value)) => Some(parse_callback(value)?),
            _ => None,
        };
        if let CallPath::Stripped { prefix, rest } = path {
            let prefix = HeaderValue::from_str(prefix).map_err(|_| {
                FunctionError::bad_input("the request path is not valid header text")
            })?;
            parts.uri = rewrite_uri(&parts.uri, rest)?;
            parts.headers.insert(X_FORWARDED_PREFIX, prefix);
        }
        let mut reply = if headers.accepts_structured {
            ReplyMode::Structured
        } else {
            ReplyMode::AsIs
        };
        match headers.content_type {
            ContentType::StructuredEvent => {
                let event = CloudEvent::from_structured(&body)?;
                let (event_headers, data) = event.into_binary_parts();
                // The event is the body's: `ce-*` headers beside it are not part of it.
                let stray: Vec<HeaderName> = parts
                    .headers
                    .keys()
                    .filter(|name| name.as_str().starts_with("ce-"))
                    .cloned()
                    .collect();
                for name in stray {
                    parts.headers.remove(name);
                }
                parts.headers.remove(header::CONTENT_TYPE);
                parts.headers.remove(header::CONTENT_LENGTH);
                for (name, value) in &event_headers {
                    parts.headers.insert(name.clone(), value.clone());
                }
                body = data;
                reply = ReplyMode::Structured;
            }
            ContentType::EventBatch => {
                return Err(FunctionError::bad_input(
                    "batched CloudEvents are not supported; send one event per request",
                )
                .into());
            }
            ContentType::Other => {}
        }
        Ok(Call {
            function,
            invocation: Invocation::from_parts(parts, body, context),
            reply,
            callback,
            asynchronous,
            timeout,
        })
    }
}

fn deadline_in(timeout: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365))
}

/// `rest` plus the query of `uri`.
fn rewrite_uri(uri: &Uri, rest: &str) -> Result<Uri, FunctionError> {
    static ROOT: std::sync::LazyLock<Uri> = std::sync::LazyLock::new(|| Uri::from_static("/"));
    if rest == "/" && uri.query().is_none() {
        return Ok(ROOT.clone());
    }
    let path_and_query = match uri.query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    };
    Uri::builder()
        .path_and_query(path_and_query)
        .build()
        .map_err(|error| FunctionError::bad_input(format!("invalid request path: {error}")))
}

fn parse_callback(value: &HeaderValue) -> Result<Uri, FunctionError> {
    let invalid = || {
        FunctionError::bad_input(
            "x-callback-url must be an absolute http:// URL, e.g. http://receiver.default:8080/done",
        )
    };
    let uri: Uri = text(value)
        .ok_or_else(invalid)?
        .parse()
        .map_err(|_| invalid())?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http"), Some(_)) => Ok(uri),
        _ => Err(invalid()),
    }
}
