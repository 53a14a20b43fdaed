//! One client connection: hyper's HTTP/1 server plus a watchdog for `client_header_timeout`
//! and `keepalive_timeout`, and the Reading/Writing/Waiting bookkeeping of stub_status.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::body::ResponseBody;
use crate::runtime::Runtime;
use crate::server::Shared;
use crate::server_h1::Parsed;
use crate::stats::Counters;

const READING: u8 = 0;
const WRITING: u8 = 1;
const WAITING: u8 = 2;

/// Milliseconds since the first call, a cheap monotonic clock for connection timestamps.
pub(crate) fn clock_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// The state of one client connection as stub_status sees it.
#[derive(Debug)]
pub(crate) struct ConnTrack {
    counters: Arc<Counters>,
    phase: AtomicU8,
    pub(crate) since_ms: AtomicU64,
    /// Requests started on this connection (`$connection_requests`).
    pub requests: AtomicU64,
    /// Connection serial number (`$connection`).
    pub serial: u64,
    /// 1 + [`clock_ms`] when a write to the client started to block; 0 while writes proceed.
    write_blocked_since: AtomicU64,
    /// hyper keeps the connection to its end (an Upgrade tunnel follows, or the response closes
    /// it): its reads are never held back.
    hyper_to_the_end: AtomicBool,
}

impl ConnTrack {
    pub(crate) fn new(counters: Arc<Counters>, serial: u64) -> Self {
        counters.active.fetch_add(1, Ordering::Relaxed);
        // Like nginx, a connection that has not sent a byte yet counts as Waiting.
        counters.waiting.fetch_add(1, Ordering::Relaxed);
        ConnTrack {
            counters,
            phase: AtomicU8::new(WAITING),
            since_ms: AtomicU64::new(clock_ms()),
            requests: AtomicU64::new(0),
            serial,
            write_blocked_since: AtomicU64::new(0),
            hyper_to_the_end: AtomicBool::new(false),
        }
    }

    fn counter(&self, phase: u8) -> &AtomicU64 {
        match phase {
            READING => &self.counters.reading,
            WRITING => &self.counters.writing,
            _ => &self.counters.waiting,
        }
    }

    fn set_phase(&self, new: u8) {
        let old = self.phase.swap(new, Ordering::Relaxed);
        if old != new {
            self.counter(old).fetch_sub(1, Ordering::Relaxed);
            self.counter(new).fetch_add(1, Ordering::Relaxed);
        }
        self.since_ms.store(clock_ms(), Ordering::Relaxed);
    }

    /// A request head was read; returns the number of this request on the connection (1-based).
    pub fn request_started(&self) -> u64 {
        self.set_phase(WRITING);
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The response was sent (or abandoned): the connection waits for the next request.
    pub fn request_finished(&self) {
        self.set_phase(WAITING);
    }

    /// The connection does not come back to halo's codec: the request asked for an Upgrade
    /// (hyper hands the socket to a tunnel), or the response ends the connection (hyper may
    /// still read the rest of a request body first).
    pub fn last_request(&self) {
        self.hyper_to_the_end.store(true, Ordering::Relaxed);
    }

    /// The proxy-wide counters, for stub_status.
    pub fn counters_snapshot(&self) -> crate::stats::Stats {
        self.counters.snapshot()
    }

    pub(crate) fn bytes_arrived(&self) {
        if self.phase.load(Ordering::Relaxed) == WAITING {
            self.set_phase(READING);
        }
    }
}

impl Drop for ConnTrack {
    fn drop(&mut self) {
        let phase = self.phase.load(Ordering::Relaxed);
        self.counter(phase).fetch_sub(1, Ordering::Relaxed);
        self.counters.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The client socket as hyper sees it, noting when bytes arrive on an idle connection. Once
/// hyper's response is out, its reads are held back so the connection comes back to halo's
/// own codec for the next request.
#[derive(Debug)]
pub(crate) struct TrackedIo {
    stream: TcpStream,
    track: Arc<ConnTrack>,
    /// Bytes hyper had read but not used when the connection was parked; served first.
    prefix: bytes::Bytes,
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix.split_to(n));
            this.track.bytes_arrived();
            return Poll::Ready(Ok(()));
        }
        if this.track.phase.load(Ordering::Relaxed) == WAITING
            && !this.track.hyper_to_the_end.load(Ordering::Relaxed)
        {
            // hyper served its request and looks for the next one: that one is read by halo's
            // own codec. No waker is needed: `drive` parks the connection as soon as hyper
            // reports Pending in this state.
            return Poll::Pending;
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.track.bytes_arrived();
        }
        result
    }
}

