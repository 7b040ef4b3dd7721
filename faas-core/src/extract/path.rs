//! [`Path`]: the parameters of the route template a call matched
//! (`/orders/{id}`), and [`PathParams`], where a host puts them.

mod de;

use std::sync::Arc;

use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;

use crate::error::FunctionError;
use crate::extract::{FromInvocation, OptionalFromInvocation};
use crate::invocation::Invocation;

/// The parameters of the route template the call matched, read as `T`.
///
/// An HTTP trigger matches the request path against the templates functions
/// declare (`TriggerSpec::http("/orders/{id}/items/{item}")`) and puts the
/// parameters in the invocation as [`PathParams`]. `T` is one value when
/// there is one parameter (`Path<u64>`), a tuple in template order
/// (`Path<(u64, String)>`), or a struct or map by name. A value that does not
/// parse as its type is [`BadInput`](crate::ErrorKind::BadInput) (400) naming
/// the parameter; a call that matched no template (another trigger, or a
/// path under `/function/{name}` that none of the function's templates
/// matches) has no parameters, which is [`NotFound`](crate::ErrorKind::NotFound)
/// (404). `Option<Path<T>>` is `None` then.
///
/// ```
/// use faas_core::extract::{Path, PathParams};
/// use faas_core::{ErrorKind, FromInvocation, Invocation};
///
/// #[derive(serde::Deserialize)]
/// struct Item { order: u64, item: String }
///
/// let params = PathParams::new().with("order", "42").with("item", "tea cup");
/// let call = Invocation::new("").with_path_params(params);
/// let Path((order, item)) = Path::<(u64, String)>::from_invocation(&call).unwrap();
/// assert_eq!((order, item.as_str()), (42, "tea cup"));
/// let Path(by_name) = Path::<Item>::from_invocation(&call).unwrap();
/// assert_eq!(by_name.order, 42);
///
/// let bad = Invocation::new("").with_path_params(PathParams::new().with("order", "x"));
/// let error = Path::<u64>::from_invocation(&bad).unwrap_err();
/// assert_eq!(error.kind(), ErrorKind::BadInput);
/// assert!(error.message().contains("`order`"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Path<T>(pub T);

impl<T> Path<T> {
    /// The value inside.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned> FromInvocation for Path<T> {
    fn from_invocation(invocation: &Invocation) -> Result<Self, FunctionError> {
        Self::from_invocation_optional(invocation)?.ok_or_else(|| {
            FunctionError::not_found(format!(
                "the path {} matched no route template of this function, so it has no path parameters",
                invocation.uri().path()
            ))
        })
    }
}

impl<T: DeserializeOwned> OptionalFromInvocation for Path<T> {
    fn from_invocation_optional(invocation: &Invocation) -> Result<Option<Self>, FunctionError> {
        let Some(params) = invocation.extensions().get::<PathParams>() else {
            return Ok(None);
        };
        T::deserialize(de::PathDeserializer::new(&params.params))
            .map(|value| Some(Path(value)))
            .map_err(|error| {
                FunctionError::bad_input(format!("invalid path: {error}")).with_source(error)
            })
    }
}

/// The parameters of a matched route template, by name, in template order;
/// values percent-decoded.
///
/// A host that matches routes puts them in the invocation
/// ([`Invocation::with_path_params`]); [`Path`] reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathParams {
    params: Vec<(Arc<str>, String)>,
}

impl PathParams {
    /// No parameters (a template without any matched).
    pub fn new() -> Self {
        Self::default()
    }

    /// The parameters of a match, as they appear in the path: each value is
    /// percent-decoded.
    ///
    /// # Errors
    ///
    /// [`BadInput`](crate::ErrorKind::BadInput) when a value is not UTF-8 once
    /// decoded.
    pub fn decode<'a>(
        matched: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, FunctionError> {
        let mut params = PathParams::new();
        for (name, raw) in matched {
            let value = percent_decode_str(raw).decode_utf8().map_err(|error| {
                FunctionError::bad_input(format!(
                    "path parameter `{name}` is not UTF-8 once percent-decoded"
                ))
                .with_source(error)
            })?;
            params.push(name, value.into_owned());
        }
        Ok(params)
    }

    /// Adds a parameter (its value already decoded).
    pub fn push(&mut self, name: impl Into<Arc<str>>, value: impl Into<String>) {
        self.params.push((name.into(), value.into()));
    }

    /// Adds a parameter, for chaining.
    #[must_use]
    pub fn with(mut self, name: impl Into<Arc<str>>, value: impl Into<String>) -> Self {
        self.push(name, value);
        self
    }

    /// The value of the parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| &**key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The parameters in template order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params
            .iter()
            .map(|(name, value)| (&**name, value.as_str()))
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ErrorKind;

    fn call(params: &[(&str, &str)]) -> Invocation {
        Invocation::new("").with_path_params(PathParams::decode(params.iter().copied()).unwrap())
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Key {
        tenant: String,
        id: u32,
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(rename_all = "lowercase")]
    enum Color {
        Red,
        Blue,
    }

    #[test]
    fn shapes() {
        let one = call(&[("id", "7")]);
        assert_eq!(Path::<u32>::from_invocation(&one).unwrap().0, 7);
        assert_eq!(Path::<String>::from_invocation(&one).unwrap().0, "7");
        assert_eq!(Path::<(u8,)>::from_invocation(&one).unwrap().0, (7,));

        let two = call(&[("tenant", "acme%20co"), ("id", "9")]);
        assert_eq!(
            Path::<Key>::from_invocation(&two).unwrap().0,
            Key {
                tenant: "acme co".into(),
                id: 9
            }
        );
        let (tenant, id) = Path::<(String, i64)>::from_invocation(&two).unwrap().0;
        assert_eq!((tenant.as_str(), id), ("acme co", 9));
        let map = Path::<BTreeMap<String, String>>::from_invocation(&two)
            .unwrap()
            .0;
        assert_eq!(map["id"], "9");

        let color = call(&[("c", "blue")]);
        assert_eq!(
            Path::<Color>::from_invocation(&color).unwrap().0,
            Color::Blue
        );
        assert_eq!(
            Path::<Option<bool>>::from_invocation(&call(&[("b", "true")]))
                .unwrap()
                .0,
            Some(true)
        );
        let _ = Color::Red;
    }

    #[test]
    fn errors() {
        let err = Path::<u32>::from_invocation(&call(&[("id", "seven")])).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
        assert!(err.message().contains("`id`"), "{}", err.message());
        assert!(err.message().contains("seven"), "{}", err.message());

        let two = call(&[("a", "1"), ("b", "2")]);
        let err = Path::<u32>::from_invocation(&two).unwrap_err();
        assert!(
            err.message().contains("2 path parameters"),
            "{}",
            err.message()
        );
        let err = Path::<(u8, u8, u8)>::from_invocation(&two).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);

        let err = Path::<u32>::from_invocation(&Invocation::new("")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(
            Option::<Path<u32>>::from_invocation(&Invocation::new(""))
                .unwrap()
                .is_none()
        );
        assert!(Option::<Path<u32>>::from_invocation(&call(&[("id", "x")])).is_err());

        let err = PathParams::decode([("id", "%ff")]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
    }

    #[test]
    fn params_lookup() {
        let params = PathParams::new().with("a", "1").with("b", "2");
        assert_eq!(params.get("b"), Some("2"));
        assert_eq!(params.get("c"), None);
        assert_eq!(params.len(), 2);
        assert!(!params.is_empty());
        assert_eq!(
            params.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }
}
