//! The `trigger = ..` option: `http(path = "..", methods = [..])` and
//! `cron("..", timezone = "..")`.

use proc_macro2::Span;
use syn::ext::IdentExt as _;
use syn::parse::ParseStream;
use syn::punctuated::Punctuated;
use syn::{Ident, LitStr, Token};

use crate::options::string_value;
use crate::suggest;

/// The methods an HTTP trigger may name.
pub(crate) const HTTP_METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

const HTTP_EXAMPLE: &str = "trigger = http(path = \"/hello\", methods = [\"GET\", \"POST\"])";
const CRON_EXAMPLE: &str = "trigger = cron(\"0 */5 * * * *\", timezone = \"Europe/Paris\")";

/// One `trigger = ..` option.
#[derive(Debug)]
pub(crate) struct Trigger {
    /// The span of the trigger's kind (`http` or `cron`).
    pub(crate) span: Span,
    /// What the trigger is.
    pub(crate) kind: TriggerKind,
}

/// The kinds of trigger the attribute knows.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TriggerKind {
    /// An HTTP route.
    Http {
        /// The path; `None` means the default, `/<function name>`.
        path: Option<String>,
        /// The methods; empty means any method.
        methods: Vec<String>,
    },
    /// A cron schedule.
    Cron {
        /// The validated cron expression.
        schedule: String,
        /// An IANA time zone name; `None` means UTC.
        timezone: Option<String>,
    },
    /// An event source (`nats`, `redis`, `postgres`, `storage`, `kube`).
    Event(crate::event_trigger::EventSource),
}

impl Trigger {
    /// Explains why `other` can not be added next to `self`, if it can not.
    pub(crate) fn conflicts_with(&self, other: &Trigger) -> Option<String> {
        (self.kind == other.kind).then(|| {
            "this trigger is given twice with the same settings; remove one of them".to_owned()
        })
    }
}

/// Parses the value of `trigger = `.
pub(crate) fn parse(input: ParseStream<'_>) -> syn::Result<Trigger> {
    let kind = input.call(Ident::parse_any).map_err(|error| {
        syn::Error::new(
            error.span(),
            format!("expected a trigger, written `{HTTP_EXAMPLE}` or `{CRON_EXAMPLE}`"),
        )
    })?;
    let span = kind.span();
    let kind = match kind.unraw().to_string().as_str() {
        "http" => parse_http(input)?,
        "cron" => parse_cron(input, span)?,
        source @ ("nats" | "redis" | "postgres" | "storage" | "kube") => {
            TriggerKind::Event(crate::event_trigger::parse(source, span, input)?)
        }
        other => {
            let hint = suggest::did_you_mean(
                other,
                &[
                    "http", "cron", "nats", "redis", "postgres", "storage", "kube",
                ],
                &[
                    ("https", "http"),
                    ("get", "http"),
                    ("post", "http"),
                    ("route", "http"),
                    ("schedule", "cron"),
                    ("timer", "cron"),
                    ("every", "cron"),
                    ("kubernetes", "kube"),
                    ("k8s", "kube"),
                ],
            );
            return Err(syn::Error::new(
                span,
                format!(
                    "unknown trigger `{other}`.{hint} Valid triggers are `http` \
                     (`{HTTP_EXAMPLE}`) and `cron` (`{CRON_EXAMPLE}`), and the event \
                     sources `nats`, `redis`, `postgres`, `storage` and `kube`"
                ),
            ));
        }
    };
    Ok(Trigger { span, kind })
}

fn parse_http(input: ParseStream<'_>) -> syn::Result<TriggerKind> {
    let mut path = None;
    let mut methods = None;
    if !input.peek(syn::token::Paren) {
        return Ok(TriggerKind::Http {
            path,
            methods: Vec::new(),
        });
    }
    let content;
    syn::parenthesized!(content in input);
    while !content.is_empty() {
        let key = content.call(Ident::parse_any)?;
        let key_name = key.unraw().to_string();
        if !matches!(key_name.as_str(), "path" | "methods") {
            let hint = suggest::did_you_mean(
                &key_name,
                &["path", "methods"],
                &[("route", "path"), ("url", "path"), ("verbs", "methods")],
            );
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown `http` trigger setting `{key_name}`.{hint} An HTTP trigger \
                     takes `path` and `methods`, written `{HTTP_EXAMPLE}`"
                ),
            ));
        }
        content.parse::<Token![=]>()?;
        let already = match key_name.as_str() {
            "path" => path.replace(parse_path(&content)?).is_some(),
            _ => methods.replace(parse_methods(&content)?).is_some(),
        };
        if already {
            return Err(syn::Error::new(
                key.span(),
                format!("`{key_name}` is given twice in this trigger; keep one"),
            ));
        }
        if !content.is_empty() {
            content.parse::<Token![,]>()?;
        }
    }
    Ok(TriggerKind::Http {
        path,
        methods: methods.unwrap_or_default(),
    })
}

