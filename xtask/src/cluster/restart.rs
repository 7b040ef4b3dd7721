//! `cargo xtask cluster restart`: stops the API server and etcd of a running control plane and
//! starts them again with the same certificates, tokens, ports and data, as an operator restarts
//! them on a real cluster. The controller manager and the scheduler keep running and reconnect,
//! as do the clients (the virtual node) whose survival this exercises.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use super::build;
use super::components;
use super::control_plane::{ControlPlane, STOP_GRACE};
use super::probe::{self, Prober};
use crate::process;
use crate::{interrupt, output};

/// How long a restarted component gets to become healthy.
const START_TIMEOUT: Duration = Duration::from_secs(120);

impl ControlPlane {
    /// Stops kube-apiserver and etcd, leaves them down for `down_for`, then starts etcd and
    /// kube-apiserver again and waits until the API server is ready.
    pub(crate) fn restart(&self, down_for: Duration) -> Result<()> {
        let state = self
            .state()
            .context("no control plane is recorded here: run `cargo xtask cluster up` first")?;
        // The ports and paths the cluster was started with, whatever this shell says.
        let options = state.options.clone();
        let binaries = build::ensure(&self.ws, &self.build_spec(), false)?;
        let run_dir = self.layout.run_dir();
        let records = process::records(&run_dir)?;
        for name in ["kube-apiserver", "etcd"] {
            if let Some(record) = records.iter().find(|r| r.name == name) {
                output::info(format!("stopping {name} (pid {})", record.pid));
                record
                    .stop(STOP_GRACE)
                    .with_context(|| format!("cannot stop {name}"))?;
            }
        }
        if !down_for.is_zero() {
            output::info(format!(
                "leaving them down for {}",
                output::elapsed(down_for)
            ));
            std::thread::sleep(down_for);
        }
        let started = Instant::now();
        let prober = Prober::new(&self.layout.pki().ca.cert, &state.identities.admin.token)?;
        interrupt::check()?;
        output::info("starting etcd");
        let mut etcd = process::start(
            "etcd",
            components::etcd(&binaries, &self.layout, &options),
            &self.layout.log("etcd"),
            &run_dir,
        )?;
        until_healthy("etcd", &mut etcd, || {
            probe::etcd_healthy(&prober, options.etcd_port)
        })?;
        output::info("starting kube-apiserver");
        let mut apiserver = process::start(
            "kube-apiserver",
            components::apiserver(&binaries, &self.layout, &options),
            &self.layout.log("kube-apiserver"),
            &run_dir,
        )?;
        let readyz = format!("{}/readyz", state.apiserver_url);
        until_healthy("kube-apiserver", &mut apiserver, || {
            prober.expect_ok(&readyz)
        })?;
        output::step(format!(
            "etcd and kube-apiserver restarted in {}",
            output::elapsed(started.elapsed())
        ));
        Ok(())
    }
}

fn until_healthy(
    name: &str,
    started: &mut process::Started,
    mut probe: impl FnMut() -> Result<()>,
) -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        interrupt::check()?;
        let Err(last) = probe() else {
            return Ok(());
        };
        if let Some(how) = started.exited() {
            bail!(
                "{name} exited ({how}) while restarting; see {}",
                started.record().log.display()
            );
        }
        if Instant::now() > deadline {
            bail!("{name} is not healthy {START_TIMEOUT:?} after its restart: {last:#}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
