use faas_macros::function;

#[function(trigger = cron("*/5 * * *"))]
async fn too_few_fields() {}

#[function(trigger = cron("0 61 * * * *"))]
async fn minute_out_of_range() {}

#[function(trigger = cron("0 9 * * MON-FRY"))]
async fn bad_weekday() {}

#[function(trigger = cron("@dayly"))]
async fn bad_nickname() {}

#[function(trigger = cron("@daily", timezone = "Europe/Pariss"))]
async fn misspelt_zone() {}

fn main() {}
