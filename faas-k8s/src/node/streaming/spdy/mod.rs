//! SPDY/3.1, as far as the kubelet's streaming protocols need it: the frames ([`frame`]) and a
//! server-side connection that accepts the streams a client opens ([`session`]).

pub(crate) mod frame;
pub(crate) mod session;

pub(crate) use session::{SpdyConnection, SpdyStream, StreamWriter};

/// The `Upgrade` token of a SPDY/3.1 connection.
pub(crate) const UPGRADE: &str = "SPDY/3.1";
