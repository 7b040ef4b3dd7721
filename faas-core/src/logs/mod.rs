//! Function logs: [`LogLine`] and [`LogQuery`], what every provider reads;
//! with the `local` feature, [`InvocationLog`], the ring buffer of log lines an
//! in-process host keeps per function.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

#[cfg(feature = "local")]
mod buffer;

#[cfg(feature = "local")]
pub(crate) use buffer::{CallRecord, FunctionLog};
#[cfg(feature = "local")]
pub use buffer::{DEFAULT_LOG_CAPACITY, InvocationLog};

/// One line of a function's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LogLine {
    /// When it was written.
    pub timestamp: SystemTime,
    /// Which instance wrote it (a pod, a process, `local`).
    pub instance: String,
    /// The text, without a trailing newline.
    pub text: String,
}

impl LogLine {
    /// A line written now.
    pub fn new(instance: impl Into<String>, text: impl Into<String>) -> Self {
        LogLine {
            timestamp: SystemTime::now(),
            instance: instance.into(),
            text: text.into(),
        }
    }

    /// Sets the time it was written.
    #[must_use]
    pub fn with_timestamp(mut self, timestamp: SystemTime) -> Self {
        self.timestamp = timestamp;
        self
    }
}

/// Which log lines to read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LogQuery {
    /// Only the last `tail` lines (of those kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<usize>,
    /// Only lines written at or after `since`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<SystemTime>,
    /// Keep the stream open and send new lines as they are written.
    #[serde(default)]
    pub follow: bool,
}

impl LogQuery {
    /// All kept lines, then the stream ends.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only the last `tail` lines.
    #[must_use]
    pub fn with_tail(mut self, tail: usize) -> Self {
        self.tail = Some(tail);
        self
    }

    /// Only lines written at or after `since`.
    #[must_use]
    pub fn with_since(mut self, since: SystemTime) -> Self {
        self.since = Some(since);
        self
    }

    /// Whether to keep following new lines.
    #[must_use]
    pub fn with_follow(mut self, follow: bool) -> Self {
        self.follow = follow;
        self
    }
}
