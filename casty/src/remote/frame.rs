//! Frames: what travels on a connection (R3).
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of CBOR, one [`Frame`] value.
//! The length is checked against the connection's limit *before* the body is buffered, so an
//! oversize frame costs no memory; a body that is not exactly one well-formed frame is malformed.
//! Either error closes that connection only. [`FrameDecoder`] is incremental: feed it whatever the
//! socket returned and take whole frames out. It never panics, whatever the input.

use serde::{Deserialize, Serialize};

/// The default maximum frame size: 256 KiB.
pub const DEFAULT_MAX_FRAME: usize = 256 * 1024;

/// The smallest frame limit a node may announce.
pub(crate) const MIN_MAX_FRAME: usize = 4 * 1024;

/// The frame limit until a connection's handshake is done: `Hello`, `Welcome`, `Confirm` and
/// `Refuse` are small, and a peer that has not proved anything yet may not make this node buffer
/// more.
///
/// # Examples
///
/// ```
/// assert_eq!(casty::remote::HANDSHAKE_MAX_FRAME, 4096);
/// ```
pub const HANDSHAKE_MAX_FRAME: usize = 4 * 1024;

/// The most recipients one connection may name for compact envelopes (`Define`). A sender names
/// no more and sends further recipients with their full path; a receiver treats a `Define` beyond
/// it as malformed and closes that connection.
///
/// # Examples
///
/// ```
/// assert_eq!(casty::remote::MAX_COMPACT_NAMES, 16_384);
/// ```
pub const MAX_COMPACT_NAMES: usize = 16 * 1024;

/// The most bytes of recipient paths one connection may name for compact envelopes, all names
/// together; enforced like [`MAX_COMPACT_NAMES`].
///
/// # Examples
///
/// ```
/// assert_eq!(casty::remote::MAX_COMPACT_NAME_BYTES, 1024 * 1024);
/// ```
pub const MAX_COMPACT_NAME_BYTES: usize = 1024 * 1024;

/// How far past the end of a connection's name table a `Define` may name a recipient. Names are
/// numbered densely, so only lost frames (fault injection) leave gaps; a larger jump is malformed,
/// and so one small frame cannot make the receiver grow its table by much.
pub(crate) const MAX_DEFINE_GAP: usize = 1024;

const HEADER: usize = 4;

/// An actor on the wire: its path under the node and its incarnation uid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct WirePath {
    pub(crate) path: String,
    pub(crate) uid: u64,
}

/// The first frame of a connection, from the side that connected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Hello {
    pub(crate) version: u32,
    pub(crate) system: String,
    /// The connecting node's own address (`casty://system@host:port`).
    pub(crate) address: String,
    pub(crate) uid: u64,
    pub(crate) max_frame: u32,
    #[serde(with = "serde_bytes")]
    pub(crate) nonce: Vec<u8>,
}

/// The accepting side's answer to a [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Welcome {
    pub(crate) version: u32,
    pub(crate) system: String,
    pub(crate) address: String,
    pub(crate) uid: u64,
    pub(crate) max_frame: u32,
    #[serde(with = "serde_bytes")]
    pub(crate) nonce: Vec<u8>,
    /// HMAC of the challenge, when a secret is configured.
    pub(crate) proof: Option<serde_bytes::ByteBuf>,
}

/// One message for one actor. On the wire it is a CBOR array, `[path, uid, manifest, h'..']`,
/// short to write and quick to read in place (see [`Decoded::Envelope`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "EnvelopeWire", from = "EnvelopeWire")]
pub(crate) struct Envelope {
    pub(crate) recipient: WirePath,
    pub(crate) manifest: String,
    pub(crate) payload: Vec<u8>,
}

