//! A client connection served wholly by hyper: TLS connections (HTTP/1.1 or HTTP/2 by ALPN)
//! and cleartext HTTP/2 with prior knowledge. Plain HTTP/1.1 keeps halo's own codec
//! (`connection.rs`); these paths trade a little speed for hyper's completeness.
//!
//! A watchdog beside hyper applies nginx's connection timeouts: `client_header_timeout` while
//! a request head is being read, `keepalive_timeout` while no request is in flight, and
//! `keepalive_requests` (HTTP/2: GOAWAY after that many streams). Shutdown and reload send
//! GOAWAY and let open streams finish. A client that keeps cancelling streams it opened (the
//! HTTP/2 rapid reset attack, CVE-2023-44487) loses its connection, as with nginx.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use halo_config::http::Http2Settings;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Notify};

use crate::body::ResponseBody;
use crate::connection::{clock_ms, ConnInfo, GRACEFUL, HARD, RUNNING};
use crate::server::Shared;
use crate::stats::Counters;

/// Per-connection bookkeeping shared by the watchdog, the I/O wrapper and every stream.
#[derive(Debug, Default)]
struct Liveness {
    /// [`clock_ms`] of the last byte read or written.
    last_io_ms: AtomicU64,
    /// Requests being handled now.
    in_flight: AtomicU32,
    /// Requests started on this connection.
    started: AtomicU64,
    /// Requests dropped before their handler finished (the client reset the stream), in the
    /// current one-second window, and that window's start.
    cancelled: AtomicU32,
    cancelled_window_ms: AtomicU64,
    /// Set when the connection must go: the watchdog acts on it.
    doomed: AtomicBool,
    /// Set when no more requests should be taken (keepalive_requests reached).
    enough: AtomicBool,
    wake: Notify,
}

/// The client stream, noting activity for the idle timeout.
struct Watched<S> {
    inner: S,
    live: Arc<Liveness>,
    info: Arc<ConnInfo>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.live.last_io_ms.store(clock_ms(), Ordering::Relaxed);
            this.info.track.bytes_arrived();
        }
        result
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.live.last_io_ms.store(clock_ms(), Ordering::Relaxed);
        }
        result
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.live.last_io_ms.store(clock_ms(), Ordering::Relaxed);
        }
        result
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Counts a request in flight; a drop before [`InFlight::finish`] is a cancelled stream.
struct InFlight {
    live: Arc<Liveness>,
    finished: bool,
    reset_limit: u32,
}

impl InFlight {
    fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.live.in_flight.fetch_sub(1, Ordering::Relaxed);
        if self.finished {
            return;
        }
        let now = clock_ms();
        let window = self.live.cancelled_window_ms.load(Ordering::Relaxed);
        if now.saturating_sub(window) >= 1000 {
            self.live.cancelled_window_ms.store(now, Ordering::Relaxed);
            self.live.cancelled.store(1, Ordering::Relaxed);
        } else if self.live.cancelled.fetch_add(1, Ordering::Relaxed) + 1 > self.reset_limit {
            self.live.doomed.store(true, Ordering::Relaxed);
            self.live.wake.notify_one();
        }
    }
}

#[derive(Clone)]
struct Service {
    shared: Arc<Shared>,
    info: Arc<ConnInfo>,
    live: Arc<Liveness>,
    keepalive_requests: u64,
    reset_limit: u32,
}

impl hyper::service::Service<Request<Incoming>> for Service {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let shared = self.shared.clone();
        let info = self.info.clone();
        let live = self.live.clone();
        live.in_flight.fetch_add(1, Ordering::Relaxed);
        let started = live.started.fetch_add(1, Ordering::Relaxed) + 1;
        if started >= self.keepalive_requests && !live.enough.swap(true, Ordering::Relaxed) {
            live.wake.notify_one();
        }
        let guard = InFlight {
            live,
            finished: false,
            reset_limit: self.reset_limit,
        };
        let (parts, body) = req.into_parts();
        Box::pin(async move {
            let refused = info.tls.as_ref().is_some_and(|t| t.refuse_requests);
            let response = if refused {
                // nginx's 495/496 go out as 400 and close the connection.
                info.track.request_started();
                let mut response = crate::handler::error_response(http::StatusCode::BAD_REQUEST);
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
                response.body_mut().finish.track = Some(info.track.clone());
                response
            } else {
                crate::handler::handle(&shared, &info, parts, Some(body)).await
            };
            guard.finish();
            Ok(response)
        })
    }
}

