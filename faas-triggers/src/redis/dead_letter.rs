//! [`RedisDeadLetter`]: failed entries added to a dead-letter stream.

use async_trait::async_trait;
use faas_core::{DeadLetter, DeadLetterEntry, Error};
use redis::aio::MultiplexedConnection;

/// Adds each letter to a stream (`XADD key * ...`): the field `data` holds
/// the original payload; `function`, `call_id`, `error`, `error_kind`,
/// `attempts`, `failed_at` (RFC 3339) describe the failure, `origin_<name>`
/// the entry it came from (`stream`, `id`), `header_<name>` its headers.
/// A failed `XADD` is an error: the entry is then not acknowledged.
#[derive(Clone)]
pub struct RedisDeadLetter {
    connection: MultiplexedConnection,
    stream: String,
}

impl std::fmt::Debug for RedisDeadLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDeadLetter")
            .field("stream", &self.stream)
            .finish()
    }
}

impl RedisDeadLetter {
    /// Letters to `stream` over `connection`.
    pub fn new(connection: MultiplexedConnection, stream: impl Into<String>) -> Self {
        RedisDeadLetter {
            connection,
            stream: stream.into(),
        }
    }
}

#[async_trait]
impl DeadLetter for RedisDeadLetter {
    async fn dead_letter(&self, letter: DeadLetterEntry) -> Result<(), Error> {
        let (parts, payload) = letter.request.into_parts();
        let mut command = redis::cmd("XADD");
        command
            .arg(&self.stream)
            .arg("*")
            .arg("data")
            .arg(payload.as_ref())
            .arg("function")
            .arg(&letter.function)
            .arg("call_id")
            .arg(letter.call_id.as_str())
            .arg("error")
            .arg(letter.error.to_string())
            .arg("error_kind")
            .arg(letter.error.kind().as_str())
            .arg("attempts")
            .arg(letter.attempts)
            .arg("failed_at")
            .arg(humantime::format_rfc3339_millis(letter.failed_at).to_string());
        for (name, value) in &letter.attributes {
            command.arg(format!("origin_{name}")).arg(value);
        }
        for (name, value) in &parts.headers {
            command.arg(format!("header_{name}")).arg(value.as_bytes());
        }
        let mut connection = self.connection.clone();
        command
            .query_async::<String>(&mut connection)
            .await
            .map(drop)
            .map_err(|error| Error::trigger("redis dead letter", error))
    }
}
