//! Putting a container's new process into its cgroup before it runs any of its own code.
//!
//! - **cgroup v1** takes single threads: the short-lived thread that starts the process (see
//!   [`PodNetwork::spawn_with`](crate::node::network::PodNetwork)) writes its own thread id into
//!   the cgroup's `tasks` in every hierarchy first, and the process it starts is born there.
//! - **cgroup v2** moves whole processes only, so the process starts behind a gate: `/bin/sh`
//!   waits to read a line from a named pipe; the node writes the shell's pid into the cgroup's
//!   `cgroup.procs`, then writes the line, and the shell replaces itself with the container's
//!   program (same pid, now in the cgroup).

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::tree::write;
use crate::node::network::Prelude;

/// The gate's script: `$0` is the named pipe, the rest is the program and its arguments.
const GATE_SCRIPT: &str = "read -r _ < \"$0\" && exec \"$@\"";
/// The shell that runs it.
const GATE_SHELL: &str = "/bin/sh";

/// How a new process of one container gets into its cgroup.
#[derive(Clone, Debug)]
pub(crate) enum Placement {
    /// cgroup v1: the starting thread joins these `tasks` files first.
    Thread { tasks: Vec<PathBuf> },
    /// cgroup v2: the process waits behind a gate until the node moved it to `procs`.
    Gate { procs: PathBuf },
}

impl Placement {
    /// The work the starting thread does before it starts the process (cgroup v1).
    pub(crate) fn prelude(&self) -> Option<Prelude> {
        let Self::Thread { tasks } = self else {
            return None;
        };
        let tasks = tasks.clone();
        Some(Box::new(move || {
            let tid = nix::unistd::gettid().to_string();
            for file in &tasks {
                write(file, &tid)?;
            }
            Ok(())
        }))
    }
}

/// A gate a process waits behind (cgroup v2), held open by the node until the run ends: a
/// named pipe's content is lost when nobody holds it open.
#[derive(Debug)]
pub(crate) struct Gate {
    procs: PathBuf,
    pipe: File,
}

impl Gate {
    /// Makes the gate's named pipe at `fifo`, readable by a container running as any user.
    pub(crate) fn open(procs: &Path, fifo: &Path) -> io::Result<Self> {
        match nix::unistd::mkfifo(fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(errno) => return Err(io::Error::from(errno)),
        }
        // Read and write: opening never blocks, and the pipe lives while the node holds it.
        let pipe = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(fifo)?;
        Ok(Self {
            procs: procs.to_owned(),
            pipe,
        })
    }

    /// The program and arguments that run `program` with `args` behind the gate at `fifo`.
    pub(crate) fn wrap(fifo: &Path, program: &Path, args: &[String]) -> (PathBuf, Vec<String>) {
        let mut wrapped = vec![
            "-c".to_owned(),
            GATE_SCRIPT.to_owned(),
            fifo.to_string_lossy().into_owned(),
            program.to_string_lossy().into_owned(),
        ];
        wrapped.extend(args.iter().cloned());
        (PathBuf::from(GATE_SHELL), wrapped)
    }

    /// Moves the waiting process `pid` into the cgroup and lets it run.
    pub(crate) fn release(&mut self, pid: i32) -> io::Result<()> {
        write(&self.procs, &pid.to_string())?;
        self.pipe.write_all(b"go\n")
    }
}
