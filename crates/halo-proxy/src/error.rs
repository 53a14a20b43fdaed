//! Errors of starting, reloading and shutting down the proxy.

use std::net::SocketAddr;

use thiserror::Error;

/// Why the proxy could not start or apply a configuration.
#[derive(Debug, Error)]
pub enum ProxyError {
    /// The configuration failed [`halo_config::http::HttpConfig::validate`] or could not be compiled
    /// (bad regex, unknown variable, unresolvable upstream address, unreadable htpasswd or
    /// access log file...). All problems are listed.
    #[error("invalid HTTP configuration: {}", .0.join("; "))]
    Config(Vec<String>),
    /// A listening socket could not be created or bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address from `listen`.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The proxy was already shut down.
    #[error("the proxy is shut down")]
    ShutDown,
}