fn parse_path(input: ParseStream<'_>) -> syn::Result<String> {
    let lit = string_value(input, "path = \"/hello\"")?;
    validate_path(&lit.value()).map_err(|reason| syn::Error::new(lit.span(), reason))?;
    Ok(lit.value())
}

/// Checks an HTTP trigger's path.
pub(crate) fn validate_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!(
            "the HTTP path \"{path}\" must start with `/`: write \"/{}\"",
            path.trim_start_matches(' ')
        ));
    }
    if let Some(bad) = path.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "the HTTP path \"{path}\" contains `{}`; percent-encode it or leave it out",
            bad.escape_default()
        ));
    }
    if path.contains(['?', '#']) {
        return Err(format!(
            "the HTTP path \"{path}\" holds a query or a fragment; a route is only the \
             path (the function reads the query from its request)"
        ));
    }
    // The template grammar of the HTTP trigger's router (`{id}`, `{*rest}`).
    let template = match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    };
    matchit::Router::new()
        .insert(template, ())
        .map_err(|error| {
            format!(
                "the HTTP path \"{path}\" is not a route template: {error}; write parameters \
                 as `{{name}}` for one segment or `{{*rest}}` for the rest of the path"
            )
        })?;
    Ok(())
}

fn parse_methods(input: ParseStream<'_>) -> syn::Result<Vec<String>> {
    if !input.peek(syn::token::Bracket) {
        let written = if input.peek(LitStr) {
            let lit: LitStr = input.fork().parse()?;
            format!("`methods = [\"{}\"]`", lit.value())
        } else {
            "`methods = [\"GET\", \"POST\"]`".to_owned()
        };
        return Err(input.error(format!("`methods` is a list of strings, written {written}")));
    }
    let content;
    syn::bracketed!(content in input);
    let lits = Punctuated::<LitStr, Token![,]>::parse_terminated(&content).map_err(|error| {
        syn::Error::new(
            error.span(),
            "`methods` is a list of strings, written `methods = [\"GET\", \"POST\"]`",
        )
    })?;
    let mut methods: Vec<String> = Vec::new();
    for lit in &lits {
        let method = lit.value();
        validate_method(&method).map_err(|reason| syn::Error::new(lit.span(), reason))?;
        if methods.contains(&method) {
            return Err(syn::Error::new(
                lit.span(),
                format!("`{method}` is listed twice; remove one"),
            ));
        }
        methods.push(method);
    }
    if methods.is_empty() {
        return Err(syn::Error::new(
            input.span(),
            "`methods` is empty: list at least one method, or leave `methods` out to accept any method",
        ));
    }
    Ok(methods)
}

/// Checks one HTTP method name.
pub(crate) fn validate_method(method: &str) -> Result<(), String> {
    if HTTP_METHODS.contains(&method) {
        return Ok(());
    }
    let upper = method.to_ascii_uppercase();
    if HTTP_METHODS.contains(&upper.as_str()) {
        return Err(format!(
            "HTTP methods are case-sensitive and the standard ones are upper-case: \
             write \"{upper}\""
        ));
    }
    let hint = suggest::did_you_mean(&upper, HTTP_METHODS, &[]);
    Err(format!(
        "\"{method}\" is not an HTTP method.{hint} Valid methods are {}",
        suggest::list(HTTP_METHODS)
    ))
}

