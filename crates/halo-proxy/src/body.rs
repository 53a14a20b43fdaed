//! Body types: the request body streamed to an upstream, and the response body streamed to
//! the client, which also carries what must happen when the response is finished (connection
//! state, upstream release, access log, limit_conn permits).

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Sleep;

use crate::access_log::PendingLog;
use crate::connection::ConnTrack;
use crate::forward::PeerLease;
use crate::pool::{PeerPool, PoolLimits};
use crate::upstream_h1::{Framing, UpstreamConn};

/// Boxed error of our bodies.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A per-read inactivity timer, created lazily (only when a read actually has to wait).
#[derive(Debug, Default)]
pub(crate) struct IdleTimer {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl IdleTimer {
    /// Returns Ready(()) when `timeout` passed since the last `reset` while pending.
    pub(crate) fn poll_expired(&mut self, cx: &mut Context<'_>, timeout: Duration) -> Poll<()> {
        if timeout.is_zero() {
            return Poll::Pending;
        }
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        sleep.as_mut().poll(cx)
    }

    pub(crate) fn reset(&mut self, timeout: Duration) {
        if let Some(sleep) = self.sleep.as_mut() {
            sleep.as_mut().reset(tokio::time::Instant::now() + timeout);
        }
    }
}

/// Error raised by [`ClientBody`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientBodyError {
    #[error("client_body_timeout expired")]
    Timeout,
    #[error("request body larger than client_max_body_size")]
    TooLarge,
}

/// [`ClientBody::cut`]: the body exceeded `client_max_body_size`.
pub(crate) const CUT_TOO_LARGE: u8 = 1;
/// [`ClientBody::cut`]: `client_body_timeout` expired.
pub(crate) const CUT_TIMEOUT: u8 = 2;

/// The client's request body on its way upstream, with `client_body_timeout` between reads
/// and `client_max_body_size` for bodies without Content-Length.
#[derive(Debug)]
pub(crate) struct ClientBody {
    inner: Incoming,
    timeout: Duration,
    timer: IdleTimer,
    limit: u64,
    received: u64,
    /// Set when the body was cut ([`CUT_TOO_LARGE`] or [`CUT_TIMEOUT`]), so the handler
    /// answers 413/408 instead of blaming the upstream.
    pub cut: Arc<AtomicU8>,
}

