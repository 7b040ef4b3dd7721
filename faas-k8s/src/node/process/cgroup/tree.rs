//! The two cgroup interfaces: finding them, and making, reading and removing cgroups in them.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::placement::Placement;
use super::{CPU_PERIOD_US, CgroupLimits};

/// How long a cgroup whose processes were just killed gets to empty before removing it fails.
const EMPTY_LIMIT: Duration = Duration::from_secs(10);
/// How often an emptying cgroup is checked.
const EMPTY_POLL: Duration = Duration::from_millis(20);

/// A cgroup interface and where its hierarchies are mounted.
#[derive(Clone, Debug)]
pub(super) enum Version {
    /// The unified hierarchy, with the controllers the node needs.
    V2 {
        root: PathBuf,
        /// `pids` is offered too.
        pids: bool,
    },
    /// One hierarchy per controller (`cpu` may be mounted together with `cpuacct`).
    V1 {
        memory: PathBuf,
        cpu: PathBuf,
        pids: Option<PathBuf>,
    },
}

impl Version {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Self::V2 { .. } => "cgroup v2",
            Self::V1 { .. } => "cgroup v1",
        }
    }

    /// cgroup v2 when its root offers `memory` and `cpu`, else cgroup v1 when both hierarchies
    /// are mounted; otherwise why neither can be used.
    pub(super) fn detect() -> Result<Self, String> {
        let mounts = procfs::process::Process::myself()
            .and_then(|me| me.mountinfo())
            .map_err(|e| format!("cannot read the node's mounts: {e}"))?;
        let mut unified = None;
        let (mut memory, mut cpu, mut pids) = (None, None, None);
        for mount in mounts {
            match mount.fs_type.as_str() {
                "cgroup2" if unified.is_none() => unified = Some(mount.mount_point),
                "cgroup" => {
                    let has = |name: &str| mount.super_options.contains_key(name);
                    if has("memory") && memory.is_none() {
                        memory = Some(mount.mount_point.clone());
                    }
                    if has("cpu") && cpu.is_none() {
                        cpu = Some(mount.mount_point.clone());
                    }
                    if has("pids") && pids.is_none() {
                        pids = Some(mount.mount_point.clone());
                    }
                }
                _ => {}
            }
        }
        let mut v2_missing = None;
        if let Some(root) = unified {
            let offered =
                std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            let offered: Vec<&str> = offered.split_whitespace().collect();
            if offered.contains(&"memory") && offered.contains(&"cpu") {
                return Ok(Self::V2 {
                    pids: offered.contains(&"pids"),
                    root,
                });
            }
            v2_missing = Some(format!(
                "the cgroup2 mount at {} offers no memory and cpu controllers",
                root.display()
            ));
        }
        match (memory, cpu) {
            (Some(memory), Some(cpu)) => Ok(Self::V1 { memory, cpu, pids }),
            _ => Err(match v2_missing {
                Some(v2) => {
                    format!("{v2}, and no cgroup v1 memory and cpu hierarchies are mounted")
                }
                None => {
                    "no cgroup file system with memory and cpu controllers is mounted".to_owned()
                }
            }),
        }
    }

    /// The directories of `path` in every hierarchy the node writes.
    pub(super) fn dirs(&self, path: &Path) -> Vec<PathBuf> {
        match self {
            Self::V2 { root, .. } => vec![root.join(path)],
            Self::V1 { memory, cpu, pids } => {
                let mut dirs = vec![memory.join(path), cpu.join(path)];
                dirs.extend(pids.as_ref().map(|p| p.join(path)));
                dirs.dedup();
                dirs
            }
        }
    }

    /// Makes the node's parent (and on cgroup v2 hands the controllers down to it).
    pub(super) fn prepare_parent(&self, parent: &Path) -> io::Result<()> {
        for dir in self.dirs(parent) {
            std::fs::create_dir_all(&dir)?;
        }
        if let Self::V2 { root, pids } = self {
            let controllers = if *pids {
                "+memory +cpu +pids"
            } else {
                "+memory +cpu"
            };
            let mut dir = root.clone();
            write(&dir.join("cgroup.subtree_control"), controllers)?;
            for part in parent.components() {
                dir.push(part);
                write(&dir.join("cgroup.subtree_control"), controllers)?;
            }
        }
        Ok(())
    }

    /// Makes the cgroup at `path` (its parent exists) and writes `limits` into it; with
    /// `has_children`, hands the controllers down to the cgroups below it (cgroup v2).
    pub(super) fn make(
        &self,
        path: &Path,
        limits: &CgroupLimits,
        has_children: bool,
    ) -> io::Result<()> {
        for dir in self.dirs(path) {
            match std::fs::create_dir(&dir) {
                Err(err) if err.kind() != io::ErrorKind::AlreadyExists => return Err(err),
                _ => {}
            }
        }
        match self {
            Self::V2 { root, pids } => {
                let dir = root.join(path);
                let memory = limits
                    .memory_bytes
                    .map_or("max".to_owned(), |b| b.to_string());
                write(&dir.join("memory.max"), &memory)?;
                let quota = limits
                    .cpu_quota_us
                    .map_or("max".to_owned(), |q| q.to_string());
                write(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?;
                write(&dir.join("cpu.weight"), &limits.cpu_weight().to_string())?;
                if *pids {
                    let max = limits.pids.map_or("max".to_owned(), |p| p.to_string());
                    write(&dir.join("pids.max"), &max)?;
                }
                if has_children {
                    let controllers = if *pids {
                        "+memory +cpu +pids"
                    } else {
                        "+memory +cpu"
                    };
                    write(&dir.join("cgroup.subtree_control"), controllers)?;
                }
            }
            Self::V1 { memory, cpu, pids } => {
                let mem = memory.join(path);
                // -1: no limit.
                let bytes = limits
                    .memory_bytes
                    .map_or("-1".to_owned(), |b| b.to_string());
                write(&mem.join("memory.limit_in_bytes"), &bytes)?;
                let cpu = cpu.join(path);
                write(&cpu.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                let quota = limits
                    .cpu_quota_us
                    .map_or("-1".to_owned(), |q| q.to_string());
                write(&cpu.join("cpu.cfs_quota_us"), &quota)?;
                write(&cpu.join("cpu.shares"), &limits.cpu_shares.to_string())?;
                if let Some(pids) = pids {
                    let max = limits.pids.map_or("max".to_owned(), |p| p.to_string());
                    write(&pids.join(path).join("pids.max"), &max)?;
                }
            }
        }
        Ok(())
    }

    /// The kernel's count of processes killed for the memory limit of `path`: `oom_kill` of
    /// `memory.events` (v2) or of `memory.oom_control` (v1); 0 when it cannot be read.
    pub(super) fn oom_kills(&self, path: &Path) -> u64 {
        let file = match self {
            Self::V2 { root, .. } => root.join(path).join("memory.events"),
            Self::V1 { memory, .. } => memory.join(path).join("memory.oom_control"),
        };
        std::fs::read_to_string(file)
            .ok()
            .and_then(|text| {
                text.lines().find_map(|line| {
                    let (key, value) = line.split_once(' ')?;
                    (key == "oom_kill").then(|| value.trim().parse().ok())?
                })
            })
            .unwrap_or(0)
    }

    /// How a new process is put into the cgroup at `path`.
    pub(super) fn placement(&self, path: &Path) -> Placement {
        match self {
            Self::V2 { root, .. } => Placement::Gate {
                procs: root.join(path).join("cgroup.procs"),
            },
            Self::V1 { .. } => Placement::Thread {
                tasks: self
                    .dirs(path)
                    .into_iter()
                    .map(|d| d.join("tasks"))
                    .collect(),
            },
        }
    }

    /// The names of the cgroups right below `path` (in the memory hierarchy, which every pod
    /// cgroup has).
    pub(super) fn children(&self, path: &Path) -> Vec<String> {
        let Some(dir) = self.dirs(path).into_iter().next() else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect()
    }

    /// Removes the cgroup at `path` and those below it in every hierarchy, killing the
    /// processes still in them and waiting (a little) for them to leave.
    pub(super) fn remove(&self, path: &Path) -> io::Result<()> {
        for dir in self.dirs(path) {
            remove_tree(&dir)?;
        }
        Ok(())
    }
}

/// Removes `dir` (a cgroup) after the cgroups below it.
fn remove_tree(dir: &Path) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path())?;
        }
    }
    let deadline = Instant::now() + EMPTY_LIMIT;
    loop {
        for pid in members(dir) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            // Busy while a killed process is still on its way out.
            Err(err)
                if Instant::now() < deadline && err.raw_os_error() == Some(nix::libc::EBUSY) =>
            {
                std::thread::sleep(EMPTY_POLL);
            }
            Err(err) => {
                return Err(io::Error::new(
                    err.kind(),
                    format!("cannot remove cgroup {}: {err}", dir.display()),
                ));
            }
        }
    }
}

/// The processes in the cgroup at `dir`, but the node's own: on cgroup v1 the thread that
/// started a container's process is listed (as its process) until it has ended.
fn members(dir: &Path) -> Vec<i32> {
    let own = std::process::id();
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .filter(|pid| *pid != own)
        .filter_map(|pid| i32::try_from(pid).ok())
        .collect()
}

/// Writes one interface file, naming it in the error.
pub(super) fn write(path: &Path, value: &str) -> io::Result<()> {
    std::fs::write(path, value).map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("cannot write {value:?} to {}: {err}", path.display()),
        )
    })
}
