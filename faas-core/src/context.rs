//! The [`Context`] of one call: who it is, how long it may take, and how to learn
//! that it was cancelled.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::cancellation::{CallCancellation, TokenSlot};
use crate::error::Error;

/// The header that carries a call's id between hosts (`x-call-id`).
pub const CALL_ID_HEADER: &str = "x-call-id";

/// The W3C trace context header (`traceparent`).
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// The longest call id accepted from outside.
const MAX_CALL_ID_LEN: usize = 128;

/// The id of one call, unique per call and kept across its retries.
///
/// [`CallId::new`] makes a UUID v7 (time-ordered); ids read from a request header
/// with [`FromStr`] must be 1 to 128 visible ASCII characters.
///
/// ```
/// use faas_core::CallId;
///
/// let id = CallId::new();
/// assert_eq!(id.as_str().len(), 36);
/// let parsed: CallId = "req-42".parse().unwrap();
/// assert_eq!(parsed.to_string(), "req-42");
/// assert!("".parse::<CallId>().is_err());
/// ```
#[derive(Clone)]
pub struct CallId(Repr);

/// How a [`CallId`] holds its text. Ids compare, hash and order by their text,
/// whichever form holds it.
#[derive(Clone)]
enum Repr {
    /// A generated UUID in its hyphenated form, kept inline: every call gets one,
    /// so making it must not allocate.
    Uuid([u8; uuid::fmt::Hyphenated::LENGTH]),
    /// Text from outside, shared between clones.
    Text(Arc<str>),
}

impl Serialize for CallId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CallId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(CallId::from)
    }
}

impl CallId {
    /// A fresh id: a UUID v7 (a millisecond timestamp, then random bits).
    ///
    /// The random bits come from a fast per-thread generator, drawn for a
    /// thread's first id; its later ids count up from them: ids are unique and
    /// ordered, not secret.
    pub fn new() -> Self {
        CallId::at(SystemTime::now())
    }

    /// A fresh id made at `time`.
    ///
    /// Each thread draws the random part of its first id, then counts up from it
    /// in the low 48 bits (RFC 9562, 6.2, method 2), writing only the timestamp
    /// anew when the millisecond changes: ids stay unique and ordered without
    /// drawing and formatting new random bits for each.
    pub(crate) fn at(time: SystemTime) -> Self {
        let millis = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis() as u64);
        CallId(Repr::Uuid(
            ID_GENERATOR.with(|generator| generator.borrow_mut().next(millis)),
        ))
    }

    /// The id as the value of an `x-call-id` header.
    ///
    /// Made from the id's bytes, which are visible ASCII (a generated id, or
    /// one [parsed](FromStr) from outside), without reading them as text first.
    ///
    /// ```
    /// use faas_core::CallId;
    ///
    /// let id: CallId = "req-42".parse().unwrap();
    /// assert_eq!(id.to_header_value(), "req-42");
    /// ```
    pub fn to_header_value(&self) -> http::HeaderValue {
        let bytes: &[u8] = match &self.0 {
            Repr::Uuid(text) => text,
            Repr::Text(text) => text.as_bytes(),
        };
        // Only an id taken unchecked with `From<&str>` can hold other bytes.
        http::HeaderValue::from_bytes(bytes).unwrap_or_else(|_| http::HeaderValue::from_static("-"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Uuid(text) => std::str::from_utf8(text).expect("a hyphenated UUID is ASCII"),
            Repr::Text(text) => text,
        }
    }
}

/// The hex digits of a generated id that count up from one id to the next:
/// its last group, the low 48 bits of the UUID's random part.
const COUNTER_DIGITS: std::ops::Range<usize> = 24..36;

/// Where a generated id's 48-bit millisecond timestamp is written: its first
/// group and its second.
const TIMESTAMP_DIGITS: [std::ops::Range<usize>; 2] = [0..8, 9..13];

/// A thread's maker of call ids: the last id it made and that id's millisecond.
struct IdGenerator {
    /// The last id's text (all zeros before the first).
    text: [u8; uuid::fmt::Hyphenated::LENGTH],
    /// The millisecond written in `text`.
    millis: u64,
    /// Whether `text` holds an id yet.
    seeded: bool,
}

