//! One SPDY/3.1 connection seen from the server side: the peer opens streams, the node answers
//! each with a SYN_REPLY and reads and writes their bytes.
//!
//! Like the Kubernetes peers (whose SPDY library keeps no flow-control windows), the node sends
//! no WINDOW_UPDATE and ignores those it receives; each stream's incoming bytes wait in a bounded
//! queue, so a consumer that does not keep up slows the connection down rather than filling the
//! node's memory.

use std::collections::HashMap;
use std::io;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

use super::frame::{Frame, FrameCodec, Headers, MAX_PAYLOAD};

/// Frames of incoming data queued per stream before the connection waits for its reader.
const STREAM_QUEUE: usize = 256;
/// The largest data frame the node sends.
const MAX_DATA_FRAME: usize = 32 * 1024;

/// A stream the peer opened.
#[derive(Debug)]
pub(crate) struct SpdyStream {
    /// Its headers (`streamtype`, `port`, `requestid`, ...).
    pub(crate) headers: Headers,
    /// Its incoming bytes; ends when the peer half-closes or resets it, or the connection ends.
    pub(crate) incoming: mpsc::Receiver<Bytes>,
    /// Writes to it.
    pub(crate) writer: StreamWriter,
}

impl SpdyStream {
    /// The first value of the header `name`.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        super::frame::header(&self.headers, name)
    }

    /// Takes the incoming bytes out of the stream (to read them on another task); the stream
    /// then reads as ended.
    pub(crate) fn take_incoming(&mut self) -> mpsc::Receiver<Bytes> {
        std::mem::replace(&mut self.incoming, mpsc::channel(1).1)
    }
}

enum Outgoing {
    Frame(Frame),
    /// Flush what is queued, end the connection, then answer.
    Close(oneshot::Sender<()>),
}

/// The sending half of one stream.
#[derive(Clone, Debug)]
pub(crate) struct StreamWriter {
    stream_id: u32,
    frames: mpsc::Sender<Outgoing>,
}

impl std::fmt::Debug for Outgoing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Frame(frame) => frame.fmt(f),
            Self::Close(_) => f.write_str("Close"),
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the SPDY connection is closed")
}

impl StreamWriter {
    /// Sends `data` (in frames of at most 32 KiB).
    pub(crate) async fn write(&self, data: &[u8]) -> io::Result<()> {
        for chunk in data.chunks(MAX_DATA_FRAME.min(MAX_PAYLOAD)) {
            self.frames
                .send(Outgoing::Frame(Frame::Data {
                    stream_id: self.stream_id,
                    fin: false,
                    data: Bytes::copy_from_slice(chunk),
                }))
                .await
                .map_err(|_| closed())?;
        }
        Ok(())
    }

    /// Half-closes the stream: the node sends nothing more on it.
    pub(crate) async fn close(&self) -> io::Result<()> {
        self.frames
            .send(Outgoing::Frame(Frame::Data {
                stream_id: self.stream_id,
                fin: true,
                data: Bytes::new(),
            }))
            .await
            .map_err(|_| closed())
    }
}

/// A server-side SPDY/3.1 connection: the streams the peer opens come out of
/// [`next_stream`](Self::next_stream).
#[derive(Debug)]
pub(crate) struct SpdyConnection {
    streams: mpsc::Receiver<SpdyStream>,
    frames: mpsc::Sender<Outgoing>,
    ended: CancellationToken,
}

