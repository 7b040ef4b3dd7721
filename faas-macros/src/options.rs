//! The options of `#[function(...)]`: parsing, validation and the error
//! messages that point at the user's token.

use proc_macro2::{TokenStream, TokenTree};
use syn::ext::IdentExt as _;
use syn::parse::{ParseStream, Parser as _};
use syn::{Ident, LitInt, LitStr, Token};

use crate::errors::Errors;
use crate::suggest;
use crate::trigger::{self, Trigger};

/// Every option, with an example of its syntax for the error messages.
const OPTIONS: &[(&str, &str)] = &[
    ("name", "name = \"hello\""),
    (
        "trigger",
        "trigger = http(path = \"/hello\", methods = [\"POST\"])",
    ),
    ("timeout", "timeout = \"30s\""),
    ("concurrency", "concurrency = 100"),
    ("max_attempts", "max_attempts = 3"),
    ("description", "description = \"Greets the caller\""),
    ("crate", "crate = \"::my_platform::faas\""),
];

/// Names other frameworks use for our options.
const ALIASES: &[(&str, &str)] = &[
    ("triggers", "trigger"),
    ("http", "trigger"),
    ("cron", "trigger"),
    ("schedule", "trigger"),
    ("deadline", "timeout"),
    ("max_in_flight", "concurrency"),
    ("max_concurrency", "concurrency"),
    ("retries", "max_attempts"),
    ("max_retries", "max_attempts"),
    ("retry", "max_attempts"),
    ("attempts", "max_attempts"),
    ("desc", "description"),
    ("doc", "description"),
    ("about", "description"),
    ("krate", "crate"),
    ("faas_crate", "crate"),
];

/// The options given to one `#[function]` attribute, after validation.
///
/// An option whose value was rejected is left out (and its error recorded),
/// so that the expansion can go on and report every mistake at once.
#[derive(Default)]
pub(crate) struct FunctionOptions {
    /// `name = ".."`.
    pub(crate) name: Option<LitStr>,
    /// Every `trigger = ..`, in order.
    pub(crate) triggers: Vec<Trigger>,
    /// `timeout = ".."`, in milliseconds.
    pub(crate) timeout_millis: Option<u64>,
    /// `concurrency = N`.
    pub(crate) concurrency: Option<u32>,
    /// `max_attempts = N`, the first attempt included (as `RetryPolicy`).
    pub(crate) max_attempts: Option<u32>,
    /// `description = ".."`.
    pub(crate) description: Option<LitStr>,
    /// `crate = ".."`.
    pub(crate) krate: Option<syn::Path>,
}

impl FunctionOptions {
    /// Parses the tokens inside `#[function(...)]`, recording every error.
    pub(crate) fn parse(attr: TokenStream, errors: &mut Errors) -> Self {
        let mut options = Self::default();
        let mut seen: Vec<String> = Vec::new();
        for segment in split_top_level_commas(attr) {
            let parser = |input: ParseStream<'_>| options.parse_one(input, &mut seen, errors);
            if let Err(error) = parser.parse2(segment) {
                errors.push(error);
            }
        }
        options
    }

    /// Parses one `key = value`. Semantic errors go to `errors`; a syntax
    /// error is returned.
    fn parse_one(
        &mut self,
        input: ParseStream<'_>,
        seen: &mut Vec<String>,
        errors: &mut Errors,
    ) -> syn::Result<()> {
        let key = input.call(Ident::parse_any).map_err(|error| {
            syn::Error::new(
                error.span(),
                format!(
                    "expected an option such as `timeout = \"30s\"`. Valid options are {}",
                    option_list()
                ),
            )
        })?;
        let key_name = key.unraw().to_string();
        let Some(example) = example_of(&key_name) else {
            return Err(unknown_option(&key, &key_name));
        };
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!("`{key_name}` needs a value, written `{example}`"),
            ));
        }
        input.parse::<Token![=]>()?;
        if key_name != "trigger" {
            if seen.contains(&key_name) {
                return Err(syn::Error::new(
                    key.span(),
                    format!(
                        "`{key_name}` is given more than once; keep one of them \
                         (only `trigger` may repeat)"
                    ),
                ));
            }
            seen.push(key_name.clone());
        }
        match key_name.as_str() {
            "name" => {
                let lit = string_value(input, example)?;
                if let Err(reason) = validate_name(&lit.value()) {
                    errors.push(syn::Error::new(lit.span(), reason));
                } else {
                    self.name = Some(lit);
                }
            }
            "trigger" => {
                let parsed = trigger::parse(input)?;
                if let Some(reason) = self.triggers.iter().find_map(|t| t.conflicts_with(&parsed)) {
                    errors.push(syn::Error::new(parsed.span, reason));
                } else {
                    self.triggers.push(parsed);
                }
            }
            "timeout" => {
                let lit = string_value(input, example)?;
                match crate::duration::parse_millis(&lit.value()) {
                    Ok(millis) => self.timeout_millis = Some(millis),
                    Err(reason) => errors.push(syn::Error::new(lit.span(), reason)),
                }
            }
            "concurrency" => {
                let (lit, value) = integer_value(input, example)?;
                if value == 0 {
                    errors.push(syn::Error::new(
                        lit.span(),
                        "`concurrency` is the most invocations that may run at once; \
                         it must be at least 1 (leave it out for the default limit)",
                    ));
                } else {
                    self.concurrency = Some(value);
                }
            }
            "max_attempts" => {
                let (lit, value) = integer_value(input, example)?;
                if value == 0 {
                    errors.push(syn::Error::new(
                        lit.span(),
                        "`max_attempts` counts the first attempt too: it must be at least 1 \
                         (1 = no retry)",
                    ));
                } else {
                    self.max_attempts = Some(value);
                }
            }
            "description" => {
                let lit = string_value(input, example)?;
                if lit.value().trim().is_empty() {
                    errors.push(syn::Error::new(
                        lit.span(),
                        "the description is empty; write one or leave the option out \
                         (the first paragraph of the doc comment is used then)",
                    ));
                } else {
                    self.description = Some(lit);
                }
            }
            "crate" => {
                let lit = string_value(input, example)?;
                match lit.parse::<syn::Path>() {
                    Ok(path) => self.krate = Some(path),
                    Err(_) => errors.push(syn::Error::new(
                        lit.span(),
                        format!(
                            "`{}` is not a path; `crate` names the crate or module that \
                             re-exports faas-core, e.g. `{example}`",
                            lit.value()
                        ),
                    )),
                }
            }
            _ => unreachable!("`example_of` knows every option"),
        }
        if !input.is_empty() {
            return Err(input.error(format!(
                "unexpected tokens after the value of `{key_name}`; separate options with `,`"
            )));
        }
        Ok(())
    }
}

