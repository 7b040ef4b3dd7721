//! Redis Streams: every sign-up added to the stream `signups` gets a
//! welcome, at least once, as a member of the consumer group `mailer`.
//!
//! ```sh
//! cargo xtask services up && eval "$(cargo xtask services env)"
//! cargo run -p faas-examples --features events --example redis_signups
//! ```
//!
//! It adds three sign-ups, then welcomes them (and any added later, e.g.
//! `redis-cli XADD signups '*' data '{"email":"a@b.c"}'`) until Ctrl-C.

use std::error::Error;

use faas_core::{Context, Json, LocalExecutor, Registry, TriggerSpec, function, functions};
use faas_triggers::redis::{RedisStreamTrigger, RedisStreamTriggerConfig};
use serde::Deserialize;

#[derive(Deserialize)]
struct Signup {
    email: String,
}

/// Welcomes a new user.
#[function(trigger = redis(stream = "signups", group = "mailer"))]
async fn welcome(Json(signup): Json<Signup>, context: Context) -> String {
    tracing::info!(email = %signup.email, attempt = context.attempt(), "welcomed");
    format!("welcome, {}", signup.email)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt().init();
    let url = std::env::var("FAAS_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
    let mut connection = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    for n in 1..=3 {
        let _: String = redis::cmd("XADD")
            .arg("signups")
            .arg("*")
            .arg("data")
            .arg(format!(r#"{{"email":"user{n}@example.com"}}"#))
            .query_async(&mut connection)
            .await?;
    }
    let registry = Registry::try_from_iter(functions![welcome])?;
    let mut executor = LocalExecutor::builder(registry.clone());
    for function in registry.iter() {
        for spec in &function.meta().triggers {
            if let TriggerSpec::RedisStream { stream, group } = spec {
                let name = function.name();
                let config =
                    RedisStreamTriggerConfig::new(&url, stream, group.as_deref().unwrap_or(name));
                executor = executor.trigger(RedisStreamTrigger::new(name, config)?);
            }
        }
    }
    executor.build().shutdown_on_signal().run().await?;
    Ok(())
}
