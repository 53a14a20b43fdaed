//! HTTP/1.1 toward upstreams, driven inside the request's own task.
//!
//! hyper's client runs every connection as a task of its own and hands requests and responses
//! over channels: four task switches per proxied request. Here the request's task writes the
//! request head straight to the socket, parses the response head with `httparse` and reads the
//! body as the client side asks for it (RFC 9112 §6 framing: Content-Length, chunked, or until
//! close). The connection goes back to its pool the moment its last body byte was read.

use std::io;
use std::net::SocketAddr;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode, Version};

/// Largest response head accepted (nginx `proxy_buffer_size` is 4k/8k; we are more lenient).
const MAX_HEAD: usize = 64 * 1024;
/// Most header lines in a response head.
const MAX_HEADERS: usize = 128;
/// Smallest free space offered to one read.
const READ_MIN: usize = 8 * 1024;
/// Largest free space offered to one read (bodies stream in pieces up to this size).
const READ_MAX: usize = 64 * 1024;
/// Longest chunk-size line (size, extensions) and longest trailer section.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

/// How long data we sent to an upstream may stay unacknowledged before the kernel gives up on the
/// connection (TCP_USER_TIMEOUT). A backend host that vanishes (its link goes down: no RST, no
/// answer) would otherwise hold a request until `proxy_read_timeout` (60 s by default); with this
/// the request fails over to the next server in about this long. A live host acknowledges within
/// milliseconds on a LAN, however slowly its application answers.
pub(crate) const UNACKED_DATA_TIMEOUT: Duration = Duration::from_millis(1500);

/// A connection to an upstream peer.
#[derive(Debug)]
pub(crate) struct UpstreamConn {
    pub stream: crate::upstream_tls::UpstreamIo,
    /// Bytes read and not consumed yet.
    pub buf: BytesMut,
    /// Free space offered to the next read; grows while reads fill it.
    read_size: usize,
    pub created: Instant,
    pub requests: u64,
    /// Came out of the idle pool (a failure before any byte was answered gives the try back).
    pub reused: bool,
}

/// Why reading a response failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ResponseError {
    /// The connection closed (or reset) before a single response byte: on a pooled connection
    /// this is the upstream having closed it while idle.
    #[error("upstream closed the connection before answering")]
    ClosedBeforeAnswer,
    #[error("upstream sent an invalid response: {0}")]
    Invalid(&'static str),
    #[error("upstream read failed: {0}")]
    Io(#[from] io::Error),
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// The connection may carry another request once this body was read.
    pub keep_alive: bool,
    /// How the upstream spelled its header names.
    pub case: Option<crate::header_case::HeaderCase>,
}

/// How the end of a response body is found (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// This many bytes remain.
    Length(u64),
    Chunked(ChunkState),
    /// Until the upstream closes the connection.
    UntilClose,
    /// The body was read to its end.
    Done,
}

/// Where a chunked decoder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkState {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data: this many bytes remain.
    Data(u64),
    /// After chunk data: expecting CRLF.
    DataEnd,
    /// After the last chunk: trailer lines until an empty line.
    Trailers,
}

