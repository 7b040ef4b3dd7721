#![doc = include_str!("../../README.md")]
//!
//! # This crate
//!
//! `faas-examples` holds the runnable examples listed above (`examples/*.rs`,
//! run from the workspace root with `cargo run --example <name>`;
//! `cargo test -p faas-examples` also runs the tests inside them), and the
//! little code the examples and their tests share: the quickstart itself
//! ([`quickstart::app`]), the [`App`] it returns, and where examples listen
//! ([`listen_addr`]).

mod app;
mod error;
mod listen;
pub mod quickstart;

pub use app::App;
pub use error::{Error, Result, report};
pub use listen::{DEFAULT_PORT, PORT_ENV, listen_addr, listen_addr_from};
