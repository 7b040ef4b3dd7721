use faas_core::Json;
use faas_macros::function;

struct Order {
    id: u64,
}

#[function]
async fn place(order: Order, count: u32) -> Json<u64> {
    Json(order.id + u64::from(count))
}

fn main() {}
