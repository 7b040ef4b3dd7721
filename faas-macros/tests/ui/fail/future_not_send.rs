use std::rc::Rc;

use faas_macros::function;

async fn audit() {}

#[function]
async fn count(body: String) -> String {
    let shared = Rc::new(body);
    audit().await;
    shared.to_string()
}

fn main() {}
