//! Upstream connections: connecting with a timeout and keeping idle HTTP/1.1 connections per peer
//! address for reuse (nginx `keepalive`, on by default like nginx >= 1.29.7), shared by all threads.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

use crate::body::RequestBody;

/// Limits of one upstream's pooled connections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolLimits {
    /// Maximum idle connections per peer (0 = no pooling).
    pub max_idle: usize,
    /// Idle time after which a pooled connection is discarded.
    pub idle_timeout: Duration,
    /// Requests after which a connection is not reused.
    pub max_requests: u64,
    /// Lifetime after which a connection is not reused.
    pub max_lifetime: Duration,
}

/// A connection to an upstream peer, ready to send one request.
#[derive(Debug)]
pub(crate) struct UpstreamConn {
    pub sender: SendRequest<RequestBody>,
    created: Instant,
    requests: u64,
    /// Came out of the idle pool (a failure before any byte was answered gives the try back).
    pub reused: bool,
}

/// How long data we sent to an upstream may stay unacknowledged before the kernel gives up on the
/// connection (TCP_USER_TIMEOUT). A backend host that vanishes (its link goes down: no RST, no
/// answer) would otherwise hold a request until `proxy_read_timeout` (60 s by default); with this
/// the request fails over to the next server in about this long. A live host acknowledges within
/// milliseconds on a LAN, however slowly its application answers.
pub(crate) const UNACKED_DATA_TIMEOUT: Duration = Duration::from_millis(1500);

/// Why connecting failed.
#[derive(Debug)]
pub(crate) enum ConnectError {
    Timeout,
    Io(std::io::Error),
    Handshake(hyper::Error),
}

impl UpstreamConn {
    /// Opens a new connection and spawns its driver task.
    pub async fn connect(
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<UpstreamConn, ConnectError> {
        let connecting = async {
            let socket = socket2::Socket::new(
                socket2::Domain::for_address(addr),
                socket2::Type::STREAM,
                Some(socket2::Protocol::TCP),
            )?;
            socket.set_nonblocking(true)?;
            socket.set_tcp_user_timeout(Some(UNACKED_DATA_TIMEOUT))?;
            let socket = tokio::net::TcpSocket::from_std_stream(socket.into());
            socket.connect(addr).await
        };
        let stream = if timeout.is_zero() {
            connecting.await
        } else {
            tokio::time::timeout(timeout, connecting)
                .await
                .map_err(|_| ConnectError::Timeout)?
        }
        .map_err(ConnectError::Io)?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(ConnectError::Handshake)?;
        tokio::spawn(async move {
            if let Err(error) = conn.with_upgrades().await {
                tracing::debug!(%addr, %error, "upstream connection ended with an error");
            }
        });
        Ok(UpstreamConn {
            sender,
            created: Instant::now(),
            requests: 0,
            reused: false,
        })
    }

    /// Counts one request sent on this connection.
    pub fn note_request(&mut self) {
        self.requests += 1;
    }
}

#[derive(Debug)]
struct Idle {
    conn: UpstreamConn,
    since: Instant,
}

/// Idle connections to one peer address.
#[derive(Debug, Default)]
pub(crate) struct PeerPool {
    idle: Mutex<Vec<Idle>>,
}

impl PeerPool {
    /// A usable idle connection, most recently used first; expired or closed ones are dropped.
    pub fn checkout(&self, now: Instant, limits: &PoolLimits) -> Option<UpstreamConn> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(entry) = idle.pop() {
            if now.saturating_duration_since(entry.since) >= limits.idle_timeout
                || entry.conn.sender.is_closed()
            {
                continue;
            }
            let mut conn = entry.conn;
            conn.reused = true;
            return Some(conn);
        }
        None
    }

    /// Returns a connection whose response was read completely.
    pub fn checkin(&self, conn: UpstreamConn, now: Instant, limits: &PoolLimits) {
        if limits.max_idle == 0
            || conn.requests >= limits.max_requests
            || now.saturating_duration_since(conn.created) >= limits.max_lifetime
            || conn.sender.is_closed()
        {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() >= limits.max_idle {
            // Drop the oldest: the most recently used ones are the warmest.
            idle.remove(0);
        }
        idle.push(Idle { conn, since: now });
    }
}

/// All peer pools, by address, surviving configuration reloads.
#[derive(Debug, Default)]
pub(crate) struct Pools {
    by_addr: Mutex<HashMap<SocketAddr, Arc<PeerPool>>>,
}

impl Pools {
    /// The pool of `addr`, created on first use (called when a configuration is compiled).
    pub fn for_addr(&self, addr: SocketAddr) -> Arc<PeerPool> {
        let mut map = self.by_addr.lock().unwrap_or_else(PoisonError::into_inner);
        map.entry(addr).or_default().clone()
    }

    /// Forgets pools no configuration refers to any more.
    pub fn retain(&self, keep: &std::collections::HashSet<SocketAddr>) {
        let mut map = self.by_addr.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|addr, _| keep.contains(addr));
    }
}
