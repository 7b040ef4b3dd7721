//! Reading a request body under a size limit.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use faas_core::FunctionError;
use http_body_util::BodyExt;
use hyper::body::Body;

/// How much of an oversized body is read and thrown away so that the 413 can
/// be answered on a connection that stays open.
const DRAIN_MAX: usize = 1024 * 1024;

/// How long draining an oversized body may take.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Over the limit. `close`: the rest of the body was not read, so the
    /// connection cannot be reused.
    TooLarge { limit: usize, close: bool },
    /// The client stopped sending half-way or sent a malformed body.
    Read(String),
}

impl BodyError {
    pub(crate) fn close(&self) -> bool {
        match self {
            BodyError::TooLarge { close, .. } => *close,
            BodyError::Read(_) => true,
        }
    }

    pub(crate) fn into_error(self) -> FunctionError {
        match self {
            BodyError::TooLarge { limit, .. } => too_large(limit),
            BodyError::Read(reason) => {
                FunctionError::bad_input(format!("could not read the request body: {reason}"))
            }
        }
    }
}

/// Reads the whole of `body`, refusing more than `limit` bytes.
///
/// A declared `content-length` far over the limit is refused before a byte
/// is read; a body a little over it (up to 1 MiB more) is read to its end and
/// thrown away, so that the connection can carry the next request. A body that
/// arrives in one frame (the common case) is returned without a copy.
pub(crate) async fn read_limited<B>(mut body: B, limit: usize) -> Result<Bytes, BodyError>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    if let Some(declared) = body.size_hint().exact()
        && declared > limit as u64
    {
        let close = declared > limit.saturating_add(DRAIN_MAX) as u64 || !drain(&mut body).await;
        return Err(BodyError::TooLarge { limit, close });
    }
    let mut first: Option<Bytes> = None;
    let mut rest: Option<BytesMut> = None;
    let mut total = 0_usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| BodyError::Read(error.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if data.is_empty() {
            continue;
        }
        total = total.saturating_add(data.len());
        if total > limit {
            let close = !drain(&mut body).await;
            return Err(BodyError::TooLarge { limit, close });
        }
        match (&mut first, &mut rest) {
            (None, _) => first = Some(data),
            (Some(head), None) => {
                let mut buffer = BytesMut::with_capacity(total.max(head.len() * 2));
                buffer.extend_from_slice(head);
                buffer.extend_from_slice(&data);
                rest = Some(buffer);
            }
            (Some(_), Some(buffer)) => buffer.extend_from_slice(&data),
        }
    }
    Ok(match (first, rest) {
        (_, Some(buffer)) => buffer.freeze(),
        (Some(only), None) => only,
        (None, None) => Bytes::new(),
    })
}

/// Reads and discards up to [`DRAIN_MAX`] bytes; true when the body ended.
async fn drain<B>(body: &mut B) -> bool
where
    B: Body<Data = Bytes> + Unpin,
{
    let discard = async {
        let mut discarded = 0_usize;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else { return false };
            if let Ok(data) = frame.into_data() {
                discarded = discarded.saturating_add(data.len());
                if discarded > DRAIN_MAX {
                    return false;
                }
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_TIMEOUT, discard)
        .await
        .unwrap_or(false)
}

pub(crate) fn too_large(limit: usize) -> FunctionError {
    FunctionError::payload_too_large(format!(
        "the request body is larger than the limit of {limit} bytes"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};
    use hyper::body::Frame;

    fn chunks(
        parts: &[&'static [u8]],
    ) -> impl Body<Data = Bytes, Error = std::convert::Infallible> + Unpin {
        let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = parts
            .iter()
            .map(|part| Ok(Frame::data(Bytes::from_static(part))))
            .collect();
        StreamBody::new(futures::stream::iter(frames))
    }

    #[tokio::test]
    async fn reads_within_the_limit() {
        let one = Bytes::from_static(b"hello");
        let read = read_limited(Full::new(one.clone()), 5).await.unwrap();
        assert_eq!(read, one);
        assert_eq!(read.as_ptr(), one.as_ptr(), "one frame is not copied");
        let read = read_limited(chunks(&[b"ab", b"", b"cd", b"e"]), 5)
            .await
            .unwrap();
        assert_eq!(read, "abcde");
        assert!(read_limited(chunks(&[]), 0).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn refuses_past_the_limit() {
        let err = read_limited(Full::new(Bytes::from_static(b"hello!")), 5)
            .await
            .unwrap_err();
        assert!(!err.close(), "a small excess is drained");
        assert_eq!(
            err.into_error().kind(),
            faas_core::ErrorKind::PayloadTooLarge
        );
        let err = read_limited(chunks(&[b"abc", b"def", b"ghi"]), 5)
            .await
            .unwrap_err();
        assert!(!err.close());
        assert_eq!(
            err.into_error().kind(),
            faas_core::ErrorKind::PayloadTooLarge
        );
        let huge = Full::new(Bytes::from(vec![0_u8; 2 * DRAIN_MAX + 10]));
        let err = read_limited(huge, 5).await.unwrap_err();
        assert!(err.close(), "a large excess closes the connection");
    }
}
