//! Cleaning up after an earlier `up` that crashed or lost its pid files.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::control_plane::{ControlPlane, STOP_GRACE};
use crate::process::{self, ProcessRecord};
use crate::{output, ports};

impl ControlPlane {
    /// Stops whatever an earlier `up` left behind (crashed or not), frees
    /// the ports from leftovers of this cluster, and removes the old state.
    pub(super) fn clean_stale(&self) -> Result<()> {
        let run_dir = self.layout.run_dir();
        for record in process::records(&run_dir)? {
            if record.is_alive() {
                output::info(format!(
                    "stopping {} (pid {}) left by an earlier run",
                    record.name, record.pid
                ));
            }
        }
        process::stop_recorded(&run_dir, STOP_GRACE)?;
        // Dependents first: an API server whose etcd is gone is slow to stop.
        for (port, what, flag) in self.options.ports().into_iter().rev() {
            self.free_port(port, what, flag)?;
        }
        self.remove_state(true)
    }

    fn free_port(&self, port: u16, what: &str, flag: &str) -> Result<()> {
        if ports::is_free(port) {
            return Ok(());
        }
        let ours = self.ws.cache().join("k8s");
        let listeners = ports::listeners(port);
        if listeners.is_empty() {
            bail!(
                "port {port} ({what}) is in use: pick another one with --{flag} \
                 (or its FAAS_* variable, see `cargo xtask cluster --help`)"
            );
        }
        for listener in listeners {
            let exe = listener.exe.clone().unwrap_or_default();
            let Some(stat) = process::proc_stat(listener.pid) else {
                continue;
            };
            if !exe.starts_with(&ours) {
                bail!(
                    "port {port} ({what}) is in use by pid {} ({}), which this workspace did not \
                     start: stop it or pick another port with --{flag}",
                    listener.pid,
                    exe.display()
                );
            }
            // One of our binaries, but is it this cluster's? Every component
            // names files of its cluster directory on its command line.
            if !names_dir(listener.pid, self.layout.dir()) {
                bail!(
                    "port {port} ({what}) is in use by pid {} ({}) of another cluster (not \
                     {}): stop that one with `cargo xtask cluster down --cluster-dir ...`, or \
                     pick other ports with --{flag} and the other port options",
                    listener.pid,
                    exe.display(),
                    self.layout.dir().display()
                );
            }
            output::warn(format!(
                "port {port} is held by {} (pid {}) from an earlier run whose pid file is gone; \
                 stopping it",
                exe.display(),
                listener.pid
            ));
            let leftover = ProcessRecord {
                name: exe
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                pid: listener.pid,
                start_ticks: stat.start_ticks,
                exe,
                log: PathBuf::new(),
            };
            leftover.stop(STOP_GRACE)?;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ports::is_free(port) {
            if Instant::now() > deadline {
                bail!("port {port} ({what}) is still in use");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }
}

/// Whether process `pid`'s command line names a path under `dir`.
fn names_dir(pid: i32, dir: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let dir = dir.to_string_lossy();
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    cmdline
        .split(|byte| *byte == 0)
        .map(String::from_utf8_lossy)
        .any(|arg| {
            let value = arg.split_once('=').map_or(&*arg, |(_, value)| value);
            value.starts_with(&prefix)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_names_the_directories_on_its_command_line() {
        let dir = std::env::temp_dir().join(format!("xtask-cleanup-{}", std::process::id()));
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 60", "etcd"])
            .arg(format!("--data-dir={}/etcd", dir.display()))
            .spawn()
            .unwrap();
        let pid = i32::try_from(child.id()).unwrap();
        // Between fork and exec the child still shows our command line.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut named = names_dir(pid, &dir);
        while !named && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            named = names_dir(pid, &dir);
        }
        let other = names_dir(pid, Path::new("/elsewhere"));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(named);
        assert!(!other);
    }
}