/// Splits `a = 1, b = f(x, y)` into `a = 1` and `b = f(x, y)`; groups are
/// single token trees, so only top-level commas split. Empty segments (a
/// trailing comma) are dropped.
fn split_top_level_commas(tokens: TokenStream) -> Vec<TokenStream> {
    let mut segments = vec![TokenStream::new()];
    for token in tokens {
        match &token {
            TokenTree::Punct(punct) if punct.as_char() == ',' => {
                segments.push(TokenStream::new());
            }
            _ => segments
                .last_mut()
                .expect("there is always a segment")
                .extend([token]),
        }
    }
    segments.retain(|segment| !segment.is_empty());
    segments
}

fn example_of(key: &str) -> Option<&'static str> {
    OPTIONS
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(_, example)| *example)
}

fn option_list() -> String {
    let names: Vec<&str> = OPTIONS.iter().map(|(name, _)| *name).collect();
    suggest::list(&names)
}

fn unknown_option(key: &Ident, key_name: &str) -> syn::Error {
    let names: Vec<&str> = OPTIONS.iter().map(|(name, _)| *name).collect();
    let hint = match suggest::closest(key_name, &names, ALIASES) {
        Some("trigger") if matches!(key_name, "http" | "cron") => format!(
            " A trigger is written `trigger = {key_name}(...)`, e.g. `{}`.",
            if key_name == "http" {
                "trigger = http(path = \"/hello\", methods = [\"POST\"])"
            } else {
                "trigger = cron(\"0 */5 * * * *\")"
            }
        ),
        Some("max_attempts") if key_name.contains("retr") => format!(
            " Did you mean `max_attempts`? It counts the first attempt too, as \
             `RetryPolicy::max_attempts` does: `{key_name} = 2` is `max_attempts = 3`."
        ),
        Some(candidate) => format!(
            " Did you mean `{candidate}`? It is written `{}`.",
            example_of(candidate).unwrap_or(candidate)
        ),
        None => String::new(),
    };
    syn::Error::new(
        key.span(),
        format!(
            "unknown `#[function]` option `{key_name}`.{hint} Valid options are {}",
            option_list()
        ),
    )
}

/// Parses a string literal, or explains the expected syntax.
pub(crate) fn string_value(input: ParseStream<'_>, example: &str) -> syn::Result<LitStr> {
    if input.peek(LitStr) {
        input.parse()
    } else {
        Err(input.error(format!("expected a string literal, written `{example}`")))
    }
}

/// Parses a non-negative integer that fits a `u32`, or explains the expected
/// syntax.
fn integer_value(input: ParseStream<'_>, example: &str) -> syn::Result<(LitInt, u32)> {
    if !input.peek(LitInt) {
        return Err(input.error(format!("expected a whole number, written `{example}`")));
    }
    let lit: LitInt = input.parse()?;
    if !lit.suffix().is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            format!("remove the `{}` suffix: write `{example}`", lit.suffix()),
        ));
    }
    let value = lit.base10_parse::<u32>().map_err(|_| {
        let reason = if lit.base10_digits().starts_with('-') {
            format!("expected a whole number of at least 0, written `{example}`")
        } else {
            format!("`{lit}` is too large (at most {})", u32::MAX)
        };
        syn::Error::new(lit.span(), reason)
    })?;
    Ok((lit, value))
}

