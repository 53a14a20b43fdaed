//! A configuration compiled for serving: routing tables, upstreams with balancer state and
//! connection pools, limiters, header templates and log sinks. Swapped whole on reload.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;

use halo_config::http::{
    split_proxy_pass, BalanceMethod, ErrorPage, HttpConfig, Location, LocationAction,
    NextUpstreamWhen, ProxyRedirect, RedirectMode, ServerBlock, UpstreamConfig,
};
use halo_lb::limit::{ConnLimiter, Rate, RequestDelay, RequestLimitSpec, RequestLimiter};
use halo_lb::{Method, ServerSpec, Upstream};
use http::{HeaderName, HeaderValue};
use hyper::server::conn::http1;

use crate::access_log::{LogFiles, LogSink};
use crate::error::ProxyError;
use crate::pool::{PeerPool, PoolLimits, Pools};
use crate::rewrite_rule::{RewriteRule, RuleFrom};
use crate::routing::{Locations, ServerNames};
use crate::variables::Template;

/// One upstream group ready for use.
#[derive(Debug)]
pub(crate) struct UpstreamRt {
    pub name: String,
    pub lb: Upstream,
    /// Pool of each peer, indexed like `lb.servers()`.
    pub pools: Vec<Arc<PeerPool>>,
    pub limits: PoolLimits,
    /// `hash KEY`.
    pub hash_key: Option<Template>,
}

/// The `proxy_pass` of a location.
#[derive(Debug)]
pub(crate) struct ProxyPassRt {
    pub upstream: Arc<UpstreamRt>,
    /// The URI part of `proxy_pass http://host/uri`, if any.
    pub uri: Option<String>,
    /// `$proxy_host`: the host[:port] part of proxy_pass.
    pub proxy_host: HeaderValue,
    /// `proxy_redirect`, `proxy_hide_header`, `proxy_cookie_*`, `proxy_method`, ...
    pub headers: Arc<crate::upstream_headers::UpstreamHeadersRt>,
    /// `proxy_pass https://`: the TLS client settings (`proxy_ssl_*`).
    pub tls: Option<Arc<crate::upstream_tls::UpstreamTlsRt>>,
    /// HTTP/2 to the upstream (`proxy_http_version 2`, `grpc_pass`).
    pub h2: bool,
    /// `proxy_pass` with variables: evaluated per request into a `ProxyPassRt` of its own
    /// (`upstream` is then an empty placeholder).
    pub dynamic: Option<Arc<crate::dynamic_pass::DynamicPassRt>>,
    /// `uri` is sent as it is (a URL with variables that has a path).
    pub verbatim: bool,
}

/// What a location does, compiled.
#[derive(Debug)]
pub(crate) enum ActionRt {
    Proxy(ProxyPassRt),
    Return {
        code: u16,
        text: Option<Template>,
    },
    StubStatus,
    Static {
        root: Option<PathBuf>,
        alias: Option<PathBuf>,
        index: Option<Vec<String>>,
    },
}

/// Which `proxy_next_upstream` conditions apply.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NextUpstream {
    pub error: bool,
    pub timeout: bool,
    pub invalid_header: bool,
    pub non_idempotent: bool,
    /// Statuses that move on: 500, 502, 503, 504, 403, 404, 429.
    pub statuses: [bool; 7],
}

impl NextUpstream {
    const STATUSES: [u16; 7] = [500, 502, 503, 504, 403, 404, 429];

    fn new(list: &[NextUpstreamWhen]) -> Self {
        let mut next = NextUpstream::default();
        for when in list {
            match when {
                NextUpstreamWhen::Error => next.error = true,
                NextUpstreamWhen::Timeout => next.timeout = true,
                NextUpstreamWhen::InvalidHeader => next.invalid_header = true,
                NextUpstreamWhen::NonIdempotent => next.non_idempotent = true,
                NextUpstreamWhen::Http500 => next.statuses[0] = true,
                NextUpstreamWhen::Http502 => next.statuses[1] = true,
                NextUpstreamWhen::Http503 => next.statuses[2] = true,
                NextUpstreamWhen::Http504 => next.statuses[3] = true,
                NextUpstreamWhen::Http403 => next.statuses[4] = true,
                NextUpstreamWhen::Http404 => next.statuses[5] = true,
                NextUpstreamWhen::Http429 => next.statuses[6] = true,
            }
        }
        next
    }

    /// Whether an upstream answer with `status` moves the request to the next server.
    pub fn on_status(&self, status: u16) -> bool {
        Self::STATUSES
            .iter()
            .zip(self.statuses)
            .any(|(s, on)| on && *s == status)
    }
}

/// A `proxy_set_header` value, precomputed as far as possible.
#[derive(Debug)]
pub(crate) enum HeaderSource {
    /// No variables: built once.
    Constant(HeaderValue),
    /// Exactly `$proxy_host` (the default Host).
    ProxyHost,
    /// Rendered per request.
    Template(Template),
}

