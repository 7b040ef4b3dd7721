//! The NATS JetStream trigger against a real nats-server (`cargo xtask
//! services up`, or `cargo xtask test`).

mod events;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use events::process::{ServerProcess, scratch_dir};
use events::{
    Host, PATIENCE, Recorder, accept, free_port, quick_retries, server_env, unique, wait_lag_zero,
};
use faas_core::trigger::LagSource;
use faas_core::{FunctionError, InMemoryDeadLetter, InvocationPolicy, Registry};
use faas_triggers::Error;
use faas_triggers::nats::{EVENT_TYPE, NatsTrigger, NatsTriggerConfig};
use futures::StreamExt as _;

fn url() -> String {
    server_env("FAAS_NATS_URL", "NATS server with JetStream")
}

async fn context(url: &str) -> jetstream::Context {
    jetstream::new(async_nats::connect(url).await.expect("connect to NATS"))
}

/// A stream named `name` capturing `name.>` (lowercase subjects).
async fn stream_for(js: &jetstream::Context, name: &str) -> String {
    let subjects = format!("{}.>", name.to_lowercase());
    js.create_stream(stream::Config {
        name: name.to_owned(),
        subjects: vec![subjects],
        ..Default::default()
    })
    .await
    .expect("create the stream");
    name.to_lowercase()
}

