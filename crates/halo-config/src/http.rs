//! The HTTP side of the configuration model (listeners, servers, locations, upstreams, limits, logs).
//!
//! These plain data types ARE the native TOML schema of the `[http]` side; the nginx.conf importer
//! fills the same types. Every default is nginx's default unless a field's doc says otherwise.
//!
//! Conventions used by every type here:
//! - **Durations** are written like nginx time values: a string of number+unit groups, units
//!   `ms`, `s`, `m`, `h`, `d`, `w` (e.g. `"60s"`, `"1m30s"`, `"500ms"`), or a bare number
//!   (string or TOML integer) meaning seconds, as in nginx. They serialize as `"<n>ms"` or `"<n>s"`.
//! - **Sizes** are a TOML integer (bytes) or an nginx size string (`"10k"`, `"1m"`, `"1g"`).
//! - **Inheritance**: nginx's `http -> server -> location` inheritance is resolved by whoever builds
//!   this model (the importer flattens it), except for fields typed `Option<..>` on [`ServerBlock`]
//!   and [`Location`], where `None` means "inherit from the enclosing level" as documented per field.
//! - **Variables** (`$host`, `$remote_addr`, ...) inside header values and log formats are kept as
//!   text; the proxy compiles them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::access::{AccessRule, AddrMatch, LimitExcept, RealIp, RealIpHeader, Satisfy};

pub use crate::rewrite::{Condition, FileTest, MapConfig, MapEntry, RewriteFlag, RewriteOp};
pub use crate::tls::{
    CertificatePair, Http2Settings, ServerTls, SessionCache, TlsVersion, UpstreamTls, VerifyClient,
};

/// The whole HTTP side (nginx's `http { }` block).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Number of proxy worker threads (nginx `worker_processes`); `None` = one per CPU (`auto`).
    pub worker_threads: Option<usize>,
    /// Maximum simultaneous client connections for the whole proxy (nginx `worker_connections`
    /// times workers; here one global number). Over it, new connections are accepted and closed
    /// at once (counted in `accepts` but not `handled`). Default 512 x worker count in nginx;
    /// here 65535.
    pub worker_connections: usize,
    /// Idle timeout of a client keepalive connection between requests (nginx `keepalive_timeout`,
    /// default 75s). `"0s"` disables client keepalive.
    #[serde(with = "duration")]
    pub keepalive_timeout: Duration,
    /// Requests served on one client connection before it is closed (nginx `keepalive_requests`, 1000).
    pub keepalive_requests: u64,
    /// Time allowed to receive the whole request head (nginx `client_header_timeout`, 60s);
    /// on expiry the connection is closed (nginx answers 408 and closes).
    #[serde(with = "duration")]
    pub client_header_timeout: Duration,
    /// Maximum time between two successive reads of the request body (nginx `client_body_timeout`, 60s).
    #[serde(with = "duration")]
    pub client_body_timeout: Duration,
    /// Maximum time between two successive writes to the client (nginx `send_timeout`, 60s).
    #[serde(with = "duration")]
    pub send_timeout: Duration,
    /// Largest accepted request body in bytes, by Content-Length or as streamed (nginx
    /// `client_max_body_size`, 1m); over it the answer is 413. `0` = unlimited.
    #[serde(with = "size")]
    pub client_max_body_size: u64,
    /// Buffer for a request head (nginx `client_header_buffer_size`, 1k). Informational: halo
    /// reads heads into one growing buffer bounded by `large_client_header_buffers`.
    #[serde(with = "size")]
    pub client_header_buffer_size: u64,
    /// Limits for large request heads (nginx `large_client_header_buffers 4 8k`): a request line
    /// longer than `size` gets 414, a header line longer than `size` or a head larger than
    /// `number * size` gets 431 (nginx answers 400 "Request Header Or Cookie Too Large").
    pub large_client_header_buffers: LargeHeaderBuffers,
    /// Send the `Server: halo` header and version in error pages (nginx `server_tokens`, on).
    pub server_tokens: bool,
    /// Accepted for nginx compatibility (`sendfile on`); static files are always streamed.
    pub sendfile: bool,
    /// Named log formats (nginx `log_format NAME '...'`), name -> format text with `$variables`.
    /// `combined` is built in and may not be redefined.
    pub log_formats: BTreeMap<String, String>,
    /// Default access logs for all servers (nginx `access_log` at http level). Empty = off.
    /// Deviation: nginx defaults to `logs/access.log combined`; halo logs nothing unless told.
    pub access_log: Vec<AccessLog>,
    /// Connection-count zones (nginx `limit_conn_zone KEY zone=NAME:SIZE`).
    pub limit_conn_zones: Vec<LimitConnZone>,
    /// Request-rate zones (nginx `limit_req_zone KEY zone=NAME:SIZE rate=R`).
    pub limit_req_zones: Vec<LimitReqZone>,
    /// Upstream groups (nginx `upstream NAME { }`).
    pub upstreams: Vec<UpstreamConfig>,
    /// Virtual servers (nginx `server { }`), in configuration order.
    pub servers: Vec<ServerBlock>,
    /// File extension (without dot, lower case) -> MIME type (nginx `types { }` / `include mime.types`).
    /// Empty = halo's built-in table of common types.
    pub mime_types: BTreeMap<String, String>,
    /// Variables defined by `map` blocks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub maps: Vec<MapConfig>,
    /// Variables defined by `geo` blocks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub geo: Vec<crate::vars::GeoConfig>,
    /// Variables defined by `split_clients` blocks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub split_clients: Vec<crate::vars::SplitClientsConfig>,
    /// MIME type for files whose extension is not in `mime_types` (nginx `default_type`, text/plain).
    pub default_type: String,
    /// Compression and `gzip_static` (nginx's gzip modules); `None` = the outer level's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gzip: Option<crate::gzip::Gzip>,
    /// nginx `expires`; `None` = the outer level's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<crate::gzip::Expires>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            worker_threads: None,
            worker_connections: 65535,
            keepalive_timeout: Duration::from_secs(75),
            keepalive_requests: 1000,
            client_header_timeout: Duration::from_secs(60),
            client_body_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            client_max_body_size: 1024 * 1024,
            client_header_buffer_size: 1024,
            large_client_header_buffers: LargeHeaderBuffers::default(),
            server_tokens: true,
            sendfile: false,
            log_formats: BTreeMap::new(),
            access_log: Vec::new(),
            limit_conn_zones: Vec::new(),
            limit_req_zones: Vec::new(),
            upstreams: Vec::new(),
            servers: Vec::new(),
            mime_types: BTreeMap::new(),
            maps: Vec::new(),
            geo: Vec::new(),
            split_clients: Vec::new(),
            default_type: "text/plain".to_owned(),
            gzip: None,
            expires: None,
        }
    }
}

/// nginx `large_client_header_buffers NUMBER SIZE` (default `4 8k`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LargeHeaderBuffers {
    /// How many buffers a request head may use.
    pub number: u32,
    /// Size of each buffer: the longest request line or single header line.
    #[serde(with = "size")]
    pub size: u64,
}

impl Default for LargeHeaderBuffers {
    fn default() -> Self {
        Self {
            number: 4,
            size: 8 * 1024,
        }
    }
}

/// One `access_log PATH [FORMAT [buffer=SIZE] [flush=TIME]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLog {
    /// File path the log lines are appended to.
    pub path: String,
    /// Name of a format in [`HttpConfig::log_formats`] or `combined` (the default).
    #[serde(default = "default_log_format")]
    pub format: String,
    /// Write buffer size in bytes (`buffer=`); `None` = halo's default (64k, flushed at least every second).
    #[serde(default, with = "opt_size", skip_serializing_if = "Option::is_none")]
    pub buffer: Option<u64>,
    /// Longest time a line may wait in the buffer (`flush=`); `None` = 1s.
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub flush: Option<Duration>,
}

