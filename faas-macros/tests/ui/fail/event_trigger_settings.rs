use faas_macros::function;

#[function(trigger = nats(stream = "ORDERS", subject = "orders..created"))]
async fn malformed_subject() {}

#[function(trigger = redis(group = "mailer"))]
async fn missing_stream() {}

#[function(trigger = postgres(tabel = "orders"))]
async fn misspelled_table() {}

#[function(trigger = storage)]
async fn no_directory() {}

fn main() {}
