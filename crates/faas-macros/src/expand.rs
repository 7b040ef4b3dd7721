//! The expansion of `#[function]`: the item unchanged, the hidden
//! `__faas_function_<ident>` struct with its `definition()`, and the hidden
//! compile-time checks.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt as _;
use syn::spanned::Spanned as _;
use syn::{Ident, ItemFn, LitStr};

use crate::errors::Errors;
use crate::options::{self, FunctionOptions};
use crate::signature;
use crate::trigger::{Trigger, TriggerKind};

/// The prefix of the hidden struct that carries a function's definition.
pub(crate) const STRUCT_PREFIX: &str = "__faas_function_";

/// Expands `#[function(attr)] item`.
pub(crate) fn function(attr: TokenStream, item: TokenStream) -> TokenStream {
    let function = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            let error = syn::Error::new(
                Span::call_site(),
                "`#[function]` goes on an `async fn`, e.g. \
                 `#[function] async fn hello(Json(request): Json<Request>) -> Json<Response>`",
            )
            .to_compile_error();
            return quote!(#item #error);
        }
    };

    let mut errors = Errors::default();
    let options = FunctionOptions::parse(attr, &mut errors);
    let mut signature_errors = Errors::default();
    signature::check(&function.sig, &mut signature_errors);

    let ident = &function.sig.ident;
    let name = match &options.name {
        Some(name) => name.value(),
        None => {
            let name = ident.unraw().to_string();
            if let Err(reason) = options::validate_name(&name) {
                errors.push(syn::Error::new(
                    ident.span(),
                    format!("{reason}; give the function a name with `name = \"...\"`"),
                ));
            }
            name
        }
    };
    let krate = options
        .krate
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::faas_core));

    let definition_body = if signature_errors.is_empty() {
        definition_chain(&function, &options, &name, &krate)
    } else {
        // The signature is rejected: the errors say why. The struct is still
        // emitted so that `functions![..]` naming this function reports
        // nothing more.
        let message = format!("`#[function]` rejected the signature of `{ident}`");
        quote!(::core::panic!(#message))
    };
    // `#[cfg]` attributes below `#[function]` apply to the generated items
    // too, so that a compiled-out fn leaves nothing behind.
    let cfgs: Vec<&syn::Attribute> = function
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("cfg"))
        .collect();
    let checks = if signature_errors.is_empty() {
        checks(&function, &krate, &cfgs)
    } else {
        TokenStream::new()
    };

    let errors = errors.to_compile_errors();
    let signature_errors = signature_errors.to_compile_errors();
    if function.sig.receiver().is_some() {
        // A method sits in an `impl` block, where a struct can not go.
        return quote!(#item #errors #signature_errors);
    }

    let vis = &function.vis;
    let struct_ident = struct_ident(ident);
    let struct_doc = format!("The registration of the function `{name}` (see `definition()`).");
    let definition_doc = format!(
        "The definition of the function `{name}`: its handler, name, triggers and \
         invocation policy, as declared by `#[function]`; ready to register."
    );
    // The checks come before the definition so that their precise errors (on
    // an argument or the return type) are reported first.
    quote! {
        #item

        #checks

        #(#cfgs)*
        #[doc = #struct_doc]
        #[doc(hidden)]
        #[allow(non_camel_case_types, unreachable_pub)]
        #vis struct #struct_ident;

        #(#cfgs)*
        #[allow(unreachable_pub, deprecated)]
        impl #struct_ident {
            #[doc = #definition_doc]
            #[must_use]
            pub fn definition() -> #krate::FunctionDefinition {
                #definition_body
            }
        }

        #errors
        #signature_errors
    }
}

/// `FunctionDefinition::from_handler(..).with_trigger(..).with_policy(..)...`
fn definition_chain(
    function: &ItemFn,
    options: &FunctionOptions,
    name: &str,
    krate: &syn::Path,
) -> TokenStream {
    // The handler is named with the attribute's span: when the function can
    // not be a handler, that error sits on `#[function]`, while the precise
    // one (from `checks`) sits on the offending argument or return type.
    let mut handler = function.sig.ident.clone();
    handler.set_span(Span::call_site());
    let mut chain = quote! {
        #krate::FunctionDefinition::from_handler(#name, #handler)
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
    }
}

/// An `InvocationPolicy` expression, if any policy option was given.
fn policy(options: &FunctionOptions, krate: &syn::Path) -> Option<TokenStream> {
    if options.timeout_millis.is_none()
        && options.concurrency.is_none()
        && options.retries.is_none()
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
    if let Some(retries) = options.retries {
        let attempts = Literal::u32_unsuffixed(retries + 1);
        policy.extend(quote! {
            .with_retry(
                <#krate::RetryPolicy as ::core::default::Default>::default()
                    .with_max_attempts(#attempts)
            )
        });
    }
    Some(policy)
}

/// The hidden checks that put type errors on the user's own tokens.
fn checks(function: &ItemFn, krate: &syn::Path, cfgs: &[&syn::Attribute]) -> TokenStream {
    let ident = &function.sig.ident;
    let arguments = signature::argument_types(&function.sig);
    let extractor_checks = arguments.iter().map(|ty| {
        quote_spanned! {ty.span()=>
            __faas_assert_extractor::<#ty>();
        }
    });
    let output_check = signature::nameable_return_type(&function.sig).map(|ty| {
        quote_spanned! {ty.span()=>
            __faas_assert_output::<#ty>();
        }
    });
    let placeholders = arguments
        .iter()
        .map(|ty| quote_spanned!(ty.span()=> ::core::panic!()));
    let send_check = quote_spanned! {ident.span()=>
        let __faas_future = #ident(#(#placeholders),*);
        __faas_assert_send(&__faas_future);
    };
    quote! {
        #(#cfgs)*
        #[allow(
            dead_code,
            deprecated,
            unreachable_code,
            unused_variables,
            clippy::diverging_sub_expression,
            clippy::let_underscore_future
        )]
        const _: () = {
            fn __faas_assert_extractor<T: #krate::FromInvocation>() {}
            fn __faas_assert_output<T: #krate::IntoOutput>() {}
            fn __faas_assert_send<F: ::core::marker::Send>(_: &F) {}

            fn __faas_check_types() {
                #(#extractor_checks)*
                #output_check
            }

            fn __faas_check_future_is_send() {
                #send_check
            }
        };
    }
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

