//! `kubectl exec` and `kubectl attach` over SPDY, as a kubelet serves them
//! (`v4.channel.k8s.io`, also `v3` and `v2`).
//!
//! The client opens one stream per standard stream it wants (`streamType` `stdin`, `stdout`,
//! `stderr`), an `error` stream, and with a terminal a `resize` stream carrying
//! `{"Width":..,"Height":..}` objects. Once every stream the query asked for is open the command
//! starts; when it ends the node reports how on the `error` stream: with `v4`, a `Status` whose
//! `NonZeroExitCode` cause carries the exit code (what `kubectl exec` exits with); before `v4`,
//! a message.
//!
//! An attach session shows what the container prints from then on (read from its log); with
//! `input` asked for, what the client sends goes to the container's input
//! ([`PodBackend::attach_input`](crate::node::PodBackend::attach_input)), and with `tty` to a
//! container that has a terminal, the client's sizes go to that terminal.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use super::spdy::{SpdyConnection, SpdyStream, StreamWriter};
use crate::node::exec::{AttachInput, ExecSession, Resize, TerminalSize};

/// The remote command protocols served, newest first.
pub(crate) const PROTOCOLS: [&str; 3] = [
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
];
/// How long the client has to open the streams it asked for.
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long output still drains after the command ended (a process it left behind may hold the
/// output open).
const OUTPUT_DRAIN: Duration = Duration::from_secs(5);

/// Which standard streams the caller asked for (`input`, `output`, `error`, `tty` in the query).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StreamOptions {
    pub(crate) stdin: bool,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
    pub(crate) tty: bool,
}

impl StreamOptions {
    /// Reads the query as a kubelet does; at least one standard stream is required, and a
    /// terminal has no separate error output.
    pub(crate) fn from_query(query: &[(String, String)]) -> Result<Self, String> {
        let on = |name: &str| query.iter().any(|(k, v)| k == name && v == "1");
        let tty = on("tty");
        let options = Self {
            stdin: on("input"),
            stdout: on("output"),
            stderr: on("error") && !tty,
            tty,
        };
        if !options.stdin && !options.stdout && !options.stderr {
            return Err("you must specify at least 1 of stdin, stdout, stderr".to_owned());
        }
        Ok(options)
    }
}

/// The `command` values of the query, in order.
pub(crate) fn command(query: &[(String, String)]) -> Vec<String> {
    query
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect()
}

/// The streams of one session, by type.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    error: Option<SpdyStream>,
    stdin: Option<SpdyStream>,
    stdout: Option<SpdyStream>,
    stderr: Option<SpdyStream>,
    resize: Option<SpdyStream>,
    /// Resize bytes read before the session started (see
    /// [`first_terminal_size`](Self::first_terminal_size)).
    resize_pending: Vec<u8>,
}

impl Streams {
    fn complete(&self, options: StreamOptions, protocol: &str) -> bool {
        let resize = options.tty && protocol != "v2.channel.k8s.io";
        self.error.is_some()
            && (!options.stdin || self.stdin.is_some())
            && (!options.stdout || self.stdout.is_some())
            && (!options.stderr || self.stderr.is_some())
            && (!resize || self.resize.is_some())
    }

    /// Takes the streams the client opens until every stream `options` asks for is there.
    pub(crate) async fn accept(
        connection: &mut SpdyConnection,
        options: StreamOptions,
        protocol: &str,
    ) -> Result<Self, String> {
        let mut streams = Self::default();
        let collect = async {
            while !streams.complete(options, protocol) {
                let Some(stream) = connection.next_stream().await else {
                    return Err("the connection ended before its streams were opened".to_owned());
                };
                let slot = match stream.header("streamtype") {
                    Some("error") => &mut streams.error,
                    Some("stdin") => &mut streams.stdin,
                    Some("stdout") => &mut streams.stdout,
                    Some("stderr") => &mut streams.stderr,
                    Some("resize") => &mut streams.resize,
                    other => {
                        tracing::debug!(stream_type = ?other, "ignoring an unknown exec stream");
                        continue;
                    }
                };
                *slot = Some(stream);
            }
            Ok(())
        };
        match tokio::time::timeout(STREAM_CREATION_TIMEOUT, collect).await {
            Ok(Ok(())) => Ok(streams),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("timed out waiting for the client to open its streams".to_owned()),
        }
    }

