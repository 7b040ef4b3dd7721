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
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Route<'a> {
    /// A synchronous call of `function`.
    Call {
        /// The function's name.
        function: &'a str,
        /// How the path the function sees is derived from the request's.
        path: CallPath<'a>,
        /// The parameters of the route template the path matched, by name
        /// and in template order, as they appear in the path (not yet
        /// percent-decoded); empty when no template with parameters matched.
        params: Vec<(&'a str, &'a str)>,
    },
    /// An asynchronous call of `function` (`POST /async-function/{name}`).
    Enqueue {
        /// The function's name.
        function: &'a str,
        /// How the path the function sees is derived from the request's.
        path: CallPath<'a>,
        /// As for [`Route::Call`].
        params: Vec<(&'a str, &'a str)>,
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
    template: Box<str>,
    function: Arc<str>,
    methods: Vec<Method>,
    allow: Box<str>,
}

/// The routing table of the HTTP trigger.
///
/// Built-in paths come first (`/_/health`, `/_/ready`, `/metrics`,
/// `/function/{name}`, `/async-function/{name}`), then the route templates
/// functions declared with `TriggerSpec::Http`, matched by
/// [`matchit`](https://docs.rs/matchit) as axum matches them (`/orders/{id}`
/// is one segment, `/files/{*path}` the rest of the path; a trailing `/` of
/// the request is ignored), then every other path calls the default function,
/// if one is set, and is 404 otherwise.
///
/// A call through `/function/{name}/rest` sees `/rest`; when `rest` matches
/// one of the function's own templates, the call gets that template's
/// parameters too, so a function reads [`Path`](faas_core::Path) the same way
/// behind a gateway.
///
/// ```
/// use faas_triggers::http::{CallPath, Route, Router};
/// use http::Method;
///
/// let router = Router::new()
///     .with_default_function("echo")
///     .with_path("/orders/{id}", "orders", &["POST"])?;
/// assert_eq!(
///     router.route(&Method::POST, "/"),
///     Route::Call { function: "echo", path: CallPath::Unchanged, params: vec![] }
/// );
/// assert_eq!(
///     router.route(&Method::POST, "/orders/42"),
///     Route::Call { function: "orders", path: CallPath::Unchanged, params: vec![("id", "42")] }
/// );
/// assert_eq!(
///     router.route(&Method::GET, "/function/orders/orders/7"),
///     Route::Call {
///         function: "orders",
///         path: CallPath::Stripped { prefix: "/function/orders", rest: "/orders/7" },
///         params: vec![("id", "7")],
///     }
/// );
/// assert!(matches!(router.route(&Method::GET, "/orders/42"), Route::MethodNotAllowed { .. }));
/// # Ok::<(), faas_triggers::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Router {
    /// Every declared template, to the index of its route.
    templates: matchit::Router<usize>,
    routes: Vec<PathRoute>,
    /// Each function's own templates, matched against the rest of a
    /// `/function/{name}/rest` path.
    by_function: HashMap<Arc<str>, matchit::Router<()>>,
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

    /// Routes the template `path` to `function` for `methods` (empty: any
    /// method).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when the template does not start with `/`, is
    /// not a valid template, is a built-in path, conflicts with a template
    /// of another function, or a method is not a valid HTTP method.
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
        if let Some(existing) = self
            .routes
            .iter_mut()
            .find(|route| &*route.template == normalized)
        {
            if &*existing.function != function {
                return Err(invalid(format!(
                    "the path is already routed to function {:?}",
                    existing.function
                )));
            }
            // The same function declared the template twice: it serves the
            // methods of both (any method, when either allows any).
            if existing.methods.is_empty() || parsed.is_empty() {
                existing.methods.clear();
            } else {
                for method in parsed {
                    if !existing.methods.contains(&method) {
                        existing.methods.push(method);
                    }
                }
            }
            existing.allow = allow_header(&existing.methods);
            return Ok(());
        }
        self.templates
            .insert(normalized, self.routes.len())
            .map_err(|error| {
                invalid(format!("not a route template this router accepts: {error}"))
            })?;
        self.by_function
            .entry(Arc::from(function))
            .or_default()
            .insert(normalized, ())
            .map_err(|error| {
                invalid(format!("not a route template this router accepts: {error}"))
            })?;
        self.routes.push(PathRoute {
            template: normalized.into(),
            function: function.into(),
            allow: allow_header(&parsed),
            methods: parsed,
        });
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
                    params: Vec::new(),
                },
                None => Route::NoFunction,
            };
        }
        if let Some(rest) = path.strip_prefix(FUNCTION_PREFIX) {
            return match split_name(path, FUNCTION_PREFIX.len(), rest) {
                Some((function, path)) => Route::Call {
                    function,
                    params: self.own_params(function, path),
                    path,
                },
                None => Route::NoFunction,
            };
        }
        if let Some(rest) = path.strip_prefix(ASYNC_FUNCTION_PREFIX) {
            return match split_name(path, ASYNC_FUNCTION_PREFIX.len(), rest) {
                Some(_) if method != Method::POST => Route::MethodNotAllowed { allow: "POST" },
                Some((function, path)) => Route::Enqueue {
                    function,
                    params: self.own_params(function, path),
                    path,
                },
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
        if !self.routes.is_empty()
            && let Ok(matched) = self.templates.at(trim_slash(path))
        {
            let route = &self.routes[*matched.value];
            if route.methods.is_empty() || route.methods.contains(method) {
                return Route::Call {
                    function: &route.function,
                    path: CallPath::Unchanged,
                    params: matched.params.iter().collect(),
                };
            }
            return Route::MethodNotAllowed {
                allow: &route.allow,
            };
        }
        match &self.default_function {
            Some(function) => Route::Call {
                function,
                path: CallPath::Unchanged,
                params: Vec::new(),
            },
            None => Route::NotFound,
        }
    }

    /// The parameters of the template of `function` that the rest of a
    /// `/function/{name}/rest` path matches, if any.
    fn own_params<'a>(&'a self, function: &str, path: CallPath<'a>) -> Vec<(&'a str, &'a str)> {
        let CallPath::Stripped { rest, .. } = path else {
            return Vec::new();
        };
        match self.by_function.get(function) {
            Some(templates) => templates
                .at(trim_slash(rest))
                .map(|matched| matched.params.iter().collect())
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }
}

