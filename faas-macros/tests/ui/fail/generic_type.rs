use faas_core::Json;
use faas_macros::function;

#[function]
async fn echo<T: serde::de::DeserializeOwned + serde::Serialize>(Json(value): Json<T>) -> Json<T> {
    Json(value)
}

fn main() {}
