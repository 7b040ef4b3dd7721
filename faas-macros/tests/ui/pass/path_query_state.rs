//! Route templates, the query, state and extensions, an extractor that
//! waits, and outputs that set headers, through `#[function]`.

use faas_core::extract::AsyncFromInvocation;
use faas_core::{
    Extension, Function, FunctionError, Invocation, Path, PathParams, Query, State,
    handler_fn,
};
use faas_macros::function;
use http::{HeaderMap, StatusCode};

#[derive(serde::Deserialize)]
struct Paging {
    page: Option<u32>,
}

#[derive(Clone)]
struct Db(&'static str);

/// Waits for its value, as a session lookup would.
struct Session(String);

impl AsyncFromInvocation for Session {
    async fn from_invocation_async(invocation: &Invocation) -> Result<Self, FunctionError> {
        tokio::task::yield_now().await;
        Ok(Session(invocation.context().call_id().to_string()))
    }
}

#[function(trigger = http(path = "/orders/{order}/items/{item}", methods = ["GET"]))]
async fn item(
    Path((order, item)): Path<(u64, String)>,
    Query(paging): Query<Paging>,
    State(db): State<Db>,
    Extension(tenant): Extension<&'static str>,
    _session: Session,
) -> (StatusCode, [(&'static str, String); 1], String) {
    (
        StatusCode::OK,
        [("x-db", db.0.to_owned())],
        format!("{tenant}: order {order}, item {item}, page {:?}", paging.page),
    )
}

#[function(trigger = http(path = "/files/{*path}"))]
async fn file(path: Option<Path<String>>) -> (HeaderMap, String) {
    (HeaderMap::new(), path.map(|Path(path)| path).unwrap_or_default())
}

fn main() {
    let _ = __faas_function_file::definition();
    let definition = __faas_function_item::definition();
    assert_eq!(definition.name(), "item");
    let call = Invocation::new("")
        .with_uri("/orders/1/items/pen?page=3".parse().unwrap())
        .with_path_params(PathParams::new().with("order", "1").with("item", "pen"))
        .with_state(Db("main"))
        .with_extension("acme");
    let response = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(handler_fn(item).call(call))
        .unwrap();
    assert_eq!(response.headers()["x-db"], "main");
    assert_eq!(response.body(), "acme: order 1, item pen, page Some(3)");
}
