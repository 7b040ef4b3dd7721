//! [`StorageTrigger`]: complete files appearing in a directory, feeding one
//! function.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use faas_core::trigger::{DeadLetterRoute, Invoker};
use faas_core::{Dispatcher, Trigger};
use futures::StreamExt as _;
use notify::{RecursiveMode, Watcher as _};
use tokio::sync::{Mutex, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::time::DelayQueue;

use super::config::StorageTriggerConfig;
use super::file::{FileDelivery, FileMessage, sha256_of};
use super::journal::{FileVersion, Journal};
use super::lag::StorageLag;
use super::scan::{Seen, deliverable, files, stat, version_of};
use crate::event::{deliver, invalid, invoker_or, take_slots};
use crate::{Error, Result};

/// The in-flight limit when neither the trigger nor the function's policy
/// sets one.
const FALLBACK_MAX_IN_FLIGHT: usize = 16;

/// Delivers each complete file that appears in a directory to one function,
/// at least once, across restarts.
///
/// It watches the directory (the `notify` crate: inotify on Linux) and, at
/// start, lists it, so files written while it was down are not missed. A
/// file is delivered once it is complete: its size and modification time
/// stayed unchanged for `settle`, and its name is not one uploaders write
/// under (`.tmp`, `.part`, hidden, ...). Each handled file version (path,
/// size, modification time) is appended to a journal and never delivered
/// again; a file changed later is a new version. A failed call is delivered
/// again after the policy's backoff with the next attempt number; a file
/// that failed for good goes to the policy's dead letter and is journaled as
/// dead-lettered. The event carries the file's path, size and SHA-256.
///
/// ```no_run
/// use faas_core::{FunctionDefinition, Json, LocalExecutor, Registry};
/// use faas_triggers::storage::{StorageTrigger, StorageTriggerConfig};
///
/// #[derive(serde::Deserialize)]
/// struct Upload { path: String, size: u64, sha256: String }
///
/// async fn thumbnail(Json(upload): Json<Upload>) -> String {
///     format!("{} ({} bytes, {})", upload.path, upload.size, upload.sha256)
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = Registry::from([FunctionDefinition::from_handler("thumbnail", thumbnail)]);
/// LocalExecutor::builder(registry)
///     .trigger(StorageTrigger::new("thumbnail", StorageTriggerConfig::new("/srv/uploads"))?)
///     .build()
///     .shutdown_on_signal()
///     .run()
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct StorageTrigger {
    function: String,
    config: StorageTriggerConfig,
    invoker: Option<Arc<dyn Invoker>>,
}

impl std::fmt::Debug for StorageTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageTrigger")
            .field("function", &self.function)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A file waiting to be complete.
struct Settling {
    seen: Seen,
    since: Instant,
}

impl StorageTrigger {
    /// Delivers the files `config` watches to `function`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming a bad setting.
    pub fn new(function: impl Into<String>, config: StorageTriggerConfig) -> Result<Self> {
        config.validate()?;
        Ok(StorageTrigger {
            function: function.into(),
            config,
            invoker: None,
        })
    }

    /// Calls the function through `invoker` instead of the host's dispatcher.
    pub fn with_invoker(mut self, invoker: Arc<dyn Invoker>) -> Self {
        self.invoker = Some(invoker);
        self
    }

    /// A [`LagSource`](faas_core::trigger::LagSource) for the autoscaler.
    pub fn lag_source(&self) -> StorageLag {
        StorageLag::new(self.function.clone(), self.config.clone())
    }

    async fn run_trigger(self, dispatcher: Dispatcher, shutdown: CancellationToken) -> Result<()> {
        let config = self.config.clone();
        let dir = config.dir.canonicalize().map_err(|error| {
            invalid(
                "storage.dir",
                &config.dir.display().to_string(),
                error.to_string(),
            )
        })?;
        let journal_path = config.journal();
        let journal = Journal::open(&journal_path).map_err(|error| {
            invalid(
                "storage.journal",
                &journal_path.display().to_string(),
                error.to_string(),
            )
        })?;
        let journal = Arc::new(Mutex::new(journal));
        let invoker = invoker_or(self.invoker.as_ref(), &dispatcher);
        let max_in_flight = config
            .max_in_flight
            .or_else(|| {
                invoker
                    .policy(&self.function)
                    .and_then(|p| p.max_in_flight())
            })
            .unwrap_or(FALLBACK_MAX_IN_FLIGHT);
        let slots = Arc::new(Semaphore::new(max_in_flight));
        let tracker = TaskTracker::new();
        let in_flight: Arc<std::sync::Mutex<HashSet<FileVersion>>> = Arc::default();

        let (events, mut changes) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let _ = events.send(event);
            })
            .map_err(|error| Error::Core(faas_core::Error::trigger("storage", error)))?;
        let mode = if config.recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        watcher.watch(&dir, mode).map_err(|error| {
            invalid("storage.dir", &dir.display().to_string(), error.to_string())
        })?;

        let mut settling: HashMap<PathBuf, Settling> = HashMap::new();
        let now = Instant::now();
        for path in files(&dir, config.recursive) {
            if let Some(seen) = stat(&path) {
                settling.insert(path, Settling { seen, since: now });
            }
        }
        let (retry_sender, mut retries) = mpsc::unbounded_channel::<(FileDelivery, Duration)>();
        let mut delayed = DelayQueue::new();
        let mut ticks = tokio::time::interval((config.settle / 2).max(Duration::from_millis(5)));
        let source = dir.display().to_string();
        let start = |file: FileDelivery, permit| {
            let invoker = Arc::clone(&invoker);
            let function = self.function.clone();
            let journal = Arc::clone(&journal);
            let retries = retry_sender.clone();
            let in_flight = Arc::clone(&in_flight);
            let source = source.clone();
            tracker.spawn(async move {
                let invocation = file.invocation(&source, &function);
                let attributes = [
                    ("path", file.version.path.as_str()),
                    ("sha256", file.sha256.as_str()),
                ];
                let message = FileMessage {
                    file: &file,
                    journal: &journal,
                    retries: &retries,
                };
                deliver(
                    &*invoker,
                    &function,
                    invocation,
                    &message,
                    None,
                    DeadLetterRoute::new(None, &attributes),
                )
                .await;
                in_flight
                    .lock()
                    .expect("not poisoned")
                    .remove(&file.version);
                drop(permit);
            });
        };
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some(event) = changes.recv() => match event {
                    Ok(event) => {
                        let now = Instant::now();
                        for path in event.paths {
                            if !deliverable(&dir, &path) {
                                continue;
                            }
                            match stat(&path) {
                                Some(seen) => {
                                    settling.insert(path, Settling { seen, since: now });
                                }
                                None => {
                                    settling.remove(&path);
                                }
                            }
                        }
                    }
                    Err(error) => tracing::warn!(%error, dir = %dir.display(), "watching the directory failed"),
                },
                Some((file, delay)) = retries.recv() => {
                    delayed.insert(file, delay);
                }
                Some(expired) = delayed.next(), if !delayed.is_empty() => {
                    let file = expired.into_inner();
                    // Still the same version? A changed or removed file is not retried.
                    let path = dir.join(&file.version.path);
                    let current = stat(&path).map(|seen| version_of(&dir, &path, &seen));
                    if current.as_ref() == Some(&file.version) {
                        let permit = take_slots(&slots, 1).await;
                        start(file, permit);
                    } else {
                        in_flight.lock().expect("not poisoned").remove(&file.version);
                    }
                }
                _ = ticks.tick() => {
                    let complete = complete_files(&mut settling, config.settle);
                    for (path, seen) in complete {
                        let version = version_of(&dir, &path, &seen);
                        if journal.lock().await.contains(&version)
                            || !in_flight.lock().expect("not poisoned").insert(version.clone())
                        {
                            continue;
                        }
                        let sha256 = match sha256_of(&path).await {
                            Ok(sha256) => sha256,
                            Err(error) => {
                                tracing::warn!(%error, path = %path.display(), "cannot read a file; it is looked at again when it changes");
                                in_flight.lock().expect("not poisoned").remove(&version);
                                continue;
                            }
                        };
                        let permit = take_slots(&slots, 1).await;
                        start(
                            FileDelivery {
                                version,
                                absolute: path.display().to_string(),
                                modified: seen.modified,
                                sha256,
                                attempt: 1,
                            },
                            permit,
                        );
                    }
                }
            }
        }
        drop(watcher);
        tracker.close();
        tracker.wait().await;
        Ok(())
    }
}

/// Takes out of `settling` the files unchanged for `settle`; a file that
/// changed starts its wait again, one that vanished is dropped.
fn complete_files(
    settling: &mut HashMap<PathBuf, Settling>,
    settle: Duration,
) -> Vec<(PathBuf, Seen)> {
    let now = Instant::now();
    let mut complete = Vec::new();
    settling.retain(|path: &PathBuf, waiting| match stat(Path::new(path)) {
        None => false,
        Some(seen) if seen != waiting.seen => {
            waiting.seen = seen;
            waiting.since = now;
            true
        }
        Some(seen) if now.duration_since(waiting.since) >= settle => {
            complete.push((path.clone(), seen));
            false
        }
        Some(_) => true,
    });
    complete.sort_by(|a, b| a.0.cmp(&b.0));
    complete
}

#[async_trait]
impl Trigger for StorageTrigger {
    fn name(&self) -> &str {
        "storage"
    }

    async fn run(
        self: Box<Self>,
        dispatcher: Dispatcher,
        shutdown: CancellationToken,
    ) -> Result<(), faas_core::Error> {
        (*self)
            .run_trigger(dispatcher, shutdown)
            .await
            .map_err(|error| faas_core::Error::trigger("storage", error))
    }
}
