//! The PostgreSQL trigger: the changed rows of a table become calls, at
//! least once, through an outbox.
//!
//! - [`PostgresTrigger`] sets up the outbox, claims rows and settles them;
//!   [`PostgresTriggerConfig`] configures it.
//! - [`PostgresDeadLetter`] writes rows that failed for good to a table.
//! - [`PostgresLag`] tells the autoscaler how many rows wait.
//!
//! # The setup SQL
//!
//! Applied by the trigger at every start, in one transaction, serialised
//! between replicas by an advisory lock, and harmless to apply again:
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS faas_outbox (
//!     id bigserial PRIMARY KEY,
//!     subscriber text NOT NULL,            -- the trigger's subscriber name
//!     source_table text NOT NULL,          -- schema.table
//!     change text NOT NULL,                -- INSERT, UPDATE or DELETE
//!     row_data jsonb NOT NULL,             -- the row (after; before for DELETE)
//!     created_at timestamptz NOT NULL DEFAULT now(),
//!     deliveries integer NOT NULL DEFAULT 0,
//!     available_at timestamptz NOT NULL DEFAULT now());
//! CREATE INDEX IF NOT EXISTS faas_outbox_due ON faas_outbox (subscriber, available_at, id);
//! CREATE TABLE IF NOT EXISTS faas_dead_letter (
//!     id bigserial PRIMARY KEY, subscriber text, function text, call_id text,
//!     payload bytea, headers jsonb, attributes jsonb, error text, error_kind text,
//!     attempts integer, failed_at timestamptz);
//! CREATE OR REPLACE FUNCTION faas_capture() RETURNS trigger ...;
//!     -- inserts the row into faas_outbox and runs pg_notify('faas_outbox', subscriber)
//! CREATE OR REPLACE TRIGGER faas_<subscriber> AFTER INSERT OR UPDATE ON <table>
//!     FOR EACH ROW EXECUTE FUNCTION faas_capture('<subscriber>');
//! ```
//!
//! The change and its outbox row commit together (the row trigger runs in
//! the writer's transaction), so no committed change is missed and no
//! rolled-back one is delivered. The database user needs to create tables,
//! functions and triggers (or an administrator applies the SQL above once).
//! Connections use no TLS.
//!
//! Each row reaches the function as a CloudEvent in binary mode: `ce-id` is
//! the outbox row's id (the same at every redelivery), `ce-source`
//! `/postgres/SCHEMA.TABLE`, `ce-type` `rs.faas.postgres.insert` (or
//! `update`, `delete`; see [`EVENT_TYPE_PREFIX`]), `ce-time` the change's;
//! the body is the row as JSON, so `Json<T>` reads it as a struct.

mod config;
mod dead_letter;
mod lag;
mod row;
mod setup;
mod trigger;

pub use config::{
    DEFAULT_BATCH, DEFAULT_LEASE, DEFAULT_POLL_INTERVAL, PostgresTriggerConfig, RowChange,
};
pub use dead_letter::PostgresDeadLetter;
pub use lag::PostgresLag;
pub use row::EVENT_TYPE_PREFIX;
pub use trigger::PostgresTrigger;
