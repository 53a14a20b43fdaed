//! Upstream connections: connecting with a timeout and keeping idle HTTP/1.1 connections per peer
//! address for reuse (nginx `keepalive`, on by default like nginx >= 1.29.7), shared by all threads.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::upstream_h1::UpstreamConn;

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

#[derive(Debug)]
struct Idle {
    conn: UpstreamConn,
    since: Instant,
}

/// Idle connections to one peer address.
#[derive(Debug, Default)]
pub(crate) struct PeerPool {
    idle: Mutex<Vec<Idle>>,
    /// HTTP/2 connections to the peer (`proxy_http_version 2`, `grpc_pass`).
    pub h2: crate::upstream_h2::H2Senders,
}

impl PeerPool {
    /// A usable idle connection, most recently used first; expired ones are dropped. With
    /// `probe`, so are connections the upstream closed meanwhile (for requests that could not be
    /// replayed on a fresh connection); without, a stale connection shows when the request is
    /// answered by a close, and the request is repeated on a fresh one.
    pub fn checkout(&self, now: Instant, limits: &PoolLimits, probe: bool) -> Option<UpstreamConn> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(entry) = idle.pop() {
            if now.saturating_duration_since(entry.since) >= limits.idle_timeout
                || (probe && !entry.conn.looks_alive())
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
    pub fn checkin(&self, mut conn: UpstreamConn, now: Instant, limits: &PoolLimits) {
        if limits.max_idle == 0
            || conn.requests >= limits.max_requests
            || now.saturating_duration_since(conn.created) >= limits.max_lifetime
            || !conn.buf.is_empty()
        {
            // Bytes beyond the response mean the upstream is out of step: never reuse.
            return;
        }
        // An idle connection keeps no read buffer.
        conn.buf = bytes::BytesMut::new();
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
