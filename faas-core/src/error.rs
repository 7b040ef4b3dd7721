//! Errors: [`FunctionError`], what a call can fail with, and [`Error`], what the
//! crate's own operations (registry, triggers, providers) can fail with.
//!
//! Every host turns a [`FunctionError`] into the same HTTP answer with
//! [`FunctionError::to_response`]: the status of its [`ErrorKind`] and the JSON body
//! `{"error":{"kind":"...","message":"...","call_id":"..."}}`.

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

use crate::context::{CALL_ID_HEADER, CallId};
use crate::output::Response;

/// A boxed error that can cross threads, the usual currency of `#[source]` chains.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The class of a [`FunctionError`]; it fixes the HTTP status every host answers with.
///
/// Serialized in `snake_case` (`"bad_input"`, `"payload_too_large"`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request could not be read: malformed JSON, invalid UTF-8, a missing field (400).
    BadInput,
    /// No function, or no resource the function looked for, has that name (404).
    NotFound,
    /// The request body is larger than the function accepts (413).
    PayloadTooLarge,
    /// The request's content type is not one the extractor reads (415).
    UnsupportedMediaType,
    /// The function is at its limit of in-flight calls; try again later (429).
    Overloaded,
    /// The function is not serving: scaled to zero, or the host is shutting down (503).
    Unavailable,
    /// The call ran past its deadline and was cancelled (504).
    Timeout,
    /// The function panicked; the host caught the panic and kept serving (500).
    Panicked,
    /// The host failed, not the function (500).
    Internal,
    /// The function returned its own error (500 unless the function chose a status).
    User,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::BadInput,
        ErrorKind::NotFound,
        ErrorKind::PayloadTooLarge,
        ErrorKind::UnsupportedMediaType,
        ErrorKind::Overloaded,
        ErrorKind::Unavailable,
        ErrorKind::Timeout,
        ErrorKind::Panicked,
        ErrorKind::Internal,
        ErrorKind::User,
    ];

    /// The HTTP status a host answers with for this kind.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadInput => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Panicked | ErrorKind::Internal | ErrorKind::User => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The `snake_case` name used in JSON bodies and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadInput => "bad_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::UnsupportedMediaType => "unsupported_media_type",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Panicked => "panicked",
            ErrorKind::Internal => "internal",
            ErrorKind::User => "user",
        }
    }

    /// Whether a [`RetryPolicy`](crate::RetryPolicy) retries this kind unless told otherwise.
    ///
    /// Retried: `Overloaded`, `Unavailable`, `Timeout`, `Internal` (the host or a
    /// dependency was busy or slow; a later attempt may succeed) and `User` (a
    /// function's own error is often a dependency that failed; a user error with a
    /// 4xx status is not retried, see [`RetryPolicy::should_retry`](crate::RetryPolicy::should_retry)).
    ///
    /// Not retried: `BadInput`, `NotFound`, `PayloadTooLarge`, `UnsupportedMediaType`
    /// (the same input fails the same way) and `Panicked` (a panic is a bug that a
    /// retry repeats; the message goes to the dead letter instead, where it can be
    /// replayed after a fix).
    pub fn is_retryable_by_default(self) -> bool {
        matches!(
            self,
            ErrorKind::Overloaded
                | ErrorKind::Unavailable
                | ErrorKind::Timeout
                | ErrorKind::Internal
                | ErrorKind::User
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a call failed: a kind, a status, a message and, optionally, the error behind it.
///
/// Handlers return `Result<T, E>` where `E: Into<FunctionError>`. `FunctionError`
/// converts from `&str`, `String` and `Box<dyn Error + Send + Sync>` (as a
/// [`User`](ErrorKind::User) error), from [`serde_json::Error`] (bad input) and from
/// [`std::io::Error`] (internal). For any other error type, wrap it with
/// [`FunctionError::user`]`(err.to_string()).with_source(err)` or implement
/// `From<YourError> for FunctionError`.
///
/// ```
/// use faas_core::{ErrorKind, FunctionError, CallId};
/// use http::StatusCode;
///
/// let err = FunctionError::user_with_status(StatusCode::CONFLICT, "order already paid");
/// assert_eq!(err.kind(), ErrorKind::User);
/// assert_eq!(err.status(), StatusCode::CONFLICT);
///
/// let response = err.to_response(&CallId::from("call-1"));
/// assert_eq!(response.status(), StatusCode::CONFLICT);
/// let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
/// assert_eq!(body["error"]["kind"], "user");
/// assert_eq!(body["error"]["call_id"], "call-1");
/// ```
#[derive(Clone)]
pub struct FunctionError {
    kind: ErrorKind,
    status: StatusCode,
    message: String,
    source: Option<Arc<dyn StdError + Send + Sync + 'static>>,
}

impl FunctionError {
    /// An error of `kind` with the kind's status.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        FunctionError {
            kind,
            status: kind.status(),
            message: message.into(),
            source: None,
        }
    }

    /// The request could not be read (400).
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadInput, message)
    }

    /// Nothing by that name (404).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// The request body is too large (413).
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PayloadTooLarge, message)
    }

    /// The content type is not one the extractor reads (415).
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::UnsupportedMediaType, message)
    }

    /// The function is at its in-flight limit (429).
    pub fn overloaded(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Overloaded, message)
    }

    /// The function is not serving right now (503).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// The call ran past its deadline (504).
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    /// The function panicked (500).
    pub fn panicked(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Panicked, message)
    }

    /// The host failed (500).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// The function's own error (500).
    pub fn user(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::User, message)
    }

    /// The function's own error with a status of its choosing.
    pub fn user_with_status(status: StatusCode, message: impl Into<String>) -> Self {
        FunctionError {
            status,
            ..Self::new(ErrorKind::User, message)
        }
    }

    /// Keeps `source` as the cause of this error (reported by [`std::error::Error::source`]).
    #[must_use]
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Replaces the status (the kind stays).
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status a host answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The JSON body of this error for the call `call_id`.
    pub fn to_body(&self, call_id: &CallId) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                kind: self.kind,
                message: self.message.clone(),
                call_id: Some(call_id.to_string()),
            },
        }
    }

    /// The HTTP answer for this error: its status, `content-type: application/json`,
    /// the `x-call-id` header and the body `{"error":{"kind","message","call_id"}}`.
    ///
    /// This is the one place that shapes error responses; every host uses it.
    pub fn to_response(&self, call_id: &CallId) -> Response {
        let body = serde_json::to_vec(&self.to_body(call_id))
            .expect("an error body always serializes to JSON");
        let mut response = http::Response::new(Bytes::from(body));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(value) = HeaderValue::from_str(call_id.as_str()) {
            response.headers_mut().insert(CALL_ID_HEADER, value);
        }
        response
    }

    /// Reads back an error answer produced by [`to_response`](Self::to_response),
    /// e.g. by a gateway or a client relaying a function's answer.
    ///
    /// Returns `None` when `body` is not an error body.
    pub fn from_response_parts(status: StatusCode, body: &[u8]) -> Option<FunctionError> {
        let body: ErrorBody = serde_json::from_slice(body).ok()?;
        Some(FunctionError {
            kind: body.error.kind,
            status,
            message: body.error.message,
            source: None,
        })
    }
}

