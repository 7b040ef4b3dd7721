//! The errors of this crate.

use crate::node::backend::BackendError;

/// Everything that can go wrong in faas-k8s.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request to the Kubernetes API server failed.
    #[error("Kubernetes API request failed: {context}")]
    Kube {
        /// What was being done.
        context: String,
        /// The client's error.
        #[source]
        source: Box<kube::Error>,
    },
    /// A pod backend failed.
    #[error("pod backend failed: {context}")]
    Backend {
        /// What was being done.
        context: String,
        /// The backend's error.
        #[source]
        source: Box<BackendError>,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The TLS set-up of the kubelet API (certificates, keys, client CA) is unusable.
    #[error("kubelet API TLS set-up failed: {context}")]
    Tls {
        /// What was being loaded or built.
        context: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A task of a running virtual node (its Lease, its Node status, its pod watcher, its kubelet
    /// API) ended while the node was meant to run; the node stopped and reported itself not ready.
    #[error("the virtual node stopped: its {task} task ended ({reason})")]
    NodeTaskEnded {
        /// Which task.
        task: String,
        /// How it ended (returned, panicked with a message).
        reason: String,
    },
    /// An I/O operation failed.
    #[error("I/O error: {context}")]
    Io {
        /// What was being done.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn kube(context: impl Into<String>, source: kube::Error) -> Self {
        Self::Kube {
            context: context.into(),
            source: Box::new(source),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn tls(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Tls {
            context: context.into(),
            source: source.into(),
        }
    }
}

/// An error and its sources on one line, each cause once (a message that already quotes its
/// source does not repeat it).
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
