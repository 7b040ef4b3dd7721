//! The NATS JetStream trigger: a durable pull consumer whose messages
//! become calls, at least once.
//!
//! - [`NatsTrigger`] consumes and settles (ack, nak with delay, term, in
//!   progress); [`NatsTriggerConfig`] configures it.
//! - [`NatsDeadLetter`] publishes messages that failed for good to a
//!   subject, with the error in headers.
//! - [`NatsLag`] tells the autoscaler how many messages wait.
//!
//! Each message reaches the function as a CloudEvent in binary mode:
//! `ce-id` is `STREAM:SEQUENCE` (the same at every redelivery, so a
//! function can deduplicate), `ce-source` `/nats/streams/STREAM`, `ce-type`
//! [`EVENT_TYPE`], `ce-subject` the message's subject, `ce-time` its
//! publication; the payload is the body (`Json<T>` reads it), the message's
//! headers come along.

mod config;
mod dead_letter;
mod lag;
mod message;
mod trigger;

pub use config::{DEFAULT_ACK_WAIT, DEFAULT_BATCH, DEFAULT_FETCH_WAIT, NatsTriggerConfig};
pub use dead_letter::NatsDeadLetter;
pub use lag::NatsLag;
pub use message::EVENT_TYPE;
pub use trigger::NatsTrigger;
