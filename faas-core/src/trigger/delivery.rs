//! [`Delivery`]: how an event delivery ended.

use crate::context::CallId;
use crate::error::FunctionError;
use crate::output::Response;

/// How a [`Dispatcher::deliver`](crate::Dispatcher::deliver) ended: the last
/// attempt's result, the number of attempts, and whether the event went to the
/// dead letter.
#[derive(Debug)]
#[non_exhaustive]
pub struct Delivery {
    call_id: CallId,
    result: Result<Response, FunctionError>,
    attempts: u32,
    dead_lettered: bool,
}

impl Delivery {
    #[cfg(feature = "local")]
    pub(crate) fn new(
        call_id: CallId,
        result: Result<Response, FunctionError>,
        attempts: u32,
        dead_lettered: bool,
    ) -> Self {
        Delivery {
            call_id,
            result,
            attempts,
            dead_lettered,
        }
    }

    /// Whether the function succeeded.
    pub fn is_success(&self) -> bool {
        self.result.is_ok()
    }

    /// Whether the trigger should acknowledge the message: it succeeded, or it
    /// failed for good and is stored in the dead letter. Otherwise the trigger
    /// negatively acknowledges it, so the source redelivers it later.
    pub fn should_ack(&self) -> bool {
        self.is_success() || self.dead_lettered
    }

    /// Whether the event was stored in the function's dead letter.
    pub fn is_dead_lettered(&self) -> bool {
        self.dead_lettered
    }

    /// The number of the last attempt (0 when none ran: unknown function, host
    /// shutting down, body too large).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The call's id, the same for every attempt.
    pub fn call_id(&self) -> &CallId {
        &self.call_id
    }

    /// The response, when it succeeded.
    pub fn response(&self) -> Option<&Response> {
        self.result.as_ref().ok()
    }

    /// The last error, when it failed.
    pub fn error(&self) -> Option<&FunctionError> {
        self.result.as_ref().err()
    }

    /// The last attempt's result.
    pub fn into_result(self) -> Result<Response, FunctionError> {
        self.result
    }
}
