use faas_macros::function;

#[function(timout = "5s")]
async fn slow() {}

#[function(max_in_flight = 10)]
async fn busy() {}

#[function(banana = 1)]
async fn odd() {}

fn main() {}
