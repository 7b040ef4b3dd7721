//! [`Error`]: what the examples' shared code can fail with, and [`report`] to
//! print an error with its causes.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::num::ParseIntError;

/// What starting an example can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The port given on the command line or in `PORT` is not a port number.
    #[error("{origin} must be a port number (0 to 65535), got {value:?}")]
    InvalidPort {
        /// Where the value came from: `the first argument` or `PORT`.
        origin: &'static str,
        /// The value as given.
        value: String,
        /// Why it does not parse.
        #[source]
        source: ParseIntError,
    },

    /// Registering functions or running the executor failed.
    #[error(transparent)]
    Core(#[from] faas_core::Error),

    /// A trigger could not be set up: the port is taken, a schedule does not
    /// parse, a route is not usable.
    #[error(transparent)]
    Triggers(#[from] faas_triggers::Error),
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `error` and each of its causes, joined with `: `, for a one-line message.
///
/// ```
/// use faas_examples::{Error, listen_addr_from, report};
///
/// let error: Error = listen_addr_from(Some("eighty"), None).unwrap_err();
/// assert_eq!(
///     report(&error),
///     r#"the first argument must be a port number (0 to 65535), got "eighty": invalid digit found in string"#,
/// );
/// ```
pub fn report(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        let next = error.to_string();
        // `#[error(transparent)]` repeats its source's message: say it once.
        if !text.ends_with(&next) {
            let _ = write!(text, ": {next}");
        }
        cause = error.source();
    }
    text
}
