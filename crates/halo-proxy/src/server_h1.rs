//! halo's own HTTP/1.x server codec for the common request: a GET or HEAD without a body
//! (HTTP/1.0 too: answered with an HTTP/1.1 status line, as nginx does, keep-alive only when
//! asked for, and a body of unknown length delimited by closing the connection).
//!
//! The connection loop ([`crate::connection::serve`]) parses every request head here first.
//! A plain GET/HEAD is answered by this codec: the head is parsed with `httparse` straight from
//! the connection's buffer, the handler runs, and the response is written with one `write` in
//! the usual case. Everything else (request bodies, Upgrade, `Expect`, heads this
//! parser does not like) goes to hyper for that request, with the bytes already read, and comes
//! back here once its response was sent. A request with both Content-Length and
//! Transfer-Encoding is refused here with 400 (RFC 9112 §6.1: "ought to be handled as an error").

use std::cell::RefCell;
use std::io;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderMap, Method, Response, StatusCode, Version};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use tokio::net::TcpStream;

use crate::body::ResponseBody;
use crate::upstream_h1::has_token;

/// Header lines this codec takes; a head with more goes to hyper (whose limit is higher).
const MAX_HEADERS: usize = 64;

/// What the bytes at the front of a connection's buffer are. Lives on the stack for a moment:
/// boxing the head would cost an allocation per request.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// A request this codec serves: its head, the bytes it took, and whether the client asked
    /// for the connection to be closed after it.
    Request(http::request::Parts, usize, bool),
    /// Refused outright: answer with this status and close.
    Reject(StatusCode),
    /// Anything else: hyper takes this request.
    Fallback,
}

/// Parses the request head at the front of `buf`. Heads longer than `max_head` go to hyper,
/// which answers 431/414 for them.
pub(crate) fn parse_request(buf: &[u8], max_head: usize) -> Parsed {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    let used = match request.parse(buf) {
        Ok(httparse::Status::Complete(used)) if used <= max_head => used,
        Ok(httparse::Status::Partial) if buf.len() < max_head => return Parsed::Partial,
        _ => return Parsed::Fallback,
    };
    let copy = crate::upstream_h1::HeadCopy::new(&buf[..used]);
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    let mut close = false;
    let mut keep_alive = false;
    let (mut length, mut chunked) = (false, false);
    let mut case = None;
    for h in request.headers.iter() {
        let Ok(name) = HeaderName::from_bytes(h.name.as_bytes()) else {
            return Parsed::Fallback;
        };
        crate::header_case::HeaderCase::note(
            &mut case,
            &name,
            h.name.as_bytes(),
            || copy.slice(h.name.as_bytes()),
            false,
        );
        let Some(value) = copy.value(h.value) else {
            return Parsed::Fallback;
        };
        if name == header::CONTENT_LENGTH {
            length = true;
        } else if name == header::TRANSFER_ENCODING {
            chunked = true;
        } else if name == header::UPGRADE || name == header::EXPECT {
            return Parsed::Fallback;
        } else if name == header::CONNECTION {
            if has_token(h.value, b"upgrade") {
                return Parsed::Fallback;
            }
            close |= has_token(h.value, b"close");
            keep_alive |= has_token(h.value, b"keep-alive");
        }
        headers.append(name, value);
    }
    if length && chunked {
        return Parsed::Reject(StatusCode::BAD_REQUEST);
    }
    if length || chunked {
        // A body: hyper reads it.
        return Parsed::Fallback;
    }
    let method = match request.method {
        Some("GET") => Method::GET,
        Some("HEAD") => Method::HEAD,
        _ => return Parsed::Fallback,
    };
    // HTTP/1.0 keeps the connection only when asked to (`Connection: keep-alive`).
    let version = match request.version {
        Some(1) => Version::HTTP_11,
        Some(0) => {
            close |= !keep_alive;
            Version::HTTP_10
        }
        _ => return Parsed::Fallback,
    };
    let Some(path) = request.path.filter(|p| p.starts_with('/')) else {
        return Parsed::Fallback;
    };
    let Some(Ok(uri)) = copy
        .slice(path.as_bytes())
        .map(http::Uri::from_maybe_shared)
    else {
        return Parsed::Fallback;
    };
    let mut parts = http::Request::new(()).into_parts().0;
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    if let Some(case) = case {
        parts.extensions.insert(case);
    }
    Parsed::Request(parts, used, close)
}

