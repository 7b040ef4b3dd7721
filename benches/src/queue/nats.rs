//! B8 on NATS JetStream.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use async_trait::async_trait;
use bytes::Bytes;
use faas_core::{LocalExecutor, Registry};
use faas_triggers::nats::{NatsTrigger, NatsTriggerConfig};
use futures::StreamExt as _;

use super::{Counter, Handle, Source, run_until, unique};

/// Messages per pull, for both consumers.
const BATCH: usize = 256;

/// The server of `FAAS_NATS_URL`.
#[derive(Debug)]
pub struct Nats {
    url: String,
}

impl Nats {
    /// From `FAAS_NATS_URL` (set by `cargo xtask bench`).
    pub fn from_env() -> Self {
        Nats {
            url: std::env::var("FAAS_NATS_URL")
                .expect("FAAS_NATS_URL: run B8 through `cargo xtask bench`"),
        }
    }

    async fn context(&self) -> jetstream::Context {
        jetstream::new(
            async_nats::connect(&self.url)
                .await
                .expect("connect to NATS"),
        )
    }
}

#[async_trait]
impl Source for Nats {
    fn name(&self) -> &'static str {
        "nats"
    }

    async fn prepare(&self, tag: &str) -> String {
        let name = unique(tag).to_uppercase();
        self.context()
            .await
            .create_stream(stream::Config {
                name: name.clone(),
                subjects: vec![format!("{}.>", name.to_lowercase())],
                ..Default::default()
            })
            .await
            .expect("create the stream");
        name
    }

    async fn publish(&self, queue: &str, payloads: Vec<Bytes>) {
        let js = self.context().await;
        let subject = format!("{}.m", queue.to_lowercase());
        for chunk in payloads.chunks(1000) {
            let mut acks = Vec::with_capacity(chunk.len());
            for payload in chunk {
                acks.push(
                    js.publish(subject.clone(), payload.clone())
                        .await
                        .expect("publish"),
                );
            }
            for ack in acks {
                ack.await.expect("stored");
            }
        }
    }

    async fn run_trigger(&self, queue: &str, registry: Registry, done: Arc<Counter>) {
        let config = NatsTriggerConfig::new(&self.url, queue, "consumer").with_batch(BATCH);
        let executor = LocalExecutor::builder(registry)
            .trigger(NatsTrigger::new("noop", config).expect("a valid configuration"))
            .build();
        run_until(executor, done).await;
    }

    async fn run_bare(&self, queue: &str, handle: Handle, done: Arc<Counter>) {
        let js = self.context().await;
        let stream = js.get_stream(queue).await.expect("the stream");
        let consumer: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some("consumer".into()),
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .expect("a consumer");
        while !done.done() {
            let mut batch = consumer
                .batch()
                .max_messages(BATCH)
                .expires(Duration::from_secs(1))
                .messages()
                .await
                .expect("a pull");
            while let Some(Ok(message)) = batch.next().await {
                handle(&message.payload);
                message.ack().await.expect("ack");
            }
        }
    }
}
