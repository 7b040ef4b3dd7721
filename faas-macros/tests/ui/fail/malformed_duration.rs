use faas_macros::function;

#[function(timeout = "30 seconds")]
async fn no_unit() {}

#[function(timeout = "1.5s")]
async fn fraction() {}

#[function(timeout = 30)]
async fn not_a_string() {}

fn main() {}
