//! [`ProviderError`]: what a [`Provider`](super::Provider) operation fails with, in kinds a
//! caller can match on whatever the platform.

use super::FunctionRef;
use crate::error::{BoxError, Error, ErrorKind, FunctionError};

/// Why a [`Provider`](super::Provider) operation failed.
///
/// The variants are the same for every provider, so code written against one (a CLI, a test
/// suite) handles the others: match on [`NotFound`](Self::NotFound) to create what is missing,
/// on [`Conflict`](Self::Conflict) to update instead, on [`Unavailable`](Self::Unavailable) to
/// retry later.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// No such function is deployed.
    #[error("function {function} not found")]
    NotFound {
        /// The function asked for.
        function: FunctionRef,
    },
    /// The function exists already, or changed meanwhile.
    #[error("function {function} conflicts: {message}")]
    Conflict {
        /// The function.
        function: FunctionRef,
        /// What conflicts.
        message: String,
    },
    /// The caller (or the provider's identity) is not allowed to do this.
    #[error("forbidden: {message}")]
    Forbidden {
        /// What was refused, as the platform says it.
        message: String,
    },
    /// The request is not valid: a malformed deployment, an image the catalogue does not hold.
    #[error("invalid request: {message}")]
    Invalid {
        /// What is wrong.
        message: String,
    },
    /// The function cannot become ready until something is fixed (a missing Secret, an image
    /// that cannot run, a refused write).
    #[error("function {function} is not ready ({reason}): {message}")]
    NotReady {
        /// The function.
        function: FunctionRef,
        /// The platform's reason, e.g. `SecretMissing`.
        reason: String,
        /// What to do about it.
        message: String,
    },
    /// The platform cannot be reached or is not serving now; trying again later may work.
    #[error("unavailable: {message}")]
    Unavailable {
        /// What was being done.
        message: String,
        /// The underlying failure.
        #[source]
        source: Option<BoxError>,
    },
    /// An operation this provider does not support.
    #[error("unsupported: {operation}")]
    Unsupported {
        /// What was asked for.
        operation: String,
    },
    /// Anything else the platform reported.
    #[error("provider failed: {message}")]
    Failed {
        /// What was being done.
        message: String,
        /// The underlying failure.
        #[source]
        source: Option<BoxError>,
    },
}

impl ProviderError {
    /// [`ProviderError::NotFound`] for `function`.
    pub fn not_found(function: &FunctionRef) -> Self {
        ProviderError::NotFound {
            function: function.clone(),
        }
    }

    /// [`ProviderError::Failed`] with a message and a cause.
    pub fn failed(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        ProviderError::Failed {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// [`ProviderError::Unavailable`] with a message and a cause.
    pub fn unavailable(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        ProviderError::Unavailable {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// The same failure in `namespace`: `faas-core`'s own errors name functions without a
    /// namespace.
    pub fn from_core(error: Error, namespace: &str) -> Self {
        match error {
            Error::UnknownFunction { name } => ProviderError::NotFound {
                function: FunctionRef::new(namespace, name),
            },
            Error::DuplicateFunction { name } => ProviderError::Conflict {
                function: FunctionRef::new(namespace, name),
                message: "a function of this name is already deployed; update it instead"
                    .to_owned(),
            },
            Error::NotInCatalogue { name } => ProviderError::Invalid {
                message: format!("no function named `{name}` in the catalogue"),
            },
            Error::InvalidDefinition { name, reason } => ProviderError::Invalid {
                message: format!("invalid definition of `{name}`: {reason}"),
            },
            Error::Unsupported { operation } => ProviderError::Unsupported { operation },
            Error::ShuttingDown => ProviderError::Unavailable {
                message: "the host is shutting down".to_owned(),
                source: None,
            },
            other => ProviderError::Failed {
                message: other.to_string(),
                source: Some(Box::new(other)),
            },
        }
    }
}

impl From<ProviderError> for FunctionError {
    /// A provider failure met while calling a function, as the call's error.
    fn from(error: ProviderError) -> Self {
        let kind = match &error {
            ProviderError::NotFound { .. } => ErrorKind::NotFound,
            ProviderError::Invalid { .. } | ProviderError::Conflict { .. } => ErrorKind::BadInput,
            ProviderError::Unavailable { .. } | ProviderError::NotReady { .. } => {
                ErrorKind::Unavailable
            }
            _ => ErrorKind::Internal,
        };
        FunctionError::new(kind, error.to_string()).with_source(error)
    }
}
