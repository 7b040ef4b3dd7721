//! The exit codes of `faasctl`, one per kind of failure, so a script can tell them apart.

use faas_core::{ErrorKind, FunctionError, ProviderError};

/// Success.
pub const OK: u8 = 0;
/// A failure with no more specific code (the API server unreachable counts here too).
pub const FAILED: u8 = 1;
/// The command line was wrong (clap's own code).
pub const USAGE: u8 = 2;
/// The function does not exist.
pub const NOT_FOUND: u8 = 3;
/// The function exists already, or changed meanwhile.
pub const CONFLICT: u8 = 4;
/// The identity of the kubeconfig is not allowed to do this.
pub const FORBIDDEN: u8 = 5;
/// The function did not become ready: its reason names what to fix, or the wait timed out.
pub const NOT_READY: u8 = 6;
/// The request or manifest is invalid.
pub const INVALID: u8 = 7;
/// The function was called and answered with an error.
pub const CALL_FAILED: u8 = 8;
/// The platform is unavailable (the API server, or the function scaled to zero).
pub const UNAVAILABLE: u8 = 9;

/// The code for a provider error.
pub fn for_provider(error: &ProviderError) -> u8 {
    match error {
        ProviderError::NotFound { .. } => NOT_FOUND,
        ProviderError::Conflict { .. } => CONFLICT,
        ProviderError::Forbidden { .. } => FORBIDDEN,
        ProviderError::NotReady { .. } => NOT_READY,
        ProviderError::Invalid { .. } => INVALID,
        ProviderError::Unavailable { .. } => UNAVAILABLE,
        _ => FAILED,
    }
}

/// The code for a failed call.
pub fn for_call(error: &FunctionError) -> u8 {
    match error.kind() {
        ErrorKind::NotFound => NOT_FOUND,
        ErrorKind::Unavailable => UNAVAILABLE,
        _ => CALL_FAILED,
    }
}