async fn publish(js: &jetstream::Context, subject: String, payload: String) {
    js.publish(subject, payload.into())
        .await
        .expect("publish")
        .await
        .expect("stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_message_arrives_once_as_a_cloudevent_and_is_acked() {
    let url = url();
    let js = context(&url).await;
    let name = unique("ORDERS");
    let prefix = stream_for(&js, &name).await;
    for n in 0..20 {
        publish(&js, format!("{prefix}.created"), format!(r#"{{"n":{n}}}"#)).await;
    }
    let recorder = Recorder::default();
    let registry =
        Registry::from([recorder.function("bill", accept(), InvocationPolicy::default())]);
    let config = NatsTriggerConfig::new(&url, &name, "billing").with_batch(7);
    let trigger = NatsTrigger::new("bill", config).unwrap();
    let lag = trigger.lag_source();
    let host = Host::start(registry, trigger).await;
    recorder
        .wait_until("20 calls", |seen| seen.len() >= 20)
        .await;
    let by_id = recorder.by_id();
    assert_eq!(by_id.len(), 20, "every message once");
    let first = &by_id[&format!("{name}:1")][0];
    assert_eq!(first.attempt, 1);
    assert_eq!(first.ty, EVENT_TYPE);
    assert_eq!(first.source, format!("/nats/streams/{name}"));
    assert_eq!(
        first.subject.as_deref(),
        Some(format!("{prefix}.created").as_str())
    );
    assert_eq!(first.data, br#"{"n":0}"#);
    assert_eq!(first.content_type.as_deref(), Some("application/json"));
    // Acked: nothing pending or waiting for an ack once the calls are done.
    wait_lag_zero(&lag).await;
    assert!(!lag.lag().await.unwrap().active);
    host.stop().await.unwrap();
    assert_eq!(recorder.all().len(), 20, "no redelivery after the acks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_counts_waiting_messages_before_the_consumer_runs() {
    let url = url();
    let js = context(&url).await;
    let name = unique("LAG");
    let prefix = stream_for(&js, &name).await;
    let trigger = NatsTrigger::new("f", NatsTriggerConfig::new(&url, &name, "scaler")).unwrap();
    let lag = trigger.lag_source();
    assert_eq!(lag.lag().await.unwrap().pending, 0);
    for n in 0..5 {
        publish(&js, format!("{prefix}.x"), n.to_string()).await;
    }
    let now = lag.lag().await.unwrap();
    assert_eq!(now.pending, 5);
    assert!(
        now.active,
        "the first pending message wakes the function from zero"
    );
    assert_eq!(lag.function(), "f");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_redelivered_by_the_broker_with_the_next_attempt_number() {
    let url = url();
    let js = context(&url).await;
    let name = unique("FLAKY");
    let prefix = stream_for(&js, &name).await;
    publish(&js, format!("{prefix}.x"), "hello".into()).await;
    let recorder = Recorder::default();
    let verdict = events::fails_before(3);
    let policy = InvocationPolicy::default().with_retry(quick_retries(5));
    let registry = Registry::from([recorder.function("flaky", verdict, policy)]);
    let trigger = NatsTrigger::new("flaky", NatsTriggerConfig::new(&url, &name, "c")).unwrap();
    let host = Host::start(registry, trigger).await;
    recorder
        .wait_until("three attempts", |seen| seen.len() >= 3)
        .await;
    let attempts: Vec<u32> = recorder.all().iter().map(|s| s.attempt).collect();
    assert_eq!(attempts, [1, 2, 3], "one call per broker delivery");
    let ids: Vec<String> = recorder.all().iter().map(|s| s.id.clone()).collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "the event id is stable: {ids:?}"
    );
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dead_letter_subject_and_does_not_hold_up_the_rest() {
    let url = url();
    let js = context(&url).await;
    let name = unique("POISON");
    let prefix = stream_for(&js, &name).await;
    let dead_name = unique("DEAD");
    let dead_prefix = stream_for(&js, &dead_name).await;
    publish(&js, format!("{prefix}.x"), "poison".into()).await;
    for n in 0..30 {
        publish(&js, format!("{prefix}.x"), format!("good {n}")).await;
    }
    let recorder = Recorder::default();
    let verdict: events::Verdict = Arc::new(|seen| {
        if seen.data == b"poison" {
            Err(FunctionError::internal("cannot digest"))
        } else {
            Ok(())
        }
    });
    let policy = InvocationPolicy::default().with_retry(quick_retries(3));
    let registry = Registry::from([recorder.function("eat", verdict, policy)]);
    let config = NatsTriggerConfig::new(&url, &name, "eater")
        .with_max_in_flight(4)
        .with_dead_letter_subject(format!("{dead_prefix}.eat"));
    let host = Host::start(registry, NatsTrigger::new("eat", config).unwrap()).await;
    recorder
        .wait_until("the good ones and three poison attempts", |seen| {
            seen.iter().filter(|s| s.data != b"poison").count() >= 30
                && seen.iter().filter(|s| s.data == b"poison").count() >= 3
        })
        .await;
    // The dead letter: payload, headers with the error, attempts, origin.
    let dead_stream = js.get_stream(&dead_name).await.unwrap();
    let letter = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Ok(message) = dead_stream.get_raw_message(1).await {
                return message;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("a dead letter");
    assert_eq!(&letter.payload[..], b"poison");
    let headers = letter.headers;
    assert_eq!(headers.get("Faas-Attempts").unwrap().as_str(), "3");
    assert_eq!(headers.get("Faas-Function").unwrap().as_str(), "eat");
    assert!(
        headers
            .get("Faas-Error")
            .unwrap()
            .as_str()
            .contains("cannot digest")
    );
    assert_eq!(headers.get("Faas-Origin-stream").unwrap().as_str(), name);
    assert_eq!(headers.get("Faas-Origin-sequence").unwrap().as_str(), "1");
    assert!(headers.get("Faas-Failed-At").is_some());
    assert_eq!(headers.get("ce-id").unwrap().as_str(), format!("{name}:1"));
    host.stop().await.unwrap();
    let poison = recorder
        .all()
        .iter()
        .filter(|s| s.data == b"poison")
        .count();
    assert_eq!(
        poison, 3,
        "terminated after the policy's attempts, never redelivered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_dead_letter_subject_the_policy_dead_letter_gets_it() {
    let url = url();
    let js = context(&url).await;
    let name = unique("POLICYDL");
    let prefix = stream_for(&js, &name).await;
    publish(&js, format!("{prefix}.x"), "bad".into()).await;
    let recorder = Recorder::default();
    let dead = Arc::new(InMemoryDeadLetter::new());
    let verdict: events::Verdict = Arc::new(|_| Err(FunctionError::bad_input("malformed")));
    let policy = InvocationPolicy::default()
        .with_retry(quick_retries(5))
        .with_dead_letter(dead.clone());
    let registry = Registry::from([recorder.function("strict", verdict, policy)]);
    let host = Host::start(
        registry,
        NatsTrigger::new("strict", NatsTriggerConfig::new(&url, &name, "c")).unwrap(),
    )
    .await;
    tokio::time::timeout(PATIENCE, dead.wait_for(1))
        .await
        .expect("dead-lettered");
    let letter = &dead.entries()[0];
    assert_eq!(letter.attempts, 1, "bad input is not retried");
    assert_eq!(letter.request.body(), "bad");
    assert_eq!(letter.attributes["subject"], format!("{prefix}.x"));
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_call_is_kept_in_progress_and_not_redelivered() {
    let url = url();
    let js = context(&url).await;
    let name = unique("SLOW");
    let prefix = stream_for(&js, &name).await;
    publish(&js, format!("{prefix}.x"), "slow".into()).await;
    let calls = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    let registry = Registry::from([faas_core::FunctionDefinition::from_handler(
        "slow",
        move |_: bytes::Bytes| {
            let counted = Arc::clone(&counted);
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                // Three times the ack wait: without in-progress signals the
                // broker would deliver it again meanwhile.
                tokio::time::sleep(Duration::from_secs(6)).await;
                "done"
            }
        },
    )]);
    let config = NatsTriggerConfig::new(&url, &name, "c").with_ack_wait(Duration::from_secs(2));
    let trigger = NatsTrigger::new("slow", config).unwrap();
    let lag = trigger.lag_source();
    let host = Host::start(registry, trigger).await;
    let wait = async {
        loop {
            let lag = lag.lag().await.unwrap();
            if calls.load(Ordering::SeqCst) > 0 && lag.pending == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .expect("the call ends and is acked");
    host.stop().await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_stream_is_an_error_naming_the_setting() {
    let url = url();
    let name = unique("MISSING");
    let registry =
        Registry::from([Recorder::default().function("f", accept(), InvocationPolicy::default())]);
    let host = Host::start(
        registry,
        NatsTrigger::new("f", NatsTriggerConfig::new(&url, &name, "c")).unwrap(),
    )
    .await;
    let error = tokio::time::timeout(PATIENCE, host.task)
        .await
        .expect("the host stops on its own")
        .unwrap()
        .unwrap_err();
    let text = format!("{:?}", error);
    assert!(text.contains("nats.stream"), "{text}");
    assert!(text.contains("no such stream"), "{text}");
}

#[tokio::test]
async fn a_malformed_subject_is_refused_before_anything_starts() {
    let error = NatsTrigger::new(
        "f",
        NatsTriggerConfig::new("nats://127.0.0.1:4222", "S", "c").with_filter_subject("a.>.b"),
    )
    .unwrap_err();
    match error {
        Error::InvalidConfig { key, value, .. } => {
            assert_eq!(key, "nats.filter_subject");
            assert_eq!(value, "a.>.b");
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_waited_for_while_not_ready() {
    let program = server_env("FAAS_NATS_SERVER", "nats-server program");
    let port = free_port();
    let url = format!("nats://127.0.0.1:{port}");
    let name = unique("LATE");
    let store = scratch_dir(&name);
    let arguments = vec![
        "-a".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port.to_string(),
        "-js".into(),
        "-sd".into(),
        store.display().to_string(),
    ];
    // The stream is made on a first run of the server and kept in its store,
    // so the server that appears later has it from its first moment: a
    // trigger that connects then never sees a missing stream (which is a
    // configuration error, not a reason to wait).
    let mut first = ServerProcess::start(
        program.clone(),
        arguments.clone(),
        port,
        store.join("nats-first.log"),
    );
    let prefix = stream_for(&context(&url).await, &name).await;
    first.stop();
    let recorder = Recorder::default();
    let registry =
        Registry::from([recorder.function("late", accept(), InvocationPolicy::default())]);
    let host = Host::start(
        registry,
        NatsTrigger::new("late", NatsTriggerConfig::new(&url, &name, "c")).unwrap(),
    )
    .await;
    host.wait_ready_status(503).await;
    assert!(
        !host.task.is_finished(),
        "the host waits instead of exiting"
    );
    let waiting = host.dispatcher.readiness().waiting_for();
    assert!(waiting[0].0.contains(&name), "{waiting:?}");
    // The server appears; the trigger connects and delivers.
    let mut server = ServerProcess::start(program, arguments, port, store.join("nats.log"));
    let js = context(&url).await;
    publish(&js, format!("{prefix}.x"), "hi".into()).await;
    recorder
        .wait_until("the first call", |seen| !seen.is_empty())
        .await;
    host.wait_ready_status(200).await;
    host.stop().await.unwrap();
    server.stop();
}

/// Messages keep flowing to the subscriber side of a dead-letter stream
/// consumer: a sanity check that the dead letter stream is readable with a
/// plain consumer too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_can_be_consumed_like_any_message() {
    let url = url();
    let js = context(&url).await;
    let name = unique("DLREAD");
    let prefix = stream_for(&js, &name).await;
    let dead_name = unique("DLSTORE");
    let dead_prefix = stream_for(&js, &dead_name).await;
    publish(&js, format!("{prefix}.x"), "never".into()).await;
    let verdict: events::Verdict = Arc::new(|_| Err(FunctionError::bad_input("no")));
    let recorder = Recorder::default();
    let registry = Registry::from([recorder.function("no", verdict, InvocationPolicy::default())]);
    let config = NatsTriggerConfig::new(&url, &name, "c")
        .with_dead_letter_subject(format!("{dead_prefix}.no"));
    let host = Host::start(registry, NatsTrigger::new("no", config).unwrap()).await;
    let consumer: jetstream::consumer::PullConsumer = js
        .get_stream(&dead_name)
        .await
        .unwrap()
        .create_consumer(jetstream::consumer::pull::Config {
            durable_name: Some("replay".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let letter = tokio::time::timeout(PATIENCE, messages.next())
        .await
        .expect("a letter")
        .unwrap()
        .unwrap();
    assert_eq!(&letter.payload[..], b"never");
    letter.ack().await.unwrap();
    host.stop().await.unwrap();
}
