use bytes::Bytes;
use faas_macros::function;

// `Bytes` is never absent (an empty body is still a body): `Option<Bytes>`
// would never be `None`, so it is refused.
#[function]
async fn maybe(body: Option<Bytes>) -> Bytes {
    body.unwrap_or_default()
}

fn main() {}
