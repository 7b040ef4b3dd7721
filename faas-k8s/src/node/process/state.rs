//! The state directory: one JSON record per pod, so that a restarted node can adopt what runs.
//!
//! Layout under the state directory:
//!
//! ```text
//! pods/<pod>.json                       the pod's record (mode 0600: it holds the environment)
//! run/<pod>/                            the pod's default working directory
//! run/<pod>/.<container>.out            the named pipe a container's stdout and stderr write to
//! run/<pod>/.<container>.in             the named pipe it reads as stdin (`stdin: true`)
//! run/<pod>/.<container>.tty            a link to its terminal's device (`tty: true`)
//! logs/<pod>/<container>/<run>.log      the log of a container's run (`.log.1`: rotated part)
//! ```
//!
//! `<pod>` is `<namespace>_<name>_<uid>`, with any byte outside `[A-Za-z0-9.-]` written as `%XX`.
//! `<run>` is the container's restart count: the current run and the one before are kept.

use std::ffi::OsStr;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::log::file::LogPaths;
use crate::node::backend::PodKey;
use crate::node::container_status::ContainerStatusCell;

/// Bumped when the record format changes incompatibly.
const RECORD_VERSION: u32 = 1;

/// What a pod's record holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PodRecord {
    pub(crate) version: u32,
    pub(crate) key: PodKey,
    pub(crate) ip: Ipv4Addr,
    pub(crate) containers: Vec<ContainerRecord>,
}

impl PodRecord {
    pub(crate) fn new(key: PodKey, ip: Ipv4Addr, containers: Vec<ContainerRecord>) -> Self {
        Self {
            version: RECORD_VERSION,
            key,
            ip,
            containers,
        }
    }
}

/// What a container runs, resolved once at creation (restarts and `exec` use the same).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProcessSpec {
    pub(crate) image: String,
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) working_dir: PathBuf,
    /// Runs in the node's network rather than the pod network (`hostNetwork: true`).
    #[serde(default)]
    pub(crate) host_network: bool,
    /// Each run gets mount and UTS namespaces of its own (the node runs as root).
    #[serde(default)]
    pub(crate) isolated: bool,
    /// The hostname the container sees, when isolated.
    #[serde(default)]
    pub(crate) hostname: Option<String>,
    /// The node-side file bound over `/etc/hosts`, when isolated.
    #[serde(default)]
    pub(crate) hosts_file: Option<PathBuf>,
    /// Where the container writes its termination message, when isolated.
    #[serde(default)]
    pub(crate) termination_message_path: Option<PathBuf>,
    /// A failed run with no message reports the end of its log.
    #[serde(default)]
    pub(crate) termination_message_from_logs: bool,
    /// Volumes bound into the container, when isolated, in the order they are mounted.
    #[serde(default)]
    pub(crate) mounts: Vec<BindMount>,
    /// The user and group its processes run as (`runAsUser`, `runAsGroup`).
    #[serde(default)]
    pub(crate) run_as_user: Option<u32>,
    #[serde(default)]
    pub(crate) run_as_group: Option<u32>,
    /// Its supplementary groups (`fsGroup`, then `supplementalGroups`).
    #[serde(default)]
    pub(crate) supplemental_groups: Vec<u32>,
    /// Runs in a cgroup of its own (`<parent>/pod<uid>/<container>`), limited to its resources.
    #[serde(default)]
    pub(crate) cgroup: bool,
    /// A sidecar init container: stopped after the containers.
    #[serde(default)]
    pub(crate) sidecar: bool,
    /// Its standard input is a pipe attach sessions write to (`stdin: true`).
    #[serde(default)]
    pub(crate) stdin: bool,
    /// That input is closed after the first session that sent input (`stdinOnce`).
    #[serde(default)]
    pub(crate) stdin_once: bool,
    /// It runs on a terminal of its own (`tty: true`, see [`terminal`](super::terminal)).
    #[serde(default)]
    pub(crate) tty: bool,
}

