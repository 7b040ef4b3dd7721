//! [`RedisLag`]: the group's backlog, for the autoscaler.

use async_trait::async_trait;
use faas_core::trigger::{Lag, LagSource};
use redis::aio::MultiplexedConnection;
use redis::streams::StreamInfoGroupsReply;
use tokio::sync::Mutex;

use super::config::RedisStreamTriggerConfig;

/// The work a Redis trigger's group holds: entries not yet read by the
/// group (`lag` of `XINFO GROUPS`) plus those read and not acknowledged
/// (`pending`). Before the group exists, every entry of the stream counts.
pub struct RedisLag {
    function: String,
    config: RedisStreamTriggerConfig,
    connection: Mutex<Option<MultiplexedConnection>>,
}

impl std::fmt::Debug for RedisLag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLag")
            .field("function", &self.function)
            .field("stream", &self.config.stream)
            .field("group", &self.config.group)
            .finish()
    }
}

impl RedisLag {
    pub(crate) fn new(function: String, config: RedisStreamTriggerConfig) -> Self {
        RedisLag {
            function,
            config,
            connection: Mutex::new(None),
        }
    }
}

fn failed(error: redis::RedisError) -> faas_core::Error {
    faas_core::Error::trigger("redis lag", error)
}

#[async_trait]
impl LagSource for RedisLag {
    fn function(&self) -> &str {
        &self.function
    }

    async fn lag(&self) -> Result<Lag, faas_core::Error> {
        let mut held = self.connection.lock().await;
        if held.is_none() {
            let client = redis::Client::open(self.config.url.as_str()).map_err(failed)?;
            *held = Some(
                client
                    .get_multiplexed_async_connection()
                    .await
                    .map_err(failed)?,
            );
        }
        let connection = held.as_mut().expect("connected above");
        let groups: Result<StreamInfoGroupsReply, _> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(&self.config.stream)
            .query_async(connection)
            .await;
        let group = match groups {
            Ok(groups) => groups
                .groups
                .into_iter()
                .find(|group| group.name == self.config.group),
            // No such key yet: nothing waits.
            Err(error) if error.to_string().contains("no such key") => return Ok(Lag::IDLE),
            Err(error) => {
                *held = None;
                return Err(failed(error));
            }
        };
        let pending = match group {
            Some(group) => {
                let unread = match group.lag {
                    Some(lag) => lag,
                    None => redis::cmd("XLEN")
                        .arg(&self.config.stream)
                        .query_async::<usize>(connection)
                        .await
                        .map_err(failed)?,
                };
                unread.saturating_add(group.pending)
            }
            None => redis::cmd("XLEN")
                .arg(&self.config.stream)
                .query_async::<usize>(connection)
                .await
                .map_err(failed)?,
        };
        Ok(Lag::pending(u64::try_from(pending).unwrap_or(u64::MAX)))
    }
}
