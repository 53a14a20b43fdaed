//! halo-proxy: the HTTP data plane on tokio + hyper 1.x, driven by
//! [`halo_config::http::HttpConfig`].
//!
//! - [`Proxy::start`] binds every listener and serves; [`Proxy::reload`] swaps the
//!   configuration in place; [`Proxy::shutdown`] drains; [`Proxy::stats`] gives the
//!   stub_status counters; [`Proxy::healthy`] reports whether the listeners run.
//! - Semantics follow nginx (see `/work/shared/research/proxy-nginx.md`): smooth weighted
//!   round robin and friends via `halo-lb`, `proxy_next_upstream` retries, upstream keepalive on
//!   by default, `limit_conn`/`limit_req`, `auth_basic`, `stub_status`, `error_page`,
//!   `access_log`.
//!
//! Deliberate differences from nginx: request bodies up to 64 KiB (by Content-Length) are read
//! first and replayed on retries, larger or chunked ones are streamed, not buffered to disk, so
//! such a request whose body was already sent is not retried on another server; `$time_local` is logged in UTC;
//! a request with both Content-Length and chunked Transfer-Encoding is read as chunked and the
//! connection closed after it (hyper; RFC 9112 §6.3) instead of a 400; the upstream `keepalive`
//! idle cap applies per server, for the whole process; WebSocket/Upgrade requests are tunnelled
//! without `proxy_set_header Upgrade/Connection` lines.
//!
//! Memory: a keepalive connection idle for 50 ms drops its HTTP state (hyper's buffers) and only
//! waits for bytes; so does a fresh connection before its first byte.

mod access_log;
mod auth;
mod auth_hashes;
mod body;
mod connection;
mod error;
mod forward;
mod handler;
mod health_check;
mod idle_lot;
mod listener;
mod pool;
mod routing;
mod runtime;
mod server;
mod server_h1;
mod static_files;
mod stats;
mod upstream_h1;
mod uri;
mod variables;

pub use access_log::set_local_utc_offset;
pub use error::ProxyError;
pub use server::Proxy;
pub use stats::Stats;
