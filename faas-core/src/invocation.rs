//! [`Invocation`]: one call of a function, an HTTP-shaped request plus its [`Context`].

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri, request};

use crate::cloudevent::CloudEvent;
use crate::context::{CALL_ID_HEADER, CallId, Context, TRACEPARENT_HEADER};

/// One call of a function: method, URI, headers and body, plus the call's [`Context`].
///
/// Every trigger builds one. HTTP triggers pass the request through
/// ([`Invocation::from_request`]); other triggers (cron, queue, storage, ...) use
/// `POST /` and put the event's attributes in CloudEvents binary-mode headers
/// (`ce-id`, `ce-source`, `ce-type`, ...), which [`Invocation::from_event`] does.
///
/// ```
/// use faas_core::{Context, Invocation};
///
/// let inv = Invocation::new(r#"{"name":"ada"}"#)
///     .with_header("content-type", "application/json")
///     .with_context(Context::new("hello"));
/// assert_eq!(inv.method(), http::Method::POST);
/// assert_eq!(inv.uri(), "/");
/// assert_eq!(inv.context().function_name(), "hello");
/// ```
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Boxed: an invocation is moved through every layer of a call (and each
    /// layer's future holds it until it starts the next), and a pointer moves
    /// for free where the parts (over 400 bytes) would be copied each time.
    inner: Box<Parts>,
}

#[derive(Debug, Clone)]
struct Parts {
    /// The request without its body; kept as a request, not as parts, so that a
    /// new one is built in place.
    head: http::Request<()>,
    body: Bytes,
    context: Context,
}

impl Invocation {
    /// A `POST /` with `body`, no headers and a default [`Context`].
    pub fn new(body: impl Into<Bytes>) -> Self {
        let mut invocation = Invocation {
            inner: Box::new(Parts {
                head: http::Request::new(()),
                body: body.into(),
                context: Context::default(),
            }),
        };
        *invocation.inner.head.method_mut() = Method::POST;
        invocation
    }

    /// An invocation of an HTTP request.
    ///
    /// The context takes its call id from a valid `x-call-id` header (else a fresh
    /// one) and its trace parent from `traceparent`.
    pub fn from_request(request: http::Request<Bytes>) -> Self {
        let (parts, body) = request.into_parts();
        let mut context = match parts
            .headers
            .get(CALL_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<CallId>().ok())
        {
            Some(id) => Context::for_call(id),
            None => Context::default(),
        };
        let trace_parent = parts
            .headers
            .get(TRACEPARENT_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        context.set_trace_parent(trace_parent);
        Invocation::from_parts(parts, body, context)
    }

    /// An invocation from its parts.
    pub fn from_parts(parts: request::Parts, body: Bytes, context: Context) -> Self {
        Invocation {
            inner: Box::new(Parts {
                head: http::Request::from_parts(parts, ()),
                body,
                context,
            }),
        }
    }

    /// A `POST /` carrying `event` in CloudEvents binary mode: `ce-*` headers, the
    /// data as the body and its content type as `content-type`.
    pub fn from_event(event: CloudEvent) -> Self {
        let (headers, body) = event.into_binary_parts();
        let mut invocation = Invocation::new(body);
        *invocation.inner.head.headers_mut() = headers;
        invocation
    }

    /// Replaces the context.
    #[must_use]
    pub fn with_context(mut self, context: Context) -> Self {
        self.inner.context = context;
        self
    }

    /// Appends a header.
    ///
    /// # Panics
    ///
    /// When `name` or `value` is not a valid header name or value; use
    /// [`headers_mut`](Self::headers_mut) for text from outside.
    #[must_use]
    pub fn with_header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        K::Error: std::fmt::Debug,
        V: TryInto<HeaderValue>,
        V::Error: std::fmt::Debug,
    {
        let name = name.try_into().expect("a valid header name");
        let value = value.try_into().expect("a valid header value");
        self.inner.head.headers_mut().append(name, value);
        self
    }

    /// Gives the call a [`State<S>`](crate::extract::State), as a host given
    /// that state would (for a unit test of a function that takes one).
    #[must_use]
    pub fn with_state<S: Clone + Send + Sync + 'static>(mut self, state: S) -> Self {
        self.inner
            .head
            .extensions_mut()
            .insert(crate::extract::HostState(state));
        self
    }

