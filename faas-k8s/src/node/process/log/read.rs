//! Reads a container's log back as a byte stream, following it when asked.
//!
//! The rotated predecessor is read before the current file, so a request sees up to twice the cap.
//! A follower keeps its handle on the file it reads; when the writer rotates, it finishes that
//! file (now the predecessor) and moves on to the new current one, so no line is read twice or
//! skipped.

use std::io;
use std::os::unix::fs::MetadataExt;

use bytes::Bytes;
use tokio::fs::File;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use super::file::{LogPaths, LogProgress};
use crate::node::backend::{LogOptions, LogStream};
use crate::node::log::select::{LogSelector, Tail};

/// Output is sent in chunks of about this size.
const CHUNK: usize = 32 * 1024;

/// The log at `paths` as a stream; with `opts.follow` and a `progress` receiver (the container's
/// output is still being written) it goes on with new lines until the log is closed or the
/// stream is dropped.
pub(crate) fn read_log(
    paths: LogPaths,
    progress: Option<watch::Receiver<LogProgress>>,
    opts: LogOptions,
) -> LogStream {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        if let Err(err) = run(&paths, progress, &opts, &tx).await {
            // The reader may be gone already; nothing else to tell.
            let _ = tx.send(Err(err)).await;
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

type Sender = mpsc::Sender<io::Result<Bytes>>;

async fn run(
    paths: &LogPaths,
    progress: Option<watch::Receiver<LogProgress>>,
    opts: &LogOptions,
    tx: &Sender,
) -> io::Result<()> {
    let mut progress = progress.filter(|_| opts.follow);
    if let Some(progress) = &mut progress {
        // Whatever is written from here on wakes the follower.
        progress.borrow_and_update();
    }
    let mut selector = LogSelector::new(opts);
    let mut tail = Tail::new(opts.tail_lines);
    let mut lines = LineReader::default();
    if let Some(mut previous) = open(&paths.previous).await? {
        lines.drain(&mut previous, |line| tail.push(line)).await?;
        lines.finish(|line| tail.push(line));
    }
    let mut current = open(&paths.current).await?;
    if let Some(file) = &mut current {
        lines.drain(file, |line| tail.push(line)).await?;
    }
    if progress.is_none() {
        lines.finish(|line| tail.push(line));
    }
    for line in tail.into_lines() {
        if !selector.push(&line) {
            break;
        }
        if selector.pending() >= CHUNK && !send(tx, &mut selector).await {
            return Ok(());
        }
    }
    if !send(tx, &mut selector).await || selector.is_exhausted() {
        return Ok(());
    }
    let Some(mut progress) = progress else {
        return Ok(());
    };
    loop {
        let closed = progress.borrow_and_update().closed;
        if let Some(file) = &mut current {
            lines.drain(file, |line| _ = selector.push(&line)).await?;
        }
        if rotated(paths, current.as_ref()).await? {
            if let Some(file) = &mut current {
                lines.drain(file, |line| _ = selector.push(&line)).await?;
            }
            lines.finish(|line| _ = selector.push(&line));
            current = open(&paths.current).await?;
            if !send(tx, &mut selector).await || selector.is_exhausted() {
                return Ok(());
            }
            continue;
        }
        if !send(tx, &mut selector).await || selector.is_exhausted() {
            return Ok(());
        }
        if closed {
            lines.finish(|line| _ = selector.push(&line));
            send(tx, &mut selector).await;
            return Ok(());
        }
        tokio::select! {
            changed = progress.changed() => {
                if changed.is_err() {
                    // The writer is gone without closing (the backend shut down): read what is
                    // there and end.
                    if let Some(file) = &mut current {
                        lines.drain(file, |line| _ = selector.push(&line)).await?;
                    }
                    lines.finish(|line| _ = selector.push(&line));
                    send(tx, &mut selector).await;
                    return Ok(());
                }
            }
            () = tx.closed() => return Ok(()),
        }
    }
}

/// Sends what the selector has; `false` when the stream was dropped.
async fn send(tx: &Sender, selector: &mut LogSelector) -> bool {
    match selector.take() {
        Some(bytes) => tx.send(Ok(bytes)).await.is_ok(),
        None => !tx.is_closed(),
    }
}

async fn open(path: &std::path::Path) -> io::Result<Option<File>> {
    match File::open(path).await {
        Ok(file) => Ok(Some(file)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// Whether the current path now names another file than `file`.
async fn rotated(paths: &LogPaths, file: Option<&File>) -> io::Result<bool> {
    let on_disk = match tokio::fs::metadata(&paths.current).await {
        Ok(meta) => Some((meta.dev(), meta.ino())),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(err),
    };
    let held = match file {
        Some(file) => {
            let meta = file.metadata().await?;
            Some((meta.dev(), meta.ino()))
        }
        None => None,
    };
    Ok(on_disk.is_some() && on_disk != held)
}

/// Splits what is read into lines, keeping an incomplete last line for the next read.
#[derive(Default)]
struct LineReader {
    carry: Vec<u8>,
}

impl LineReader {
    async fn drain(&mut self, file: &mut File, mut each: impl FnMut(Bytes)) -> io::Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            self.carry.extend_from_slice(&buf[..n]);
            let mut start = 0;
            while let Some(pos) = self.carry[start..].iter().position(|b| *b == b'\n') {
                each(Bytes::copy_from_slice(&self.carry[start..start + pos]));
                start += pos + 1;
            }
            self.carry.drain(..start);
        }
    }

    /// Hands over an incomplete last line, if any.
    fn finish(&mut self, mut each: impl FnMut(Bytes)) {
        if !self.carry.is_empty() {
            each(Bytes::from(std::mem::take(&mut self.carry)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::process::log::file::LogFile;
    use crate::node::process::test_dir;
    use futures::StreamExt;

    fn line(n: u32) -> Vec<u8> {
        format!("2024-01-01T00:00:{n:02}.000000000Z line {n}\n").into_bytes()
    }

    async fn collect(stream: LogStream) -> String {
        let chunks: Vec<_> = stream.map(|c| c.unwrap()).collect().await;
        String::from_utf8(chunks.concat()).unwrap()
    }

    #[tokio::test]
    async fn reads_predecessor_then_current_with_tail() {
        let dir = test_dir("log-read-tail");
        let paths = LogPaths::new(&dir, "c");
        // Two 39-byte lines fit under the cap: lines 1 and 2 end up in the predecessor.
        let mut log = LogFile::open(paths.clone(), 100).unwrap();
        for n in 1..=4 {
            log.append(&line(n)).unwrap();
        }
        let all = collect(read_log(paths.clone(), None, LogOptions::default())).await;
        assert_eq!(all, "line 1\nline 2\nline 3\nline 4\n");
        let opts = LogOptions {
            tail_lines: Some(3),
            timestamps: true,
            ..LogOptions::default()
        };
        let tail = collect(read_log(paths, None, opts)).await;
        assert_eq!(tail.lines().count(), 3);
        assert!(tail.starts_with("2024-01-01T00:00:02.000000000Z line 2\n"));
    }

    #[tokio::test]
    async fn follow_sees_new_lines_across_rotation_until_closed() {
        let dir = test_dir("log-read-follow");
        let paths = LogPaths::new(&dir, "c");
        let mut log = LogFile::open(paths.clone(), 100).unwrap();
        log.append(&line(1)).unwrap();
        let opts = LogOptions {
            follow: true,
            ..LogOptions::default()
        };
        let mut stream = read_log(paths, Some(log.subscribe()), opts);
        let mut seen = String::new();
        while !seen.contains("line 1\n") {
            seen.push_str(std::str::from_utf8(&stream.next().await.unwrap().unwrap()).unwrap());
        }
        // Line 3 rotates the file once while the follower still holds the first one.
        for n in 2..=4 {
            log.append(&line(n)).unwrap();
        }
        log.close();
        seen.push_str(&collect(stream).await);
        assert_eq!(seen, "line 1\nline 2\nline 3\nline 4\n");
    }

    #[tokio::test]
    async fn a_missing_log_is_empty() {
        let dir = test_dir("log-read-missing");
        let out = collect(read_log(
            LogPaths::new(&dir, "none"),
            None,
            LogOptions::default(),
        ));
        assert_eq!(out.await, "");
    }
}
