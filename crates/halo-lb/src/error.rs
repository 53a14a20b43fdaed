//! Errors of upstream construction and selection.

use thiserror::Error;

/// An upstream definition that nginx would refuse at configuration time.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LbError {
    /// `no servers in upstream "NAME"`: at least one non-backup server is required
    /// (`ngx_http_upstream_init_round_robin`).
    #[error("no servers in upstream \"{upstream}\" (at least one non-backup server is required)")]
    NoServers {
        /// Upstream name.
        upstream: String,
    },
    /// The balancing method does not support the `backup` parameter (nginx: `ip_hash`, `hash`
    /// and `random` do not set `NGX_HTTP_UPSTREAM_BACKUP` in their flags).
    #[error("upstream \"{upstream}\": balancing method {method} does not support parameter \"backup\" (server {server})")]
    BackupNotSupported {
        /// Upstream name.
        upstream: String,
        /// Method name as in nginx.conf.
        method: &'static str,
        /// The offending server as written.
        server: String,
    },
    /// `weight=0` (nginx requires weight >= 1).
    #[error("upstream \"{upstream}\": server {server} has weight 0 (must be >= 1)")]
    ZeroWeight {
        /// Upstream name.
        upstream: String,
        /// The offending server as written.
        server: String,
    },
}

/// No peer is eligible: every server is down, failed (within `fail_timeout`), at `max_conns`,
/// or already tried by this request. nginx logs `no live upstreams while connecting to
/// upstream` and answers 502 (`NGX_HTTP_UPSTREAM_FT_NOLIVE`, `ngx_http_upstream.c`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("no live upstreams in \"{upstream}\"")]
pub struct NoLiveUpstreams {
    /// Upstream name.
    pub upstream: String,
}
