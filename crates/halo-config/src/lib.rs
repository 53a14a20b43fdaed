//! halo's configuration: the native TOML schema, the nginx.conf and keepalived.conf importers,
//! and validation, all producing one [`Config`].
//!
//! Every loader reports all problems of a file at once as [`Diagnostic`]s
//! (`file:line:col: error: message (expected ...)`): `Ok((config, warnings))` or
//! `Err(errors followed by warnings)`.

pub mod access;
pub mod content;
pub mod diagnostic;
mod diff;
pub mod duration_text;
mod field_path;
pub mod gzip;
pub mod http;
mod import_validation;
mod keepalived;
mod native;
mod nginx;
pub mod proxy_headers;
pub mod resolver;
pub mod rewrite;
pub mod tls;
pub mod vars;
pub mod vrrp;
mod vrrp_validate;

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

pub use diagnostic::{Diagnostic, Severity};
pub use diff::{diff, ConfigDiff};
pub use keepalived::import_keepalived;
pub use native::{load_native, load_native_str, to_toml};
pub use nginx::{import_nginx, import_nginx_with, NginxImportOptions};

/// Checks the files a configuration names (certificates, keys, CA bundles): whether they load
/// and belong together, and warnings such as certificates about to expire. Reading them needs
/// TLS crates this library does not depend on, so the binary registers the proxy's checker
/// with [`set_file_checker`]; every loader (native TOML, nginx.conf) then runs it, which keeps
/// `halo check` and `halo run` on one validation path.
pub type FileChecker = fn(&http::HttpConfig) -> Vec<(http::HttpConfigError, Severity)>;

static FILE_CHECKER: std::sync::OnceLock<FileChecker> = std::sync::OnceLock::new();

/// Registers the checker every loader runs after validation (the first registration wins).
pub fn set_file_checker(checker: FileChecker) {
    let _ = FILE_CHECKER.set(checker);
}

/// What a loader returns: the configuration and its warnings, or every error (then warnings).
pub type LoadResult = Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>>;

/// The whole configuration of one halo node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The VRRP side (keepalived's part of the seed).
    pub vrrp: vrrp::VrrpConfig,
    /// The HTTP reverse proxy (nginx's part of the seed); `None` = VRRP only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<http::HttpConfig>,
    /// The local control interface (status, reload).
    pub admin: AdminConfig,
}

/// The local control interface: an optional HTTP listener for JSON status and Prometheus
/// metrics. (`halo status` reads the state file; `halo reload` signals the pid file.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Also serve JSON status and Prometheus metrics over HTTP here (default: off). Bind it to
    /// a loopback or management address: it has no authentication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_listen: Option<SocketAddr>,
}

impl Config {
    /// Puts an imported HTTP side (from nginx.conf) next to an imported VRRP side (from
    /// keepalived.conf): the seed's two files make one node's configuration.
    pub fn merge_http(mut self, http_side: Config) -> Config {
        self.http = http_side.http;
        self
    }
}