impl UpstreamConn {
    /// Opens a connection (TCP_NODELAY, TCP_USER_TIMEOUT), with a TLS handshake when `tls`.
    pub async fn connect(
        addr: SocketAddr,
        tls: Option<&crate::upstream_tls::UpstreamTlsRt>,
    ) -> io::Result<UpstreamConn> {
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            Some(socket2::Protocol::TCP),
        )?;
        socket.set_nonblocking(true)?;
        socket.set_tcp_user_timeout(Some(UNACKED_DATA_TIMEOUT))?;
        let socket = tokio::net::TcpSocket::from_std_stream(socket.into());
        let stream = socket.connect(addr).await?;
        stream.set_nodelay(true)?;
        let stream = match tls {
            Some(tls) => tls.handshake(stream).await?,
            None => crate::upstream_tls::UpstreamIo::Plain(stream),
        };
        Ok(UpstreamConn {
            stream,
            buf: BytesMut::new(),
            read_size: READ_MIN,
            created: Instant::now(),
            requests: 0,
            reused: false,
        })
    }

    /// Whether an idle pooled connection is still worth a request: no byte and no close arrived
    /// while it sat in the pool. Costs a syscall only when tokio saw the socket readable.
    pub fn looks_alive(&self) -> bool {
        self.stream.looks_alive()
    }

    /// Writes `bytes`, waiting at most `timeout` between two writes (nginx
    /// `proxy_send_timeout`; 0 = none).
    pub async fn write_all(&mut self, bytes: &[u8], timeout: Duration) -> io::Result<()> {
        self.stream.write_all(bytes, timeout).await
    }

    /// Reads more bytes into `buf`; Ready(Ok(0)) at end of stream.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < self.read_size / 2 {
            self.buf.reserve(self.read_size);
        }
        let room = self.buf.capacity() - self.buf.len();
        let n = ready!(self.stream.poll_read_into(cx, &mut self.buf, room))?;
        if n == room && self.read_size < READ_MAX {
            self.read_size *= 2;
        }
        Poll::Ready(Ok(n))
    }

    /// Reads and parses the response head. 1xx answers other than 101 are skipped.
    pub async fn read_head(&mut self, head_request: bool) -> Result<ResponseHead, ResponseError> {
        let mut answered = false;
        loop {
            if !self.buf.is_empty() {
                answered = true;
                match parse_head(&self.buf, head_request)? {
                    Some((used, head)) => {
                        self.buf.advance(used);
                        let informational = head.status.is_informational()
                            && head.status != StatusCode::SWITCHING_PROTOCOLS;
                        if !informational {
                            return Ok(head);
                        }
                        continue;
                    }
                    None if self.buf.len() >= MAX_HEAD => {
                        return Err(ResponseError::Invalid("response head too large"))
                    }
                    None => {}
                }
            }
            match std::future::poll_fn(|cx| self.poll_fill(cx)).await {
                Ok(0) if !answered => return Err(ResponseError::ClosedBeforeAnswer),
                Ok(0) => return Err(ResponseError::Invalid("response head cut short")),
                Ok(_) => {}
                Err(e) if !answered && is_reset(&e) => {
                    return Err(ResponseError::ClosedBeforeAnswer)
                }
                Err(e) => return Err(ResponseError::Io(e)),
            }
        }
    }

    /// The next piece of the response body, advancing `framing`; None once the body ended.
    /// Decoded data only: chunk framing and trailers are consumed here.
    pub fn poll_body(
        &mut self,
        cx: &mut Context<'_>,
        framing: &mut Framing,
    ) -> Poll<Result<Option<Bytes>, ResponseError>> {
        loop {
            match *framing {
                Framing::Done => return Poll::Ready(Ok(None)),
                Framing::Length(0) => {
                    *framing = Framing::Done;
                    return Poll::Ready(Ok(None));
                }
                Framing::Length(left) if !self.buf.is_empty() => {
                    let n = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(self.buf.len());
                    *framing = Framing::Length(left - n as u64);
                    if left == n as u64 {
                        *framing = Framing::Done;
                    }
                    return Poll::Ready(Ok(Some(self.buf.split_to(n).freeze())));
                }
                Framing::UntilClose if !self.buf.is_empty() => {
                    return Poll::Ready(Ok(Some(self.buf.split().freeze())));
                }
                Framing::Chunked(state) => {
                    let before = self.buf.len();
                    let (next, data) = decode_chunked(&mut self.buf, state)?;
                    *framing = next;
                    if let Some(data) = data {
                        return Poll::Ready(Ok(Some(data)));
                    }
                    if next == Framing::Done {
                        return Poll::Ready(Ok(None));
                    }
                    if self.buf.len() != before || next != Framing::Chunked(state) {
                        continue;
                    }
                    // Too little buffered to progress: read more.
                }
                Framing::Length(_) | Framing::UntilClose => {}
            }
            let n = ready!(self.poll_fill(cx))?;
            if n == 0 {
                if *framing == Framing::UntilClose {
                    *framing = Framing::Done;
                    return Poll::Ready(Ok(None));
                }
                return Poll::Ready(Err(ResponseError::Invalid(
                    "upstream prematurely closed connection while reading response body",
                )));
            }
        }
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Parses a response head from `buf`: None while incomplete.
fn parse_head(
    buf: &[u8],
    head_request: bool,
) -> Result<Option<(usize, ResponseHead)>, ResponseError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    let used = match response.parse(buf) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ResponseError::Invalid("too many header lines"))
        }
        Err(_) => return Err(ResponseError::Invalid("malformed response head")),
    };
    let code = response.code.unwrap_or(0);
    let status =
        StatusCode::from_u16(code).map_err(|_| ResponseError::Invalid("invalid status code"))?;
    let version = if response.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let copy = HeadCopy::new(&buf[..used]);
    let mut headers = HeaderMap::with_capacity(response.headers.len());
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut has_te = false;
    let mut close = version == Version::HTTP_10;
    let mut case = None;
    for h in response.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| ResponseError::Invalid("invalid header name"))?;
        crate::header_case::HeaderCase::note(
            &mut case,
            &name,
            h.name.as_bytes(),
            || copy.slice(h.name.as_bytes()),
            true,
        );
        let value = copy
            .value(h.value)
            .ok_or(ResponseError::Invalid("invalid header value"))?;
        if name == http::header::CONTENT_LENGTH {
            for part in h.value.split(|b| *b == b',') {
                let text = std::str::from_utf8(part).unwrap_or("").trim();
                let n: u64 = text
                    .parse()
                    .map_err(|_| ResponseError::Invalid("invalid Content-Length"))?;
                if content_length.is_some_and(|old| old != n) {
                    return Err(ResponseError::Invalid("conflicting Content-Length"));
                }
                content_length = Some(n);
            }
        } else if name == http::header::TRANSFER_ENCODING {
            has_te = true;
            // Only the last coding decides (RFC 9112 §6.3 item 4).
            chunked = h
                .value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name == http::header::CONNECTION {
            // The last of "close" and "keep-alive" decides.
            for token in h.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && version == Version::HTTP_10 {
                    close = false;
                }
            }
        }
        headers.append(name, value);
    }
    let bodiless = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framing = if bodiless {
        Framing::Length(0)
    } else if has_te {
        if chunked {
            Framing::Chunked(ChunkState::Size)
        } else {
            Framing::UntilClose
        }
    } else if let Some(n) = content_length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    if has_te && content_length.is_some() {
        // Both framings: the message is suspect (RFC 9112 §6.1); read it chunked, never reuse.
        close = true;
    }
    let keep_alive = !close && framing != Framing::UntilClose;
    Ok(Some((
        used,
        ResponseHead {
            status,
            headers,
            framing,
            keep_alive,
            case,
        },
    )))
}