fn default_log_format() -> String {
    "combined".to_owned()
}

/// `limit_conn_zone KEY zone=NAME:SIZE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConnZone {
    /// Zone name referenced by [`LimitConn::zone`].
    pub name: String,
    /// Key expression; `$binary_remote_addr` (the default) and `$remote_addr` are supported.
    /// An empty key is never limited.
    #[serde(default = "default_limit_key")]
    pub key: String,
    /// Memory size of the zone in bytes (nginx `:10m`); bounds the number of tracked keys.
    #[serde(default = "default_zone_size", with = "size")]
    pub size: u64,
}

/// `limit_req_zone KEY zone=NAME:SIZE rate=RATE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitReqZone {
    /// Zone name referenced by [`LimitReq::zone`].
    pub name: String,
    /// Key expression; `$binary_remote_addr` (the default) and `$remote_addr` are supported.
    #[serde(default = "default_limit_key")]
    pub key: String,
    /// Memory size of the zone in bytes; bounds the number of tracked keys.
    #[serde(default = "default_zone_size", with = "size")]
    pub size: u64,
    /// Allowed request rate, written `"10r/s"` or `"30r/m"`.
    pub rate: RequestRate,
}

fn default_limit_key() -> String {
    "$binary_remote_addr".to_owned()
}

fn default_zone_size() -> u64 {
    10 * 1024 * 1024
}

/// A request rate as nginx writes it: `N r/s` or `N r/m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRate {
    /// Number of requests allowed per `per`.
    pub requests: u32,
    /// The period `requests` are counted over.
    pub per: RatePeriod,
}

impl RequestRate {
    /// The rate in milli-requests per second, the unit nginx's leaky bucket computes in.
    pub fn millirequests_per_second(&self) -> u64 {
        match self.per {
            RatePeriod::Second => u64::from(self.requests) * 1000,
            RatePeriod::Minute => u64::from(self.requests) * 1000 / 60,
        }
    }
}

/// The period of a [`RequestRate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatePeriod {
    /// `r/s`
    Second,
    /// `r/m`
    Minute,
}

impl fmt::Display for RequestRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per {
            RatePeriod::Second => "s",
            RatePeriod::Minute => "m",
        };
        write!(f, "{}r/{}", self.requests, unit)
    }
}

impl std::str::FromStr for RequestRate {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("invalid rate {text:?}: expected like \"10r/s\" or \"30r/m\"");
        let (number, unit) = text.trim().split_once("r/").ok_or_else(bad)?;
        let requests: u32 = number.trim().parse().map_err(|_| bad())?;
        let per = match unit.trim() {
            "s" => RatePeriod::Second,
            "m" => RatePeriod::Minute,
            _ => return Err(bad()),
        };
        if requests == 0 {
            return Err(bad());
        }
        Ok(Self { requests, per })
    }
}

impl Serialize for RequestRate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RequestRate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An `upstream NAME { }` group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Group name, referenced by `proxy_pass http://NAME`.
    pub name: String,
    /// Balancing method (default round robin).
    #[serde(default)]
    pub method: BalanceMethod,
    /// The servers, in configuration order (order matters for round-robin ties and hashing).
    pub servers: Vec<ServerConfig>,
    /// Maximum IDLE pooled connections kept per upstream group, shared by all threads (nginx
    /// `keepalive N`). Default 32, as nginx >= 1.29.7 (implicit keepalive for explicit
    /// upstreams); `0` disables pooling.
    #[serde(default = "default_upstream_keepalive")]
    pub keepalive: usize,
    /// How long an idle pooled connection is kept (nginx `keepalive_timeout` in upstream, 60s).
    #[serde(default = "default_upstream_keepalive_timeout", with = "duration")]
    pub keepalive_timeout: Duration,
    /// Requests sent on one upstream connection before it is closed (nginx `keepalive_requests`, 1000).
    #[serde(default = "default_keepalive_requests")]
    pub keepalive_requests: u64,
    /// Maximum lifetime of an upstream connection (nginx `keepalive_time`, 1h).
    #[serde(default = "default_keepalive_time", with = "duration")]
    pub keepalive_time: Duration,
    /// Optional active health check (halo extension; nginx OSS has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
}

fn default_upstream_keepalive() -> usize {
    32
}
fn default_upstream_keepalive_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_keepalive_requests() -> u64 {
    1000
}
fn default_keepalive_time() -> Duration {
    Duration::from_secs(3600)
}

/// How an upstream group picks a server.
///
/// TOML: `method = "round_robin" | "ip_hash" | "least_conn" | "random"` or
/// `method = { hash = { key = "$request_uri", consistent = true } }`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum BalanceMethod {
    /// Smooth weighted round robin (nginx default).
    #[default]
    RoundRobin,
    /// nginx `ip_hash`: IPv4 /24 or full IPv6 address; `backup` servers are not allowed.
    IpHash,
    /// nginx `least_conn`.
    LeastConn,
    /// nginx `random` (without `two`).
    Random,
    /// nginx `hash KEY [consistent]`.
    Hash {
        /// Key expression with variables, e.g. `$request_uri`.
        key: String,
        /// Ketama consistent hashing.
        #[serde(default)]
        consistent: bool,
    },
}

/// One `server ADDRESS [weight=] [max_fails=] [fail_timeout=] [max_conns=] [backup] [down]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// `IP:PORT`, `[IPv6]:PORT` or `HOST:PORT` (resolved once at start/reload); port defaults to 80.
    pub address: String,
    /// Relative weight (default 1).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Failures within `fail_timeout` that take the server out (default 1; 0 = never).
    #[serde(default = "default_max_fails")]
    pub max_fails: u32,
    /// Failure window and time out of rotation (default 10s).
    #[serde(default = "default_fail_timeout", with = "duration")]
    pub fail_timeout: Duration,
    /// Maximum concurrent connections to this server (default 0 = unlimited).
    #[serde(default)]
    pub max_conns: u32,
    /// Used only when all non-backup servers are unavailable.
    #[serde(default)]
    pub backup: bool,
    /// Permanently unavailable (keeps hash mappings of the others stable).
    #[serde(default)]
    pub down: bool,
}

fn default_weight() -> u32 {
    1
}
fn default_max_fails() -> u32 {
    1
}
fn default_fail_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Active health check of an upstream group (halo extension, HAProxy-like rise/fall).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// HTTP path to GET; `None` = a plain TCP connect check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Time between checks of one server (default 5s).
    #[serde(default = "default_check_interval", with = "duration")]
    pub interval: Duration,
    /// Consecutive successes that bring a server back (default 2).
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Consecutive failures that take a server out (default 3).
    #[serde(default = "default_fall")]
    pub fall: u32,
    /// Time allowed for one check (default 2s).
    #[serde(default = "default_check_timeout", with = "duration")]
    pub timeout: Duration,
}

fn default_check_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_rise() -> u32 {
    2
}
fn default_fall() -> u32 {
    3
}
fn default_check_timeout() -> Duration {
    Duration::from_secs(2)
}

