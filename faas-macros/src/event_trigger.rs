//! The event source triggers of `trigger = ..`: `nats(..)`, `redis(..)`,
//! `postgres(..)`, `storage(..)` and `kube(..)`, each a list of
//! `key = "value"` settings checked at compile time.

use proc_macro2::Span;
use syn::ext::IdentExt as _;
use syn::parse::ParseStream;
use syn::{Ident, Token};

use crate::options::string_value;
use crate::suggest;

/// An event source trigger.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EventSource {
    /// A NATS JetStream stream.
    Nats {
        stream: String,
        subject: Option<String>,
        consumer: Option<String>,
    },
    /// A Redis stream.
    Redis {
        stream: String,
        group: Option<String>,
    },
    /// A PostgreSQL table's row changes.
    Postgres { table: String },
    /// A watched directory.
    Storage { dir: String },
    /// Changes of Kubernetes objects.
    Kube {
        api_version: String,
        kind: String,
        namespace: Option<String>,
        labels: Option<String>,
        fields: Option<String>,
    },
}

/// What each source takes: its settings (required ones first) and an example.
fn shape(
    source: &str,
) -> (
    &'static [&'static str],
    &'static [&'static str],
    &'static str,
) {
    match source {
        "nats" => (
            &["stream"],
            &["subject", "consumer"],
            "trigger = nats(stream = \"ORDERS\", subject = \"orders.created\", consumer = \"billing\")",
        ),
        "redis" => (
            &["stream"],
            &["group"],
            "trigger = redis(stream = \"signups\", group = \"mailer\")",
        ),
        "postgres" => (&["table"], &[], "trigger = postgres(table = \"orders\")"),
        "kube" => (
            &["api_version", "kind"],
            &["namespace", "labels", "fields"],
            "trigger = kube(api_version = \"apps/v1\", kind = \"Deployment\", namespace = \"shop\", labels = \"app=web\")",
        ),
        _ => (&["dir"], &[], "trigger = storage(dir = \"/srv/uploads\")"),
    }
}

/// Parses the parenthesised settings of the event source `source`.
pub(crate) fn parse(source: &str, span: Span, input: ParseStream<'_>) -> syn::Result<EventSource> {
    let (required, optional, example) = shape(source);
    if !input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            span,
            format!("a `{source}` trigger needs its settings, written `{example}`"),
        ));
    }
    let content;
    syn::parenthesized!(content in input);
    let mut values: Vec<(String, syn::LitStr, Span)> = Vec::new();
    while !content.is_empty() {
        let key = content.call(Ident::parse_any)?;
        let name = key.unraw().to_string();
        if !required.contains(&name.as_str()) && !optional.contains(&name.as_str()) {
            let known: Vec<&str> = required.iter().chain(optional).copied().collect();
            let hint = suggest::did_you_mean(
                &name,
                &known,
                &[
                    ("topic", "subject"),
                    ("directory", "dir"),
                    ("path", "dir"),
                    ("apiVersion", "api_version"),
                    ("version", "api_version"),
                    ("group", "api_version"),
                    ("resource", "kind"),
                    ("ns", "namespace"),
                    ("label_selector", "labels"),
                    ("selector", "labels"),
                    ("field_selector", "fields"),
                ],
            );
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown `{source}` trigger setting `{name}`.{hint} It takes {}, written `{example}`",
                    suggest::list(&known)
                ),
            ));
        }
        if values.iter().any(|(seen, _, _)| *seen == name) {
            return Err(syn::Error::new(
                key.span(),
                format!("`{name}` is given twice in this trigger; keep one"),
            ));
        }
        content.parse::<Token![=]>()?;
        let lit = string_value(&content, example)?;
        check(source, &name, &lit.value()).map_err(|reason| syn::Error::new(lit.span(), reason))?;
        values.push((name, lit, key.span()));
        if !content.is_empty() {
            content.parse::<Token![,]>()?;
        }
    }
    for needed in required {
        if !values.iter().any(|(name, _, _)| name == needed) {
            return Err(syn::Error::new(
                span,
                format!("a `{source}` trigger needs `{needed}`, written `{example}`"),
            ));
        }
    }
    let get = |key: &str| {
        values
            .iter()
            .find(|(name, _, _)| name == key)
            .map(|(_, lit, _)| lit.value())
    };
    let required_value = |key: &str| get(key).unwrap_or_default();
    Ok(match source {
        "nats" => EventSource::Nats {
            stream: required_value("stream"),
            subject: get("subject"),
            consumer: get("consumer"),
        },
        "redis" => EventSource::Redis {
            stream: required_value("stream"),
            group: get("group"),
        },
        "postgres" => EventSource::Postgres {
            table: required_value("table"),
        },
        "kube" => EventSource::Kube {
            api_version: required_value("api_version"),
            kind: required_value("kind"),
            namespace: get("namespace"),
            labels: get("labels"),
            fields: get("fields"),
        },
        _ => EventSource::Storage {
            dir: required_value("dir"),
        },
    })
}

