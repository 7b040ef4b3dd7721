//! Commands run in a container with their standard streams connected to a caller (`kubectl
//! exec`), as a [`PodBackend`](super::PodBackend) hands them to the kubelet API.

use std::fmt;
use std::io;
use std::pin::Pin;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};

use super::backend::LogStream;

/// The size of a terminal, in characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct TerminalSize {
    /// Columns.
    #[serde(rename = "Width")]
    pub width: u16,
    /// Rows.
    #[serde(rename = "Height")]
    pub height: u16,
}

/// What to run in a container and how its streams are connected.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecRequest {
    /// The command and its arguments.
    pub command: Vec<String>,
    /// The caller sends input (`kubectl exec -i`); otherwise the command reads an empty stdin.
    pub stdin: bool,
    /// Run it on a terminal of this initial size (`kubectl exec -t`): stdout and stderr are then
    /// one stream.
    pub tty: Option<TerminalSize>,
}

impl ExecRequest {
    /// Runs `command` without input and without a terminal.
    pub fn new(command: Vec<String>) -> Self {
        Self {
            command,
            stdin: false,
            tty: None,
        }
    }

    /// Connects the caller's input.
    #[must_use]
    pub fn with_stdin(mut self, stdin: bool) -> Self {
        self.stdin = stdin;
        self
    }

    /// Runs the command on a terminal.
    #[must_use]
    pub fn with_tty(mut self, size: Option<TerminalSize>) -> Self {
        self.tty = size;
        self
    }
}

/// Changes the size of the terminal of an exec session or of a container.
pub type Resize = Box<dyn Fn(TerminalSize) -> io::Result<()> + Send + Sync>;

/// A command started by [`PodBackend::exec_session`](super::PodBackend::exec_session).
#[non_exhaustive]
pub struct ExecSession {
    /// Where the caller's input goes (with [`ExecRequest::stdin`]); dropping it closes the
    /// command's input (on a terminal, the terminal stays open).
    pub stdin: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    /// The command's output (on a terminal: everything the terminal shows).
    pub stdout: Pin<Box<dyn AsyncRead + Send>>,
    /// Its error output; `None` on a terminal.
    pub stderr: Option<Pin<Box<dyn AsyncRead + Send>>>,
    /// Resizes its terminal; `None` without one.
    pub resize: Option<Resize>,
    /// Resolves to the exit code once the command ended (128 + signal when a signal ended it).
    pub exit: BoxFuture<'static, io::Result<i32>>,
}

impl ExecSession {
    /// A session from its parts.
    pub fn new(
        stdin: Option<Pin<Box<dyn AsyncWrite + Send>>>,
        stdout: Pin<Box<dyn AsyncRead + Send>>,
        stderr: Option<Pin<Box<dyn AsyncRead + Send>>>,
        resize: Option<Resize>,
        exit: BoxFuture<'static, io::Result<i32>>,
    ) -> Self {
        Self {
            stdin,
            stdout,
            stderr,
            resize,
            exit,
        }
    }
}

impl fmt::Debug for ExecSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecSession")
            .field("stdin", &self.stdin.is_some())
            .field("stderr", &self.stderr.is_some())
            .field("tty", &self.resize.is_some())
            .finish_non_exhaustive()
    }
}

/// The input side of an attach session (`kubectl attach -i`), from
/// [`PodBackend::attach_input`](super::PodBackend::attach_input).
#[non_exhaustive]
pub struct AttachInput {
    /// Where the caller's input goes; `None` when the container's input was closed already
    /// (`stdinOnce`, after an earlier session). Dropping it is the session detaching: with
    /// `stdin_once` that closes the container's input.
    pub stdin: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    /// The container's input is closed when this session's input ends (`stdinOnce`): the session
    /// then goes on showing the container's output until it ends. Otherwise the end of the
    /// caller's input ends the session and the container's input stays open for the next one.
    pub stdin_once: bool,
    /// Resizes the container's terminal (`tty: true`, `kubectl attach -it`); `None` for a
    /// container without one.
    pub resize: Option<Resize>,
    /// What the container's terminal shows from now on, as it comes rather than line by line
    /// (a prompt, the echo of what is typed); `None` for a container without a terminal, whose
    /// output the session reads from its log.
    pub output: Option<LogStream>,
}

impl AttachInput {
    /// An attach session's input from its parts, for a container without a terminal.
    pub fn new(stdin: Option<Pin<Box<dyn AsyncWrite + Send>>>, stdin_once: bool) -> Self {
        Self {
            stdin,
            stdin_once,
            resize: None,
            output: None,
        }
    }

    /// The session's client resizes the container's terminal through `resize`.
    #[must_use]
    pub fn with_resize(mut self, resize: Resize) -> Self {
        self.resize = Some(resize);
        self
    }

    /// The session shows `output`, what the container's terminal shows, instead of its log.
    #[must_use]
    pub fn with_output(mut self, output: LogStream) -> Self {
        self.output = Some(output);
        self
    }
}

impl fmt::Debug for AttachInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachInput")
            .field("stdin", &self.stdin.is_some())
            .field("stdin_once", &self.stdin_once)
            .field("tty", &self.resize.is_some())
            .field("output", &self.output.is_some())
            .finish()
    }
}
