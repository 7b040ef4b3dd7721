//! The expansion of `functions![a, path::to::b]`.

use proc_macro2::TokenStream;
use quote::quote;
use syn::parse::Parser as _;
use syn::punctuated::Punctuated;
use syn::{Path, PathArguments, Token};

use crate::expand::struct_ident;

/// Expands `functions![a, path::to::b]` into
/// `[<__faas_function_a>::definition(), <path::to::__faas_function_b>::definition()]`.
pub(crate) fn functions(input: TokenStream) -> TokenStream {
    let paths = match Punctuated::<Path, Token![,]>::parse_terminated.parse2(input) {
        Ok(paths) => paths,
        Err(error) => {
            let message = format!(
                "{error}: `functions!` takes the paths of `#[function]` fns separated by \
                 commas, e.g. `functions![hello, jobs::nightly_report]`"
            );
            return syn::Error::new(error.span(), message).to_compile_error();
        }
    };
    let mut errors = TokenStream::new();
    let definitions: Vec<TokenStream> = paths
        .into_iter()
        .filter_map(|mut path| {
            let last = path.segments.last_mut()?;
            if !matches!(last.arguments, PathArguments::None) {
                errors.extend(
                    syn::Error::new_spanned(
                        &last.arguments,
                        "a `#[function]` fn is not generic; remove the generic arguments",
                    )
                    .to_compile_error(),
                );
                return None;
            }
            last.ident = struct_ident(&last.ident);
            // `<T>::definition()` rather than `T::definition()`: when `T` is
            // missing (the fn has no `#[function]`), rustc then reports a
            // missing type instead of a missing crate.
            Some(quote!(<#path>::definition()))
        })
        .collect();
    if !errors.is_empty() {
        return errors;
    }
    quote!([#(#definitions),*])
}

#[cfg(test)]
mod tests {
    use super::functions;
    use quote::quote;

    #[test]
    fn expands_paths() {
        assert_eq!(
            functions(quote!(a, path::to::b, ::krate::r#type,)).to_string(),
            quote!([
                <__faas_function_a>::definition(),
                <path::to::__faas_function_b>::definition(),
                <::krate::__faas_function_type>::definition()
            ])
            .to_string()
        );
        assert_eq!(functions(quote!()).to_string(), quote!([]).to_string());
    }

    #[test]
    fn rejects_other_tokens() {
        let out = functions(quote!(a, "b")).to_string();
        assert!(out.contains("compile_error"), "{out}");
        assert!(
            out.contains("functions![hello, jobs::nightly_report]"),
            "{out}"
        );
        let out = functions(quote!(a::<u8>)).to_string();
        assert!(out.contains("not generic"), "{out}");
    }
}
