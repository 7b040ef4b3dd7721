//! SPDY/3.1 frames and their wire format, as the Kubernetes streaming protocols use them.
//!
//! A frame is an 8-byte header and a payload. A control frame starts with the control bit, the
//! version (3) and its type; a data frame with a 31-bit stream id. Header blocks (in SYN_STREAM,
//! SYN_REPLY and HEADERS) are zlib-compressed with the protocol's dictionary, one compression
//! context per direction for the whole connection ([`HeaderCodec`]).
//!
//! No kept Rust crate speaks SPDY (HTTP/2 replaced it everywhere but in the kubelet's streaming
//! API), so the framing is written here; the tests check it against itself with arbitrary frames
//! and against arbitrary bytes.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio_util::codec::{Decoder, Encoder};

/// The protocol version this module speaks.
const VERSION: u16 = 3;
/// The largest payload accepted (the length field has 24 bits).
pub(crate) const MAX_PAYLOAD: usize = (1 << 24) - 1;
/// The largest header block accepted once decompressed.
const MAX_HEADER_BLOCK: usize = 1 << 20;
/// The zlib dictionary the SPDY/3 specification gives for header blocks.
const DICTIONARY: &[u8] = include_bytes!("dictionary.bin");

const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;

const FLAG_FIN: u8 = 0x01;
const FLAG_UNIDIRECTIONAL: u8 = 0x02;
const STREAM_ID_MASK: u32 = 0x7fff_ffff;

/// Header names and values of a stream (names in lower case; several values of one name are
/// kept as separate entries).
pub(crate) type Headers = Vec<(String, String)>;

/// One SPDY/3.1 frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Bytes of a stream.
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
    /// A peer opens a stream.
    SynStream {
        stream_id: u32,
        associated_to: u32,
        priority: u8,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
    },
    /// The answer to a SYN_STREAM.
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    /// A stream ends abnormally.
    RstStream { stream_id: u32, status: u32 },
    /// Connection settings (flags, id, value); the node keeps none.
    Settings {
        clear: bool,
        entries: Vec<(u8, u32, u32)>,
    },
    /// A liveness check, echoed.
    Ping { id: u32 },
    /// The peer stops opening streams.
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    /// More headers of a stream.
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    /// Flow control credit (the Kubernetes peers do not enforce windows).
    WindowUpdate { stream_id: u32, delta: u32 },
    /// A control frame of a type this module does not know; ignored, as the specification asks.
    Unknown { kind: u16 },
}

/// What is wrong with the bytes received.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// A control frame of another protocol version.
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    /// A frame too short for its type, or a header block that does not parse.
    #[error("malformed SPDY frame: {0}")]
    Malformed(&'static str),
    /// A header block that does not decompress.
    #[error("SPDY header block does not decompress: {0}")]
    Compression(String),
    /// A frame too large to send.
    #[error("SPDY frame of {0} bytes is too large")]
    TooLarge(usize),
    /// Reading or writing the connection failed.
    #[error("SPDY connection I/O failed")]
    Io(#[from] std::io::Error),
}

/// The header compression contexts of one connection: one to compress what is sent, one to
/// decompress what is received.
pub(crate) struct HeaderCodec {
    compress: Compress,
    decompress: Decompress,
}

impl std::fmt::Debug for HeaderCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderCodec").finish_non_exhaustive()
    }
}

impl Default for HeaderCodec {
    fn default() -> Self {
        let mut compress = Compress::new(Compression::default(), true);
        // The zlib stream of each direction starts with the dictionary.
        compress
            .set_dictionary(DICTIONARY)
            .expect("a fresh zlib stream takes a dictionary");
        Self {
            compress,
            decompress: Decompress::new(true),
        }
    }
}

