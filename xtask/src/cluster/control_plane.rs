//! The control plane as a [`Service`]: start the four components in order,
//! wait until each is healthy, record them, stop them again.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};

use super::Options;
use super::build::{self, Binaries, BuildSpec};
use super::components;
use super::identity::Identities;
use super::layout::Layout;
use super::pki::Pki;
use super::probe::{self, Prober};
use crate::process::{self, Started};
use crate::service::Service;
use crate::workspace::Workspace;
use crate::{interrupt, output};

/// How long a component gets to exit on SIGTERM before SIGKILL.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(15);
pub(super) const COMPONENTS: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// etcd, kube-apiserver, kube-controller-manager and kube-scheduler on
/// loopback, with their state under `target/cluster/`.
#[derive(Clone, Debug)]
pub(crate) struct ControlPlane {
    pub(super) ws: Workspace,
    pub(super) options: Options,
    pub(super) layout: Layout,
}

/// What `up` records in `target/cluster/cluster.json` for `status`, `env`,
/// `down` and later runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct State {
    pub(super) options: Options,
    pub(super) binaries: PathBuf,
    pub(super) etcd_version: String,
    pub(super) apiserver_url: String,
    pub(super) identities: Identities,
}

impl ControlPlane {
    /// The control plane of workspace `ws`, configured by `options`.
    pub(crate) fn new(ws: &Workspace, options: Options) -> Self {
        // A relative directory is relative to the workspace root, as
        // `target/` is; `target/cluster` follows CARGO_TARGET_DIR.
        let dir = if options.cluster_dir == Path::new("target/cluster") {
            ws.target().join("cluster")
        } else {
            ws.root().join(&options.cluster_dir)
        };
        Self {
            layout: Layout::new(dir),
            ws: ws.clone(),
            options,
        }
    }

    /// The versions to build or find.
    pub(crate) fn build_spec(&self) -> BuildSpec {
        BuildSpec {
            kubernetes: self.options.kubernetes_version.clone(),
            etcd: self.options.etcd_version.clone(),
        }
    }

    pub(super) fn state(&self) -> Option<State> {
        serde_json::from_slice(&fs::read(self.layout.state_file()).ok()?).ok()
    }

    /// Builds or finds the binaries, cleans up after an earlier crash, starts
    /// the four components and waits until the cluster is usable. A healthy
    /// cluster that is already up is left as it is.
    pub(crate) fn up(&self) -> Result<()> {
        let binaries = build::ensure(&self.ws, &self.build_spec(), false)?;
        if let Some(state) = self.healthy_state() {
            output::step(format!(
                "the control plane is already up at {}",
                state.apiserver_url
            ));
            return Ok(());
        }
        self.clean_stale()?;
        let result = self.start(&binaries);
        if let Err(err) = &result {
            output::warn(format!(
                "the control plane did not come up ({err:#}); stopping what was started; \
                 logs are in {}",
                self.layout.logs_dir().display()
            ));
            if let Err(stop) = process::stop_recorded(&self.layout.run_dir(), STOP_GRACE) {
                output::warn(format!("{stop:#}"));
            }
        }
        result
    }

    fn start(&self, binaries: &Binaries) -> Result<()> {
        let started_at = Instant::now();
        let options = &self.options;
        let layout = &self.layout;
        for dir in [layout.logs_dir(), layout.auth_dir(), layout.run_dir()] {
            fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let pki = Pki::generate(&layout.pki_dir())?;
        let apiserver_url = format!("https://127.0.0.1:{}", options.apiserver_port);
        let identities = Identities::generate(
            layout.kubeconfig(),
            layout.restricted_kubeconfig(),
            &layout.auth_dir(),
        )?;
        identities.write(&layout.token_file(), &apiserver_url, &pki.ca.cert)?;
        let prober = Prober::new(&pki.ca.cert, &identities.admin.token)?;
        let deadline = started_at + Duration::from_secs(options.start_timeout_secs);
        let mut running = Vec::new();

        output::step(format!(
            "starting the control plane (Kubernetes {}, etcd {}); logs in {}",
            options.kubernetes_version,
            binaries.etcd_version,
            layout.logs_dir().display()
        ));
        running.push(self.launch("etcd", components::etcd(binaries, layout, options))?);
        wait(&mut running, "etcd", deadline, || {
            probe::etcd_healthy(&prober, options.etcd_port)
        })?;

        running.push(self.launch(
            "kube-apiserver",
            components::apiserver(binaries, layout, options),
        )?);
        let readyz = format!("{apiserver_url}/readyz");
        wait(&mut running, "kube-apiserver", deadline, || {
            prober.expect_ok(&readyz)
        })?;

        running.push(self.launch(
            "kube-controller-manager",
            components::controller_manager(binaries, layout, options, &identities),
        )?);
        running.push(self.launch(
            "kube-scheduler",
            components::scheduler(binaries, layout, options, &identities),
        )?);
        let cm = format!(
            "https://127.0.0.1:{}/healthz",
            options.controller_manager_port
        );
        wait(&mut running, "kube-controller-manager", deadline, || {
            prober.expect_ok_anonymous(&cm)
        })?;
        let scheduler = format!("https://127.0.0.1:{}/healthz", options.scheduler_port);
        wait(&mut running, "kube-scheduler", deadline, || {
            prober.expect_ok_anonymous(&scheduler)
        })?;

        let default_sa =
            format!("{apiserver_url}/api/v1/namespaces/default/serviceaccounts/default");
        wait(&mut running, "the default ServiceAccount", deadline, || {
            let answer = prober.get(&default_sa)?;
            if answer.status == 200 {
                Ok(())
            } else {
                bail!("GET {default_sa}: {}", answer.status)
            }
        })?;

        let state = State {
            options: options.clone(),
            binaries: binaries.dir().to_path_buf(),
            etcd_version: binaries.etcd_version.clone(),
            apiserver_url,
            identities,
        };
        fs::write(layout.state_file(), serde_json::to_vec_pretty(&state)?)?;
        output::step(format!(
            "control plane up in {} at {}",
            output::elapsed(started_at.elapsed()),
            state.apiserver_url
        ));
        output::info(format!("KUBECONFIG={}", layout.kubeconfig().display()));
        Ok(())
    }

    fn launch(&self, name: &str, cmd: std::process::Command) -> Result<Started> {
        interrupt::check()?;
        output::info(format!("starting {name}"));
        process::start(name, cmd, &self.layout.log(name), &self.layout.run_dir())
    }

    pub(super) fn remove_state(&self, with_logs: bool) -> Result<()> {
        let layout = &self.layout;
        let mut doomed = vec![
            layout.state_file(),
            layout.etcd_data(),
            layout.pki_dir(),
            layout.auth_dir(),
            layout.run_dir(),
            layout.kubeconfig(),
            layout.restricted_kubeconfig(),
        ];
        if with_logs {
            doomed.push(layout.logs_dir());
        }
        for path in doomed {
            let removed = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match removed {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(err).with_context(|| format!("cannot remove {}", path.display()));
                }
            }
        }
        Ok(())
    }