/// A virtual server (`server { }`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerBlock {
    /// Listening sockets (default `0.0.0.0:80`, as nginx `listen 80` when run as root).
    pub listen: Vec<Listen>,
    /// Names (nginx `server_name`): exact (`example.com`), wildcard (`*.example.com`,
    /// `www.example.*`), `.example.com` (= exact + `*.`), regex (`~^www\d+\.`), or `""` (no Host).
    /// Default `[""]`.
    pub server_name: Vec<String>,
    /// Locations in configuration order (regex locations are tried in this order).
    pub locations: Vec<Location>,
    /// `error_page` rules inherited by locations whose `error_page` is `None`.
    pub error_page: Vec<ErrorPage>,
    /// `limit_conn` rules inherited by locations whose `limit_conn` is `None`.
    pub limit_conn: Vec<LimitConn>,
    /// `limit_req` rules inherited by locations whose `limit_req` is `None`.
    pub limit_req: Vec<LimitReq>,
    /// Access logs of this server; `None` = inherit [`HttpConfig::access_log`], `Some([])` = off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_log: Option<Vec<AccessLog>>,
    /// Document root for static files (nginx `root`, default `html`, relative to the working dir).
    pub root: String,
    /// Index files tried for a URI ending in `/` (nginx `index`, default `index.html`).
    pub index: Vec<String>,
    /// TLS settings, used on `listen ... ssl` addresses (nginx `ssl_*`).
    #[serde(skip_serializing_if = "ServerTls::is_default")]
    pub tls: ServerTls,
    /// HTTP/2 (nginx `http2 on`, `http2_*`).
    #[serde(skip_serializing_if = "Http2Settings::is_default")]
    pub http2: Http2Settings,
    /// Rewrite-module operations run before the location is chosen (nginx's server rewrite
    /// phase).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rewrite: Vec<RewriteOp>,
    /// `allow`/`deny` rules inherited by locations whose `access` is `None`, and applied to
    /// requests no location takes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub access: Vec<AccessRule>,
    /// `satisfy` for requests no location takes.
    #[serde(skip_serializing_if = "Satisfy::is_default")]
    pub satisfy: Satisfy,
    /// Basic authentication for requests no location takes (locations carry their own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_basic: Option<AuthBasic>,
    /// The realip module at server level: applied as soon as the server is chosen, before its
    /// rewrite operations (nginx's POST_READ phase).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_ip: Option<RealIp>,
    /// Compression and `gzip_static` (nginx's gzip modules); `None` = the outer level's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gzip: Option<crate::gzip::Gzip>,
    /// nginx `expires`; `None` = the outer level's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<crate::gzip::Expires>,
    /// nginx `autoindex` for requests no location takes; `None` = off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoindex: Option<crate::content::Autoindex>,
}

impl Default for ServerBlock {
    fn default() -> Self {
        Self {
            listen: vec![Listen::default()],
            server_name: vec![String::new()],
            locations: Vec::new(),
            error_page: Vec::new(),
            limit_conn: Vec::new(),
            limit_req: Vec::new(),
            access_log: None,
            root: "html".to_owned(),
            index: vec!["index.html".to_owned()],
            tls: ServerTls::default(),
            http2: Http2Settings::default(),
            rewrite: Vec::new(),
            access: Vec::new(),
            satisfy: Satisfy::All,
            auth_basic: None,
            real_ip: None,
            gzip: None,
            expires: None,
            autoindex: None,
        }
    }
}

/// One `listen ADDR:PORT [default_server]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// Socket address, `"0.0.0.0:80"` or `"[::]:80"`. `[::]` listens on IPv6 only (like nginx's
    /// default `ipv6only=on`).
    pub addr: SocketAddr,
    /// This server answers requests whose Host matches no server on this address.
    /// Without any, the first server listed for the address is the default.
    #[serde(default)]
    pub default_server: bool,
    /// Connections on this address speak TLS (nginx `listen ... ssl`). Every server on an
    /// address must agree.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ssl: bool,
    /// HTTP/2 on this address for every server on it (nginx's deprecated `listen ... http2`;
    /// prefer the server's `http2` setting).
    #[serde(default, skip_serializing_if = "is_false")]
    pub http2: bool,
    /// Connections on this address open with a PROXY protocol header, v1 or v2 (nginx
    /// `listen ... proxy_protocol`), which gives `$proxy_protocol_addr` and, with
    /// `real_ip_header proxy_protocol`, the client's address. A connection without a valid
    /// header is closed. Every server on an address shares it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub proxy_protocol: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Default for Listen {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([0, 0, 0, 0], 80)),
            default_server: false,
            ssl: false,
            http2: false,
            proxy_protocol: false,
        }
    }
}

/// How a location's `path` is matched against the normalised request URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchKind {
    /// `location = /path`: exact match, checked first, ends the search.
    Exact,
    /// `location /path`: longest prefix wins, unless a regex location matches.
    #[default]
    Prefix,
    /// `location ^~ /path`: prefix that, when it is the longest match, skips regex locations.
    PrefixNoRegex,
    /// `location ~ re`: case-sensitive regex, tried in configuration order.
    Regex,
    /// `location ~* re`: case-insensitive regex (TOML `"regex_ci"`).
    #[serde(rename = "regex_ci")]
    RegexCaseInsensitive,
    /// `location @name`: never matched by a URI; reached by `try_files` and `error_page`
    /// (`path` is `@name`).
    Named,
}

