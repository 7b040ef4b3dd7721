//! Commands run inside a container of the process backend: `kubectl exec` sessions, exec probes
//! and exec lifecycle hooks, as a container runtime runs them. The command runs with the
//! container's environment, working directory, network and identity (user, groups); when the
//! node enforces limits, in the container's cgroup (so what it uses counts against the
//! container's limits, as with a runtime's exec); and (when the node runs as root and gave the
//! container namespaces of its own) in the container's mount and UTS namespaces, so it sees the
//! container's volumes, `/etc/hosts` and hostname. With a terminal it runs on a
//! pseudo-terminal as its session leader, whose size follows the client's.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::sched::{CloneFlags, setns, unshare};
use tokio::process::Child;

use super::cgroup::{Gate, Placement};
use super::spawn::{chain, command};
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

/// Where a command run in a container goes besides its namespaces: the container's cgroup.
pub(crate) struct CgroupEntry {
    /// How a new process gets into the container's cgroup.
    pub(crate) placement: Placement,
    /// A named pipe of its own for the gate (cgroup v2), removed when the command ended.
    pub(crate) gate_fifo: PathBuf,
}

/// The exit code of `child` once it ended; what `gate` held (cgroup v2) goes with it.
fn exit_code(
    child: Child,
    gate: Option<(Gate, PathBuf)>,
) -> futures::future::BoxFuture<'static, io::Result<i32>> {
    let mut child = child;
    Box::pin(async move {
        let status = child.wait().await;
        if let Some((gate, fifo)) = gate {
            drop(gate);
            let _ = std::fs::remove_file(fifo);
        }
        let status = status?;
        Ok(status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(-1))
    })
}

/// Lets a command waiting behind its gate run, once it is in the container's cgroup.
async fn release(child: &mut Child, gate: &mut Option<(Gate, PathBuf)>) -> io::Result<()> {
    let Some((gate, fifo)) = gate else {
        return Ok(());
    };
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .ok_or_else(|| io::Error::other("the started command has no pid"));
    if let Err(err) = pid.and_then(|pid| gate.release(pid)) {
        let _ = child.start_kill();
        let _ = child.wait().await;
        let _ = std::fs::remove_file(fifo);
        return Err(err);
    }
    Ok(())
}

/// A command made ready to run in a container: what starts it, the work its starting thread
/// does first (cgroup, namespaces), and its gate (cgroup v2).
struct Prepared {
    command: tokio::process::Command,
    prelude: Option<Prelude>,
    gate: Option<(Gate, PathBuf)>,
}

/// Prepares `argv` to run in the container whose spec is `spec` and whose process is
/// `container_pid` (when it runs in namespaces of its own), in its cgroup when `cgroup` says how.
fn prepare(
    spec: &ProcessSpec,
    container_pid: Option<i32>,
    cgroup: Option<CgroupEntry>,
    argv: &[String],
) -> io::Result<Prepared> {
    let Some((program, args)) = argv.split_first() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "exec needs a command",
        ));
    };
    let mut gate = None;
    let mut command = match &cgroup {
        Some(CgroupEntry {
            placement: Placement::Gate { procs },
            gate_fifo,
        }) => {
            gate = Some((Gate::open(procs, gate_fifo)?, gate_fifo.clone()));
            let (program, args) = Gate::wrap(gate_fifo, Path::new(program), args);
            command(spec, &program, &args)
        }
        _ => command(spec, program.as_ref(), args),
    };
    // The caller going away (or giving up) ends the command.
    command.kill_on_drop(true);
    let namespaces = match (spec.isolated, container_pid) {
        (true, Some(pid)) => Some(enter_container(pid)),
        _ => None,
    };
    let prelude = chain(
        cgroup.as_ref().and_then(|c| c.placement.prelude()),
        namespaces,
    );
    Ok(Prepared {
        command,
        prelude,
        gate,
    })
}

/// Starts `request` in the container whose spec is `spec` and whose process is `pid` (when it
/// runs in namespaces of its own), in its cgroup when `cgroup` says how.
pub(crate) async fn start(
    network: &PodNetwork,
    spec: &ProcessSpec,
    container_pid: Option<i32>,
    cgroup: Option<CgroupEntry>,
    request: ExecRequest,
) -> io::Result<ExecSession> {
    let Prepared {
        command: mut exec,
        prelude,
        mut gate,
    } = prepare(spec, container_pid, cgroup, &request.command)?;
    if let Some(size) = request.tty {
        let (pty, pts) = pty_process::open().map_err(io::Error::other)?;
        pty.resize(pty_process::Size::new(size.height, size.width))
            .map_err(io::Error::other)?;
        let mut child = network
            .start_with(prelude, move || {
                pty_process::Command::from(exec)
                    .spawn(pts)
                    .map_err(io::Error::other)
            })
            .await?;
        release(&mut child, &mut gate).await?;
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
            exit_code(child, gate),
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
    release(&mut child, &mut gate).await?;
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
        exit_code(child, gate),
    ))
}

/// Runs `argv` in the container to its end without input or output (exec probes and hooks: only
/// the exit code counts) and returns its exit code.
pub(crate) async fn run(
    network: &PodNetwork,
    spec: &ProcessSpec,
    container_pid: Option<i32>,
    cgroup: Option<CgroupEntry>,
    argv: &[String],
) -> io::Result<i32> {
    let Prepared {
        mut command,
        prelude,
        mut gate,
    } = prepare(spec, container_pid, cgroup, argv)?;
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = network.spawn_with(command, prelude).await?;
    release(&mut child, &mut gate).await?;
    exit_code(child, gate).await
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
