//! The standard input of a container started with `stdin: true`, for `kubectl attach -i`.
//!
//! Each run reads a named pipe in the pod's run directory (`.<container>.in`), with `tty: true`
//! through the holder of its terminal (see [`terminal`](super::terminal)); each attach session
//! opens a write end of its own and writes what its caller sends. The pipe must not end while
//! nobody is attached:
//!
//! - without `stdinOnce` the container's standard input is opened for reading *and* writing, so
//!   the container itself holds a write end: its input never ends (as a container runtime keeps
//!   it open), also while no node runs, and a restarted node's sessions reach it again;
//! - with `stdinOnce` the node holds the write end while the run lives and lets go of it when the
//!   first session that sent input ends: once that session's end is closed too, the container
//!   reads the end of its input, as a container runtime closes it. The write end lives in the
//!   node process, so a restart of the node ends that input as well (it counts as closed).
//!
//! A container without `stdin: true` reads `/dev/null`.

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
    /// The node's write end of a `stdinOnce` input; `None` for an input the container holds open
    /// itself.
    once: Option<Mutex<Option<File>>>,
}

impl ContainerStdin {
    /// Makes the pipe at `fifo` for a new run, and the end the process gets as its standard
    /// input (blocking, as a process expects its input to be).
    pub(crate) fn open(fifo: &Path, once: bool) -> io::Result<(Self, File)> {
        ensure_fifo(fifo)?;
        if !once {
            // Reading and writing: the process holds its own input open.
            let input = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(fifo)?;
            let stdin = Self {
                fifo: fifo.to_owned(),
                once: None,
            };
            return Ok((stdin, input));
        }
        // Opening the read end first without waiting lets the write end open at once.
        let input = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(fifo)?;
        let holder = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(fifo)?;
        fcntl(&input, FcntlArg::F_SETFL(OFlag::empty())).map_err(io::Error::from)?;
        let stdin = Self {
            fifo: fifo.to_owned(),
            once: Some(Mutex::new(Some(holder))),
        };
        Ok((stdin, input))
    }

    /// The pipe of a run adopted from an earlier node process: still open when the container
    /// holds it open itself; a `stdinOnce` input ended with the node that held it.
    pub(crate) fn reopen(fifo: &Path, once: bool) -> Self {
        Self {
            fifo: fifo.to_owned(),
            once: once.then(|| Mutex::new(None)),
        }
    }

    /// The input of one attach session; `None` once the container's input is closed.
    pub(crate) fn session(self: &Arc<Self>) -> io::Result<Option<SessionInput>> {
        if let Some(holder) = &self.once
            && lock(holder).is_none()
        {
            return Ok(None);
        }
        let sender = pipe::OpenOptions::new().open_sender(&self.fifo)?;
        Ok(Some(SessionInput {
            sender,
            closes: self.once.is_some().then(|| Arc::clone(self)),
        }))
    }

    /// Whether the input is closed after the first session (`stdinOnce`).
    pub(crate) fn once(&self) -> bool {
        self.once.is_some()
    }

    /// Lets go of the node's write end of a `stdinOnce` input: the container reads the end of
    /// its input once no session writes either.
    fn close(&self) {
        if let Some(holder) = &self.once {
            lock(holder).take();
        }
    }
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