/// A `location` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Location {
    /// Match kind (default prefix).
    #[serde(rename = "match")]
    pub match_kind: MatchKind,
    /// Prefix, exact path or regex text.
    pub path: String,
    /// What the location does with a request.
    pub action: LocationAction,
    /// Headers sent upstream (nginx `proxy_set_header`), name -> value with variables. An empty
    /// value removes the header. `Host` defaults to `$proxy_host` (the upstream name or the
    /// proxy_pass host) when not listed; `Connection` is managed by halo (keepalive/upgrade).
    pub proxy_set_header: BTreeMap<String, String>,
    /// Rewriting of `Location`/`Refresh` in upstream responses (nginx `proxy_redirect`, default).
    pub proxy_redirect: ProxyRedirect,
    /// Upstream connect timeout (nginx `proxy_connect_timeout`, 60s).
    #[serde(with = "duration")]
    pub proxy_connect_timeout: Duration,
    /// Maximum time between two reads from the upstream (nginx `proxy_read_timeout`, 60s).
    #[serde(with = "duration")]
    pub proxy_read_timeout: Duration,
    /// Maximum time between two writes to the upstream (nginx `proxy_send_timeout`, 60s).
    #[serde(with = "duration")]
    pub proxy_send_timeout: Duration,
    /// When a request moves to the next server (nginx `proxy_next_upstream`, `[error, timeout]`).
    /// An empty list = `off`.
    pub proxy_next_upstream: Vec<NextUpstreamWhen>,
    /// Maximum tries including the first (nginx `proxy_next_upstream_tries`, 0 = unlimited).
    pub proxy_next_upstream_tries: u32,
    /// Time budget for all tries from the first connect (nginx `proxy_next_upstream_timeout`, 0 = unlimited).
    #[serde(with = "duration")]
    pub proxy_next_upstream_timeout: Duration,
    /// Apply `error_page` to upstream responses with status >= 300 (nginx `proxy_intercept_errors`, off).
    pub proxy_intercept_errors: bool,
    /// HTTP basic authentication (nginx `auth_basic` + `auth_basic_user_file`). `None` or a rule
    /// without `user_file` = no authentication (nginx `auth_basic off` / no user file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_basic: Option<AuthBasic>,
    /// `limit_conn` rules; `None` = inherit the server's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_conn: Option<Vec<LimitConn>>,
    /// `limit_req` rules; `None` = inherit the server's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_req: Option<Vec<LimitReq>>,
    /// Status for requests refused by `limit_conn` (nginx `limit_conn_status`, 503).
    pub limit_conn_status: u16,
    /// Status for requests refused by `limit_req` (nginx `limit_req_status`, 503).
    pub limit_req_status: u16,
    /// Access logs; `None` = inherit the server's, `Some([])` = `access_log off`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_log: Option<Vec<AccessLog>>,
    /// Response headers added (nginx `add_header`), in order.
    pub add_header: Vec<AddHeader>,
    /// `error_page` rules; `None` = inherit the server's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_page: Option<Vec<ErrorPage>>,
    /// TLS toward the upstream when `proxy_pass` is `https://` (nginx `proxy_ssl_*`).
    #[serde(skip_serializing_if = "UpstreamTls::is_default")]
    pub proxy_ssl: UpstreamTls,
    /// Speak HTTP/2 to the upstream (nginx `proxy_http_version 2`, 1.29.4+): h2 by ALPN over
    /// TLS, prior-knowledge h2c over plain TCP. Default HTTP/1.1.
    #[serde(skip_serializing_if = "is_false")]
    pub upstream_http2: bool,
    /// The location is nginx's `grpc_pass`: HTTP/2 upstream, and a request the proxy cannot
    /// pass is answered the gRPC way (200 with `grpc-status: 14`, UNAVAILABLE) instead of an
    /// HTML error page, so gRPC clients see a status they understand.
    #[serde(skip_serializing_if = "is_false")]
    pub grpc: bool,
    /// Rewrite-module operations run once the location is chosen (nginx's rewrite phase);
    /// a `rewrite ... last` looks for the location of the new URI.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rewrite: Vec<RewriteOp>,
    /// Largest request body here (nginx `client_max_body_size` at server or location level);
    /// `None` = the http level's [`HttpConfig::client_max_body_size`].
    #[serde(default, with = "opt_size", skip_serializing_if = "Option::is_none")]
    pub client_max_body_size: Option<u64>,
    /// Pass the client's request headers upstream (nginx `proxy_pass_request_headers`, on).
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub proxy_pass_request_headers: bool,
    /// Pass the client's request body upstream (nginx `proxy_pass_request_body`, on).
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub proxy_pass_request_body: bool,
    /// `allow`/`deny` rules, first match decides (nginx's access module); `None` = the
    /// server's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<Vec<AccessRule>>,
    /// Whether the address rules and the password must both allow (`all`) or one is enough.
    #[serde(skip_serializing_if = "Satisfy::is_default")]
    pub satisfy: Satisfy,
    /// Reached only by internal redirects and rewrites (nginx `internal`); a direct request
    /// gets 404.
    #[serde(skip_serializing_if = "is_false")]
    pub internal: bool,
    /// Other rules for methods not listed (nginx `limit_except`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_except: Option<LimitExcept>,
    /// The realip module at location level, applied after the location's rewrite operations
    /// when the server's did not already change the address (nginx's PREACCESS phase).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_ip: Option<RealIp>,
    /// nginx `try_files`: files (a trailing `/` = a directory) tried in order under the root;
    /// the first that exists is served here, else the last entry: `=CODE`, `@name`, or a URI
    /// to redirect to internally. Variables allowed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub try_files: Vec<String>,
    /// nginx `auth_request URI`: a GET subrequest with the request's headers decides (2xx
    /// allows, 401 and 403 refuse with that status, anything else is 500).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_request: Option<String>,
    /// nginx `auth_request_set $var VALUE`: variables set after the subrequest, from its
    /// answer (`$upstream_http_NAME`, `$upstream_status`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub auth_request_set: Vec<AuthRequestSet>,
    /// How a relative `Location` is made absolute (nginx `absolute_redirect`,
    /// `port_in_redirect`, `server_name_in_redirect`).
    #[serde(skip_serializing_if = "RedirectForm::is_default")]
    pub redirect_form: RedirectForm,
    /// Locations nested in this one (nginx: searched when this one is the longest prefix or
    /// the regex that matched; they inherit this location's settings in the importer).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Location>,
    /// nginx `default_type` set at server or location level; `None` = the http level's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_type: Option<String>,
    /// nginx `types { }` set at server or location level (extension -> type, replacing the
    /// http level's table); `None` = the http level's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_types: Option<BTreeMap<String, String>>,
    /// nginx `autoindex on` and its settings; `None` = off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoindex: Option<crate::content::Autoindex>,
    /// nginx `if_modified_since`; `None` = exact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_modified_since: Option<crate::content::IfModifiedSince>,
    /// Compression and `gzip_static` (nginx's gzip modules); `None` = the outer level's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gzip: Option<crate::gzip::Gzip>,
    /// nginx `expires`; `None` = the outer level's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<crate::gzip::Expires>,
    /// `resolver` + `resolver_timeout`: DNS servers for `proxy_pass` URLs with variables.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolver: Option<crate::resolver::Resolver>,
    /// nginx `proxy_hide_header`, `proxy_pass_header`, `proxy_ignore_headers`, `proxy_method`,
    /// `proxy_set_body`, `proxy_cookie_domain`, `proxy_cookie_path`.
    #[serde(skip_serializing_if = "crate::proxy_headers::ProxyHeaders::is_default")]
    pub proxy_headers: crate::proxy_headers::ProxyHeaders,
}

/// nginx's header filter turns a `Location` that starts with `/` into
/// `scheme://host[:port]/...` unless `absolute_redirect off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedirectForm {
    /// `absolute_redirect` (on).
    pub absolute: bool,
    /// `port_in_redirect` (on): the port unless it is the scheme's own.
    pub port: bool,
    /// `server_name_in_redirect` (off): the server's first name instead of the Host's.
    pub server_name: bool,
}

impl Default for RedirectForm {
    fn default() -> Self {
        RedirectForm {
            absolute: true,
            port: true,
            server_name: false,
        }
    }
}

impl RedirectForm {
    /// `true` for nginx's defaults.
    pub fn is_default(&self) -> bool {
        *self == RedirectForm::default()
    }
}

impl Location {
    /// Every location of a list with its nested ones, depth first (each before the ones
    /// nested in it): the order of their indices at run time.
    pub fn all(locations: &[Location]) -> Vec<&Location> {
        fn walk<'a>(list: &'a [Location], out: &mut Vec<&'a Location>) {
            for loc in list {
                out.push(loc);
                walk(&loc.locations, out);
            }
        }
        let mut out = Vec::new();
        walk(locations, &mut out);
        out
    }
}

/// `auth_request_set $variable VALUE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthRequestSet {
    /// The variable's name, without `$`.
    pub variable: String,
    /// Its value, with variables.
    pub value: String,
}

fn default_true() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Default for Location {
    fn default() -> Self {
        Self {
            match_kind: MatchKind::Prefix,
            path: "/".to_owned(),
            action: LocationAction::default(),
            proxy_set_header: BTreeMap::new(),
            proxy_redirect: ProxyRedirect::default(),
            proxy_connect_timeout: Duration::from_secs(60),
            proxy_read_timeout: Duration::from_secs(60),
            proxy_send_timeout: Duration::from_secs(60),
            proxy_next_upstream: vec![NextUpstreamWhen::Error, NextUpstreamWhen::Timeout],
            proxy_next_upstream_tries: 0,
            proxy_next_upstream_timeout: Duration::ZERO,
            proxy_intercept_errors: false,
            auth_basic: None,
            limit_conn: None,
            limit_req: None,
            limit_conn_status: 503,
            limit_req_status: 503,
            access_log: None,
            add_header: Vec::new(),
            error_page: None,
            proxy_ssl: UpstreamTls::default(),
            upstream_http2: false,
            grpc: false,
            rewrite: Vec::new(),
            client_max_body_size: None,
            proxy_pass_request_headers: true,
            proxy_pass_request_body: true,
            access: None,
            satisfy: Satisfy::All,
            internal: false,
            limit_except: None,
            real_ip: None,
            try_files: Vec::new(),
            auth_request: None,
            auth_request_set: Vec::new(),
            locations: Vec::new(),
            redirect_form: RedirectForm::default(),
            default_type: None,
            mime_types: None,
            autoindex: None,
            if_modified_since: None,
            gzip: None,
            expires: None,
            resolver: None,
            proxy_headers: crate::proxy_headers::ProxyHeaders::default(),
        }
    }
}

