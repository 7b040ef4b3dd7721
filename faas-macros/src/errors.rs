//! Collecting several compile errors so that one build reports them all.

use proc_macro2::TokenStream;

/// A list of errors, each spanned on the token it is about.
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    /// Records an error.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(combined) => combined.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// Whether no error has been recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.combined.is_none()
    }

    /// One `compile_error!` per recorded error.
    pub(crate) fn to_compile_errors(&self) -> TokenStream {
        self.combined
            .as_ref()
            .map(syn::Error::to_compile_error)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::Errors;
    use proc_macro2::Span;

    #[test]
    fn collects_every_error() {
        let mut errors = Errors::default();
        assert!(errors.is_empty());
        assert!(errors.to_compile_errors().is_empty());
        errors.push(syn::Error::new(Span::call_site(), "first"));
        errors.push(syn::Error::new(Span::call_site(), "second"));
        assert!(!errors.is_empty());
        let rendered = errors.to_compile_errors().to_string();
        assert!(
            rendered.contains("first") && rendered.contains("second"),
            "{rendered}"
        );
    }
}
