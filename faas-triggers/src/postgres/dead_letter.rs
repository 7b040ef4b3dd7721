//! [`PostgresDeadLetter`]: failed rows written to a dead-letter table.

use std::sync::Arc;

use async_trait::async_trait;
use faas_core::{DeadLetter, DeadLetterEntry, Error};
use tokio_postgres::Client;

/// Inserts each letter into a table (made by the trigger's setup):
/// `payload` (the row as delivered, JSON bytes), `headers` and `attributes`
/// (JSON objects), `error`, `error_kind`, `attempts`, `failed_at`,
/// `function`, `call_id`, `subscriber`. A failed insert is an error: the
/// row is then not removed from the outbox.
#[derive(Clone)]
pub struct PostgresDeadLetter {
    client: Arc<Client>,
    table: String,
    subscriber: String,
}

impl std::fmt::Debug for PostgresDeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresDeadLetter")
            .field("table", &self.table)
            .field("subscriber", &self.subscriber)
            .finish()
    }
}

impl PostgresDeadLetter {
    /// Letters into `table` over `client`, marked as `subscriber`'s.
    pub fn new(
        client: Arc<Client>,
        table: impl Into<String>,
        subscriber: impl Into<String>,
    ) -> Self {
        PostgresDeadLetter {
            client,
            table: table.into(),
            subscriber: subscriber.into(),
        }
    }
}

#[async_trait]
impl DeadLetter for PostgresDeadLetter {
    async fn dead_letter(&self, letter: DeadLetterEntry) -> Result<(), Error> {
        let (parts, payload) = letter.request.into_parts();
        let headers: serde_json::Map<String, serde_json::Value> = parts
            .headers
            .iter()
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.into())))
            .collect();
        let attributes: serde_json::Map<String, serde_json::Value> = letter
            .attributes
            .iter()
            .map(|(name, value)| (name.clone(), value.clone().into()))
            .collect();
        let statement = format!(
            "INSERT INTO {} (subscriber, function, call_id, payload, headers, attributes, error, \
             error_kind, attempts, failed_at) \
             VALUES ($1, $2, $3, $4, ($5::text)::jsonb, ($6::text)::jsonb, $7, $8, $9, $10)",
            self.table
        );
        let attempts = i32::try_from(letter.attempts).unwrap_or(i32::MAX);
        self.client
            .execute(
                &statement,
                &[
                    &self.subscriber,
                    &letter.function,
                    &letter.call_id.as_str(),
                    &payload.as_ref(),
                    &serde_json::Value::Object(headers).to_string(),
                    &serde_json::Value::Object(attributes).to_string(),
                    &letter.error.to_string(),
                    &letter.error.kind().as_str(),
                    &attempts,
                    &letter.failed_at,
                ],
            )
            .await
            .map(drop)
            .map_err(|error| Error::trigger("postgres dead letter", error))
    }
}