impl fmt::Debug for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunctionError")
            .field("kind", &self.kind)
            .field("status", &self.status.as_u16())
            .field("message", &self.message)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl StdError for FunctionError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

impl From<&str> for FunctionError {
    fn from(message: &str) -> Self {
        FunctionError::user(message)
    }
}

impl From<String> for FunctionError {
    fn from(message: String) -> Self {
        FunctionError::user(message)
    }
}

impl From<BoxError> for FunctionError {
    fn from(error: BoxError) -> Self {
        match error.downcast::<FunctionError>() {
            Ok(error) => *error,
            Err(error) => FunctionError {
                kind: ErrorKind::User,
                status: ErrorKind::User.status(),
                message: error.to_string(),
                source: Some(Arc::from(error)),
            },
        }
    }
}

impl From<serde_json::Error> for FunctionError {
    /// Syntax, data and end-of-input errors are bad input; an I/O error is internal.
    fn from(error: serde_json::Error) -> Self {
        let kind = if error.is_io() {
            ErrorKind::Internal
        } else {
            ErrorKind::BadInput
        };
        FunctionError::new(kind, format!("invalid JSON: {error}")).with_source(error)
    }
}

impl From<std::io::Error> for FunctionError {
    fn from(error: std::io::Error) -> Self {
        FunctionError::internal(error.to_string()).with_source(error)
    }
}

impl From<std::convert::Infallible> for FunctionError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

impl From<Error> for FunctionError {
    /// Registry and provider errors map onto the closest kind.
    fn from(error: Error) -> Self {
        let kind = match &error {
            Error::UnknownFunction { .. } | Error::NotInCatalogue { .. } => ErrorKind::NotFound,
            Error::DuplicateFunction { .. } | Error::InvalidCallId { .. } => ErrorKind::BadInput,
            Error::ShuttingDown => ErrorKind::Unavailable,
            Error::Function(inner) => return inner.clone(),
            _ => ErrorKind::Internal,
        };
        FunctionError::new(kind, error.to_string()).with_source(error)
    }
}

/// The JSON body of an error answer: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// The inside of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorDetail {
    /// The error's kind, `snake_case`.
    pub kind: ErrorKind,
    /// The human-readable message.
    pub message: String,
    /// The call the error belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
}

