//! [`NatsLag`]: the consumer's backlog, for the autoscaler.

use async_nats::jetstream;
use async_trait::async_trait;
use faas_core::trigger::{Lag, LagSource};
use tokio::sync::Mutex;

use super::config::NatsTriggerConfig;

/// The work a NATS trigger's consumer holds: messages not yet delivered
/// plus those delivered and not yet acknowledged. Before the consumer
/// exists (the trigger never ran), every message of the stream counts.
///
/// It connects on first use and keeps the connection.
pub struct NatsLag {
    function: String,
    config: NatsTriggerConfig,
    context: Mutex<Option<jetstream::Context>>,
}

impl std::fmt::Debug for NatsLag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsLag")
            .field("function", &self.function)
            .field("stream", &self.config.stream)
            .field("consumer", &self.config.consumer)
            .finish()
    }
}

impl NatsLag {
    pub(crate) fn new(function: String, config: NatsTriggerConfig) -> Self {
        NatsLag {
            function,
            config,
            context: Mutex::new(None),
        }
    }

    async fn context(&self) -> Result<jetstream::Context, faas_core::Error> {
        let mut context = self.context.lock().await;
        if let Some(context) = &*context {
            return Ok(context.clone());
        }
        let client = async_nats::connect(self.config.url.as_str())
            .await
            .map_err(|error| faas_core::Error::trigger("nats lag", error))?;
        let made = jetstream::new(client);
        *context = Some(made.clone());
        Ok(made)
    }
}

#[async_trait]
impl LagSource for NatsLag {
    fn function(&self) -> &str {
        &self.function
    }

    async fn lag(&self) -> Result<Lag, faas_core::Error> {
        let context = self.context().await?;
        let mut stream = context
            .get_stream(&self.config.stream)
            .await
            .map_err(failed)?;
        let consumer: Result<jetstream::consumer::PullConsumer, _> =
            stream.get_consumer(&self.config.consumer).await;
        match consumer {
            Ok(mut consumer) => {
                let info = consumer.info().await.map_err(failed)?;
                let ack_pending = u64::try_from(info.num_ack_pending).unwrap_or(u64::MAX);
                Ok(Lag::pending(info.num_pending.saturating_add(ack_pending)))
            }
            Err(_) => {
                let info = stream.info().await.map_err(failed)?;
                Ok(Lag::pending(info.state.messages))
            }
        }
    }
}

fn failed(error: impl std::error::Error + Send + Sync + 'static) -> faas_core::Error {
    faas_core::Error::trigger("nats lag", error)
}
