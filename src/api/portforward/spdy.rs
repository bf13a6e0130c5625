//! SPDY/3.1 framing, as much of it as `kubectl port-forward` speaks (through Go's
//! `spdystream`): the frame layout, and header blocks compressed with zlib primed by the
//! SPDY/3 dictionary.
//!
//! Flow control is not implemented: `spdystream` neither sends nor honours `WINDOW_UPDATE`,
//! so both sides write as fast as the connection takes it.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// A data frame's or a control frame's FIN flag: the sender sends no more on the stream.
pub const FLAG_FIN: u8 = 0x01;
/// `RST_STREAM` status: the frame made no sense.
pub const PROTOCOL_ERROR: u32 = 1;
/// The largest frame accepted from a peer (header blocks and data).
pub const MAX_FRAME: usize = 1 << 20;
/// The largest decompressed header block accepted.
const MAX_HEADER_BLOCK: usize = 64 * 1024;

const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;

/// Why a byte stream is not SPDY/3.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpdyError {
    /// A control frame of another version.
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    /// A frame larger than [`MAX_FRAME`].
    #[error("a frame of {0} bytes is too large")]
    TooLarge(usize),
    /// A frame shorter than its kind needs, or a malformed header block.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A header block that does not decompress.
    #[error("header block does not decompress: {0}")]
    Compression(String),
}

/// Header names (lowercase) and their values.
pub type Headers = BTreeMap<String, Vec<String>>;

/// One frame, as far as this server cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A peer opens a stream.
    SynStream {
        /// The new stream.
        stream: u32,
        /// `FLAG_FIN` and `FLAG_UNIDIRECTIONAL`.
        flags: u8,
        /// Its still-compressed header block.
        headers: Bytes,
    },
    /// Bytes on a stream.
    Data {
        /// The stream.
        stream: u32,
        /// `FLAG_FIN` or nothing.
        flags: u8,
        /// The payload.
        data: Bytes,
    },
    /// The stream is abandoned.
    RstStream {
        /// The stream.
        stream: u32,
        /// Why.
        status: u32,
    },
    /// A liveness check; echoed back by the side that did not send it.
    Ping(u32),
    /// The peer opens no more streams.
    GoAway,
    /// Any other control frame (`SYN_REPLY`, `SETTINGS`, `WINDOW_UPDATE`, `HEADERS`, ...):
    /// a server that opens no streams of its own ignores them.
    Other(u16),
}

/// Takes one whole frame off the front of `buffer`, if one is there (pure).
///
/// # Errors
///
/// When the bytes are not a SPDY/3 frame.
pub fn parse(buffer: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
    if buffer.len() < 8 {
        return Ok(None);
    }
    let length =
        (usize::from(buffer[5]) << 16) | (usize::from(buffer[6]) << 8) | usize::from(buffer[7]);
    if length > MAX_FRAME {
        return Err(SpdyError::TooLarge(length));
    }
    if buffer.len() < 8 + length {
        return Ok(None);
    }
    let head = buffer.split_to(8);
    let mut body = buffer.split_to(length).freeze();
    let flags = head[4];
    let first = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    if first & 0x8000_0000 == 0 {
        return Ok(Some(Frame::Data {
            stream: first,
            flags,
            data: body,
        }));
    }
    let version = ((first >> 16) & 0x7fff) as u16;
    if version != VERSION {
        return Err(SpdyError::Version(version));
    }
    let kind = (first & 0xffff) as u16;
    let need = |n: usize, what| {
        if length < n {
            Err(SpdyError::Malformed(what))
        } else {
            Ok(())
        }
    };
    Ok(Some(match kind {
        SYN_STREAM => {
            need(10, "SYN_STREAM")?;
            let stream = body.get_u32() & 0x7fff_ffff;
            body.advance(6); // associated stream, priority, slot
            Frame::SynStream {
                stream,
                flags,
                headers: body,
            }
        }
        RST_STREAM => {
            need(8, "RST_STREAM")?;
            Frame::RstStream {
                stream: body.get_u32() & 0x7fff_ffff,
                status: body.get_u32(),
            }
        }
        PING => {
            need(4, "PING")?;
            Frame::Ping(body.get_u32())
        }
        GOAWAY => Frame::GoAway,
        other => Frame::Other(other),
    }))
}