/// What the crate's own operations fail with: the registry, the executor, triggers
/// and providers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A function with this name is already registered or deployed.
    #[error("a function named `{name}` is already registered")]
    DuplicateFunction {
        /// The name in use.
        name: String,
    },
    /// No function with this name is registered or deployed.
    #[error("no function named `{name}`")]
    UnknownFunction {
        /// The name asked for.
        name: String,
    },
    /// A provider was asked to deploy a function its catalogue does not hold.
    #[error("no function named `{name}` in the catalogue")]
    NotInCatalogue {
        /// The name asked for.
        name: String,
    },
    /// A call id was empty, too long, or held characters a header cannot carry.
    #[error("invalid call id `{value}`: {reason}")]
    InvalidCallId {
        /// The rejected text.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A function definition or deployment is not valid.
    #[error("invalid definition of `{name}`: {reason}")]
    InvalidDefinition {
        /// The function's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A trigger stopped with an error.
    #[error("trigger `{trigger}` failed")]
    Trigger {
        /// The trigger's name.
        trigger: String,
        /// What went wrong.
        #[source]
        source: BoxError,
    },
    /// A provider's backend failed (an API server, a process, a network call).
    #[error("provider failed: {message}")]
    Provider {
        /// What the provider was doing.
        message: String,
        /// The underlying failure, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// An operation this provider does not support.
    #[error("unsupported operation: {operation}")]
    Unsupported {
        /// What was asked for.
        operation: String,
    },
    /// A call failed; carried where an operation wraps a call (a provider invoke).
    #[error(transparent)]
    Function(#[from] FunctionError),
    /// The host is shutting down and accepts no new work.
    #[error("the executor is shutting down")]
    ShuttingDown,
    /// Installing the signal handlers of `shutdown_on_signal` failed.
    #[error("could not listen for shutdown signals")]
    Signal(#[source] std::io::Error),
    /// A task of the executor panicked or was aborted.
    #[error("an executor task failed")]
    Join(#[source] tokio::task::JoinError),
}

impl Error {
    /// A [`Error::Trigger`] for the trigger `trigger` caused by `source`.
    pub fn trigger(trigger: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Trigger {
            trigger: trigger.into(),
            source: source.into(),
        }
    }

    /// A [`Error::Provider`] with a message and an underlying failure.
    pub fn provider(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Provider {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A [`Error::Provider`] with only a message.
    pub fn provider_message(message: impl Into<String>) -> Self {
        Error::Provider {
            message: message.into(),
            source: None,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_their_status() {
        assert_eq!(ErrorKind::BadInput.status(), 400);
        assert_eq!(ErrorKind::NotFound.status(), 404);
        assert_eq!(ErrorKind::PayloadTooLarge.status(), 413);
        assert_eq!(ErrorKind::UnsupportedMediaType.status(), 415);
        assert_eq!(ErrorKind::Overloaded.status(), 429);
        assert_eq!(ErrorKind::Unavailable.status(), 503);
        assert_eq!(ErrorKind::Timeout.status(), 504);
        assert_eq!(ErrorKind::Panicked.status(), 500);
        assert_eq!(ErrorKind::Internal.status(), 500);
        assert_eq!(ErrorKind::User.status(), 500);
    }

    #[test]
    fn kind_names_match_serde() {
        for kind in ErrorKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str());
            let back: ErrorKind = serde_json::from_value(json).unwrap();
            assert_eq!(back, kind);
        }
    }

    #[test]
    fn response_body_has_the_documented_shape() {
        let err = FunctionError::bad_input("field `name` is missing");
        let response = err.to_response(&CallId::from("abc"));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(response.headers()[CALL_ID_HEADER], "abc");
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "error": {"kind": "bad_input", "message": "field `name` is missing", "call_id": "abc"}
            })
        );
        let object = body["error"].as_object().unwrap();
        assert_eq!(object.len(), 3);
    }

    #[test]
    fn response_round_trips() {
        let err = FunctionError::user_with_status(StatusCode::CONFLICT, "taken");
        let response = err.to_response(&CallId::from("c"));
        let back = FunctionError::from_response_parts(response.status(), response.body()).unwrap();
        assert_eq!(back.kind(), ErrorKind::User);
        assert_eq!(back.status(), StatusCode::CONFLICT);
        assert_eq!(back.message(), "taken");
        assert!(FunctionError::from_response_parts(StatusCode::OK, b"{}").is_none());
    }

    #[test]
    fn source_is_kept() {
        let io = std::io::Error::other("disk full");
        let err = FunctionError::from(io);
        assert_eq!(err.kind(), ErrorKind::Internal);
        assert_eq!(err.source().unwrap().to_string(), "disk full");
    }

    #[test]
    fn conversions_pick_the_obvious_kind() {
        let json = serde_json::from_str::<u32>("{").unwrap_err();
        assert_eq!(FunctionError::from(json).kind(), ErrorKind::BadInput);
        assert_eq!(FunctionError::from("nope").kind(), ErrorKind::User);
        let boxed: BoxError = Box::new(FunctionError::timeout("late"));
        assert_eq!(FunctionError::from(boxed).kind(), ErrorKind::Timeout);
        let unknown = Error::UnknownFunction { name: "x".into() };
        assert_eq!(FunctionError::from(unknown).kind(), ErrorKind::NotFound);
    }

    #[test]
    fn retryable_defaults() {
        let retried: Vec<_> = ErrorKind::ALL
            .into_iter()
            .filter(|kind| kind.is_retryable_by_default())
            .collect();
        assert_eq!(
            retried,
            [
                ErrorKind::Overloaded,
                ErrorKind::Unavailable,
                ErrorKind::Timeout,
                ErrorKind::Internal,
                ErrorKind::User
            ]
        );
    }
}
