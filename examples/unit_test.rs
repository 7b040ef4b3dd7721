//! Unit tests: a function is a plain `async fn`, so a test calls it directly,
//! with `Context::default()` where it takes a context. No server, no executor.
//!
//! ```sh
//! cargo test -p faas-examples --example unit_test   # runs the tests below
//! cargo run --example unit_test                     # calls it once through the executor
//! ```
//!
//! The same handler runs unchanged in these tests, in the local executor, in a
//! pod and on the virtual node.

use std::process::ExitCode;

use faas_core::{
    Context, FunctionError, Invocation, Json, LocalExecutor, Registry, function, functions,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
struct Basket {
    items: Vec<Item>,
    coupon: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Item {
    price_cents: u64,
    quantity: u32,
}

#[derive(Debug, PartialEq, Serialize)]
struct Total {
    total_cents: u64,
    call_id: String,
}

/// Adds up a basket; the `HALF` coupon halves it.
#[function(trigger = http(path = "/total", methods = ["POST"]), timeout = "2s")]
async fn total(Json(basket): Json<Basket>, ctx: Context) -> Result<Json<Total>, FunctionError> {
    if basket.items.is_empty() {
        return Err(FunctionError::bad_input("the basket is empty"));
    }
    let mut total_cents: u64 = basket
        .items
        .iter()
        .map(|item| item.price_cents * u64::from(item.quantity))
        .sum();
    match basket.coupon.as_deref() {
        None => {}
        Some("HALF") => total_cents /= 2,
        Some(other) => {
            return Err(FunctionError::bad_input(format!(
                "unknown coupon `{other}`"
            )));
        }
    }
    Ok(Json(Total {
        total_cents,
        call_id: ctx.call_id().to_string(),
    }))
}

#[tokio::main]
async fn main() -> ExitCode {
    let registry = match Registry::try_from_iter(functions![total]) {
        Ok(registry) => registry,
        Err(error) => {
            eprintln!("{}", faas_examples::report(&error));
            return ExitCode::FAILURE;
        }
    };
    let executor = LocalExecutor::new(registry);
    let basket = r#"{"items":[{"price_cents":250,"quantity":4}],"coupon":"HALF"}"#;
    let invocation = Invocation::new(basket).with_header("content-type", "application/json");
    match executor.invoke("total", invocation).await {
        Ok(response) => {
            println!(
                "{} {}",
                response.status(),
                String::from_utf8_lossy(response.body())
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use faas_core::{CallId, ErrorKind, FromInvocation, TriggerSpec};

    use super::*;

    fn basket(items: &[(u64, u32)], coupon: Option<&str>) -> Json<Basket> {
        Json(Basket {
            items: items
                .iter()
                .map(|&(price_cents, quantity)| Item {
                    price_cents,
                    quantity,
                })
                .collect(),
            coupon: coupon.map(str::to_owned),
        })
    }

    // The handler, called like any async fn.
    #[tokio::test]
    async fn adds_up_the_basket() {
        let Json(out) = total(basket(&[(250, 4), (100, 1)], None), Context::default())
            .await
            .unwrap();
        assert_eq!(out.total_cents, 1100);
    }

    #[tokio::test]
    async fn the_coupon_halves_it() {
        let Json(out) = total(basket(&[(250, 4)], Some("HALF")), Context::default())
            .await
            .unwrap();
        assert_eq!(out.total_cents, 500);
    }

    #[tokio::test]
    async fn bad_baskets_are_bad_input() {
        let empty = total(basket(&[], None), Context::default())
            .await
            .unwrap_err();
        assert_eq!(empty.kind(), ErrorKind::BadInput);
        assert_eq!(empty.message(), "the basket is empty");

        let coupon = total(basket(&[(1, 1)], Some("FREE")), Context::default())
            .await
            .unwrap_err();
        assert_eq!(coupon.kind(), ErrorKind::BadInput);
        assert_eq!(coupon.status(), 400);
    }

    // A context built for the test: the handler sees what a host would give it.
    #[tokio::test]
    async fn the_context_reaches_the_handler() {
        let ctx = Context::new("total").with_call_id(CallId::from("call-42"));
        let Json(out) = total(basket(&[(1, 1)], None), ctx).await.unwrap();
        assert_eq!(out.call_id, "call-42");
    }

    // The extractor on its own: what a malformed body becomes before the
    // handler runs.
    #[test]
    fn malformed_json_never_reaches_the_handler() {
        let invocation =
            Invocation::new(r#"{"items": 3}"#).with_header("content-type", "application/json");
        let error = Json::<Basket>::from_invocation(&invocation).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::BadInput);
    }

    // What `#[function]` recorded.
    #[test]
    fn the_definition_carries_the_trigger_and_policy() {
        let registry = Registry::try_from_iter(functions![total]).unwrap();
        let total = registry.get("total").unwrap();
        assert_eq!(
            total.meta().triggers,
            [TriggerSpec::Http {
                path: "/total".into(),
                methods: vec!["POST".into()]
            }]
        );
        assert_eq!(
            total.policy().timeout(),
            Some(std::time::Duration::from_secs(2))
        );
        assert_eq!(
            total.meta().description.as_deref(),
            Some("Adds up a basket; the `HALF` coupon halves it.")
        );
    }
}
