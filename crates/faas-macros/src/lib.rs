//! The `#[function]` attribute of faas.

mod cron;
mod duration;
mod errors;
mod expand;
mod functions;
mod options;
mod signature;
mod suggest;
mod trigger;

use proc_macro::TokenStream;

/// Declares an `async fn` as a faas function.
#[proc_macro_attribute]
pub fn function(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand::function(attr.into(), item.into()).into()
}

/// The definitions of `#[function]` fns, as an array.
#[proc_macro]
pub fn functions(input: TokenStream) -> TokenStream {
    functions::functions(input.into()).into()
}
