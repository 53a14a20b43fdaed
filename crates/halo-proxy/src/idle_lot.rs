//! The idle lot: keep-alive connections that have been quiet for a while, held without a task.
//!
//! A connection waiting for its next request needs nothing but its socket and its bookkeeping,
//! yet a tokio task costs about a kilobyte (its future, its header, the reactor's per-socket
//! state). After [`PARK_AFTER`] of silence a connection leaves tokio's reactor and joins this
//! lot: its socket sits in an epoll set of our own (a `mio::Poll`, itself watched by tokio as one
//! file descriptor) and the connection costs a map entry. When bytes (or a close) arrive, the
//! connection gets a task again and its next request is served as usual. The lot also closes
//! connections whose `keepalive_timeout` expired, once a second, and all of them at shutdown.
//!
//! nginx keeps an idle keep-alive connection in about 0.65 KB (its connection and event
//! structures, its request buffers freed, `ngx_http_set_keepalive`); halo's parked connection
//! is smaller (see `bench/run`).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::net::TcpStream;

use crate::connection::{clock_ms, ConnInfo, ConnTrack};
use crate::server::Shared;
use crate::stats::Counters;

/// Quiet time after which a keep-alive connection is parked.
pub(crate) const PARK_AFTER: Duration = Duration::from_millis(250);

/// A parked connection.
#[derive(Debug)]
struct Parked {
    stream: mio::net::TcpStream,
    state: Held,
    /// `keepalive_timeout` in milliseconds, counted from the connection's last activity.
    limit_ms: u64,
}

/// A parked connection's bookkeeping: moved into the lot's table when nothing else refers to it,
/// so the heap pages of idle connections empty out completely and go back to the kernel.
#[derive(Debug)]
enum Held {
    Inline(ConnTrack, ConnInfoRest),
    Shared(Arc<ConnTrack>, Arc<ConnInfo>),
}

/// [`ConnInfo`] without its `track`.
#[derive(Debug)]
struct ConnInfoRest {
    peer: std::net::SocketAddr,
    local: std::net::SocketAddr,
    listen: std::net::SocketAddr,
    accepted_with: Arc<crate::runtime::Runtime>,
    proxied: Option<Box<crate::proxy_protocol::Proxied>>,
}

impl ConnInfoRest {
    fn with_track(self, track: Arc<ConnTrack>) -> Arc<ConnInfo> {
        Arc::new(ConnInfo {
            peer: self.peer,
            local: self.local,
            listen: self.listen,
            track,
            accepted_with: self.accepted_with,
            tls: None,
            proxied: self.proxied,
        })
    }
}

impl Held {
    fn new(track: Arc<ConnTrack>, info: Arc<ConnInfo>) -> Held {
        drop(track);
        let info = match Arc::try_unwrap(info) {
            Ok(info) => info,
            Err(info) => {
                let track = info.track.clone();
                return Held::Shared(track, info);
            }
        };
        let ConnInfo {
            peer,
            local,
            listen,
            track,
            accepted_with,
            tls: _,
            proxied,
        } = info;
        let rest = ConnInfoRest {
            peer,
            local,
            listen,
            accepted_with,
            proxied,
        };
        match Arc::try_unwrap(track) {
            Ok(track) => Held::Inline(track, rest),
            Err(track) => {
                let info = rest.with_track(track.clone());
                Held::Shared(track, info)
            }
        }
    }

    fn since_ms(&self) -> u64 {
        let track = match self {
            Held::Inline(track, _) => track,
            Held::Shared(track, _) => track,
        };
        track.since_ms.load(Ordering::Relaxed)
    }

    fn into_shared(self) -> (Arc<ConnTrack>, Arc<ConnInfo>) {
        match self {
            Held::Shared(track, info) => (track, info),
            Held::Inline(track, rest) => {
                let track = Arc::new(track);
                let info = rest.with_track(track.clone());
                (track, info)
            }
        }
    }
}

#[derive(Debug, Default)]
struct Lot {
    next: usize,
    parked: HashMap<usize, Parked>,
    closed: bool,
}

/// Where idle connections are parked; see the module documentation.
#[derive(Debug)]
pub(crate) struct IdleLot {
    registry: mio::Registry,
    lot: Mutex<Lot>,
    counters: Arc<Counters>,
}

/// The lot's epoll set, as a file descriptor tokio can watch.
struct PollFd(mio::Poll);

