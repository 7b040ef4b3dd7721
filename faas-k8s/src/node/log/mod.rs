//! Container log lines as every backend stores them, and the kubelet's rules for reading them
//! back ([`select`]: tail, since, timestamps and byte limit).
//!
//! Every stored line is `<RFC 3339 UTC timestamp, nine fraction digits> <text>`; the fixed width
//! makes timestamps compare as plain bytes, so `since` needs no date parsing.

pub(crate) mod select;

use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, Utc};

/// Lines longer than this are cut into several stored lines.
pub(crate) const MAX_LINE: usize = 16 * 1024;

/// `2006-01-02T15:04:05.000000000Z`: what a kubelet prints with `--timestamps`.
pub(crate) fn format_timestamp(at: SystemTime) -> String {
    DateTime::<Utc>::from(at).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Appends one stored line (with its trailing newline) to `out`.
pub(crate) fn encode_line(out: &mut Vec<u8>, timestamp: &str, text: &[u8]) {
    out.extend_from_slice(timestamp.as_bytes());
    out.push(b' ');
    out.extend_from_slice(text);
    out.push(b'\n');
}

/// Splits a stored line (without its newline) into timestamp and text. A line that does not start
/// with a timestamp is all text.
pub(crate) fn split_line(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|b| *b == b' ') {
        Some(space) if line.first().is_some_and(u8::is_ascii_digit) => {
            (&line[..space], &line[space + 1..])
        }
        _ => (&[], line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_have_a_fixed_width_and_sort_as_bytes() {
        let early = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let later = early + Duration::from_nanos(1);
        let (a, b) = (format_timestamp(early), format_timestamp(later));
        assert_eq!(a, "2023-11-14T22:13:20.000000000Z");
        assert_eq!(a.len(), b.len());
        assert!(a < b);
    }

    #[test]
    fn encodes_and_splits_lines() {
        let mut out = Vec::new();
        encode_line(&mut out, "2023-11-14T22:13:20.000000000Z", b"hello world");
        assert_eq!(out, b"2023-11-14T22:13:20.000000000Z hello world\n");
        let (ts, text) = split_line(&out[..out.len() - 1]);
        assert_eq!(ts, b"2023-11-14T22:13:20.000000000Z");
        assert_eq!(text, b"hello world");
        assert_eq!(
            split_line(b"no timestamp"),
            (&b""[..], &b"no timestamp"[..])
        );
    }
}
