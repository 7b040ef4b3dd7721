use faas_macros::function;

#[function(timeout = "5s", max_attempts = 3, timeout = "10s")]
async fn twice() {}

#[function(trigger = cron("@daily"), trigger = cron("@daily"))]
async fn same_trigger_twice() {}

#[function(trigger = http(path = "/a", path = "/b"))]
async fn path_twice() {}

fn main() {}