/// [`Envelope`]'s wire shape.
#[derive(Serialize, Deserialize)]
struct EnvelopeWire(String, u64, String, #[serde(with = "serde_bytes")] Vec<u8>);

impl From<Envelope> for EnvelopeWire {
    fn from(e: Envelope) -> Self {
        EnvelopeWire(e.recipient.path, e.recipient.uid, e.manifest, e.payload)
    }
}

impl From<EnvelopeWire> for Envelope {
    fn from(EnvelopeWire(path, uid, manifest, payload): EnvelopeWire) -> Self {
        Envelope {
            recipient: WirePath { path, uid },
            manifest,
            payload,
        }
    }
}

/// Everything a connection carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Frame {
    Hello(Hello),
    Welcome(Welcome),
    /// The connecting side's proof for the accepting side's challenge.
    Confirm {
        proof: Option<serde_bytes::ByteBuf>,
    },
    /// The handshake was refused; the connection closes after this frame.
    Refuse {
        reason: String,
    },
    Envelope(Envelope),
    Watch {
        target: WirePath,
        watcher: WirePath,
    },
    Unwatch {
        target: WirePath,
        watcher: WirePath,
    },
    Terminated {
        path: WirePath,
    },
    Heartbeat,
    /// Names a recipient for [`Frame::Compact`] on this connection (Artery-style compression:
    /// a path crosses the wire once per connection, then only its number does).
    Define {
        id: u32,
        path: String,
        manifest: String,
    },
    /// An envelope whose recipient was defined earlier on this connection.
    Compact(CompactEnvelope),
    /// The sender is shutting down: whatever it watched or was asked is over, at once.
    Bye,
}

/// `(recipient id, uid, payload)`, a CBOR array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CompactEnvelope(
    pub(crate) u32,
    pub(crate) u64,
    #[serde(with = "serde_bytes")] pub(crate) Vec<u8>,
);

/// Why bytes could not become a frame, or a frame could not become bytes.
///
/// # Examples
///
/// ```
/// use casty::remote::FrameError;
/// let e = FrameError::Oversize { size: 300_000, max: 262_144 };
/// assert_eq!(e.to_string(), "frame of 300000 bytes exceeds the limit of 262144");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame is larger than the connection's limit.
    #[error("frame of {size} bytes exceeds the limit of {max}")]
    Oversize {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not one well-formed frame.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A frame could not be serialized.
    #[error("cannot serialize a frame: {0}")]
    Encode(String),
}

/// An outgoing envelope that borrows its parts: encodes exactly like
/// `Frame::Envelope(Envelope { .. })` without building one (no allocation per message).
#[derive(Serialize)]
pub(crate) enum FrameRef<'a> {
    Envelope(EnvelopeRef<'a>),
    Compact(CompactRef<'a>),
}

/// Encodes like [`CompactEnvelope`], borrowing the payload.
#[derive(Serialize)]
pub(crate) struct CompactRef<'a>(
    pub(crate) u32,
    pub(crate) u64,
    #[serde(with = "serde_bytes")] pub(crate) &'a [u8],
);

/// Encodes like [`Envelope`]: `(recipient path, recipient uid, manifest, payload)`.
#[derive(Serialize)]
pub(crate) struct EnvelopeRef<'a>(
    pub(crate) &'a str,
    pub(crate) u64,
    pub(crate) &'a str,
    #[serde(with = "serde_bytes")] pub(crate) &'a [u8],
);

