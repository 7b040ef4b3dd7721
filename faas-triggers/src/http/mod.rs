//! The HTTP trigger: functions called over HTTP/1.1 and h2c.
//!
//! [`HttpTrigger`] is the trigger; [`HttpTriggerConfig`] configures it. The
//! request side is available without a network as [`RequestDecoder`] (routing,
//! limits, deadline, trace context, CloudEvents modes) and the response side
//! as [`encode_response`], for tests, fuzzing and hosts that bring their own
//! server; [`ConnectionServer`] serves connections a host accepted itself.

mod body;
mod callback;
mod config;
mod connection;
mod connection_server;
mod decode;
mod headers;
mod queue;
mod respond;
mod route;
mod server;
mod trigger;

pub use config::{DEFAULT_ADDR, DEFAULT_MAX_BODY, HttpTriggerConfig};
pub use connection_server::ConnectionServer;
pub use decode::{Call, Decoded, Rejection, ReplyMode, RequestDecoder};
pub use headers::{
    STRUCTURED_CONTENT_TYPE, TRACEPARENT, X_ATTEMPT, X_CALL_ID, X_CALLBACK_URL, X_FORWARDED_PREFIX,
    X_FUNCTION_ATTEMPTS, X_FUNCTION_NAME, X_FUNCTION_STATUS, X_TIMEOUT, is_valid_traceparent,
    parse_timeout,
};
pub use respond::encode_response;
pub use route::{
    ASYNC_FUNCTION_PREFIX, CallPath, FUNCTION_PREFIX, HEALTH_PATH, METRICS_PATH, READY_PATH, Route,
    Router,
};
pub use trigger::{HttpTrigger, router_for};