    /// Stops only the processes `up` recorded, by process group, and removes
    /// the cluster's state; the logs stay for reading.
    pub(crate) fn down(&self) -> Result<()> {
        let records = process::records(&self.layout.run_dir())?;
        if records.is_empty() {
            output::step("no control plane processes are recorded; removing leftover state");
        }
        for record in records.iter().rev() {
            if record.is_alive() {
                output::info(format!("stopping {} (pid {})", record.name, record.pid));
            }
        }
        process::stop_recorded(&self.layout.run_dir(), STOP_GRACE)?;
        self.remove_state(false)?;
        output::step(format!(
            "control plane down; logs kept in {}",
            self.layout.logs_dir().display()
        ));
        Ok(())
    }

    /// The recorded state, when all four components run and the API server
    /// is ready.
    fn healthy_state(&self) -> Option<State> {
        let state = self.state()?;
        let records = process::records(&self.layout.run_dir()).ok()?;
        let all_alive = COMPONENTS.iter().all(|name| {
            records
                .iter()
                .any(|record| record.name == *name && record.is_alive())
        });
        if !all_alive {
            return None;
        }
        let prober = Prober::new(&self.layout.pki().ca.cert, &state.identities.admin.token).ok()?;
        prober
            .expect_ok(&format!("{}/readyz", state.apiserver_url))
            .ok()?;
        Some(state)
    }
}

impl Service for ControlPlane {
    fn name(&self) -> &str {
        "cluster"
    }

    fn is_running(&self) -> bool {
        self.healthy_state().is_some()
    }

    fn start(&self) -> Result<()> {
        self.up()
    }

    fn stop(&self) -> Result<()> {
        self.down()
    }

    fn env(&self) -> Vec<(String, String)> {
        self.env_vars()
    }

    fn logs(&self) -> Vec<PathBuf> {
        COMPONENTS
            .iter()
            .map(|name| self.layout.log(name))
            .collect()
    }
}

/// Polls `probe` until it succeeds, failing early when a started component
/// exits (with the end of its log) and at `deadline`.
fn wait(
    running: &mut [Started],
    what: &str,
    deadline: Instant,
    mut probe: impl FnMut() -> Result<()>,
) -> Result<()> {
    let since = Instant::now();
    loop {
        interrupt::check()?;
        for component in running.iter_mut() {
            if let Some(status) = component.exited() {
                let record = component.record();
                bail!(
                    "{} exited ({status}) while waiting for {what}; end of {}:\n{}",
                    record.name,
                    record.log.display(),
                    log_tail(&record.log, 40)
                );
            }
        }
        let last = match probe() {
            Ok(()) => {
                output::info(format!(
                    "{what} ready after {}",
                    output::elapsed(since.elapsed())
                ));
                return Ok(());
            }
            Err(err) => err,
        };
        if Instant::now() >= deadline {
            let logs: Vec<String> = running
                .iter()
                .map(|c| {
                    let record = c.record();
                    format!(
                        "end of {}:\n{}",
                        record.log.display(),
                        log_tail(&record.log, 20)
                    )
                })
                .collect();
            bail!(
                "{what} was not ready within the start timeout ({last:#}); \
                 raise it with --start-timeout on a slow machine\n{}",
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
