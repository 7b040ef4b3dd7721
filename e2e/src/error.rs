//! The harness's errors.

use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::NO_CONTROL_PLANE;

/// What can go wrong in the harness.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No control plane answers at the configured kubeconfig.
    #[error("{NO_CONTROL_PLANE} ({reason})")]
    NoControlPlane {
        /// What was tried and how it failed.
        reason: String,
    },
    /// A kubeconfig could not be read or used.
    #[error("cannot use kubeconfig {}", path.display())]
    Kubeconfig {
        /// The kubeconfig file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A Kubernetes API call failed.
    #[error("Kubernetes API call failed")]
    Kube(#[from] kube::Error),
    /// A test fixture (a resource definition, an identity, a node) could not be set up.
    #[error("test set-up failed: {0}")]
    Setup(String),
    /// The watch behind a wait failed.
    #[error("watching for a condition failed")]
    Watch(#[from] kube::runtime::wait::Error),
    /// A wait ran out of time.
    #[error("timed out after {}s waiting for {what}{}", after.as_secs(), last_seen(last))]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it was awaited.
        after: Duration,
        /// What the last poll saw, if anything.
        last: Option<String>,
    },
}

fn last_seen(last: &Option<String>) -> String {
    last.as_ref()
        .map(|seen| format!("; last seen: {seen}"))
        .unwrap_or_default()
}

/// The harness's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
