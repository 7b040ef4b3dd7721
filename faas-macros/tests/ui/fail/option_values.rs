use faas_macros::function;

#[function(name = "hello world")]
async fn spaced() {}

#[function(concurrency = 0)]
async fn never() {}

#[function(max_attempts = "3")]
async fn quoted() {}

#[function(crate = "not a path")]
async fn elsewhere() {}

fn main() {}