impl HeaderCodec {
    fn encode_block(&mut self, headers: &Headers, dst: &mut BytesMut) -> Result<(), FrameError> {
        let mut plain = BytesMut::new();
        // Values of one name travel together, separated by NUL.
        let mut grouped: Vec<(String, Vec<&str>)> = Vec::new();
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            match grouped.iter_mut().find(|(n, _)| *n == name) {
                Some((_, values)) => values.push(value),
                None => grouped.push((name, vec![value])),
            }
        }
        plain.put_u32(
            u32::try_from(grouped.len()).map_err(|_| FrameError::TooLarge(grouped.len()))?,
        );
        for (name, values) in &grouped {
            let value = values.join("\0");
            for part in [name.as_bytes(), value.as_bytes()] {
                plain.put_u32(
                    u32::try_from(part.len()).map_err(|_| FrameError::TooLarge(part.len()))?,
                );
                plain.put_slice(part);
            }
        }
        let mut input: &[u8] = &plain;
        loop {
            let mut out = Vec::with_capacity(input.len() + 64);
            let before = self.compress.total_in();
            self.compress
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .map_err(|e| FrameError::Compression(e.to_string()))?;
            let consumed =
                usize::try_from(self.compress.total_in() - before).unwrap_or(input.len());
            input = &input[consumed..];
            let full = out.len() == out.capacity();
            dst.put_slice(&out);
            // A sync flush is complete once the output buffer was not filled.
            if input.is_empty() && !full {
                return Ok(());
            }
        }
    }

    fn decode_block(&mut self, mut block: &[u8]) -> Result<Headers, FrameError> {
        let mut plain: Vec<u8> = Vec::new();
        loop {
            if plain.capacity() - plain.len() < 1024 {
                if plain.len() >= MAX_HEADER_BLOCK {
                    return Err(FrameError::Malformed("header block too large"));
                }
                plain.reserve(4096.max(plain.len()));
            }
            let (in_before, out_before) = (self.decompress.total_in(), plain.len());
            match self
                .decompress
                .decompress_vec(block, &mut plain, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => {
                    return Err(FrameError::Compression("the zlib stream ended".to_owned()));
                }
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.decompress
                        .set_dictionary(DICTIONARY)
                        .map_err(|e| FrameError::Compression(e.to_string()))?;
                }
                Err(e) => return Err(FrameError::Compression(e.to_string())),
            }
            let consumed =
                usize::try_from(self.decompress.total_in() - in_before).unwrap_or(block.len());
            block = &block[consumed.min(block.len())..];
            let room_left = plain.len() < plain.capacity();
            if block.is_empty() && room_left {
                break;
            }
            if consumed == 0 && plain.len() == out_before && room_left {
                return Err(FrameError::Compression(
                    "the header block is truncated".to_owned(),
                ));
            }
        }
        parse_block(&plain)
    }
}

fn parse_block(mut plain: &[u8]) -> Result<Headers, FrameError> {
    fn take<'a>(plain: &mut &'a [u8]) -> Result<&'a [u8], FrameError> {
        if plain.remaining() < 4 {
            return Err(FrameError::Malformed("header length missing"));
        }
        let len = plain.get_u32() as usize;
        if plain.remaining() < len {
            return Err(FrameError::Malformed("header shorter than its length"));
        }
        let (value, rest) = plain.split_at(len);
        *plain = rest;
        Ok(value)
    }
    if plain.remaining() < 4 {
        return Err(FrameError::Malformed("header count missing"));
    }
    let count = plain.get_u32();
    let mut headers = Headers::new();
    for _ in 0..count {
        let name = take(&mut plain)?;
        let value = take(&mut plain)?;
        let name = std::str::from_utf8(name)
            .map_err(|_| FrameError::Malformed("header name is not UTF-8"))?
            .to_ascii_lowercase();
        let value = String::from_utf8_lossy(value);
        for part in value.split('\0') {
            headers.push((name.clone(), part.to_owned()));
        }
    }
    Ok(headers)
}

