use faas_macros::{function, functions};

#[function]
async fn registered() {}

async fn plain() {}

fn main() {
    let _ = functions![registered, plain];
}
