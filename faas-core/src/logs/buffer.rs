//! [`InvocationLog`]: the ring buffer of log lines an in-process host keeps
//! per function.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, RwLock, Weak};
use std::time::{Duration, SystemTime};

use futures::StreamExt as _;
use futures::stream::{self, BoxStream};
use tokio::sync::broadcast;

use super::{LogLine, LogQuery};
use crate::context::CallId;
use crate::error::{Error, Result};

/// The default number of lines kept per function.
pub const DEFAULT_LOG_CAPACITY: usize = 1000;

/// Lines buffered for live followers before a slow one is told it missed some.
const LIVE_BUFFER: usize = 1024;

/// A ring buffer of log lines per function, with live followers.
///
/// The local executor writes one line per finished call (call id, attempt,
/// status, duration, and the error if any); providers read it back with
/// [`stream`](Self::stream). Clones share the same buffers.
///
/// A call's line is dated by the system clock when the call finished.
///
/// ```
/// use faas_core::{InvocationLog, LogQuery};
///
/// let log = InvocationLog::new(2);
/// for n in 1..=3 {
///     log.push("hello", format!("line {n}"));
/// }
/// let lines = log.lines("hello", &LogQuery::new());
/// assert_eq!(lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(), ["line 2", "line 3"]);
/// ```
#[derive(Clone)]
pub struct InvocationLog {
    inner: Arc<LogInner>,
}

struct LogInner {
    shared: Arc<Shared>,
    instance: String,
    /// The lines of each function; an entry, once made, stays (clearing empties it),
    /// since the functions' [`FunctionLog`]s write to it directly.
    functions: RwLock<HashMap<String, Arc<Lines>>>,
    /// Made by the first follower: a channel's buffer costs memory that a
    /// log nobody follows (one per function pod on a virtual node) should not pay.
    live: OnceLock<broadcast::Sender<(Arc<str>, u64, LogLine)>>,
}

/// What the functions' buffers share.
struct Shared {
    capacity: usize,
    /// The sequence number of the next line, over all functions.
    next_seq: AtomicU64,
    /// Streams following new lines; lines are sent live only when there is one.
    followers: AtomicUsize,
}

/// One function's kept lines.
type Lines = Mutex<VecDeque<Record>>;

/// The log of one function, found once; a registry entry keeps it for the
/// [`InvocationLog`] its calls are written to. Cheap to clone.
#[derive(Clone)]
pub(crate) struct FunctionLog {
    /// Which log it belongs to; weak, so keeping it does not keep the log's
    /// followers waiting for lines once the log is gone.
    log: Weak<LogInner>,
    shared: Arc<Shared>,
    function: Arc<str>,
    lines: Arc<Lines>,
}

/// A kept line; a call's line is only formatted when read.
#[derive(Clone)]
struct Record {
    seq: u64,
    timestamp: SystemTime,
    text: RecordText,
}

#[derive(Clone)]
enum RecordText {
    Text(String),
    Call(CallRecord),
}

/// What the dispatcher records about one finished attempt.
#[derive(Clone)]
pub(crate) struct CallRecord {
    pub(crate) call_id: CallId,
    pub(crate) attempt: u32,
    pub(crate) status: u16,
    pub(crate) elapsed: Duration,
    pub(crate) error: Option<String>,
}

impl RecordText {
    fn render(&self) -> String {
        match self {
            RecordText::Text(text) => text.clone(),
            RecordText::Call(call) => {
                let mut text = format!(
                    "call_id={} attempt={} status={} duration={:?}",
                    call.call_id, call.attempt, call.status, call.elapsed
                );
                if let Some(error) = &call.error {
                    text.push_str(&format!(" error=\"{error}\""));
                }
                text
            }
        }
    }
}

impl Default for InvocationLog {
    fn default() -> Self {
        InvocationLog::new(DEFAULT_LOG_CAPACITY)
    }
}

