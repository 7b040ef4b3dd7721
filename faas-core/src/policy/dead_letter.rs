//! [`DeadLetter`]: where a delivery goes when its last attempt failed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;

use crate::context::CallId;
use crate::error::{Error, FunctionError};

/// A delivery that failed its last attempt, with everything needed to replay it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DeadLetterEntry {
    /// The function that failed it.
    pub function: String,
    /// The call's id.
    pub call_id: CallId,
    /// The request as delivered (method, URI, headers, body).
    pub request: http::Request<Bytes>,
    /// The error of the last attempt.
    pub error: FunctionError,
    /// How many attempts were made (the broker's delivery count for a
    /// redelivering source).
    pub attempts: u32,
    /// When the delivery was given up.
    pub failed_at: SystemTime,
    /// Where the message came from, as its source names it (`subject`,
    /// `stream`, `sequence`, `table`, `id`, ...), so it can be traced back and
    /// replayed.
    pub attributes: BTreeMap<String, String>,
}

impl DeadLetterEntry {
    /// An entry failed now.
    pub fn new(
        function: impl Into<String>,
        call_id: CallId,
        request: http::Request<Bytes>,
        error: FunctionError,
        attempts: u32,
    ) -> Self {
        DeadLetterEntry {
            function: function.into(),
            call_id,
            request,
            error,
            attempts,
            failed_at: SystemTime::now(),
            attributes: BTreeMap::new(),
        }
    }

    /// Adds a source attribute (the subject, stream, sequence, ...).
    #[must_use]
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }
}

/// A destination for failed deliveries: a queue's dead-letter subject or
/// stream, a table, a log.
///
/// Storing a letter can fail (the broker is down, the table is gone): then
/// [`dead_letter`](Self::dead_letter) returns the error, the letter is not
/// safe, and the trigger does not acknowledge the message; the source
/// redelivers it and the dead letter is tried again.
///
/// ```
/// use async_trait::async_trait;
/// use faas_core::{DeadLetter, DeadLetterEntry, Error};
///
/// struct LogDeadLetter;
///
/// #[async_trait]
/// impl DeadLetter for LogDeadLetter {
///     async fn dead_letter(&self, letter: DeadLetterEntry) -> Result<(), Error> {
///         eprintln!("gave up on {} after {} attempts: {}", letter.call_id, letter.attempts, letter.error);
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait DeadLetter: Send + Sync + 'static {
    /// Stores a failed delivery.
    ///
    /// # Errors
    ///
    /// When the letter could not be stored; the message is then not
    /// acknowledged.
    async fn dead_letter(&self, letter: DeadLetterEntry) -> Result<(), Error>;
}

/// A dead letter that keeps entries in memory, for tests and local runs.
///
/// ```
/// use faas_core::InMemoryDeadLetter;
///
/// let dead = InMemoryDeadLetter::new();
/// assert!(dead.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct InMemoryDeadLetter {
    entries: Arc<Mutex<Vec<DeadLetterEntry>>>,
    added: Arc<tokio::sync::Notify>,
}

impl InMemoryDeadLetter {
    /// An empty dead letter.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the entries, oldest first.
    pub fn entries(&self) -> Vec<DeadLetterEntry> {
        self.lock().clone()
    }

    /// Removes and returns the entries, oldest first.
    pub fn take(&self) -> Vec<DeadLetterEntry> {
        std::mem::take(&mut *self.lock())
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Waits until it holds at least `count` entries.
    pub async fn wait_for(&self, count: usize) {
        loop {
            let added = self.added.notified();
            if self.len() >= count {
                return;
            }
            added.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<DeadLetterEntry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl DeadLetter for InMemoryDeadLetter {
    async fn dead_letter(&self, letter: DeadLetterEntry) -> Result<(), Error> {
        self.lock().push(letter);
        self.added.notify_waiters();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_entries() {
        let dead = InMemoryDeadLetter::new();
        let waiter = {
            let dead = dead.clone();
            tokio::spawn(async move { dead.wait_for(1).await })
        };
        let entry = DeadLetterEntry::new(
            "f",
            CallId::from("c"),
            http::Request::new(Bytes::from_static(b"body")),
            FunctionError::timeout("slow"),
            3,
        )
        .with_attribute("subject", "orders.created");
        dead.dead_letter(entry).await.unwrap();
        waiter.await.unwrap();
        let entries = dead.entries();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].attempts, 3);
        assert_eq!(entries[0].request.body(), "body");
        assert_eq!(entries[0].attributes["subject"], "orders.created");
        assert_eq!(dead.take().len(), 1);
        assert!(dead.is_empty());
    }
}