/// The first value of `name` in `headers`.
pub(crate) fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads and writes [`Frame`]s on a connection (a [`tokio_util::codec`] codec).
#[derive(Debug, Default)]
pub(crate) struct FrameCodec {
    headers: HeaderCodec,
}

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if src.len() < 8 {
            return Ok(None);
        }
        let length = (usize::from(src[5]) << 16) | (usize::from(src[6]) << 8) | usize::from(src[7]);
        if src.len() < 8 + length {
            src.reserve(8 + length - src.len());
            return Ok(None);
        }
        let head = src.split_to(8);
        let mut payload = src.split_to(length).freeze();
        let flags = head[4];
        if head[0] & 0x80 == 0 {
            let stream_id =
                u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & STREAM_ID_MASK;
            return Ok(Some(Frame::Data {
                stream_id,
                fin: flags & FLAG_FIN != 0,
                data: payload,
            }));
        }
        let version = u16::from_be_bytes([head[0], head[1]]) & 0x7fff;
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let need = |payload: &Bytes, n: usize| {
            if payload.len() < n {
                Err(FrameError::Malformed("control frame too short"))
            } else {
                Ok(())
            }
        };
        let fin = flags & FLAG_FIN != 0;
        let frame = match kind {
            TYPE_SYN_STREAM => {
                need(&payload, 10)?;
                let stream_id = payload.get_u32() & STREAM_ID_MASK;
                let associated_to = payload.get_u32() & STREAM_ID_MASK;
                let priority = payload.get_u8() >> 5;
                payload.advance(1);
                Frame::SynStream {
                    stream_id,
                    associated_to,
                    priority,
                    fin,
                    unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                    headers: self.headers.decode_block(&payload)?,
                }
            }
            TYPE_SYN_REPLY | TYPE_HEADERS => {
                need(&payload, 4)?;
                let stream_id = payload.get_u32() & STREAM_ID_MASK;
                let headers = self.headers.decode_block(&payload)?;
                if kind == TYPE_SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        fin,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        fin,
                        headers,
                    }
                }
            }
            TYPE_RST_STREAM => {
                need(&payload, 8)?;
                Frame::RstStream {
                    stream_id: payload.get_u32() & STREAM_ID_MASK,
                    status: payload.get_u32(),
                }
            }
            TYPE_SETTINGS => {
                need(&payload, 4)?;
                let count = payload.get_u32() as usize;
                need(&payload, count.saturating_mul(8))?;
                let entries = (0..count)
                    .map(|_| {
                        let word = payload.get_u32();
                        let flags = u8::try_from(word >> 24).unwrap_or_default();
                        (flags, word & 0x00ff_ffff, payload.get_u32())
                    })
                    .collect();
                Frame::Settings {
                    clear: fin,
                    entries,
                }
            }
            TYPE_PING => {
                need(&payload, 4)?;
                Frame::Ping {
                    id: payload.get_u32(),
                }
            }
            TYPE_GOAWAY => {
                need(&payload, 4)?;
                let last_good_stream_id = payload.get_u32() & STREAM_ID_MASK;
                // SPDY/2 peers omit the status.
                let status = if payload.len() >= 4 {
                    payload.get_u32()
                } else {
                    0
                };
                Frame::GoAway {
                    last_good_stream_id,
                    status,
                }
            }
            TYPE_WINDOW_UPDATE => {
                need(&payload, 8)?;
                Frame::WindowUpdate {
                    stream_id: payload.get_u32() & STREAM_ID_MASK,
                    delta: payload.get_u32() & STREAM_ID_MASK,
                }
            }
            kind => Frame::Unknown { kind },
        };
        Ok(Some(frame))
    }
}

fn control(dst: &mut BytesMut, kind: u16, flags: u8, payload: &[u8]) -> Result<(), FrameError> {
    if payload.len() > MAX_PAYLOAD {
        return Err(FrameError::TooLarge(payload.len()));
    }
    dst.put_u16(0x8000 | VERSION);
    dst.put_u16(kind);
    dst.put_u8(flags);
    dst.put_uint(payload.len() as u64, 3);
    dst.put_slice(payload);
    Ok(())
}

fn fin_flag(fin: bool) -> u8 {
    if fin { FLAG_FIN } else { 0 }
}

