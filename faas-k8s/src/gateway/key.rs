//! [`FunctionKey`]: a function named by namespace and name.

use std::fmt;

/// A function on the cluster: the namespace and the name of its Function (and
/// of the Deployment and Service the operator writes for it).
///
/// Gateway routes name a function OpenFaaS's way, `name` or `name.namespace`;
/// [`parse`](Self::parse) reads that form.
///
/// ```
/// use faas_k8s::gateway::FunctionKey;
///
/// let key = FunctionKey::parse("hello.team-a", "default").unwrap();
/// assert_eq!(key, FunctionKey::new("team-a", "hello"));
/// assert_eq!(key.to_string(), "team-a/hello");
/// assert_eq!(FunctionKey::parse("hello", "default").unwrap().namespace(), "default");
/// assert!(FunctionKey::parse("Hello!", "default").is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionKey {
    namespace: String,
    name: String,
}

impl FunctionKey {
    /// The function `name` in `namespace`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        FunctionKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// Reads `name` or `name.namespace`, with `default_namespace` for the first
    /// form; `None` when either part is not a valid Kubernetes name (a DNS-1123
    /// label: lower-case letters, digits and `-`, at most 63 characters).
    pub fn parse(text: &str, default_namespace: &str) -> Option<Self> {
        let (name, namespace) = match text.split_once('.') {
            Some((name, namespace)) => (name, namespace),
            None => (text, default_namespace),
        };
        (is_dns_label(name) && is_dns_label(namespace)).then(|| FunctionKey::new(namespace, name))
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for FunctionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Whether `text` is a DNS-1123 label.
pub(crate) fn is_dns_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openfaas_names() {
        assert_eq!(
            FunctionKey::parse("a-1", "ns"),
            Some(FunctionKey::new("ns", "a-1"))
        );
        assert_eq!(
            FunctionKey::parse("a.b", "ns"),
            Some(FunctionKey::new("b", "a"))
        );
        for bad in [
            "",
            ".",
            "a.",
            ".b",
            "-a",
            "a-",
            "a.b.c",
            "A",
            "a_b",
            &"x".repeat(64),
        ] {
            assert_eq!(FunctionKey::parse(bad, "ns"), None, "{bad:?}");
        }
    }
}
