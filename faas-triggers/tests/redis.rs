//! The Redis Streams trigger against a real redis-server (`cargo xtask
//! services up`, or `cargo xtask test`).

mod events;

use std::sync::Arc;
use std::time::Duration;

use events::process::{ServerProcess, scratch_dir};
use events::{
    Host, PATIENCE, Recorder, accept, free_port, quick_retries, server_env, unique, wait_lag_zero,
};
use faas_core::trigger::LagSource;
use faas_core::{FunctionError, InvocationPolicy, Registry};
use faas_triggers::gateway::GatewayInvoker;
use faas_triggers::redis::{EVENT_TYPE, RedisStreamTrigger, RedisStreamTriggerConfig};
use redis::aio::MultiplexedConnection;

fn url() -> String {
    server_env("FAAS_REDIS_URL", "Redis server")
}

async fn connection(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("connect to Redis")
}

async fn add(connection: &mut MultiplexedConnection, stream: &str, data: &str) -> String {
    redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg("data")
        .arg(data)
        .query_async(connection)
        .await
        .expect("XADD")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_entry_arrives_once_as_a_cloudevent_and_is_acked() {
    let url = url();
    let mut redis = connection(&url).await;
    let stream = unique("orders");
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(add(&mut redis, &stream, &format!(r#"{{"n":{n}}}"#)).await);
    }
    let recorder = Recorder::default();
    let registry =
        Registry::from([recorder.function("bill", accept(), InvocationPolicy::default())]);
    let config = RedisStreamTriggerConfig::new(&url, &stream, "billing").with_batch(7);
    let trigger = RedisStreamTrigger::new("bill", config).unwrap();
    let lag = trigger.lag_source();
    let host = Host::start(registry, trigger).await;
    recorder
        .wait_until("20 calls", |seen| seen.len() >= 20)
        .await;
    let by_id = recorder.by_id();
    assert_eq!(by_id.len(), 20);
    let first = &by_id[&format!("{stream}:{}", ids[0])][0];
    assert_eq!(first.attempt, 1);
    assert_eq!(first.ty, EVENT_TYPE);
    assert_eq!(first.source, format!("/redis/streams/{stream}"));
    assert_eq!(first.subject.as_deref(), Some(ids[0].as_str()));
    assert_eq!(first.data, br#"{"n":0}"#);
    assert_eq!(first.content_type.as_deref(), Some("application/json"));
    wait_lag_zero(&lag).await;
    host.stop().await.unwrap();
    assert_eq!(recorder.all().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_counts_unread_and_pending_entries() {
    let url = url();
    let mut redis = connection(&url).await;
    let stream = unique("lag");
    let trigger =
        RedisStreamTrigger::new("f", RedisStreamTriggerConfig::new(&url, &stream, "g")).unwrap();
    let lag = trigger.lag_source();
    assert_eq!(lag.lag().await.unwrap(), faas_core::trigger::Lag::IDLE);
    for n in 0..4 {
        add(&mut redis, &stream, &n.to_string()).await;
    }
    let now = lag.lag().await.unwrap();
    assert_eq!(now.pending, 4);
    assert!(now.active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_is_claimed_again_with_the_next_delivery_count() {
    let url = url();
    let mut redis = connection(&url).await;
    let stream = unique("flaky");
    add(&mut redis, &stream, "hello").await;
    let recorder = Recorder::default();
    let verdict = events::fails_before(3);
    let policy = InvocationPolicy::default().with_retry(quick_retries(5));
    let registry = Registry::from([recorder.function("flaky", verdict, policy)]);
    let trigger =
        RedisStreamTrigger::new("flaky", RedisStreamTriggerConfig::new(&url, &stream, "g"))
            .unwrap();
    let lag = trigger.lag_source();
    let host = Host::start(registry, trigger).await;
    recorder
        .wait_until("three attempts", |seen| seen.len() >= 3)
        .await;
    wait_lag_zero(&lag).await;
    let attempts: Vec<u32> = recorder.all().iter().map(|s| s.attempt).collect();
    assert_eq!(attempts, [1, 2, 3]);
    let ids: Vec<String> = recorder.all().iter().map(|s| s.id.clone()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_goes_to_the_dead_letter_stream_and_does_not_hold_up_the_rest() {
    let url = url();
    let mut redis = connection(&url).await;
    let stream = unique("poison");
    let dead = format!("{stream}:dead");
    let poison_id = add(&mut redis, &stream, "poison").await;
    for n in 0..30 {
        add(&mut redis, &stream, &format!("good {n}")).await;
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
    let config = RedisStreamTriggerConfig::new(&url, &stream, "eaters")
        .with_max_in_flight(4)
        .with_dead_letter_stream(&dead);
    let trigger = RedisStreamTrigger::new("eat", config).unwrap();
    let lag = trigger.lag_source();
    let host = Host::start(registry, trigger).await;
    recorder
        .wait_until("the good ones and three poison attempts", |seen| {
            seen.iter().filter(|s| s.data != b"poison").count() >= 30
                && seen.iter().filter(|s| s.data == b"poison").count() >= 3
        })
        .await;
    wait_lag_zero(&lag).await;
    let letters: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(&dead)
        .arg("-")
        .arg("+")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(letters.ids.len(), 1);
    let letter = &letters.ids[0];
    let field =
        |name: &str| -> String { letter.get(name).unwrap_or_else(|| panic!("field {name}")) };
    assert_eq!(field("data"), "poison");
    assert_eq!(field("attempts"), "3");
    assert_eq!(field("function"), "eat");
    assert!(field("error").contains("cannot digest"));
    assert_eq!(field("origin_id"), poison_id);
    assert_eq!(field("origin_stream"), stream);
    assert_eq!(field("header_ce-id"), format!("{stream}:{poison_id}"));
    host.stop().await.unwrap();
    let poison = recorder
        .all()
        .iter()
        .filter(|s| s.data == b"poison")
        .count();
    assert_eq!(poison, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_a_dead_consumer_left_are_reclaimed() {
    let url = url();
    let mut redis = connection(&url).await;
    let stream = unique("orphans");
    for n in 0..5 {
        add(&mut redis, &stream, &n.to_string()).await;
    }
    // A consumer that read them and died without acknowledging.
    create_group(&mut redis, &stream, "g").await;
    read_as(&mut redis, &stream, "g", "dead-consumer").await;
    let recorder = Recorder::default();
    let registry = Registry::from([recorder.function("f", accept(), InvocationPolicy::default())]);
    let config = RedisStreamTriggerConfig::new(&url, &stream, "g")
        .with_consumer("alive")
        .with_claim_idle(Duration::from_secs(1))
        .with_dead_consumer_idle(Duration::from_millis(1500));
    let trigger = RedisStreamTrigger::new("f", config).unwrap();
    let lag = trigger.lag_source();
    let host = Host::start(registry, trigger).await;
    recorder
        .wait_until("the five orphans", |seen| seen.len() >= 5)
        .await;
    wait_lag_zero(&lag).await;
    assert!(
        recorder.all().iter().all(|seen| seen.attempt == 2),
        "the second delivery of each: {:?}",
        recorder.all().iter().map(|s| s.attempt).collect::<Vec<_>>()
    );
    // The dead consumer, now holding nothing, leaves the group; the live one stays.
    let wait = async {
        loop {
            let names = consumers(&mut redis, &stream, "g").await;
            if names == ["alive"] {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .expect("the dead consumer is removed from the group");
    // A new entry still reaches the live consumer.
    add(&mut redis, &stream, "after").await;
    recorder
        .wait_until("the entry after the removal", |seen| seen.len() >= 6)
        .await;
    host.stop().await.unwrap();
}

/// Makes group `group` of `stream`, reading from the start.
async fn create_group(redis: &mut MultiplexedConnection, stream: &str, group: &str) {
    let _: redis::Value = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg("0")
        .query_async(redis)
        .await
        .unwrap();
}

/// Reads what is new for `group` as `consumer`, without acknowledging it.
async fn read_as(redis: &mut MultiplexedConnection, stream: &str, group: &str, consumer: &str) {
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("COUNT")
        .arg(10)
        .arg("STREAMS")
        .arg(stream)
        .arg(">")
        .query_async(redis)
        .await
        .unwrap();
}

/// The names of the group's consumers.
async fn consumers(redis: &mut MultiplexedConnection, stream: &str, group: &str) -> Vec<String> {
    let reply: redis::streams::StreamInfoConsumersReply = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(stream)
        .arg(group)
        .query_async(redis)
        .await
        .expect("XINFO CONSUMERS");
    reply.consumers.into_iter().map(|c| c.name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_still_holds_entries_is_not_removed() {
    let url = url();
    let mut redis = connection(&url).await;
    let stream = unique("holder");
    add(&mut redis, &stream, "held").await;
    create_group(&mut redis, &stream, "g").await;
    // A consumer that read the entry and went quiet; it is not reclaimed
    // (the claim idle is long), so it still holds it.
    read_as(&mut redis, &stream, "g", "quiet").await;
    // And one that never read anything.
    let _: i64 = redis::cmd("XGROUP")
        .arg("CREATECONSUMER")
        .arg(&stream)
        .arg("g")
        .arg("empty")
        .query_async(&mut redis)
        .await
        .unwrap();
    let recorder = Recorder::default();
    let registry = Registry::from([recorder.function("f", accept(), InvocationPolicy::default())]);
    let config = RedisStreamTriggerConfig::new(&url, &stream, "g")
        .with_consumer("alive")
        .with_claim_idle(Duration::from_secs(3600))
        .with_dead_consumer_idle(Duration::from_millis(1500));
    let host = Host::start(registry, RedisStreamTrigger::new("f", config).unwrap()).await;
    let wait = async {
        loop {
            let names = consumers(&mut redis, &stream, "g").await;
            if !names.iter().any(|name| name == "empty") {
                return names;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let names = tokio::time::timeout(PATIENCE, wait)
        .await
        .expect("the empty consumer is removed");
    assert!(names.iter().any(|name| name == "quiet"), "{names:?}");
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_is_not_a_stream_is_an_error_naming_the_setting() {
    let url = url();
    let mut redis = connection(&url).await;
    let key = unique("plain");
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("x")
        .query_async(&mut redis)
        .await
        .unwrap();
    let registry =
        Registry::from([Recorder::default().function("f", accept(), InvocationPolicy::default())]);
    let host = Host::start(
        registry,
        RedisStreamTrigger::new("f", RedisStreamTriggerConfig::new(&url, &key, "g")).unwrap(),
    )
    .await;
    let error = tokio::time::timeout(PATIENCE, host.task)
        .await
        .expect("the host stops on its own")
        .unwrap()
        .unwrap_err();
    let text = format!("{error:?}");
    assert!(text.contains("redis.stream"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_waited_for_while_not_ready() {
    let program = server_env("FAAS_REDIS_SERVER", "redis-server program");
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/");
    let stream = unique("late");
    let recorder = Recorder::default();
    let registry =
        Registry::from([recorder.function("late", accept(), InvocationPolicy::default())]);
    let host = Host::start(
        registry,
        RedisStreamTrigger::new("late", RedisStreamTriggerConfig::new(&url, &stream, "g")).unwrap(),
    )
    .await;
    host.wait_ready_status(503).await;
    assert!(!host.task.is_finished());
    let dir = scratch_dir(&stream);
    let mut server = ServerProcess::start(
        program,
        vec![
            "--bind".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--dir".into(),
            dir.display().to_string(),
            "--save".into(),
            String::new(),
        ],
        port,
        dir.join("redis.log"),
    );
    let mut redis = connection(&url).await;
    add(&mut redis, &stream, "hi").await;
    recorder
        .wait_until("the first call", |seen| !seen.is_empty())
        .await;
    host.wait_ready_status(200).await;
    host.stop().await.unwrap();
    server.stop();
}

/// A connector beside the gateway: the trigger calls the function over
/// HTTP, and the function's runtime sees the broker's delivery count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_gateway_invoker_each_attempt_reaches_the_runtime() {
    let url = url();
    let mut redis = connection(&url).await;
    let stream = unique("remote");
    add(&mut redis, &stream, "hello").await;
    let recorder = Recorder::default();
    let verdict = events::fails_before(3);
    let runtime = Host::runtime(Registry::from([recorder.function(
        "remote",
        verdict,
        InvocationPolicy::default(),
    )]))
    .await;
    let invoker = GatewayInvoker::new(format!("http://{}", runtime.http))
        .unwrap()
        .with_policy(InvocationPolicy::default().with_retry(quick_retries(5)));
    let trigger =
        RedisStreamTrigger::new("remote", RedisStreamTriggerConfig::new(&url, &stream, "g"))
            .unwrap()
            .with_invoker(Arc::new(invoker));
    let lag = trigger.lag_source();
    let connector = Host::start(Registry::default(), trigger).await;
    recorder
        .wait_until("three attempts", |seen| seen.len() >= 3)
        .await;
    wait_lag_zero(&lag).await;
    let attempts: Vec<u32> = recorder.all().iter().map(|s| s.attempt).collect();
    assert_eq!(attempts, [1, 2, 3]);
    let ids: Vec<String> = recorder.all().iter().map(|s| s.id.clone()).collect();
    assert_eq!(
        ids,
        vec![format!("{stream}:{}", recorder.all()[0].subject.clone().unwrap()); 3]
    );
    connector.stop().await.unwrap();
    runtime.stop().await.unwrap();
}
