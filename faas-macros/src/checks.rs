//! The hidden compile-time checks that put type errors on the user's own
//! tokens: each argument is an extractor, the return type is an output, the
//! future is `Send`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ItemFn;
use syn::spanned::Spanned as _;

use crate::signature;

/// The hidden checks that put type errors on the user's own tokens.
pub(crate) fn checks(
    function: &ItemFn,
    krate: &syn::Path,
    cfgs: &[&syn::Attribute],
) -> TokenStream {
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
            fn __faas_assert_extractor<T: #krate::AsyncFromInvocation>() {}
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