/// What a location does.
///
/// TOML: `action = { type = "proxy", pass = "http://xuad" }`, `{ type = "return", code = 301,
/// text = "https://example.com$request_uri" }`, `{ type = "stub_status" }`,
/// `{ type = "static", root = "html" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LocationAction {
    /// nginx `proxy_pass`.
    Proxy {
        /// `http://UPSTREAM_NAME[/uri]` or `http://HOST:PORT[/uri]`. With a URI part, the part of
        /// the request URI matching the location prefix is replaced by it (nginx rule). With
        /// variables (`http://$backend$request_uri`) it is evaluated per request: the host names
        /// an upstream, an address, or a name for the location's `resolver`.
        pass: String,
    },
    /// nginx `return CODE [TEXT|URL]`.
    Return {
        /// Status code; for 301, 302, 303, 307, 308 `text` is the `Location` URL.
        code: u16,
        /// Body text, or redirect URL; may contain variables.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// nginx `stub_status`.
    StubStatus,
    /// Serve files (nginx default content handler).
    Static {
        /// Document root; `None` = the server's `root`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        root: Option<String>,
        /// nginx `alias`: replaces the location prefix instead of appending the URI to a root.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alias: Option<String>,
        /// Index files; `None` = the server's `index`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        index: Option<Vec<String>>,
    },
}

impl Default for LocationAction {
    fn default() -> Self {
        Self::Static {
            root: None,
            alias: None,
            index: None,
        }
    }
}

/// nginx `proxy_redirect`.
///
/// TOML: `proxy_redirect = "default"`, `"off"`, or a list of `{ from = "...", to = "..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProxyRedirect {
    /// `default` or `off`.
    Mode(RedirectMode),
    /// Explicit rewrite rules, tried in order; the first match wins.
    Rules(Vec<RedirectRule>),
}

impl Default for ProxyRedirect {
    fn default() -> Self {
        Self::Mode(RedirectMode::Default)
    }
}

/// The keyword forms of `proxy_redirect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedirectMode {
    /// Replace the `proxy_pass` URL prefix by the location prefix (on the client's Host).
    Default,
    /// Leave `Location`/`Refresh` untouched.
    Off,
}

/// `proxy_redirect FROM TO`: a literal prefix (or `~`/`~*` regex) replaced by `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectRule {
    /// Prefix to match at the start of the header value.
    pub from: String,
    /// Replacement, may contain variables.
    pub to: String,
}

/// A `proxy_next_upstream` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextUpstreamWhen {
    /// Connect/send/read error before a usable response head.
    Error,
    /// Connect/send/read timeout before a usable response head.
    Timeout,
    /// Empty or malformed response head.
    InvalidHeader,
    /// Upstream answered 500.
    #[serde(rename = "http_500")]
    Http500,
    /// Upstream answered 502.
    #[serde(rename = "http_502")]
    Http502,
    /// Upstream answered 503.
    #[serde(rename = "http_503")]
    Http503,
    /// Upstream answered 504.
    #[serde(rename = "http_504")]
    Http504,
    /// Upstream answered 403 (never counts as a server failure).
    #[serde(rename = "http_403")]
    Http403,
    /// Upstream answered 404 (never counts as a server failure).
    #[serde(rename = "http_404")]
    Http404,
    /// Upstream answered 429.
    #[serde(rename = "http_429")]
    Http429,
    /// Also retry POST/LOCK/PATCH after they were sent.
    NonIdempotent,
}

/// `auth_basic REALM` + `auth_basic_user_file FILE`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthBasic {
    /// Realm shown in `WWW-Authenticate: Basic realm="..."`.
    pub realm: String,
    /// htpasswd file (bcrypt `$2y$`, apr1 `$apr1$`, `{SHA}`, `{PLAIN}`, crypt); `None` = no auth.
    /// Both may hold variables (evaluated per request, as nginx); the file is read again
    /// when its modification time or size changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_file: Option<String>,
    /// Where a relative file name made by variables is looked up (nginx's conf prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conf_dir: Option<String>,
}

/// `limit_conn ZONE NUMBER`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitConn {
    /// Name of a [`LimitConnZone`].
    pub zone: String,
    /// Maximum concurrent requests per key.
    pub limit: u32,
}

/// `limit_req zone=ZONE [burst=N] [nodelay | delay=N]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitReq {
    /// Name of a [`LimitReqZone`].
    pub zone: String,
    /// Requests allowed above the rate (default 0).
    #[serde(default)]
    pub burst: u32,
    /// Pass all requests within `burst` at once (= `delay = burst`).
    #[serde(default)]
    pub nodelay: bool,
    /// Requests within the burst passed without delay (default 0).
    #[serde(default)]
    pub delay: u32,
}

/// `add_header NAME VALUE [always]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddHeader {
    /// Header name.
    pub name: String,
    /// Value, may contain variables; an empty value adds nothing.
    pub value: String,
    /// Also add to error responses (otherwise only 200, 201, 204, 206, 301, 302, 303, 304, 307, 308).
    #[serde(default)]
    pub always: bool,
}

/// `error_page CODE... [=[RESPONSE]] URI`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorPage {
    /// Statuses (300..=599) this rule applies to.
    pub codes: Vec<u16>,
    /// Local URI (internal redirect, method becomes GET) or absolute `http(s)://` URL (302 redirect).
    pub uri: String,
    /// `=CODE`: answer with this status instead of the original one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Bare `=`: answer with the status of the page the URI produced.
    #[serde(default)]
    pub status_from_page: bool,
}

/// One problem found by [`HttpConfig::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfigError {
    /// Where: a dotted path like `servers[0].locations[1].action.pass`.
    pub at: String,
    /// What is wrong, and what was expected.
    pub message: String,
}

impl fmt::Display for HttpConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

impl std::error::Error for HttpConfigError {}

impl HttpConfig {
    /// The upstream group named `name`.
    pub fn upstream(&self, name: &str) -> Option<&UpstreamConfig> {
        self.upstreams.iter().find(|u| u.name == name)
    }

