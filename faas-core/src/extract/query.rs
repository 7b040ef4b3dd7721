//! [`Query`]: the URI's query string, read as `T`.

use serde::de::DeserializeOwned;

use crate::error::FunctionError;
use crate::extract::{FromInvocation, OptionalFromInvocation};
use crate::invocation::Invocation;

/// The URI's query string (`?page=2&tag=new`), read as `T` with
/// `serde_urlencoded`: a struct by field name, or a map.
///
/// A query that does not read as `T` (a missing field, a value that does not
/// parse) is [`BadInput`](crate::ErrorKind::BadInput) (400). A URI without a
/// query reads as an empty one, so a struct of optional fields always reads;
/// `Option<Query<T>>` is `None` when the URI has no query at all.
///
/// ```
/// use faas_core::extract::Query;
/// use faas_core::{ErrorKind, FromInvocation, Invocation};
///
/// #[derive(Debug, serde::Deserialize)]
/// struct Page { page: u32, per_page: Option<u32> }
///
/// let call = Invocation::new("").with_uri("/orders?page=2".parse().unwrap());
/// let Query(page) = Query::<Page>::from_invocation(&call).unwrap();
/// assert_eq!((page.page, page.per_page), (2, None));
///
/// let bad = Invocation::new("").with_uri("/orders?page=two".parse().unwrap());
/// assert_eq!(Query::<Page>::from_invocation(&bad).unwrap_err().kind(), ErrorKind::BadInput);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    /// The value inside.
    pub fn into_inner(self) -> T {
        self.0
    }
}

fn read<T: DeserializeOwned>(query: &str) -> Result<T, FunctionError> {
    serde_urlencoded::from_str(query).map_err(|error| {
        FunctionError::bad_input(format!("invalid query string: {error}")).with_source(error)
    })
}

impl<T: DeserializeOwned> FromInvocation for Query<T> {
    fn from_invocation(invocation: &Invocation) -> Result<Self, FunctionError> {
        read(invocation.uri().query().unwrap_or_default()).map(Query)
    }
}

impl<T: DeserializeOwned> OptionalFromInvocation for Query<T> {
    fn from_invocation_optional(invocation: &Invocation) -> Result<Option<Self>, FunctionError> {
        invocation
            .uri()
            .query()
            .map(|query| read(query).map(Query))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::ErrorKind;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Filter {
        tag: Option<String>,
        limit: Option<u8>,
    }

    fn at(uri: &str) -> Invocation {
        Invocation::new("").with_uri(uri.parse().unwrap())
    }

    #[test]
    fn reads_and_fails() {
        let Query(filter) = Query::<Filter>::from_invocation(&at("/x?tag=a%20b&limit=3")).unwrap();
        assert_eq!(
            filter,
            Filter {
                tag: Some("a b".into()),
                limit: Some(3)
            }
        );
        let Query(empty) = Query::<Filter>::from_invocation(&at("/x")).unwrap();
        assert_eq!(empty.tag, None);
        let err = Query::<Filter>::from_invocation(&at("/x?limit=999")).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadInput);
        let map = Query::<HashMap<String, String>>::from_invocation(&at("/?a=1&b=2"))
            .unwrap()
            .0;
        assert_eq!(map.len(), 2);
        assert!(
            Option::<Query<Filter>>::from_invocation(&at("/x"))
                .unwrap()
                .is_none()
        );
        assert!(Option::<Query<Filter>>::from_invocation(&at("/x?limit=no")).is_err());
    }
}
