//! A function pod's log, read with the kubelet's options.
//!
//! The pod keeps its lines in memory (an [`InvocationLog`]: one line per call, written by the
//! dispatcher, plus a line when a container starts and stops), up to
//! [`log_lines`](super::FunctionBackendConfig::log_lines) per function. Unlike a process's log,
//! it spans every run of the container. `follow` streams new lines until the container's run
//! ends.

use std::future::ready;

use bytes::Bytes;
use faas_core::InvocationLog;
use futures::StreamExt;
use tokio::sync::watch;

use crate::node::backend::{LogOptions, LogStream};
use crate::node::log::select::LogSelector;
use crate::node::log::{encode_line, format_timestamp};

/// The lines of `function` in `log`, as `opts` asks; with `follow`, until `run_end` turns `true`
/// (or right after the kept lines when no run is serving).
pub(crate) fn read(
    log: &InvocationLog,
    function: &str,
    opts: &LogOptions,
    run_end: Option<watch::Receiver<bool>>,
) -> LogStream {
    let mut wanted = faas_core::LogQuery::new();
    if let Some(tail) = opts.tail_lines {
        wanted = wanted.with_tail(tail);
    }
    if let Some(since) = opts.since {
        wanted = wanted.with_since(since);
    }
    let follow = opts.follow && run_end.is_some();
    let lines = log.stream(function, &wanted.with_follow(follow));
    let lines = match run_end {
        Some(mut end) if follow => lines
            .take_until(async move {
                let _ = end.wait_for(|done| *done).await;
            })
            .boxed(),
        _ => lines,
    };
    let mut stored = Vec::new();
    lines
        // A follower that fell behind is told so by an error item; it carries on with what comes.
        .filter_map(|line| ready(line.ok()))
        .scan(LogSelector::new(opts), move |selector, line| {
            if selector.is_exhausted() {
                return ready(None);
            }
            stored.clear();
            encode_line(
                &mut stored,
                &format_timestamp(line.timestamp),
                line.text.as_bytes(),
            );
            selector.push(&stored[..stored.len() - 1]);
            ready(Some(selector.take()))
        })
        .filter_map(|chunk: Option<Bytes>| ready(chunk.map(Ok)))
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn text(stream: LogStream) -> String {
        let chunks: Vec<_> = stream.map(|c| c.unwrap()).collect().await;
        String::from_utf8(chunks.concat()).unwrap()
    }

    #[tokio::test]
    async fn applies_tail_timestamps_and_limit() {
        let log = InvocationLog::new(10);
        for n in 1..=3 {
            log.push("f", format!("call {n}"));
        }
        log.push("other", "not mine");
        let all = text(read(&log, "f", &LogOptions::default(), None)).await;
        assert_eq!(all, "call 1\ncall 2\ncall 3\n");
        let opts = LogOptions {
            tail_lines: Some(1),
            timestamps: true,
            ..LogOptions::default()
        };
        let last = text(read(&log, "f", &opts, None)).await;
        assert!(last.ends_with("Z call 3\n") && last.len() > 31, "{last}");
        let opts = LogOptions {
            limit_bytes: Some(10),
            ..LogOptions::default()
        };
        assert_eq!(text(read(&log, "f", &opts, None)).await, "call 1\ncal");
    }

    #[tokio::test]
    async fn follow_ends_with_the_run() {
        let log = InvocationLog::new(10);
        log.push("f", "before");
        let (end_tx, end) = watch::channel(false);
        let opts = LogOptions {
            follow: true,
            ..LogOptions::default()
        };
        let mut stream = read(&log, "f", &opts, Some(end));
        assert_eq!(stream.next().await.unwrap().unwrap(), "before\n");
        log.push("f", "during");
        assert_eq!(stream.next().await.unwrap().unwrap(), "during\n");
        end_tx.send_replace(true);
        assert!(stream.next().await.is_none());
    }
}