/// Checks one setting's value.
fn check(source: &str, key: &str, value: &str) -> Result<(), String> {
    match (source, key) {
        ("nats", "stream" | "consumer") => {
            if value.is_empty()
                || value
                    .chars()
                    .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
            {
                return Err(format!(
                    "\"{value}\" is not a NATS {key} name: no whitespace, `.`, `*`, `>`, `/` or `\\`"
                ));
            }
        }
        ("nats", "subject") => {
            let tokens: Vec<&str> = value.split('.').collect();
            for (index, token) in tokens.iter().enumerate() {
                let last = index + 1 == tokens.len();
                if token.is_empty()
                    || token.chars().any(char::is_whitespace)
                    || (token.contains('*') && *token != "*")
                    || (token.contains('>') && (*token != ">" || !last))
                {
                    return Err(format!(
                        "\"{value}\" is not a NATS subject: dot-separated tokens without \
                         whitespace, `*` as a whole token, `>` only as the last, e.g. \"orders.*.created\""
                    ));
                }
            }
        }
        ("redis", _) => {
            if value.is_empty() || value.chars().any(char::is_whitespace) {
                return Err(format!(
                    "\"{value}\" is not a Redis {key}: it needs a name without whitespace"
                ));
            }
        }
        ("postgres", _) => {
            let identifier = |part: &str| {
                let mut chars = part.chars();
                chars
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            };
            let parts: Vec<&str> = value.split('.').collect();
            if parts.len() > 2 || !parts.iter().all(|part| identifier(part)) {
                return Err(format!(
                    "\"{value}\" is not a table name: write `table` or `schema.table` of letters, digits and `_`"
                ));
            }
        }
        ("kube", key) => check_kube(key, value)?,
        _ => {
            if value.trim().is_empty() {
                return Err(
                    "the directory is empty: write a path such as \"/srv/uploads\"".to_owned(),
                );
            }
        }
    }
    Ok(())
}

/// Checks one setting of a `kube` trigger (the API server checks the
/// selectors' grammar and the kind's existence when the trigger starts).
fn check_kube(key: &str, value: &str) -> Result<(), String> {
    let label = |text: &str| {
        !text.is_empty()
            && text.len() <= 63
            && text
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !text.starts_with('-')
            && !text.ends_with('-')
    };
    let version = |text: &str| {
        text.strip_prefix('v').is_some_and(|rest| {
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            let tail = &rest[digits..];
            digits > 0
                && (tail.is_empty()
                    || ["alpha", "beta"].iter().any(|stage| {
                        tail.strip_prefix(stage)
                            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
                    }))
        })
    };
    match key {
        "api_version" => {
            let parts: Vec<&str> = value.split('/').collect();
            let ok = match parts.as_slice() {
                [v] => version(v),
                [group, v] => group.split('.').all(label) && version(v),
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "\"{value}\" is not an API version: write \"v1\" for the core group or \"GROUP/VERSION\", e.g. \"apps/v1\""
                ));
            }
        }
        "kind" => {
            let mut chars = value.chars();
            if !chars.next().is_some_and(|c| c.is_ascii_uppercase())
                || !chars.all(|c| c.is_ascii_alphanumeric())
            {
                return Err(format!(
                    "\"{value}\" is not a kind: write it as in `kind:`, in CamelCase and singular, e.g. \"Deployment\""
                ));
            }
        }
        "namespace" => {
            if !label(value) {
                return Err(format!(
                    "\"{value}\" is not a namespace name: lower-case letters, digits and `-`, at most 63"
                ));
            }
        }
        _ => {
            if value.trim().is_empty() {
                return Err(format!(
                    "the `{key}` selector is empty: leave it out to watch every object"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use quote::quote;
    use syn::parse::Parser as _;

    use super::*;

    fn source(name: &'static str, tokens: proc_macro2::TokenStream) -> Result<EventSource, String> {
        (move |input: ParseStream<'_>| parse(name, Span::call_site(), input))
            .parse2(tokens)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn settings_are_read() {
        assert_eq!(
            source(
                "nats",
                quote!((stream = "ORDERS", subject = "orders.*.created"))
            ),
            Ok(EventSource::Nats {
                stream: "ORDERS".into(),
                subject: Some("orders.*.created".into()),
                consumer: None
            })
        );
        assert_eq!(
            source(
                "kube",
                quote!((
                    api_version = "apps/v1",
                    kind = "Deployment",
                    labels = "app=web"
                ))
            ),
            Ok(EventSource::Kube {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: None,
                labels: Some("app=web".into()),
                fields: None
            })
        );
        assert_eq!(
            source("postgres", quote!((table = "shop.orders"))),
            Ok(EventSource::Postgres {
                table: "shop.orders".into()
            })
        );
    }

    #[test]
    fn mistakes_are_explained() {
        let cases = [
            (
                "nats",
                quote!((stream = "S", subject = "a..b")),
                "is not a NATS subject",
            ),
            ("nats", quote!((subject = "a")), "needs `stream`"),
            (
                "nats",
                quote!((stream = "S", topic = "a")),
                "Did you mean `subject`?",
            ),
            (
                "nats",
                quote!((stream = "A.B")),
                "is not a NATS stream name",
            ),
            ("redis", quote!((stream = "s", stream = "t")), "given twice"),
            (
                "postgres",
                quote!((table = "orders; drop")),
                "is not a table name",
            ),
            ("storage", quote!((path = "/x")), "Did you mean `dir`?"),
            ("kube", quote!((kind = "Deployment")), "needs `api_version`"),
            (
                "kube",
                quote!((api_version = "apps/v1", kind = "deployments")),
                "is not a kind",
            ),
            (
                "kube",
                quote!((api_version = "apps", kind = "Deployment")),
                "is not an API version",
            ),
            (
                "kube",
                quote!((api_version = "v1", kind = "Pod", selector = "a=b")),
                "Did you mean `labels`?",
            ),
            (
                "kube",
                quote!((api_version = "v1", kind = "Pod", namespace = "Shop")),
                "is not a namespace name",
            ),
            (
                "kube",
                quote!((api_version = "v1", kind = "Pod", fields = " ")),
                "selector is empty",
            ),
            ("storage", quote!(), "needs its settings"),
        ];
        for (name, tokens, expected) in cases {
            let text = tokens.to_string();
            let error = source(name, tokens).unwrap_err();
            assert!(error.contains(expected), "{name}{text}: {error}");
        }
    }
}