impl Encoder<Frame> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        let mut payload = BytesMut::new();
        match frame {
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                if data.len() > MAX_PAYLOAD {
                    return Err(FrameError::TooLarge(data.len()));
                }
                dst.put_u32(stream_id & STREAM_ID_MASK);
                dst.put_u8(fin_flag(fin));
                dst.put_uint(data.len() as u64, 3);
                dst.put_slice(&data);
                Ok(())
            }
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                fin,
                unidirectional,
                headers,
            } => {
                payload.put_u32(stream_id & STREAM_ID_MASK);
                payload.put_u32(associated_to & STREAM_ID_MASK);
                payload.put_u8((priority & 0x7) << 5);
                payload.put_u8(0);
                self.headers.encode_block(&headers, &mut payload)?;
                let flags = fin_flag(fin)
                    | if unidirectional {
                        FLAG_UNIDIRECTIONAL
                    } else {
                        0
                    };
                control(dst, TYPE_SYN_STREAM, flags, &payload)
            }
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            } => {
                payload.put_u32(stream_id & STREAM_ID_MASK);
                self.headers.encode_block(&headers, &mut payload)?;
                control(dst, TYPE_SYN_REPLY, fin_flag(fin), &payload)
            }
            Frame::Headers {
                stream_id,
                fin,
                headers,
            } => {
                payload.put_u32(stream_id & STREAM_ID_MASK);
                self.headers.encode_block(&headers, &mut payload)?;
                control(dst, TYPE_HEADERS, fin_flag(fin), &payload)
            }
            Frame::RstStream { stream_id, status } => {
                payload.put_u32(stream_id & STREAM_ID_MASK);
                payload.put_u32(status);
                control(dst, TYPE_RST_STREAM, 0, &payload)
            }
            Frame::Settings { clear, entries } => {
                payload.put_u32(
                    u32::try_from(entries.len())
                        .map_err(|_| FrameError::TooLarge(entries.len()))?,
                );
                for (flags, id, value) in entries {
                    payload.put_u32((u32::from(flags) << 24) | (id & 0x00ff_ffff));
                    payload.put_u32(value);
                }
                control(dst, TYPE_SETTINGS, fin_flag(clear), &payload)
            }
            Frame::Ping { id } => control(dst, TYPE_PING, 0, &id.to_be_bytes()),
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                payload.put_u32(last_good_stream_id & STREAM_ID_MASK);
                payload.put_u32(status);
                control(dst, TYPE_GOAWAY, 0, &payload)
            }
            Frame::WindowUpdate { stream_id, delta } => {
                payload.put_u32(stream_id & STREAM_ID_MASK);
                payload.put_u32(delta & STREAM_ID_MASK);
                control(dst, TYPE_WINDOW_UPDATE, 0, &payload)
            }
            Frame::Unknown { kind } => control(dst, kind, 0, &[]),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn headers() -> impl Strategy<Value = Headers> {
        proptest::collection::vec(("[a-z][a-z0-9-]{0,15}", "[ -~]{0,40}"), 0..6).prop_map(|pairs| {
            // One entry per name, as a block carries them after grouping.
            let mut seen = std::collections::HashSet::new();
            pairs
                .into_iter()
                .filter(|(name, _)| seen.insert(name.clone()))
                .collect()
        })
    }

    fn stream_id() -> impl Strategy<Value = u32> {
        0..=STREAM_ID_MASK
    }

    fn frame() -> impl Strategy<Value = Frame> {
        prop_oneof![
            (
                stream_id(),
                any::<bool>(),
                proptest::collection::vec(any::<u8>(), 0..300)
            )
                .prop_map(|(stream_id, fin, data)| Frame::Data {
                    stream_id,
                    fin,
                    data: data.into()
                }),
            (
                stream_id(),
                stream_id(),
                0u8..8,
                any::<bool>(),
                any::<bool>(),
                headers()
            )
                .prop_map(
                    |(stream_id, associated_to, priority, fin, unidirectional, headers)| {
                        Frame::SynStream {
                            stream_id,
                            associated_to,
                            priority,
                            fin,
                            unidirectional,
                            headers,
                        }
                    }
                ),
            (stream_id(), any::<bool>(), headers()).prop_map(|(stream_id, fin, headers)| {
                Frame::SynReply {
                    stream_id,
                    fin,
                    headers,
                }
            }),
            (stream_id(), any::<bool>(), headers()).prop_map(|(stream_id, fin, headers)| {
                Frame::Headers {
                    stream_id,
                    fin,
                    headers,
                }
            }),
            (stream_id(), any::<u32>())
                .prop_map(|(stream_id, status)| Frame::RstStream { stream_id, status }),
            (
                any::<bool>(),
                proptest::collection::vec((any::<u8>(), 0u32..0x00ff_ffff, any::<u32>()), 0..4)
            )
                .prop_map(|(clear, entries)| Frame::Settings { clear, entries }),
            any::<u32>().prop_map(|id| Frame::Ping { id }),
            (stream_id(), any::<u32>()).prop_map(|(last_good_stream_id, status)| {
                Frame::GoAway {
                    last_good_stream_id,
                    status,
                }
            }),
            (stream_id(), stream_id())
                .prop_map(|(stream_id, delta)| Frame::WindowUpdate { stream_id, delta }),
        ]
    }

    proptest! {
        /// Frames written by one side read back the same on the other, in any order and split
        /// anywhere, with the header compression carried across frames.
        #[test]
        fn frames_survive_the_wire(frames in proptest::collection::vec(frame(), 1..12), split in 1usize..64) {
            let mut writer = FrameCodec::default();
            let mut wire = BytesMut::new();
            for frame in frames.clone() {
                writer.encode(frame, &mut wire).unwrap();
            }
            let mut reader = FrameCodec::default();
            let mut buffer = BytesMut::new();
            let mut read = Vec::new();
            for chunk in wire.chunks(split) {
                buffer.extend_from_slice(chunk);
                while let Some(frame) = reader.decode(&mut buffer).unwrap() {
                    read.push(frame);
                }
            }
            prop_assert_eq!(read, frames);
            prop_assert!(buffer.is_empty());
        }

        /// Whatever arrives, reading it ends in frames or an error, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut reader = FrameCodec::default();
            let mut buffer = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = reader.decode(&mut buffer) {}
        }
    }

    #[test]
    fn several_values_of_a_name_travel_together() {
        let mut writer = FrameCodec::default();
        let mut wire = BytesMut::new();
        let headers = vec![
            ("streamtype".to_owned(), "data".to_owned()),
            ("Port".to_owned(), "8080".to_owned()),
            ("port".to_owned(), "9090".to_owned()),
        ];
        writer
            .encode(
                Frame::SynReply {
                    stream_id: 1,
                    fin: false,
                    headers,
                },
                &mut wire,
            )
            .unwrap();
        let Some(Frame::SynReply { headers, .. }) =
            FrameCodec::default().decode(&mut wire).unwrap()
        else {
            panic!("a SYN_REPLY was written");
        };
        assert_eq!(header(&headers, "streamtype"), Some("data"));
        assert_eq!(
            headers
                .iter()
                .filter(|(n, _)| n == "port")
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>(),
            ["8080", "9090"]
        );
    }

    #[test]
    fn a_block_compressed_by_zlib_with_the_dictionary_reads() {
        // What a Go peer sends: zlib with the specification's dictionary, sync-flushed.
        let mut compress = Compress::new(Compression::best(), true);
        compress.set_dictionary(DICTIONARY).unwrap();
        let mut plain = BytesMut::new();
        plain.put_u32(1);
        plain.put_u32(10);
        plain.put_slice(b"streamtype");
        plain.put_u32(5);
        plain.put_slice(b"error");
        let mut block = Vec::with_capacity(256);
        compress
            .compress_vec(&plain, &mut block, FlushCompress::Sync)
            .unwrap();
        let mut payload = BytesMut::new();
        payload.put_u32(3);
        payload.put_slice(&block);
        let mut wire = BytesMut::new();
        control(&mut wire, TYPE_HEADERS, FLAG_FIN, &payload).unwrap();
        let frame = FrameCodec::default().decode(&mut wire).unwrap().unwrap();
        assert_eq!(
            frame,
            Frame::Headers {
                stream_id: 3,
                fin: true,
                headers: vec![("streamtype".to_owned(), "error".to_owned())]
            }
        );
    }
}
