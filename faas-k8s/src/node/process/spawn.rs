//! Starting a container's process.
//!
//! The process gets a process group of its own (so that stopping it reaches everything it
//! started), a clean environment (the backend's base environment, the container's, then
//! `POD_IP` and `HOSTNAME`), its identity (see [`identity`]), `/dev/null` as stdin (or its input
//! pipe with `stdin: true`, see [`stdin`](super::stdin)), and the named pipe its log pump reads
//! as stdout and stderr; with `tty: true` a terminal instead, whose holder connects it to both
//! pipes (see [`terminal`]).

use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::SystemTime;

use tokio::net::unix::pipe;
use tokio::process::{Child, Command};

use super::cgroup::{Gate, Placement};
use super::identity;
use super::inspect;
use super::isolate;
use super::log::pump;
use super::state::{ProcessIdentity, ProcessSpec};
use super::terminal::{self, TerminalSetup};
use crate::node::backend::{ContainerLaunch, PodKey};
use crate::node::network::{PodNetwork, Prelude};

/// Resolves what a container runs: the image's executable unless `command` overrides it, then
/// `args`; the environment in the order the container gets it.
pub(crate) fn resolve_spec(
    launch: &ContainerLaunch,
    image_executable: PathBuf,
    key: &PodKey,
    ip: Ipv4Addr,
    base_env: &[(String, String)],
    default_working_dir: &Path,
) -> ProcessSpec {
    let (program, mut args) = match launch.command.split_first() {
        Some((program, rest)) => (PathBuf::from(program), rest.to_vec()),
        None => (image_executable, Vec::new()),
    };
    args.extend(launch.args.iter().cloned());
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |name: &str, value: &str| {
        env.retain(|(n, _)| n != name);
        env.push((name.to_owned(), value.to_owned()));
    };
    for (name, value) in base_env {
        set(name, value);
    }
    set("HOSTNAME", &key.name);
    for (name, value) in &launch.env {
        set(name, value);
    }
    set("POD_IP", &ip.to_string());
    ProcessSpec {
        image: launch.image.clone(),
        program,
        args,
        env,
        working_dir: launch
            .working_dir
            .as_ref()
            .map_or_else(|| default_working_dir.to_owned(), PathBuf::from),
        host_network: false,
        isolated: false,
        hostname: None,
        hosts_file: None,
        termination_message_path: launch.termination_message_path.as_ref().map(PathBuf::from),
        termination_message_from_logs: launch.termination_message_from_logs,
        mounts: Vec::new(),
        run_as_user: launch.run_as_user,
        run_as_group: launch.run_as_group,
        supplemental_groups: launch.supplemental_groups.clone(),
        cgroup: false,
        sidecar: launch.sidecar,
        stdin: launch.stdin,
        stdin_once: launch.stdin_once,
        tty: launch.tty,
    }
}

/// The node's own network, for `hostNetwork: true` pods.
static HOST_NETWORK: PodNetwork = PodNetwork::Loopback;

/// The network a container's processes run in: the pod network, or the node's own.
pub(crate) fn network_of<'a>(pod_network: &'a PodNetwork, spec: &ProcessSpec) -> &'a PodNetwork {
    if spec.host_network {
        &HOST_NETWORK
    } else {
        pod_network
    }
}

/// A command with the container's program, arguments, environment, working directory and
/// identity (see [`identity`]; started in the pod network with [`PodNetwork::spawn`]).
pub(crate) fn command(spec: &ProcessSpec, program: &Path, args: &[String]) -> Command {
    let (program, args) = identity::wrap(spec, program, args);
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.working_dir)
        .stdin(Stdio::null());
    command
}

/// A container process just started.
#[derive(Debug)]
pub(crate) struct Spawned {
    pub(crate) identity: ProcessIdentity,
    pub(crate) child: Child,
    /// The read end of the output pipe.
    pub(crate) output: pipe::Receiver,
    /// The gate the process passed into its cgroup (cgroup v2), held while it runs.
    pub(crate) gate: Option<Gate>,
    /// The holder of its terminal (`tty: true`).
    pub(crate) holder: Option<Child>,
}

/// Where a new process goes: its cgroup's placement and the named pipe of its gate (used on
/// cgroup v2).
pub(crate) struct CgroupTarget<'a> {
    pub(crate) placement: Placement,
    pub(crate) gate_fifo: &'a Path,
}

