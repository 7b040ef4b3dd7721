//! The terminal of a container started with `tty: true`, and the holder process that keeps it.
//!
//! Such a container runs as the session leader of a pseudo-terminal: its standard input, output
//! and error are the terminal's slave side, which is also its controlling terminal. The master
//! side must outlive the node process (the backend adopts running containers after a restart),
//! since a terminal whose master closes hangs its session up (`SIGHUP`). So the master goes to a
//! small *holder* process of its own, in the spirit of a container runtime's shim: the node's own
//! program run again as `<program> terminal-holder` (see
//! [`terminal_holder`](super::ProcessBackendConfig::terminal_holder)), in a process group of its
//! own so that neither a signal to the node's group nor the node's end reaches it. Its standard
//! streams are set up by the node:
//!
//! | fd | what | |
//! |---|---|---|
//! | 0 | the container's input pipe (`stdin: true`, see [`stdin`](super::stdin)), or `/dev/null` | copied to the terminal |
//! | 1 | the container's output pipe (read by the log pump) | what the terminal shows is copied here |
//! | 2 | the terminal's master side | |
//!
//! So what the terminal shows becomes the container's log (one stream, as a runtime logs a
//! terminal), and attach sessions reach the terminal through the input pipe as they reach any
//! container's input. They see what it shows as it comes, from the node's reader of the output
//! pipe, which hands each chunk to the sessions before it cuts the chunk into log lines: a
//! prompt, or the echo of a key, shows before its line is complete. The holder ends when the terminal does: once every process of the
//! container has closed the slave side (the run's end kills what its leader left in its process
//! group), reading the master fails with `EIO`. Stopping the pod stops the container and so the
//! holder; the container stays the node's child, so its exit code is reported as any other's.
//! With `stdinOnce`, the end of the input pipe (the first session detached, or the node that held
//! the pipe's write end went away) is passed on as the terminal's end-of-file character, as a
//! person presses Ctrl-D.
//!
//! Window sizes need no channel to the holder: the size belongs to the terminal, and the node
//! sets it (`TIOCSWINSZ`, which also signals `SIGWINCH` to the terminal's foreground process
//! group) on the slave device, found again after a restart through a link in the pod's run
//! directory (`.<container>.tty`, pointing at `/dev/pts/<n>`).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Stdio;

use nix::fcntl::{FcntlArg, OFlag, fcntl};

use crate::node::exec::TerminalSize;

/// The argument that makes the node's program a terminal holder.
pub(crate) const HOLDER_COMMAND: &str = "terminal-holder";

/// How a container is started on a terminal.
#[derive(Debug)]
pub(crate) struct TerminalSetup<'a> {
    /// The program run as the holder.
    pub(crate) holder: &'a Path,
    /// Where the link to the terminal's slave device goes.
    pub(crate) link: &'a Path,
    /// Names the container in the holder's command line (`<namespace>/<pod>/<container>`), so
    /// that a process listing shows whose terminal it holds.
    pub(crate) label: String,
    /// The end of the input is passed on as the terminal's end-of-file character (`stdinOnce`).
    pub(crate) close_input_at_eof: bool,
}

/// A new terminal: its master side (for the holder) and its slave side (for the container),
/// with the link to the slave device made at `link`.
pub(crate) fn open(link: &Path) -> io::Result<(pty_process::Pty, pty_process::Pts)> {
    let (master, slave) = pty_process::open().map_err(io::Error::other)?;
    let device = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd()))?;
    match std::fs::remove_file(link) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    std::os::unix::fs::symlink(device, link)?;
    Ok((master, slave))
}

/// Starts the holder of `master`: it copies `input` (or nothing) to the terminal and what the
/// terminal shows to `output`.
pub(crate) fn start_holder(
    setup: &TerminalSetup<'_>,
    master: pty_process::Pty,
    input: Option<File>,
    output: File,
) -> io::Result<tokio::process::Child> {
    let master = OwnedFd::from(master);
    // The node's handle was non-blocking; the holder reads and writes it blocking.
    fcntl(&master, FcntlArg::F_SETFL(OFlag::empty())).map_err(io::Error::from)?;
    let mut command = tokio::process::Command::new(setup.holder);
    command
        .arg(HOLDER_COMMAND)
        .args(["--container", &setup.label]);
    if setup.close_input_at_eof {
        command.arg("--close-input-at-eof");
    }
    command
        .env_clear()
        .current_dir("/")
        .stdin(input.map_or_else(Stdio::null, Stdio::from))
        .stdout(Stdio::from(output))
        .stderr(Stdio::from(master))
        .process_group(0)
        .kill_on_drop(false);
    command.spawn()
}

/// What a terminal shows, from `shown` (the pump's tap), until its output ends. Chunks a slow
/// reader missed are skipped: the log has them.
pub(crate) fn output_stream(
    shown: tokio::sync::broadcast::Receiver<bytes::Bytes>,
) -> crate::node::backend::LogStream {
    use futures::StreamExt;
    use tokio::sync::broadcast::error::RecvError;
    futures::stream::unfold(shown, |mut shown| async move {
        loop {
            match shown.recv().await {
                Ok(chunk) => return Some((Ok(chunk), shown)),
                Err(RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "an attach session fell behind a terminal's output");
                }
                Err(RecvError::Closed) => return None,
            }
        }
    })
    .boxed()
}

