//! B8 on Redis Streams.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use faas_core::{LocalExecutor, Registry};
use faas_triggers::redis::{RedisStreamTrigger, RedisStreamTriggerConfig};
use redis::aio::MultiplexedConnection;
use redis::streams::StreamReadReply;

use super::{Counter, Handle, Source, run_until, unique};

/// Entries per read, for both consumers.
const BATCH: usize = 256;

/// The server of `FAAS_REDIS_URL`.
#[derive(Debug)]
pub struct Redis {
    url: String,
}

impl Redis {
    /// From `FAAS_REDIS_URL` (set by `cargo xtask bench`).
    pub fn from_env() -> Self {
        Redis {
            url: std::env::var("FAAS_REDIS_URL")
                .expect("FAAS_REDIS_URL: run B8 through `cargo xtask bench`"),
        }
    }

    async fn connection(&self) -> MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .expect("a Redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to Redis")
    }
}

#[async_trait]
impl Source for Redis {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn prepare(&self, tag: &str) -> String {
        let key = unique(tag);
        let _: () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&key)
            .arg("group")
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.connection().await)
            .await
            .expect("XGROUP CREATE");
        key
    }

    async fn publish(&self, queue: &str, payloads: Vec<Bytes>) {
        let mut connection = self.connection().await;
        for chunk in payloads.chunks(1000) {
            let mut pipe = redis::pipe();
            for payload in chunk {
                pipe.cmd("XADD")
                    .arg(queue)
                    .arg("*")
                    .arg("data")
                    .arg(payload.as_ref());
            }
            let _: Vec<String> = pipe.query_async(&mut connection).await.expect("XADD");
        }
    }

    async fn run_trigger(&self, queue: &str, registry: Registry, done: Arc<Counter>) {
        let config = RedisStreamTriggerConfig::new(&self.url, queue, "group")
            .with_consumer("faas")
            .with_batch(BATCH);
        let executor = LocalExecutor::builder(registry)
            .trigger(RedisStreamTrigger::new("noop", config).expect("a valid configuration"))
            .build();
        run_until(executor, done).await;
    }

    async fn run_bare(&self, queue: &str, handle: Handle, done: Arc<Counter>) {
        let mut reader = self.connection().await;
        let mut acks = self.connection().await;
        while !done.done() {
            let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg("group")
                .arg("bare")
                .arg("COUNT")
                .arg(BATCH)
                .arg("BLOCK")
                .arg(200)
                .arg("STREAMS")
                .arg(queue)
                .arg(">")
                .query_async(&mut reader)
                .await
                .expect("XREADGROUP");
            for entry in reply
                .into_iter()
                .flat_map(|reply| reply.keys)
                .flat_map(|key| key.ids)
            {
                if let Some(redis::Value::BulkString(data)) = entry.map.get("data") {
                    handle(data);
                }
                let _: i64 = redis::cmd("XACK")
                    .arg(queue)
                    .arg("group")
                    .arg(&entry.id)
                    .query_async(&mut acks)
                    .await
                    .expect("XACK");
            }
        }
    }
}