    /// Reports `outcome` on the error stream in the form `protocol` expects, then half-closes
    /// every stream.
    pub(crate) async fn finish(self, protocol: &str, outcome: Outcome) {
        if let Some(error) = &self.error {
            let message = status_message(protocol, &outcome);
            if let Some(message) = message {
                let _ = error.writer.write(message.as_bytes()).await;
            }
        }
        for stream in [self.error, self.stdout, self.stderr].into_iter().flatten() {
            let _ = stream.writer.close().await;
        }
    }
}

/// How a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The command exited with this code (0 for an attach that ended).
    Exited(i32),
    /// It could not run.
    Failed(String),
}

/// What the error stream carries for `outcome`; `None` for success before `v4`.
pub(crate) fn status_message(protocol: &str, outcome: &Outcome) -> Option<String> {
    let v4 = protocol == "v4.channel.k8s.io";
    match outcome {
        Outcome::Exited(0) if v4 => Some(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})
                .to_string(),
        ),
        Outcome::Exited(0) => None,
        Outcome::Exited(code) => {
            let message = format!("command terminated with non-zero exit code: exit status {code}");
            Some(if v4 {
                json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {},
                    "status": "Failure",
                    "message": message,
                    "reason": "NonZeroExitCode",
                    "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
                })
                .to_string()
            } else {
                message
            })
        }
        Outcome::Failed(message) => Some(if v4 {
            json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure",
                "message": message,
                "reason": "InternalError",
                "code": 500,
            })
            .to_string()
        } else {
            message.clone()
        }),
    }
}

/// Copies `from` to `to` until `from` ends, then half-closes `to`; without a stream to write to,
/// the output is read and dropped so the command never blocks on it.
fn pump_output(
    mut from: std::pin::Pin<Box<dyn AsyncRead + Send>>,
    to: Option<StreamWriter>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    if let Some(to) = &to
                        && to.write(&buf[..n]).await.is_err()
                    {
                        break;
                    }
                }
                // A terminal whose last holder closed it reads as EIO: its end.
                Err(e) if e.raw_os_error() == Some(nix::libc::EIO) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "reading a command's output failed");
                    break;
                }
            }
        }
        if let Some(to) = to {
            let _ = to.close().await;
        }
    })
}

/// How long a terminal session waits for the client's first size before it starts the command
/// at the default size (kubectl sends its size as soon as the streams are open).
const FIRST_SIZE_WAIT: Duration = Duration::from_secs(2);

impl Streams {
    /// The size the client's terminal has: the first message of its resize stream (waited for
    /// up to [`FIRST_SIZE_WAIT`]), so that a command that reads its terminal's size at once sees
    /// the client's, not the default. Bytes after it stay for the session.
    pub(crate) async fn first_terminal_size(&mut self) -> Option<TerminalSize> {
        let stream = self.resize.as_mut()?;
        let first = async {
            loop {
                let data = stream.incoming.recv().await?;
                self.resize_pending.extend_from_slice(&data);
                if let Some(size) = resize_messages(&mut self.resize_pending).pop() {
                    return Some(size);
                }
            }
        };
        tokio::time::timeout(FIRST_SIZE_WAIT, first)
            .await
            .ok()
            .flatten()
    }
}

/// Reads the `{"Width":..,"Height":..}` objects of a resize stream.
pub(crate) fn resize_messages(buffer: &mut Vec<u8>) -> Vec<TerminalSize> {
    let mut sizes = Vec::new();
    let mut values = serde_json::Deserializer::from_slice(buffer).into_iter::<TerminalSize>();
    let mut consumed = 0;
    loop {
        match values.next() {
            Some(Ok(size)) => {
                sizes.push(size);
                consumed = values.byte_offset();
            }
            Some(Err(e)) if e.is_eof() => break,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "dropping a malformed resize message");
                consumed = buffer.len();
                break;
            }
            None => {
                consumed = values.byte_offset();
                break;
            }
        }
    }
    buffer.drain(..consumed);
    sizes
}

