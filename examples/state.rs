//! State and route parameters: a function that reads a shared store (a
//! stand-in for a database pool or an HTTP client) through `State`, and the
//! item it is asked for through `Path`, with no global static.
//!
//! The same handler runs unchanged in a unit test (the state given to the
//! one call), in the local executor and in the function runtime (the state
//! given once to the host, cloned into each call):
//!
//! ```sh
//! cargo run --example state
//! curl -s http://127.0.0.1:8080/items/tea            # {"sku":"tea","stock":12}
//! curl -s 'http://127.0.0.1:8080/items/tea?take=5'    # {"sku":"tea","stock":7}
//! curl -si http://127.0.0.1:8080/items/nope           # 404, JSON error body
//! ```

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};

use faas_core::{FunctionError, Json, Path, Query, Registry, State, function, functions};
use serde::{Deserialize, Serialize};

/// The shared store: cheap to clone, every clone sees the same stock.
#[derive(Clone, Default)]
struct Inventory {
    stock: Arc<Mutex<HashMap<String, u32>>>,
}

impl Inventory {
    fn with(items: &[(&str, u32)]) -> Self {
        let inventory = Inventory::default();
        inventory
            .stock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(items.iter().map(|(sku, n)| ((*sku).to_owned(), *n)));
        inventory
    }
}

#[derive(Deserialize)]
struct Take {
    take: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Item {
    sku: String,
    stock: u32,
}

/// Reads an item's stock, taking some when asked (`?take=N`).
#[function(trigger = http(path = "/items/{sku}", methods = ["GET", "POST"]))]
async fn item(
    State(inventory): State<Inventory>,
    Path(sku): Path<String>,
    Query(take): Query<Take>,
) -> Result<Json<Item>, FunctionError> {
    let mut stock = inventory
        .stock
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let left = stock
        .get_mut(&sku)
        .ok_or_else(|| FunctionError::not_found(format!("no item `{sku}`")))?;
    let taken = take.take.unwrap_or(0);
    if taken > *left {
        return Err(FunctionError::user_with_status(
            http::StatusCode::CONFLICT,
            format!("only {left} of `{sku}` left"),
        ));
    }
    *left -= taken;
    Ok(Json(Item { sku, stock: *left }))
}

fn registry() -> faas_core::Result<Registry> {
    Registry::try_from_iter(functions![item])
}

#[tokio::main]
async fn main() -> ExitCode {
    let served = async {
        let addr = faas_examples::listen_addr()?;
        let config = faas_triggers::RuntimeConfig::from_vars([
            ("POD_IP", addr.ip().to_string()),
            ("PORT", addr.port().to_string()),
        ])?;
        faas_triggers::Runtime::new(registry()?, config)
            .state(Inventory::with(&[("tea", 12), ("cup", 3)]))
            .shutdown_on_signal()
            .run()
            .await?;
        Ok::<_, faas_examples::Error>(())
    };
    match served.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}", faas_examples::report(&error));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use faas_core::{ErrorKind, Function, Invocation, LocalExecutor, PathParams, handler_fn};
    use faas_triggers::{Runtime, RuntimeConfig};
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    use super::*;

    /// A unit test gives the one call its state and route parameters.
    #[tokio::test]
    async fn in_a_unit_test() {
        let call = Invocation::new("")
            .with_uri("/items/tea?take=2".parse().unwrap())
            .with_state(Inventory::with(&[("tea", 5)]))
            .with_path_params(PathParams::new().with("sku", "tea"));
        let response = handler_fn(item).call(call).await.unwrap();
        assert_eq!(response.body(), r#"{"sku":"tea","stock":3}"#);
    }

    /// The local executor is given the state once; every call shares it.
    #[tokio::test]
    async fn in_the_local_executor() {
        let executor = LocalExecutor::builder(registry().unwrap())
            .state(Inventory::with(&[("cup", 3)]))
            .build();
        let take = |n: u32| {
            Invocation::new("")
                .with_uri(format!("/items/cup?take={n}").parse().unwrap())
                .with_path_params(PathParams::new().with("sku", "cup"))
        };
        executor.invoke("item", take(2)).await.unwrap();
        let error = executor.invoke("item", take(2)).await.unwrap_err();
        assert_eq!(error.status(), http::StatusCode::CONFLICT);
        let missing = Invocation::new("").with_path_params(PathParams::new().with("sku", "mug"));
        let error = executor.invoke("item", missing).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::NotFound);
    }

    /// The runtime matches the route template and serves the same state.
    #[tokio::test]
    async fn in_the_runtime() {
        let config = RuntimeConfig::from_vars([("POD_IP", "127.0.0.1"), ("PORT", "0")]).unwrap();
        let runtime = Runtime::new(registry().unwrap(), config)
            .state(Inventory::with(&[("tea", 12)]))
            .bind()
            .await
            .unwrap();
        let addr = runtime.local_addr().unwrap();
        let stop = runtime.shutdown_handle();
        let serving = tokio::spawn(runtime.run());

        let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let get = |path: &str| {
            let uri: http::Uri = format!("http://{addr}{path}").parse().unwrap();
            let response = client.get(uri);
            async move {
                let response = response.await.unwrap();
                let status = response.status();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                (status, body)
            }
        };
        let (status, body) = get("/items/tea?take=5").await;
        assert_eq!(status, 200);
        let item: Item = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            item,
            Item {
                sku: "tea".into(),
                stock: 7
            }
        );
        // Behind a gateway, under `/function/item`, the template still matches.
        let (_, body) = get("/function/item/items/tea").await;
        assert_eq!(body, r#"{"sku":"tea","stock":7}"#);
        let (status, body) = get("/items/nope").await;
        assert_eq!(status, 404);
        assert!(String::from_utf8_lossy(&body).contains("no item `nope`"));
        let (status, _) = get("/items/tea?take=many").await;
        assert_eq!(status, 400);

        stop.shutdown();
        serving.await.unwrap().unwrap();
    }
}
