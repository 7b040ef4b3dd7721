//! The crate's error type.

use std::net::SocketAddr;

/// Everything that can go wrong while configuring or running a trigger.
///
/// Errors of a single invocation are not here: they are
/// [`faas_core::FunctionError`]s, answered to the caller (HTTP status and JSON
/// body) or retried and dead-lettered by the dispatcher.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The HTTP server could not bind its listening socket.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why the operating system refused.
        #[source]
        source: std::io::Error,
    },

    /// An I/O error outside of a single connection (reading the local address
    /// of a listener, installing a signal handler, ...).
    #[error("I/O error: {context}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A cron expression does not parse.
    #[cfg(feature = "cron")]
    #[error("invalid cron expression {expression:?}")]
    InvalidSchedule {
        /// The expression as given.
        expression: String,
        /// What the parser objected to.
        #[source]
        source: croner::errors::CronError,
    },

    /// A time zone is not an IANA time zone name.
    #[cfg(feature = "cron")]
    #[error("unknown time zone {name:?}: {reason}")]
    InvalidTimeZone {
        /// The name as given.
        name: String,
        /// What the time zone database said.
        reason: String,
    },

    /// A configuration value (an environment variable or a builder argument)
    /// is not usable.
    #[error("invalid configuration {key}={value:?}: {reason}")]
    InvalidConfig {
        /// The variable or setting.
        key: String,
        /// The value given.
        value: String,
        /// Why it was refused, and what is accepted.
        reason: String,
    },

    /// A trigger a function declares (a `TriggerSpec`) is not usable.
    #[error("the {trigger} trigger of function {function:?} is not usable")]
    InvalidTrigger {
        /// The function that declares it.
        function: String,
        /// The kind of trigger (`cron`, `http`, ...).
        trigger: &'static str,
        /// What is wrong with it.
        #[source]
        source: Box<Error>,
    },

    /// A trigger names a function that is not in the registry.
    #[error("no function named {name:?} is registered (registered: {registered})")]
    UnknownFunction {
        /// The name asked for.
        name: String,
        /// The names the registry holds, comma separated.
        registered: String,
    },

    /// An error from the function model (registry, executor).
    #[error(transparent)]
    Core(#[from] faas_core::Error),
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