    /// Puts `value` in the call's [extensions](Self::extensions), where
    /// [`Extension<T>`](crate::extract::Extension) reads it.
    #[must_use]
    pub fn with_extension<T: Clone + Send + Sync + 'static>(mut self, value: T) -> Self {
        self.inner.head.extensions_mut().insert(value);
        self
    }

    /// Gives the call the parameters of a matched route template, where
    /// [`Path<T>`](crate::extract::Path) reads them.
    #[must_use]
    pub fn with_path_params(mut self, params: crate::extract::PathParams) -> Self {
        self.inner.head.extensions_mut().insert(params);
        self
    }

    /// Sets the method.
    #[must_use]
    pub fn with_method(mut self, method: Method) -> Self {
        *self.inner.head.method_mut() = method;
        self
    }

    /// Sets the URI.
    #[must_use]
    pub fn with_uri(mut self, uri: Uri) -> Self {
        *self.inner.head.uri_mut() = uri;
        self
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        self.inner.head.method()
    }

    /// The request URI.
    pub fn uri(&self) -> &Uri {
        self.inner.head.uri()
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        self.inner.head.headers()
    }

    /// The request headers, to change.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        self.inner.head.headers_mut()
    }

    /// The request extensions (typed values a host attaches to the request).
    pub fn extensions(&self) -> &http::Extensions {
        self.inner.head.extensions()
    }

    /// The request extensions, to change.
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        self.inner.head.extensions_mut()
    }

    /// The `content-type` header, if present and readable.
    pub fn content_type(&self) -> Option<&str> {
        self.inner
            .head
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
    }

    /// The request body.
    pub fn body(&self) -> &Bytes {
        &self.inner.body
    }

    /// The request body, to change.
    pub fn body_mut(&mut self) -> &mut Bytes {
        &mut self.inner.body
    }

    /// The call's context.
    pub fn context(&self) -> &Context {
        &self.inner.context
    }

    /// The call's context, to change.
    pub fn context_mut(&mut self) -> &mut Context {
        &mut self.inner.context
    }

    /// The request without its context.
    pub fn into_request(self) -> http::Request<Bytes> {
        let Parts { head, body, .. } = *self.inner;
        head.map(|()| body)
    }

    /// The request parts, the body and the context.
    pub fn into_parts(self) -> (request::Parts, Bytes, Context) {
        let Parts {
            head,
            body,
            context,
        } = *self.inner;
        (head.into_parts().0, body, context)
    }

    /// A copy of the request (without the context).
    pub fn to_request(&self) -> http::Request<Bytes> {
        self.inner.head.clone().map(|()| self.inner.body.clone())
    }
}

impl From<http::Request<Bytes>> for Invocation {
    fn from(request: http::Request<Bytes>) -> Self {
        Invocation::from_request(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_is_a_post_to_root() {
        let inv = Invocation::new("hi");
        assert_eq!(inv.method(), Method::POST);
        assert_eq!(inv.uri(), "/");
        assert_eq!(inv.body(), "hi");
        assert!(inv.headers().is_empty());
        assert_eq!(inv.context().attempt(), 1);
    }

    #[test]
    fn from_request_reads_call_id_and_trace() {
        let request = http::Request::builder()
            .method(Method::PUT)
            .uri("/orders/7")
            .header(CALL_ID_HEADER, "call-7")
            .header(
                TRACEPARENT_HEADER,
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .body(Bytes::from_static(b"{}"))
            .unwrap();
        let inv = Invocation::from_request(request);
        assert_eq!(inv.context().call_id().as_str(), "call-7");
        assert!(inv.context().trace_parent().unwrap().starts_with("00-4bf9"));
        let (parts, body, _) = inv.into_parts();
        assert_eq!(parts.method, Method::PUT);
        assert_eq!(parts.uri, "/orders/7");
        assert_eq!(body, "{}");
    }

    #[test]
    fn invalid_call_id_header_gets_a_fresh_id() {
        let request = http::Request::builder()
            .header(CALL_ID_HEADER, "")
            .body(Bytes::new())
            .unwrap();
        let inv = Invocation::from_request(request);
        assert!(!inv.context().call_id().as_str().is_empty());
    }

    #[test]
    fn from_event_uses_binary_mode() {
        let event = CloudEvent::new("1", "/cron/tick", "dev.faas.cron.tick")
            .with_data("text/plain", "tick");
        let inv = Invocation::from_event(event);
        assert_eq!(inv.headers()["ce-id"], "1");
        assert_eq!(inv.headers()["ce-type"], "dev.faas.cron.tick");
        assert_eq!(inv.headers()["content-type"], "text/plain");
        assert_eq!(inv.body(), "tick");
    }
}