impl IdGenerator {
    /// The next id's text for `millis`.
    fn next(&mut self, millis: u64) -> [u8; uuid::fmt::Hyphenated::LENGTH] {
        if !self.seeded || !increment_hex(&mut self.text[COUNTER_DIGITS]) {
            self.seed(millis);
        } else if self.millis != millis {
            self.write_millis(millis);
        }
        self.text
    }

    /// Starts over from a UUID v7 for `millis` with fresh random bits.
    fn seed(&mut self, millis: u64) {
        let mut random = [0u8; 10];
        fastrand::fill(&mut random);
        let uuid = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
        uuid.hyphenated().encode_lower(&mut self.text);
        self.millis = millis;
        self.seeded = true;
    }

    /// Writes the low 48 bits of `millis` as the id's timestamp, as UUID v7 does,
    /// rewriting only the hex digits that differ from the last millisecond's.
    fn write_millis(&mut self, millis: u64) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let [high, low] = TIMESTAMP_DIGITS;
        let changed = (self.millis ^ millis) & 0xffff_ffff_ffff;
        let digits_to_write = (64 - changed.leading_zeros()).div_ceil(4) as usize;
        for (nibble, index) in high.chain(low).rev().take(digits_to_write).enumerate() {
            self.text[index] = HEX[((millis >> (4 * nibble)) & 0xf) as usize];
        }
        self.millis = millis;
    }
}

thread_local! {
    /// This thread's maker of call ids.
    static ID_GENERATOR: std::cell::RefCell<IdGenerator> = const {
        std::cell::RefCell::new(IdGenerator {
            text: [0; uuid::fmt::Hyphenated::LENGTH],
            millis: 0,
            seeded: false,
        })
    };
}

/// Adds one to lower-case hex `digits`; false when they were all `f` (they wrap
/// to zeros then).
fn increment_hex(digits: &mut [u8]) -> bool {
    for digit in digits.iter_mut().rev() {
        match *digit {
            b'f' => *digit = b'0',
            b'9' => {
                *digit = b'a';
                return true;
            }
            _ => {
                *digit += 1;
                return true;
            }
        }
    }
    false
}

impl PartialEq for CallId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for CallId {}

impl std::hash::Hash for CallId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for CallId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for CallId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Default for CallId {
    /// A fresh id, as [`CallId::new`].
    fn default() -> Self {
        CallId::new()
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl FromStr for CallId {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let reason = if value.is_empty() {
            Some("it is empty")
        } else if value.len() > MAX_CALL_ID_LEN {
            Some("it is longer than 128 characters")
        } else if !value.bytes().all(|b| b.is_ascii_graphic()) {
            Some("it holds characters other than visible ASCII")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidCallId {
                value: value.chars().take(MAX_CALL_ID_LEN).collect(),
                reason,
            }),
            None => Ok(CallId(Repr::Text(value.into()))),
        }
    }
}

impl From<&str> for CallId {
    /// Takes the text as is, unchecked; use [`str::parse`] for text from outside.
    fn from(value: &str) -> Self {
        CallId(Repr::Text(value.into()))
    }
}

impl From<String> for CallId {
    /// Takes the text as is, unchecked; use [`str::parse`] for text from outside.
    fn from(value: String) -> Self {
        CallId(Repr::Text(value.into()))
    }
}

impl From<CallId> for String {
    fn from(id: CallId) -> Self {
        id.as_str().to_owned()
    }
}