/// A node-side path bound at a path the container sees.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BindMount {
    pub(crate) source: PathBuf,
    pub(crate) target: PathBuf,
    pub(crate) read_only: bool,
}

/// Which process runs a container: the pid with its start time (pids get reused) and its
/// process group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProcessIdentity {
    pub(crate) pid: i32,
    pub(crate) pgid: i32,
    pub(crate) start_ticks: u64,
    pub(crate) started_at: SystemTime,
}

/// A container's part of its pod's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ContainerRecord {
    pub(crate) spec: ProcessSpec,
    pub(crate) status: ContainerStatusCell,
    /// The process of the current run while it runs.
    pub(crate) process: Option<ProcessIdentity>,
}

/// The state directory of one backend.
#[derive(Clone, Debug)]
pub(crate) struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Creates the directory layout if missing.
    pub(crate) fn open(root: &Path) -> io::Result<Self> {
        for sub in ["pods", "run", "logs"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        Ok(Self {
            root: root.to_owned(),
        })
    }

    pub(crate) fn record_path(&self, key: &PodKey) -> PathBuf {
        self.root
            .join("pods")
            .join(format!("{}.json", pod_dir_name(key)))
    }

    pub(crate) fn run_dir(&self, key: &PodKey) -> PathBuf {
        self.root.join("run").join(pod_dir_name(key))
    }

    /// The node-side file a container's termination message is bound to.
    pub(crate) fn termination_path(&self, key: &PodKey, container: &str) -> PathBuf {
        self.run_dir(key)
            .join(format!(".{}.termination-log", escape(container)))
    }

    /// Where the pod's volumes live on the node.
    pub(crate) fn volumes_dir(&self, key: &PodKey) -> PathBuf {
        self.run_dir(key).join(".volumes")
    }

    /// The node-side copy of the pod's `/etc/hosts`.
    pub(crate) fn hosts_path(&self, key: &PodKey) -> PathBuf {
        self.run_dir(key).join(".hosts")
    }

    /// The named pipe a container's process waits on until it is in its cgroup (cgroup v2).
    pub(crate) fn gate_path(&self, key: &PodKey, container: &str) -> PathBuf {
        self.run_dir(key)
            .join(format!(".{}.gate", escape(container)))
    }

    /// The named pipe a container started with `stdin: true` reads as its standard input.
    pub(crate) fn stdin_path(&self, key: &PodKey, container: &str) -> PathBuf {
        self.run_dir(key).join(format!(".{}.in", escape(container)))
    }

    /// The link to the terminal device of a container started with `tty: true`.
    pub(crate) fn terminal_path(&self, key: &PodKey, container: &str) -> PathBuf {
        self.run_dir(key)
            .join(format!(".{}.tty", escape(container)))
    }

    pub(crate) fn fifo_path(&self, key: &PodKey, container: &str) -> PathBuf {
        self.run_dir(key)
            .join(format!(".{}.out", escape(container)))
    }

    pub(crate) fn log_dir(&self, key: &PodKey, container: &str) -> PathBuf {
        self.root
            .join("logs")
            .join(pod_dir_name(key))
            .join(escape(container))
    }

    /// The log files of run number `run` of a container.
    pub(crate) fn log_paths(&self, key: &PodKey, container: &str, run: u32) -> LogPaths {
        LogPaths::new(&self.log_dir(key, container), &run.to_string())
    }

    /// Writes a pod's record atomically (a reader sees the old or the new one, never half).
    pub(crate) fn save(&self, record: &PodRecord) -> io::Result<()> {
        let path = self.record_path(&record.key);
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // No fsync: the record has to survive a restart of the node, not of the machine (after a
        // reboot no process is left to adopt anyway).
        file.write_all(&json)?;
        std::fs::rename(&tmp, &path)
    }

    /// Every readable record; unreadable ones are logged and skipped.
    pub(crate) fn load_all(&self) -> io::Result<Vec<PodRecord>> {
        let mut records = Vec::new();
        for entry in std::fs::read_dir(self.root.join("pods"))? {
            let path = entry?.path();
            if path.extension() != Some(OsStr::new("json")) {
                continue;
            }
            let parsed = std::fs::read(&path).and_then(|bytes| {
                serde_json::from_slice::<PodRecord>(&bytes).map_err(io::Error::other)
            });
            match parsed {
                Ok(record) if record.version == RECORD_VERSION => records.push(record),
                Ok(record) => tracing::warn!(
                    path = %path.display(),
                    version = record.version,
                    "skipping a pod record of another format version"
                ),
                Err(err) => tracing::warn!(
                    path = %path.display(),
                    error = %err,
                    "skipping an unreadable pod record"
                ),
            }
        }
        records.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(records)
    }

    /// Removes everything of a pod: record, run directory (after taking its memory volumes'
    /// file systems off), logs.
    pub(crate) fn remove(&self, key: &PodKey) -> io::Result<()> {
        remove_file_if_exists(&self.record_path(key))?;
        if let Ok(entries) = std::fs::read_dir(self.volumes_dir(key)) {
            for entry in entries.flatten() {
                // Only memory volumes are mounts; for the others this fails harmlessly.
                let _ = nix::mount::umount2(&entry.path(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
        remove_dir_if_exists(&self.run_dir(key))?;
        remove_dir_if_exists(&self.root.join("logs").join(pod_dir_name(key)))
    }
}

fn remove_file_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

fn remove_dir_if_exists(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

fn pod_dir_name(key: &PodKey) -> String {
    format!(
        "{}_{}_{}",
        escape(&key.namespace),
        escape(&key.name),
        escape(&key.uid)
    )
}

/// Keeps `[A-Za-z0-9.-]` (Kubernetes names never hold anything else) and writes other bytes as
/// `%XX`, so no name can climb out of its directory or collide with the `_` separators.
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || (byte == b'.' && !out.is_empty()) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    if out.is_empty() {
        out.push('%');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::process::test_dir;

    fn record(name: &str) -> PodRecord {
        PodRecord::new(
            PodKey::new("ns", name, "u-1"),
            Ipv4Addr::new(127, 1, 0, 1),
            vec![ContainerRecord {
                spec: ProcessSpec {
                    image: "sh".into(),
                    program: "/bin/sh".into(),
                    args: vec!["-c".into(), "true".into()],
                    env: vec![("A".into(), "1".into())],
                    working_dir: "/".into(),
                    host_network: false,
                    isolated: false,
                    hostname: None,
                    hosts_file: None,
                    termination_message_path: None,
                    termination_message_from_logs: false,
                    mounts: Vec::new(),
                    run_as_user: None,
                    run_as_group: None,
                    supplemental_groups: Vec::new(),
                    cgroup: false,
                    sidecar: false,
                    stdin: false,
                    stdin_once: false,
                    tty: false,
                },
                status: ContainerStatusCell::new("main"),
                process: None,
            }],
        )
    }

    #[test]
    fn escapes_everything_that_could_escape() {
        assert_eq!(escape("web-1.x"), "web-1.x");
        assert_eq!(escape("../a_b/"), "%2E.%2Fa%5Fb%2F");
        assert_eq!(escape(""), "%");
    }

    #[test]
    fn saves_loads_and_removes_records() {
        let state = StateDir::open(&test_dir("state-records")).unwrap();
        let (a, b) = (record("a"), record("b"));
        state.save(&a).unwrap();
        state.save(&b).unwrap();
        state.save(&b).unwrap();
        std::fs::write(state.root.join("pods/junk.json"), "{").unwrap();
        assert_eq!(state.load_all().unwrap(), vec![a.clone(), b]);
        std::fs::create_dir_all(state.run_dir(&a.key)).unwrap();
        state.remove(&a.key).unwrap();
        state.remove(&a.key).unwrap();
        assert!(!state.run_dir(&a.key).exists());
        assert_eq!(state.load_all().unwrap().len(), 1);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.record_path(&record("b").key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
