//! The SQL a PostgreSQL trigger applies at every start, idempotently.

use super::config::PostgresTriggerConfig;

/// The outbox every subscriber's rows wait in.
pub(crate) const OUTBOX: &str = "faas_outbox";

/// The channel the database trigger notifies.
pub(crate) const CHANNEL: &str = "faas_outbox";

/// The statements, in order, for `subscriber` following `config.table`.
///
/// ```sql
/// -- serialised between replicas starting at once
/// SELECT pg_advisory_xact_lock(hashtext('faas_outbox'));
/// CREATE TABLE IF NOT EXISTS faas_outbox (
///     id bigserial PRIMARY KEY,
///     subscriber text NOT NULL,
///     source_table text NOT NULL,
///     change text NOT NULL,
///     row_data jsonb NOT NULL,
///     created_at timestamptz NOT NULL DEFAULT now(),
///     deliveries integer NOT NULL DEFAULT 0,
///     available_at timestamptz NOT NULL DEFAULT now());
/// CREATE INDEX IF NOT EXISTS faas_outbox_due ON faas_outbox (subscriber, available_at, id);
/// CREATE TABLE IF NOT EXISTS faas_dead_letter (...);   -- the dead letter table
/// CREATE OR REPLACE FUNCTION faas_capture() RETURNS trigger ...;  -- copies the row, notifies
/// CREATE OR REPLACE TRIGGER faas_<subscriber>
///     AFTER INSERT OR UPDATE ON <table> FOR EACH ROW EXECUTE FUNCTION faas_capture('<subscriber>');
/// ```
pub(crate) fn statements(config: &PostgresTriggerConfig, subscriber: &str) -> Vec<String> {
    let events: Vec<&str> = config.changes.iter().map(|change| change.sql()).collect();
    let dead_letter = &config.dead_letter_table;
    vec![
        format!("SELECT pg_advisory_xact_lock(hashtext('{OUTBOX}'))"),
        format!(
            "CREATE TABLE IF NOT EXISTS {OUTBOX} (
                id bigserial PRIMARY KEY,
                subscriber text NOT NULL,
                source_table text NOT NULL,
                change text NOT NULL,
                row_data jsonb NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                deliveries integer NOT NULL DEFAULT 0,
                available_at timestamptz NOT NULL DEFAULT now())"
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS {OUTBOX}_due ON {OUTBOX} (subscriber, available_at, id)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {dead_letter} (
                id bigserial PRIMARY KEY,
                subscriber text NOT NULL,
                function text NOT NULL,
                call_id text NOT NULL,
                payload bytea NOT NULL,
                headers jsonb NOT NULL,
                attributes jsonb NOT NULL,
                error text NOT NULL,
                error_kind text NOT NULL,
                attempts integer NOT NULL,
                failed_at timestamptz NOT NULL)"
        ),
        format!(
            "CREATE OR REPLACE FUNCTION faas_capture() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO {OUTBOX} (subscriber, source_table, change, row_data)
                VALUES (TG_ARGV[0], TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP,
                        to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END));
                PERFORM pg_notify('{CHANNEL}', TG_ARGV[0]);
                RETURN NULL;
            END $$"
        ),
        format!(
            "CREATE OR REPLACE TRIGGER faas_{subscriber} AFTER {} ON {} \
             FOR EACH ROW EXECUTE FUNCTION faas_capture('{subscriber}')",
            events.join(" OR "),
            config.table
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::RowChange;

    #[test]
    fn the_trigger_names_the_subscriber_and_the_changes() {
        let config = PostgresTriggerConfig::new("postgres://u@h/db", "shop.orders")
            .with_changes(&[RowChange::Insert, RowChange::Delete]);
        let sql = statements(&config, "bill");
        let trigger = sql.last().unwrap();
        assert!(
            trigger.contains(
                "CREATE OR REPLACE TRIGGER faas_bill AFTER INSERT OR DELETE ON shop.orders"
            )
        );
        assert!(trigger.contains("faas_capture('bill')"));
        assert!(sql.iter().all(|statement| !statement.contains("DROP")));
    }
}
