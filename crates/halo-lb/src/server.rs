//! One `server` line of an `upstream` block.

use std::net::SocketAddr;
use std::time::Duration;

/// A server of an upstream, with nginx's parameters (`ngx_http_upstream_server`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// The server as written in the configuration (`"198.18.0.226:80"`). `hash ... consistent`
    /// hashes this text (host and port split at the last `:`), so it must be kept verbatim.
    pub name: String,
    /// The resolved address.
    pub addr: SocketAddr,
    /// `weight=` (>= 1, default 1).
    pub weight: u32,
    /// `max_fails=` (default 1; 0 disables failure accounting).
    pub max_fails: u32,
    /// `fail_timeout=` (default 10 s).
    pub fail_timeout: Duration,
    /// `max_conns=` (0 = unlimited).
    pub max_conns: u32,
    /// `backup`: used only when no primary server is eligible.
    pub backup: bool,
    /// `down`: never selected (keeps its slot in hash mappings).
    pub down: bool,
}

impl ServerSpec {
    /// nginx's default `max_fails`.
    pub const DEFAULT_MAX_FAILS: u32 = 1;
    /// nginx's default `fail_timeout`.
    pub const DEFAULT_FAIL_TIMEOUT: Duration = Duration::from_secs(10);

    /// A server with nginx's defaults: weight 1, max_fails 1, fail_timeout 10 s, no max_conns.
    pub fn new(name: impl Into<String>, addr: SocketAddr) -> Self {
        Self {
            name: name.into(),
            addr,
            weight: 1,
            max_fails: Self::DEFAULT_MAX_FAILS,
            fail_timeout: Self::DEFAULT_FAIL_TIMEOUT,
            max_conns: 0,
            backup: false,
            down: false,
        }
    }

    /// Builder: set `weight`.
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Builder: set `max_fails` and `fail_timeout`.
    pub fn with_failures(mut self, max_fails: u32, fail_timeout: Duration) -> Self {
        self.max_fails = max_fails;
        self.fail_timeout = fail_timeout;
        self
    }

    /// Builder: set `max_conns`.
    pub fn with_max_conns(mut self, max_conns: u32) -> Self {
        self.max_conns = max_conns;
        self
    }

    /// Builder: mark as `backup`.
    pub fn backup(mut self) -> Self {
        self.backup = true;
        self
    }

    /// Builder: mark as `down`.
    pub fn down(mut self) -> Self {
        self.down = true;
        self
    }
}