/// Connects a started command to the client's streams and waits for it to end; a client that
/// goes away ends the command (its exit future is dropped).
pub(crate) async fn run_exec(
    streams: &mut Streams,
    session: ExecSession,
    ended: tokio_util::sync::CancellationToken,
) -> Outcome {
    let ExecSession {
        stdin,
        stdout,
        stderr,
        resize,
        exit,
        ..
    } = session;
    let mut tasks = Vec::new();
    if let (Some(mut input), Some(mut to)) =
        (streams.stdin.as_mut().map(SpdyStream::take_incoming), stdin)
    {
        tasks.push(tokio::spawn(async move {
            while let Some(data) = input.recv().await {
                if to.write_all(&data).await.is_err() {
                    return;
                }
                let _ = to.flush().await;
            }
            let _ = to.shutdown().await;
        }));
    }
    if let (Some(resize_stream), Some(resize)) = (streams.resize.as_mut(), resize) {
        let pending = std::mem::take(&mut streams.resize_pending);
        tasks.push(follow_resizes(resize_stream, pending, resize));
    }
    let outputs = vec![pump_output(
        stdout,
        streams.stdout.as_ref().map(|s| s.writer.clone()),
    )]
    .into_iter()
    .chain(
        stderr.map(|stderr| pump_output(stderr, streams.stderr.as_ref().map(|s| s.writer.clone()))),
    )
    .collect::<Vec<_>>();
    let outcome = tokio::select! {
        code = exit => match code {
            Ok(code) => Outcome::Exited(code),
            Err(e) => Outcome::Failed(format!("waiting for the command failed: {e}")),
        },
        () = ended.cancelled() => Outcome::Failed("the client went away".to_owned()),
    };
    let drain = futures::future::join_all(outputs);
    if tokio::time::timeout(OUTPUT_DRAIN, drain).await.is_err() {
        tracing::debug!("a command's output stayed open after it ended");
    }
    for task in tasks {
        task.abort();
    }
    outcome
}

/// Streams a container's output from now on to the client until the container ends or the
/// client goes away (`kubectl attach`). With `input` (`kubectl attach -i` into a container started
/// with `stdin: true`) what the client sends goes to the container's input; when the client's
/// input ends, a `stdinOnce` container's input is closed and its output still shown until it
/// ends, otherwise the session ends there (the container's input stays open for the next one).
/// The sizes a client on a terminal sends resize the container's terminal, when it has one.
/// Without `input`, what the client sends is read and dropped.
pub(crate) async fn run_attach(
    streams: &mut Streams,
    logs: crate::node::backend::LogStream,
    input: Option<AttachInput>,
    ended: tokio_util::sync::CancellationToken,
) -> Outcome {
    let (input_done_tx, input_done) = tokio::sync::oneshot::channel::<()>();
    let ends_session = input.as_ref().is_some_and(|i| !i.stdin_once);
    let mut input = input;
    let resize_task = match (
        streams.resize.as_mut(),
        input.as_mut().and_then(|i| i.resize.take()),
    ) {
        (Some(stream), Some(resize)) => Some(follow_resizes(
            stream,
            std::mem::take(&mut streams.resize_pending),
            resize,
        )),
        _ => None,
    };
    let mut input_task = None;
    if let Some(stdin) = streams.stdin.as_mut() {
        let mut incoming = stdin.take_incoming();
        let mut to = input.and_then(|i| i.stdin);
        input_task = Some(tokio::spawn(async move {
            while let Some(data) = incoming.recv().await {
                if let Some(writer) = to.as_mut()
                    && (writer.write_all(&data).await.is_err() || writer.flush().await.is_err())
                {
                    // The container no longer reads (it ended): the rest is dropped.
                    to = None;
                }
            }
            // Detaching: with stdinOnce this closes the container's input.
            drop(to);
            let _ = input_done_tx.send(());
        }));
    }
    let to = streams
        .stdout
        .as_ref()
        .or(streams.stderr.as_ref())
        .map(|s| s.writer.clone());
    let mut logs = logs;
    let copy = async {
        while let Some(chunk) = logs.next().await {
            match chunk {
                Ok(bytes) => {
                    if let Some(to) = &to
                        && to.write(&bytes).await.is_err()
                    {
                        break;
                    }
                }
                Err(e) => {
                    return Outcome::Failed(format!("reading the container's output failed: {e}"));
                }
            }
        }
        Outcome::Exited(0)
    };
    let input_ended = async {
        if ends_session && input_done.await.is_ok() {
            return;
        }
        std::future::pending::<()>().await;
    };
    let outcome = tokio::select! {
        outcome = copy => outcome,
        () = input_ended => Outcome::Exited(0),
        () = ended.cancelled() => Outcome::Exited(0),
    };
    // The session is over: its write end goes (closing a stdinOnce container's input).
    if let Some(task) = input_task {
        task.abort();
    }
    if let Some(task) = resize_task {
        task.abort();
    }
    outcome
}

