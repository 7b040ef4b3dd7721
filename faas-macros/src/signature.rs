//! Checks that the annotated item can be a function: a free, non-generic
//! `async fn` whose arguments can be extractors.

use syn::{FnArg, GenericParam, ReturnType, Signature, Type};

use crate::errors::Errors;

/// The most extractor arguments a handler may take (faas-core implements its
/// `Handler` trait for 0 to 8 arguments).
pub(crate) const MAX_ARGUMENTS: usize = 8;

/// Checks the signature, recording one error per problem.
pub(crate) fn check(signature: &Signature, errors: &mut Errors) {
    let ident = &signature.ident;
    if let Some(constness) = &signature.constness {
        errors.push(syn::Error::new(
            constness.span,
            "a function can not be `const`; remove `const`",
        ));
    }
    if signature.asyncness.is_none() {
        errors.push(syn::Error::new(
            signature.fn_token.span,
            format!(
                "`#[function]` goes on an `async fn`, and `{ident}` is not async; \
                 write `async fn {ident}(..)` (its body need not await anything)"
            ),
        ));
    }
    if let Some(unsafety) = &signature.unsafety {
        errors.push(syn::Error::new(
            unsafety.span,
            "a function can not be `unsafe`: hosts call it like any safe fn; \
             remove `unsafe` and keep any `unsafe` block inside the body",
        ));
    }
    if let Some(abi) = &signature.abi {
        errors.push(syn::Error::new_spanned(
            abi,
            "a function can not declare an ABI; remove the `extern` qualifier",
        ));
    }
    for param in &signature.generics.params {
        let message = match param {
            GenericParam::Type(ty) => format!(
                "`#[function]` can not be generic: hosts need to know the concrete \
                 argument and return types. Replace the type parameter `{}` with a \
                 concrete type, e.g. `Json<MyRequest>`",
                ty.ident
            ),
            GenericParam::Const(konst) => format!(
                "`#[function]` can not be generic: remove the const parameter `{}` \
                 and use a constant or a configuration value instead",
                konst.ident
            ),
            GenericParam::Lifetime(lifetime) => format!(
                "`#[function]` can not have lifetime parameters: extractors own their \
                 data, so arguments can not borrow. Remove `{}` and take owned types \
                 such as `String`, `Bytes` or `Json<T>`",
                lifetime.lifetime
            ),
        };
        errors.push(syn::Error::new_spanned(param, message));
    }
    if let Some(variadic) = &signature.variadic {
        errors.push(syn::Error::new_spanned(
            variadic,
            "a function can not be variadic",
        ));
    }
    for (index, input) in signature.inputs.iter().enumerate() {
        match input {
            FnArg::Receiver(receiver) => errors.push(syn::Error::new_spanned(
                receiver,
                format!(
                    "`#[function]` goes on a free `async fn`, not on a method: `{ident}` \
                     takes `self`. Move it out of the `impl` block into a module-level \
                     `async fn`, and reach shared state through a `static` or a \
                     dedicated extractor"
                ),
            )),
            FnArg::Typed(typed) => {
                if let Some(impl_trait) = find_impl_trait(&typed.ty) {
                    errors.push(syn::Error::new_spanned(
                        impl_trait,
                        "`impl Trait` in argument position makes the function generic; \
                         name a concrete extractor type such as `Json<MyRequest>`, \
                         `Bytes` or `Context`",
                    ));
                }
                if index == MAX_ARGUMENTS {
                    errors.push(syn::Error::new_spanned(
                        typed,
                        format!(
                            "a function takes at most {MAX_ARGUMENTS} extractor arguments \
                             and `{ident}` takes {}; group several of them into one, for \
                             example fields of a `Json<T>` request",
                            signature.inputs.len()
                        ),
                    ));
                }
            }
        }
    }
}

/// The argument types, in order (receivers are skipped: they are reported by
/// [`check`]).
pub(crate) fn argument_types(signature: &Signature) -> Vec<&Type> {
    signature
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(typed) => Some(&*typed.ty),
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// The return type, when it can be named: `None` for `()` (always an output)
/// and for `impl Trait` (the handler bound checks it).
pub(crate) fn nameable_return_type(signature: &Signature) -> Option<&Type> {
    match &signature.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) if find_impl_trait(ty).is_some() => None,
        ReturnType::Type(_, ty) => Some(ty),
    }
}

