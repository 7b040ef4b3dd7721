//! A complete file as an event, and its settlement.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use faas_core::trigger::Settle;
use faas_core::{CloudEvent, Error, Invocation};
use sha2::{Digest as _, Sha256};
use tokio::sync::{Mutex, mpsc};

use super::journal::{FileVersion, Journal};
use crate::event::{event_invocation, with_payload};

/// The CloudEvents type of a file upload.
pub const EVENT_TYPE: &str = "rs.faas.storage.file.created";

/// What reaches the function as the event's data.
#[derive(Debug, serde::Serialize)]
struct FileData<'a> {
    path: &'a str,
    absolute_path: &'a str,
    size: u64,
    sha256: &'a str,
    modified: String,
}

/// A file to deliver: its version, content hash and delivery number.
#[derive(Debug, Clone)]
pub(crate) struct FileDelivery {
    pub(crate) version: FileVersion,
    pub(crate) absolute: String,
    pub(crate) modified: SystemTime,
    pub(crate) sha256: String,
    pub(crate) attempt: u32,
}

/// The SHA-256 of a file's content, in hex.
pub(crate) async fn sha256_of(path: &Path) -> std::io::Result<String> {
    use tokio::io::AsyncReadExt as _;
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for byte in digest.iter() {
        use std::fmt::Write as _;
        let _ = write!(hex, "{byte:02x}");
    }
    Ok(hex)
}

impl FileDelivery {
    /// The invocation of `function`: a CloudEvent (id `PATH:SHA256`, the
    /// same at every redelivery of this content; source `/storage/DIR`;
    /// subject the relative path) whose data is the file's description as
    /// JSON: `path`, `absolute_path`, `size`, `sha256`, `modified`.
    pub(crate) fn invocation(&self, dir: &str, function: &str) -> Invocation {
        let data = FileData {
            path: &self.version.path,
            absolute_path: &self.absolute,
            size: self.version.size,
            sha256: &self.sha256,
            modified: humantime::format_rfc3339_millis(self.modified).to_string(),
        };
        let body = serde_json::to_vec(&data).unwrap_or_default();
        let event = CloudEvent::new(
            format!("{}:{}", self.version.path, self.sha256),
            format!("/storage{dir}"),
            EVENT_TYPE,
        )
        .with_subject(self.version.path.clone())
        .with_system_time(self.modified);
        let event = with_payload(event, Some("application/json"), Bytes::from(body));
        event_invocation(event, function, self.attempt)
    }
}

/// Settles a file: recorded in the journal once done, or handed back for a
/// later delivery.
pub(crate) struct FileMessage<'a> {
    pub(crate) file: &'a FileDelivery,
    pub(crate) journal: &'a Arc<Mutex<Journal>>,
    pub(crate) retries: &'a mpsc::UnboundedSender<(FileDelivery, Duration)>,
}

#[async_trait]
impl Settle for FileMessage<'_> {
    async fn ack(&self) -> Result<(), Error> {
        self.journal
            .lock()
            .await
            .record(&self.file.version, &self.file.sha256, "done")
            .map_err(|error| Error::trigger("storage journal", error))
    }

    async fn nack(&self, delay: Duration) -> Result<(), Error> {
        let mut again = self.file.clone();
        again.attempt = again.attempt.saturating_add(1);
        self.retries
            .send((again, delay))
            .map_err(|_| Error::trigger("storage", "the trigger stopped"))
    }

    async fn terminate(&self) -> Result<(), Error> {
        self.journal
            .lock()
            .await
            .record(&self.file.version, &self.file.sha256, "dead-lettered")
            .map_err(|error| Error::trigger("storage journal", error))
    }
}