impl HeaderSource {
    fn new(template: Template) -> Self {
        if let Some(text) = template.as_constant() {
            if let Ok(value) = HeaderValue::from_str(text) {
                return HeaderSource::Constant(value);
            }
        }
        let only_proxy_host = {
            let mut vars = template.vars();
            matches!(
                (vars.next(), vars.next()),
                (Some(crate::variables::Var::ProxyHost), None)
            )
        };
        if only_proxy_host && template.render(&NoVars).is_empty() {
            return HeaderSource::ProxyHost;
        }
        HeaderSource::Template(template)
    }
}

/// Renders only the literal parts (to tell `$proxy_host` from `x$proxy_host`).
struct NoVars;

impl crate::variables::VarSource for NoVars {
    fn write_var(&self, _var: &crate::variables::Var, _out: &mut String) {}
}

/// Key of a limit zone.
#[derive(Debug, Clone)]
pub(crate) enum LimitKey {
    BinaryRemoteAddr,
    RemoteAddr,
    Empty,
    /// Any other key, rendered per request (an empty result is not limited, as in nginx).
    Template(Arc<Template>),
}

impl LimitKey {
    fn new(key: &str, user: &[String]) -> Result<Self, String> {
        Ok(match key {
            "$binary_remote_addr" => LimitKey::BinaryRemoteAddr,
            "$remote_addr" => LimitKey::RemoteAddr,
            "" => LimitKey::Empty,
            other => LimitKey::Template(Arc::new(Template::parse_with(other, user)?)),
        })
    }
}

/// A location ready for use.
#[derive(Debug)]
pub(crate) struct LocationRt {
    pub cfg: Location,
    pub action: ActionRt,
    /// proxy_set_header without empty values; Host included (default `$proxy_host`).
    /// `proxy_set_header`: name, its spelling in the configuration, value.
    pub set_headers: Vec<(HeaderName, bytes::Bytes, HeaderSource)>,
    /// Names whose client value must not be passed (all of proxy_set_header's names).
    pub override_names: Vec<HeaderName>,
    pub add_headers: Vec<(HeaderName, Template, bool)>,
    /// How `add_header` spelled its names, where that is not Title-Case.
    pub add_header_case: Option<crate::header_case::HeaderCase>,
    pub limit_conn: Vec<(Arc<ConnLimiter>, u32, LimitKey)>,
    pub limit_req: Vec<(Arc<RequestLimiter>, LimitKey)>,
    pub access_logs: Vec<Arc<LogSink>>,
    pub error_pages: Vec<ErrorPage>,
    /// `allow`/`deny`, `auth_basic`, `satisfy`, `limit_except`, `internal`.
    pub access: crate::access::LocationAccess,
    /// The realip module at location level (applied when the server's did not change the
    /// address).
    pub real_ip: Option<crate::real_ip::RealIpRt>,
    /// `try_files`.
    pub try_files: Option<crate::try_files::TryFiles>,
    /// `auth_request` and its `auth_request_set` lines.
    pub auth_request: Option<crate::auth_request::AuthRequestRt>,
    pub next_upstream: NextUpstream,
    /// Rewrite-module operations of the location (run once it is chosen).
    pub rewrite: Vec<crate::rewrite::OpRt>,
    /// `add_header` values use `$upstream_*` (the tries are then recorded for them).
    pub headers_use_upstream: bool,
    /// gzip, gzip_static and expires; `None` when none of them is on here.
    pub filters: Option<Arc<crate::gzip::FiltersRt>>,
    /// `types { }` / `default_type` of the server or location; `None` = the http level's.
    pub types: Option<crate::mime::LocTypes>,
}

/// A server block ready for use.
#[derive(Debug)]
pub(crate) struct ServerRt {
    /// `$server_name`: the first name.
    pub name: String,
    pub locations: Vec<LocationRt>,
    pub table: Locations,
    pub root: PathBuf,
    pub index: Vec<String>,
    /// `autoindex` for requests no location matched.
    pub autoindex: Option<halo_config::content::Autoindex>,
    /// The server's own `error_page` rules (for requests no location matched).
    pub error_pages: Vec<ErrorPage>,
    /// Rewrite-module operations run before the location is chosen.
    pub rewrite: Vec<crate::rewrite::OpRt>,
    /// The server or one of its locations has rewrite operations (the request then goes
    /// through the rewrite phases).
    pub rewrites: bool,
    /// Access rules for requests no location takes.
    pub access: crate::access::AccessRt,
    /// The realip module at server level, applied once the server is chosen.
    pub real_ip: Option<crate::real_ip::RealIpRt>,
    /// Named locations (`@name`) by name, as indices into `locations`.
    pub named: HashMap<String, usize>,
    /// gzip and expires for requests no location takes.
    pub filters: Option<Arc<crate::gzip::FiltersRt>>,
}