/// Sets the size of the terminal the link at `link` points to.
pub(crate) fn resize(link: &Path, size: TerminalSize) -> io::Result<()> {
    let device = slave_device(link)?;
    let winsize = rustix::termios::Winsize {
        ws_row: size.height,
        ws_col: size.width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(&device, winsize).map_err(io::Error::from)
}

/// Opens the slave device the link at `link` points to, without making it the node's
/// controlling terminal.
fn slave_device(link: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY)
        .open(link)
}

/// The terminal holder's work, on the standard streams the node set up (see the module notes):
/// returns once the terminal has ended.
///
/// # Errors
///
/// The streams are not what the node sets up, or reading the terminal failed otherwise than by
/// its end.
#[cfg_attr(not(feature = "cli"), allow(dead_code))]
pub(crate) fn hold(close_input_at_eof: bool) -> io::Result<()> {
    let own = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned().map(File::from);
    let input = own(io::stdin().as_fd())?;
    let output = own(io::stdout().as_fd())?;
    let terminal = own(io::stderr().as_fd())?;
    relay(input, output, terminal, close_input_at_eof)
}

/// Copies `input` to `terminal` (on a thread of its own) and `terminal` to `output` until the
/// terminal ends; the end of `input` becomes the terminal's end-of-file character when
/// `close_input_at_eof`.
fn relay(
    mut input: impl Read + Send + 'static,
    mut output: impl Write,
    terminal: File,
    close_input_at_eof: bool,
) -> io::Result<()> {
    let mut writer = terminal.try_clone()?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if writer.write_all(&buf[..n]).is_err() {
                        // The terminal is gone: so is everything the input was for.
                        return;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if close_input_at_eof && let Ok(modes) = rustix::termios::tcgetattr(&writer) {
            let eof = modes.special_codes[rustix::termios::SpecialCodeIndex::VEOF];
            let _ = writer.write_all(&[eof]);
        }
    });
    let mut reader = terminal;
    let mut buf = [0u8; 8192];
    let mut output_open = true;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                // Output that cannot be written is still read, so the container never blocks
                // on a full terminal.
                if output_open && output.write_all(&buf[..n]).is_err() {
                    output_open = false;
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            // The last holder of the slave side closed it: the terminal's end.
            Err(err) if err.raw_os_error() == Some(nix::libc::EIO) => return Ok(()),
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::node::process::test_dir;

    /// Runs `script` with `sh` on a new terminal whose holder's work runs on a thread, fed
    /// `input`; returns what the terminal showed and the shell's exit code.
    async fn on_a_terminal(
        name: &str,
        script: &str,
        input: &[u8],
        close_input_at_eof: bool,
        size: Option<TerminalSize>,
    ) -> (String, Option<i32>) {
        let dir = test_dir(name);
        let link = dir.join(".c.tty");
        let (master, slave) = open(&link).unwrap();
        if let Some(size) = size {
            resize(&link, size).unwrap();
        }
        let mut child = pty_process::Command::new("/bin/sh")
            .args(["-c", script])
            .spawn(slave)
            .unwrap();
        let terminal = File::from(OwnedFd::from(master));
        fcntl(&terminal, FcntlArg::F_SETFL(OFlag::empty())).unwrap();
        let (input_reader, mut input_writer) = std::io::pipe().unwrap();
        let (mut output_reader, output_writer) = std::io::pipe().unwrap();
        let relaying = std::thread::spawn(move || {
            relay(input_reader, output_writer, terminal, close_input_at_eof)
        });
        input_writer.write_all(input).unwrap();
        drop(input_writer);
        let status = child.wait().await.unwrap();
        relaying.join().unwrap().unwrap();
        let mut shown = String::new();
        output_reader.read_to_string(&mut shown).unwrap();
        (shown, status.code())
    }

    #[tokio::test]
    async fn the_container_runs_on_the_terminal_and_its_output_is_relayed_to_the_end() {
        let (shown, code) = on_a_terminal(
            "terminal-relay",
            "test -t 0 && test -t 1 && echo ON-A-TTY; read -r line; echo \"got $line\"; stty size; exit 3",
            b"hello\n",
            false,
            Some(TerminalSize {
                width: 91,
                height: 33,
            }),
        )
        .await;
        assert_eq!(code, Some(3));
        assert!(shown.contains("ON-A-TTY\r\n"), "{shown:?}");
        assert!(shown.contains("got hello\r\n"), "{shown:?}");
        assert!(shown.contains("33 91\r\n"), "{shown:?}");
    }

    #[tokio::test]
    async fn the_end_of_a_once_input_is_the_terminals_end_of_file() {
        let (shown, code) = on_a_terminal(
            "terminal-once",
            "cat; echo input closed",
            b"only\n",
            true,
            None,
        )
        .await;
        assert_eq!(code, Some(0));
        assert!(shown.contains("input closed"), "{shown:?}");
    }
}
