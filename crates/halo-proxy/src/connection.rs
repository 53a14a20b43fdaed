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
}

impl ConnTrack {
    fn new(counters: Arc<Counters>, serial: u64) -> Self {
        counters.active.fetch_add(1, Ordering::Relaxed);
        counters.reading.fetch_add(1, Ordering::Relaxed);
        ConnTrack {
            counters,
            phase: AtomicU8::new(READING),
            since_ms: AtomicU64::new(clock_ms()),
            requests: AtomicU64::new(0),
            serial,
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
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.track.bytes_arrived();
        }
        result
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
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
    let header_timeout = runtime.cfg.client_header_timeout;
    let keepalive_timeout = runtime.cfg.keepalive_timeout;
    let builder = runtime.http1.clone();
    let info = Arc::new(ConnInfo {
        peer,
        local,
        listen,
        track: track.clone(),
        accepted_with: runtime,
    });
    let io = TrackedIo {
        stream,
        track: track.clone(),
    };
    let service = ConnService {
        shared: shared.clone(),
        info,
    };
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let first_check = tokio::time::Instant::now() + nonzero(header_timeout);
    let sleep = tokio::time::sleep_until(first_check);
    tokio::pin!(sleep);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            biased;
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "client connection ended with an error");
                }
                break;
            }
            changed = shutdown.changed(), if !shutting_down => {
                let state = if changed.is_ok() { *shutdown.borrow() } else { HARD };
                if state == HARD {
                    break;
                }
                if state == GRACEFUL {
                    shutting_down = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = &mut sleep => {
                let now = clock_ms();
                let since = track.since_ms.load(Ordering::Relaxed);
                let limit = match track.phase.load(Ordering::Relaxed) {
                    READING => Some(header_timeout),
                    WAITING => Some(keepalive_timeout),
                    _ => None,
                };
                match limit {
                    Some(limit) => {
                        let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
                        if now.saturating_sub(since) >= limit_ms {
                            Counters::bump(&shared.counters.timed_out);
                            tracing::debug!(%peer, "closing connection: client_header_timeout or keepalive_timeout expired");
                            break;
                        }
                        let left = Duration::from_millis(limit_ms - now.saturating_sub(since));
                        sleep.as_mut().reset(tokio::time::Instant::now() + left);
                    }
                    None => sleep.as_mut().reset(tokio::time::Instant::now() + nonzero(header_timeout)),
                }
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