thread_local! {
    /// The `Date` value of the current second, formatted once per second and thread.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

thread_local! {
    /// The `Date` header value of the current second, made once per second and thread.
    static DATE_VALUE: RefCell<(u64, http::HeaderValue)> =
        const { RefCell::new((u64::MAX, http::HeaderValue::from_static(""))) };
}

/// The current `Date` value (a cheap clone of the value of this second).
pub(crate) fn date_now() -> http::HeaderValue {
    let second = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE_VALUE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != second {
            let mut text = Vec::with_capacity(29);
            put_date(&mut text);
            if let Ok(value) = http::HeaderValue::from_bytes(&text) {
                *cached = (second, value);
            }
        }
        cached.1.clone()
    })
}

fn put_date(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != second {
            *cached = (second, httpdate::fmt_http_date(now));
        }
        out.extend_from_slice(cached.1.as_bytes());
    });
}

/// RFC 9110 §6.4.1: 1xx, 204 and 304 responses have no content (and no Content-Length).
fn status_has_content(status: StatusCode) -> bool {
    !status.is_informational()
        && status != StatusCode::NO_CONTENT
        && status != StatusCode::NOT_MODIFIED
}

/// No body bytes go out for HEAD, nor for a status without content.
fn can_have_body(method: &Method, status: StatusCode) -> bool {
    method != Method::HEAD && status_has_content(status)
}

/// How the body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// Raw bytes (Content-Length was written), or no body at all.
    Raw,
    Chunked,
}

