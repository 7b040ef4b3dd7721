//! The expansion of `#[function]`: the item unchanged, the hidden
//! `__faas_function_<ident>` struct with its `definition()`, and the hidden
//! compile-time checks.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::ext::IdentExt as _;
use syn::{Ident, ItemFn};

use crate::checks::checks;
use crate::definition::definition_chain;
use crate::errors::Errors;
use crate::options::{self, FunctionOptions};
use crate::signature;

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
/// The ident of the hidden struct for a function ident.
pub(crate) fn struct_ident(ident: &Ident) -> Ident {
    format_ident!("{}{}", STRUCT_PREFIX, ident.unraw(), span = ident.span())
}
#[cfg(test)]
mod tests {
    use super::*;

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
                max_attempts = 3
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
            ":: faas_core :: FunctionDefinition :: from_handler (name , handler)",
            "H : :: faas_core :: Handler < Args >",
            "__faas_from_handler (\"hello\" , hello)",
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
            out.contains("__faas_from_handler (\"say_hello\" , say_hello)"),
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
            out.contains("__faas_from_handler (\"type\" , r#type)"),
            "{out}"
        );
        assert!(
            out.contains("T : crate :: platform :: AsyncFromInvocation"),
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
}