impl AsRef<str> for CallId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Everything a function may want to know about the call it is serving.
///
/// The host fills it in: the call id, the function's name, the deadline, the
/// attempt number and a cancellation token that is cancelled when the call's
/// deadline passes or the host shuts down. `Context::default()` is a valid context
/// with a fresh call id, attempt 1, no deadline and a token nobody cancels, so a
/// handler can be called directly in a test:
///
/// ```
/// use faas_core::{Context, Json};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Deserialize)]
/// struct Greet { name: String }
/// #[derive(Serialize)]
/// struct Greeting { message: String }
///
/// async fn hello(Json(req): Json<Greet>, ctx: Context) -> Json<Greeting> {
///     assert_eq!(ctx.attempt(), 1);
///     Json(Greeting { message: format!("hello, {}", req.name) })
/// }
///
/// # tokio_test_block_on(async {
/// let Json(out) = hello(Json(Greet { name: "ada".into() }), Context::default()).await;
/// assert_eq!(out.message, "hello, ada");
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Context {
    call_id: CallIdCell,
    /// `None` while unknown; read as "".
    function_name: Option<Arc<str>>,
    deadline: Option<Instant>,
    attempt: u32,
    trace_parent: Option<String>,
    cancellation: TokenSlot,
    /// When the host started this attempt, read once by the host and taken by
    /// the deadline layer, so one attempt reads the clock once at its start.
    started: Option<Instant>,
}

/// Where a [`Context`] keeps its call id: made on first use, or by the host
/// that runs the call from the time it read to time it, which saves reading
/// the system clock.
#[derive(Debug)]
enum CallIdCell {
    Known(CallId),
    Lazy(OnceLock<CallId>),
}

impl Default for Context {
    fn default() -> Self {
        Context::with_call_id_cell(CallIdCell::Lazy(OnceLock::new()))
    }
}

impl Context {
    /// A context for the call `call_id`, otherwise as [`Context::default`].
    pub(crate) fn for_call(call_id: CallId) -> Self {
        Context::with_call_id_cell(CallIdCell::Known(call_id))
    }

    fn with_call_id_cell(call_id: CallIdCell) -> Self {
        Context {
            call_id,
            function_name: None,
            deadline: None,
            attempt: 1,
            trace_parent: None,
            cancellation: TokenSlot::new(),
            started: None,
        }
    }
}

impl Clone for Context {
    /// A copy with the same call id (made now if it was not yet) sharing the
    /// same cancellation token, so cancelling the call reaches every copy.
    fn clone(&self) -> Self {
        Context {
            call_id: CallIdCell::Known(self.call_id().clone()),
            function_name: self.function_name.clone(),
            deadline: self.deadline,
            attempt: self.attempt,
            trace_parent: self.trace_parent.clone(),
            cancellation: self.cancellation.share(),
            // A copy is another attempt: its host says when that starts.
            started: None,
        }
    }
}

impl Context {
    /// A context for a call of `function_name`, otherwise as [`Context::default`].
    pub fn new(function_name: impl Into<String>) -> Self {
        Context {
            function_name: Some(Arc::from(function_name.into())),
            ..Context::default()
        }
    }

    /// The call's id.
    pub fn call_id(&self) -> &CallId {
        match &self.call_id {
            CallIdCell::Known(id) => id,
            CallIdCell::Lazy(cell) => cell.get_or_init(CallId::new),
        }
    }

    #[cfg_attr(not(feature = "local"), allow(dead_code))]
    /// The call's id, made at `time` if it was not yet.
    pub(crate) fn call_id_made_at(&mut self, time: impl FnOnce() -> SystemTime) -> &CallId {
        if let CallIdCell::Lazy(cell) = &mut self.call_id {
            let id = cell.take().unwrap_or_else(|| CallId::at(time()));
            self.call_id = CallIdCell::Known(id);
        }
        self.call_id()
    }

    /// The name of the function being called (empty when unknown).
    pub fn function_name(&self) -> &str {
        self.function_name.as_deref().unwrap_or_default()
    }

    /// When the call must be finished, if it has a deadline.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// How long until the deadline (zero once it passed), if there is one.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// Which attempt this is, starting at 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The W3C `traceparent` of the caller, if it sent one.
    pub fn trace_parent(&self) -> Option<&str> {
        self.trace_parent.as_deref()
    }

    /// The token cancelled when the call must stop (deadline passed, host shutting down).
    ///
    /// Long-running work should `select!` on `cancellation().cancelled()` and stop early.
    pub fn cancellation(&self) -> &CancellationToken {
        self.cancellation.token()
    }

