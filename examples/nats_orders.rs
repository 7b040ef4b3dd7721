//! NATS JetStream: every order published on `orders.created` is billed once
//! it arrives, at least once, with retries by redelivery.
//!
//! ```sh
//! cargo xtask services up && eval "$(cargo xtask services env)"
//! cargo run -p faas-examples --features events --example nats_orders
//! ```
//!
//! It makes the stream `ORDERS` if missing, publishes three orders, and
//! bills them (and any published later) until Ctrl-C.

use std::error::Error;

use async_nats::jetstream::{self, stream};
use faas_core::{Context, FunctionError, Json, Registry, function, functions};
use serde::Deserialize;

#[derive(Deserialize)]
struct Order {
    id: u64,
    total: f64,
}

/// Bills an order; the event id (`ORDERS:<sequence>`) is the same at every
/// redelivery, so a real biller would use it to bill once.
#[function(trigger = nats(stream = "ORDERS", subject = "orders.created", consumer = "billing"))]
async fn bill(Json(order): Json<Order>, context: Context) -> Result<String, FunctionError> {
    tracing::info!(order = order.id, total = order.total, attempt = context.attempt(), call = %context.call_id(), "billed");
    Ok(format!("billed order {}", order.id))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt().init();
    let url = std::env::var("FAAS_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let js = jetstream::new(async_nats::connect(&url).await?);
    js.get_or_create_stream(stream::Config {
        name: "ORDERS".into(),
        subjects: vec!["orders.>".into()],
        ..Default::default()
    })
    .await?;
    for id in 1..=3 {
        js.publish(
            "orders.created",
            format!(r#"{{"id":{id},"total":{}.50}}"#, id * 10).into(),
        )
        .await?
        .await?;
    }
    // The function runtime runs the trigger the function declares, on the
    // server above (FAAS_NATS_URL, or the local default), and serves HTTP
    // on PORT (8080).
    let registry = Registry::try_from_iter(functions![bill])?;
    let config = faas_triggers::RuntimeConfig::from_env()?
        .with_source_setting(faas_triggers::ENV_NATS_URL, &url)?;
    faas_triggers::Runtime::new(registry, config)
        .shutdown_on_signal()
        .run()
        .await?;
    Ok(())
}
