//! PostgreSQL: every order inserted or updated in the table `orders`
//! becomes a call, through an outbox the trigger sets up itself.
//!
//! ```sh
//! cargo xtask services up && eval "$(cargo xtask services env)"
//! cargo run -p faas-examples --features events --example postgres_orders
//! ```
//!
//! It makes the table `orders` if missing, installs the trigger's outbox
//! and row trigger, inserts three orders, and invoices them (and any
//! written later) until Ctrl-C.

use std::error::Error;

use faas_core::{CloudEvent, FunctionError, Registry, function, functions};
use faas_triggers::postgres::{PostgresTrigger, PostgresTriggerConfig};
use serde::Deserialize;
use tokio_postgres::NoTls;

#[derive(Deserialize)]
struct Order {
    id: i32,
    total: i32,
}

/// Invoices an order; the event says whether the row was inserted or updated.
#[function(trigger = postgres(table = "orders"))]
async fn invoice(event: CloudEvent) -> Result<String, FunctionError> {
    let order: Order = event.data_json()?;
    tracing::info!(order = order.id, total = order.total, change = %event.ty, "invoiced");
    Ok(format!("invoice for order {}", order.id))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt().init();
    let url = std::env::var("FAAS_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS orders (id serial PRIMARY KEY, total integer NOT NULL)",
        )
        .await?;
    let registry = Registry::try_from_iter(functions![invoice])?;
    // Install the outbox and the row trigger now, so the writes below are
    // captured whenever the runtime's trigger starts (it installs them too,
    // idempotently).
    PostgresTrigger::new("invoice", PostgresTriggerConfig::new(&url, "orders"))?
        .install()
        .await?;
    for total in [10, 20, 30] {
        client
            .execute("INSERT INTO orders (total) VALUES ($1)", &[&total])
            .await?;
    }
    // The function runtime runs the trigger the function declares, on the
    // database above (FAAS_POSTGRES_URL, or the local default), and serves
    // HTTP on PORT (8080).
    let config = faas_triggers::RuntimeConfig::from_env()?
        .with_source_setting(faas_triggers::ENV_POSTGRES_URL, &url)?;
    faas_triggers::Runtime::new(registry, config)
        .shutdown_on_signal()
        .run()
        .await?;
    Ok(())
}