/// Applies every size the client sends on its resize stream (after those in `pending`, read
/// already) until the stream ends.
fn follow_resizes(stream: &mut SpdyStream, pending: Vec<u8>, resize: Resize) -> JoinHandle<()> {
    let mut incoming = stream.take_incoming();
    let mut buffer = pending;
    tokio::spawn(async move {
        loop {
            for size in resize_messages(&mut buffer) {
                if let Err(e) = resize(size) {
                    tracing::debug!(error = %e, "resizing a terminal failed");
                }
            }
            let Some(data) = incoming.recv().await else {
                return;
            };
            buffer.extend_from_slice(&data);
        }
    })
}

/// The protocol both sides speak: the first of the client's offers that the node serves.
pub(crate) fn negotiate<'a>(offered: &[String], served: &[&'a str]) -> Option<&'a str> {
    offered
        .iter()
        .find_map(|offer| served.iter().find(|s| **s == offer.as_str()).copied())
}

/// Query pairs from a raw query string (`command` may repeat).
pub(crate) fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or_default())
        .map_err(|e| format!("the query does not parse: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn options_read_like_a_kubelet() {
        let q = pairs(&[
            ("output", "1"),
            ("error", "1"),
            ("command", "sh"),
            ("command", "-c"),
            ("command", "echo hi"),
        ]);
        let options = StreamOptions::from_query(&q).unwrap();
        assert_eq!(
            options,
            StreamOptions {
                stdin: false,
                stdout: true,
                stderr: true,
                tty: false
            }
        );
        assert_eq!(command(&q), ["sh", "-c", "echo hi"]);
        let tty = StreamOptions::from_query(&pairs(&[
            ("input", "1"),
            ("output", "1"),
            ("error", "1"),
            ("tty", "1"),
        ]))
        .unwrap();
        assert!(
            tty.tty && tty.stdin && !tty.stderr,
            "a terminal has no separate stderr"
        );
        assert!(StreamOptions::from_query(&pairs(&[("tty", "1")])).is_err());
    }

    #[test]
    fn exit_codes_reach_kubectl_as_a_v4_status() {
        let failure: serde_json::Value = serde_json::from_str(
            &status_message("v4.channel.k8s.io", &Outcome::Exited(3)).unwrap(),
        )
        .unwrap();
        assert_eq!(failure["status"], "Failure");
        assert_eq!(failure["reason"], "NonZeroExitCode");
        assert_eq!(failure["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(failure["details"]["causes"][0]["message"], "3");
        let success: serde_json::Value = serde_json::from_str(
            &status_message("v4.channel.k8s.io", &Outcome::Exited(0)).unwrap(),
        )
        .unwrap();
        assert_eq!(success["status"], "Success");
        assert_eq!(
            status_message("v3.channel.k8s.io", &Outcome::Exited(0)),
            None
        );
        assert!(
            status_message("v2.channel.k8s.io", &Outcome::Exited(2))
                .unwrap()
                .contains("exit code")
        );
    }

    #[test]
    fn resize_messages_are_read_across_chunks() {
        let mut buffer = br#"{"Width":80,"Height":24}{"Width":100,"#.to_vec();
        assert_eq!(
            resize_messages(&mut buffer),
            [TerminalSize {
                width: 80,
                height: 24
            }]
        );
        buffer.extend_from_slice(br#""Height":40}"#);
        assert_eq!(
            resize_messages(&mut buffer),
            [TerminalSize {
                width: 100,
                height: 40
            }]
        );
        assert!(buffer.is_empty());
    }

    #[test]
    fn the_newest_common_protocol_wins() {
        let offered = vec![
            "v4.channel.k8s.io".to_owned(),
            "v3.channel.k8s.io".to_owned(),
        ];
        assert_eq!(negotiate(&offered, &PROTOCOLS), Some("v4.channel.k8s.io"));
        assert_eq!(negotiate(&["channel.k8s.io".to_owned()], &PROTOCOLS), None);
    }
}
