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

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio_util::sync::CancellationToken;

use super::file::LogFile;
use super::{MAX_LINE, encode_line, format_timestamp};

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
pub(crate) async fn pump(mut pipe: pipe::Receiver, mut log: LogFile, cancel: CancellationToken) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut carry: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    let ended = loop {
        let read = tokio::select! {
            biased;
            () = cancel.cancelled() => break false,
            read = pipe.read(&mut buf) => read,
        };
        let n = match read {
            Ok(0) => break true,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                tracing::warn!(error = %err, "reading a container's output failed");
                break true;
            }
        };
        let timestamp = format_timestamp(SystemTime::now());
        carry.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(pos) = carry[start..].iter().position(|b| *b == b'\n') {
            encode_line(&mut out, &timestamp, &carry[start..start + pos]);
            start += pos + 1;
        }
        carry.drain(..start);
        while carry.len() >= MAX_LINE {
            encode_line(&mut out, &timestamp, &carry[..MAX_LINE]);
            carry.drain(..MAX_LINE);
        }
        write(&mut log, &mut out);
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
