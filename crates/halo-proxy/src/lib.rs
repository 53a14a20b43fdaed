//! halo-proxy: the HTTP data plane on tokio (with hyper 1.x for requests with bodies), driven by
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
//! HTTP/1.1 on both legs is halo's own for the common case (`server_h1` parses plain GET/HEAD
//! heads with `httparse` and writes responses with one `writev`; `upstream_h1` talks to
//! upstreams from the request's own task). hyper's server takes any request with a body, an
//! Upgrade or `Expect`, one request at a time, and gives the connection back (its answers are
//! written in Title-Case: hyper does not let a server keep an upstream's header spelling).
//!
//! Deliberate differences from nginx: request bodies up to 64 KiB (by Content-Length) are read
//! first and replayed on retries, larger or chunked ones are streamed, not buffered to disk, so
//! such a request whose body was already sent is not retried on another server; the upstream
//! `keepalive` idle cap applies per server, for the whole process; WebSocket/Upgrade requests are
//! tunnelled without `proxy_set_header Upgrade/Connection` lines. A request with both
//! Content-Length and Transfer-Encoding is answered 400 and the connection closed (RFC 9112 §6.1
//! allows refusing it; a proxy that forwards such framing invites request smuggling). `$time_local` uses the offset the binary sets with
//! [`set_local_utc_offset`] (UTC until then).
//!
//! Memory: a connection waiting for its first or next request holds no buffer; after 250 ms it
//! leaves its task for the idle lot (`idle_lot`), where it costs a table entry.

mod access;
mod access_log;
mod auth;
mod auth_hashes;
mod auth_request;
mod autoindex;
mod body;
mod connection;
mod cookie_rewrite;
mod defined_vars;
mod dynamic_pass;
mod error;
mod expires;
mod forward;
mod geo;
mod gzip;
mod gzip_body;
mod handler;
mod header_case;
mod health_check;
mod hyper_conn;
mod idle_lot;
mod listener;
mod mime;
mod pcre;
mod pool;
mod proxy_protocol;
mod real_ip;
mod request_vars;
mod resolver;
mod rewrite;
mod rewrite_rule;
mod routing;
mod runtime;
mod server;
mod server_h1;
mod split_clients;
mod static_files;
mod stats;
mod tls_accept;
mod tls_client_auth;
mod tls_config;
mod tls_signature;
mod tls_vars;
mod try_files;
mod upstream_h1;
mod upstream_h2;
mod upstream_headers;
mod upstream_tls;
mod uri;
mod variables;

pub use access_log::set_local_utc_offset;
pub use error::ProxyError;
pub use server::Proxy;
pub use stats::Stats;
pub use tls_config::{check, check_files};
