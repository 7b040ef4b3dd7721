//! Copies what a container writes into its log file, one timestamp per line.
//!
//! A container's stdout and stderr are both the write end of one named pipe (FIFO) in the state
//! directory, which the pump reads. A named pipe rather than an anonymous one lets the node restart
//! without taking the container's output with it: the container holds its end open for reading as
//! well as writing, so it never gets `SIGPIPE` while no node reads (it blocks once the pipe buffer
//! is full), and the next node opens the same pipe by name and carries on.

use std::io;
use std::path::Path;
use std::time::SystemTime;

use bytes::Bytes;
use tokio::net::unix::pipe;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::file::LogFile;
use crate::node::log::{MAX_LINE, encode_line, format_timestamp};

/// Creates the named pipe at `path` unless it exists.
pub(crate) fn ensure_fifo(path: &Path) -> io::Result<()> {
    match nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(errno) => Err(io::Error::from(errno)),
    }
}

/// Opens the pump's read end of the named pipe (never blocks, even with no writer yet).
pub(crate) fn open_reader(path: &Path) -> io::Result<pipe::Receiver> {
    pipe::OpenOptions::new().open_receiver(path)
}

/// Reads `pipe` until every writer has closed it (the container and everything it started are
/// gone) or `cancel` fires, appending each line to `log`. The log is closed at the end of the
/// output, not on cancellation: then the processes still run and another node will read on.
/// With `tap`, what is read also goes there as it comes, whole lines or not (what a terminal
/// shows, for attach sessions; see [`terminal`](super::super::terminal)); the tap closes with the
/// pump.
pub(crate) async fn pump(
    pipe: pipe::Receiver,
    mut log: LogFile,
    cancel: CancellationToken,
    tap: Option<broadcast::Sender<Bytes>>,
) {
    // An idle container costs no buffer: one is only on the stack while a read is under way.
    let mut carry: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let ended = loop {
        let ready = tokio::select! {
            biased;
            () = cancel.cancelled() => break false,
            ready = pipe.readable() => ready,
        };
        if let Err(err) = ready {
            tracing::warn!(error = %err, "waiting for a container's output failed");
            break true;
        }
        let mut buf = [0u8; 8 * 1024];
        let n = match pipe.try_read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => n,
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(err) => {
                tracing::warn!(error = %err, "reading a container's output failed");
                break true;
            }
        };
        if let Some(tap) = &tap
            && tap.receiver_count() > 0
        {
            // A session that lags behind misses output (the log keeps it all).
            let _ = tap.send(Bytes::copy_from_slice(&buf[..n]));
        }
        let timestamp = format_timestamp(SystemTime::now());
        carry.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(pos) = carry[start..].iter().position(|b| *b == b'\n') {
            let line = &carry[start..start + pos];
            if line.is_empty() {
                encode_line(&mut out, &timestamp, line);
            }
            for piece in line.chunks(MAX_LINE) {
                encode_line(&mut out, &timestamp, piece);
            }
            start += pos + 1;
        }
        carry.drain(..start);
        while carry.len() >= MAX_LINE {
            encode_line(&mut out, &timestamp, &carry[..MAX_LINE]);
            carry.drain(..MAX_LINE);
        }
        write(&mut log, &mut out);
        if carry.is_empty() {
            carry = Vec::new();
        }
        out = Vec::new();
    };
    if !carry.is_empty() {
        encode_line(&mut out, &format_timestamp(SystemTime::now()), &carry);
        write(&mut log, &mut out);
    }
    if ended {
        log.close();
    }
}

fn write(log: &mut LogFile, out: &mut Vec<u8>) {
    // Small appends land in the page cache; a blocking-pool hop per line would cost more than it
    // saves.
    if let Err(err) = log.append(out) {
        tracing::warn!(error = %err, "writing a container log failed; lines dropped");
    }
    out.clear();
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::node::log::split_line;
    use crate::node::process::log::file::LogPaths;
    use crate::node::process::test_dir;

    #[tokio::test]
    async fn stamps_every_line_and_closes_at_the_end_of_the_output() {
        let dir = test_dir("pump-lines");
        let fifo = dir.join("out");
        ensure_fifo(&fifo).unwrap();
        ensure_fifo(&fifo).unwrap();
        let mut writer = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .unwrap();
        let reader = open_reader(&fifo).unwrap();
        let paths = LogPaths::new(&dir, "0");
        let log = LogFile::open(paths.clone(), 1 << 20).unwrap();
        let mut progress = log.subscribe();
        let pumping = tokio::spawn(pump(reader, log, CancellationToken::new(), None));
        let long = "x".repeat(MAX_LINE + 10);
        write!(writer, "one\ntwo\n{long}\nno newline").unwrap();
        drop(writer);
        pumping.await.unwrap();
        assert!(progress.borrow_and_update().closed);
        let text = std::fs::read(&paths.current).unwrap();
        let lines: Vec<&[u8]> = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let texts: Vec<&[u8]> = lines.iter().map(|l| split_line(l).1).collect();
        assert_eq!(texts[..2], [&b"one"[..], &b"two"[..]]);
        assert_eq!(texts[2].len(), MAX_LINE, "long lines are cut");
        assert_eq!(texts[3], &b"xxxxxxxxxx"[..]);
        assert_eq!(texts[4], &b"no newline"[..]);
        assert!(lines.iter().all(|l| split_line(l).0.len() == 30));
    }
}
