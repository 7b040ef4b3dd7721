//! The standard input of a container started with `stdin: true`, for `kubectl attach -i`.
//!
//! Each run reads a named pipe in the pod's run directory (`.<container>.in`). The node holds the
//! pipe's write end open for as long as the run lives, so the container does not read an end of
//! input while nobody is attached; each attach session opens a write end of its own and writes
//! what its caller sends. With `stdinOnce` the node lets go of its write end when the first
//! session that sent input ends: once that session's end is closed too, the container reads the
//! end of its input, as a container runtime closes it. A container's input is never shared with
//! the node's own: a container without `stdin: true` reads `/dev/null`.
//!
//! The write end lives in the node process: when the node restarts, the container reads the end
//! of its input (if it was reading). The new node opens the pipe again for a container without
//! `stdinOnce`, so later sessions still reach a process that reads on; with `stdinOnce` the input
//! counts as closed.

use std::fs::File;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use tokio::io::AsyncWrite;
use tokio::net::unix::pipe;

use super::log::pump::ensure_fifo;
use crate::node::lock;

/// The input pipe of one run of a container.
#[derive(Debug)]
pub(crate) struct ContainerStdin {
    fifo: PathBuf,
    /// Closed after the first session that sent input (`stdinOnce`).
    once: bool,
    /// The node's write end; `None` once the input is closed.
    holder: Mutex<Option<File>>,
}

impl ContainerStdin {
    /// Makes the pipe at `fifo` for a new run: the node's write end, and the read end the
    /// process gets as its standard input (blocking, as a process expects its input to be).
    pub(crate) fn open(fifo: &Path, once: bool) -> io::Result<(Self, File)> {
        ensure_fifo(fifo)?;
        // Opening the read end first without waiting lets the write end open at once.
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(fifo)?;
        let holder = writer(fifo)?;
        fcntl(&reader, FcntlArg::F_SETFL(OFlag::empty())).map_err(io::Error::from)?;
        Ok((
            Self {
                fifo: fifo.to_owned(),
                once,
                holder: Mutex::new(Some(holder)),
            },
            reader,
        ))
    }

    /// The pipe of a run adopted from an earlier node process: opened again (while the process
    /// still holds its read end) unless its input counts as closed (`stdinOnce`).
    pub(crate) fn reopen(fifo: &Path, once: bool) -> Self {
        let holder = if once {
            None
        } else {
            writer(fifo)
                .inspect_err(|err| {
                    tracing::debug!(fifo = %fifo.display(), error = %err, "cannot open an adopted container's input again");
                })
                .ok()
        };
        Self {
            fifo: fifo.to_owned(),
            once,
            holder: Mutex::new(holder),
        }
    }

    /// The input of one attach session; `None` once the container's input is closed.
    pub(crate) fn session(self: &Arc<Self>) -> io::Result<Option<SessionInput>> {
        let open = lock(&self.holder).is_some();
        if !open {
            return Ok(None);
        }
        let sender = pipe::OpenOptions::new().open_sender(&self.fifo)?;
        Ok(Some(SessionInput {
            sender,
            closes: self.once.then(|| Arc::clone(self)),
        }))
    }

    /// Whether the input is closed after the first session (`stdinOnce`).
    pub(crate) fn once(&self) -> bool {
        self.once
    }

    /// Lets go of the node's write end: the container reads the end of its input once no
    /// session writes either.
    fn close(&self) {
        lock(&self.holder).take();
    }
}

/// A write end that never blocks the node: the pipe's reader is the container, which exists.
fn writer(fifo: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(fifo)
}

/// One attach session's way into a container's input; dropping it is the session detaching.
#[derive(Debug)]
pub(crate) struct SessionInput {
    sender: pipe::Sender,
    /// The input it closes when it goes (`stdinOnce`).
    closes: Option<Arc<ContainerStdin>>,
}

impl AsyncWrite for SessionInput {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.sender).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.sender).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.sender).poll_shutdown(cx)
    }
}

impl Drop for SessionInput {
    fn drop(&mut self) {
        if let Some(stdin) = self.closes.take() {
            stdin.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::node::process::test_dir;

    #[tokio::test]
    async fn the_input_stays_open_between_sessions_unless_once() {
        let dir = test_dir("stdin-sessions");
        let (stdin, mut reader) = ContainerStdin::open(&dir.join("open.in"), false).unwrap();
        let stdin = Arc::new(stdin);
        for line in [&b"one\n"[..], b"two\n"] {
            let mut session = stdin.session().unwrap().expect("the input is open");
            session.write_all(line).await.unwrap();
            drop(session);
        }
        let mut read = [0u8; 8];
        reader.read_exact(&mut read).unwrap();
        assert_eq!(&read, b"one\ntwo\n");
        assert!(stdin.session().unwrap().is_some(), "still open");

        let (once, mut reader) = ContainerStdin::open(&dir.join("once.in"), true).unwrap();
        let once = Arc::new(once);
        let mut session = once.session().unwrap().unwrap();
        session.write_all(b"only\n").await.unwrap();
        drop(session);
        let mut all = String::new();
        reader.read_to_string(&mut all).unwrap();
        assert_eq!(all, "only\n", "the end of input follows the first session");
        assert!(
            once.session().unwrap().is_none(),
            "closed for later sessions"
        );
    }
}