    /// Checks everything that needs no I/O; returns every problem at once (empty = valid).
    /// Regex syntax (server names, locations) is checked by the proxy when it compiles them.
    pub fn validate(&self) -> Vec<HttpConfigError> {
        let mut errors = Vec::new();
        let mut err = |at: String, message: String| errors.push(HttpConfigError { at, message });

        if self.worker_threads == Some(0) {
            err("worker_threads".into(), "must be at least 1".into());
        }
        if self.large_client_header_buffers.number == 0
            || self.large_client_header_buffers.size < 64
        {
            err(
                "large_client_header_buffers".into(),
                "needs number >= 1 and size >= 64 bytes".into(),
            );
        }
        if self.log_formats.contains_key("combined") {
            err(
                "log_formats.combined".into(),
                "`combined` is built in and cannot be redefined".into(),
            );
        }
        let check_log = |at: String, log: &AccessLog, err: &mut dyn FnMut(String, String)| {
            self.check_log(at, log, err)
        };
        for (i, log) in self.access_log.iter().enumerate() {
            check_log(format!("access_log[{i}]"), log, &mut err);
        }
        // Both kinds of zone need a supported key and a name unique among their kind.
        let zone_lists: [(&str, Vec<(&str, &str)>); 2] = [
            (
                "limit_conn_zones",
                self.limit_conn_zones
                    .iter()
                    .map(|z| (z.name.as_str(), z.key.as_str()))
                    .collect(),
            ),
            (
                "limit_req_zones",
                self.limit_req_zones
                    .iter()
                    .map(|z| (z.name.as_str(), z.key.as_str()))
                    .collect(),
            ),
        ];
        for (list, zones) in &zone_lists {
            for (i, &(name, key)) in zones.iter().enumerate() {
                // Keys are any text with variables (nginx's complex values); the proxy compiles
                // them and refuses unknown variables.
                let _ = key;
                if zones[..i].iter().any(|&(other, _)| other == name) {
                    err(
                        format!("{list}[{i}].name"),
                        format!("duplicate zone {name:?}"),
                    );
                }
            }
        }
        for (i, up) in self.upstreams.iter().enumerate() {
            let at = format!("upstreams[{i}]");
            if up.name.is_empty() {
                err(format!("{at}.name"), "empty upstream name".into());
            }
            if self.upstreams[..i].iter().any(|u| u.name == up.name) {
                err(
                    format!("{at}.name"),
                    format!("duplicate upstream {:?}", up.name),
                );
            }
            if up.servers.is_empty() {
                err(format!("{at}.servers"), "no servers".into());
            }
            for (j, server) in up.servers.iter().enumerate() {
                let at = format!("{at}.servers[{j}]");
                if server.address.is_empty() {
                    err(format!("{at}.address"), "empty address".into());
                }
                if server.weight == 0 {
                    err(format!("{at}.weight"), "weight must be at least 1".into());
                }
                // ngx_http_upstream_ip_hash_module does not set NGX_HTTP_UPSTREAM_BACKUP.
                if server.backup
                    && matches!(
                        up.method,
                        BalanceMethod::IpHash | BalanceMethod::Hash { .. }
                    )
                {
                    err(
                        format!("{at}.backup"),
                        "`backup` cannot be used with ip_hash or hash balancing".into(),
                    );
                }
            }
            if up.servers.iter().all(|s| s.backup) && !up.servers.is_empty() {
                err(format!("{at}.servers"), "every server is a backup".into());
            }
            if let Some(check) = &up.health_check {
                if check.rise == 0 || check.fall == 0 {
                    err(
                        format!("{at}.health_check"),
                        "rise and fall must be at least 1".into(),
                    );
                }
                if check.interval.is_zero() {
                    err(format!("{at}.health_check.interval"), "must be > 0".into());
                }
                if let Some(uri) = &check.uri {
                    if !uri.starts_with('/') {
                        err(
                            format!("{at}.health_check.uri"),
                            "must start with '/'".into(),
                        );
                    }
                }
            }
        }
        if self.servers.is_empty() {
            err("servers".into(), "no server blocks".into());
        }
        for (i, server) in self.servers.iter().enumerate() {
            let at = format!("servers[{i}]");
            if server.listen.is_empty() {
                err(format!("{at}.listen"), "no listen address".into());
            }
            for (j, listen) in server.listen.iter().enumerate() {
                if listen.default_server {
                    let twice = self.servers[..i]
                        .iter()
                        .flat_map(|s| s.listen.iter())
                        .chain(server.listen[..j].iter())
                        .any(|l| l.default_server && l.addr == listen.addr);
                    if twice {
                        err(
                            format!("{at}.listen[{j}]"),
                            format!("a duplicate default server for {}", listen.addr),
                        );
                    }
                }
            }
            // nginx checks the default server of each TLS address; another server without
            // certificates is served with the default server's (its handshakes select it).
            let default_of = |addr: std::net::SocketAddr| {
                let on_addr = || {
                    self.servers
                        .iter()
                        .enumerate()
                        .filter(move |(_, s)| s.listen.iter().any(|l| l.addr == addr))
                };
                on_addr()
                    .find(|(_, s)| s.listen.iter().any(|l| l.addr == addr && l.default_server))
                    .or_else(|| on_addr().next())
                    .map(|(k, _)| k)
            };
            if let Some(j) = server
                .listen
                .iter()
                .position(|l| l.ssl && default_of(l.addr) == Some(i))
            {
                if server.tls.certificates.is_empty() && !server.tls.reject_handshake {
                    err(
                        format!("{at}.listen[{j}]"),
                        format!(
                            "no \"ssl_certificate\" is defined for the \"listen ... ssl\" on {}",
                            server.listen[j].addr
                        ),
                    );
                }
            }
            crate::tls::check_server_tls(&format!("{at}.tls"), &server.tls, &mut err);
            for (j, page) in server.error_page.iter().enumerate() {
                self.check_error_page(format!("{at}.error_page[{j}]"), page, &mut err);
            }
            self.check_limits(&at, &server.limit_conn, &server.limit_req, &mut err);
            for (j, log) in server.access_log.iter().flatten().enumerate() {
                check_log(format!("{at}.access_log[{j}]"), log, &mut err);
            }
            let named_exists = |name: &str| {
                server
                    .locations
                    .iter()
                    .any(|l| l.match_kind == MatchKind::Named && l.path == name)
            };
            for (k, page) in server.error_page.iter().enumerate() {
                if page.uri.starts_with('@') && !named_exists(&page.uri) {
                    err(
                        format!("{at}.error_page[{k}]"),
                        format!("no named location {:?} in this server", page.uri),
                    );
                }
            }
            self.check_location_list(&at, &server.locations, &named_exists, &mut err);
        }
        errors
    }

    fn check_log(&self, at: String, log: &AccessLog, err: &mut dyn FnMut(String, String)) {
        if log.format != "combined" && !self.log_formats.contains_key(&log.format) {
            err(
                at.clone() + ".format",
                format!("unknown log_format {:?}", log.format),
            );
        }
        if log.path.is_empty() {
            err(at + ".path", "empty path".into());
        }
    }

    /// The locations of a server or of a location (nested), at `at`.
    fn check_location_list(
        &self,
        at: &str,
        list: &[Location],
        named_exists: &dyn Fn(&str) -> bool,
        err: &mut dyn FnMut(String, String),
    ) {
        for (j, loc) in list.iter().enumerate() {
            let at = format!("{at}.locations[{j}]");
            self.check_location(&at, loc, err);
            for (k, page) in loc.error_page.iter().flatten().enumerate() {
                if page.uri.starts_with('@') && !named_exists(&page.uri) {
                    err(
                        format!("{at}.error_page[{k}]"),
                        format!("no named location {:?} in this server", page.uri),
                    );
                }
            }
            if let Some(last) = loc.try_files.last().filter(|l| l.starts_with('@')) {
                if !named_exists(last) {
                    err(
                        format!("{at}.try_files"),
                        format!("no named location {last:?} in this server"),
                    );
                }
            }
            if let Some(le) = &loc.limit_except {
                let unknown = le
                    .methods
                    .iter()
                    .find(|m| !crate::access::LIMIT_EXCEPT_METHODS.contains(&m.as_str()));
                if le.methods.is_empty() || unknown.is_some() {
                    err(
                        format!("{at}.limit_except.methods"),
                        format!(
                            "needs methods among {}",
                            crate::access::LIMIT_EXCEPT_METHODS.join(", ")
                        ),
                    );
                }
            }
            crate::tls::check_upstream_tls(&format!("{at}.proxy_ssl"), &loc.proxy_ssl, err);
            for (k, log) in loc.access_log.iter().flatten().enumerate() {
                self.check_log(format!("{at}.access_log[{k}]"), log, err);
            }
            let dup = list[..j]
                .iter()
                .any(|l| l.path == loc.path && same_namespace(l.match_kind, loc.match_kind));
            if dup {
                err(
                    format!("{at}.path"),
                    format!("duplicate location {:?}", loc.path),
                );
            }
            if !loc.locations.is_empty() {
                if loc.match_kind == MatchKind::Named || loc.match_kind == MatchKind::Exact {
                    err(
                        format!("{at}.locations"),
                        "named and exact locations cannot have nested locations".into(),
                    );
                }
                let prefix_kind = |k: MatchKind| {
                    matches!(
                        k,
                        MatchKind::Prefix | MatchKind::PrefixNoRegex | MatchKind::Exact
                    )
                };
                for (k, inner) in loc.locations.iter().enumerate() {
                    if inner.match_kind == MatchKind::Named {
                        err(
                            format!("{at}.locations[{k}].path"),
                            format!(
                                "named location {:?} can be on server level only",
                                inner.path
                            ),
                        );
                    } else if prefix_kind(loc.match_kind)
                        && prefix_kind(inner.match_kind)
                        && !inner.path.starts_with(&loc.path)
                    {
                        err(
                            format!("{at}.locations[{k}].path"),
                            format!(
                                "location {:?} is outside location {:?}",
                                inner.path, loc.path
                            ),
                        );
                    }
                }
                self.check_location_list(&at, &loc.locations, named_exists, err);
            }
        }
    }