/// Finds an `impl Trait` anywhere inside a type.
fn find_impl_trait(ty: &Type) -> Option<&Type> {
    match ty {
        Type::ImplTrait(_) => Some(ty),
        Type::Array(array) => find_impl_trait(&array.elem),
        Type::Group(group) => find_impl_trait(&group.elem),
        Type::Paren(paren) => find_impl_trait(&paren.elem),
        Type::Ptr(ptr) => find_impl_trait(&ptr.elem),
        Type::Reference(reference) => find_impl_trait(&reference.elem),
        Type::Slice(slice) => find_impl_trait(&slice.elem),
        Type::Tuple(tuple) => tuple.elems.iter().find_map(find_impl_trait),
        Type::Path(path) => {
            let qself = path
                .qself
                .as_ref()
                .and_then(|qself| find_impl_trait(&qself.ty));
            qself.or_else(|| {
                path.path.segments.iter().find_map(|segment| {
                    let syn::PathArguments::AngleBracketed(arguments) = &segment.arguments else {
                        return None;
                    };
                    arguments.args.iter().find_map(|argument| match argument {
                        syn::GenericArgument::Type(ty) => find_impl_trait(ty),
                        _ => None,
                    })
                })
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn problems(signature: Signature) -> Vec<String> {
        let mut errors = Errors::default();
        check(&signature, &mut errors);
        errors
            .to_compile_errors()
            .into_iter()
            .filter_map(|tree| match tree {
                proc_macro2::TokenTree::Group(group) => {
                    syn::parse2::<syn::LitStr>(group.stream()).ok()
                }
                _ => None,
            })
            .map(|message| message.value())
            .collect()
    }

    #[test]
    fn accepts_handlers() {
        assert!(problems(parse_quote!(async fn hello())).is_empty());
        assert!(
            problems(parse_quote!(
                async fn hello(Json(request): Json<In>, ctx: Context) -> Result<Json<Out>, E>
            ))
            .is_empty()
        );
        assert!(problems(parse_quote!(async fn hello() -> impl IntoOutput)).is_empty());
    }

    #[test]
    fn reports_each_problem() {
        let cases: Vec<(Signature, &str)> = vec![
            (parse_quote!(fn hello()), "`hello` is not async"),
            (parse_quote!(async fn hello<T>(t: T)), "type parameter `T`"),
            (
                parse_quote!(async fn hello<const N: usize>()),
                "const parameter `N`",
            ),
            (
                parse_quote!(async fn hello<'a>(s: &'a str)),
                "lifetime parameters",
            ),
            (parse_quote!(async fn hello(&self)), "not on a method"),
            (
                parse_quote!(async fn hello(self: Arc<Self>)),
                "not on a method",
            ),
            (parse_quote!(async unsafe fn hello()), "can not be `unsafe`"),
            (
                parse_quote!(async extern "C" fn hello()),
                "can not declare an ABI",
            ),
            (parse_quote!(const fn hello()), "can not be `const`"),
            (
                parse_quote!(async fn hello(body: impl FromInvocation)),
                "`impl Trait` in argument position",
            ),
            (
                parse_quote!(async fn hello(body: Option<impl FromInvocation>)),
                "`impl Trait` in argument position",
            ),
            (
                parse_quote!(async fn f(a: A, b: B, c: C, d: D, e: E, f: F, g: G, h: H, i: I)),
                "at most 8 extractor arguments and `f` takes 9",
            ),
        ];
        for (signature, expected) in cases {
            let found = problems(signature);
            assert!(
                found.iter().any(|message| message.contains(expected)),
                "{expected:?} not in {found:?}"
            );
        }
    }

    #[test]
    fn reports_several_problems_at_once() {
        assert_eq!(problems(parse_quote!(fn hello<T, U>(&self))).len(), 4);
    }

    #[test]
    fn types() {
        let signature: Signature = parse_quote!(async fn f(a: A, (b, c): (B, C)) -> R);
        assert_eq!(argument_types(&signature).len(), 2);
        assert!(nameable_return_type(&signature).is_some());
        assert!(nameable_return_type(&parse_quote!(async fn f())).is_none());
        assert!(nameable_return_type(&parse_quote!(async fn f() -> Result<impl X, E>)).is_none());
    }
}
