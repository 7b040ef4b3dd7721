use faas_macros::function;

#[function(trigger = htp(path = "/hello"))]
async fn hello() {}

#[function(http(path = "/hello"))]
async fn bare_http() {}

#[function(trigger = http(route = "/hello"))]
async fn route() {}

#[function(trigger = cron)]
async fn no_schedule() {}

#[function(trigger = cron("@daily", timezone = "Paris time"))]
async fn bad_timezone() {}

fn main() {}
