//! B8 on the PostgreSQL outbox.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use faas_core::{LocalExecutor, Registry};
use faas_triggers::postgres::{PostgresTrigger, PostgresTriggerConfig};
use tokio_postgres::{Client, NoTls};

use super::{Counter, Handle, Source, run_until, unique};

/// Rows per claim, for both consumers.
const BATCH: i64 = 256;

/// The database of `FAAS_POSTGRES_URL`.
#[derive(Debug)]
pub struct Postgres {
    url: String,
}

impl Postgres {
    /// From `FAAS_POSTGRES_URL` (set by `cargo xtask bench`).
    pub fn from_env() -> Self {
        Postgres {
            url: std::env::var("FAAS_POSTGRES_URL")
                .expect("FAAS_POSTGRES_URL: run B8 through `cargo xtask bench`"),
        }
    }

    async fn client(&self) -> Client {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .expect("connect to PostgreSQL");
        tokio::spawn(connection);
        client
    }

    /// The table's trigger: its subscriber is the table's name.
    fn trigger(&self, table: &str) -> PostgresTrigger {
        let config = PostgresTriggerConfig::new(&self.url, table)
            .with_subscriber(table)
            .with_batch(BATCH as usize);
        PostgresTrigger::new("noop", config).expect("a valid configuration")
    }
}

#[async_trait]
impl Source for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn prepare(&self, tag: &str) -> String {
        let table = unique(tag);
        self.client()
            .await
            .batch_execute(&format!(
                "CREATE TABLE {table} (id bigserial PRIMARY KEY, payload text NOT NULL)"
            ))
            .await
            .expect("create the table");
        // The outbox and the row trigger, for both consumers.
        self.trigger(&table)
            .install()
            .await
            .expect("install the outbox");
        table
    }

    async fn publish(&self, queue: &str, payloads: Vec<Bytes>) {
        let client = self.client().await;
        let texts: Vec<String> = payloads
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        for chunk in texts.chunks(1000) {
            client
                .execute(
                    &format!("INSERT INTO {queue} (payload) SELECT unnest($1::text[])"),
                    &[&chunk],
                )
                .await
                .expect("insert");
        }
    }

    async fn run_trigger(&self, queue: &str, registry: Registry, done: Arc<Counter>) {
        let executor = LocalExecutor::builder(registry)
            .trigger(self.trigger(queue))
            .build();
        run_until(executor, done).await;
    }

    async fn run_bare(&self, queue: &str, handle: Handle, done: Arc<Counter>) {
        let client = self.client().await;
        let claim = client
            .prepare(
                "WITH due AS (
                    SELECT id FROM faas_outbox WHERE subscriber = $1 AND available_at <= now()
                    ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
                 UPDATE faas_outbox o SET deliveries = o.deliveries + 1,
                     available_at = now() + interval '30 seconds'
                 FROM due WHERE o.id = due.id RETURNING o.id, o.row_data::text",
            )
            .await
            .expect("prepare the claim");
        let delete = client
            .prepare("DELETE FROM faas_outbox WHERE id = $1")
            .await
            .expect("prepare the delete");
        while !done.done() {
            let rows = client
                .query(&claim, &[&queue, &BATCH])
                .await
                .expect("claim");
            if rows.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            for row in rows {
                let id: i64 = row.get(0);
                let data: String = row.get(1);
                handle(data.as_bytes());
                client.execute(&delete, &[&id]).await.expect("delete");
            }
        }
    }
}
