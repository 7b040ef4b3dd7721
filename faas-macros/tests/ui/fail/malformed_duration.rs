use faas_macros::function;

#[function(timeout = "30 parsecs")]
async fn unknown_unit() {}

#[function(timeout = "30")]
async fn no_unit() {}

#[function(timeout = 30)]
async fn not_a_string() {}

fn main() {}