impl AsRawFd for PollFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl IdleLot {
    /// Creates the lot; [`run`] must then be spawned with the returned poller.
    pub fn new(counters: Arc<Counters>) -> io::Result<(Arc<IdleLot>, mio::Poll)> {
        let poll = mio::Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let lot = IdleLot {
            registry,
            lot: Mutex::new(Lot::default()),
            counters,
        };
        Ok((Arc::new(lot), poll))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lot> {
        self.lot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Parks a quiet connection. Gives everything back when the lot does not take it (shutting
    /// down, or the socket could not be moved), for the caller to keep serving it. The caller
    /// must hold no other reference to `track` and `info` for them to move into the lot.
    pub fn park(
        &self,
        stream: TcpStream,
        track: Arc<ConnTrack>,
        info: Arc<ConnInfo>,
        limit_ms: u64,
    ) -> Result<(), Unparked> {
        if self.lock().closed {
            return Err((stream, track, info));
        }
        let std_stream = match stream.into_std() {
            Ok(s) => s,
            Err(error) => {
                tracing::debug!(%error, "could not take a socket out of the reactor");
                return Ok(());
            }
        };
        let mut stream = mio::net::TcpStream::from_std(std_stream);
        let mut lot = self.lock();
        if lot.closed {
            drop(lot);
            return back_to_tokio(stream, track, info);
        }
        let token = lot.next;
        lot.next = lot.next.wrapping_add(1);
        if let Err(error) =
            self.registry
                .register(&mut stream, mio::Token(token), mio::Interest::READABLE)
        {
            tracing::debug!(%error, "could not park a connection");
            drop(lot);
            return back_to_tokio(stream, track, info);
        }
        lot.parked.insert(
            token,
            Parked {
                stream,
                state: Held::new(track, info),
                limit_ms,
            },
        );
        self.counters.parked.fetch_add(1, Ordering::Relaxed);
        self.counters.parks.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Takes a parked connection out of the lot (it became readable).
    fn unpark(&self, token: usize) -> Option<Parked> {
        let mut parked = self.lock().parked.remove(&token)?;
        self.counters.parked.fetch_sub(1, Ordering::Relaxed);
        let _ = self.registry.deregister(&mut parked.stream);
        Some(parked)
    }

    /// Closes every parked connection whose keepalive_timeout expired; returns how many.
    fn expire(&self, now_ms: u64) -> u64 {
        let expired: Vec<Parked> = {
            let mut lot = self.lock();
            let keys: Vec<usize> = lot
                .parked
                .iter()
                .filter(|(_, p)| now_ms.saturating_sub(p.state.since_ms()) >= p.limit_ms)
                .map(|(k, _)| *k)
                .collect();
            keys.iter().filter_map(|k| lot.parked.remove(k)).collect()
        };
        let n = expired.len() as u64;
        self.counters.parked.fetch_sub(n, Ordering::Relaxed);
        for mut parked in expired {
            let _ = self.registry.deregister(&mut parked.stream);
        }
        n
    }

    /// Closes every parked connection and takes no more (shutdown).
    fn close_all(&self) {
        let all: Vec<Parked> = {
            let mut lot = self.lock();
            lot.closed = true;
            lot.parked.drain().map(|(_, p)| p).collect()
        };
        self.counters
            .parked
            .fetch_sub(all.len() as u64, Ordering::Relaxed);
        for mut parked in all {
            let _ = self.registry.deregister(&mut parked.stream);
        }
    }
}

/// A connection the lot did not take, given back whole.
pub(crate) type Unparked = (TcpStream, Arc<ConnTrack>, Arc<ConnInfo>);

fn back_to_tokio(
    stream: mio::net::TcpStream,
    track: Arc<ConnTrack>,
    info: Arc<ConnInfo>,
) -> Result<(), Unparked> {
    let std_stream = into_std(stream);
    match TcpStream::from_std(std_stream) {
        Ok(stream) => Err((stream, track, info)),
        Err(error) => {
            tracing::debug!(%error, "could not put a socket back into the reactor");
            Ok(())
        }
    }
}

fn into_std(stream: mio::net::TcpStream) -> std::net::TcpStream {
    std::net::TcpStream::from(std::os::fd::OwnedFd::from(stream))
}

/// The lot's task: wakes parked connections that became readable (each gets a task again),
/// closes expired ones once a second, and closes all of them when the proxy shuts down.
pub(crate) async fn run(lot: Arc<IdleLot>, poll: mio::Poll, shared: Weak<Shared>) {
    // `with_interest` is deprecated because a bare `AsRawFd` may close its descriptor while it is
    // registered; `PollFd` owns the epoll descriptor, which stays open until the `AsyncFd` has
    // deregistered it on drop. (The replacement, `register_with_interest`, is `unsafe`.)
    #[allow(deprecated)]
    let registered = AsyncFd::with_interest(PollFd(poll), tokio::io::Interest::READABLE);
    let mut poll = match registered {
        Ok(fd) => fd,
        Err(error) => {
            tracing::warn!(%error, "idle connections cannot be parked");
            lot.close_all();
            return;
        }
    };
    let mut shutdown = match shared.upgrade() {
        Some(shared) => shared.shutdown_receiver(),
        None => return,
    };
    let mut events = mio::Events::with_capacity(256);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            ready = poll.readable_mut() => {
                let Ok(mut guard) = ready else {
                    lot.close_all();
                    return;
                };
                events.clear();
                let polled = guard.get_inner_mut().0.poll(&mut events, Some(Duration::ZERO));
                if events.is_empty() || polled.is_err() {
                    guard.clear_ready();
                }
                drop(guard);
                let Some(shared) = shared.upgrade() else {
                    lot.close_all();
                    return;
                };
                for event in &events {
                    if let Some(parked) = lot.unpark(event.token().0) {
                        match TcpStream::from_std(into_std(parked.stream)) {
                            Ok(stream) => {
                                let (track, info) = parked.state.into_shared();
                                tokio::spawn(crate::connection::resume(
                                    stream,
                                    track,
                                    info,
                                    shared.clone(),
                                ));
                            }
                            Err(error) => {
                                tracing::debug!(%error, "could not wake a parked connection");
                            }
                        }
                    }
                }
            }
            _ = tick.tick() => {
                let expired = lot.expire(clock_ms());
                if expired > 0 {
                    if let Some(shared) = shared.upgrade() {
                        for _ in 0..expired {
                            Counters::bump(&shared.counters.timed_out);
                        }
                    }
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() != crate::connection::RUNNING {
                    lot.close_all();
                    return;
                }
            }
        }
    }
}