/// Serialises the status line and headers the way hyper does for the same response: the
/// headers in map order, Content-Length from the body's exact size or chunked, `Date` last,
/// `Connection: close` when the connection ends after this response. Returns the encoding and
/// whether the connection must close after this response.
fn encode_head(
    out: &mut Vec<u8>,
    response: &Response<ResponseBody>,
    method: &Method,
    mut close: bool,
    http10: bool,
) -> (Encoding, bool) {
    let status = response.status();
    if status == StatusCode::OK {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    } else {
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(status.canonical_reason().unwrap_or("<none>").as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let headers = response.headers();
    let case = response
        .extensions()
        .get::<crate::header_case::HeaderCase>();
    let mut has_length = false;
    let mut has_connection_close = false;
    // `proxy_pass_header Date`: the upstream's Date, where it is, instead of halo's.
    let upstream_date = response
        .extensions()
        .get::<crate::upstream_headers::UpstreamDatePassed>()
        .is_some();
    for (name, value) in headers {
        if name == header::DATE && !upstream_date {
            // nginx sends its own Date, never the upstream's (written last, below).
            continue;
        }
        if name == header::CONTENT_LENGTH {
            has_length = true;
        } else if name == header::CONNECTION {
            has_connection_close |= has_token(value.as_bytes(), b"close");
        }
        crate::header_case::put_header(out, case, name, value.as_bytes());
    }
    close |= has_connection_close;
    let body = response.body();
    // HTTP/1.0 has no chunked coding: a body of unknown length ends with the connection.
    if http10 && !has_length && can_have_body(method, status) {
        let exact = if body.is_end_stream() {
            Some(0)
        } else {
            body.size_hint().exact()
        };
        close |= exact.is_none();
    }
    if close && !has_connection_close {
        crate::upstream_h1::put_header(out, b"Connection", b"close");
    } else if http10 && !close {
        crate::upstream_h1::put_header(out, b"Connection", b"keep-alive");
    }
    let mut encoding = Encoding::Raw;
    if !has_length {
        let exact = if body.is_end_stream() {
            Some(0)
        } else {
            body.size_hint().exact()
        };
        let contentful = status_has_content(status);
        match exact {
            Some(0) if contentful && method != Method::HEAD => {
                crate::upstream_h1::put_header(out, b"Content-Length", b"0");
            }
            Some(0) => {}
            Some(len) if contentful => {
                crate::upstream_h1::put_header(out, b"Content-Length", len.to_string().as_bytes());
            }
            Some(_) => {}
            None if can_have_body(method, status) && !http10 => {
                crate::upstream_h1::put_header(out, b"Transfer-Encoding", b"chunked");
                encoding = Encoding::Chunked;
            }
            None => {}
        }
    }
    if !upstream_date {
        out.extend_from_slice(b"Date: ");
        put_date(out);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    (encoding, close)
}

/// Call after a read that got fewer bytes than it offered room for: the socket is drained, so
/// tokio's cached "readable" is stale. Clearing it sends the next wait to epoll instead of to a
/// `recv` that can only fail with EAGAIN (two such calls per proxied request otherwise). tokio
/// clears it only if no readiness event arrived since it was recorded, so no wakeup is lost.
pub(crate) fn forget_readable(stream: &TcpStream) {
    let _ = stream.try_io(tokio::io::Interest::READABLE, || {
        Err::<(), _>(io::ErrorKind::WouldBlock.into())
    });
}

/// Writes `data` completely; waits at most `timeout` between two writes that make progress
/// (nginx `send_timeout`; 0 = no limit). Tries the write first, so a socket with room costs no
/// timer at all.
pub(crate) async fn write_all_within(
    stream: &TcpStream,
    mut data: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    while !data.is_empty() {
        match stream.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_writable(stream, timeout).await?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Bytes gathered for one `writev`: the head, then body frames as they were read (no copy).
struct Outbox {
    head: Vec<u8>,
    frames: Vec<Bytes>,
    queued: usize,
}

/// Frames are gathered up to this many bytes before they are written anyway.
const GATHER_LIMIT: usize = 256 * 1024;

impl Outbox {
    fn push(&mut self, data: Bytes) {
        self.queued += data.len();
        self.frames.push(data);
    }

    fn is_empty(&self) -> bool {
        self.head.is_empty() && self.frames.is_empty()
    }

    /// Writes everything gathered: one `writev` when the socket has room.
    async fn flush(&mut self, stream: &TcpStream, timeout: Duration) -> io::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let mut slices: Vec<io::IoSlice<'_>> = Vec::with_capacity(self.frames.len() + 1);
        if !self.head.is_empty() {
            slices.push(io::IoSlice::new(&self.head));
        }
        slices.extend(self.frames.iter().map(|f| io::IoSlice::new(f)));
        let mut bufs = &mut slices[..];
        while !bufs.is_empty() {
            match stream.try_write_vectored(bufs) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => io::IoSlice::advance_slices(&mut bufs, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait_writable(stream, timeout).await?;
                }
                Err(e) => return Err(e),
            }
        }
        drop(slices);
        self.head.clear();
        self.frames.clear();
        self.queued = 0;
        Ok(())
    }
}

async fn wait_writable(stream: &TcpStream, timeout: Duration) -> io::Result<()> {
    let writable = stream.writable();
    if timeout.is_zero() {
        return writable.await;
    }
    tokio::time::timeout(timeout, writable)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "send timed out"))?
}

/// Sends `response` to the client; the body is streamed frame by frame. Returns whether the
/// connection may serve another request. A body that fails midway (an upstream that died)
/// ends the connection, as the client cannot be told otherwise.
pub(crate) async fn write_response(
    stream: &TcpStream,
    response: Response<ResponseBody>,
    method: &Method,
    close: bool,
    http10: bool,
    send_timeout: Duration,
) -> io::Result<bool> {
    if response.status().as_u16() == 444 {
        // nginx's `return 444`: close the connection without a response.
        return Ok(false);
    }
    let mut out = Outbox {
        head: Vec::with_capacity(512),
        frames: Vec::new(),
        queued: 0,
    };
    let (encoding, close) = encode_head(&mut out.head, &response, method, close, http10);
    let status = response.status();
    let mut body = response.into_body();
    if !can_have_body(method, status) {
        drop(body);
        out.flush(stream, send_timeout).await?;
        return Ok(!close);
    }
    // Body pieces already at hand are gathered behind the head and leave in one write; before
    // waiting for more (a slow upstream), what was gathered goes out.
    loop {
        let frame = match futures::future::poll_immediate(body.frame()).await {
            Some(frame) => frame,
            None => {
                out.flush(stream, send_timeout).await?;
                body.frame().await
            }
        };
        match frame {
            None => {
                if encoding == Encoding::Chunked {
                    out.push(Bytes::from_static(b"0\r\n\r\n"));
                }
                out.flush(stream, send_timeout).await?;
                return Ok(!close);
            }
            Some(Err(_)) => {
                // What was sent stays sent; the close tells the client the body is cut.
                out.flush(stream, send_timeout).await?;
                return Ok(false);
            }
            Some(Ok(frame)) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if data.is_empty() {
                    continue;
                }
                if encoding == Encoding::Chunked {
                    let mut size_line = Vec::with_capacity(12);
                    crate::upstream_h1::put_chunk_head(&mut size_line, data.len());
                    out.push(Bytes::from(size_line));
                    out.push(data);
                    out.push(Bytes::from_static(b"\r\n"));
                } else {
                    out.push(data);
                }
                if out.queued >= GATHER_LIMIT {
                    out.flush(stream, send_timeout).await?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use http::header::HeaderValue;

    #[test]
    fn plain_gets_are_ours_and_everything_else_is_hyper_s() {
        let Parsed::Request(parts, used, close) = parse_request(
            b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET",
            8192,
        ) else {
            panic!("a plain GET is parsed here");
        };
        assert_eq!((parts.uri.path(), parts.uri.query()), ("/a", Some("b=1")));
        assert_eq!(parts.headers["host"], "x");
        assert_eq!(used, 51);
        assert!(close);
        assert!(matches!(
            parse_request(b"GET / HTTP/1.1\r\nHost: x\r\n", 8192),
            Parsed::Partial
        ));
        for other in [
            &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na"[..],
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: aaaaaaaaaaaaaaaaaaaa\r\n\r\n",
        ] {
            assert!(
                matches!(parse_request(other, 40), Parsed::Fallback),
                "{:?}",
                String::from_utf8_lossy(other)
            );
        }
        // HTTP/1.0: ours too, closing unless the client asks to keep the connection.
        let Parsed::Request(parts, _, close) = parse_request(b"GET / HTTP/1.0\r\n\r\n", 8192)
        else {
            panic!("an HTTP/1.0 GET is parsed here");
        };
        assert_eq!((parts.version, close), (Version::HTTP_10, true));
        let Parsed::Request(_, _, close) =
            parse_request(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 8192)
        else {
            panic!("an HTTP/1.0 GET is parsed here");
        };
        assert!(!close);
        assert!(matches!(
            parse_request(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
                8192
            ),
            Parsed::Reject(StatusCode::BAD_REQUEST)
        ));
    }

    #[test]
    fn heads_are_framed_like_hyper_frames_them() {
        let encode = |response: Response<ResponseBody>, method: Method, close: bool| {
            let mut out = Vec::new();
            let result = encode_head(&mut out, &response, &method, close, false);
            let text = String::from_utf8(out).unwrap();
            let without_date = text.split("Date: ").next().unwrap().to_owned();
            (without_date, result)
        };
        let (text, result) = encode(
            Response::new(ResponseBody::full("hello")),
            Method::GET,
            false,
        );
        assert_eq!(text, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n");
        assert_eq!(result, (Encoding::Raw, false));
        let (text, result) = encode(
            Response::new(ResponseBody::full("hello")),
            Method::HEAD,
            true,
        );
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n"
        );
        assert_eq!(result, (Encoding::Raw, true));
        let mut empty = Response::new(ResponseBody::empty());
        *empty.status_mut() = StatusCode::NOT_MODIFIED;
        let (text, _) = encode(empty, Method::GET, false);
        assert_eq!(text, "HTTP/1.1 304 Not Modified\r\n");
        let mut closing = Response::new(ResponseBody::empty());
        *closing.status_mut() = StatusCode::NOT_FOUND;
        closing
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        let (text, result) = encode(closing, Method::GET, false);
        assert_eq!(
            text,
            "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n"
        );
        assert!(result.1);
    }
}
