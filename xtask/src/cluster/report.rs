//! `status` and `env`: what a running cluster looks like from outside.

use std::path::Path;

use anyhow::{Result, bail};

use super::control_plane::{COMPONENTS, ControlPlane, State};
use super::identity::{RESTRICTED_GROUP, RESTRICTED_USER};
use super::probe::{self, Prober};
use crate::process;

/// `println!` that stops quietly when stdout is gone (`status | head`).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

impl ControlPlane {
    /// Prints each component's process and health; fails unless all four
    /// are healthy.
    pub(crate) fn status(&self) -> Result<()> {
        let Some(state) = self.state() else {
            bail!("no control plane is up: run `cargo xtask cluster up`");
        };
        let records = process::records(&self.layout.run_dir())?;
        let prober = Prober::new(&self.layout.pki().ca.cert, &state.identities.admin.token)?;
        let options = &state.options;
        let mut healthy = true;
        say!(
            "Kubernetes {} (etcd {}) at {}",
            options.kubernetes_version,
            state.etcd_version,
            state.apiserver_url
        );
        for name in COMPONENTS {
            let (url, probed) = probe_component(&prober, &state, name);
            let record = records.iter().find(|record| record.name == name);
            let process = match record {
                Some(record) if record.is_alive() => format!("pid {}", record.pid),
                Some(record) => format!("pid {} gone", record.pid),
                None => "not started".to_owned(),
            };
            let health = match probed {
                Ok(()) => "healthy".to_owned(),
                Err(err) => {
                    healthy = false;
                    format!("unhealthy: {err:#}")
                }
            };
            say!("  {name:<24} {process:<14} {url:<40} {health}");
        }
        say!("  kubeconfig: {}", self.layout.kubeconfig().display());
        say!("  logs:       {}", self.layout.logs_dir().display());
        if healthy {
            Ok(())
        } else {
            bail!("the control plane is not healthy; see the logs above")
        }
    }

    /// The environment that points tests (and the virtual node) at the
    /// running cluster; empty when none is up.
    pub(crate) fn env_vars(&self) -> Vec<(String, String)> {
        let Some(state) = self.state() else {
            return Vec::new();
        };
        let pki = self.layout.pki();
        let path = |p: &Path| p.display().to_string();
        vec![
            ("KUBECONFIG".into(), path(&self.layout.kubeconfig())),
            (
                "FAAS_RESTRICTED_KUBECONFIG".into(),
                path(&self.layout.restricted_kubeconfig()),
            ),
            ("FAAS_RESTRICTED_USER".into(), RESTRICTED_USER.into()),
            ("FAAS_RESTRICTED_GROUP".into(), RESTRICTED_GROUP.into()),
            ("FAAS_APISERVER_URL".into(), state.apiserver_url.clone()),
            ("FAAS_CLUSTER_DIR".into(), path(self.layout.dir())),
            ("FAAS_CLUSTER_CA".into(), path(&pki.ca.cert)),
            ("FAAS_CLUSTER_CA_KEY".into(), path(&pki.ca.key)),
            ("FAAS_KUBELET_CERT".into(), path(&pki.kubelet.cert)),
            ("FAAS_KUBELET_KEY".into(), path(&pki.kubelet.key)),
            (
                "FAAS_APISERVER_KUBELET_CLIENT_CERT".into(),
                path(&pki.apiserver_kubelet_client.cert),
            ),
        ]
    }

    /// Prints `export NAME='value'` lines for a shell to `eval`.
    pub(crate) fn print_env(&self) -> Result<()> {
        let vars = self.env_vars();
        if vars.is_empty() {
            bail!("no control plane is up: run `cargo xtask cluster up`");
        }
        for (name, value) in vars {
            say!("export {name}={}", shell_quote(&value));
        }
        Ok(())
    }
}

/// Probes one component of a recorded cluster: its URL and the answer.
fn probe_component(prober: &Prober, state: &State, name: &str) -> (String, Result<()>) {
    let options = &state.options;
    match name {
        "etcd" => (
            format!("http://127.0.0.1:{}", options.etcd_port),
            probe::etcd_healthy(prober, options.etcd_port),
        ),
        "kube-apiserver" => {
            let url = format!("{}/readyz", state.apiserver_url);
            let probed = prober.expect_ok(&url);
            (url, probed)
        }
        other => {
            let port = if other == "kube-scheduler" {
                options.scheduler_port
            } else {
                options.controller_manager_port
            };
            let url = format!("https://127.0.0.1:{port}/healthz");
            let probed = prober.expect_ok_anonymous(&url);
            (url, probed)
        }
    }
}

/// Quotes `value` for a POSIX shell.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_survives_quotes() {
        assert_eq!(shell_quote("/a b/c"), "'/a b/c'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