/// The compiled configuration.
#[derive(Debug)]
pub(crate) struct Runtime {
    pub cfg: Arc<HttpConfig>,
    pub http1: http1::Builder,
    /// Server name tables by configured listen address.
    pub listeners: HashMap<SocketAddr, ServerNames>,
    pub servers: Vec<ServerRt>,
    pub upstreams: HashMap<String, Arc<UpstreamRt>>,
    pub conn_zones: HashMap<String, Arc<ConnLimiter>>,
    pub req_limiters: HashMap<(String, u32, Option<u32>), Arc<RequestLimiter>>,
    pub mime: HashMap<String, HeaderValue>,
    pub default_type: HeaderValue,
    /// `large_client_header_buffers` size: longest request line (414 beyond).
    pub max_request_line: usize,
    /// `large_client_header_buffers` number × size: longest request head (431 beyond).
    pub max_head: usize,
    /// The `Server` header of every response (`halo/VERSION`, or `halo` with `server_tokens off`);
    /// an upstream's own `Server` is replaced, as nginx hides it by default.
    pub server_header: HeaderValue,
    /// TLS addresses (`listen ... ssl`): SNI table and each server's rustls configuration.
    pub tls: HashMap<SocketAddr, Arc<crate::tls_config::TlsListener>>,
    /// Plain addresses whose default server speaks HTTP/2: a connection that opens with the
    /// HTTP/2 preface is served as h2c (prior knowledge), as nginx 1.25.1+ does.
    pub h2c: HashMap<SocketAddr, halo_config::http::Http2Settings>,
    /// Addresses whose connections open with a PROXY protocol header.
    pub proxy_protocol: std::collections::HashSet<SocketAddr>,
    /// Session ticket keys, kept across reloads.
    pub ticketers: Arc<crate::tls_config::Ticketers>,
    /// Names made by `set`, `map` and named regex captures (lower case), indexed by
    /// `Var::User`.
    pub user_vars: Vec<String>,
    /// The `map` defining each of `user_vars`, if one does.
    pub maps: Vec<Option<Arc<crate::defined_vars::DefinedVar>>>,
    /// The roots with variables, compiled ([`crate::request_vars::root_for`]).
    pub root_templates: HashMap<PathBuf, Template>,
    pools: Arc<Pools>,
}

/// Approximate bytes per key in nginx's zones (for turning `10m` into a key count).
const ZONE_BYTES_PER_KEY: u64 = 128;