/// Appends `frame`, length-prefixed, to `out`. Nothing is appended on error.
pub(crate) fn encode<T: Serialize + ?Sized>(
    frame: &T,
    max: usize,
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    if let Err(e) = ciborium::into_writer(frame, &mut *out) {
        out.truncate(start);
        return Err(FrameError::Encode(e.to_string()));
    }
    let size = out.len() - start - HEADER;
    if size > max {
        out.truncate(start);
        return Err(FrameError::Oversize { size, max });
    }
    // `size <= max <= u32::MAX` is checked by the limit; a limit above 4 GiB is clamped at open.
    let len = u32::try_from(size).map_err(|_| FrameError::Oversize { size, max })?;
    out[start..start + HEADER].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Turns a byte stream into frames.
#[derive(Debug)]
pub(crate) struct FrameDecoder {
    max: usize,
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed.
    pos: usize,
    /// Set after an error: the stream cannot be resynchronized.
    failed: bool,
}

impl FrameDecoder {
    /// A decoder refusing frames over `max` bytes. It holds only the bytes pushed into it.
    pub(crate) fn new(max: usize) -> Self {
        FrameDecoder {
            max,
            buf: Vec::new(),
            pos: 0,
            failed: false,
        }
    }

    /// Changes the limit for the frames not yet taken (a connection's handshake is done).
    pub(crate) fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// Adds bytes read from the connection.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > self.buf.capacity() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Takes the next whole frame, if one is buffered.
    ///
    /// Errors are final: after one, the decoder returns the same error forever and the connection
    /// must be closed.
    pub(crate) fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        Ok(self.next()?.map(|d| match d {
            Decoded::Compact { id, uid, payload } => {
                Frame::Compact(CompactEnvelope(id, uid, payload.into_owned()))
            }
            Decoded::Envelope {
                path,
                uid,
                manifest,
                payload,
            } => Frame::Envelope(Envelope {
                recipient: WirePath {
                    path: path.to_string(),
                    uid,
                },
                manifest: manifest.to_string(),
                payload: payload.to_vec(),
            }),
            Decoded::Frame(f) => f,
        }))
    }

    /// Like [`FrameDecoder::next_frame`], but a compact envelope borrows its payload from the
    /// buffer instead of copying it (the hot path of remote delivery).
    pub(crate) fn next(&mut self) -> Result<Option<Decoded<'_>>, FrameError> {
        if self.failed {
            return Err(FrameError::Malformed("the stream already failed".into()));
        }
        let avail = &self.buf[self.pos..];
        let Some(header) = avail.get(..HEADER) else {
            return Ok(None);
        };
        let size = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if size > self.max {
            self.failed = true;
            return Err(FrameError::Oversize {
                size,
                max: self.max,
            });
        }
        if size == 0 {
            self.failed = true;
            return Err(FrameError::Malformed("empty frame".into()));
        }
        if avail.len() < HEADER + size {
            return Ok(None);
        }
        let start = self.pos + HEADER;
        self.pos += HEADER + size;
        let body = &self.buf[start..start + size];
        if let Some((id, uid, payload)) = parse_compact(body) {
            return Ok(Some(Decoded::Compact {
                id,
                uid,
                payload: std::borrow::Cow::Borrowed(payload),
            }));
        }
        if let Some((path, uid, manifest, payload)) = parse_envelope(body) {
            return Ok(Some(Decoded::Envelope {
                path,
                uid,
                manifest,
                payload,
            }));
        }
        let mut reader = body;
        match ciborium::from_reader::<Frame, _>(&mut reader) {
            Ok(Frame::Compact(CompactEnvelope(id, uid, payload))) if reader.is_empty() => {
                Ok(Some(Decoded::Compact {
                    id,
                    uid,
                    payload: std::borrow::Cow::Owned(payload),
                }))
            }
            Ok(f) if reader.is_empty() => Ok(Some(Decoded::Frame(f))),
            Ok(_) => {
                self.failed = true;
                Err(FrameError::Malformed(format!(
                    "{} bytes after the frame's value",
                    reader.len()
                )))
            }
            Err(e) => {
                self.failed = true;
                Err(FrameError::Malformed(e.to_string()))
            }
        }
    }
}

/// A decoded frame; see [`FrameDecoder::next`].
#[derive(Debug)]
pub(crate) enum Decoded<'a> {
    /// Every compact envelope, borrowed when it has the canonical shape, owned otherwise.
    Compact {
        id: u32,
        uid: u64,
        payload: std::borrow::Cow<'a, [u8]>,
    },
    /// An envelope in its canonical shape, read in place.
    Envelope {
        path: &'a str,
        uid: u64,
        manifest: &'a str,
        payload: &'a [u8],
    },
    /// Any other frame (including an envelope in another valid encoding).
    Frame(Frame),
}

/// Reads a CBOR head (major type and argument) at `b[*i]`.
fn cbor_head(b: &[u8], i: &mut usize) -> Option<(u8, u64)> {
    let first = *b.get(*i)?;
    *i += 1;
    let major = first >> 5;
    let info = first & 0x1f;
    let arg = match info {
        0..=23 => u64::from(info),
        24..=27 => {
            let n = 1usize << (info - 24);
            let bytes = b.get(*i..*i + n)?;
            *i += n;
            bytes.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x))
        }
        _ => return None,
    };
    Some((major, arg))
}

