//! What `cargo xtask` prints: progress lines and the final error.

use std::process::ExitCode;
use std::time::Duration;

use crate::interrupt;

/// Prints a progress line for a step that is starting or has finished.
pub(crate) fn step(message: impl std::fmt::Display) {
    line(format_args!("==> {message}"));
}

/// Prints a progress line that belongs to the current step.
pub(crate) fn info(message: impl std::fmt::Display) {
    line(format_args!("    {message}"));
}

/// Prints a warning that does not stop the command.
pub(crate) fn warn(message: impl std::fmt::Display) {
    line(format_args!("warning: {message}"));
}

fn line(args: std::fmt::Arguments<'_>) {
    // Progress goes to stderr so that stdout stays machine-readable
    // (`eval "$(cargo xtask cluster env)"`); `eprintln!` so that unit tests
    // capture it.
    eprintln!("{args}");
}

/// Prints the error chain and returns the exit code that goes with it
/// (130 after Ctrl-C, as a shell would report it).
pub(crate) fn fail(err: &anyhow::Error) -> ExitCode {
    line(format_args!("error: {err:#}"));
    if interrupt::is_interrupted() {
        ExitCode::from(130)
    } else {
        ExitCode::FAILURE
    }
}

/// Formats a duration for people: `4.2s`, `3m07s`.
pub(crate) fn elapsed(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs < 60 {
        format!("{:.1}s", duration.as_secs_f64())
    } else {
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elapsed_reads_as_seconds_then_minutes() {
        assert_eq!(elapsed(Duration::from_millis(4_200)), "4.2s");
        assert_eq!(elapsed(Duration::from_secs(187)), "3m07s");
    }
}
