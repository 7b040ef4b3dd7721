//! The files of a running cluster, all under `target/cluster/`.

use std::path::{Path, PathBuf};

use super::pki::Pki;

/// Paths under the cluster directory (`target/cluster`).
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// The layout rooted at `dir`.
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// `target/cluster`.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The admin kubeconfig: `target/cluster/kubeconfig`.
    pub(crate) fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// The kubeconfig of the restricted, non-admin identity.
    pub(crate) fn restricted_kubeconfig(&self) -> PathBuf {
        self.dir.join("restricted.kubeconfig")
    }

    /// Certificates and keys.
    pub(crate) fn pki_dir(&self) -> PathBuf {
        self.dir.join("pki")
    }

    /// The PKI's file names.
    pub(crate) fn pki(&self) -> Pki {
        Pki::at(&self.pki_dir())
    }

    /// The components' own kubeconfigs and the token file.
    pub(crate) fn auth_dir(&self) -> PathBuf {
        self.dir.join("auth")
    }

    /// The API server's `--token-auth-file`.
    pub(crate) fn token_file(&self) -> PathBuf {
        self.auth_dir().join("tokens.csv")
    }

    /// One log file per component.
    pub(crate) fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// The log file of `component`.
    pub(crate) fn log(&self, component: &str) -> PathBuf {
        self.logs_dir().join(format!("{component}.log"))
    }

    /// Pid files.
    pub(crate) fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// etcd's data directory.
    pub(crate) fn etcd_data(&self) -> PathBuf {
        self.dir.join("etcd")
    }

    /// What `up` recorded about the running cluster.
    pub(crate) fn state_file(&self) -> PathBuf {
        self.dir.join("cluster.json")
    }
}
