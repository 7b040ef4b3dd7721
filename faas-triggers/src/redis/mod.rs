//! The Redis Streams trigger: a consumer group whose entries become calls,
//! at least once.
//!
//! - [`RedisStreamTrigger`] reads (`XREADGROUP`), acknowledges after
//!   success (`XACK`), claims failed entries again after the policy's
//!   backoff, reclaims those a dead consumer left (`XAUTOCLAIM`) and then
//!   removes that consumer from the group (`XGROUP DELCONSUMER`);
//!   [`RedisStreamTriggerConfig`] configures it.
//! - [`RedisDeadLetter`] adds entries that failed for good to a stream.
//! - [`RedisLag`] tells the autoscaler how many entries wait.
//!
//! Each entry reaches the function as a CloudEvent in binary mode: `ce-id`
//! is `STREAM:ENTRY-ID` (the same at every redelivery), `ce-source`
//! `/redis/streams/STREAM`, `ce-type` [`EVENT_TYPE`], `ce-subject` the
//! entry id; the body is the entry's payload field (`data` by default), or
//! all its fields as a JSON object.

mod config;
mod consumers;
mod dead_letter;
mod lag;
mod message;
mod trigger;

pub use config::{
    DEFAULT_BATCH, DEFAULT_BLOCK, DEFAULT_CLAIM_IDLE, DEFAULT_DEAD_CONSUMER_IDLE,
    DEFAULT_PAYLOAD_FIELD, RedisStreamTriggerConfig, StartFrom,
};
pub use dead_letter::RedisDeadLetter;
pub use lag::RedisLag;
pub use message::EVENT_TYPE;
pub use trigger::RedisStreamTrigger;
