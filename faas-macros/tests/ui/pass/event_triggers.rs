//! Event source triggers, read back from the definition.

use faas_core::{CloudEvent, Json, TriggerSpec};
use faas_macros::function;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct Order {
    pub id: u64,
}

#[function(
    trigger = nats(stream = "ORDERS", subject = "orders.*.created", consumer = "billing"),
    trigger = redis(stream = "orders", group = "billing"),
    crate = "::faas_core",
)]
pub async fn bill(Json(order): Json<Order>) -> String {
    format!("billed {}", order.id)
}

#[function(
    trigger = postgres(table = "shop.orders"),
    trigger = storage(dir = "/srv/uploads"),
    trigger = kube(api_version = "v1", kind = "ConfigMap", fields = "metadata.name=settings"),
    crate = "::faas_core",
)]
pub async fn audit(event: CloudEvent) -> String {
    event.id
}

fn main() {
    let bill = __faas_function_bill::definition();
    assert_eq!(
        bill.meta().triggers,
        [
            TriggerSpec::Nats {
                stream: "ORDERS".into(),
                subject: Some("orders.*.created".into()),
                consumer: Some("billing".into()),
            },
            TriggerSpec::RedisStream {
                stream: "orders".into(),
                group: Some("billing".into()),
            },
        ]
    );
    let audit = __faas_function_audit::definition();
    assert_eq!(
        audit.meta().triggers,
        [
            TriggerSpec::postgres("shop.orders"),
            TriggerSpec::storage("/srv/uploads"),
            TriggerSpec::Kube {
                api_version: "v1".into(),
                object_kind: "ConfigMap".into(),
                namespace: None,
                label_selector: None,
                field_selector: Some("metadata.name=settings".into()),
            },
        ]
    );
}
