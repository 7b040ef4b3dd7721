//! Triggers for faas functions.

mod error;

#[cfg(feature = "cron")]
pub mod cron;
#[cfg(feature = "http")]
pub mod http;

#[cfg(feature = "http")]
mod runtime;

pub use error::{Error, Result};
#[cfg(feature = "http")]
pub use runtime::{
    DEFAULT_PORT, ENV_CRON, ENV_DRAIN_TIMEOUT, ENV_FUNCTION, ENV_MAX_BODY, ENV_POD_IP, ENV_PORT,
    ENV_TIMEOUT, Runtime, RuntimeConfig, serve,
};