impl Runtime {
    /// Compiles `cfg`, carrying balancer state, limiter state and pools over from `old`.
    pub fn build(
        cfg: Arc<HttpConfig>,
        old: Option<&Runtime>,
        pools: &Arc<Pools>,
        logs: &LogFiles,
    ) -> Result<Runtime, ProxyError> {
        let mut errors: Vec<String> = cfg.validate().into_iter().map(|e| e.to_string()).collect();
        if !errors.is_empty() {
            return Err(ProxyError::Config(errors));
        }
        let mut http1 = http1::Builder::new();
        let buffers = &cfg.large_client_header_buffers;
        let max_head =
            usize::try_from(u64::from(buffers.number) * buffers.size).unwrap_or(usize::MAX);
        http1
            .keep_alive(!cfg.keepalive_timeout.is_zero())
            // hyper cannot carry an upstream's own spelling: Title-Case is what nginx's
            // and most upstreams' names look like (halo's codec keeps the exact spelling).
            .title_case_headers(true)
            .header_read_timeout(None)
            .max_header_size(max_head)
            .max_headers(100.max(max_head / 64).min(4096))
            .timer(hyper_util::rt::TokioTimer::new());

        let mut upstreams: HashMap<String, Arc<UpstreamRt>> = HashMap::new();
        for up in &cfg.upstreams {
            match build_upstream(up, pools) {
                Ok(rt) => {
                    if let Some(previous) = old.and_then(|o| o.upstreams.get(&up.name)) {
                        rt.lb.carry_state_from(&previous.lb);
                    }
                    upstreams.insert(up.name.clone(), Arc::new(rt));
                }
                Err(e) => errors.push(e),
            }
        }

        let mut conn_zones = HashMap::new();
        for zone in &cfg.limit_conn_zones {
            let reuse = old.and_then(|o| {
                let same = o.cfg.limit_conn_zones.iter().any(|z| z == zone);
                same.then(|| o.conn_zones.get(&zone.name).cloned())
                    .flatten()
            });
            let keys = usize::try_from(zone.size / ZONE_BYTES_PER_KEY)
                .unwrap_or(usize::MAX)
                .max(1);
            conn_zones.insert(
                zone.name.clone(),
                reuse.unwrap_or_else(|| Arc::new(ConnLimiter::new(keys))),
            );
        }

        let mut mime = HashMap::new();
        let table: Vec<(String, String)> = if cfg.mime_types.is_empty() {
            DEFAULT_MIME
                .iter()
                .map(|(e, t)| ((*e).to_owned(), (*t).to_owned()))
                .collect()
        } else {
            cfg.mime_types
                .iter()
                .map(|(e, t)| (e.to_ascii_lowercase(), t.clone()))
                .collect()
        };
        for (ext, kind) in table {
            match HeaderValue::from_str(&kind) {
                Ok(value) => {
                    mime.insert(ext, value);
                }
                Err(_) => errors.push(format!("mime_types.{ext}: invalid type {kind:?}")),
            }
        }
        let default_type = HeaderValue::from_str(&cfg.default_type)
            .unwrap_or(HeaderValue::from_static("text/plain"));

        let mut runtime = Runtime {
            cfg: cfg.clone(),
            http1,
            listeners: HashMap::new(),
            servers: Vec::new(),
            upstreams,
            conn_zones,
            req_limiters: HashMap::new(),
            mime,
            default_type,
            max_request_line: usize::try_from(buffers.size).unwrap_or(usize::MAX),
            max_head,
            server_header: if cfg.server_tokens {
                HeaderValue::from_static(concat!("halo/", env!("CARGO_PKG_VERSION")))
            } else {
                HeaderValue::from_static("halo")
            },
            tls: HashMap::new(),
            proxy_protocol: Default::default(),
            h2c: HashMap::new(),
            ticketers: old.map(|o| o.ticketers.clone()).unwrap_or_default(),
            user_vars: user_var_names(&cfg),
            maps: Vec::new(),
            root_templates: HashMap::new(),
            pools: pools.clone(),
        };

        runtime.maps = crate::defined_vars::compile(&cfg, &runtime.user_vars, &mut errors);
        runtime.root_templates =
            crate::request_vars::root_templates(&cfg, &runtime.user_vars, &mut errors);
        let http_logs = match open_logs(&cfg, &cfg.access_log, logs, &runtime.user_vars) {
            Ok(sinks) => sinks,
            Err(e) => {
                errors.push(e);
                Vec::new()
            }
        };
        let mut by_listen: HashMap<SocketAddr, (Vec<usize>, Option<usize>)> = HashMap::new();
        for (index, server) in cfg.servers.iter().enumerate() {
            for listen in &server.listen {
                let entry = by_listen.entry(listen.addr).or_default();
                entry.0.push(index);
                if listen.default_server && entry.1.is_none() {
                    entry.1 = Some(index);
                }
            }
            match runtime.build_server(server, &http_logs, old, logs) {
                Ok(rt) => runtime.servers.push(rt),
                Err(mut e) => errors.append(&mut e),
            }
        }
        let mut built_tls: HashMap<(usize, bool), Arc<crate::tls_config::ServerTlsRt>> =
            HashMap::new();
        for (addr, (indices, default)) in by_listen {
            let default = default.or(indices.first().copied()).unwrap_or(0);
            let names = || {
                indices
                    .iter()
                    .map(|&i| (i, cfg.servers[i].server_name.as_slice()))
            };
            // nginx: listen options of one address hold for every server on it.
            let on_addr = |f: fn(&halo_config::http::Listen) -> bool| {
                indices
                    .iter()
                    .any(|&i| cfg.servers[i].listen.iter().any(|l| l.addr == addr && f(l)))
            };
            let (ssl, h2_addr) = (on_addr(|l| l.ssl), on_addr(|l| l.http2));
            if on_addr(|l| l.proxy_protocol) {
                runtime.proxy_protocol.insert(addr);
            }
            if ssl {
                let mut servers = HashMap::new();
                for &i in &indices {
                    let tls = &cfg.servers[i].tls;
                    if tls.certificates.is_empty() && !tls.reject_handshake {
                        continue;
                    }
                    let h2 = h2_addr || cfg.servers[i].http2.enabled;
                    let built = match built_tls.get(&(i, h2)) {
                        Some(b) => b.clone(),
                        None => match crate::tls_config::build_server_tls(
                            &cfg.servers[i],
                            h2,
                            &runtime.ticketers,
                        ) {
                            Ok(b) => {
                                let b = Arc::new(b);
                                built_tls.insert((i, h2), b.clone());
                                b
                            }
                            Err(mut e) => {
                                errors.append(&mut e);
                                continue;
                            }
                        },
                    };
                    servers.insert(i, built);
                }
                if let Ok(names) = ServerNames::new(names(), default) {
                    runtime.tls.insert(
                        addr,
                        Arc::new(crate::tls_config::TlsListener::new(names, servers)),
                    );
                }
            } else if h2_addr || cfg.servers[default].http2.enabled {
                let mut settings = cfg.servers[default].http2;
                settings.enabled = true;
                runtime.h2c.insert(addr, settings);
            }
            match ServerNames::new(names(), default) {
                Ok(table) => {
                    runtime.listeners.insert(addr, table);
                }
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(ProxyError::Config(errors));
        }
        Ok(runtime)
    }

    fn build_server(
        &mut self,
        server: &ServerBlock,
        http_logs: &[Arc<LogSink>],
        old: Option<&Runtime>,
        logs: &LogFiles,
    ) -> Result<ServerRt, Vec<String>> {
        let mut errors = Vec::new();
        let server_logs = match &server.access_log {
            None => http_logs.to_vec(),
            Some(list) => open_logs(&self.cfg, list, logs, &self.user_vars).unwrap_or_else(|e| {
                errors.push(e);
                Vec::new()
            }),
        };
        let table = Locations::new(&server.locations).map_err(|e| vec![e])?;
        let all = Location::all(&server.locations);
        let mut locations = Vec::new();
        for loc in all.iter().copied() {
            match self.build_location(server, loc, &server_logs, old, logs) {
                Ok(rt) => locations.push(rt),
                Err(e) => errors.push(format!("location {:?}: {e}", loc.path)),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let rewrite = crate::rewrite::compile(&server.rewrite, &self.user_vars)
            .map_err(|e| vec![format!("server rewrite: {e}")])?;
        // Named captures of regex locations are variables set when the location matches: the
        // request then takes the rewrite path, which keeps them.
        let named_captures = all.iter().enumerate().any(|(i, _)| {
            table
                .regex(i)
                .is_some_and(|r| r.capture_names().flatten().next().is_some())
        });
        let rewrites = !rewrite.is_empty()
            || named_captures
            || locations.iter().any(|l| !l.rewrite.is_empty());
        Ok(ServerRt {
            name: server.server_name.first().cloned().unwrap_or_default(),
            locations,
            table,
            root: PathBuf::from(&server.root),
            index: server.index.clone(),
            autoindex: server.autoindex.clone(),
            error_pages: server.error_page.clone(),
            rewrite,
            rewrites,
            access: crate::access::AccessRt::build(
                &server.access,
                server.satisfy,
                server.auth_basic.as_ref(),
                &self.user_vars,
            )
            .map_err(|e| vec![e])?,
            real_ip: server
                .real_ip
                .as_ref()
                .map(crate::real_ip::RealIpRt::build)
                .transpose()
                .map_err(|e| vec![e])?,
            named: all
                .iter()
                .enumerate()
                .filter(|(_, l)| l.match_kind == halo_config::http::MatchKind::Named)
                .map(|(i, l)| (l.path.clone(), i))
                .collect(),
            filters: crate::gzip::FiltersRt::build(
                server.gzip.as_ref().or(self.cfg.gzip.as_ref()),
                server.expires.or(self.cfg.expires),
            )
            .map_err(|e| vec![e])?,
        })
    }

    fn build_location(
        &mut self,
        server: &ServerBlock,
        loc: &Location,
        server_logs: &[Arc<LogSink>],
        old: Option<&Runtime>,
        logs: &LogFiles,
    ) -> Result<LocationRt, String> {
        let action = match &loc.action {
            LocationAction::Proxy { pass } => {
                ActionRt::Proxy(self.build_proxy_pass(pass, loc, old)?)
            }
            LocationAction::Return { code, text } => ActionRt::Return {
                code: *code,
                text: text
                    .as_deref()
                    .map(|t| Template::parse_with(t, &self.user_vars))
                    .transpose()?,
            },
            LocationAction::StubStatus => ActionRt::StubStatus,
            LocationAction::Static { root, alias, index } => ActionRt::Static {
                root: root.as_ref().map(PathBuf::from),
                alias: alias.as_ref().map(PathBuf::from),
                index: index.clone(),
            },
        };
        let mut set_headers = Vec::new();
        let mut override_names = Vec::new();
        let mut has_host = false;
        for (name, value) in &loc.proxy_set_header {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name {name:?}"))?;
            has_host |= header == http::header::HOST;
            override_names.push(header.clone());
            if !value.is_empty() {
                let spelled = bytes::Bytes::copy_from_slice(name.as_bytes());
                set_headers.push((
                    header,
                    spelled,
                    HeaderSource::new(Template::parse_with(value, &self.user_vars)?),
                ));
            }
        }
        if !has_host {
            override_names.push(http::header::HOST);
            set_headers.push((
                http::header::HOST,
                bytes::Bytes::from_static(b"Host"),
                HeaderSource::ProxyHost,
            ));
        }
        let mut add_headers = Vec::new();
        for header in &loc.add_header {
            let name = HeaderName::from_bytes(header.name.as_bytes())
                .map_err(|_| format!("invalid header name {:?}", header.name))?;
            add_headers.push((
                name,
                Template::parse_with(&header.value, &self.user_vars)?,
                header.always,
            ));
        }
        let mut limit_conn = Vec::new();
        for rule in loc.limit_conn.as_ref().unwrap_or(&server.limit_conn) {
            let zone = self
                .conn_zones
                .get(&rule.zone)
                .ok_or_else(|| format!("unknown limit_conn zone {:?}", rule.zone))?;
            let key = self
                .cfg
                .limit_conn_zones
                .iter()
                .find(|z| z.name == rule.zone)
                .map_or(Ok(LimitKey::Empty), |z| {
                    LimitKey::new(&z.key, &self.user_vars)
                })?;
            limit_conn.push((zone.clone(), rule.limit, key));
        }
        let mut limit_req = Vec::new();
        for rule in loc.limit_req.as_ref().unwrap_or(&server.limit_req) {
            let zone = self
                .cfg
                .limit_req_zones
                .iter()
                .find(|z| z.name == rule.zone)
                .ok_or_else(|| format!("unknown limit_req zone {:?}", rule.zone))?;
            let delay = if rule.nodelay { None } else { Some(rule.delay) };
            let id = (rule.zone.clone(), rule.burst, delay);
            let rate = match zone.rate.per {
                halo_config::http::RatePeriod::Second => Rate::PerSecond(zone.rate.requests),
                halo_config::http::RatePeriod::Minute => Rate::PerMinute(zone.rate.requests),
            };
            let spec = RequestLimitSpec {
                rate,
                burst: rule.burst,
                delay: delay.map_or(RequestDelay::Never, RequestDelay::After),
                max_keys: usize::try_from(zone.size / ZONE_BYTES_PER_KEY)
                    .unwrap_or(usize::MAX)
                    .max(1),
            };
            let limiter = match self.req_limiters.get(&id) {
                Some(existing) => existing.clone(),
                None => {
                    let reuse = old
                        .and_then(|o| {
                            o.req_limiters
                                .get(&id)
                                .filter(|l| *l.spec() == spec)
                                .cloned()
                        })
                        .map(Ok)
                        .unwrap_or_else(|| RequestLimiter::new(spec).map(Arc::new))
                        .map_err(|e| e.to_string())?;
                    self.req_limiters.insert(id, reuse.clone());
                    reuse
                }
            };
            limit_req.push((limiter, LimitKey::new(&zone.key, &self.user_vars)?));
        }
        let access_logs = match &loc.access_log {
            None => server_logs.to_vec(),
            Some(list) => open_logs(&self.cfg, list, logs, &self.user_vars)?,
        };
        let access = crate::access::LocationAccess::build(
            loc.access.as_deref().unwrap_or(&server.access),
            loc.satisfy,
            loc.auth_basic.as_ref(),
            loc.limit_except.as_ref(),
            loc.internal,
            &self.user_vars,
        )?;
        let headers_use_upstream = add_headers.iter().any(|(_, t, _)| {
            t.vars().any(|v| {
                matches!(
                    v,
                    crate::variables::Var::UpstreamAddr
                        | crate::variables::Var::UpstreamStatus
                        | crate::variables::Var::UpstreamResponseTime
                        | crate::variables::Var::UpstreamConnectTime
                )
            })
        });
        Ok(LocationRt {
            cfg: loc.clone(),
            action,
            set_headers,
            override_names,
            add_headers,
            add_header_case: crate::header_case::HeaderCase::of_names(
                loc.add_header.iter().map(|h| h.name.as_str()),
            ),
            limit_conn,
            limit_req,
            access_logs,
            error_pages: loc
                .error_page
                .clone()
                .unwrap_or_else(|| server.error_page.clone()),
            access,
            real_ip: loc
                .real_ip
                .as_ref()
                .map(crate::real_ip::RealIpRt::build)
                .transpose()?,
            try_files: crate::try_files::TryFiles::build(&loc.try_files, &self.user_vars)?,
            auth_request: loc
                .auth_request
                .as_deref()
                .map(|uri| {
                    crate::auth_request::AuthRequestRt::build(
                        uri,
                        &loc.auth_request_set,
                        &self.user_vars,
                    )
                })
                .transpose()?,
            next_upstream: NextUpstream::new(&loc.proxy_next_upstream),
            rewrite: crate::rewrite::compile(&loc.rewrite, &self.user_vars)?,
            headers_use_upstream,
            filters: crate::gzip::FiltersRt::build(
                loc.gzip
                    .as_ref()
                    .or(server.gzip.as_ref())
                    .or(self.cfg.gzip.as_ref()),
                loc.expires.or(server.expires).or(self.cfg.expires),
            )?,
            types: crate::mime::LocTypes::build(loc)?,
        })
    }

    fn build_proxy_pass(
        &mut self,
        pass: &str,
        loc: &Location,
        old: Option<&Runtime>,
    ) -> Result<ProxyPassRt, String> {
        if pass.contains('$') {
            return crate::dynamic_pass::placeholder(pass, loc, &self.user_vars, &self.pools);
        }
        let (host, uri) = split_proxy_pass(pass)
            .ok_or_else(|| format!("proxy_pass {pass:?} is not http:// or https://"))?;
        let secure = pass.starts_with("https://");
        let scheme = if secure { "https" } else { "http" };
        let tls = if secure {
            let bare = match host.rsplit_once(':') {
                Some((h, p)) if p.parse::<u16>().is_ok() => h,
                _ => host,
            };
            Some(Arc::new(crate::upstream_tls::UpstreamTlsRt::build(
                &loc.proxy_ssl,
                bare,
                loc.upstream_http2 || loc.grpc,
            )?))
        } else {
            None
        };
        let has_port = host
            .rsplit_once(':')
            .is_some_and(|(h, p)| p.parse::<u16>().is_ok() && !h.ends_with(':'));
        // An implicit upstream of an https:// URL without a port is on 443, and is kept apart
        // from an http:// one of the same host.
        let implicit_key = if secure && !has_port {
            format!("{host}:443")
        } else {
            host.to_owned()
        };
        let upstream = match self
            .upstreams
            .get(host)
            .or_else(|| self.upstreams.get(&implicit_key))
        {
            Some(up) => up.clone(),
            None => {
                let host = implicit_key.as_str();
                // An implicit single-server upstream, like nginx's for `proxy_pass http://ADDR`.
                let implicit = UpstreamConfig {
                    name: host.to_owned(),
                    method: BalanceMethod::RoundRobin,
                    servers: vec![halo_config::http::ServerConfig {
                        address: host.to_owned(),
                        weight: 1,
                        max_fails: 1,
                        fail_timeout: std::time::Duration::from_secs(10),
                        max_conns: 0,
                        backup: false,
                        down: false,
                    }],
                    keepalive: 32,
                    keepalive_timeout: std::time::Duration::from_secs(60),
                    keepalive_requests: 1000,
                    keepalive_time: std::time::Duration::from_secs(3600),
                    health_check: None,
                };
                let rt = build_upstream(&implicit, &self.pools)?;
                if let Some(previous) = old.and_then(|o| o.upstreams.get(host)) {
                    rt.lb.carry_state_from(&previous.lb);
                }
                let rt = Arc::new(rt);
                self.upstreams.insert(host.to_owned(), rt.clone());
                rt
            }
        };
        let proxy_host =
            HeaderValue::from_str(host).map_err(|_| format!("invalid proxy_pass host {host:?}"))?;
        let redirects = match &loc.proxy_redirect {
            ProxyRedirect::Mode(RedirectMode::Off) => Vec::new(),
            ProxyRedirect::Mode(RedirectMode::Default) => {
                // nginx: `proxy_redirect default` = `proxy_redirect <proxy_pass URL> <location>`;
                // without a URI part in proxy_pass the location prefix is not substituted.
                let uri_part = uri.unwrap_or("/");
                let from = format!("{scheme}://{host}{uri_part}");
                let to = if uri.is_some() {
                    loc.path.clone()
                } else {
                    "/".to_owned()
                };
                vec![RewriteRule {
                    from: RuleFrom::Text(from),
                    to: Template::parse_with(&to, &self.user_vars)?,
                }]
            }
            ProxyRedirect::Rules(rules) => rules
                .iter()
                .map(|r| RewriteRule::new(&r.from, &r.to, &self.user_vars, false))
                .collect::<Result<_, String>>()?,
        };
        let headers = crate::upstream_headers::UpstreamHeadersRt::new(
            &loc.proxy_headers,
            redirects,
            &self.user_vars,
        )?;
        Ok(ProxyPassRt {
            upstream,
            uri: uri.map(str::to_owned),
            proxy_host,
            headers: Arc::new(headers),
            tls,
            h2: loc.upstream_http2 || loc.grpc,
            dynamic: None,
            verbatim: false,
        })
    }
}

pub(crate) fn build_upstream(up: &UpstreamConfig, pools: &Pools) -> Result<UpstreamRt, String> {
    let mut specs = Vec::new();
    for server in &up.servers {
        let addrs = resolve(&server.address)
            .map_err(|e| format!("upstream {:?}: server {:?}: {e}", up.name, server.address))?;
        for addr in addrs {
            let mut spec = ServerSpec::new(server.address.clone(), addr)
                .with_weight(server.weight)
                .with_failures(server.max_fails, server.fail_timeout)
                .with_max_conns(server.max_conns);
            spec.backup = server.backup;
            spec.down = server.down;
            specs.push(spec);
        }
    }
    let (method, hash_key) = match &up.method {
        BalanceMethod::RoundRobin => (Method::RoundRobin, None),
        BalanceMethod::IpHash => (Method::IpHash, None),
        BalanceMethod::LeastConn => (Method::LeastConn, None),
        BalanceMethod::Random => (Method::Random { two: false }, None),
        BalanceMethod::Hash { key, consistent } => (
            Method::Hash {
                consistent: *consistent,
            },
            Some(Template::parse(key)?),
        ),
    };
    let pools_by_peer = specs.iter().map(|s| pools.for_addr(s.addr)).collect();
    let lb = Upstream::new(&up.name, method, specs).map_err(|e| e.to_string())?;
    Ok(UpstreamRt {
        name: up.name.clone(),
        lb,
        pools: pools_by_peer,
        limits: PoolLimits {
            max_idle: up.keepalive,
            idle_timeout: up.keepalive_timeout,
            max_requests: up.keepalive_requests,
            max_lifetime: up.keepalive_time,
        },
        hash_key,
    })
}

/// Resolves `host:port`, `[v6]:port` or `host` (port 80), once, at configuration time.
fn resolve(address: &str) -> Result<Vec<SocketAddr>, String> {
    if let Ok(addr) = address.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    if let Ok(ip) = address.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, 80)]);
    }
    let with_port = if address
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        address.to_owned()
    } else {
        format!("{address}:80")
    };
    let addrs: Vec<SocketAddr> = with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {e}"))?
        .collect();
    if addrs.is_empty() {
        return Err("resolves to no address".to_owned());
    }
    Ok(addrs)
}