fn builder(info: &ConnInfo, h2: &Http2Settings) -> auto::Builder<TokioExecutor> {
    let cfg = &info.accepted_with.cfg;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    let max_head = info.accepted_with.max_head;
    builder
        .http1()
        .keep_alive(!cfg.keepalive_timeout.is_zero())
        // hyper cannot carry an upstream's own spelling: Title-Case is what nginx's
        // and most upstreams' names look like (halo's codec keeps the exact spelling).
        .title_case_headers(true)
        .max_buf_size(max_head.max(8192))
        .timer(TokioTimer::new());
    let window = |size: u64| u32::try_from(size.clamp(65_535, 1 << 30)).unwrap_or(1 << 30);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(h2.max_concurrent_streams)
        .initial_stream_window_size(window(h2.body_preread_size))
        .initial_connection_window_size(window(h2.recv_buffer_size))
        .max_frame_size(16_384)
        .max_header_list_size(u32::try_from(max_head).unwrap_or(u32::MAX))
        .max_send_buf_size(usize::try_from(h2.chunk_size.max(16_384) * 8).unwrap_or(1 << 20))
        .max_pending_accept_reset_streams(Some(20))
        .max_local_error_reset_streams(Some(1024));
    builder
}

/// Serves `io` with hyper until it closes: HTTP/2 when `h2`, else HTTP/1.1 (with upgrades).
pub(crate) async fn serve<S>(
    io: S,
    info: Arc<ConnInfo>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<u8>,
    h2: bool,
    h2_settings: Http2Settings,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let cfg = info.accepted_with.cfg.clone();
    let live = Arc::new(Liveness::default());
    live.last_io_ms.store(clock_ms(), Ordering::Relaxed);
    let service = Service {
        shared: shared.clone(),
        info: info.clone(),
        live: live.clone(),
        keepalive_requests: if h2 {
            cfg.keepalive_requests.max(1)
        } else {
            u64::MAX
        },
        // nginx closes a connection after max(concurrent streams, 100) refused streams.
        reset_limit: h2_settings.max_concurrent_streams.max(100),
    };
    let io = Watched {
        inner: io,
        live: live.clone(),
        info: info.clone(),
    };
    let builder = builder(&info, &h2_settings);
    let builder = if h2 {
        builder.http2_only()
    } else {
        builder.http1_only()
    };
    let conn = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .into_owned();
    tokio::pin!(conn);
    let peer = info.peer;
    let keepalive = cfg.keepalive_timeout;
    let header = cfg.client_header_timeout;
    let tick = Duration::from_millis(500).min(keepalive.max(Duration::from_millis(10)));
    let mut ticker = tokio::time::interval(tick);
    let mut closing = false;
    let mut closing_since = 0u64;
    if *shutdown.borrow() != RUNNING {
        conn.as_mut().graceful_shutdown();
        closing = true;
        closing_since = clock_ms();
    }
    loop {
        tokio::select! {
            biased;
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "client connection ended with an error");
                }
                return;
            }
            () = live.wake.notified() => {}
            changed = shutdown.changed(), if !closing => {
                let state = if changed.is_ok() { *shutdown.borrow() } else { HARD };
                if state == HARD {
                    return;
                }
                if state == GRACEFUL {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                    closing_since = clock_ms();
                }
                continue;
            }
            _ = ticker.tick() => {}
        }
        if live.doomed.load(Ordering::Relaxed) {
            Counters::bump(&shared.counters.h2_reset_floods);
            tracing::warn!(%peer, "closing an HTTP/2 connection that keeps resetting its streams");
            return;
        }
        if live.enough.load(Ordering::Relaxed) && !closing {
            // keepalive_requests reached: GOAWAY, let the open streams finish.
            conn.as_mut().graceful_shutdown();
            closing = true;
            closing_since = clock_ms();
        }
        let now = clock_ms();
        let idle_ms = now.saturating_sub(live.last_io_ms.load(Ordering::Relaxed));
        let in_flight = live.in_flight.load(Ordering::Relaxed);
        if in_flight == 0 {
            let started = live.started.load(Ordering::Relaxed);
            // Before the first request the head must come within client_header_timeout; between
            // requests the connection may idle for keepalive_timeout.
            let limit = if started == 0 { header } else { keepalive };
            if idle_ms >= millis(limit) {
                Counters::bump(&shared.counters.timed_out);
                tracing::debug!(%peer, "closing connection: client_header_timeout or keepalive_timeout expired");
                if h2 && !closing {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                    closing_since = now;
                    continue;
                }
                return;
            }
        }
        // A GOAWAY'd connection gets a bounded time to finish; then it is cut.
        if closing && in_flight == 0 && now.saturating_sub(closing_since) > 1000 {
            return;
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(live: &Arc<Liveness>, limit: u32) -> InFlight {
        live.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight {
            live: live.clone(),
            finished: false,
            reset_limit: limit,
        }
    }

    /// CVE-2023-44487: streams the client cancels while their handler runs count against the
    /// connection; past the limit in one second it is doomed. Finished requests never count.
    #[test]
    fn cancelled_streams_past_the_limit_doom_the_connection() {
        let live = Arc::new(Liveness::default());
        for _ in 0..1000 {
            start(&live, 100).finish();
        }
        assert!(!live.doomed.load(Ordering::Relaxed));
        for _ in 0..100 {
            drop(start(&live, 100));
        }
        assert!(
            !live.doomed.load(Ordering::Relaxed),
            "100 cancellations are within the limit"
        );
        drop(start(&live, 100));
        assert!(live.doomed.load(Ordering::Relaxed));
        assert_eq!(live.in_flight.load(Ordering::Relaxed), 0);
    }
}
