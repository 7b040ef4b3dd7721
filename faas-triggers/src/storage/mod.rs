//! The storage trigger: complete files that appear in a directory become
//! calls, at least once across restarts.
//!
//! - [`StorageTrigger`] watches, waits for files to be complete, delivers
//!   and journals them; [`StorageTriggerConfig`] configures it.
//! - [`StorageLag`] tells the autoscaler how many files wait.
//!
//! Each file reaches the function as a CloudEvent in binary mode: `ce-id`
//! is `PATH:SHA256` (the same at every redelivery of that content),
//! `ce-source` `/storage/DIR`, `ce-type` [`EVENT_TYPE`], `ce-subject` the
//! path relative to the directory; the body is JSON with `path`,
//! `absolute_path`, `size`, `sha256` and `modified`, so `Json<T>` reads it.
//! The function reads the file itself (it may be large).

mod config;
mod file;
mod journal;
mod lag;
mod scan;
mod trigger;

pub use config::{DEFAULT_SETTLE, StorageTriggerConfig};
pub use file::EVENT_TYPE;
pub use lag::StorageLag;
pub use trigger::StorageTrigger;