fn open_logs(
    cfg: &HttpConfig,
    list: &[halo_config::http::AccessLog],
    logs: &LogFiles,
    user: &[String],
) -> Result<Vec<Arc<LogSink>>, String> {
    list.iter()
        .map(|log| {
            let format_text = if log.format == "combined" {
                crate::access_log::COMBINED
            } else {
                cfg.log_formats
                    .get(&log.format)
                    .map(String::as_str)
                    .ok_or_else(|| format!("unknown log_format {:?}", log.format))?
            };
            let format = Template::parse_with(format_text, user)?;
            let file = logs
                .open(&log.path, log.buffer, log.flush)
                .map_err(|e| format!("access_log {:?}: {e}", log.path))?;
            Ok(Arc::new(LogSink::new(file, format)))
        })
        .collect()
}

/// The names `set` and named captures define anywhere in `cfg` (their `Var::User` indices).
fn user_var_names(cfg: &HttpConfig) -> Vec<String> {
    let mut names = Vec::new();
    for name in crate::defined_vars::names(cfg) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    for server in &cfg.servers {
        crate::rewrite::collect_names(&server.rewrite, &mut names);
        // Named captures of a regex server_name.
        for pattern in server
            .server_name
            .iter()
            .filter_map(|n| n.strip_prefix('~'))
        {
            if let Ok(regex) = crate::pcre::compile(pattern) {
                for name in regex.capture_names().flatten() {
                    let name = name.to_ascii_lowercase();
                    if !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
        }
        for loc in Location::all(&server.locations) {
            crate::rewrite::collect_names(&loc.rewrite, &mut names);
            for set in &loc.auth_request_set {
                let name = set.variable.to_ascii_lowercase();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            if matches!(
                loc.match_kind,
                halo_config::http::MatchKind::Regex
                    | halo_config::http::MatchKind::RegexCaseInsensitive
            ) {
                if let Ok(regex) = crate::pcre::compile(&loc.path) {
                    for name in regex.capture_names().flatten() {
                        let name = name.to_ascii_lowercase();
                        if !names.contains(&name) {
                            names.push(name);
                        }
                    }
                }
            }
        }
    }
    names
}

/// Every peer address the runtime uses (to forget pools of removed servers).
pub(crate) fn peer_addrs(runtime: &Runtime) -> HashSet<SocketAddr> {
    runtime
        .upstreams
        .values()
        .flat_map(|u| u.lb.servers().iter().map(|s| s.addr))
        .collect()
}

/// halo's built-in MIME table when the configuration has none.
const DEFAULT_MIME: &[(&str, &str)] = &[
    ("html", "text/html"),
    ("htm", "text/html"),
    ("css", "text/css"),
    ("js", "application/javascript"),
    ("json", "application/json"),
    ("txt", "text/plain"),
    ("xml", "text/xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("svg", "image/svg+xml"),
    ("ico", "image/x-icon"),
    ("webp", "image/webp"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("pdf", "application/pdf"),
    ("wasm", "application/wasm"),
];
