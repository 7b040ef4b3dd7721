//! Triggers for faas functions.

mod error;

#[cfg(feature = "cron")]
pub mod cron;

pub use error::{Error, Result};