/// One decoding step of a chunked body over `buf`: the new state and any data decoded. Returns the
/// state unchanged and no data when `buf` holds too little to progress.
fn decode_chunked(
    buf: &mut BytesMut,
    state: ChunkState,
) -> Result<(Framing, Option<Bytes>), ResponseError> {
    let invalid = |what| Err(ResponseError::Invalid(what));
    match state {
        ChunkState::Size => {
            let Some(end) = find_crlf(buf) else {
                if buf.len() > MAX_CHUNK_LINE {
                    return invalid("chunk-size line too long");
                }
                return Ok((Framing::Chunked(state), None));
            };
            let line = &buf[..end];
            let digits = line
                .iter()
                .position(|b| !b.is_ascii_hexdigit())
                .unwrap_or(line.len());
            if digits == 0 || digits > 15 {
                return invalid("invalid chunk size");
            }
            let rest = &line[digits..];
            if !(rest.is_empty() || rest[0] == b';' || rest[0] == b' ' || rest[0] == b'\t') {
                return invalid("invalid chunk size");
            }
            let text = std::str::from_utf8(&line[..digits]).unwrap_or("0");
            let size = u64::from_str_radix(text, 16)
                .map_err(|_| ResponseError::Invalid("invalid chunk size"))?;
            buf.advance(end + 2);
            if size == 0 {
                Ok((Framing::Chunked(ChunkState::Trailers), None))
            } else {
                Ok((Framing::Chunked(ChunkState::Data(size)), None))
            }
        }
        ChunkState::Data(left) => {
            if buf.is_empty() {
                return Ok((Framing::Chunked(state), None));
            }
            let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
            let data = buf.split_to(n).freeze();
            let next = if left == n as u64 {
                ChunkState::DataEnd
            } else {
                ChunkState::Data(left - n as u64)
            };
            Ok((Framing::Chunked(next), Some(data)))
        }
        ChunkState::DataEnd => {
            if buf.len() < 2 {
                return Ok((Framing::Chunked(state), None));
            }
            if &buf[..2] != b"\r\n" {
                return invalid("chunk data not followed by CRLF");
            }
            buf.advance(2);
            Ok((Framing::Chunked(ChunkState::Size), None))
        }
        ChunkState::Trailers => {
            let Some(end) = find_crlf(buf) else {
                if buf.len() > MAX_TRAILERS {
                    return invalid("trailer section too long");
                }
                return Ok((Framing::Chunked(state), None));
            };
            buf.advance(end + 2);
            if end == 0 {
                Ok((Framing::Done, None))
            } else {
                Ok((Framing::Chunked(ChunkState::Trailers), None))
            }
        }
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// One copy of a parsed head; header values (and the request target) become slices of it, so a
/// head costs one allocation instead of one per header.
pub(crate) struct HeadCopy {
    bytes: Bytes,
    base: usize,
}

impl HeadCopy {
    /// Copies `head`, the bytes `httparse` parsed.
    pub fn new(head: &[u8]) -> HeadCopy {
        HeadCopy {
            bytes: Bytes::copy_from_slice(head),
            base: head.as_ptr() as usize,
        }
    }

    /// The copy of `part`, a slice of the head this was made from.
    pub fn slice(&self, part: &[u8]) -> Option<Bytes> {
        let start = (part.as_ptr() as usize).checked_sub(self.base)?;
        let end = start.checked_add(part.len())?;
        (end <= self.bytes.len()).then(|| self.bytes.slice(start..end))
    }

    /// `part` as a header value (None if it is not a valid one).
    pub fn value(&self, part: &[u8]) -> Option<HeaderValue> {
        HeaderValue::from_maybe_shared(self.slice(part)?).ok()
    }
}

/// Whether a comma-separated header value (Connection) lists `token`, case-insensitively.
pub(crate) fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Appends `name: value\r\n`.
pub(crate) fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends the size line of a chunk of `len` bytes.
pub(crate) fn put_chunk_head(out: &mut Vec<u8>, len: usize) {
    use std::io::Write as _;
    let _ = write!(out, "{len:x}\r\n");
}

/// Appends one chunk of a chunked body.
pub(crate) fn put_chunk(out: &mut Vec<u8>, data: &[u8]) {
    put_chunk_head(out, data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn head(text: &str, head_request: bool) -> ResponseHead {
        parse_head(text.as_bytes(), head_request)
            .unwrap()
            .unwrap()
            .1
    }

    #[test]
    fn framing_follows_rfc_9112_section_6_3() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false);
        assert_eq!(h.framing, Framing::Length(5));
        assert!(h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true);
        assert_eq!(h.framing, Framing::Length(0));
        let h = head("HTTP/1.1 204 No Content\r\n\r\n", false);
        assert_eq!(h.framing, Framing::Length(0));
        let h = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            false,
        );
        assert_eq!(h.framing, Framing::Chunked(ChunkState::Size));
        let h = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            false,
        );
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(!h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\n\r\n", false);
        assert_eq!(h.framing, Framing::UntilClose);
        let h = head(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n",
            false,
        );
        assert!(!h.keep_alive);
        let h = head("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", false);
        assert!(!h.keep_alive);
        let h = head(
            "HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n",
            false,
        );
        assert!(h.keep_alive);
        let h = head(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
        );
        assert_eq!(h.framing, Framing::Chunked(ChunkState::Size));
        assert!(!h.keep_alive, "both framings: never reused");
    }

    #[test]
    fn bad_heads_are_invalid_and_partial_heads_wait() {
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Le", false)
            .unwrap()
            .is_none());
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTX/1.1 200 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
        ] {
            assert!(
                matches!(
                    parse_head(bad.as_bytes(), false),
                    Err(ResponseError::Invalid(_))
                ),
                "{bad:?}"
            );
        }
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", false);
        assert_eq!(h.framing, Framing::Length(3));
    }

    fn decode_all(input: &[u8], step: usize) -> Result<Vec<u8>, ResponseError> {
        let mut buf = BytesMut::new();
        let mut state = Framing::Chunked(ChunkState::Size);
        let mut out = Vec::new();
        let mut fed = 0;
        for _ in 0..10_000 {
            let Framing::Chunked(s) = state else {
                return Ok(out);
            };
            let before = (buf.len(), s);
            let (next, data) = decode_chunked(&mut buf, s)?;
            if let Some(d) = data {
                out.extend_from_slice(&d);
            }
            state = next;
            if (buf.len(), next) == (before.0, Framing::Chunked(before.1)) {
                if fed >= input.len() {
                    return Err(ResponseError::Invalid("ran out of input"));
                }
                let end = (fed + step).min(input.len());
                buf.extend_from_slice(&input[fed..end]);
                fed = end;
            }
        }
        panic!("decoder did not finish");
    }

    #[test]
    fn chunked_bodies_decode_in_any_split() {
        let wire = b"5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n";
        for step in [1, 2, 3, 7, 100] {
            assert_eq!(
                decode_all(wire, step).unwrap(),
                b"hello 0123456789",
                "step {step}"
            );
        }
        for bad in [&b"x\r\n"[..], b"5\r\nhelloXX", b"fffffffffffffffff\r\n"] {
            assert!(decode_all(bad, 100).is_err(), "{bad:?}");
        }
    }
}