/// The ident of the hidden struct for a function ident.
pub(crate) fn struct_ident(ident: &Ident) -> Ident {
    format_ident!("{}{}", STRUCT_PREFIX, ident.unraw(), span = ident.span())
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn expand(attr: TokenStream, item: TokenStream) -> String {
        function(attr, item).to_string()
    }

    #[test]
    fn expands_to_the_contract() {
        let out = expand(
            quote!(
                name = "hello",
                trigger = http(path = "/hello", methods = ["POST"]),
                timeout = "5s",
                concurrency = 10,
                retries = 2
            ),
            quote!(
                pub async fn hello(
                    Json(req): Json<In>,
                    ctx: Context,
                ) -> Result<Json<Out>, FunctionError> {
                    todo_body()
                }
            ),
        );
        for expected in [
            "pub async fn hello (Json (req) : Json < In > , ctx : Context",
            "pub struct __faas_function_hello ;",
            "impl __faas_function_hello",
            "pub fn definition () -> :: faas_core :: FunctionDefinition",
            ":: faas_core :: FunctionDefinition :: from_handler (\"hello\" , hello)",
            ":: faas_core :: TriggerSpec :: Http { path : :: std :: string :: String :: from (\"/hello\") , methods : :: std :: vec ! [:: std :: string :: String :: from (\"POST\")] , }",
            ". with_timeout (:: core :: time :: Duration :: from_millis (5000))",
            ". with_max_in_flight (10)",
            ". with_max_attempts (3)",
            "__faas_assert_extractor :: < Json < In > > ()",
            "__faas_assert_extractor :: < Context > ()",
            "__faas_assert_output :: < Result < Json < Out > , FunctionError > > ()",
            "let __faas_future = hello (:: core :: panic ! () , :: core :: panic ! ())",
        ] {
            assert!(out.contains(expected), "missing `{expected}` in\n{out}");
        }
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn defaults() {
        let out = expand(
            quote!(trigger = http, trigger = cron("@daily")),
            quote!(
                /// Says hello.
                /// Politely.
                ///
                /// Details.
                async fn say_hello() {}
            ),
        );
        assert!(out.contains("struct __faas_function_say_hello"), "{out}");
        assert!(
            out.contains("from_handler (\"say_hello\" , say_hello)"),
            "{out}"
        );
        assert!(out.contains("String :: from (\"/say_hello\")"), "{out}");
        assert!(out.contains("methods : :: std :: vec ! [] ,"), "{out}");
        assert!(
            out.contains("timezone : :: core :: option :: Option :: None"),
            "{out}"
        );
        assert!(
            out.contains("with_description (\"Says hello. Politely.\")"),
            "{out}"
        );
        assert!(!out.contains("with_policy"), "{out}");
        assert!(!out.contains("__faas_assert_output ::"), "{out}");
    }

    #[test]
    fn crate_override_and_raw_idents() {
        let out = expand(
            quote!(crate = "crate::platform", description = "Typed"),
            quote!(
                pub(crate) async fn r#type() -> String {
                    String::new()
                }
            ),
        );
        assert!(
            out.contains("pub (crate) struct __faas_function_type"),
            "{out}"
        );
        assert!(
            out.contains(
                "crate :: platform :: FunctionDefinition :: from_handler (\"type\" , r#type)"
            ),
            "{out}"
        );
        assert!(
            out.contains("T : crate :: platform :: FromInvocation"),
            "{out}"
        );
        assert!(out.contains("with_description (\"Typed\")"), "{out}");
        assert!(!out.contains("faas_core"), "{out}");
    }

    #[test]
    fn errors_keep_the_item_and_the_struct() {
        let out = expand(
            quote!(timout = "5s"),
            quote!(
                fn hello<T>() {}
            ),
        );
        assert!(out.starts_with("fn hello < T > () { }"), "{out}");
        assert!(out.contains("struct __faas_function_hello"), "{out}");
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("Did you mean `timeout`?"), "{out}");
        assert!(out.contains("is not async"), "{out}");
        assert!(out.contains("type parameter `T`"), "{out}");
        assert!(!out.contains("from_handler"), "{out}");
        assert!(!out.contains("__faas_assert"), "{out}");
    }

    #[test]
    fn methods_get_no_struct() {
        let out = expand(
            quote!(),
            quote!(
                async fn hello(&self) {}
            ),
        );
        assert!(out.starts_with("async fn hello (& self) { }"), "{out}");
        assert!(out.contains("not on a method"), "{out}");
        assert!(!out.contains("struct"), "{out}");
    }

    #[test]
    fn not_a_function() {
        let out = expand(
            quote!(),
            quote!(
                struct Hello;
            ),
        );
        assert!(out.starts_with("struct Hello ;"), "{out}");
        assert!(out.contains("goes on an `async fn`"), "{out}");
    }

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
