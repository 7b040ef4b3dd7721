//! Every option at once, read back from the definition.

use std::time::Duration;

use faas_core::{Context, FunctionError, Json, TriggerSpec};
use faas_macros::function;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub struct Order {
    pub id: u64,
}

#[derive(Serialize)]
pub struct Receipt {
    pub id: u64,
    pub attempt: u32,
}

#[function(
    name = "place-order",
    trigger = http(path = "/orders", methods = ["POST", "PUT"]),
    trigger = http(path = "/orders/{id}", methods = ["GET"]),
    trigger = cron("0 0 9 * * MON-FRI", timezone = "Europe/Paris"),
    trigger = cron("@hourly"),
    timeout = "1m 30s 500ms",
    concurrency = 64,
    max_attempts = 5,
    description = "Places an order",
    crate = "::faas_core",
)]
pub async fn place_order(Json(order): Json<Order>, ctx: Context) -> Result<Json<Receipt>, FunctionError> {
    Ok(Json(Receipt { id: order.id, attempt: ctx.attempt() }))
}

fn main() {
    let definition = __faas_function_place_order::definition();
    assert_eq!(definition.name(), "place-order");
    assert_eq!(definition.meta().description.as_deref(), Some("Places an order"));
    assert_eq!(
        definition.meta().triggers,
        vec![
            TriggerSpec::Http { path: "/orders".into(), methods: vec!["POST".into(), "PUT".into()] },
            TriggerSpec::Http { path: "/orders/{id}".into(), methods: vec!["GET".into()] },
            TriggerSpec::Cron {
                schedule: "0 0 9 * * MON-FRI".into(),
                timezone: Some("Europe/Paris".into()),
            },
            TriggerSpec::Cron { schedule: "@hourly".into(), timezone: None },
        ]
    );
    let policy = definition.policy();
    assert_eq!(policy.timeout(), Some(Duration::from_millis(90_500)));
    assert_eq!(policy.max_in_flight(), Some(64));
    assert_eq!(policy.retry().max_attempts, 5);
}