    fn check_location(&self, at: &str, loc: &Location, err: &mut dyn FnMut(String, String)) {
        match loc.match_kind {
            MatchKind::Exact | MatchKind::Prefix | MatchKind::PrefixNoRegex => {
                if loc.path.is_empty() {
                    err(format!("{at}.path"), "empty location path".into());
                }
            }
            MatchKind::Regex | MatchKind::RegexCaseInsensitive => {
                if loc.path.is_empty() {
                    err(format!("{at}.path"), "empty regex".into());
                }
            }
            MatchKind::Named => {
                if loc.path.len() < 2 || !loc.path.starts_with('@') {
                    err(
                        format!("{at}.path"),
                        "a named location's path is @NAME".into(),
                    );
                }
            }
        }
        if loc.try_files.len() == 1 {
            err(
                format!("{at}.try_files"),
                "needs at least two entries: files to try, then =CODE, @name or a URI".into(),
            );
        }
        match &loc.action {
            // With variables, the URL is only known per request.
            LocationAction::Proxy { pass } if pass.contains('$') => {}
            LocationAction::Proxy { pass } => match split_proxy_pass(pass) {
                None => err(
                    format!("{at}.action.pass"),
                    format!("{pass:?} is not an http:// or https:// URL"),
                ),
                Some((host, _)) => {
                    let has_port = host
                        .rsplit_once(':')
                        .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
                    if !has_port
                        && !pass.starts_with("https://")
                        && self.upstream(host).is_none()
                        && host.parse::<std::net::IpAddr>().is_err()
                    {
                        err(format!("{at}.action.pass"), format!("unknown upstream {host:?} (no `upstream` of that name and no port)"));
                    }
                }
            },
            LocationAction::Return { code, .. } => {
                if *code > 999 {
                    err(
                        format!("{at}.action.code"),
                        format!("invalid status {code}"),
                    );
                }
            }
            LocationAction::StubStatus => {}
            LocationAction::Static { root, alias, .. } => {
                if root.is_some() && alias.is_some() {
                    err(
                        format!("{at}.action"),
                        "`root` and `alias` are exclusive".into(),
                    );
                }
            }
        }
        for (status, name) in [
            (loc.limit_conn_status, "limit_conn_status"),
            (loc.limit_req_status, "limit_req_status"),
        ] {
            if !(400..=599).contains(&status) {
                err(
                    format!("{at}.{name}"),
                    format!("{status} is outside 400..=599"),
                );
            }
        }
        for name in loc.proxy_set_header.keys() {
            if !is_token(name) {
                err(
                    format!("{at}.proxy_set_header"),
                    format!("invalid header name {name:?}"),
                );
            }
        }
        for (k, header) in loc.add_header.iter().enumerate() {
            if !is_token(&header.name) {
                err(
                    format!("{at}.add_header[{k}].name"),
                    format!("invalid header name {:?}", header.name),
                );
            }
        }
        if let Some(pages) = &loc.error_page {
            for (k, page) in pages.iter().enumerate() {
                self.check_error_page(format!("{at}.error_page[{k}]"), page, err);
            }
        }
        let no_conn = Vec::new();
        let no_req = Vec::new();
        self.check_limits(
            at,
            loc.limit_conn.as_ref().unwrap_or(&no_conn),
            loc.limit_req.as_ref().unwrap_or(&no_req),
            err,
        );
    }

    fn check_limits(
        &self,
        at: &str,
        conn: &[LimitConn],
        req: &[LimitReq],
        err: &mut dyn FnMut(String, String),
    ) {
        for (k, rule) in conn.iter().enumerate() {
            if !self.limit_conn_zones.iter().any(|z| z.name == rule.zone) {
                err(
                    format!("{at}.limit_conn[{k}].zone"),
                    format!("unknown limit_conn_zone {:?}", rule.zone),
                );
            }
            if rule.limit == 0 {
                err(
                    format!("{at}.limit_conn[{k}].limit"),
                    "must be at least 1".into(),
                );
            }
        }
        for (k, rule) in req.iter().enumerate() {
            if !self.limit_req_zones.iter().any(|z| z.name == rule.zone) {
                err(
                    format!("{at}.limit_req[{k}].zone"),
                    format!("unknown limit_req_zone {:?}", rule.zone),
                );
            }
        }
    }

    fn check_error_page(&self, at: String, page: &ErrorPage, err: &mut dyn FnMut(String, String)) {
        if page.codes.is_empty() {
            err(format!("{at}.codes"), "no status codes".into());
        }
        for code in &page.codes {
            if !(300..=599).contains(code) {
                err(
                    format!("{at}.codes"),
                    format!("{code} is outside 300..=599"),
                );
            }
        }
        let local = page.uri.starts_with('/') || (page.uri.len() > 1 && page.uri.starts_with('@'));
        let remote = page.uri.starts_with("http://") || page.uri.starts_with("https://");
        if !local && !remote {
            err(
                format!("{at}.uri"),
                format!("{:?} must start with '/', '@' or http(s)://", page.uri),
            );
        }
        if page.status.is_some() && page.status_from_page {
            err(
                format!("{at}.status"),
                "`status` and `status_from_page` are exclusive".into(),
            );
        }
    }
}

/// Exact and prefix locations share a name space only with their own kind (nginx rejects
/// `location /a` twice, but `location = /a` next to `location /a` is fine).
fn same_namespace(a: MatchKind, b: MatchKind) -> bool {
    use MatchKind::*;
    matches!(
        (a, b),
        (Exact, Exact) | (Prefix | PrefixNoRegex, Prefix | PrefixNoRegex) | (Named, Named)
    )
}

/// RFC 9110 §5.6.2 token.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Splits a `proxy_pass` value into (`host[:port]`, URI part) — `None` if not `http://...` or
/// `https://...`. The uri part is `None` when the URL has no path (nginx then passes the request
/// URI unchanged).
pub fn split_proxy_pass(pass: &str) -> Option<(&str, Option<&str>)> {
    let rest = pass
        .strip_prefix("http://")
        .or_else(|| pass.strip_prefix("https://"))?;
    let (host, uri) = match rest.find('/') {
        Some(slash) => (&rest[..slash], Some(&rest[slash..])),
        None => (rest, None),
    };
    if host.is_empty() {
        return None;
    }
    Some((host, uri))
}

/// Parses an nginx time value (`"1m30s"`, `"500ms"`, `"10"` = seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("invalid duration {text:?}: expected like \"60s\", \"1m30s\", \"500ms\"");
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let millis_per = match unit {
            "ms" => 1,
            "s" | "" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 604_800_000,
            _ => return Err(bad()),
        };
        let add = number.checked_mul(millis_per).ok_or_else(bad)?;
        total = total
            .checked_add(Duration::from_millis(add))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// Formats a duration as `"<n>s"` when whole seconds, else `"<n>ms"`.
