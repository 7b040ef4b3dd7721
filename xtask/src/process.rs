//! Long-running background processes that `cargo xtask` starts (the control
//! plane's components, later the brokers) and stops again.
//!
//! Each process runs in its own process group, writes to its own log file and
//! is recorded in a pid file (pid, start time, executable). Stopping only ever
//! signals a recorded group whose leader is still the very process that was
//! started (same pid *and* same start time), so a reused pid is never hit.

use std::fs::{self, File};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// What a pid file says about a process we started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProcessRecord {
    /// The component's name (`etcd`, `kube-apiserver`, ...).
    pub(crate) name: String,
    /// Its pid, which is also its process group id.
    pub(crate) pid: i32,
    /// Its start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub(crate) start_ticks: u64,
    /// The program it runs.
    pub(crate) exe: PathBuf,
    /// Where its stdout and stderr go.
    pub(crate) log: PathBuf,
}

/// A process this xtask run started; it keeps running after xtask exits.
#[derive(Debug)]
pub(crate) struct Started {
    record: ProcessRecord,
    child: Child,
}

/// Starts `cmd` in the background in a new process group, with stdout and
/// stderr appended to `log`, and records it in `run_dir/<name>.pid`.
pub(crate) fn start(name: &str, mut cmd: Command, log: &Path, run_dir: &Path) -> Result<Started> {
    fs::create_dir_all(run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
    if let Some(parent) = log.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("cannot open {}", log.display()))?;
    let err = out.try_clone()?;
    let exe = PathBuf::from(cmd.get_program());
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {name} ({})", exe.display()))?;
    let pid = i32::try_from(child.id()).context("pid out of range")?;
    let start_ticks = proc_stat(pid)
        .map(|stat| stat.start_ticks)
        .with_context(|| format!("{name} (pid {pid}) vanished right after it started"))?;
    let record = ProcessRecord {
        name: name.to_owned(),
        pid,
        start_ticks,
        exe,
        log: log.to_path_buf(),
    };
    let file = pid_file(run_dir, name);
    fs::write(&file, serde_json::to_vec_pretty(&record)?)
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(Started { record, child })
}

impl Started {
    /// The pid file's content.
    pub(crate) fn record(&self) -> &ProcessRecord {
        &self.record
    }

    /// `Some(description)` once the process has exited.
    pub(crate) fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(err) => Some(format!("cannot be waited for: {err}")),
        }
    }
}

fn pid_file(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(format!("{name}.pid"))
}

/// Reads every pid file in `run_dir`, oldest first. Unreadable files are
/// reported and removed: they cannot name a process safely.
pub(crate) fn records(run_dir: &Path) -> Result<Vec<ProcessRecord>> {
    let mut found = Vec::new();
    let entries = match fs::read_dir(run_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(err) => return Err(err).context(format!("cannot read {}", run_dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_none_or(|ext| ext != "pid") {
            continue;
        }
        let parsed = fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<ProcessRecord>(&bytes).ok());
        match parsed {
            Some(record) => found.push(record),
            None => {
                crate::output::warn(format!("removing unreadable pid file {}", path.display()));
                let _ = fs::remove_file(&path);
            }
        }
    }
    found.sort_by_key(|record| record.start_ticks);
    Ok(found)
}

impl ProcessRecord {
    /// Whether the recorded process still runs: the pid exists, has the
    /// recorded start time and is not a zombie.
    pub(crate) fn is_alive(&self) -> bool {
        proc_stat(self.pid)
            .is_some_and(|stat| stat.start_ticks == self.start_ticks && !stat.is_dead())
    }

    /// Stops the recorded process group: SIGTERM, then SIGKILL after `grace`.
    /// A process that is already gone is fine.
    pub(crate) fn stop(&self, grace: Duration) -> Result<()> {
        if !self.is_alive() {
            return Ok(());
        }
        let group = Pid::from_raw(self.pid);
        signal_group(group, Signal::SIGTERM)?;
        if self.wait_gone(grace) {
            return Ok(());
        }
        crate::output::warn(format!(
            "{} (pid {}) ignored SIGTERM for {}s; killing it",
            self.name,
            self.pid,
            grace.as_secs()
        ));
        signal_group(group, Signal::SIGKILL)?;
        if self.wait_gone(Duration::from_secs(10)) {
            Ok(())
        } else {
            bail!("{} (pid {}) survived SIGKILL", self.name, self.pid)
        }
    }

    fn wait_gone(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if !self.is_alive() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        !self.is_alive()
    }
}

fn signal_group(group: Pid, signal: Signal) -> Result<()> {
    match killpg(group, signal) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(err) => Err(err).context(format!("cannot send {signal} to process group {group}")),
    }
}

/// Stops every process recorded in `run_dir`, newest first, and removes the
/// pid files.
pub(crate) fn stop_recorded(run_dir: &Path, grace: Duration) -> Result<Vec<ProcessRecord>> {
    let mut recorded = records(run_dir)?;
    recorded.reverse();
    for record in &recorded {
        record
            .stop(grace)
            .with_context(|| format!("cannot stop {}", record.name))?;
        let _ = fs::remove_file(pid_file(run_dir, &record.name));
    }
    Ok(recorded)
}

/// The fields of `/proc/<pid>/stat` that identify a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// `R`, `S`, `D`, `Z`, ...
    pub(crate) state: char,
    /// Start time in clock ticks since boot.
    pub(crate) start_ticks: u64,
}

impl ProcStat {
    fn is_dead(self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Reads `/proc/<pid>/stat`; `None` when there is no such process.
pub(crate) fn proc_stat(pid: i32) -> Option<ProcStat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<ProcStat> {
    // `pid (comm) state ...`: comm may hold spaces and parentheses, so the
    // fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Field 3 is the state; the start time is field 22, so 19 further on.
    let start_ticks = fields.nth(18)?.parse().ok()?;
    Some(ProcStat { state, start_ticks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_and_parens_in_the_name_parses() {
        let line = "4242 (kube (api) server) S 1 4242 4242 0 -1 4194560 1 0 0 0 3 4 0 0 20 0 \
                    12 0 987654 123 4 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                state: 'S',
                start_ticks: 987_654
            })
        );
    }

    #[test]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let pid = i32::try_from(std::process::id()).unwrap();
        let stat = proc_stat(pid).expect("our own stat");
        let record = ProcessRecord {
            name: "self".into(),
            pid,
            start_ticks: stat.start_ticks,
            exe: PathBuf::new(),
            log: PathBuf::new(),
        };
        assert!(record.is_alive());
        let reused = ProcessRecord {
            start_ticks: stat.start_ticks + 1,
            ..record
        };
        assert!(!reused.is_alive());
    }

    #[test]
    fn a_started_process_is_recorded_and_stopped_by_its_group() {
        let dir = std::env::temp_dir().join(format!("xtask-process-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut cmd = Command::new("sleep");
        cmd.arg("600");
        let mut started = start("sleeper", cmd, &dir.join("sleeper.log"), &dir).unwrap();
        assert!(started.record().is_alive());
        assert_eq!(records(&dir).unwrap(), vec![started.record().clone()]);
        let stopped = stop_recorded(&dir, Duration::from_secs(10)).unwrap();
        assert_eq!(stopped.len(), 1);
        assert!(
            started.exited().is_some(),
            "sleep must have been terminated"
        );
        assert!(records(&dir).unwrap().is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }
}