/// Starts the container's process with its output going to the named pipe at `fifo`, reading
/// `stdin` (or an empty input); with `terminal`, on a terminal of its own whose holder copies
/// `stdin` to it and what it shows to the pipe (see [`terminal`](super::terminal)).
pub(crate) async fn spawn(
    network: &PodNetwork,
    spec: &ProcessSpec,
    fifo: &Path,
    termination_file: &Path,
    cgroup: Option<CgroupTarget<'_>>,
    stdin: Option<std::fs::File>,
    terminal: Option<TerminalSetup<'_>>,
) -> io::Result<Spawned> {
    pump::ensure_fifo(fifo)?;
    // Opened for reading and writing: the process then always holds a reader of its own output
    // pipe and never gets SIGPIPE while no node reads it (see `log::pump`).
    let output_end = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(fifo)?;
    let output = pump::open_reader(fifo)?;
    let mut gate = None;
    let mut command = match &cgroup {
        Some(CgroupTarget {
            placement: Placement::Gate { procs },
            gate_fifo,
        }) => {
            gate = Some(Gate::open(procs, gate_fifo)?);
            let (program, args) = Gate::wrap(gate_fifo, &spec.program, &spec.args);
            command(spec, &program, &args)
        }
        _ => command(spec, &spec.program, &spec.args),
    };
    command.kill_on_drop(false);
    let started_at = SystemTime::now();
    if spec.isolated {
        // A fresh message file for every run.
        std::fs::write(termination_file, b"")?;
    }
    let prelude = chain(
        cgroup.as_ref().and_then(|c| c.placement.prelude()),
        isolate::prelude(spec, termination_file),
    );
    let network = network_of(network, spec);
    let (mut child, holder) = match terminal {
        None => {
            if let Some(stdin) = stdin {
                command.stdin(Stdio::from(stdin));
            }
            command
                .stdout(Stdio::from(output_end.try_clone()?))
                .stderr(Stdio::from(output_end))
                .process_group(0);
            (network.spawn_with(command, prelude).await?, None)
        }
        Some(setup) => {
            // The terminal's session is the container's own, and so its process group (a
            // process group of its own would keep it from starting a session).
            let (master, slave) = terminal::open(setup.link)?;
            let mut child = network
                .start_with(prelude, move || {
                    pty_process::Command::from(command)
                        .spawn(slave)
                        .map_err(io::Error::other)
                })
                .await?;
            match terminal::start_holder(&setup, master, stdin, output_end) {
                Ok(holder) => (child, Some(holder)),
                Err(err) => {
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    return Err(err);
                }
            }
        }
    };
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .ok_or_else(|| io::Error::other("the started process has no pid"))?;
    // The child is not reaped before it is waited for, so its /proc entry is there.
    let start_ticks = inspect::read_stat(pid)?.map_or(0, |stat| stat.start_ticks);
    if let Some(gate) = &mut gate
        && let Err(err) = gate.release(pid)
    {
        let _ = child.start_kill();
        let _ = child.wait().await;
        return Err(err);
    }
    Ok(Spawned {
        gate,
        identity: ProcessIdentity {
            pid,
            pgid: pid,
            start_ticks,
            started_at,
        },
        child,
        output,
        holder,
    })
}

/// Both preludes, in order, on the thread that starts the process.
pub(crate) fn chain(first: Option<Prelude>, second: Option<Prelude>) -> Option<Prelude> {
    match (first, second) {
        (Some(first), Some(second)) => Some(Box::new(move || {
            first()?;
            second()
        })),
        (first, second) => first.or(second),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_overrides_the_image_and_args_follow() {
        let key = PodKey::new("ns", "web", "u");
        let ip = Ipv4Addr::new(127, 1, 0, 7);
        let base = vec![("PATH".into(), "/bin".into()), ("HOME".into(), "/".into())];
        let launch = ContainerLaunch::new("c", "img")
            .with_args(vec!["a".into()])
            .with_env(vec![
                ("PATH".into(), "/x".into()),
                ("POD_IP".into(), "bogus".into()),
            ]);
        let spec = resolve_spec(&launch, "/img/exe".into(), &key, ip, &base, Path::new("/w"));
        assert_eq!(spec.program, Path::new("/img/exe"));
        assert_eq!(spec.args, ["a"]);
        assert_eq!(spec.working_dir, Path::new("/w"));
        assert_eq!(
            spec.env,
            [
                ("HOME".into(), "/".into()),
                ("HOSTNAME".into(), "web".into()),
                ("PATH".into(), "/x".into()),
                ("POD_IP".into(), "127.1.0.7".into()),
            ]
        );
        let launch = launch
            .with_command(vec!["/bin/sh".into(), "-c".into()])
            .with_working_dir(Some("/tmp".into()));
        let spec = resolve_spec(&launch, "/img/exe".into(), &key, ip, &base, Path::new("/w"));
        assert_eq!(spec.program, Path::new("/bin/sh"));
        assert_eq!(spec.args, ["-c", "a"]);
        assert_eq!(spec.working_dir, Path::new("/tmp"));
    }
}