/// A function name appears in URLs, metric labels and resource names.
pub(crate) fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the function name is empty".to_owned());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "the function name `{name}` contains `{}`: names may only contain ASCII \
             letters, digits, `-`, `_` and `.`, since they appear in URLs, metric \
             labels and resource names",
            bad.escape_default()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: TokenStream) -> (FunctionOptions, Vec<String>) {
        let mut errors = Errors::default();
        let options = FunctionOptions::parse(tokens, &mut errors);
        let messages = errors
            .to_compile_errors()
            .into_iter()
            .filter_map(|tree| match tree {
                TokenTree::Group(group) => syn::parse2::<LitStr>(group.stream()).ok(),
                _ => None,
            })
            .map(|message| message.value())
            .collect();
        (options, messages)
    }

    #[test]
    fn parses_every_option() {
        let (options, errors) = parse(quote! {
            name = "hello",
            trigger = http(path = "/hello", methods = ["GET", "POST"]),
            trigger = cron("0 */5 * * * *", timezone = "Europe/Paris"),
            timeout = "1m30s",
            concurrency = 10,
            max_attempts = 2,
            description = "Says hello",
            crate = "::my::faas",
        });
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(options.name.unwrap().value(), "hello");
        assert_eq!(options.triggers.len(), 2);
        assert_eq!(options.timeout_millis, Some(90_000));
        assert_eq!(options.concurrency, Some(10));
        assert_eq!(options.max_attempts, Some(2));
        assert_eq!(options.description.unwrap().value(), "Says hello");
        let krate = options.krate.unwrap();
        assert_eq!(quote!(#krate).to_string(), ":: my :: faas");
    }

    #[test]
    fn empty_attribute_is_fine() {
        let (options, errors) = parse(quote! {});
        assert!(errors.is_empty());
        assert!(options.name.is_none() && options.triggers.is_empty());
    }

    #[test]
    fn reports_every_error_and_keeps_the_good_options() {
        let (options, errors) = parse(quote! {
            timout = "5s", max_attempts = 3, concurrency = 0, name = "a b", nme = "x"
        });
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(
            errors[0].contains("Did you mean `timeout`?"),
            "{}",
            errors[0]
        );
        assert!(errors[1].contains("at least 1"), "{}", errors[1]);
        assert!(errors[2].contains("contains ` `"), "{}", errors[2]);
        assert!(errors[3].contains("Did you mean `name`?"), "{}", errors[3]);
        assert_eq!(options.max_attempts, Some(3));
    }

    #[test]
    fn unknown_option_lists_the_valid_ones() {
        let (_, errors) = parse(quote!(banana = 1));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("unknown `#[function]` option `banana`"));
        assert!(
            errors[0].contains("`description` and `crate`"),
            "{}",
            errors[0]
        );
        assert!(!errors[0].contains("Did you mean"));
    }

    #[test]
    fn aliases_from_other_frameworks() {
        let (_, errors) = parse(quote!(max_in_flight = 5));
        assert!(
            errors[0].contains("Did you mean `concurrency`?"),
            "{}",
            errors[0]
        );
        let (_, errors) = parse(quote!(http(path = "/x")));
        assert!(
            errors[0].contains("written `trigger = http(...)`"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn duplicates_are_errors_except_trigger() {
        let (_, errors) = parse(quote!(timeout = "1s", timeout = "2s"));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("`timeout` is given more than once"));
        let (options, errors) = parse(quote!(
            trigger = cron("@daily"),
            trigger = http(path = "/a")
        ));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(options.triggers.len(), 2);
    }

    #[test]
    fn value_syntax_errors() {
        let cases = [
            (
                quote!(timeout = 30),
                "expected a string literal, written `timeout = \"30s\"`",
            ),
            (quote!(timeout), "`timeout` needs a value"),
            (quote!(max_attempts = "3"), "expected a whole number"),
            (quote!(max_attempts = -1), "expected a whole number"),
            (quote!(max_attempts = 3u8), "remove the `u8` suffix"),
            (quote!(max_attempts = 0), "at least 1"),
            (quote!(retries = 2), "`retries = 2` is `max_attempts = 3`"),
            (quote!(concurrency = 99999999999), "too large"),
            (quote!(max_attempts = 3 4), "separate options with `,`"),
            (quote!(timeout = "soon"), "invalid duration \"soon\""),
            (quote!(crate = "not a path"), "is not a path"),
            (quote!(description = " "), "the description is empty"),
            (quote!("name"), "expected an option"),
        ];
        for (tokens, expected) in cases {
            let text = tokens.to_string();
            let (_, errors) = parse(tokens);
            assert_eq!(errors.len(), 1, "{text}: {errors:?}");
            assert!(errors[0].contains(expected), "{text}: {}", errors[0]);
        }
    }

    #[test]
    fn names() {
        assert!(validate_name("hello").is_ok());
        assert!(validate_name("hello_world-2.v1").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a/b").unwrap_err().contains("`/`"));
        assert!(validate_name("café").is_err());
    }
}