impl SpdyConnection {
    /// Starts serving the connection on `io` (an upgraded HTTP connection).
    pub(crate) fn new<IO>(io: IO) -> Self
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(io);
        let (frames_tx, frames_rx) = mpsc::channel(64);
        let (streams_tx, streams_rx) = mpsc::channel(16);
        let ended = CancellationToken::new();
        tokio::spawn(write_frames(
            FramedWrite::new(write, FrameCodec::default()),
            frames_rx,
        ));
        tokio::spawn(read_frames(
            FramedRead::new(read, FrameCodec::default()),
            frames_tx.clone(),
            streams_tx,
            ended.clone(),
        ));
        Self {
            streams: streams_rx,
            frames: frames_tx,
            ended,
        }
    }

    /// The next stream the peer opens; `None` once the peer opens no more (it went away or the
    /// connection ended).
    pub(crate) async fn next_stream(&mut self) -> Option<SpdyStream> {
        self.streams.recv().await
    }

    /// Fires when the peer's side of the connection has ended.
    pub(crate) fn ended(&self) -> CancellationToken {
        self.ended.clone()
    }

    /// Sends what is queued, then ends the connection.
    pub(crate) async fn close(self) {
        let (done, wait) = oneshot::channel();
        if self.frames.send(Outgoing::Close(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_frames<W>(mut sink: FramedWrite<W, FrameCodec>, mut frames: mpsc::Receiver<Outgoing>)
where
    W: AsyncWrite + Send + Unpin,
{
    while let Some(outgoing) = frames.recv().await {
        match outgoing {
            Outgoing::Frame(frame) => {
                if let Err(e) = sink.feed(frame).await {
                    tracing::debug!(error = %e, "writing a SPDY frame failed");
                    return;
                }
                // Flush once nothing else is queued.
                if frames.is_empty()
                    && let Err(e) = sink.flush().await
                {
                    tracing::debug!(error = %e, "flushing a SPDY connection failed");
                    return;
                }
            }
            Outgoing::Close(done) => {
                let _ = sink
                    .send(Frame::GoAway {
                        last_good_stream_id: 0,
                        status: 0,
                    })
                    .await;
                let _ = sink.close().await;
                let _ = done.send(());
                return;
            }
        }
    }
}

async fn read_frames<R>(
    mut source: FramedRead<R, FrameCodec>,
    frames: mpsc::Sender<Outgoing>,
    streams: mpsc::Sender<SpdyStream>,
    ended: CancellationToken,
) where
    R: AsyncRead + Send + Unpin,
{
    let mut open: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
    let mut accepting = true;
    while let Some(frame) = source.next().await {
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                tracing::debug!(error = %e, "reading a SPDY connection failed");
                break;
            }
        };
        match frame {
            Frame::SynStream {
                stream_id,
                fin,
                headers,
                ..
            } => {
                if !accepting {
                    let _ = frames
                        .send(Outgoing::Frame(Frame::RstStream {
                            stream_id,
                            status: 7, // REFUSED_STREAM
                        }))
                        .await;
                    continue;
                }
                let (data_tx, data_rx) = mpsc::channel(STREAM_QUEUE);
                if !fin {
                    open.insert(stream_id, data_tx);
                }
                let reply = Frame::SynReply {
                    stream_id,
                    fin: false,
                    headers: Headers::new(),
                };
                if frames.send(Outgoing::Frame(reply)).await.is_err() {
                    break;
                }
                let stream = SpdyStream {
                    headers,
                    incoming: data_rx,
                    writer: StreamWriter {
                        stream_id,
                        frames: frames.clone(),
                    },
                };
                if streams.send(stream).await.is_err() {
                    // Nobody takes streams any more.
                    accepting = false;
                }
            }
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                if let Some(queue) = open.get(&stream_id)
                    && !data.is_empty()
                    && queue.send(data).await.is_err()
                {
                    open.remove(&stream_id);
                }
                if fin {
                    open.remove(&stream_id);
                }
            }
            Frame::RstStream { stream_id, .. } => {
                open.remove(&stream_id);
            }
            Frame::Ping { id } => {
                if frames
                    .send(Outgoing::Frame(Frame::Ping { id }))
                    .await
                    .is_err()
                {
                    break;
                }
            }
            Frame::GoAway { .. } => accepting = false,
            Frame::Headers { stream_id, fin, .. } if fin => {
                open.remove(&stream_id);
            }
            Frame::SynReply { .. }
            | Frame::Headers { .. }
            | Frame::Settings { .. }
            | Frame::WindowUpdate { .. }
            | Frame::Unknown { .. } => {}
        }
        if !accepting && open.is_empty() && streams.is_closed() {
            break;
        }
    }
    ended.cancel();
}