/// Writes a frame's 8-byte header (pure).
fn put_head(out: &mut BytesMut, first: u32, flags: u8, length: usize) {
    out.put_u32(first);
    out.put_u8(flags);
    let length = length as u32;
    out.put_slice(&length.to_be_bytes()[1..]);
}

fn control(kind: u16) -> u32 {
    0x8000_0000 | (u32::from(VERSION) << 16) | u32::from(kind)
}

/// The SPDY/3 header dictionary (from the protocol's draft 3, section 2.6.10.1): each word
/// prefixed by its length as a big-endian u32, then a tail of common values.
pub fn dictionary() -> Vec<u8> {
    const WORDS: &[&str] = &[
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
        "200 OK",
        "version",
        "HTTP/1.1",
        "url",
        "public",
        "set-cookie",
        "keep-alive",
        "origin",
    ];
    const TAIL: &str = concat!(
        "100101201202205206300302303304305306307402405406407408409410411412413414415416417",
        "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently",
        "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error",
        "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct ",
        "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,",
        "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,",
        "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
    );
    let mut out = Vec::with_capacity(1423);
    for word in WORDS {
        out.extend_from_slice(&(word.len() as u32).to_be_bytes());
        out.extend_from_slice(word.as_bytes());
    }
    out.extend_from_slice(TAIL.as_bytes());
    out
}

/// Decompresses a peer's header blocks: one zlib stream across all of a connection's blocks,
/// primed with the SPDY dictionary, each block ending in a sync flush.
pub struct HeaderDecoder {
    inflate: Decompress,
    /// Whether the peer's zlib header (and dictionary id) was consumed.
    started: bool,
}

impl Default for HeaderDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderDecoder {
    /// A decoder for a new connection.
    pub fn new() -> Self {
        // Raw deflate primed with the dictionary: it is fed a stored block holding the
        // dictionary, so the peer's back-references into it resolve, and that block's output
        // is thrown away.
        let mut inflate = Decompress::new(false);
        let dictionary = dictionary();
        let len = dictionary.len() as u16;
        let mut stored = vec![0u8];
        stored.extend_from_slice(&len.to_le_bytes());
        stored.extend_from_slice(&(!len).to_le_bytes());
        stored.extend_from_slice(&dictionary);
        let mut sink = Vec::with_capacity(dictionary.len() + 16);
        let _ = inflate.decompress_vec(&stored, &mut sink, FlushDecompress::Sync);
        HeaderDecoder {
            inflate,
            started: false,
        }
    }

    /// Decompresses and parses a peer's header block.
    ///
    /// # Errors
    ///
    /// When the block does not decompress or is not a name/value block.
    pub fn decode(&mut self, block: &[u8]) -> Result<Headers, SpdyError> {
        let mut input = block;
        if !self.started {
            if input.len() < 2 {
                return Err(SpdyError::Malformed("zlib header"));
            }
            let has_dictionary = input[1] & 0x20 != 0;
            let skip = if has_dictionary { 6 } else { 2 };
            if input.len() < skip {
                return Err(SpdyError::Malformed("zlib header"));
            }
            input = &input[skip..];
            self.started = true;
        }
        let mut plain = Vec::with_capacity(input.len() * 4 + 64);
        loop {
            let before_in = self.inflate.total_in();
            plain.reserve(4096);
            let status = self
                .inflate
                .decompress_vec(input, &mut plain, FlushDecompress::Sync)
                .map_err(|e| SpdyError::Compression(e.to_string()))?;
            let used = (self.inflate.total_in() - before_in) as usize;
            input = &input[used..];
            if plain.len() > MAX_HEADER_BLOCK {
                return Err(SpdyError::TooLarge(plain.len()));
            }
            let full = plain.len() == plain.capacity();
            if matches!(status, Status::StreamEnd) || (input.is_empty() && !full) {
                break;
            }
            if used == 0 && !full {
                return Err(SpdyError::Malformed("header block"));
            }
        }
        parse_block(&plain)
    }
}

