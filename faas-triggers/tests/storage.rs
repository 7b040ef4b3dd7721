//! The storage trigger against a real directory and the kernel's file
//! notifications.

mod events;

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use events::process::scratch_dir;
use events::{Host, PATIENCE, Recorder, accept, unique, wait_lag_zero};
use faas_core::trigger::LagSource;
use faas_core::{FunctionError, InMemoryDeadLetter, InvocationPolicy, Registry, RetryPolicy};
use faas_triggers::Error;
use faas_triggers::storage::{EVENT_TYPE, StorageTrigger, StorageTriggerConfig};

fn config(dir: &std::path::Path) -> StorageTriggerConfig {
    StorageTriggerConfig::new(dir).with_settle(Duration::from_millis(300))
}

fn json(data: &[u8]) -> serde_json::Value {
    serde_json::from_slice(data).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_file_arrives_with_its_path_size_and_hash() {
    let dir = scratch_dir(&unique("uploads"));
    let recorder = Recorder::default();
    let registry = Registry::from([recorder.function("f", accept(), InvocationPolicy::default())]);
    let trigger = StorageTrigger::new("f", config(&dir)).unwrap();
    let lag = trigger.lag_source();
    let host = Host::start(registry, trigger).await;
    std::fs::write(dir.join("hello.txt"), b"hello").unwrap();
    recorder
        .wait_until("the file", |seen| !seen.is_empty())
        .await;
    let seen = &recorder.all()[0];
    assert_eq!(seen.ty, EVENT_TYPE);
    assert_eq!(seen.subject.as_deref(), Some("hello.txt"));
    let data = json(&seen.data);
    assert_eq!(data["path"], "hello.txt");
    assert_eq!(data["size"], 5);
    // sha256("hello")
    assert_eq!(
        data["sha256"],
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(
        seen.id,
        format!("hello.txt:{}", data["sha256"].as_str().unwrap())
    );
    wait_lag_zero(&lag).await;
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_still_being_written_is_delivered_only_once_complete() {
    let dir = scratch_dir(&unique("slow-upload"));
    let recorder = Recorder::default();
    let registry = Registry::from([recorder.function("f", accept(), InvocationPolicy::default())]);
    let host = Host::start(registry, StorageTrigger::new("f", config(&dir)).unwrap()).await;
    let path = dir.join("big.bin");
    let mut file = std::fs::File::create(&path).unwrap();
    // Written in pieces, each well within the settle time of the last.
    for _ in 0..10 {
        file.write_all(&[7; 1000]).unwrap();
        file.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            recorder.all().is_empty(),
            "delivered while still being written"
        );
    }
    drop(file);
    // A temporary name renamed into place when done.
    std::fs::write(dir.join("other.part"), b"partial").unwrap();
    std::fs::rename(dir.join("other.part"), dir.join("other.csv")).unwrap();
    recorder
        .wait_until("both files", |seen| seen.len() >= 2)
        .await;
    host.stop().await.unwrap();
    let all = recorder.all();
    let big = all
        .iter()
        .find(|s| s.subject.as_deref() == Some("big.bin"))
        .unwrap();
    assert_eq!(json(&big.data)["size"], 10_000, "only the complete file");
    assert_eq!(all.len(), 2, "each once, the temporary name never");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handled_files_are_remembered_across_restarts() {
    let dir = scratch_dir(&unique("restart"));
    let recorder = Recorder::default();
    let registry =
        || Registry::from([recorder.function("f", accept(), InvocationPolicy::default())]);
    for name in ["a", "b", "c"] {
        std::fs::write(dir.join(name), name).unwrap();
    }
    let host = Host::start(registry(), StorageTrigger::new("f", config(&dir)).unwrap()).await;
    recorder
        .wait_until("the three files there at start", |seen| seen.len() >= 3)
        .await;
    host.stop().await.unwrap();
    // Written while the trigger was down.
    for name in ["d", "e"] {
        std::fs::write(dir.join(name), name).unwrap();
    }
    let trigger = StorageTrigger::new("f", config(&dir)).unwrap();
    let lag = trigger.lag_source();
    assert_eq!(lag.lag().await.unwrap().pending, 2);
    let host = Host::start(registry(), trigger).await;
    recorder
        .wait_until("the two new files", |seen| seen.len() >= 5)
        .await;
    wait_lag_zero(&lag).await;
    host.stop().await.unwrap();
    let names: Vec<String> = recorder
        .all()
        .iter()
        .filter_map(|s| s.subject.clone())
        .collect();
    assert_eq!(names.len(), 5, "none twice: {names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_file_is_retried_then_dead_lettered_and_not_delivered_again() {
    let dir = scratch_dir(&unique("poison"));
    let recorder = Recorder::default();
    let dead = Arc::new(InMemoryDeadLetter::new());
    let verdict: events::Verdict = Arc::new(|seen| {
        if seen.subject.as_deref() == Some("bad.csv") {
            Err(FunctionError::internal("unreadable"))
        } else {
            Ok(())
        }
    });
    let policy = InvocationPolicy::default()
        .with_retry(
            RetryPolicy::new(3)
                .with_initial_backoff(Duration::from_millis(50))
                .with_jitter(0.0),
        )
        .with_dead_letter(dead.clone());
    let registry =
        || Registry::from([recorder.function("f", Arc::clone(&verdict), policy.clone())]);
    std::fs::write(dir.join("bad.csv"), "x").unwrap();
    std::fs::write(dir.join("good.csv"), "y").unwrap();
    let host = Host::start(registry(), StorageTrigger::new("f", config(&dir)).unwrap()).await;
    tokio::time::timeout(PATIENCE, dead.wait_for(1))
        .await
        .expect("dead-lettered");
    recorder
        .wait_until("the good file", |seen| {
            seen.iter()
                .any(|s| s.subject.as_deref() == Some("good.csv"))
        })
        .await;
    host.stop().await.unwrap();
    let attempts: Vec<u32> = recorder
        .all()
        .iter()
        .filter(|s| s.subject.as_deref() == Some("bad.csv"))
        .map(|s| s.attempt)
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    assert_eq!(dead.entries()[0].attributes["path"], "bad.csv");
    // After a restart nothing is delivered again.
    let trigger = StorageTrigger::new("f", config(&dir)).unwrap();
    assert_eq!(trigger.lag_source().lag().await.unwrap().pending, 0);
}

#[test]
fn a_missing_directory_is_an_error_naming_the_setting() {
    match StorageTrigger::new("f", StorageTriggerConfig::new("/no/such/faas/dir")).unwrap_err() {
        Error::InvalidConfig { key, .. } => assert_eq!(key, "storage.dir"),
        other => panic!("unexpected {other}"),
    }
}