impl TrackedIo {
    /// `send_timeout` bookkeeping: remember when writing started to block.
    fn note_write<T>(&self, result: &Poll<T>) {
        let blocked = &self.track.write_blocked_since;
        match result {
            Poll::Pending => {
                if blocked.load(Ordering::Relaxed) == 0 {
                    blocked.store(clock_ms() + 1, Ordering::Relaxed);
                }
            }
            Poll::Ready(_) => {
                if blocked.load(Ordering::Relaxed) != 0 {
                    blocked.store(0, Ordering::Relaxed);
                }
            }
        }
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.note_write(&result);
        result
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.note_write(&result);
        result
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// What a request handler knows about its connection.
#[derive(Debug)]
pub(crate) struct ConnInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The configured `listen` address this connection came through (routing key).
    pub listen: SocketAddr,
    pub track: Arc<ConnTrack>,
    /// The configuration in force when the connection was accepted, used if a reload removed
    /// this connection's listener.
    pub accepted_with: Arc<Runtime>,
    /// What the TLS handshake settled, on TLS connections.
    pub tls: Option<Arc<crate::tls_accept::TlsInfo>>,
    /// What the PROXY protocol header said, on `listen ... proxy_protocol` addresses.
    pub proxied: Option<Box<crate::proxy_protocol::Proxied>>,
}

#[derive(Clone)]
struct ConnService {
    shared: Arc<Shared>,
    info: Arc<ConnInfo>,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let shared = self.shared.clone();
        let info = self.info.clone();
        let (parts, body) = req.into_parts();
        Box::pin(async move { Ok(crate::handler::handle(&shared, &info, parts, Some(body)).await) })
    }
}

/// Shutdown signal values.
pub(crate) const RUNNING: u8 = 0;
pub(crate) const GRACEFUL: u8 = 1;
pub(crate) const HARD: u8 = 2;

/// The timeouts a connection watches.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    header: Duration,
    keepalive: Duration,
    send: Duration,
    /// The watchdog wakes at least every `period`, so a phase change is noticed in time: a
    /// timeout fires at most one period late.
    period: Duration,
}

