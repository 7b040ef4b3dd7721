use faas_macros::function;

#[function(trigger = http(path = "hello"))]
async fn hello() {}

fn main() {}
