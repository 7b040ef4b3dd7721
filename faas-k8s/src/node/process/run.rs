//! Running containers: starting a run, adopting one from an earlier node process, watching for
//! its end, stopping it.
//!
//! Every run has a watcher task that learns how it ended: by waiting for the child (exit code and
//! signal known), or, for a process adopted from an earlier node process (not our child, so it
//! cannot be waited for), by checking `/proc` every
//! [`adopted_poll_interval`](super::ProcessBackendConfig::adopted_poll_interval). An adopted
//! process's exit status is known only if it is still a zombie when checked (its `/proc` entry
//! holds the status until its new parent reaps it); otherwise the run ends as
//! `ContainerStatusUnknown` with exit code 137, as the kubelet reports a container it lost.
//!
//! When a run's leading process exits, whatever it left in its process group is killed, and the
//! run ends once that is gone.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use nix::sys::signal::Signal;
use tokio::process::Child;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::cgroup::{Cgroups, Gate};
use super::group::{signal_group, wait_group_gone};
use super::inspect::{self, Liveness};
use super::isolate;
use super::log::file::{LogFile, LogProgress};
use super::log::pump;
use super::pod::{Container, Pod};
use super::spawn::{CgroupTarget, spawn};
use super::state::{ProcessIdentity, StateDir};
use super::stdin::ContainerStdin;
use super::terminal::TerminalSetup;
use crate::node::container_status::Exit;
use crate::node::events::EventHub;
use crate::node::lock;
use crate::node::log::split_line;
use crate::node::network::PodNetwork;

/// How long an ended run's log gets to be drained before its tail is read for a message.
const LOG_DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// The reason of a run the kernel ended for its memory limit, as the kubelet reports it.
const OOM_KILLED: &str = "OOMKilled";

/// How many chunks of a terminal's output an attach session may fall behind before it misses
/// some.
const TERMINAL_OUTPUT_CHUNKS: usize = 256;

/// How long a process group gets to vanish after `SIGKILL` before stopping reports a failure.
const KILL_LIMIT: Duration = Duration::from_secs(30);

/// What the tasks of the backend share.
#[derive(Clone, Debug)]
pub(crate) struct Runner {
    pub(crate) state: StateDir,
    pub(crate) events: EventHub,
    /// Cancelled when the backend goes away: tasks stop, processes stay.
    pub(crate) cancel: CancellationToken,
    pub(crate) log_max_bytes: u64,
    pub(crate) adopted_poll_interval: Duration,
    pub(crate) network: PodNetwork,
    /// How long a running container gets to stop when it is restarted.
    pub(crate) restart_grace: Duration,
    /// The node's cgroups, when it enforces limits.
    pub(crate) cgroups: Option<Cgroups>,
    /// The program that holds the terminals of `tty: true` containers.
    pub(crate) terminal_holder: Option<PathBuf>,
}

/// What a run keeps beside its process while it is watched.
struct RunExtras {
    /// The run's log, and the pipe its output comes from.
    log: LogFile,
    output: tokio::net::unix::pipe::Receiver,
    /// The gate the process passed into its cgroup, held until the run ends.
    gate: Option<Gate>,
    /// The container cgroup's OOM kill count when the run began.
    oom_kills_before: Option<u64>,
}

/// How the end of a run is learned.
enum Watched {
    Child(Child),
    Adopted,
}

impl Runner {
    /// Writes the pod's record, unless the pod is gone.
    pub(crate) fn persist(&self, pod: &Pod) {
        let removed = lock(&pod.data.0);
        if *removed {
            return;
        }
        if let Err(err) = self.state.save(&pod.record()) {
            tracing::warn!(pod = %pod.key, error = %err, "cannot write the pod record");
        }
    }

    /// Removes the pod's record and files for good.
    pub(crate) fn forget(&self, pod: &Pod) -> io::Result<()> {
        let mut removed = lock(&pod.data.0);
        *removed = true;
        if let Some(cgroups) = &self.cgroups {
            cgroups.remove_pod(&pod.key.uid)?;
        }
        self.state.remove(&pod.key)
    }

    /// The node's cgroups, when `container` runs in one.
    fn cgroups_of(&self, container: &Container) -> Option<&Cgroups> {
        self.cgroups.as_ref().filter(|_| container.spec.cgroup)
    }

