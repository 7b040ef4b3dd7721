//! Which function (or built-in endpoint) a request path names.

use std::collections::HashMap;
use std::sync::Arc;

use http::Method;

use crate::{Error, Result};

/// The prefix of synchronous calls: `/function/{name}[/rest]`.
pub const FUNCTION_PREFIX: &str = "/function/";
/// The prefix of asynchronous calls: `/async-function/{name}`.
pub const ASYNC_FUNCTION_PREFIX: &str = "/async-function/";
/// The liveness endpoint.
pub const HEALTH_PATH: &str = "/_/health";
/// The readiness endpoint (503 while draining).
pub const READY_PATH: &str = "/_/ready";
/// The Prometheus metrics endpoint.
pub const METRICS_PATH: &str = "/metrics";

/// What a request is routed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route<'a> {
    /// A synchronous call of `function`.
    Call {
        /// The function's name.
        function: &'a str,
        /// How the path the function sees is derived from the request's.
        path: CallPath<'a>,
    },
    /// An asynchronous call of `function` (`POST /async-function/{name}`).
    Enqueue {
        /// The function's name.
        function: &'a str,
        /// How the path the function sees is derived from the request's.
        path: CallPath<'a>,
    },
    /// `GET /_/health`.
    Health,
    /// `GET /_/ready`.
    Ready,
    /// `GET /metrics`.
    Metrics,
    /// `/` or `/function/` without a name, and no default function is set.
    NoFunction,
    /// Nothing is served at this path.
    NotFound,
    /// The path exists but not for this method; `allow` lists the methods.
    MethodNotAllowed {
        /// The value of the `Allow` header.
        allow: &'a str,
    },
}

/// How the path a function sees is derived from the request's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallPath<'a> {
    /// The function sees the request's path and query unchanged (`POST /`,
    /// routes declared with `TriggerSpec::Http`).
    Unchanged,
    /// The function sees `rest` (always starting with `/`) and the request's
    /// query: `/function/{name}/a/b?x=1` is seen as `/a/b?x=1`, `prefix` is
    /// `/function/{name}`.
    Stripped {
        /// The part of the path that was removed.
        prefix: &'a str,
        /// What is left, starting with `/`.
        rest: &'a str,
    },
}

#[derive(Debug, Clone)]
struct PathRoute {
    function: Arc<str>,
    methods: Vec<Method>,
    allow: Box<str>,
}

/// The routing table of the HTTP trigger.
///
/// Built-in paths come first (`/_/health`, `/_/ready`, `/metrics`,
/// `/function/{name}`, `/async-function/{name}`), then the paths functions
/// declared with `TriggerSpec::Http` (a declared `/orders` also serves
/// `/orders/42`, unchanged), then `/` which calls the default function.
///
/// ```
/// use faas_triggers::http::{CallPath, Route, Router};
/// use http::Method;
///
/// let router = Router::new()
///     .with_default_function("echo")
///     .with_path("/orders", "orders", &["POST"])?;
/// assert_eq!(
///     router.route(&Method::POST, "/"),
///     Route::Call { function: "echo", path: CallPath::Unchanged }
/// );
/// assert_eq!(
///     router.route(&Method::POST, "/orders/42"),
///     Route::Call { function: "orders", path: CallPath::Unchanged }
/// );
/// assert_eq!(
///     router.route(&Method::GET, "/function/hello/a/b"),
///     Route::Call { function: "hello", path: CallPath::Stripped { prefix: "/function/hello", rest: "/a/b" } }
/// );
/// assert!(matches!(router.route(&Method::GET, "/orders"), Route::MethodNotAllowed { .. }));
/// # Ok::<(), faas_triggers::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Router {
    paths: HashMap<Box<str>, PathRoute>,
    default_function: Option<Arc<str>>,
}

impl Router {
    /// A table with only the built-in paths.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes `/`, and every path nothing else serves (outside `/_/`), to
    /// `function`, unchanged, as the OpenFaaS watchdog does.
    #[must_use]
    pub fn with_default_function(mut self, function: impl Into<Arc<str>>) -> Self {
        self.default_function = Some(function.into());
        self
    }

    /// The function `/` calls, if any.
    pub fn default_function(&self) -> Option<&str> {
        self.default_function.as_deref()
    }

