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

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error shown with its sources on one line, `what failed: why: root cause`, leaving out a
/// source whose text the line already holds (errors that repeat their source in their own
/// message).
///
/// ```
/// use faas_k8s::error::ErrorChain;
///
/// let io = std::io::Error::other("connection refused");
/// let error = faas_k8s::Error::Tls {
///     context: "reading the client CA".into(),
///     source: Box::new(io),
/// };
/// assert_eq!(
///     ErrorChain(&error).to_string(),
///     "kubelet API TLS set-up failed: reading the client CA: connection refused"
/// );
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'a));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.contains(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            source = cause.source();
        }
        f.write_str(&text)
    }
}