    /// Starts a new run of `container` (its restart count numbers the run's log).
    pub(crate) async fn start(&self, pod: &Arc<Pod>, container: &Arc<Container>) -> io::Result<()> {
        let run = lock(&container.runtime).status.restart_count;
        if let Some(older) = run.checked_sub(2) {
            self.state
                .log_paths(&pod.key, &container.name, older)
                .remove()?;
        }
        let log_dir = self.state.log_dir(&pod.key, &container.name);
        std::fs::create_dir_all(&log_dir)?;
        let log = LogFile::open(
            self.state.log_paths(&pod.key, &container.name, run),
            self.log_max_bytes,
        )?;
        let fifo = self.state.fifo_path(&pod.key, &container.name);
        let termination_file = self.state.termination_path(&pod.key, &container.name);
        let gate_fifo = self.state.gate_path(&pod.key, &container.name);
        let cgroups = self.cgroups_of(container);
        let oom_kills_before = cgroups.map(|c| c.oom_kills(&pod.key.uid, &container.name));
        let target = cgroups.map(|c| CgroupTarget {
            placement: c.placement(&pod.key.uid, &container.name),
            gate_fifo: &gate_fifo,
        });
        let (stdin, stdin_reader) = if container.spec.stdin {
            let (stdin, reader) = ContainerStdin::open(
                &self.state.stdin_path(&pod.key, &container.name),
                container.spec.stdin_once,
            )?;
            (Some(Arc::new(stdin)), Some(reader))
        } else {
            (None, None)
        };
        let terminal_link = self.state.terminal_path(&pod.key, &container.name);
        let terminal = match (container.spec.tty, &self.terminal_holder) {
            (false, _) => None,
            (true, Some(holder)) => Some(TerminalSetup {
                holder,
                link: &terminal_link,
                label: format!("{}/{}/{}", pod.key.namespace, pod.key.name, container.name),
                close_input_at_eof: container.spec.stdin && container.spec.stdin_once,
            }),
            (true, None) => {
                return Err(io::Error::other(
                    "the container asks for a terminal and this node has no terminal holder",
                ));
            }
        };
        let spawned = spawn(
            &self.network,
            &container.spec,
            &fifo,
            &termination_file,
            target,
            stdin_reader,
            terminal,
        )
        .await?;
        lock(&container.runtime).stdin = stdin;
        if let Some(mut holder) = spawned.holder {
            // It ends with the terminal; waiting for it only reaps it.
            tokio::spawn(async move {
                let _ = holder.wait().await;
            });
        }
        tracing::debug!(pod = %pod.key, container = %container.name, pid = spawned.identity.pid, "started");
        self.watch(
            pod,
            container,
            spawned.identity,
            Watched::Child(spawned.child),
            RunExtras {
                log,
                output: spawned.output,
                gate: spawned.gate,
                oom_kills_before,
            },
        );
        Ok(())
    }

    /// Takes over a process started by an earlier node process: its output pipe, its log and the
    /// watch for its end.
    pub(crate) fn adopt(
        &self,
        pod: &Arc<Pod>,
        container: &Arc<Container>,
        identity: ProcessIdentity,
    ) -> io::Result<()> {
        let run = lock(&container.runtime).status.restart_count;
        let log = LogFile::open(
            self.state.log_paths(&pod.key, &container.name, run),
            self.log_max_bytes,
        )?;
        let fifo = self.state.fifo_path(&pod.key, &container.name);
        pump::ensure_fifo(&fifo)?;
        let output = pump::open_reader(&fifo)?;
        tracing::debug!(pod = %pod.key, container = %container.name, pid = identity.pid, "adopted");
        let oom_kills_before = self
            .cgroups_of(container)
            .map(|c| c.oom_kills(&pod.key.uid, &container.name));
        if container.spec.stdin {
            let fifo = self.state.stdin_path(&pod.key, &container.name);
            let stdin = ContainerStdin::reopen(&fifo, container.spec.stdin_once);
            lock(&container.runtime).stdin = Some(Arc::new(stdin));
        }
        let extras = RunExtras {
            log,
            output,
            gate: None,
            oom_kills_before,
        };
        self.watch(pod, container, identity, Watched::Adopted, extras);
        Ok(())
    }