/// The shape serde and ciborium give `Frame::Compact(CompactEnvelope(id, uid, bytes))`:
/// `{"Compact": [id, uid, h'..']}`. Anything else (or any doubt) returns `None`, and the general
/// decoder takes over.
fn parse_compact(body: &[u8]) -> Option<(u32, u64, &[u8])> {
    const TAG: &[u8] = b"\xa1\x67Compact\x83";
    let rest = body.strip_prefix(TAG)?;
    let mut i = 0;
    let (m, id) = cbor_head(rest, &mut i)?;
    if m != 0 {
        return None;
    }
    let (m, uid) = cbor_head(rest, &mut i)?;
    if m != 0 {
        return None;
    }
    let (m, len) = cbor_head(rest, &mut i)?;
    if m != 2 || rest.len().checked_sub(i)? as u64 != len {
        return None;
    }
    Some((u32::try_from(id).ok()?, uid, &rest[i..]))
}

/// The shape serde and ciborium give `Frame::Envelope(..)`:
/// `{"Envelope": ["path", uid, "manifest", h'..']}`, with definite lengths. Anything else (or any
/// doubt, such as text that is not UTF-8) returns `None`, and the general decoder takes over.
fn parse_envelope(body: &[u8]) -> Option<(&str, u64, &str, &[u8])> {
    const TAG: &[u8] = b"\xa1\x68Envelope\x84";
    let rest = body.strip_prefix(TAG)?;
    let mut i = 0;
    let text = |i: &mut usize| -> Option<&str> {
        let (m, len) = cbor_head(rest, i)?;
        if m != 3 {
            return None;
        }
        let end = i.checked_add(usize::try_from(len).ok()?)?;
        let t = std::str::from_utf8(rest.get(*i..end)?).ok()?;
        *i = end;
        Some(t)
    };
    let path = text(&mut i)?;
    let (m, uid) = cbor_head(rest, &mut i)?;
    if m != 0 {
        return None;
    }
    let manifest = text(&mut i)?;
    let (m, len) = cbor_head(rest, &mut i)?;
    if m != 2 || rest.len().checked_sub(i)? as u64 != len {
        return None;
    }
    Some((path, uid, manifest, &rest[i..]))
}

/// Whether `frame` (length prefix included) is a [`Frame::Define`].
pub(crate) fn is_define(frame: &[u8]) -> bool {
    // `{"Define": {...}}`: a one-entry map whose key is the text "Define".
    frame.get(4..12) == Some(&[0xa1, 0x66, b'D', b'e', b'f', b'i', b'n', b'e'][..])
}

/// How many [`Frame::Define`]s a run of encoded frames holds.
pub(crate) fn count_defines(frames: &[u8]) -> usize {
    each_frame(frames).filter(|f| is_define(f)).count()
}

/// The recipient (path and uid) of the first message in a run of encoded frames, if it can be
/// read: an envelope names it, a compact envelope's number is looked up with `path_of` (the
/// association's definitions, by number).
pub(crate) fn first_recipient(
    frames: &[u8],
    mut path_of: impl FnMut(u32) -> Option<String>,
) -> Option<(String, u64)> {
    each_frame(frames).filter(|f| !is_define(f)).find_map(|f| {
        let body = f.get(HEADER..)?;
        if let Some((path, uid, _, _)) = parse_envelope(body) {
            return Some((path.to_string(), uid));
        }
        let (id, uid, _) = parse_compact(body)?;
        path_of(id).map(|p| (p, uid))
    })
}

/// Each frame (length prefix included) of a run of encoded frames, such as an association's
/// queue; a truncated tail is left out. This and the decoder are the only readers of the length
/// prefix.
pub(crate) fn each_frame(mut frames: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let h = frames.get(..HEADER)?;
        let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let end = HEADER.checked_add(len)?;
        let f = frames.get(..end)?;
        frames = &frames[end..];
        Some(f)
    })
}

