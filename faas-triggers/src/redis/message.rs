//! A stream entry as an event, and its settlement.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use faas_core::trigger::Settle;
use faas_core::{CloudEvent, Error, Invocation};
use redis::Value;
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;

use crate::event::{event_invocation, with_payload};

/// The CloudEvents type of a Redis stream entry.
pub const EVENT_TYPE: &str = "rs.faas.redis.entry";

/// What settling needs of the group.
#[derive(Clone)]
pub(crate) struct Group {
    pub(crate) connection: MultiplexedConnection,
    pub(crate) stream: String,
    pub(crate) group: String,
    pub(crate) consumer: String,
    /// Entries to deliver again after a delay.
    pub(crate) retries: mpsc::UnboundedSender<(String, Duration)>,
}

/// A received entry, settled with `XACK`, a delayed reclaim, or `XCLAIM`
/// to keep it fresh.
pub(crate) struct RedisEntry<'a> {
    pub(crate) group: &'a Group,
    pub(crate) id: &'a str,
}

fn failed(error: redis::RedisError) -> Error {
    Error::trigger("redis", error)
}

#[async_trait]
impl Settle for RedisEntry<'_> {
    async fn ack(&self) -> Result<(), Error> {
        let mut connection = self.group.connection.clone();
        redis::cmd("XACK")
            .arg(&self.group.stream)
            .arg(&self.group.group)
            .arg(self.id)
            .query_async::<i64>(&mut connection)
            .await
            .map(drop)
            .map_err(failed)
    }

    /// The entry stays pending; after `delay` this consumer claims it again
    /// (the delivery count goes up). Should this consumer die meanwhile,
    /// another one reclaims it once it is idle for `claim_idle`.
    async fn nack(&self, delay: Duration) -> Result<(), Error> {
        self.group
            .retries
            .send((self.id.to_owned(), delay))
            .map_err(|_| Error::trigger("redis", "the trigger stopped"))
    }

    async fn terminate(&self) -> Result<(), Error> {
        self.ack().await
    }

    /// Claims the entry again without counting a delivery (`JUSTID`), which
    /// resets its idle time, so no other consumer reclaims it meanwhile.
    async fn in_progress(&self) -> Result<(), Error> {
        let mut connection = self.group.connection.clone();
        redis::cmd("XCLAIM")
            .arg(&self.group.stream)
            .arg(&self.group.group)
            .arg(&self.group.consumer)
            .arg(0)
            .arg(self.id)
            .arg("JUSTID")
            .query_async::<Value>(&mut connection)
            .await
            .map(drop)
            .map_err(failed)
    }
}

/// The bytes of a field's value.
fn bytes_of(value: &Value) -> Option<Bytes> {
    match value {
        Value::BulkString(bytes) => Some(Bytes::copy_from_slice(bytes)),
        Value::SimpleString(text) => Some(Bytes::copy_from_slice(text.as_bytes())),
        Value::Int(n) => Some(Bytes::from(n.to_string())),
        _ => None,
    }
}

/// The invocation of `function` for entry `id` of `stream`: a CloudEvent
/// (id `STREAM:ENTRY-ID`, source `/redis/streams/STREAM`, subject the entry
/// id) whose data is the payload field, or all fields as a JSON object.
pub(crate) fn invocation_of(
    stream: &str,
    id: &str,
    fields: &HashMap<String, Value>,
    payload_field: &str,
    function: &str,
    attempt: u32,
) -> Invocation {
    let event = CloudEvent::new(
        format!("{stream}:{id}"),
        format!("/redis/streams/{stream}"),
        EVENT_TYPE,
    )
    .with_subject(id);
    let content_type = fields
        .get("content-type")
        .and_then(bytes_of)
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok());
    let event = match fields.get(payload_field).and_then(bytes_of) {
        Some(payload) => with_payload(event, content_type.as_deref(), payload),
        None => {
            let object: serde_json::Map<String, serde_json::Value> = fields
                .iter()
                .filter_map(|(name, value)| {
                    let bytes = bytes_of(value)?;
                    Some((
                        name.clone(),
                        String::from_utf8_lossy(&bytes).into_owned().into(),
                    ))
                })
                .collect();
            let body = serde_json::to_vec(&object).unwrap_or_default();
            with_payload(event, Some("application/json"), Bytes::from(body))
        }
    };
    event_invocation(event, function, attempt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_field_is_the_data_else_all_fields_as_json() {
        let mut fields = HashMap::new();
        fields.insert("data".to_owned(), Value::BulkString(br#"{"n":1}"#.to_vec()));
        let with_data = invocation_of("orders", "1-0", &fields, "data", "f", 2);
        assert_eq!(with_data.body(), r#"{"n":1}"#);
        assert_eq!(with_data.headers()["ce-id"], "orders:1-0");
        assert_eq!(with_data.headers()["content-type"], "application/json");
        assert_eq!(with_data.context().attempt(), 2);
        let mut plain = HashMap::new();
        plain.insert("user".to_owned(), Value::BulkString(b"ann".to_vec()));
        let as_json = invocation_of("orders", "2-0", &plain, "data", "f", 1);
        assert_eq!(as_json.body(), r#"{"user":"ann"}"#);
    }
}