    /// Whether the call was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancellation.is_cancelled()
    }

    /// Sets the call id.
    #[must_use]
    pub fn with_call_id(mut self, call_id: CallId) -> Self {
        self.call_id = CallIdCell::Known(call_id);
        self
    }

    /// Sets the function's name.
    #[must_use]
    pub fn with_function_name(mut self, function_name: impl Into<String>) -> Self {
        self.function_name = Some(Arc::from(function_name.into()));
        self
    }

    /// Sets the deadline.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Sets the deadline to `timeout` from now.
    #[must_use]
    pub fn with_timeout(self, timeout: Duration) -> Self {
        self.with_deadline(Instant::now() + timeout)
    }

    /// Sets the attempt number (1-based; 0 is taken as 1).
    #[must_use]
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt.max(1);
        self
    }

    /// Sets the W3C `traceparent`.
    #[must_use]
    pub fn with_trace_parent(mut self, trace_parent: String) -> Self {
        self.trace_parent = Some(trace_parent);
        self
    }

    /// Sets the cancellation token.
    #[must_use]
    pub fn with_cancellation(mut self, cancellation: CancellationToken) -> Self {
        self.cancellation = TokenSlot::with(cancellation);
        self
    }

    #[cfg_attr(not(feature = "local"), allow(dead_code))]
    /// Sets the function's name, sharing the host's copy of it.
    pub(crate) fn set_function_name(&mut self, function_name: &Arc<str>) {
        self.function_name = Some(Arc::clone(function_name));
    }

    /// The function's name as shared with the host (`None` while unknown).
    pub(crate) fn shared_function_name(&self) -> Option<&Arc<str>> {
        self.function_name.as_ref()
    }

    /// Gives the context a cancellation token of the call's own (see
    /// [`TokenSlot::start_call`]); the host cancels the call through the handle.
    pub(crate) fn start_call(&mut self) -> CallCancellation {
        self.cancellation.start_call()
    }

    /// Notes when the host started this attempt (see [`take_started`](Self::take_started)).
    /// Only the local host's attempts (and tests) note it.
    #[cfg(any(feature = "local", test))]
    pub(crate) fn set_started(&mut self, started: Instant) {
        self.started = Some(started);
    }

    /// When the host started this attempt, if it said so and nobody took it
    /// yet; the deadline layer counts from it instead of reading the clock
    /// again.
    pub(crate) fn take_started(&mut self) -> Option<Instant> {
        self.started.take()
    }

    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    pub(crate) fn set_attempt(&mut self, attempt: u32) {
        self.attempt = attempt.max(1);
    }

    pub(crate) fn set_trace_parent(&mut self, trace_parent: Option<String>) {
        self.trace_parent = trace_parent;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_usable() {
        let ctx = Context::default();
        assert_eq!(ctx.attempt(), 1);
        assert_eq!(ctx.function_name(), "");
        assert!(ctx.deadline().is_none());
        assert!(ctx.remaining().is_none());
        assert!(!ctx.is_cancelled());
        assert_ne!(Context::default().call_id(), ctx.call_id());
    }

    #[tokio::test(start_paused = true)]
    async fn remaining_counts_down() {
        let ctx = Context::new("f").with_timeout(Duration::from_secs(10));
        assert_eq!(ctx.remaining(), Some(Duration::from_secs(10)));
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(ctx.remaining(), Some(Duration::from_secs(6)));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(ctx.remaining(), Some(Duration::ZERO));
    }

    #[test]
    fn call_ids_are_checked() {
        assert!("abc-123".parse::<CallId>().is_ok());
        assert!("".parse::<CallId>().is_err());
        assert!("a b".parse::<CallId>().is_err());
        assert!("é".parse::<CallId>().is_err());
        assert!("x".repeat(129).parse::<CallId>().is_err());
        let id = CallId::new();
        assert_eq!(id.as_str().parse::<CallId>().unwrap(), id);
        let uuid = uuid::Uuid::parse_str(id.as_str()).unwrap();
        assert_eq!(uuid.get_version_num(), 7);
        assert_ne!(CallId::new(), id);
        assert_eq!(serde_json::to_string(&CallId::from("q")).unwrap(), "\"q\"");
    }

    #[test]
    fn ids_made_in_one_millisecond_are_distinct_ordered_uuids_v7() {
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let ids: Vec<CallId> = (0..1_000).map(|_| CallId::at(at)).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{} then {}", pair[0], pair[1]);
        }
        for id in &ids {
            let uuid = uuid::Uuid::parse_str(id.as_str()).unwrap();
            assert_eq!(uuid.get_version_num(), 7);
            assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
            let (secs, nanos) = uuid.get_timestamp().unwrap().to_unix();
            assert_eq!((secs, nanos / 1_000_000), (1_700_000_000, 123));
        }
        let later = CallId::at(at + Duration::from_millis(1));
        assert!(later > ids[999]);
        let uuid = uuid::Uuid::parse_str(later.as_str()).unwrap();
        assert_eq!(uuid.get_version_num(), 7);
        let (secs, nanos) = uuid.get_timestamp().unwrap().to_unix();
        assert_eq!((secs, nanos / 1_000_000), (1_700_000_000, 124));
        let much_later = CallId::at(at + Duration::from_secs(86_400 * 365));
        let uuid = uuid::Uuid::parse_str(much_later.as_str()).unwrap();
        let (secs, _) = uuid.get_timestamp().unwrap().to_unix();
        assert_eq!(secs, 1_700_000_000 + 86_400 * 365);
    }

    #[test]
    fn hex_counting_carries_and_reports_wrapping() {
        let mut digits = *b"09af";
        assert!(increment_hex(&mut digits));
        assert_eq!(&digits, b"09b0");
        let mut digits = *b"0fff";
        assert!(increment_hex(&mut digits));
        assert_eq!(&digits, b"1000");
        let mut digits = *b"ffff";
        assert!(!increment_hex(&mut digits));
    }

    #[test]
    fn generated_and_parsed_ids_are_the_same_id() {
        use std::collections::HashSet;
        let id = CallId::new();
        let parsed: CallId = id.as_str().parse().unwrap();
        assert_eq!(parsed, id);
        assert_eq!(parsed.cmp(&id), std::cmp::Ordering::Equal);
        assert_eq!(HashSet::from([id.clone(), parsed]).len(), 1);
        assert_eq!(format!("{id:?}"), format!("{:?}", id.as_str()));
        assert_eq!(String::from(id.clone()), id.to_string());
    }

    #[test]
    fn a_call_id_is_made_once_and_copies_keep_it() {
        let ctx = Context::default();
        let copy = ctx.clone();
        assert_eq!(copy.call_id(), ctx.call_id());

        let mut ctx = Context::default();
        let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let id = ctx.call_id_made_at(|| at).clone();
        let uuid = uuid::Uuid::parse_str(id.as_str()).unwrap();
        let made = uuid.get_timestamp().unwrap().to_unix();
        assert_eq!(made, (1_700_000_000, 123_000_000));
        assert_eq!(ctx.call_id_made_at(|| UNIX_EPOCH), &id, "made once");

        let mut asked = Context::default();
        let first = asked.call_id().clone();
        assert_eq!(asked.call_id_made_at(|| at), &first);
    }

    #[test]
    fn copies_share_the_token_made_on_first_use() {
        let ctx = Context::default();
        assert!(!ctx.is_cancelled());
        let copy = ctx.clone();
        ctx.cancellation().cancel();
        assert!(copy.is_cancelled());
        assert!(copy.clone().is_cancelled());
    }

    #[test]
    fn builders_set_fields() {
        let token = CancellationToken::new();
        let ctx = Context::new("fn")
            .with_call_id(CallId::from("id"))
            .with_attempt(0)
            .with_trace_parent("00-abc-def-01".into())
            .with_cancellation(token.clone());
        assert_eq!(ctx.function_name(), "fn");
        assert_eq!(ctx.call_id().as_str(), "id");
        assert_eq!(ctx.attempt(), 1);
        assert_eq!(ctx.trace_parent(), Some("00-abc-def-01"));
        token.cancel();
        assert!(ctx.is_cancelled());
    }
}