    fn watch(
        &self,
        pod: &Arc<Pod>,
        container: &Arc<Container>,
        identity: ProcessIdentity,
        watched: Watched,
        extras: RunExtras,
    ) {
        let RunExtras {
            log,
            output,
            gate,
            oom_kills_before,
        } = extras;
        let (exited_tx, exited_rx) = watch::channel(false);
        let run = lock(&container.runtime).status.restart_count;
        let mut progress = log.subscribe();
        {
            let mut runtime = lock(&container.runtime);
            runtime.status.started(identity.started_at);
            runtime.process = Some(identity);
            runtime.exited = Some(exited_rx);
            runtime.log = Some(log.subscribe());
        }
        let tap = container
            .spec
            .tty
            .then(|| broadcast::channel(TERMINAL_OUTPUT_CHUNKS).0);
        lock(&container.runtime).terminal_output = tap.as_ref().map(broadcast::Sender::downgrade);
        tokio::spawn(pump::pump(output, log, self.cancel.clone(), tap));
        let runner = self.clone();
        let (pod, container) = (Arc::clone(pod), Arc::clone(container));
        tokio::spawn(async move {
            let outcome = tokio::select! {
                biased;
                () = runner.cancel.cancelled() => return,
                outcome = runner.wait(watched, identity) => outcome,
            };
            let finished_at = SystemTime::now();
            // The run has ended once what it left behind is gone too, not just signalled.
            if let Err(err) = wait_group_gone(identity.pgid, KILL_LIMIT).await {
                tracing::warn!(pod = %pod.key, container = %container.name, error = %err, "a container left processes behind");
            }
            let exit = match outcome {
                Ok(Some((code, signal))) => {
                    Exit::new(code, signal, identity.started_at, finished_at)
                }
                Ok(None) => Exit::unknown(identity.started_at, finished_at),
                Err(err) => {
                    tracing::warn!(pod = %pod.key, container = %container.name, error = %err, "lost track of a container process");
                    Exit::unknown(identity.started_at, finished_at)
                }
            };
            let mut exit = exit;
            drop(gate);
            if exit.exit_code != 0
                && let (Some(before), Some(cgroups)) =
                    (oom_kills_before, runner.cgroups_of(&container))
                && cgroups.oom_kills(&pod.key.uid, &container.name) > before
            {
                exit.reason = OOM_KILLED.to_owned();
            }
            exit.message = runner
                .termination_message(&pod, &container, run, exit.exit_code, &mut progress)
                .await;
            tracing::debug!(pod = %pod.key, container = %container.name, code = exit.exit_code, "exited");
            {
                let mut runtime = lock(&container.runtime);
                if runtime.process == Some(identity) {
                    runtime.status.exited(exit);
                    runtime.process = None;
                    runtime.stdin = None;
                    runtime.terminal_output = None;
                }
            }
            runner.persist(&pod);
            exited_tx.send_replace(true);
            runner.events.notify(&pod.key);
        });
    }

    /// What run `run` of `container` left as its termination message (see [`isolate`]).
    async fn termination_message(
        &self,
        pod: &Pod,
        container: &Container,
        run: u32,
        exit_code: i32,
        progress: &mut watch::Receiver<LogProgress>,
    ) -> Option<String> {
        let file = self.state.termination_path(&pod.key, &container.name);
        let paths = self.state.log_paths(&pod.key, &container.name, run);
        let wants_log = container.spec.termination_message_from_logs && exit_code != 0;
        if wants_log {
            // The log is complete once the pump saw the end of the output.
            let _ = tokio::time::timeout(LOG_DRAIN_LIMIT, progress.wait_for(|p| p.closed)).await;
        }
        isolate::termination_message(
            &container.spec,
            &file,
            || {
                let stored = std::fs::read(&paths.current).ok()?;
                let text: String = stored
                    .split(|b| *b == b'\n')
                    .filter(|line| !line.is_empty())
                    .map(|line| String::from_utf8_lossy(split_line(line).1).into_owned() + "\n")
                    .collect();
                Some(isolate::log_tail(&text))
            },
            exit_code,
        )
    }

    /// Waits for the end of a run: `Some((exit code, signal))`, or `None` when unknown.
    async fn wait(
        &self,
        watched: Watched,
        identity: ProcessIdentity,
    ) -> io::Result<Option<(i32, Option<i32>)>> {
        match watched {
            Watched::Child(mut child) => {
                use std::os::unix::process::ExitStatusExt;
                let status = child.wait().await?;
                Ok(Some(match (status.code(), status.signal()) {
                    (Some(code), _) => (code, None),
                    (None, Some(signal)) => (128 + signal, Some(signal)),
                    (None, None) => return Ok(None),
                }))
            }
            Watched::Adopted => {
                let mut interval = tokio::time::interval(self.adopted_poll_interval);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    interval.tick().await;
                    match inspect::liveness(identity.pid, identity.start_ticks)? {
                        Liveness::Alive => {}
                        Liveness::Exited(status) => {
                            return Ok(status.map(inspect::decode_wait_status));
                        }
                    }
                }
            }
        }
    }

    /// Stops the current run of `container`: `SIGTERM` to its process group, up to `grace` for
    /// the run to end, then `SIGKILL`; returns once no process of the group is left and the exit
    /// is recorded.
    pub(crate) async fn stop(&self, container: &Container, grace: Duration) -> io::Result<()> {
        let (identity, exited) = {
            let runtime = lock(&container.runtime);
            (runtime.process, runtime.exited.clone())
        };
        let (Some(identity), Some(mut exited)) = (identity, exited) else {
            return Ok(());
        };
        signal_group(identity.pgid, Signal::SIGTERM)?;
        let ended = tokio::time::timeout(grace, exited.wait_for(|done| *done))
            .await
            .is_ok_and(|waited| waited.is_ok());
        if !ended {
            signal_group(identity.pgid, Signal::SIGKILL)?;
            // The watcher records the exit; it only stops early when the backend goes away.
            let _ = tokio::time::timeout(KILL_LIMIT, exited.wait_for(|done| *done)).await;
        }
        wait_group_gone(identity.pgid, KILL_LIMIT).await
    }
}