/// `path` without its trailing `/`s, except `/` itself.
fn trim_slash(path: &str) -> &str {
    match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    }
}

/// The `Allow` header value for `methods`.
fn allow_header(methods: &[Method]) -> Box<str> {
    methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ")
        .into()
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

    fn call<'a>(function: &'a str, params: Vec<(&'a str, &'a str)>) -> Route<'a> {
        Route::Call {
            function,
            path: CallPath::Unchanged,
            params,
        }
    }

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
            call("echo", vec![])
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
                },
                params: vec![],
            }
        );
        assert_eq!(
            router.route(&Method::POST, "/async-function/echo/x"),
            Route::Enqueue {
                function: "echo",
                path: CallPath::Stripped {
                    prefix: "/async-function/echo",
                    rest: "/x"
                },
                params: vec![],
            }
        );
        assert!(matches!(
            router.route(&Method::GET, "/async-function/echo"),
            Route::MethodNotAllowed { allow: "POST" }
        ));
    }

    #[test]
    fn templates() {
        let router = Router::new()
            .with_path("/api/orders/", "orders", &["post", "GET"])
            .unwrap()
            .with_path("/api/orders/{id}/items/{item}", "orders", &["GET"])
            .unwrap()
            .with_path("/files/{*path}", "files", &[] as &[&str])
            .unwrap();
        for path in ["/api/orders", "/api/orders/"] {
            assert_eq!(
                router.route(&Method::GET, path),
                call("orders", vec![]),
                "{path}"
            );
        }
        assert_eq!(
            router.route(&Method::GET, "/api/orders/42/items/tea%20cup/"),
            call("orders", vec![("id", "42"), ("item", "tea%20cup")])
        );
        assert_eq!(
            router.route(&Method::DELETE, "/files/a/b.txt"),
            call("files", vec![("path", "a/b.txt")])
        );
        assert_eq!(
            router.route(&Method::DELETE, "/api/orders"),
            Route::MethodNotAllowed { allow: "POST, GET" }
        );
        // No prefix matching: a template serves its own paths only.
        assert_eq!(
            router.route(&Method::GET, "/api/orders/42"),
            Route::NotFound
        );
        assert_eq!(router.route(&Method::GET, "/api"), Route::NotFound);
        assert_eq!(router.route(&Method::GET, "/api/ordersx"), Route::NotFound);
        // Behind `/function/{name}`, the rest matches the function's own templates.
        assert_eq!(
            router.route(&Method::GET, "/function/orders/api/orders/1/items/2"),
            Route::Call {
                function: "orders",
                path: CallPath::Stripped {
                    prefix: "/function/orders",
                    rest: "/api/orders/1/items/2"
                },
                params: vec![("id", "1"), ("item", "2")],
            }
        );
        assert!(matches!(
            router.route(&Method::GET, "/function/files/api/orders/1/items/2"),
            Route::Call { params, .. } if params.is_empty()
        ));
    }

    #[test]
    fn the_same_template_twice_joins_methods() {
        let router = Router::new()
            .with_path("/a", "f", &["GET"])
            .unwrap()
            .with_path("/a/", "f", &["PUT"])
            .unwrap();
        assert_eq!(router.route(&Method::PUT, "/a"), call("f", vec![]));
        assert_eq!(
            router.route(&Method::POST, "/a"),
            Route::MethodNotAllowed { allow: "GET, PUT" }
        );
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
            "/a/{",
            "/a/{*rest}/b",
            "/a/{}",
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
        assert!(router.clone().with_path("/a", "g", &[] as &[&str]).is_err());
        // Two templates that cannot be told apart.
        let router = router.with_path("/o/{id}", "f", &[] as &[&str]).unwrap();
        assert!(router.with_path("/o/{key}", "g", &[] as &[&str]).is_err());
    }
}
