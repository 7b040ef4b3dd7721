//! `kubectl exec` into a container of the process backend: the command runs with the container's
//! environment, working directory and network, and (when the node runs as root and gave the
//! container namespaces of its own) in the container's mount and UTS namespaces, so it sees the
//! container's volumes, `/etc/hosts` and hostname. With a terminal it runs on a pseudo-terminal
//! as its session leader, whose size follows the client's.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;

use nix::sched::{CloneFlags, setns, unshare};
use tokio::process::Child;

use super::spawn::command;
use super::state::ProcessSpec;
use crate::node::exec::{ExecRequest, ExecSession};
use crate::node::lock;
use crate::node::network::{PodNetwork, Prelude};

/// Enters the mount and UTS namespaces of the process `pid` (the container's own).
fn enter_container(pid: i32) -> Prelude {
    Box::new(move || {
        // A thread shares its file system view with its process until it asks for its own;
        // joining a mount namespace needs its own.
        unshare(CloneFlags::CLONE_FS).map_err(io::Error::from)?;
        for (name, kind) in [
            ("uts", CloneFlags::CLONE_NEWUTS),
            ("mnt", CloneFlags::CLONE_NEWNS),
        ] {
            let handle = std::fs::File::open(PathBuf::from(format!("/proc/{pid}/ns/{name}")))?;
            setns(handle, kind).map_err(io::Error::from)?;
        }
        Ok(())
    })
}

fn exit_code(child: Child) -> futures::future::BoxFuture<'static, io::Result<i32>> {
    let mut child = child;
    Box::pin(async move {
        let status = child.wait().await?;
        Ok(status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(-1))
    })
}

/// Starts `request` in the container whose spec is `spec` and whose process is `pid` (when it
/// runs in namespaces of its own).
pub(crate) async fn start(
    network: &PodNetwork,
    spec: &ProcessSpec,
    container_pid: Option<i32>,
    request: ExecRequest,
) -> io::Result<ExecSession> {
    let Some((program, args)) = request.command.split_first() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "exec needs a command",
        ));
    };
    let mut exec = command(spec, program.as_ref(), args);
    // The client going away ends the command.
    exec.kill_on_drop(true);
    let prelude = match (spec.isolated, container_pid) {
        (true, Some(pid)) => Some(enter_container(pid)),
        _ => None,
    };
    if let Some(size) = request.tty {
        let (pty, pts) = pty_process::open().map_err(io::Error::other)?;
        pty.resize(pty_process::Size::new(size.height, size.width))
            .map_err(io::Error::other)?;
        let child = network
            .start_with(prelude, move || {
                pty_process::Command::from(exec)
                    .spawn(pts)
                    .map_err(io::Error::other)
            })
            .await?;
        let (reader, writer) = pty.into_split();
        let writer = std::sync::Arc::new(std::sync::Mutex::new(writer));
        let resize_target = writer.clone();
        let resize: crate::node::exec::Resize = Box::new(move |size| {
            lock(&resize_target)
                .resize(pty_process::Size::new(size.height, size.width))
                .map_err(io::Error::other)
        });
        let stdin = request.stdin.then(|| {
            Box::pin(SharedPtyWriter(writer))
                as std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>
        });
        return Ok(ExecSession::new(
            stdin,
            Box::pin(reader),
            None,
            Some(resize),
            exit_code(child),
        ));
    }
    exec.stdin(if request.stdin {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = network.spawn_with(exec, prelude).await?;
    let stdin = child
        .stdin
        .take()
        .map(|s| Box::pin(s) as std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>);
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("the command has no stdout"))?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| io::Error::other("the command has no stderr"))?;
    Ok(ExecSession::new(
        stdin,
        Box::pin(stdout),
        Some(Box::pin(stderr)),
        None,
        exit_code(child),
    ))
}

/// The input side of a terminal, shared with the resizer.
struct SharedPtyWriter(std::sync::Arc<std::sync::Mutex<pty_process::OwnedWritePty>>);

impl tokio::io::AsyncWrite for SharedPtyWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut *lock(&self.0)).poll_write(cx, buf)
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut *lock(&self.0)).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        // The end of the caller's input does not close the terminal: the command may still write.
        std::task::Poll::Ready(Ok(()))
    }
}