impl ClientBody {
    pub fn new(inner: Incoming, timeout: Duration, limit: u64) -> Self {
        ClientBody {
            inner,
            timeout,
            timer: IdleTimer::default(),
            limit,
            received: 0,
            cut: Arc::new(AtomicU8::new(0)),
        }
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let body = self.get_mut();
        match Pin::new(&mut body.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    body.received += data.len() as u64;
                    if body.limit > 0 && body.received > body.limit {
                        body.cut.store(CUT_TOO_LARGE, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(Box::new(ClientBodyError::TooLarge))));
                    }
                }
                body.timer.reset(body.timeout);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(Box::new(error)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(body.timer.poll_expired(cx, body.timeout));
                body.cut.store(CUT_TIMEOUT, Ordering::Relaxed);
                Poll::Ready(Some(Err(Box::new(ClientBodyError::Timeout))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An upstream response body: `proxy_read_timeout` between reads; the connection goes back
/// to its pool the moment the body was read to its end.
#[derive(Debug)]
pub(crate) struct UpstreamBody {
    conn: Option<UpstreamConn>,
    framing: Framing,
    keep_alive: bool,
    /// The whole body when it came with the response head (the usual small response): the
    /// connection is back in the pool before the client is written to.
    ready: Option<Bytes>,
    read_timeout: Duration,
    timer: IdleTimer,
    pool: Option<(Arc<PeerPool>, PoolLimits)>,
}

impl UpstreamBody {
    pub fn new(
        mut conn: UpstreamConn,
        mut framing: Framing,
        keep_alive: bool,
        read_timeout: Duration,
        pool: Option<(Arc<PeerPool>, PoolLimits)>,
    ) -> Self {
        let mut ready = None;
        if let Framing::Length(len) = framing {
            if len > 0 && conn.buf.len() as u64 >= len {
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                ready = Some(conn.buf.split_to(len).freeze());
                framing = Framing::Done;
            }
        }
        let mut body = UpstreamBody {
            conn: Some(conn),
            framing,
            keep_alive,
            ready,
            read_timeout,
            timer: IdleTimer::default(),
            pool,
        };
        body.release_if_done();
        body
    }

    fn is_done(&self) -> bool {
        matches!(self.framing, Framing::Done | Framing::Length(0))
    }

    /// Once the body was read to its end, the connection goes back to its pool (or is closed).
    fn release_if_done(&mut self) {
        if !self.is_done() {
            return;
        }
        if let Some(conn) = self.conn.take() {
            if let (true, Some((pool, limits))) = (self.keep_alive, &self.pool) {
                pool.checkin(conn, Instant::now(), limits);
            }
        }
    }

    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        if let Some(data) = self.ready.take() {
            return Poll::Ready(Some(Ok(data)));
        }
        let Some(conn) = self.conn.as_mut() else {
            return Poll::Ready(None);
        };
        match conn.poll_body(cx, &mut self.framing) {
            Poll::Ready(Ok(Some(data))) => {
                self.timer.reset(self.read_timeout);
                self.release_if_done();
                Poll::Ready(Some(Ok(data)))
            }
            Poll::Ready(Ok(None)) => {
                self.release_if_done();
                Poll::Ready(None)
            }
            Poll::Ready(Err(error)) => {
                self.conn = None;
                tracing::debug!(%error, "upstream response body failed");
                Poll::Ready(Some(Err(Box::new(error))))
            }
            Poll::Pending => {
                ready!(self.timer.poll_expired(cx, self.read_timeout));
                self.conn = None;
                Poll::Ready(Some(Err(Box::new(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "proxy_read_timeout expired",
                )))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ready.is_none() && (self.conn.is_none() || self.is_done())
    }

    fn size_hint(&self) -> SizeHint {
        let ready = self.ready.as_ref().map_or(0, |b| b.len() as u64);
        match self.framing {
            Framing::Length(left) => SizeHint::with_exact(ready + left),
            Framing::Done => SizeHint::with_exact(ready),
            Framing::Chunked(_) | Framing::UntilClose => SizeHint::default(),
        }
    }
}

/// A file being sent: the whole file, one byte range of it, or several ranges framed as
/// `multipart/byteranges`. Ranges are read where they lie (a seek, then reads), one chunk at a
/// time; multipart part heads are written as their part comes, so memory stays bounded by the
/// number of ranges (16 bytes each), whatever the file size.
#[derive(Debug)]
pub(crate) struct FileBody {
    file: tokio::fs::File,
    /// The range being sent, as (offset, length) still to send.
    current: Option<(u64, u64)>,
    /// The ranges after it (none for a whole file or one range: no allocation).
    rest: std::vec::IntoIter<(u64, u64)>,
    /// The framing around each range when several are sent.
    multipart: Option<Multipart>,
    /// The head of the current part was sent (multipart only).
    head_sent: bool,
    /// Body bytes left, framing included.
    remaining: u64,
    /// Where the file's cursor is; `None` while unknown (a seek in flight or failed).
    cursor: Option<u64>,
    seeking: bool,
}

impl FileBody {
    /// The whole file (`len` bytes from its start).
    pub fn new(file: tokio::fs::File, len: u64) -> Self {
        Self::range(file, 0, len)
    }

    /// `len` bytes from `offset`.
    pub fn range(file: tokio::fs::File, offset: u64, len: u64) -> Self {
        FileBody {
            file,
            current: Some((offset, len)),
            rest: Vec::new().into_iter(),
            multipart: None,
            head_sent: false,
            remaining: len,
            // A file just opened is at its start.
            cursor: Some(0),
            seeking: false,
        }
    }

    /// Several ranges `(offset, length)` as a `multipart/byteranges` body framed by `multipart`.
    pub fn multipart(file: tokio::fs::File, ranges: Vec<(u64, u64)>, multipart: Multipart) -> Self {
        let remaining = multipart.body_len(&ranges);
        let mut rest = ranges.into_iter();
        FileBody {
            file,
            current: rest.next(),
            rest,
            multipart: Some(multipart),
            head_sent: false,
            remaining,
            cursor: Some(0),
            seeking: false,
        }
    }

    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        use tokio::io::AsyncSeek;
        loop {
            let Some((offset, len)) = self.current else {
                // After the last part: the closing boundary, once.
                return Poll::Ready(self.multipart.take().map(|m| {
                    let closing = m.closing();
                    self.remaining = self.remaining.saturating_sub(closing.len() as u64);
                    Ok(closing)
                }));
            };
            if let (Some(m), false) = (&self.multipart, self.head_sent) {
                self.head_sent = true;
                let head = m.part_head(offset, len);
                self.remaining = self.remaining.saturating_sub(head.len() as u64);
                return Poll::Ready(Some(Ok(head)));
            }
            if len == 0 {
                self.current = self.rest.next();
                self.head_sent = false;
                continue;
            }
            if self.cursor != Some(offset) {
                if !self.seeking {
                    self.cursor = None;
                    if let Err(error) =
                        Pin::new(&mut self.file).start_seek(io::SeekFrom::Start(offset))
                    {
                        return Poll::Ready(Some(Err(Box::new(error))));
                    }
                    self.seeking = true;
                }
                let done = ready!(Pin::new(&mut self.file).poll_complete(cx));
                self.seeking = false;
                match done {
                    Ok(at) if at == offset => self.cursor = Some(at),
                    Ok(_) => {
                        return Poll::Ready(Some(Err(Box::new(io::Error::other(
                            "seek landed elsewhere",
                        )))))
                    }
                    Err(error) => return Poll::Ready(Some(Err(Box::new(error)))),
                }
            }
            let want = FILE_CHUNK.min(usize::try_from(len).unwrap_or(FILE_CHUNK));
            let mut chunk = vec![0u8; want];
            let mut buf = ReadBuf::new(&mut chunk);
            if let Err(error) = ready!(Pin::new(&mut self.file).poll_read(cx, &mut buf)) {
                self.cursor = None;
                return Poll::Ready(Some(Err(Box::new(error))));
            }
            let n = buf.filled().len();
            if n == 0 {
                return Poll::Ready(Some(Err(Box::new(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank",
                )))));
            }
            chunk.truncate(n);
            let n = n as u64;
            self.cursor = Some(offset + n);
            self.remaining = self.remaining.saturating_sub(n);
            if n == len {
                self.current = self.rest.next();
                self.head_sent = false;
            } else {
                self.current = Some((offset + n, len - n));
            }
            return Poll::Ready(Some(Ok(Bytes::from(chunk))));
        }
    }
}

/// nginx's `multipart/byteranges` framing (`ngx_http_range_multipart_header`): before each
/// part `CRLF "--" BOUNDARY CRLF "Content-Type: " TYPE CRLF "Content-Range: bytes S-E/LEN"
/// CRLF CRLF`, after the last `CRLF "--" BOUNDARY "--" CRLF`.
#[derive(Debug)]
pub(crate) struct Multipart {
    /// `CRLF "--" BOUNDARY CRLF ["Content-Type: " TYPE CRLF] "Content-Range: bytes "`.
    head_prefix: Bytes,
    boundary_len: usize,
    /// The whole file's length, the `/LEN` of each Content-Range.
    file_len: u64,
}

impl Multipart {
    /// `content_type` empty: the parts have no Content-Type line, as nginx's.
    pub fn new(boundary: &str, content_type: &[u8], file_len: u64) -> Self {
        let mut head = Vec::with_capacity(64 + content_type.len());
        head.extend_from_slice(b"\r\n--");
        head.extend_from_slice(boundary.as_bytes());
        head.extend_from_slice(b"\r\n");
        if !content_type.is_empty() {
            head.extend_from_slice(b"Content-Type: ");
            head.extend_from_slice(content_type);
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"Content-Range: bytes ");
        Multipart {
            head_prefix: Bytes::from(head),
            boundary_len: boundary.len(),
            file_len,
        }
    }

    /// The head of the part holding `len` bytes from `offset`.
    fn part_head(&self, offset: u64, len: u64) -> Bytes {
        let range = format!(
            "{}-{}/{}\r\n\r\n",
            offset,
            (offset + len).saturating_sub(1),
            self.file_len
        );
        let mut head = Vec::with_capacity(self.head_prefix.len() + range.len());
        head.extend_from_slice(&self.head_prefix);
        head.extend_from_slice(range.as_bytes());
        Bytes::from(head)
    }

    /// `CRLF "--" BOUNDARY "--" CRLF`.
    fn closing(&self) -> Bytes {
        let boundary = self
            .head_prefix
            .get(4..4 + self.boundary_len)
            .unwrap_or(b"");
        let mut closing = Vec::with_capacity(self.boundary_len + 8);
        closing.extend_from_slice(b"\r\n--");
        closing.extend_from_slice(boundary);
        closing.extend_from_slice(b"--\r\n");
        Bytes::from(closing)
    }

    /// The body's length: every part with its head, and the closing boundary.
    pub fn body_len(&self, ranges: &[(u64, u64)]) -> u64 {
        let closing = self.boundary_len as u64 + 8;
        ranges.iter().fold(closing, |total, &(offset, len)| {
            let digits = decimal_len(offset)
                + decimal_len((offset + len).saturating_sub(1))
                + decimal_len(self.file_len);
            // "S-E/LEN" CRLF CRLF
            total + self.head_prefix.len() as u64 + digits + 2 + 4 + len
        })
    }
}

/// Digits of `n` in decimal.
fn decimal_len(mut n: u64) -> u64 {
    let mut digits = 1;
    while n >= 10 {
        n /= 10;
        digits += 1;
    }
    digits
}

const FILE_CHUNK: usize = 32 * 1024;

/// What the client receives.
#[derive(Debug)]
pub(crate) enum ResponseKind {
    Empty,
    Full(Option<Bytes>),
    Upstream(UpstreamBody),
    /// From an HTTP/2 upstream: frames pass as they are, trailers included (gRPC status).
    UpstreamH2(crate::upstream_h2::H2ResponseBody),
    File(FileBody),
    /// Another body, compressed as it streams (the gzip filter).
    Gzip(Box<crate::gzip_body::GzipBody>),
}

impl ResponseKind {
    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(match self {
            ResponseKind::Empty => None,
            ResponseKind::Full(bytes) => bytes.take().map(|b| Ok(Frame::data(b))),
            ResponseKind::Upstream(body) => {
                ready!(body.poll_data(cx)).map(|result| result.map(Frame::data))
            }
            ResponseKind::UpstreamH2(body) => ready!(body.poll_frame(cx)),
            ResponseKind::File(file) => {
                ready!(file.poll_data(cx)).map(|result| result.map(Frame::data))
            }
            ResponseKind::Gzip(body) => ready!(body.poll_frame(cx)),
        })
    }
}

/// Work done when the response is finished or abandoned.
#[derive(Debug, Default)]
pub(crate) struct Finish {
    pub track: Option<Arc<ConnTrack>>,
    pub lease: Option<PeerLease>,
    pub log: Option<Box<PendingLog>>,
    pub permits: Vec<halo_lb::limit::ConnPermit>,
}

/// The response body type of the whole proxy.
#[derive(Debug)]
pub(crate) struct ResponseBody {
    kind: ResponseKind,
    sent: u64,
    pub finish: Finish,
}

impl ResponseBody {
    pub fn new(kind: ResponseKind) -> Self {
        ResponseBody {
            kind,
            sent: 0,
            finish: Finish::default(),
        }
    }

    pub fn empty() -> Self {
        Self::new(ResponseKind::Empty)
    }

    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self::new(ResponseKind::Full(Some(bytes.into())))
    }

    /// From now on the body is compressed as it streams (level 1..=9).
    pub fn gzip(&mut self, level: u32) {
        let inner = std::mem::replace(&mut self.kind, ResponseKind::Empty);
        self.kind = ResponseKind::Gzip(Box::new(crate::gzip_body::GzipBody::new(inner, level)));
    }

    /// Body bytes expected (for Content-Length of generated responses).
    pub fn exact_len(&self) -> Option<u64> {
        match &self.kind {
            ResponseKind::Empty => Some(0),
            ResponseKind::Full(bytes) => Some(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            ResponseKind::Upstream(_) | ResponseKind::UpstreamH2(_) | ResponseKind::Gzip(_) => None,
            ResponseKind::File(file) => Some(file.remaining),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if let Some(log) = self.finish.log.take() {
            log.write(self.sent);
        }
        if let Some(track) = self.finish.track.take() {
            track.request_finished();
        }
        // `lease` and `permits` release themselves when dropped.
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let frame = ready!(this.kind.poll_frame(cx));
        if let Some(Ok(frame)) = &frame {
            if let Some(data) = frame.data_ref() {
                this.sent += data.len() as u64;
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            ResponseKind::Empty => true,
            ResponseKind::Full(bytes) => bytes.is_none(),
            ResponseKind::Upstream(body) => body.is_end_stream(),
            ResponseKind::UpstreamH2(body) => body.is_end_stream(),
            ResponseKind::File(file) => file.remaining == 0,
            ResponseKind::Gzip(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            ResponseKind::Upstream(body) => body.size_hint(),
            ResponseKind::UpstreamH2(body) => body.size_hint(),
            _ => self
                .exact_len()
                .map_or_else(SizeHint::default, SizeHint::with_exact),
        }
    }
}
