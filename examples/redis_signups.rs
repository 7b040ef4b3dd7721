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

use faas_core::{Context, Json, Registry, function, functions};
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
    // The function runtime runs the trigger the function declares, on the
    // server above (FAAS_REDIS_URL, or the local default), and serves HTTP
    // on PORT (8080).
    let registry = Registry::try_from_iter(functions![welcome])?;
    let config = faas_triggers::RuntimeConfig::from_env()?
        .with_source_setting(faas_triggers::ENV_REDIS_URL, &url)?;
    faas_triggers::Runtime::new(registry, config)
        .shutdown_on_signal()
        .run()
        .await?;
    Ok(())
}
