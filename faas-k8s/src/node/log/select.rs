//! Which stored lines a log request gets, and how they look: the kubelet's rules.
//!
//! `tail_lines` picks the last lines first; `since` then drops the older ones among them;
//! `timestamps` keeps each line's timestamp in front of it; `limit_bytes` cuts the output (the
//! last line may be cut in the middle) and ends the stream.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use super::{format_timestamp, split_line};
use crate::node::backend::LogOptions;

/// Applies `since`, `timestamps` and `limit_bytes` to stored lines, one at a time.
#[derive(Debug)]
pub(crate) struct LogSelector {
    since: Option<String>,
    timestamps: bool,
    remaining: Option<usize>,
    out: BytesMut,
}

impl LogSelector {
    pub(crate) fn new(opts: &LogOptions) -> Self {
        Self {
            since: opts.since.map(format_timestamp),
            timestamps: opts.timestamps,
            remaining: opts.limit_bytes,
            out: BytesMut::new(),
        }
    }

    /// Adds one stored line (without its newline) to the pending output. Returns `false` once the
    /// byte limit is reached: nothing more will be added.
    pub(crate) fn push(&mut self, line: &[u8]) -> bool {
        if self.is_exhausted() {
            return false;
        }
        let (timestamp, text) = split_line(line);
        if let Some(since) = &self.since
            && !timestamp.is_empty()
            && timestamp < since.as_bytes()
        {
            return true;
        }
        if self.timestamps && !timestamp.is_empty() {
            self.put(timestamp);
            self.put(b" ");
        }
        self.put(text);
        self.put(b"\n");
        !self.is_exhausted()
    }

    /// Whether the byte limit has been reached.
    pub(crate) fn is_exhausted(&self) -> bool {
        self.remaining == Some(0)
    }

    /// How many bytes wait to be taken.
    pub(crate) fn pending(&self) -> usize {
        self.out.len()
    }

    /// The output produced since the last call, if any.
    pub(crate) fn take(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    fn put(&mut self, bytes: &[u8]) {
        let n = match self.remaining {
            Some(remaining) => bytes.len().min(remaining),
            None => bytes.len(),
        };
        self.out.extend_from_slice(&bytes[..n]);
        if let Some(remaining) = &mut self.remaining {
            *remaining -= n;
        }
    }
}

/// Keeps the last `n` lines of what it is given (`None`: keeps everything).
#[derive(Debug)]
pub(crate) struct Tail {
    limit: Option<usize>,
    lines: VecDeque<Bytes>,
}

impl Tail {
    pub(crate) fn new(limit: Option<usize>) -> Self {
        Self {
            limit,
            lines: VecDeque::new(),
        }
    }

    pub(crate) fn push(&mut self, line: Bytes) {
        if self.limit == Some(0) {
            return;
        }
        self.lines.push_back(line);
        if let Some(limit) = self.limit
            && self.lines.len() > limit
        {
            self.lines.pop_front();
        }
    }

    pub(crate) fn into_lines(self) -> impl Iterator<Item = Bytes> {
        self.lines.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    const T1: &str = "2024-01-01T00:00:01.000000000Z";
    const T2: &str = "2024-01-01T00:00:02.000000000Z";

    fn opts() -> LogOptions {
        LogOptions::default()
    }

    fn line(ts: &str, text: &str) -> Vec<u8> {
        format!("{ts} {text}").into_bytes()
    }

    #[test]
    fn plain_lines_lose_their_timestamp() {
        let mut sel = LogSelector::new(&opts());
        assert!(sel.push(&line(T1, "a b")));
        assert_eq!(sel.take().unwrap(), "a b\n");
        assert_eq!(sel.take(), None);
    }

    #[test]
    fn timestamps_keep_them() {
        let mut o = opts();
        o.timestamps = true;
        let mut sel = LogSelector::new(&o);
        sel.push(&line(T1, "a"));
        assert_eq!(sel.take().unwrap(), format!("{T1} a\n"));
    }

    #[test]
    fn since_drops_older_lines_and_keeps_equal_ones() {
        let mut o = opts();
        o.since = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_067_202));
        let mut sel = LogSelector::new(&o);
        sel.push(&line(T1, "old"));
        sel.push(&line(T2, "new"));
        assert_eq!(sel.take().unwrap(), "new\n");
    }

    #[test]
    fn limit_bytes_cuts_and_stops() {
        let mut o = opts();
        o.limit_bytes = Some(6);
        let mut sel = LogSelector::new(&o);
        assert!(sel.push(&line(T1, "abc")));
        assert!(!sel.push(&line(T1, "defgh")));
        assert!(sel.is_exhausted());
        assert!(!sel.push(&line(T1, "more")));
        assert_eq!(sel.take().unwrap(), "abc\nde");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let mut tail = Tail::new(Some(2));
        for text in ["1", "2", "3"] {
            tail.push(Bytes::from(text));
        }
        assert_eq!(tail.into_lines().collect::<Vec<_>>(), ["2", "3"]);
        let mut none = Tail::new(Some(0));
        none.push(Bytes::from("x"));
        assert_eq!(none.into_lines().count(), 0);
    }
}
