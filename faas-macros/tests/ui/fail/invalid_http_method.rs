use faas_macros::function;

#[function(trigger = http(path = "/orders", methods = ["GET", "POTS"]))]
async fn typo() {}

#[function(trigger = http(path = "/orders", methods = ["post"]))]
async fn lower_case() {}

fn main() {}
