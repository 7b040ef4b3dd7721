//! The PostgreSQL trigger against a real PostgreSQL 15 (`cargo xtask
//! services up`, or `cargo xtask test`).

mod events;

use std::sync::Arc;
use std::time::Duration;

use events::process::{postgres_server, scratch_dir};
use events::{
    Host, PATIENCE, Recorder, accept, free_port, quick_retries, server_env, unique, wait_lag_zero,
};
use faas_core::trigger::LagSource;
use faas_core::{FunctionError, InvocationPolicy, Registry};
use faas_triggers::postgres::{PostgresTrigger, PostgresTriggerConfig, RowChange};
use tokio_postgres::{Client, NoTls};

fn url() -> String {
    server_env("FAAS_POSTGRES_URL", "PostgreSQL server")
}

async fn client(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
}

/// A table `name` with an id and a total.
async fn table(client: &Client, name: &str) {
    client
        .batch_execute(&format!(
            "CREATE TABLE {name} (id serial PRIMARY KEY, total integer NOT NULL)"
        ))
        .await
        .unwrap();
}

/// Waits until the trigger's database trigger exists (its setup ran).
async fn wait_installed(client: &Client, subscriber: &str) {
    let wait = async {
        loop {
            let found = client
                .query(
                    "SELECT 1 FROM pg_trigger WHERE tgname = $1",
                    &[&format!("faas_{subscriber}")],
                )
                .await
                .unwrap();
            if !found.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .expect("the setup SQL ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inserted_and_updated_rows_become_cloudevents() {
    let url = url();
    let db = client(&url).await;
    let name = unique("orders").to_lowercase();
    table(&db, &name).await;
    let subscriber = unique("bill").to_lowercase();
    let recorder = Recorder::default();
    let registry =
        Registry::from([recorder.function("bill", accept(), InvocationPolicy::default())]);
    let config = PostgresTriggerConfig::new(&url, &name).with_subscriber(&subscriber);
    let trigger = PostgresTrigger::new("bill", config).unwrap();
    let lag = trigger.lag_source();
    let host = Host::start(registry, trigger).await;
    wait_installed(&db, &subscriber).await;
    for n in 1..=10 {
        db.execute(
            &format!("INSERT INTO {name} (total) VALUES ($1)"),
            &[&(n * 10)],
        )
        .await
        .unwrap();
    }
    db.execute(&format!("UPDATE {name} SET total = 999 WHERE id = 1"), &[])
        .await
        .unwrap();
    recorder
        .wait_until("11 calls", |seen| seen.len() >= 11)
        .await;
    wait_lag_zero(&lag).await;
    let all = recorder.all();
    assert_eq!(recorder.by_id().len(), 11, "one call per change");
    let inserts = all
        .iter()
        .filter(|s| s.ty == "rs.faas.postgres.insert")
        .count();
    let updates: Vec<_> = all
        .iter()
        .filter(|s| s.ty == "rs.faas.postgres.update")
        .collect();
    assert_eq!(inserts, 10);
    assert_eq!(updates.len(), 1);
    let row: serde_json::Value = serde_json::from_slice(&updates[0].data).unwrap();
    assert_eq!(row["id"], 1);
    assert_eq!(row["total"], 999);
    assert_eq!(updates[0].source, format!("/postgres/public.{name}"));
    assert_eq!(updates[0].content_type.as_deref(), Some("application/json"));
    assert!(all.iter().all(|s| s.attempt == 1));
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_is_applied_again_harmlessly_and_rows_wait_for_a_restart() {
    let url = url();
    let db = client(&url).await;
    let name = unique("restart").to_lowercase();
    table(&db, &name).await;
    let subscriber = unique("r").to_lowercase();
    let config = PostgresTriggerConfig::new(&url, &name)
        .with_subscriber(&subscriber)
        .with_changes(&[RowChange::Insert]);
    let recorder = Recorder::default();
    let registry =
        || Registry::from([recorder.function("f", accept(), InvocationPolicy::default())]);
    let host = Host::start(
        registry(),
        PostgresTrigger::new("f", config.clone()).unwrap(),
    )
    .await;
    wait_installed(&db, &subscriber).await;
    host.stop().await.unwrap();
    // Written while no consumer runs: kept in the outbox.
    for n in 0..5 {
        db.execute(&format!("INSERT INTO {name} (total) VALUES ($1)"), &[&n])
            .await
            .unwrap();
    }
    let trigger = PostgresTrigger::new("f", config).unwrap();
    let lag = trigger.lag_source();
    assert_eq!(lag.lag().await.unwrap().pending, 5);
    let host = Host::start(registry(), trigger).await;
    recorder
        .wait_until("the five rows", |seen| seen.len() >= 5)
        .await;
    wait_lag_zero(&lag).await;
    host.stop().await.unwrap();
    assert_eq!(recorder.all().len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_claimed_again_with_the_next_attempt_number() {
    let url = url();
    let db = client(&url).await;
    let name = unique("flaky").to_lowercase();
    table(&db, &name).await;
    let subscriber = unique("flaky").to_lowercase();
    let recorder = Recorder::default();
    let verdict = events::fails_before(3);
    let policy = InvocationPolicy::default().with_retry(quick_retries(5));
    let registry = Registry::from([recorder.function("flaky", verdict, policy)]);
    let config = PostgresTriggerConfig::new(&url, &name)
        .with_subscriber(&subscriber)
        .with_poll_interval(Duration::from_millis(100));
    let trigger = PostgresTrigger::new("flaky", config).unwrap();
    let lag = trigger.lag_source();
    let host = Host::start(registry, trigger).await;
    wait_installed(&db, &subscriber).await;
    db.execute(&format!("INSERT INTO {name} (total) VALUES (1)"), &[])
        .await
        .unwrap();
    recorder
        .wait_until("three attempts", |seen| seen.len() >= 3)
        .await;
    wait_lag_zero(&lag).await;
    let attempts: Vec<u32> = recorder.all().iter().map(|s| s.attempt).collect();
    assert_eq!(attempts, [1, 2, 3]);
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dead_letter_table_and_does_not_hold_up_the_rest() {
    let url = url();
    let db = client(&url).await;
    let name = unique("poison").to_lowercase();
    table(&db, &name).await;
    let subscriber = unique("eat").to_lowercase();
    let recorder = Recorder::default();
    let verdict: events::Verdict = Arc::new(|seen| {
        let row: serde_json::Value = serde_json::from_slice(&seen.data).unwrap();
        if row["total"] == -1 {
            Err(FunctionError::internal("negative total"))
        } else {
            Ok(())
        }
    });
    let policy = InvocationPolicy::default().with_retry(quick_retries(3));
    let registry = Registry::from([recorder.function("eat", verdict, policy)]);
    let config = PostgresTriggerConfig::new(&url, &name)
        .with_subscriber(&subscriber)
        .with_max_in_flight(4)
        .with_poll_interval(Duration::from_millis(100));
    let trigger = PostgresTrigger::new("eat", config).unwrap();
    let lag = trigger.lag_source();
    let host = Host::start(registry, trigger).await;
    wait_installed(&db, &subscriber).await;
    db.execute(&format!("INSERT INTO {name} (total) VALUES (-1)"), &[])
        .await
        .unwrap();
    for n in 0..30 {
        db.execute(&format!("INSERT INTO {name} (total) VALUES ($1)"), &[&n])
            .await
            .unwrap();
    }
    wait_lag_zero(&lag).await;
    let letters = db
        .query(
            "SELECT payload, attempts, error, function, attributes::text FROM faas_dead_letter WHERE subscriber = $1",
            &[&subscriber],
        )
        .await
        .unwrap();
    assert_eq!(letters.len(), 1);
    let payload: Vec<u8> = letters[0].get(0);
    let row: serde_json::Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(row["total"], -1);
    assert_eq!(letters[0].get::<_, i32>(1), 3);
    assert!(letters[0].get::<_, String>(2).contains("negative total"));
    assert_eq!(letters[0].get::<_, String>(3), "eat");
    assert!(letters[0].get::<_, String>(4).contains(&name));
    let good = recorder.by_id().len();
    assert_eq!(good, 31, "every row called");
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_share_the_rows_without_taking_the_same_one() {
    let url = url();
    let db = client(&url).await;
    let name = unique("shared").to_lowercase();
    table(&db, &name).await;
    let subscriber = unique("pair").to_lowercase();
    let recorder = Recorder::default();
    let config = PostgresTriggerConfig::new(&url, &name).with_subscriber(&subscriber);
    let trigger = PostgresTrigger::new("f", config.clone()).unwrap();
    let lag = trigger.lag_source();
    let first = Host::start(
        Registry::from([recorder.function("f", accept(), InvocationPolicy::default())]),
        trigger,
    )
    .await;
    let second = Host::start(
        Registry::from([recorder.function("f", accept(), InvocationPolicy::default())]),
        PostgresTrigger::new("f", config).unwrap(),
    )
    .await;
    wait_installed(&db, &subscriber).await;
    db.execute(
        &format!("INSERT INTO {name} (total) SELECT g FROM generate_series(1, 200) g"),
        &[],
    )
    .await
    .unwrap();
    recorder
        .wait_until("200 rows", |seen| seen.len() >= 200)
        .await;
    wait_lag_zero(&lag).await;
    first.stop().await.unwrap();
    second.stop().await.unwrap();
    assert_eq!(recorder.by_id().len(), 200);
    assert_eq!(recorder.all().len(), 200, "no row claimed twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_is_an_error_naming_the_setting() {
    let url = url();
    let name = unique("missing").to_lowercase();
    let registry =
        Registry::from([Recorder::default().function("f", accept(), InvocationPolicy::default())]);
    let host = Host::start(
        registry,
        PostgresTrigger::new("f", PostgresTriggerConfig::new(&url, &name)).unwrap(),
    )
    .await;
    let error = tokio::time::timeout(PATIENCE, host.task)
        .await
        .expect("the host stops on its own")
        .unwrap()
        .unwrap_err();
    let text = format!("{error:?}");
    assert!(text.contains("postgres.table"), "{text}");
    assert!(text.contains("no such table"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_waited_for_while_not_ready() {
    let port = free_port();
    let url = format!("postgres://faas@127.0.0.1:{port}/postgres");
    let recorder = Recorder::default();
    let registry =
        Registry::from([recorder.function("late", accept(), InvocationPolicy::default())]);
    let host = Host::start(
        registry,
        PostgresTrigger::new("late", PostgresTriggerConfig::new(&url, "late_orders")).unwrap(),
    )
    .await;
    host.wait_ready_status(503).await;
    assert!(!host.task.is_finished());
    let dir = scratch_dir(&unique("pg"));
    let mut server = postgres_server(&dir, port);
    let db = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Ok((client, connection)) = tokio_postgres::connect(&url, NoTls).await {
                tokio::spawn(connection);
                return client;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the database starts");
    table(&db, "late_orders").await;
    wait_installed(&db, "late").await;
    db.execute("INSERT INTO late_orders (total) VALUES (7)", &[])
        .await
        .unwrap();
    recorder
        .wait_until("the first call", |seen| !seen.is_empty())
        .await;
    host.wait_ready_status(200).await;
    host.stop().await.unwrap();
    server.stop();
}
