//! One client connection: hyper's HTTP/1 server plus a watchdog for `client_header_timeout`
//! and `keepalive_timeout`, and the Reading/Writing/Waiting bookkeeping of stub_status.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::body::ResponseBody;
use crate::runtime::Runtime;
use crate::server::Shared;
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
    since_ms: AtomicU64,
    /// Requests started on this connection (`$connection_requests`).
    pub requests: AtomicU64,
    /// Connection serial number (`$connection`).
    pub serial: u64,
    /// 1 + [`clock_ms`] when a write to the client started to block; 0 while writes proceed.
    write_blocked_since: AtomicU64,
}

impl ConnTrack {
    fn new(counters: Arc<Counters>, serial: u64) -> Self {
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

    /// The proxy-wide counters, for stub_status.
    pub fn counters_snapshot(&self) -> crate::stats::Stats {
        self.counters.snapshot()
    }

    fn bytes_arrived(&self) {
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

/// The client socket, noting when bytes arrive on an idle connection.
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
        Box::pin(async move { Ok(crate::handler::handle(&shared, &info, req).await) })
    }
}

/// Shutdown signal values.
pub(crate) const RUNNING: u8 = 0;
pub(crate) const GRACEFUL: u8 = 1;
pub(crate) const HARD: u8 = 2;

/// Idle time after which a keepalive connection gives its HTTP buffers back: hyper keeps an
/// 8 KiB read and an 8 KiB write buffer per connection; a parked connection only waits for
/// readability (nginx likewise frees request buffers of idle keepalive connections,
/// `ngx_http_set_keepalive`).
const PARK_AFTER: Duration = Duration::from_millis(50);

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

/// Serves one accepted connection until it closes.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    listen: SocketAddr,
    shared: Arc<Shared>,
    serial: u64,
    mut shutdown: watch::Receiver<u8>,
) {
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().unwrap_or(listen);
    let runtime = shared.runtime.load_full();
    let track = Arc::new(ConnTrack::new(shared.counters.clone(), serial));
    let cfg = &runtime.cfg;
    let keepalive_or_header = if cfg.keepalive_timeout.is_zero() {
        cfg.client_header_timeout
    } else {
        cfg.keepalive_timeout
    };
    let timeouts = Timeouts {
        header: cfg.client_header_timeout,
        keepalive: cfg.keepalive_timeout,
        send: cfg.send_timeout,
        period: nonzero(
            cfg.client_header_timeout
                .min(cfg.send_timeout)
                .min(keepalive_or_header),
        ),
    };
    let builder = runtime.http1.clone();
    let info = Arc::new(ConnInfo {
        peer,
        local,
        listen,
        track: track.clone(),
        accepted_with: runtime,
    });
    let mut io = TrackedIo {
        stream,
        track: track.clone(),
        prefix: bytes::Bytes::new(),
    };
    let mut service = ConnService {
        shared: shared.clone(),
        info,
    };
    // A fresh connection waits for its first bytes without any HTTP state too (nginx allocates
    // request buffers only once data arrives), within client_header_timeout.
    let mut wait_limit = timeouts.header;
    loop {
        if io.prefix.is_empty() {
            let idle_for = clock_ms().saturating_sub(track.since_ms.load(Ordering::Relaxed));
            let left = Duration::from_millis(millis(wait_limit).saturating_sub(idle_for));
            let mut one = [0u8; 1];
            tokio::select! {
                // peek, not readable(): tokio may report a fresh socket readable before any
                // byte arrived. EOF (Ok(0)) also wakes us; hyper then sees the close.
                peeked = io.stream.peek(&mut one) => {
                    if peeked.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep(left) => {
                    Counters::bump(&shared.counters.timed_out);
                    return;
                }
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() != RUNNING {
                return;
            }
        }
        let driving = Box::pin(drive(
            &builder,
            io,
            service,
            &shared,
            &track,
            timeouts,
            peer,
            &mut shutdown,
        ));
        let parts = match driving.await {
            Driven::Closed => return,
            Driven::Parked(parts) => parts,
        };
        io = parts.io.into_inner();
        service = parts.service;
        // An empty `read_buf` may still hold hyper's whole read buffer alive: copy what is
        // left (normally nothing) so the buffer itself is freed.
        io.prefix = if parts.read_buf.is_empty() {
            bytes::Bytes::new()
        } else {
            bytes::Bytes::copy_from_slice(&parts.read_buf)
        };
        wait_limit = timeouts.keepalive;
    }
}

/// Runs hyper on the connection until it closes, or parks it once idle long enough.
#[allow(clippy::too_many_arguments)]
async fn drive(
    builder: &hyper::server::conn::http1::Builder,
    io: TrackedIo,
    service: ConnService,
    shared: &Shared,
    track: &ConnTrack,
    timeouts: Timeouts,
    peer: SocketAddr,
    shutdown: &mut watch::Receiver<u8>,
) -> Driven {
    let mut conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut shutting_down = *shutdown.borrow() != RUNNING;
    if shutting_down {
        Pin::new(&mut conn).graceful_shutdown();
    }
    let sleep = tokio::time::sleep(timeouts.period);
    tokio::pin!(sleep);
    let mut waiting_seen = track.phase.load(Ordering::Relaxed) == WAITING;
    loop {
        let event = tokio::select! {
            biased;
            event = std::future::poll_fn(|cx| {
                if let Poll::Ready(result) = Pin::new(&mut conn).poll(cx) {
                    return Poll::Ready(Some(result));
                }
                // A response just finished: look again when the connection may be parked.
                let waiting = track.phase.load(Ordering::Relaxed) == WAITING;
                if waiting && !waiting_seen {
                    // Re-arming the timer costs a timer-wheel update, so only when the current
                    // deadline is far: a busy connection re-arms at most once per PARK_AFTER.
                    let want = tokio::time::Instant::now() + PARK_AFTER;
                    if sleep.deadline() > want + PARK_AFTER {
                        sleep.as_mut().reset(want);
                    }
                }
                waiting_seen = waiting;
                sleep.as_mut().poll(cx).map(|()| None)
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
            Some(result) => {
                if let Err(error) = result {
                    if error.is_parse() || error.is_parse_too_large() {
                        // hyper answered 400/414/431 itself (framing, oversized head).
                        Counters::bump(&shared.counters.rejected_malformed);
                    }
                    tracing::debug!(%peer, %error, "client connection ended with an error");
                }
                return Driven::Closed;
            }
            None => {
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
                if phase == WAITING && blocked == 0 && !shutting_down {
                    let park_ms = millis(PARK_AFTER);
                    if elapsed >= park_ms {
                        if let Some(parts) = conn.into_parts() {
                            return Driven::Parked(parts);
                        }
                        return Driven::Closed;
                    }
                    next = next.min(Duration::from_millis(park_ms - elapsed));
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
