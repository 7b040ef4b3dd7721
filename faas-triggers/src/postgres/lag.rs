//! [`PostgresLag`]: the rows waiting in the outbox, for the autoscaler.

use async_trait::async_trait;
use faas_core::trigger::{Lag, LagSource};
use tokio::sync::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use super::config::PostgresTriggerConfig;
use super::setup::OUTBOX;

/// The work a PostgreSQL trigger holds: its rows in the outbox, claimed or
/// not. Before the outbox exists (the trigger never ran), nothing.
pub struct PostgresLag {
    function: String,
    subscriber: String,
    config: PostgresTriggerConfig,
    client: Mutex<Option<Client>>,
}

impl std::fmt::Debug for PostgresLag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresLag")
            .field("function", &self.function)
            .field("subscriber", &self.subscriber)
            .finish()
    }
}

impl PostgresLag {
    pub(crate) fn new(function: String, subscriber: String, config: PostgresTriggerConfig) -> Self {
        PostgresLag {
            function,
            subscriber,
            config,
            client: Mutex::new(None),
        }
    }
}

fn failed(error: tokio_postgres::Error) -> faas_core::Error {
    faas_core::Error::trigger("postgres lag", error)
}

#[async_trait]
impl LagSource for PostgresLag {
    fn function(&self) -> &str {
        &self.function
    }

    async fn lag(&self) -> Result<Lag, faas_core::Error> {
        let mut held = self.client.lock().await;
        if held.as_ref().is_none_or(Client::is_closed) {
            let (client, connection) = tokio_postgres::connect(&self.config.url, NoTls)
                .await
                .map_err(failed)?;
            tokio::spawn(connection);
            *held = Some(client);
        }
        let client = held.as_ref().expect("connected above");
        let counted = client
            .query_one(
                &format!("SELECT count(*) FROM {OUTBOX} WHERE subscriber = $1"),
                &[&self.subscriber],
            )
            .await;
        match counted {
            Ok(row) => {
                let count: i64 = row.try_get(0).map_err(failed)?;
                Ok(Lag::pending(u64::try_from(count).unwrap_or(0)))
            }
            Err(error) if error.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(Lag::IDLE),
            Err(error) => Err(failed(error)),
        }
    }
}
