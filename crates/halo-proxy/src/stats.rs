//! Counters behind `stub_status` and halo's own rejection counters.

use std::sync::atomic::{AtomicU64, Ordering};

/// A point-in-time copy of the proxy's counters.
///
/// The first seven are nginx's `stub_status` numbers (`ngx_http_stub_status_module.c`):
/// `active = reading + writing + waiting` for connections served by HTTP.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Client connections open now (nginx "Active connections").
    pub active: u64,
    /// Connections accepted since start.
    pub accepts: u64,
    /// Accepted connections that were served (not closed for `worker_connections`).
    pub handled: u64,
    /// Client requests received since start.
    pub requests: u64,
    /// Connections reading a request head now.
    pub reading: u64,
    /// Connections processing a request or writing a response now.
    pub writing: u64,
    /// Idle keepalive connections now.
    pub waiting: u64,
    /// Requests answered 400/414/431 by halo's own checks (malformed framing, oversized heads).
    pub rejected_malformed: u64,
    /// Connections closed for `client_header_timeout` / `client_body_timeout` / keepalive idle.
    pub timed_out: u64,
    /// Requests refused by `limit_conn`.
    pub rejected_limit_conn: u64,
    /// Requests refused by `limit_req`.
    pub rejected_limit_req: u64,
    /// Requests refused by `auth_basic` (401).
    pub rejected_auth: u64,
    /// Requests refused by `deny` (403).
    pub rejected_access: u64,
    /// Idle keep-alive connections held without a task now (part of `waiting`).
    pub parked: u64,
    /// Connections parked since start.
    pub parks: u64,
    /// TLS handshakes completed (full and resumed).
    pub tls_handshakes: u64,
    /// TLS handshakes that resumed a session.
    pub tls_resumed: u64,
    /// TLS handshakes that failed or timed out (garbage, unknown name with
    /// `ssl_reject_handshake`, no common protocol or cipher).
    pub tls_handshake_failures: u64,
    /// Client connections that spoke HTTP/2.
    pub h2_connections: u64,
    /// HTTP/2 connections closed for abusing stream resets (rapid reset).
    pub h2_reset_floods: u64,
}

/// The live counters, shared by every connection task.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub accepts: AtomicU64,
    pub handled: AtomicU64,
    pub requests: AtomicU64,
    pub active: AtomicU64,
    pub reading: AtomicU64,
    pub writing: AtomicU64,
    pub waiting: AtomicU64,
    pub rejected_malformed: AtomicU64,
    pub timed_out: AtomicU64,
    pub rejected_limit_conn: AtomicU64,
    pub rejected_limit_req: AtomicU64,
    pub rejected_auth: AtomicU64,
    pub rejected_access: AtomicU64,
    pub parked: AtomicU64,
    pub parks: AtomicU64,
    pub tls_handshakes: AtomicU64,
    pub tls_resumed: AtomicU64,
    pub tls_handshake_failures: AtomicU64,
    pub h2_connections: AtomicU64,
    pub h2_reset_floods: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            active: get(&self.active),
            accepts: get(&self.accepts),
            handled: get(&self.handled),
            requests: get(&self.requests),
            reading: get(&self.reading),
            writing: get(&self.writing),
            waiting: get(&self.waiting),
            rejected_malformed: get(&self.rejected_malformed),
            timed_out: get(&self.timed_out),
            rejected_limit_conn: get(&self.rejected_limit_conn),
            rejected_limit_req: get(&self.rejected_limit_req),
            rejected_auth: get(&self.rejected_auth),
            rejected_access: get(&self.rejected_access),
            parked: get(&self.parked),
            parks: get(&self.parks),
            tls_handshakes: get(&self.tls_handshakes),
            tls_resumed: get(&self.tls_resumed),
            tls_handshake_failures: get(&self.tls_handshake_failures),
            h2_connections: get(&self.h2_connections),
            h2_reset_floods: get(&self.h2_reset_floods),
        }
    }

    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// nginx's stub_status page, byte for byte (note the trailing spaces before each newline).
pub(crate) fn stub_status_text(s: &Stats) -> String {
    format!(
        "Active connections: {} \nserver accepts handled requests\n {} {} {} \nReading: {} Writing: {} Waiting: {} \n",
        s.active, s.accepts, s.handled, s.requests, s.reading, s.writing, s.waiting
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stub_status_matches_nginx_bytes() {
        let s = Stats {
            active: 291,
            accepts: 16630948,
            handled: 16630948,
            requests: 31070465,
            reading: 6,
            writing: 179,
            waiting: 106,
            ..Stats::default()
        };
        assert_eq!(
            stub_status_text(&s),
            "Active connections: 291 \nserver accepts handled requests\n 16630948 16630948 31070465 \nReading: 6 Writing: 179 Waiting: 106 \n"
        );
    }
}