    /// Routes `path` (and the paths below it) to `function` for `methods`
    /// (empty: any method).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when the path does not start with `/`, is a
    /// built-in path, is already routed to another function, or a method is not
    /// a valid HTTP method.
    pub fn with_path(
        mut self,
        path: &str,
        function: &str,
        methods: &[impl AsRef<str>],
    ) -> Result<Self> {
        self.add_path(path, function, methods)?;
        Ok(self)
    }

    /// As [`with_path`](Self::with_path), in place.
    ///
    /// # Errors
    ///
    /// As [`with_path`](Self::with_path).
    pub fn add_path(
        &mut self,
        path: &str,
        function: &str,
        methods: &[impl AsRef<str>],
    ) -> Result<()> {
        let invalid = |reason: String| Error::InvalidConfig {
            key: format!("http trigger path of function {function:?}"),
            value: path.to_owned(),
            reason,
        };
        let normalized = path.trim_end_matches('/');
        if !path.starts_with('/') {
            return Err(invalid("a path starts with `/`".into()));
        }
        if normalized.is_empty() {
            return Err(invalid(
                "`/` calls the default function; set it with `with_default_function` (FAAS_FUNCTION)".into(),
            ));
        }
        if path.contains(['?', '#']) {
            return Err(invalid("a path has no query or fragment".into()));
        }
        let reserved = [HEALTH_PATH, READY_PATH, METRICS_PATH, "/_"];
        if reserved.contains(&normalized)
            || normalized.starts_with("/_/")
            || format!("{normalized}/").starts_with(FUNCTION_PREFIX)
            || format!("{normalized}/").starts_with(ASYNC_FUNCTION_PREFIX)
        {
            return Err(invalid(format!(
                "the path is reserved (`/_/*`, `{METRICS_PATH}`, `{FUNCTION_PREFIX}*`, `{ASYNC_FUNCTION_PREFIX}*`)"
            )));
        }
        let mut parsed = Vec::with_capacity(methods.len());
        for method in methods {
            let method = method.as_ref().trim().to_ascii_uppercase();
            let method = Method::from_bytes(method.as_bytes())
                .map_err(|_| invalid(format!("{method:?} is not an HTTP method")))?;
            if !parsed.contains(&method) {
                parsed.push(method);
            }
        }
        if let Some(existing) = self.paths.get(normalized)
            && &*existing.function != function
        {
            return Err(invalid(format!(
                "the path is already routed to function {:?}",
                existing.function
            )));
        }
        let allow = parsed
            .iter()
            .map(Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        self.paths.insert(
            normalized.into(),
            PathRoute {
                function: function.into(),
                methods: parsed,
                allow: allow.into(),
            },
        );
        Ok(())
    }

    /// Routes a request.
    pub fn route<'a>(&'a self, method: &Method, path: &'a str) -> Route<'a> {
        if !path.starts_with('/') {
            // `*` (OPTIONS) and authority-form (CONNECT) targets name no function.
            return Route::NotFound;
        }
        if path == "/" {
            return match &self.default_function {
                Some(function) => Route::Call {
                    function,
                    path: CallPath::Unchanged,
                },
                None => Route::NoFunction,
            };
        }
        if let Some(rest) = path.strip_prefix(FUNCTION_PREFIX) {
            return match split_name(path, FUNCTION_PREFIX.len(), rest) {
                Some((function, path)) => Route::Call { function, path },
                None => Route::NoFunction,
            };
        }
        if let Some(rest) = path.strip_prefix(ASYNC_FUNCTION_PREFIX) {
            return match split_name(path, ASYNC_FUNCTION_PREFIX.len(), rest) {
                Some(_) if method != Method::POST => Route::MethodNotAllowed { allow: "POST" },
                Some((function, path)) => Route::Enqueue { function, path },
                None => Route::NoFunction,
            };
        }
        let builtin = match path {
            HEALTH_PATH => Some(Route::Health),
            READY_PATH => Some(Route::Ready),
            METRICS_PATH => Some(Route::Metrics),
            _ => None,
        };
        if let Some(route) = builtin {
            return if method == Method::GET || method == Method::HEAD {
                route
            } else {
                Route::MethodNotAllowed { allow: "GET, HEAD" }
            };
        }
        if path.starts_with("/_/") {
            return Route::NotFound;
        }
        if !self.paths.is_empty() {
            let mut candidate = path.trim_end_matches('/');
            loop {
                if let Some(route) = self.paths.get(candidate) {
                    if route.methods.is_empty() || route.methods.contains(method) {
                        return Route::Call {
                            function: &route.function,
                            path: CallPath::Unchanged,
                        };
                    }
                    return Route::MethodNotAllowed {
                        allow: &route.allow,
                    };
                }
                match candidate.rfind('/') {
                    Some(0) | None => break,
                    Some(at) => candidate = &candidate[..at],
                }
            }
        }
        match &self.default_function {
            Some(function) => Route::Call {
                function,
                path: CallPath::Unchanged,
            },
            None => Route::NotFound,
        }
    }
}

/// Splits `{name}[/rest]` after a prefix; `None` when the name is empty.
fn split_name<'a>(
    path: &'a str,
    prefix_len: usize,
    rest: &'a str,
) -> Option<(&'a str, CallPath<'a>)> {
    let name_len = rest.find('/').unwrap_or(rest.len());
    if name_len == 0 {
        return None;
    }
    let name = &rest[..name_len];
    let remainder = &rest[name_len..];
    let call_path = CallPath::Stripped {
        prefix: &path[..prefix_len + name_len],
        rest: if remainder.is_empty() { "/" } else { remainder },
    };
    Some((name, call_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins() {
        let router = Router::new();
        assert_eq!(router.route(&Method::GET, "/_/health"), Route::Health);
        assert_eq!(router.route(&Method::HEAD, "/_/ready"), Route::Ready);
        assert_eq!(router.route(&Method::GET, "/metrics"), Route::Metrics);
        assert!(matches!(
            router.route(&Method::POST, "/metrics"),
            Route::MethodNotAllowed { allow: "GET, HEAD" }
        ));
        assert_eq!(router.route(&Method::GET, "/_/nope"), Route::NotFound);
        assert_eq!(router.route(&Method::POST, "/"), Route::NoFunction);
        assert_eq!(router.route(&Method::POST, "/function/"), Route::NoFunction);
        assert_eq!(router.route(&Method::POST, "/elsewhere"), Route::NotFound);
        let router = Router::new().with_default_function("echo");
        assert_eq!(
            router.route(&Method::PUT, "/users/1?x"),
            Route::Call {
                function: "echo",
                path: CallPath::Unchanged
            }
        );
        assert_eq!(router.route(&Method::GET, "/_/nope"), Route::NotFound);
        assert_eq!(router.route(&Method::OPTIONS, "*"), Route::NotFound);
        assert_eq!(router.route(&Method::CONNECT, ""), Route::NotFound);
    }

    #[test]
    fn function_paths() {
        let router = Router::new();
        assert_eq!(
            router.route(&Method::POST, "/function/echo"),
            Route::Call {
                function: "echo",
                path: CallPath::Stripped {
                    prefix: "/function/echo",
                    rest: "/"
                }
            }
        );
        assert_eq!(
            router.route(&Method::POST, "/async-function/echo/x"),
            Route::Enqueue {
                function: "echo",
                path: CallPath::Stripped {
                    prefix: "/async-function/echo",
                    rest: "/x"
                }
            }
        );
        assert!(matches!(
            router.route(&Method::GET, "/async-function/echo"),
            Route::MethodNotAllowed { allow: "POST" }
        ));
    }

    #[test]
    fn declared_paths() {
        let router = Router::new()
            .with_path("/api/orders/", "orders", &["post", "GET"])
            .unwrap();
        for path in ["/api/orders", "/api/orders/", "/api/orders/42/items"] {
            assert_eq!(
                router.route(&Method::GET, path),
                Route::Call {
                    function: "orders",
                    path: CallPath::Unchanged
                },
                "{path}"
            );
        }
        assert_eq!(
            router.route(&Method::DELETE, "/api/orders/1"),
            Route::MethodNotAllowed { allow: "POST, GET" }
        );
        assert_eq!(router.route(&Method::GET, "/api"), Route::NotFound);
        assert_eq!(router.route(&Method::GET, "/api/ordersx"), Route::NotFound);
    }

    #[test]
    fn bad_declared_paths() {
        for path in [
            "orders",
            "/",
            "/_/health",
            "/metrics",
            "/function/x",
            "/async-function",
            "/a?b",
        ] {
            assert!(
                Router::new().with_path(path, "f", &["GET"]).is_err(),
                "{path}"
            );
        }
        assert!(
            Router::new()
                .with_path("/a", "f", &["NOT A METHOD"])
                .is_err()
        );
        let router = Router::new().with_path("/a", "f", &[] as &[&str]).unwrap();
        assert!(router.with_path("/a", "g", &[] as &[&str]).is_err());
    }
}