pub fn format_duration(value: Duration) -> String {
    if value.subsec_millis() == 0 {
        format!("{}s", value.as_secs())
    } else {
        format!("{}ms", value.as_millis())
    }
}

/// Parses an nginx size (`"10k"`, `"1m"`, `"1g"`, `"512"` = bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let bad = || format!("invalid size {text:?}: expected bytes or like \"10k\", \"1m\"");
    let (number, multiplier) = match text.as_bytes().last() {
        Some(b'k' | b'K') => (&text[..text.len() - 1], 1024),
        Some(b'm' | b'M') => (&text[..text.len() - 1], 1024 * 1024),
        Some(b'g' | b'G') => (&text[..text.len() - 1], 1024 * 1024 * 1024),
        _ => (text, 1),
    };
    let number: u64 = number.parse().map_err(|_| bad())?;
    number.checked_mul(multiplier).ok_or_else(bad)
}

/// A TOML integer or a string, for durations and sizes.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(u64),
    Text(String),
}

/// serde for [`Duration`] fields in nginx time syntax.
pub mod duration {
    use super::*;

    /// Serializes as `"<n>s"` / `"<n>ms"`.
    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(*value))
    }

    /// Accepts a TOML integer (seconds) or an nginx time string.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        match NumberOrText::deserialize(deserializer)? {
            NumberOrText::Number(secs) => Ok(Duration::from_secs(secs)),
            NumberOrText::Text(text) => parse_duration(&text).map_err(serde::de::Error::custom),
        }
    }
}

/// serde for `Option<Duration>` fields in nginx time syntax.
pub mod opt_duration {
    use super::*;

    /// Serializes `Some` as in [`duration`]; `None` as unit.
    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => serializer.serialize_str(&format_duration(*d)),
            None => serializer.serialize_none(),
        }
    }

    /// Accepts what [`duration`] accepts.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        duration::deserialize(deserializer).map(Some)
    }
}

/// serde for byte sizes in nginx size syntax.
pub mod size {
    use super::*;

    /// Serializes as an integer number of bytes.
    pub fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(*value)
    }

    /// Accepts a TOML integer (bytes) or an nginx size string.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        match NumberOrText::deserialize(deserializer)? {
            NumberOrText::Number(bytes) => Ok(bytes),
            NumberOrText::Text(text) => parse_size(&text).map_err(serde::de::Error::custom),
        }
    }
}

/// serde for `Option<u64>` sizes.
pub mod opt_size {
    use super::*;

    /// Serializes `Some` as an integer; `None` as unit.
    pub fn serialize<S: Serializer>(value: &Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => serializer.serialize_u64(*bytes),
            None => serializer.serialize_none(),
        }
    }

    /// Accepts what [`size`] accepts.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<u64>, D::Error> {
        size::deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The seed's nginx.conf (README section 3), written natively.
    const SEED: &str = r#"
worker_threads = 4
worker_connections = 65535
keepalive_timeout = "120s"
sendfile = true
log_formats.main = '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for"'
access_log = [{ path = "logs/access.log", format = "main" }]
limit_conn_zones = [{ name = "perip", key = "$binary_remote_addr", size = "10m" }]
mime_types = { html = "text/html", css = "text/css" }
default_type = "application/octet-stream"

[[upstreams]]
name = "xuad"
method = "ip_hash"
servers = [
  { address = "192.168.2.226:80", max_fails = 1, fail_timeout = "60s" },
  { address = "192.168.2.227:80", max_fails = 1, fail_timeout = "60s" },
]

[[servers]]
listen = [{ addr = "0.0.0.0:80", default_server = true }]
server_name = ["localhost"]
limit_conn = [{ zone = "perip", limit = 200 }]
root = "html"
error_page = [{ codes = [404, 500, 502, 503, 504], uri = "/404.html" }]

[[servers.locations]]
path = "/"
action = { type = "proxy", pass = "http://xuad" }
proxy_redirect = "off"
proxy_set_header = { Host = "$host", X-Real-IP = "$remote_addr", X-Forwarded-For = "$proxy_add_x_forwarded_for" }

[[servers.locations]]
path = "/NginxStatus"
action = { type = "stub_status" }
access_log = []
auth_basic = { realm = "NginxStatus" }
"#;

    #[test]
    fn seed_config_parses_validates_and_round_trips() {
        let cfg: HttpConfig = toml::from_str(SEED).unwrap();
        assert_eq!(cfg.validate(), vec![]);
        assert_eq!(cfg.keepalive_timeout, Duration::from_secs(120));
        assert_eq!(cfg.limit_conn_zones[0].size, 10 * 1024 * 1024);
        assert_eq!(cfg.upstreams[0].method, BalanceMethod::IpHash);
        assert_eq!(
            cfg.upstreams[0].servers[1].fail_timeout,
            Duration::from_secs(60)
        );
        assert_eq!(cfg.upstreams[0].keepalive, 32);
        let loc = &cfg.servers[0].locations[0];
        assert_eq!(loc.proxy_redirect, ProxyRedirect::Mode(RedirectMode::Off));
        assert_eq!(
            loc.proxy_next_upstream,
            vec![NextUpstreamWhen::Error, NextUpstreamWhen::Timeout]
        );
        assert_eq!(cfg.servers[0].locations[1].access_log, Some(vec![]));
        let text = toml::to_string(&cfg).unwrap();
        let again: HttpConfig = toml::from_str(&text).unwrap();
        assert_eq!(again, cfg);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = toml::from_str::<HttpConfig>("worker_threadz = 2").unwrap_err();
        assert!(err.to_string().contains("worker_threadz"), "{err}");
        let err = toml::from_str::<HttpConfig>(
            "[[servers]]\n[[servers.locations]]\naction = { type = \"proxy\", pass = \"http://a\", bogus = 1 }",
        )
        .unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn validation_names_unknown_upstream_and_zone() {
        let mut cfg = HttpConfig::default();
        cfg.servers.push(ServerBlock {
            locations: vec![Location {
                action: LocationAction::Proxy {
                    pass: "http://nowhere".into(),
                },
                limit_conn: Some(vec![LimitConn {
                    zone: "z".into(),
                    limit: 1,
                }]),
                ..Location::default()
            }],
            ..ServerBlock::default()
        });
        let errors = cfg.validate();
        assert!(
            errors
                .iter()
                .any(|e| e.at == "servers[0].locations[0].action.pass"),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.at == "servers[0].locations[0].limit_conn[0].zone"),
            "{errors:?}"
        );
        // A literal host:port needs no upstream.
        cfg.servers[0].locations[0].action = LocationAction::Proxy {
            pass: "http://127.0.0.1:8080/x".into(),
        };
        cfg.servers[0].locations[0].limit_conn = None;
        assert_eq!(cfg.validate(), vec![]);
    }

    #[test]
    fn ip_hash_rejects_backup_like_nginx() {
        let mut cfg: HttpConfig = toml::from_str(SEED).unwrap();
        cfg.upstreams[0].servers[1].backup = true;
        assert!(cfg
            .validate()
            .iter()
            .any(|e| e.at.ends_with("servers[1].backup")));
    }

    #[test]
    fn nginx_time_and_size_syntax() {
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1h 2s").unwrap(), Duration::from_secs(3602));
        assert!(parse_duration("1x").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_size("8k").unwrap(), 8192);
        assert_eq!(parse_size("1m").unwrap(), 1 << 20);
        assert!(parse_size("k").is_err());
        assert_eq!(
            "30r/m"
                .parse::<RequestRate>()
                .unwrap()
                .millirequests_per_second(),
            500
        );
        assert!("0r/s".parse::<RequestRate>().is_err());
    }
}