fn parse_cron(input: ParseStream<'_>, span: Span) -> syn::Result<TriggerKind> {
    if !input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            span,
            format!("a `cron` trigger needs a schedule, written `{CRON_EXAMPLE}`"),
        ));
    }
    let content;
    syn::parenthesized!(content in input);
    let schedule = string_value(&content, "cron(\"0 */5 * * * *\")")?;
    crate::cron::validate(&schedule.value())
        .map_err(|reason| syn::Error::new(schedule.span(), reason))?;
    let mut timezone = None;
    while !content.is_empty() {
        content.parse::<Token![,]>()?;
        if content.is_empty() {
            break;
        }
        let key = content.call(Ident::parse_any)?;
        let key_name = key.unraw().to_string();
        if key_name != "timezone" {
            let hint = suggest::did_you_mean(
                &key_name,
                &["timezone"],
                &[
                    ("tz", "timezone"),
                    ("zone", "timezone"),
                    ("time_zone", "timezone"),
                ],
            );
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown `cron` trigger setting `{key_name}`.{hint} A cron trigger \
                     takes a schedule and an optional `timezone`, written `{CRON_EXAMPLE}`"
                ),
            ));
        }
        if timezone.is_some() {
            return Err(syn::Error::new(
                key.span(),
                "`timezone` is given twice in this trigger; keep one",
            ));
        }
        content.parse::<Token![=]>()?;
        let lit = string_value(&content, "timezone = \"Europe/Paris\"")?;
        crate::cron::validate_timezone(&lit.value())
            .map_err(|reason| syn::Error::new(lit.span(), reason))?;
        timezone = Some(lit.value());
    }
    Ok(TriggerKind::Cron {
        schedule: schedule.value().trim().to_owned(),
        timezone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;
    use syn::parse::Parser as _;

    fn trigger(tokens: proc_macro2::TokenStream) -> Result<TriggerKind, String> {
        parse
            .parse2(tokens)
            .map(|trigger| trigger.kind)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn http_triggers() {
        assert_eq!(
            trigger(quote!(http(path = "/hello", methods = ["GET", "POST"]))),
            Ok(TriggerKind::Http {
                path: Some("/hello".into()),
                methods: vec!["GET".into(), "POST".into()]
            })
        );
        assert_eq!(
            trigger(quote!(http)),
            Ok(TriggerKind::Http {
                path: None,
                methods: vec![]
            })
        );
        assert_eq!(
            trigger(quote!(http(methods = ["PUT"],))),
            Ok(TriggerKind::Http {
                path: None,
                methods: vec!["PUT".into()]
            })
        );
    }

    #[test]
    fn cron_triggers() {
        assert_eq!(
            trigger(quote!(cron("*/5 * * * *"))),
            Ok(TriggerKind::Cron {
                schedule: "*/5 * * * *".into(),
                timezone: None
            })
        );
        assert_eq!(
            trigger(quote!(cron(" @daily ", timezone = "Europe/Paris",))),
            Ok(TriggerKind::Cron {
                schedule: "@daily".into(),
                timezone: Some("Europe/Paris".into())
            })
        );
    }

    #[test]
    fn trigger_errors() {
        let cases = [
            (quote!(htp(path = "/x")), "Did you mean `http`?"),
            (quote!(schedule("@daily")), "Did you mean `cron`?"),
            (quote!("http"), "expected a trigger"),
            (quote!(http(route = "/x")), "Did you mean `path`?"),
            (
                quote!(http(path = "x")),
                "must start with `/`: write \"/x\"",
            ),
            (quote!(http(path = "/a b")), "contains ` `"),
            (quote!(http(path = "/a?b=1")), "query or a fragment"),
            (
                quote!(http(path = "/a", path = "/b")),
                "`path` is given twice",
            ),
            (
                quote!(http(methods = "GET")),
                "written `methods = [\"GET\"]`",
            ),
            (quote!(http(methods = [GET])), "list of strings"),
            (quote!(http(methods = [])), "`methods` is empty"),
            (quote!(http(methods = ["GET", "GET"])), "listed twice"),
            (quote!(http(methods = ["post"])), "write \"POST\""),
            (quote!(http(methods = ["POTS"])), "Did you mean `POST`?"),
            (quote!(http(methods = ["FETCH"])), "Valid methods are `GET`"),
            (quote!(cron), "needs a schedule"),
            (quote!(cron()), "expected a string literal"),
            (quote!(cron("* * *")), "between 5 and 7 fields"),
            (
                quote!(cron("@daily", tz = "UTC")),
                "Did you mean `timezone`?",
            ),
            (
                quote!(cron("@daily", timezone = "Paris time")),
                "not a known time zone",
            ),
            (
                quote!(cron("@daily", timezone = "Europe/Pariss")),
                "Did you mean \"Europe/Paris\"?",
            ),
            (
                quote!(cron("@daily", timezone = "UTC", timezone = "UTC")),
                "`timezone` is given twice",
            ),
        ];
        for (tokens, expected) in cases {
            let text = tokens.to_string();
            let error = trigger(tokens).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn methods_and_paths() {
        for method in HTTP_METHODS {
            assert!(validate_method(method).is_ok());
        }
        assert!(validate_path("/").is_ok());
        assert!(validate_path("/users/{id}").is_ok());
        assert!(validate_path("/files/{*path}").is_ok());
        assert!(validate_path("/users/{id").is_err());
        assert!(validate_path("/users/{*rest}/x").is_err());
    }

    #[test]
    fn identical_triggers_conflict() {
        let a = parse.parse2(quote!(cron("@daily"))).unwrap();
        let b = parse.parse2(quote!(cron("@daily"))).unwrap();
        let c = parse.parse2(quote!(cron("@hourly"))).unwrap();
        assert!(a.conflicts_with(&b).is_some());
        assert!(a.conflicts_with(&c).is_none());
    }
}