/// The size of the body of `frame`, a whole frame as [`each_frame`] yields it: what a frame limit
/// bounds.
pub(crate) fn body_len(frame: &[u8]) -> usize {
    frame.len().saturating_sub(HEADER)
}

/// Decodes `bytes` as a frame stream with limit `max`, returning how many frames were decoded
/// before the first error or the end. For fuzzing the decoder from outside the crate (`fuzz/`,
/// with the `fuzzing` feature).
#[doc(hidden)]
#[cfg(any(test, feature = "fuzzing"))]
#[cfg_attr(not(feature = "fuzzing"), allow(unreachable_pub))]
pub fn fuzz_decode(bytes: &[u8], max: usize, chunk: usize) -> (usize, Option<FrameError>) {
    let mut d = FrameDecoder::new(max);
    let mut n = 0;
    for piece in bytes.chunks(chunk.max(1)) {
        d.push(piece);
        loop {
            match d.next_frame() {
                Ok(Some(_)) => n += 1,
                Ok(None) => break,
                Err(e) => return (n, Some(e)),
            }
        }
    }
    (n, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn envelope(n: u64, payload: Vec<u8>) -> Frame {
        Frame::Envelope(Envelope {
            recipient: WirePath {
                path: format!("/user/a{n}"),
                uid: n,
            },
            manifest: "bank.Deposit".into(),
            payload,
        })
    }

    #[test]
    fn round_trips_in_any_chunking() {
        let frames = vec![
            envelope(1, vec![1, 2, 3]),
            Frame::Heartbeat,
            Frame::Refuse {
                reason: "wrong cluster".into(),
            },
            envelope(2, vec![0; 1000]),
        ];
        let mut bytes = Vec::new();
        for f in &frames {
            encode(f, DEFAULT_MAX_FRAME, &mut bytes).unwrap();
        }
        for chunk in [1, 3, 7, 64, bytes.len()] {
            let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
            let mut got = Vec::new();
            for piece in bytes.chunks(chunk) {
                d.push(piece);
                while let Some(f) = d.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(got, frames, "chunk {chunk}");
        }
    }

    #[test]
    fn runs_of_frames_are_walked_whole_and_their_first_recipient_is_found() {
        let define = Frame::Define {
            id: 3,
            path: "/user/named".into(),
            manifest: "m".into(),
        };
        let mut run = Vec::new();
        encode(&define, DEFAULT_MAX_FRAME, &mut run).unwrap();
        let after_define = run.len();
        encode(
            &FrameRef::Compact(CompactRef(3, 9, &[1, 2])),
            DEFAULT_MAX_FRAME,
            &mut run,
        )
        .unwrap();
        encode(&envelope(4, vec![0; 300]), DEFAULT_MAX_FRAME, &mut run).unwrap();
        let whole = run.len();
        // A truncated tail (a header promising more than is there) is left out.
        run.extend_from_slice(&100u32.to_be_bytes());
        run.extend_from_slice(&[0; 10]);
        let frames: Vec<&[u8]> = each_frame(&run).collect();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames.iter().map(|f| f.len()).sum::<usize>(), whole);
        assert_eq!(frames[0], &run[..after_define]);
        assert_eq!(body_len(frames[0]), after_define - HEADER);
        assert_eq!(
            frames.iter().map(|f| is_define(f)).collect::<Vec<_>>(),
            [true, false, false]
        );
        assert_eq!(count_defines(&run), 1);
        // The compact envelope's number is looked up; the definition is not a message.
        let mut asked = Vec::new();
        let first = first_recipient(&run, |id| {
            asked.push(id);
            (id == 3).then(|| "/user/named".to_string())
        });
        assert_eq!(first, Some(("/user/named".to_string(), 9)));
        assert_eq!(asked, [3]);
        // An unknown number is skipped for the next message that names its recipient.
        let first = first_recipient(&run, |_| None);
        assert_eq!(first, Some(("/user/a4".to_string(), 4)));
        assert_eq!(first_recipient(&run[..after_define], |_| None), None);
        assert_eq!(each_frame(&[0, 0, 0]).count(), 0);
    }

    #[test]
    fn borrowed_envelopes_encode_like_owned_ones() {
        let owned = Frame::Envelope(Envelope {
            recipient: WirePath {
                path: "/user/a".into(),
                uid: 7,
            },
            manifest: "m".into(),
            payload: vec![1, 2, 3],
        });
        let borrowed = FrameRef::Envelope(EnvelopeRef("/user/a", 7, "m", &[1, 2, 3]));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        encode(&owned, DEFAULT_MAX_FRAME, &mut a).unwrap();
        encode(&borrowed, DEFAULT_MAX_FRAME, &mut b).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn envelopes_are_read_in_place_exactly() {
        for (path, uid, manifest, len) in [
            ("", 0u64, "", 0usize),
            ("/user/a", 23, "u64", 24),
            ("/_temp/ask-1234567890", u64::MAX, "bench::Echo", 300),
            ("/é/ü", 1 << 40, "m", 70_000),
        ] {
            let payload = vec![7u8; len];
            let mut bytes = Vec::new();
            encode(
                &FrameRef::Envelope(EnvelopeRef(path, uid, manifest, &payload)),
                DEFAULT_MAX_FRAME,
                &mut bytes,
            )
            .unwrap();
            assert_eq!(
                parse_envelope(&bytes[4..]),
                Some((path, uid, manifest, payload.as_slice()))
            );
            let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
            d.push(&bytes);
            assert_eq!(
                d.next_frame().unwrap(),
                Some(Frame::Envelope(Envelope {
                    recipient: WirePath {
                        path: path.into(),
                        uid
                    },
                    manifest: manifest.into(),
                    payload: payload.clone(),
                }))
            );
        }
        // Not UTF-8, a short payload, a wrong type: left to the general decoder, which refuses.
        for bad in [
            &b"\xa1\x68Envelope\x84\x61\xff\x01\x61m\x40"[..],
            b"\xa1\x68Envelope\x84\x61a\x01\x61m\x43ab",
            b"\xa1\x68Envelope\x84\x01\x01\x61m\x40",
        ] {
            assert_eq!(parse_envelope(bad), None);
            let mut framed = (bad.len() as u32).to_be_bytes().to_vec();
            framed.extend_from_slice(bad);
            let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
            d.push(&framed);
            assert!(d.next_frame().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn compact_envelopes_take_the_fast_path_exactly() {
        for (id, uid, len) in [
            (0u32, 0u64, 0usize),
            (23, 24, 23),
            (300, u64::MAX, 300),
            (70_000, 1 << 40, 70_000),
        ] {
            let payload = vec![7u8; len];
            let mut bytes = Vec::new();
            encode(
                &FrameRef::Compact(CompactRef(id, uid, &payload)),
                DEFAULT_MAX_FRAME,
                &mut bytes,
            )
            .unwrap();
            assert_eq!(
                parse_compact(&bytes[4..]),
                Some((id, uid, payload.as_slice()))
            );
            let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
            d.push(&bytes);
            assert_eq!(
                d.next_frame().unwrap(),
                Some(Frame::Compact(CompactEnvelope(id, uid, payload.clone())))
            );
        }
        assert_eq!(
            parse_compact(b"\xa1\x67Compact\x83\x01\x02\x43ab"),
            None,
            "short payload"
        );
    }

    #[test]
    fn oversize_is_refused_both_ways() {
        let big = envelope(1, vec![7; 5000]);
        let mut out = vec![9];
        let e = encode(&big, 4096, &mut out).unwrap_err();
        assert!(matches!(e, FrameError::Oversize { max: 4096, .. }));
        assert_eq!(out, vec![9], "nothing appended on error");

        let mut bytes = Vec::new();
        encode(&big, DEFAULT_MAX_FRAME, &mut bytes).unwrap();
        let mut d = FrameDecoder::new(4096);
        // Only the header is needed to refuse it.
        d.push(&bytes[..4]);
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::Oversize { max: 4096, .. })
        ));
        assert!(d.next_frame().is_err(), "errors are final");
    }

    // A silent connection's decoder holds nothing, and one announcing a large frame holds only
    // the bytes that came: nothing is reserved for the frame before it arrives.
    #[test]
    fn the_decoder_holds_only_what_arrived() {
        let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
        assert_eq!(d.buf.capacity(), 0);
        d.push(&200_000u32.to_be_bytes());
        d.push(&[0; 100]);
        assert_eq!(d.next_frame(), Ok(None));
        assert!(d.buf.capacity() < 1024, "{}", d.buf.capacity());

        // The handshake's limit refuses it from its header alone; the full limit applies after.
        let mut d = FrameDecoder::new(HANDSHAKE_MAX_FRAME);
        d.push(&5_000u32.to_be_bytes());
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::Oversize {
                size: 5_000,
                max: HANDSHAKE_MAX_FRAME
            })
        ));
        let mut bytes = Vec::new();
        encode(&Frame::Heartbeat, HANDSHAKE_MAX_FRAME, &mut bytes).unwrap();
        encode(&envelope(1, vec![0; 5_000]), DEFAULT_MAX_FRAME, &mut bytes).unwrap();
        let mut d = FrameDecoder::new(HANDSHAKE_MAX_FRAME);
        d.push(&bytes);
        assert_eq!(d.next_frame(), Ok(Some(Frame::Heartbeat)));
        d.set_max(DEFAULT_MAX_FRAME);
        assert_eq!(d.next_frame(), Ok(Some(envelope(1, vec![0; 5_000]))));
    }

    #[test]
    fn garbage_and_trailing_bytes_are_malformed() {
        let mut d = FrameDecoder::new(1024);
        d.push(&[0, 0, 0, 3, 0xff, 0xff, 0xff]);
        assert!(matches!(d.next_frame(), Err(FrameError::Malformed(_))));

        let mut body = Vec::new();
        ciborium::into_writer(&Frame::Heartbeat, &mut body).unwrap();
        body.push(0);
        let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
        bytes.extend(body);
        let mut d = FrameDecoder::new(1024);
        d.push(&bytes);
        let e = d.next_frame().unwrap_err();
        assert!(e.to_string().contains("after the frame"), "{e}");

        let mut d = FrameDecoder::new(1024);
        d.push(&[0, 0, 0, 0]);
        assert!(matches!(d.next_frame(), Err(FrameError::Malformed(_))));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        // Random bytes, in random chunks, never panic the decoder (R3).
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048),
                                    chunk in 1usize..64, max in 0usize..4096) {
            let _ = fuzz_decode(&bytes, max, chunk);
        }

        // Valid frames with random bytes spliced in: the decoder stops with an error or decodes
        // frames, and never panics.
        #[test]
        fn corrupted_streams_never_panic(payloads in proptest::collection::vec(
                                             proptest::collection::vec(any::<u8>(), 0..64), 1..8),
                                         flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
                                         chunk in 1usize..32) {
            let mut bytes = Vec::new();
            for (i, p) in payloads.into_iter().enumerate() {
                encode(&envelope(i as u64, p), DEFAULT_MAX_FRAME, &mut bytes).unwrap();
            }
            for (at, b) in flips {
                if !bytes.is_empty() {
                    let i = at % bytes.len();
                    bytes[i] ^= b;
                }
            }
            let _ = fuzz_decode(&bytes, DEFAULT_MAX_FRAME, chunk);
        }

        // Any envelope survives the round trip.
        #[test]
        fn envelopes_round_trip(n in any::<u64>(), payload in proptest::collection::vec(any::<u8>(), 0..512)) {
            let f = envelope(n, payload);
            let mut bytes = Vec::new();
            encode(&f, DEFAULT_MAX_FRAME, &mut bytes).unwrap();
            let mut d = FrameDecoder::new(DEFAULT_MAX_FRAME);
            d.push(&bytes);
            prop_assert_eq!(d.next_frame().unwrap(), Some(f));
            prop_assert_eq!(d.next_frame().unwrap(), None);
        }
    }
}