/// Compresses our header blocks: one zlib stream, sync-flushed per block. It does not use the
/// dictionary; the peer's reader only applies it when the zlib header asks for it.
pub struct HeaderEncoder {
    deflate: Compress,
}

impl Default for HeaderEncoder {
    fn default() -> Self {
        HeaderEncoder {
            deflate: Compress::new(Compression::fast(), true),
        }
    }
}

impl HeaderEncoder {
    /// Compresses a header block with `headers` (names must be lowercase).
    pub fn encode(&mut self, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut plain = Vec::new();
        plain.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        for (name, value) in headers {
            for text in [name, value] {
                plain.extend_from_slice(&(text.len() as u32).to_be_bytes());
                plain.extend_from_slice(text.as_bytes());
            }
        }
        let mut out = Vec::with_capacity(plain.len() + 64);
        let mut input = plain.as_slice();
        loop {
            out.reserve(256);
            let before = self.deflate.total_in();
            let _ = self
                .deflate
                .compress_vec(input, &mut out, FlushCompress::Sync);
            input = &input[(self.deflate.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        out
    }
}

/// Parses a decompressed name/value block (pure).
fn parse_block(mut block: &[u8]) -> Result<Headers, SpdyError> {
    fn take<'a>(block: &mut &'a [u8]) -> Result<&'a [u8], SpdyError> {
        if block.len() < 4 {
            return Err(SpdyError::Malformed("header block"));
        }
        let n = u32::from_be_bytes([block[0], block[1], block[2], block[3]]) as usize;
        if block.len() < 4 + n {
            return Err(SpdyError::Malformed("header block"));
        }
        let (text, rest) = block[4..].split_at(n);
        *block = rest;
        Ok(text)
    }
    if block.len() < 4 {
        return Err(SpdyError::Malformed("header block"));
    }
    let count = u32::from_be_bytes([block[0], block[1], block[2], block[3]]);
    block = &block[4..];
    let mut headers = Headers::new();
    for _ in 0..count {
        let name = String::from_utf8_lossy(take(&mut block)?).to_ascii_lowercase();
        let value = String::from_utf8_lossy(take(&mut block)?).into_owned();
        headers
            .entry(name)
            .or_default()
            .extend(value.split('\0').map(str::to_string));
    }
    Ok(headers)
}

/// Encodes a `SYN_REPLY` with no headers.
pub fn syn_reply(encoder: &mut HeaderEncoder, stream: u32) -> BytesMut {
    let block = encoder.encode(&[]);
    let mut out = BytesMut::with_capacity(12 + block.len());
    put_head(&mut out, control(SYN_REPLY), 0, 4 + block.len());
    out.put_u32(stream);
    out.put_slice(&block);
    out
}

/// Encodes a data frame (pure). `data` must be under 16 MiB.
pub fn data(stream: u32, flags: u8, data: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(8 + data.len());
    put_head(&mut out, stream & 0x7fff_ffff, flags, data.len());
    out.put_slice(data);
    out
}

/// Encodes a `RST_STREAM` (pure).
pub fn rst_stream(stream: u32, status: u32) -> BytesMut {
    let mut out = BytesMut::with_capacity(16);
    put_head(&mut out, control(RST_STREAM), 0, 8);
    out.put_u32(stream);
    out.put_u32(status);
    out
}

/// Encodes a `PING` (pure).
pub fn ping(id: u32) -> BytesMut {
    let mut out = BytesMut::with_capacity(12);
    put_head(&mut out, control(PING), 0, 4);
    out.put_u32(id);
    out
}

/// Encodes a `GOAWAY` naming the last stream accepted (pure).
pub fn go_away(last_stream: u32) -> BytesMut {
    let mut out = BytesMut::with_capacity(16);
    put_head(&mut out, control(GOAWAY), 0, 8);
    out.put_u32(last_stream);
    out.put_u32(0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_has_the_size_and_checksum_of_the_spec() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        // The adler32 that Go's zlib writes as the dictionary id of every SPDY/3 stream.
        let (mut a, mut b) = (1u32, 0u32);
        for byte in &d {
            a = (a + u32::from(*byte)) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, 0xe3c6_a7c2);
    }

    #[test]
    fn frames_round_trip() {
        let mut buffer = BytesMut::new();
        buffer.extend_from_slice(&data(3, FLAG_FIN, b"hello"));
        buffer.extend_from_slice(&rst_stream(5, 5));
        buffer.extend_from_slice(&ping(7));
        buffer.extend_from_slice(&go_away(9)[..10]); // half a frame
        assert_eq!(
            parse(&mut buffer).unwrap(),
            Some(Frame::Data {
                stream: 3,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"hello")
            })
        );
        assert_eq!(
            parse(&mut buffer).unwrap(),
            Some(Frame::RstStream {
                stream: 5,
                status: 5
            })
        );
        assert_eq!(parse(&mut buffer).unwrap(), Some(Frame::Ping(7)));
        assert_eq!(parse(&mut buffer).unwrap(), None);
        buffer.extend_from_slice(&go_away(9)[10..]);
        assert_eq!(parse(&mut buffer).unwrap(), Some(Frame::GoAway));
        assert!(buffer.is_empty());
    }

