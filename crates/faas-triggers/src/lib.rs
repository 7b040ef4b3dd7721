//! Triggers for faas functions.

mod error;

#[cfg(feature = "cron")]
pub mod cron;
#[cfg(feature = "http")]
pub mod http;

pub use error::{Error, Result};
