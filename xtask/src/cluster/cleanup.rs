//! Cleaning up after an earlier `up` that crashed or lost its pid files.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::control_plane::{ControlPlane, STOP_GRACE};
use crate::process::{self, ProcessRecord};
use crate::{output, ports};

impl ControlPlane {
    /// Stops whatever an earlier `up` left behind (crashed or not), frees
    /// the ports from leftovers of ours, and removes the old state.
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