    #[test]
    fn bad_frames_are_refused() {
        let mut huge = BytesMut::from(&[0x80, 3, 0, 1, 0, 0xff, 0xff, 0xff][..]);
        assert!(matches!(parse(&mut huge), Err(SpdyError::TooLarge(_))));
        let mut v2 = BytesMut::from(&[0x80, 2, 0, 1, 0, 0, 0, 0][..]);
        assert_eq!(parse(&mut v2), Err(SpdyError::Version(2)));
        let mut short = BytesMut::from(&[0x80, 3, 0, 3, 0, 0, 0, 2, 0, 0][..]);
        assert_eq!(parse(&mut short), Err(SpdyError::Malformed("RST_STREAM")));
    }

    fn block(pairs: &[(&str, &str)]) -> Vec<u8> {
        let mut plain = (pairs.len() as u32).to_be_bytes().to_vec();
        for (n, v) in pairs {
            for t in [n, v] {
                plain.extend_from_slice(&(t.len() as u32).to_be_bytes());
                plain.extend_from_slice(t.as_bytes());
            }
        }
        plain
    }

    /// Two header blocks as a peer with a preset dictionary writes them (made with Python's
    /// `zlib.compressobj(zdict=...)`): the first starts with zlib's header and the
    /// dictionary's id, and both refer back into the dictionary ("user-agent",
    /// "content-type", "text/plain").
    #[test]
    fn header_blocks_decode_with_the_dictionary_across_one_stream() {
        let first = hex::decode(concat!(
            "78f9e3c6a7c2026525703a2b294a4dcc851625aca9a0808614cb45e01c6061606100a4398b20d1",
            "98094ade8c061839853dbb340958e6e460299eb810fe02000000ffff"
        ))
        .unwrap();
        let second = hex::decode("0225740c3b41c55722612b01000000ffff").unwrap();
        let mut decoder = HeaderDecoder::new();
        let headers = decoder.decode(&first).unwrap();
        assert_eq!(headers["streamtype"], vec!["error"]);
        assert_eq!(headers["port"], vec!["8080"]);
        assert_eq!(headers["user-agent"], vec!["kubectl"]);
        assert_eq!(headers["content-type"], vec!["text/plain"]);
        let headers = decoder.decode(&second).unwrap();
        assert_eq!(headers["streamtype"], vec!["data"]);
        assert_eq!(headers["requestid"], vec!["0"]);
    }

    #[test]
    fn our_blocks_are_one_zlib_stream() {
        let mut encoder = HeaderEncoder::default();
        let mut stream = encoder.encode(&[]);
        stream.extend(encoder.encode(&[("port", "80")]));
        let mut inflate = Decompress::new(true);
        let mut plain = Vec::with_capacity(256);
        inflate
            .decompress_vec(&stream, &mut plain, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(plain, [block(&[]), block(&[("port", "80")])].concat());
    }

    #[test]
    fn garbage_header_blocks_are_errors() {
        let mut decoder = HeaderDecoder::new();
        assert!(decoder.decode(&[0x78, 0x01, 0xff, 0xff, 0xff]).is_err());
        assert!(parse_block(&[0, 0, 0, 2, 0, 0, 0, 9, b'x']).is_err());
    }
}
