//! An outbox row as an event, and its settlement.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use faas_core::trigger::Settle;
use faas_core::{CloudEvent, Error, Invocation};
use tokio_postgres::{Client, Row, Statement};

use crate::event::{event_invocation, with_payload};

/// The CloudEvents type of a row change: this prefix and `insert`,
/// `update` or `delete`.
pub const EVENT_TYPE_PREFIX: &str = "rs.faas.postgres.";

/// The prepared statements settling rows.
pub(crate) struct Statements {
    pub(crate) claim: Statement,
    pub(crate) delete: Statement,
    pub(crate) postpone: Statement,
}

impl Statements {
    pub(crate) async fn prepare(
        client: &Client,
        outbox: &str,
    ) -> Result<Statements, tokio_postgres::Error> {
        let claim = client
            .prepare(&format!(
                "WITH due AS (
                    SELECT id FROM {outbox}
                    WHERE subscriber = $1 AND available_at <= now()
                    ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
                 UPDATE {outbox} o
                 SET deliveries = o.deliveries + 1,
                     available_at = now() + make_interval(secs => $3::float8)
                 FROM due WHERE o.id = due.id
                 RETURNING o.id, o.source_table, o.change, o.row_data::text, o.deliveries, o.created_at"
            ))
            .await?;
        let delete = client
            .prepare(&format!("DELETE FROM {outbox} WHERE id = $1"))
            .await?;
        let postpone = client
            .prepare(&format!(
                "UPDATE {outbox} SET available_at = now() + make_interval(secs => $2::float8) WHERE id = $1"
            ))
            .await?;
        Ok(Statements {
            claim,
            delete,
            postpone,
        })
    }
}

/// A claimed row, settled by deleting it or moving its `available_at`.
pub(crate) struct OutboxRow<'a> {
    pub(crate) client: &'a Arc<Client>,
    pub(crate) statements: &'a Statements,
    pub(crate) id: i64,
    pub(crate) lease: Duration,
}

fn failed(error: tokio_postgres::Error) -> Error {
    Error::trigger("postgres", error)
}

#[async_trait]
impl Settle for OutboxRow<'_> {
    async fn ack(&self) -> Result<(), Error> {
        self.client
            .execute(&self.statements.delete, &[&self.id])
            .await
            .map(drop)
            .map_err(failed)
    }

    async fn nack(&self, delay: Duration) -> Result<(), Error> {
        self.client
            .execute(&self.statements.postpone, &[&self.id, &delay.as_secs_f64()])
            .await
            .map(drop)
            .map_err(failed)
    }

    async fn terminate(&self) -> Result<(), Error> {
        self.ack().await
    }

    async fn in_progress(&self) -> Result<(), Error> {
        self.nack(self.lease).await
    }
}

/// A claimed row's columns.
pub(crate) struct Claimed {
    pub(crate) id: i64,
    pub(crate) source_table: String,
    pub(crate) change: String,
    pub(crate) row_data: String,
    pub(crate) deliveries: i32,
    pub(crate) created_at: SystemTime,
}

impl Claimed {
    pub(crate) fn from_row(row: &Row) -> Result<Claimed, tokio_postgres::Error> {
        Ok(Claimed {
            id: row.try_get(0)?,
            source_table: row.try_get(1)?,
            change: row.try_get(2)?,
            row_data: row.try_get(3)?,
            deliveries: row.try_get(4)?,
            created_at: row.try_get(5)?,
        })
    }

    /// The invocation of `function`: a CloudEvent (id the outbox row's id,
    /// the same at every redelivery; source `/postgres/SCHEMA.TABLE`; type
    /// `rs.faas.postgres.insert|update|delete`; time of the change) whose
    /// data is the row as JSON.
    pub(crate) fn invocation(&self, function: &str) -> Invocation {
        let event = CloudEvent::new(
            self.id.to_string(),
            format!("/postgres/{}", self.source_table),
            format!("{EVENT_TYPE_PREFIX}{}", self.change.to_ascii_lowercase()),
        )
        .with_subject(self.source_table.clone())
        .with_system_time(self.created_at);
        let event = with_payload(
            event,
            Some("application/json"),
            Bytes::from(self.row_data.clone()),
        );
        let attempt = u32::try_from(self.deliveries.max(1)).unwrap_or(1);
        event_invocation(event, function, attempt)
    }
}