enum Driven {
    Closed,
    Parked(hyper::server::conn::http1::Parts<TokioIo<TrackedIo>, ConnService>),
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Bytes offered to one read of a request head.
const READ_SIZE: usize = 4096;
/// Pipelined bytes read while a request is served, at most; more wait in the socket.
const PIPELINE_LIMIT: usize = 64 * 1024;

thread_local! {
    /// Read buffers of connections that went idle, for the next ones to wake up: an idle
    /// connection holds no buffer, and a busy one does not go to malloc for every request.
    static SPARE_BUFFERS: std::cell::RefCell<Vec<BytesMut>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn take_buffer() -> BytesMut {
    let mut buf = SPARE_BUFFERS
        .with(|spare| spare.borrow_mut().pop())
        .unwrap_or_default();
    // Reclaims the space before the start of the previous use; allocates only the first time.
    buf.reserve(READ_SIZE);
    buf
}

fn give_back_buffer(buf: &mut BytesMut) {
    let mut buf = std::mem::take(buf);
    buf.clear();
    if buf.capacity() == 0 || buf.capacity() > 4 * READ_SIZE {
        return;
    }
    SPARE_BUFFERS.with(|spare| {
        let mut spare = spare.borrow_mut();
        if spare.len() < 256 {
            spare.push(buf);
        }
    });
}

/// One non-blocking read of client bytes into `buf` (taking a spare buffer if it has none);
/// WouldBlock when nothing is there. A read that drained the socket clears tokio's readiness.
fn read_request_bytes(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    if buf.capacity() - buf.len() < READ_SIZE / 2 {
        if buf.capacity() == 0 {
            *buf = take_buffer();
        } else {
            buf.reserve(READ_SIZE);
        }
    }
    let room = buf.capacity() - buf.len();
    let n = stream.try_read_buf(buf)?;
    if n > 0 && n < room {
        crate::server_h1::forget_readable(stream);
    }
    Ok(n)
}

/// A connection just accepted, with what is known of it before the first byte of HTTP or TLS.
pub(crate) struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// The configured `listen` address it came through.
    pub listen: SocketAddr,
    /// Connection number (`$connection`).
    pub serial: u64,
    /// The PROXY protocol header's addresses, on `proxy_protocol` addresses.
    pub proxied: Option<Box<crate::proxy_protocol::Proxied>>,
}

/// Serves one accepted connection until it closes: halo's own HTTP/1.1 codec
/// ([`crate::server_h1`]) for plain GET/HEAD requests, hyper for any other request.
pub(crate) async fn serve(
    accepted: Accepted,
    shared: Arc<Shared>,
    runtime: Arc<Runtime>,
    shutdown: watch::Receiver<u8>,
) {
    let Accepted {
        stream,
        peer,
        listen,
        serial,
        proxied,
    } = accepted;
    let _ = stream.set_nodelay(true);
    let local = local_addr(&stream, listen);
    let track = Arc::new(ConnTrack::new(shared.counters.clone(), serial));
    let info = Arc::new(ConnInfo {
        peer,
        local,
        listen,
        track: track.clone(),
        accepted_with: runtime,
        tls: None,
        proxied,
    });
    serve_loop(stream, track, info, shared, shutdown, true).await;
}

/// The address a connection was accepted on. A listener on a specific address accepts on
/// exactly that address: no getsockname needed.
pub(crate) fn local_addr(stream: &TcpStream, listen: SocketAddr) -> SocketAddr {
    if listen.ip().is_unspecified() {
        stream.local_addr().unwrap_or(listen)
    } else {
        listen
    }
}

/// Serves a connection that comes back from the idle lot with bytes (or a close) to read.
pub(crate) async fn resume(
    stream: TcpStream,
    track: Arc<ConnTrack>,
    info: Arc<ConnInfo>,
    shared: Arc<Shared>,
) {
    let shutdown = shared.shutdown_receiver();
    serve_loop(stream, track, info, shared, shutdown, false).await;
}

impl Timeouts {
    fn of(cfg: &halo_config::http::HttpConfig) -> Timeouts {
        let keepalive_or_header = if cfg.keepalive_timeout.is_zero() {
            cfg.client_header_timeout
        } else {
            cfg.keepalive_timeout
        };
        Timeouts {
            header: cfg.client_header_timeout,
            keepalive: cfg.keepalive_timeout,
            send: cfg.send_timeout,
            period: nonzero(
                cfg.client_header_timeout
                    .min(cfg.send_timeout)
                    .min(keepalive_or_header),
            ),
        }
    }
}

/// What woke a connection waiting for bytes.
enum Wake {
    Readable,
    /// Quiet long enough: try the idle lot.
    Park,
    /// Nothing to do yet.
    Again,
    Close,
}

async fn serve_loop(
    stream: TcpStream,
    mut track: Arc<ConnTrack>,
    mut info: Arc<ConnInfo>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<u8>,
    fresh: bool,
) {
    let timeouts = Timeouts::of(&info.accepted_with.cfg);
    let peer = info.peer;
    let mut stream = stream;
    let mut buf = BytesMut::new();
    // A fresh connection waits for its first bytes without any HTTP state (nginx allocates
    // request buffers only once data arrives), within client_header_timeout.
    let mut idle_limit = if fresh {
        timeouts.header
    } else {
        timeouts.keepalive
    };
    let park_ms = millis(crate::idle_lot::PARK_AFTER);
    // One timer for the connection's life, moved only when it fires early.
    let sleep = tokio::time::sleep(idle_limit);
    tokio::pin!(sleep);
    loop {
        if !buf.is_empty() {
            // Boxed: a request's state is large and must not be part of what an idle
            // connection holds.
            let next = Box::pin(next_request(
                &stream,
                &mut buf,
                &shared,
                &info,
                timeouts.send,
                &mut shutdown,
            ))
            .await;
            match next {
                Next::Served => {
                    idle_limit = timeouts.keepalive;
                    continue;
                }
                Next::Close => return,
                Next::Partial => {}
                Next::H2c(settings) => {
                    // hyper serves the rest of the connection; its reads pass straight through.
                    track.last_request();
                    shared
                        .counters
                        .h2_connections
                        .fetch_add(1, Ordering::Relaxed);
                    let io = TrackedIo {
                        stream,
                        track: track.clone(),
                        prefix: buf.split().freeze(),
                    };
                    Box::pin(crate::hyper_conn::serve(
                        io,
                        info.clone(),
                        shared.clone(),
                        shutdown.clone(),
                        true,
                        settings,
                    ))
                    .await;
                    return;
                }
                Next::Fallback => {
                    track.bytes_arrived();
                    let io = TrackedIo {
                        stream,
                        track: track.clone(),
                        prefix: buf.split().freeze(),
                    };
                    give_back_buffer(&mut buf);
                    let service = ConnService {
                        shared: shared.clone(),
                        info: info.clone(),
                    };
                    let driving = Box::pin(drive(
                        &info.accepted_with.http1,
                        io,
                        service,
                        &shared,
                        &track,
                        timeouts,
                        &mut shutdown,
                    ));
                    let parts = match driving.await {
                        Driven::Closed => return,
                        Driven::Parked(parts) => parts,
                    };
                    let io = parts.io.into_inner();
                    stream = io.stream;
                    // What hyper read ahead and what it never took, in that order.
                    if !parts.read_buf.is_empty() || !io.prefix.is_empty() {
                        buf = take_buffer();
                        buf.extend_from_slice(&parts.read_buf);
                        buf.extend_from_slice(&io.prefix);
                    }
                    idle_limit = timeouts.keepalive;
                    continue;
                }
            }
        }
        // Waiting for bytes: an idle connection holds no buffer, and after PARK_AFTER not
        // even a task.
        if buf.is_empty() {
            give_back_buffer(&mut buf);
            let want = tokio::time::Instant::now() + crate::idle_lot::PARK_AFTER;
            if sleep.deadline() > want + crate::idle_lot::PARK_AFTER {
                sleep.as_mut().reset(want);
            }
        }
        loop {
            let wake = tokio::select! {
                biased;
                ready = stream.readable() => {
                    if ready.is_err() { Wake::Close } else { Wake::Readable }
                }
                () = &mut sleep => {
                    let limit = if buf.is_empty() { idle_limit } else { timeouts.header };
                    let limit_ms = millis(limit);
                    let elapsed = clock_ms().saturating_sub(track.since_ms.load(Ordering::Relaxed));
                    if elapsed >= limit_ms {
                        Counters::bump(&shared.counters.timed_out);
                        tracing::debug!(%peer, "closing connection: client_header_timeout or keepalive_timeout expired");
                        Wake::Close
                    } else if buf.is_empty() && elapsed >= park_ms && shared.idle.is_some() {
                        Wake::Park
                    } else {
                        let next = if buf.is_empty() && elapsed < park_ms { park_ms } else { limit_ms };
                        sleep.as_mut().reset(tokio::time::Instant::now() + Duration::from_millis(next.min(limit_ms) - elapsed));
                        Wake::Again
                    }
                }
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() != RUNNING { Wake::Close } else { Wake::Again }
                }
            };
            match wake {
                Wake::Readable => {}
                Wake::Again => continue,
                Wake::Close => return,
                Wake::Park => {
                    let limit_ms = millis(idle_limit);
                    let Some(lot) = shared.idle.as_ref() else {
                        continue;
                    };
                    match lot.park(stream, track, info, limit_ms) {
                        Ok(()) => return,
                        Err(back) => {
                            // Not parked (shutting down): wait here until the timeout.
                            (stream, track, info) = back;
                            let elapsed =
                                clock_ms().saturating_sub(track.since_ms.load(Ordering::Relaxed));
                            let left = limit_ms.saturating_sub(elapsed).max(1);
                            sleep
                                .as_mut()
                                .reset(tokio::time::Instant::now() + Duration::from_millis(left));
                            continue;
                        }
                    }
                }
            }
            match read_request_bytes(&stream, &mut buf) {
                Ok(0) => return,
                Ok(_) => {
                    track.bytes_arrived();
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Readiness without bytes (a fresh socket, or the state left by the last
                    // read): keep waiting, without a buffer.
                    if buf.is_empty() {
                        give_back_buffer(&mut buf);
                    }
                }
                Err(_) => return,
            }
        }
    }
}

/// What the bytes at the front of the buffer led to.
enum Next {
    /// A request was answered; the connection stays.
    Served,
    /// The connection ends.
    Close,
    /// Not a whole head yet.
    Partial,
    /// hyper takes this request.
    Fallback,
    /// The client opened with the HTTP/2 preface on an h2c address.
    H2c(halo_config::http::Http2Settings),
}

/// The client connection preface of HTTP/2 (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Parses the request at the front of `buf` and serves it if halo's codec takes it.
async fn next_request(
    stream: &TcpStream,
    buf: &mut BytesMut,
    shared: &Shared,
    info: &ConnInfo,
    send_timeout: Duration,
    shutdown: &mut watch::Receiver<u8>,
) -> Next {
    if let Some(settings) = info.accepted_with.h2c.get(&info.listen) {
        let n = buf.len().min(H2_PREFACE.len());
        if buf[..n] == H2_PREFACE[..n] {
            return if n == H2_PREFACE.len() {
                Next::H2c(*settings)
            } else {
                Next::Partial
            };
        }
    }
    match crate::server_h1::parse_request(buf, info.accepted_with.max_head) {
        Parsed::Request(parts, used, close) => {
            buf.advance(used);
            let keep = serve_request(
                stream,
                buf,
                parts,
                close,
                shared,
                info,
                send_timeout,
                shutdown,
            )
            .await;
            if keep {
                Next::Served
            } else {
                Next::Close
            }
        }
        Parsed::Reject(status) => {
            Counters::bump(&shared.counters.rejected_malformed);
            tracing::debug!(peer = %info.peer, %status, "refusing a request with ambiguous framing");
            let mut response = crate::handler::error_response(status);
            response.headers_mut().insert(
                http::header::SERVER,
                info.accepted_with.server_header.clone(),
            );
            let _ = crate::server_h1::write_response(
                stream,
                response,
                &http::Method::GET,
                true,
                false,
                send_timeout,
            )
            .await;
            Next::Close
        }
        Parsed::Fallback => Next::Fallback,
        Parsed::Partial => Next::Partial,
    }
}

/// Runs the handler for one request parsed by halo's codec and writes its response. Meanwhile
/// the client socket is watched: a client that goes away cancels the request (nginx's 499: the
/// upstream attempt is dropped without blaming the server); pipelined bytes are kept in `buf`.
/// Returns whether the connection may serve another request.
#[allow(clippy::too_many_arguments)]
async fn serve_request(
    stream: &TcpStream,
    buf: &mut BytesMut,
    parts: http::request::Parts,
    close: bool,
    shared: &Shared,
    info: &ConnInfo,
    send_timeout: Duration,
    shutdown: &mut watch::Receiver<u8>,
) -> bool {
    let method = parts.method.clone();
    let http10 = parts.version == http::Version::HTTP_10;
    // Scoped: the handler's state is gone before the response is written, so the two do not
    // add up in this (boxed, per request) future.
    let response = {
        let handling = crate::handler::handle(shared, info, parts, None);
        tokio::pin!(handling);
        let mut watching = true;
        let mut shutting_down = *shutdown.borrow() != RUNNING;
        loop {
            tokio::select! {
                biased;
                response = &mut handling => break response,
                ready = stream.readable(), if watching => {
                    if ready.is_err() {
                        return false;
                    }
                    if buf.len() >= PIPELINE_LIMIT {
                        watching = false;
                        continue;
                    }
                    match read_request_bytes(stream, buf) {
                        Ok(0) => {
                            tracing::debug!(peer = %info.peer, "client closed the connection before the response");
                            return false;
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => return false,
                    }
                }
                changed = shutdown.changed(), if !shutting_down => {
                    if changed.is_err() || *shutdown.borrow() == HARD {
                        return false;
                    }
                    shutting_down = true;
                }
            }
        }
    };
    let close = close
        || *shutdown.borrow() != RUNNING
        || info.accepted_with.cfg.keepalive_timeout.is_zero();
    match crate::server_h1::write_response(stream, response, &method, close, http10, send_timeout)
        .await
    {
        Ok(keep) => keep,
        Err(error) => {
            if error.kind() == io::ErrorKind::TimedOut {
                Counters::bump(&shared.counters.timed_out);
            }
            tracing::debug!(peer = %info.peer, %error, "writing the response failed");
            false
        }
    }
}

/// What one poll of hyper's connection said.
enum Event {
    /// The connection ended (closed, failed, or upgraded).
    Ended(Result<(), hyper::Error>),
    /// The response is out and hyper looks for the next request: halo's codec takes over.
    Served,
    /// The watchdog timer fired.
    Tick,
}

/// Runs hyper on the connection for one request (more if the client pipelined them into
/// hyper's buffer), then parks it: the next request is read by halo's own codec.
#[allow(clippy::too_many_arguments)]
async fn drive(
    builder: &hyper::server::conn::http1::Builder,
    io: TrackedIo,
    service: ConnService,
    shared: &Shared,
    track: &ConnTrack,
    timeouts: Timeouts,
    shutdown: &mut watch::Receiver<u8>,
) -> Driven {
    let peer = service.info.peer;
    let mut conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut shutting_down = *shutdown.borrow() != RUNNING;
    if shutting_down {
        Pin::new(&mut conn).graceful_shutdown();
    }
    let sleep = tokio::time::sleep(timeouts.period);
    tokio::pin!(sleep);
    loop {
        let event = tokio::select! {
            biased;
            event = std::future::poll_fn(|cx| {
                if let Poll::Ready(result) = Pin::new(&mut conn).poll(cx) {
                    return Poll::Ready(Event::Ended(result));
                }
                let served = track.phase.load(Ordering::Relaxed) == WAITING
                    && track.write_blocked_since.load(Ordering::Relaxed) == 0
                    && !track.hyper_to_the_end.load(Ordering::Relaxed);
                if served {
                    return Poll::Ready(Event::Served);
                }
                sleep.as_mut().poll(cx).map(|()| Event::Tick)
            }) => event,
            changed = shutdown.changed(), if !shutting_down => {
                let state = if changed.is_ok() { *shutdown.borrow() } else { HARD };
                if state == HARD {
                    return Driven::Closed;
                }
                if state == GRACEFUL {
                    shutting_down = true;
                    Pin::new(&mut conn).graceful_shutdown();
                }
                continue;
            }
        };
        match event {
            Event::Ended(result) => {
                if let Err(error) = result {
                    if error.is_parse() || error.is_parse_too_large() {
                        // hyper answered 400/414/431 itself (framing, oversized head).
                        Counters::bump(&shared.counters.rejected_malformed);
                    }
                    tracing::debug!(%peer, %error, "client connection ended with an error");
                }
                return Driven::Closed;
            }
            Event::Served => {
                if shutting_down {
                    // The response is out; shutting down, no next request is taken.
                    return Driven::Closed;
                }
                return match conn.into_parts() {
                    Some(parts) => Driven::Parked(parts),
                    None => Driven::Closed,
                };
            }
            Event::Tick => {
                let now = clock_ms();
                let blocked = track.write_blocked_since.load(Ordering::Relaxed);
                let phase = track.phase.load(Ordering::Relaxed);
                let (since, limit) = match phase {
                    READING => (
                        track.since_ms.load(Ordering::Relaxed),
                        Some(timeouts.header),
                    ),
                    WAITING => (
                        track.since_ms.load(Ordering::Relaxed),
                        Some(timeouts.keepalive),
                    ),
                    _ if blocked != 0 => (blocked - 1, Some(timeouts.send)),
                    _ => (now, None),
                };
                let elapsed = now.saturating_sub(since);
                let mut next = timeouts.period;
                if let Some(limit) = limit {
                    let limit_ms = millis(limit);
                    if elapsed >= limit_ms {
                        Counters::bump(&shared.counters.timed_out);
                        tracing::debug!(%peer, "closing connection: client_header_timeout, keepalive_timeout or send_timeout expired");
                        return Driven::Closed;
                    }
                    next = next.min(Duration::from_millis(limit_ms - elapsed));
                }
                sleep
                    .as_mut()
                    .reset(tokio::time::Instant::now() + nonzero(next));
            }
        }
    }
}

fn nonzero(d: Duration) -> Duration {
    if d.is_zero() {
        Duration::from_millis(1)
    } else {
        d
    }
}

#[cfg(test)]
mod tests {
    fn future_size<A, B, C, D, F: Fn(A, B, C, D) -> Fut, Fut>(_: &F) -> usize {
        std::mem::size_of::<Fut>()
    }

    /// What an idle keep-alive connection holds is mostly its task, whose size is the state of
    /// [`super::serve`]: the request handling must stay boxed out of it (inlined, it was 3.4 KB).
    #[test]
    fn an_idle_connection_state_stays_small() {
        let size = future_size(&super::serve);
        assert!(size <= 1024, "serve future is {size} bytes");
    }
}
