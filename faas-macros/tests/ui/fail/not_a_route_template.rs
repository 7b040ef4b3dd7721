use faas_macros::function;

#[function(trigger = http(path = "/orders/{id"))]
async fn unclosed() {}

#[function(trigger = http(path = "/files/{*rest}/more"))]
async fn catch_all_not_last() {}

fn main() {}