impl std::fmt::Debug for InvocationLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvocationLog")
            .field("capacity", &self.inner.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl InvocationLog {
    /// A log keeping the last `capacity` lines of each function.
    pub fn new(capacity: usize) -> Self {
        InvocationLog {
            inner: Arc::new(LogInner {
                shared: Arc::new(Shared {
                    capacity: capacity.max(1),
                    next_seq: AtomicU64::new(0),
                    followers: AtomicUsize::new(0),
                }),
                instance: format!("local-{}", std::process::id()),
                functions: RwLock::new(HashMap::new()),
                live: OnceLock::new(),
            }),
        }
    }

    /// Appends a line to `function`'s log.
    pub fn push(&self, function: &str, text: impl Into<String>) {
        self.function(function)
            .push(RecordText::Text(text.into()), SystemTime::now());
    }

    /// The log of `function`, made on first use. Keep it: looking it up again
    /// costs a hash of the name.
    pub(crate) fn function(&self, function: &str) -> FunctionLog {
        let lines = match self.lines_of(function) {
            Some(lines) => lines,
            None => Arc::clone(
                self.inner
                    .functions
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(function.to_owned())
                    .or_default(),
            ),
        };
        FunctionLog {
            log: Arc::downgrade(&self.inner),
            shared: Arc::clone(&self.inner.shared),
            function: Arc::from(function),
            lines,
        }
    }

    fn lines_of(&self, function: &str) -> Option<Arc<Lines>> {
        self.inner
            .functions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(function)
            .cloned()
    }

    /// The kept lines of `function` that match `options` (`follow` is ignored).
    pub fn lines(&self, function: &str, options: &LogQuery) -> Vec<LogLine> {
        self.sequenced_lines(function, options)
            .1
            .into_iter()
            .map(|(_, line)| line)
            .collect()
    }

    /// The matching lines with their sequence numbers, and the sequence number
    /// from which later lines of `function` are numbered.
    fn sequenced_lines(&self, function: &str, options: &LogQuery) -> (u64, Vec<(u64, LogLine)>) {
        // Read before looking the function up: a first line written after the
        // lookup found nothing is numbered from here on.
        let next_seq = self.inner.shared.next_seq.load(Ordering::SeqCst);
        let Some(lines) = self.lines_of(function) else {
            return (next_seq, Vec::new());
        };
        let lines = lock(&lines);
        // Read again under the function's lock: the lines written before are all
        // kept, those written after are numbered from here on.
        let next_seq = self.inner.shared.next_seq.load(Ordering::SeqCst);
        let matching: Vec<&Record> = lines
            .iter()
            .filter(|record| options.since.is_none_or(|since| record.timestamp >= since))
            .collect();
        let skip = options
            .tail
            .map_or(0, |tail| matching.len().saturating_sub(tail));
        let lines = matching
            .into_iter()
            .skip(skip)
            .map(|record| (record.seq, self.inner.to_line(record)))
            .collect();
        (next_seq, lines)
    }

    /// Forgets `function`'s lines.
    pub fn clear(&self, function: &str) {
        if let Some(lines) = self.lines_of(function) {
            lock(&lines).clear();
        }
    }

    /// The lines of `function` as a stream: the kept lines matching `options`,
    /// then, with `follow`, each new line until the log is dropped.
    ///
    /// A follower too slow to keep up gets an [`Error::Provider`] item saying how
    /// many lines it missed, then continues.
    pub fn stream(
        &self,
        function: &str,
        options: &LogQuery,
    ) -> BoxStream<'static, Result<LogLine>> {
        // Subscribe before reading the buffer so no line falls between the two.
        let receiver = options.follow.then(|| {
            let receiver = self
                .inner
                .live
                .get_or_init(|| broadcast::channel(LIVE_BUFFER).0)
                .subscribe();
            let following = Following::new(&self.inner.shared);
            (receiver, following)
        });
        let (next_seq, kept) = self.sequenced_lines(function, options);
        let backlog = stream::iter(kept.into_iter().map(|(_, line)| Ok(line)));
        let Some(receiver) = receiver else {
            return backlog.boxed();
        };
        let function: Arc<str> = Arc::from(function);
        let since = options.since;
        let live = stream::unfold(receiver, move |(mut receiver, following)| {
            let function = Arc::clone(&function);
            async move {
                loop {
                    match receiver.recv().await {
                        Ok((name, seq, line)) => {
                            let wanted = seq >= next_seq
                                && name == function
                                && since.is_none_or(|since| line.timestamp >= since);
                            if wanted {
                                return Some((Ok(line), (receiver, following)));
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            let error = Error::provider_message(format!(
                                "log follower fell behind and missed {missed} lines"
                            ));
                            return Some((Err(error), (receiver, following)));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        backlog.chain(live).boxed()
    }
}

impl LogInner {
    fn to_line(&self, record: &Record) -> LogLine {
        LogLine {
            timestamp: record.timestamp,
            instance: self.instance.clone(),
            text: record.text.render(),
        }
    }
}

impl FunctionLog {
    /// Whether this is the function's log in `log`.
    pub(crate) fn belongs_to(&self, log: &InvocationLog) -> bool {
        std::ptr::eq(self.log.as_ptr(), Arc::as_ptr(&log.inner))
    }

    /// Appends the line of a finished call, dated `timestamp`.
    pub(crate) fn push_call(&self, call: CallRecord, timestamp: SystemTime) {
        self.push(RecordText::Call(call), timestamp);
    }

    fn push(&self, text: RecordText, timestamp: SystemTime) {
        let mut lines = lock(&self.lines);
        let record = Record {
            seq: self.shared.next_seq.fetch_add(1, Ordering::SeqCst),
            timestamp,
            text,
        };
        // Sent under the function's lock, so its followers see its lines in order.
        if self.shared.followers.load(Ordering::SeqCst) > 0
            && let Some(log) = self.log.upgrade()
            && let Some(live) = log.live.get()
        {
            // A follower that left meanwhile is not an error.
            let _ = live.send((Arc::clone(&self.function), record.seq, log.to_line(&record)));
        }
        if lines.len() == self.shared.capacity {
            lines.pop_front();
        }
        lines.push_back(record);
    }
}

/// Counts a stream among the followers while it lives.
struct Following {
    shared: Arc<Shared>,
}

impl Following {
    fn new(shared: &Arc<Shared>) -> Self {
        shared.followers.fetch_add(1, Ordering::SeqCst);
        Following {
            shared: Arc::clone(shared),
        }
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        self.shared.followers.fetch_sub(1, Ordering::SeqCst);
    }
}

fn lock(lines: &Lines) -> MutexGuard<'_, VecDeque<Record>> {
    lines.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn tail_and_since() {
        let log = InvocationLog::new(10);
        for n in 0..5 {
            log.push("f", format!("{n}"));
        }
        log.push("g", "other");
        let tail = log.lines("f", &LogQuery::new().with_tail(2));
        assert_eq!(
            tail.iter().map(|l| l.text.as_str()).collect::<Vec<_>>(),
            ["3", "4"]
        );
        let future = SystemTime::now() + Duration::from_secs(3600);
        assert!(
            log.lines("f", &LogQuery::new().with_since(future))
                .is_empty()
        );
        assert!(log.lines("nobody", &LogQuery::new()).is_empty());
        log.clear("f");
        assert!(log.lines("f", &LogQuery::new()).is_empty());
        assert_eq!(log.lines("g", &LogQuery::new()).len(), 1);
    }

    #[tokio::test]
    async fn follow_streams_new_lines() {
        let log = InvocationLog::new(10);
        log.push("f", "old");
        let mut stream = log.stream("f", &LogQuery::new().with_follow(true));
        assert_eq!(stream.next().await.unwrap().unwrap().text, "old");
        log.push("g", "not mine");
        log.push("f", "new");
        assert_eq!(stream.next().await.unwrap().unwrap().text, "new");
    }

    fn texts(lines: Vec<LogLine>) -> Vec<String> {
        lines.into_iter().map(|line| line.text).collect()
    }

    #[tokio::test]
    async fn a_kept_function_log_writes_where_readers_look() {
        let log = InvocationLog::new(10);
        let f = log.function("f");
        assert!(f.belongs_to(&log));
        assert!(!f.belongs_to(&InvocationLog::new(10)));
        f.push(RecordText::Text("one".into()), SystemTime::now());
        log.clear("f");
        f.push(RecordText::Text("two".into()), SystemTime::now());
        assert_eq!(texts(log.lines("f", &LogQuery::new())), ["two"]);

        let mut stream = log.stream("f", &LogQuery::new().with_follow(true));
        assert_eq!(stream.next().await.unwrap().unwrap().text, "two");
        log.push("g", "not mine");
        f.push(RecordText::Text("three".into()), SystemTime::now());
        assert_eq!(stream.next().await.unwrap().unwrap().text, "three");
        assert_eq!(log.inner.shared.followers.load(Ordering::SeqCst), 1);
        drop(stream);
        assert_eq!(log.inner.shared.followers.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_follower_ends_with_the_log_even_while_a_function_log_is_kept() {
        let log = InvocationLog::new(10);
        let f = log.function("f");
        let mut stream = log.stream("f", &LogQuery::new().with_follow(true));
        f.push(RecordText::Text("last".into()), SystemTime::now());
        drop(log);
        assert_eq!(stream.next().await.unwrap().unwrap().text, "last");
        assert!(stream.next().await.is_none());
        f.push(RecordText::Text("after the log".into()), SystemTime::now());
    }

    #[tokio::test]
    async fn without_follow_the_stream_ends() {
        let log = InvocationLog::new(10);
        log.push("f", "a");
        let lines: Vec<_> = log.stream("f", &LogQuery::new()).collect().await;
        assert_eq!(lines.len(), 1);
    }
}
