//! [`FunctionRef`]: how a [`Provider`](super::Provider) names a deployed function.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The namespace a function lives in when nothing else is said.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A deployed function's namespace and name.
///
/// ```
/// use faas_core::FunctionRef;
///
/// let hello = FunctionRef::new("team-a", "hello");
/// assert_eq!(hello.to_string(), "team-a/hello");
/// assert_eq!(FunctionRef::named("hello").namespace, "default");
/// assert_eq!("team-a/hello".parse::<FunctionRef>().unwrap(), hello);
/// assert_eq!("hello".parse::<FunctionRef>().unwrap(), FunctionRef::named("hello"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FunctionRef {
    /// The namespace.
    pub namespace: String,
    /// The name, unique in its namespace.
    pub name: String,
}

impl FunctionRef {
    /// Function `name` in `namespace`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        FunctionRef {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// Function `name` in the [`DEFAULT_NAMESPACE`].
    pub fn named(name: impl Into<String>) -> Self {
        Self::new(DEFAULT_NAMESPACE, name)
    }
}

impl fmt::Display for FunctionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Why text is not a [`FunctionRef`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a function reference: write `name` or `namespace/name`")]
pub struct InvalidFunctionRef(String);

impl std::str::FromStr for FunctionRef {
    type Err = InvalidFunctionRef;

    /// `name` (in the default namespace) or `namespace/name`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidFunctionRef(text.to_owned());
        match text.split_once('/') {
            None if !text.is_empty() => Ok(Self::named(text)),
            Some((namespace, name))
                if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
            {
                Ok(Self::new(namespace, name))
            }
            _ => Err(invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_references_are_refused() {
        for bad in ["", "/", "a/", "/b", "a/b/c"] {
            assert!(bad.parse::<FunctionRef>().is_err(), "{bad:?}");
        }
    }
}
