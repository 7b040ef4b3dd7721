//! The body of `definition()`: `FunctionDefinition::from_handler(..)` and
//! the builder calls that record the options.

use proc_macro2::{Literal, Span, TokenStream};
use quote::quote;
use syn::{ItemFn, LitStr};

use crate::options::FunctionOptions;
use crate::trigger::{Trigger, TriggerKind};

/// `FunctionDefinition::from_handler(..).with_trigger(..).with_policy(..)...`
pub(crate) fn definition_chain(
    function: &ItemFn,
    options: &FunctionOptions,
    name: &str,
    krate: &syn::Path,
) -> TokenStream {
    // The handler is named with the attribute's span: when the function can
    // not be a handler, that error sits on `#[function]`, while the precise
    // one (from `checks`) sits on the offending argument or return type.
    // `from_handler` is called through a local fn carrying the same bounds,
    // so that the error's note points at this expansion rather than into
    // faas-core's sources.
    let mut handler = function.sig.ident.clone();
    handler.set_span(Span::call_site());
    let mut chain = quote! {
        fn __faas_from_handler<H, Args>(
            name: &'static str,
            handler: H,
        ) -> #krate::FunctionDefinition
        where
            H: #krate::Handler<Args>,
            Args: 'static,
        {
            #krate::FunctionDefinition::from_handler(name, handler)
        }

        __faas_from_handler(#name, #handler)
    };
    for trigger in &options.triggers {
        let spec = trigger_spec(trigger, name, krate);
        chain.extend(quote!(.with_trigger(#spec)));
    }
    if let Some(policy) = policy(options, krate) {
        chain.extend(quote!(.with_policy(#policy)));
    }
    let description = options
        .description
        .as_ref()
        .map(LitStr::value)
        .or_else(|| doc_summary(&function.attrs));
    if let Some(description) = description {
        chain.extend(quote!(.with_description(#description)));
    }
    chain
}

/// A `TriggerSpec` expression.
fn trigger_spec(trigger: &Trigger, name: &str, krate: &syn::Path) -> TokenStream {
    let string = |value: &str| quote!(::std::string::String::from(#value));
    match &trigger.kind {
        TriggerKind::Http { path, methods } => {
            let path = path.clone().unwrap_or_else(|| format!("/{name}"));
            let path = string(&path);
            // No methods means any method.
            let methods = methods.iter().map(|method| string(method));
            quote! {
                #krate::TriggerSpec::Http {
                    path: #path,
                    methods: ::std::vec![#(#methods),*],
                }
            }
        }
        TriggerKind::Cron { schedule, timezone } => {
            let schedule = string(schedule);
            let timezone = match timezone {
                Some(timezone) => {
                    let timezone = string(timezone);
                    quote!(::core::option::Option::Some(#timezone))
                }
                None => quote!(::core::option::Option::None),
            };
            quote! {
                #krate::TriggerSpec::Cron {
                    schedule: #schedule,
                    timezone: #timezone,
                }
            }
        }
        TriggerKind::Event(source) => event_spec(source, krate),
    }
}

/// A `TriggerSpec` expression of an event source.
fn event_spec(source: &crate::event_trigger::EventSource, krate: &syn::Path) -> TokenStream {
    use crate::event_trigger::EventSource;
    let string = |value: &str| quote!(::std::string::String::from(#value));
    let optional = |value: &Option<String>| match value {
        Some(value) => {
            let value = string(value);
            quote!(::core::option::Option::Some(#value))
        }
        None => quote!(::core::option::Option::None),
    };
    match source {
        EventSource::Nats {
            stream,
            subject,
            consumer,
        } => {
            let (stream, subject, consumer) =
                (string(stream), optional(subject), optional(consumer));
            quote!(#krate::TriggerSpec::Nats { stream: #stream, subject: #subject, consumer: #consumer })
        }
        EventSource::Redis { stream, group } => {
            let (stream, group) = (string(stream), optional(group));
            quote!(#krate::TriggerSpec::RedisStream { stream: #stream, group: #group })
        }
        EventSource::Postgres { table } => {
            let table = string(table);
            quote!(#krate::TriggerSpec::Postgres { table: #table })
        }
        EventSource::Storage { dir } => {
            let dir = string(dir);
            quote!(#krate::TriggerSpec::Storage { dir: #dir })
        }
        EventSource::Kube {
            api_version,
            kind,
            namespace,
            labels,
            fields,
        } => {
            let (api_version, kind) = (string(api_version), string(kind));
            let (namespace, labels, fields) =
                (optional(namespace), optional(labels), optional(fields));
            quote!(#krate::TriggerSpec::Kube {
                api_version: #api_version,
                object_kind: #kind,
                namespace: #namespace,
                label_selector: #labels,
                field_selector: #fields,
            })
        }
    }
}

/// An `InvocationPolicy` expression, if any policy option was given.
fn policy(options: &FunctionOptions, krate: &syn::Path) -> Option<TokenStream> {
    if options.timeout_millis.is_none()
        && options.concurrency.is_none()
        && options.max_attempts.is_none()
    {
        return None;
    }
    let mut policy = quote!(<#krate::InvocationPolicy as ::core::default::Default>::default());
    if let Some(millis) = options.timeout_millis {
        let millis = Literal::u64_unsuffixed(millis);
        policy.extend(quote!(.with_timeout(::core::time::Duration::from_millis(#millis))));
    }
    if let Some(concurrency) = options.concurrency {
        let concurrency = Literal::u32_unsuffixed(concurrency);
        policy.extend(quote!(.with_max_in_flight(#concurrency)));
    }
    if let Some(max_attempts) = options.max_attempts {
        let attempts = Literal::u32_unsuffixed(max_attempts);
        policy.extend(quote! {
            .with_retry(
                <#krate::RetryPolicy as ::core::default::Default>::default()
                    .with_max_attempts(#attempts)
            )
        });
    }
    Some(policy)
}

/// The first paragraph of the doc comment, on one line.
fn doc_summary(attrs: &[syn::Attribute]) -> Option<String> {
    let mut text = String::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(syn::MetaNameValue {
            value:
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(doc),
                    ..
                }),
            ..
        }) = &attr.meta
        {
            text.push_str(&doc.value());
            text.push('\n');
        }
    }
    let summary: Vec<&str> = text
        .lines()
        .map(str::trim)
        .skip_while(|line| line.is_empty())
        .take_while(|line| !line.is_empty())
        .collect();
    (!summary.is_empty()).then(|| summary.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    #[test]
    fn summaries() {
        let attrs: Vec<syn::Attribute> = vec![
            parse_quote!(#[doc = ""]),
            parse_quote!(#[doc = " First line"]),
            parse_quote!(#[doc = " second line."]),
            parse_quote!(#[doc = ""]),
            parse_quote!(#[doc = " More."]),
            parse_quote!(#[inline]),
        ];
        assert_eq!(
            doc_summary(&attrs).as_deref(),
            Some("First line second line.")
        );
        assert_eq!(doc_summary(&[parse_quote!(#[inline])]), None);
    }
}
