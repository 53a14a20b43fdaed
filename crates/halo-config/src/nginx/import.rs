//! nginx directive tree -> [`HttpConfig`], resolving nginx's `http -> server -> location`
//! inheritance (an inner level that sets a directive replaces the outer value entirely, as
//! nginx's merge functions do) and nginx's relative path rules.

use super::directives::{refused_reason, warned_reason};
use super::lexer::{Arg, Node, Pos};
use crate::access::{AccessRule, AddrMatch, LimitExcept, RealIp, RealIpHeader, Satisfy};
use crate::diagnostic::Diagnostic;
use crate::http::{
    parse_duration, parse_size, AccessLog, AddHeader, AuthBasic, BalanceMethod, ErrorPage,
    HttpConfig, LimitConn, LimitConnZone, LimitReq, LimitReqZone, Listen, Location, LocationAction,
    MatchKind, NextUpstreamWhen, ProxyRedirect, RedirectMode, RedirectRule, RequestRate,
    ServerBlock, ServerConfig, UpstreamConfig,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// Directives that may appear at http, server and location level and are inherited inward.
#[derive(Clone, Default)]
struct Scope {
    proxy_set_header: Option<BTreeMap<String, String>>,
    proxy_redirect: Option<ProxyRedirect>,
    proxy_connect_timeout: Option<Duration>,
    proxy_read_timeout: Option<Duration>,
    proxy_send_timeout: Option<Duration>,
    proxy_next_upstream: Option<Vec<NextUpstreamWhen>>,
    proxy_next_upstream_tries: Option<u32>,
    proxy_next_upstream_timeout: Option<Duration>,
    proxy_intercept_errors: Option<bool>,
    /// `Some(None)` = `auth_basic off`.
    auth_basic: Option<(Option<String>, Pos)>,
    auth_basic_user_file: Option<String>,
    limit_conn: Option<Vec<(LimitConn, Pos)>>,
    limit_req: Option<Vec<(LimitReq, Pos)>>,
    limit_conn_status: Option<u16>,
    limit_req_status: Option<u16>,
    access_log: Option<Vec<(AccessLog, Pos)>>,
    add_header: Option<Vec<AddHeader>>,
    error_page: Option<Vec<(ErrorPage, Pos)>>,
    root: Option<String>,
    index: Option<Vec<String>>,
    tls: ssl::TlsScope,
    gzip: gzip::GzipScope,
    proxy_headers: proxy_headers::ProxyHeadersScope,
    content: content::ContentScope,
    /// `proxy_http_version 2`.
    proxy_http2: Option<bool>,
    proxy_pass_request_headers: Option<bool>,
    proxy_pass_request_body: Option<bool>,
    client_max_body_size: Option<u64>,
    /// `grpc_set_header`, `grpc_*_timeout`: used by `grpc_pass` locations instead of the
    /// `proxy_*` ones, as nginx's grpc module has its own.
    grpc_set_header: Option<BTreeMap<String, String>>,
    grpc_connect_timeout: Option<Duration>,
    grpc_read_timeout: Option<Duration>,
    grpc_send_timeout: Option<Duration>,
    /// `allow`/`deny` in order (inherited only by a level that has none, as nginx).
    access: Option<Vec<AccessRule>>,
    satisfy: Option<Satisfy>,
    real_ip_from: Option<Vec<AddrMatch>>,
    real_ip_header: Option<RealIpHeader>,
    real_ip_recursive: Option<bool>,
    absolute_redirect: Option<bool>,
    port_in_redirect: Option<bool>,
    server_name_in_redirect: Option<bool>,
    /// `auth_request URI|off` (`Some(None)` = off).
    auth_request: Option<Option<String>>,
    auth_request_set: Option<Vec<crate::http::AuthRequestSet>>,
    resolver: resolver::ResolverScope,
}

#[path = "ssl.rs"]
mod ssl;

#[path = "gzip.rs"]
mod gzip;

#[path = "content.rs"]
mod content;
#[path = "proxy_headers.rs"]
mod proxy_headers;

#[path = "rewrite.rs"]
mod rewrite;

#[path = "vars.rs"]
mod vars;

#[path = "resolver.rs"]
mod resolver;

impl Scope {
    /// This level's settings, falling back to `outer` for what it does not set.
    fn over(&self, outer: &Scope) -> Scope {
        fn pick<T: Clone>(inner: &Option<T>, outer: &Option<T>) -> Option<T> {
            inner.clone().or_else(|| outer.clone())
        }
        Scope {
            proxy_set_header: pick(&self.proxy_set_header, &outer.proxy_set_header),
            proxy_redirect: pick(&self.proxy_redirect, &outer.proxy_redirect),
            proxy_connect_timeout: pick(&self.proxy_connect_timeout, &outer.proxy_connect_timeout),
            proxy_read_timeout: pick(&self.proxy_read_timeout, &outer.proxy_read_timeout),
            proxy_send_timeout: pick(&self.proxy_send_timeout, &outer.proxy_send_timeout),
            proxy_next_upstream: pick(&self.proxy_next_upstream, &outer.proxy_next_upstream),
            proxy_next_upstream_tries: pick(
                &self.proxy_next_upstream_tries,
                &outer.proxy_next_upstream_tries,
            ),
            proxy_next_upstream_timeout: pick(
                &self.proxy_next_upstream_timeout,
                &outer.proxy_next_upstream_timeout,
            ),
            proxy_intercept_errors: pick(
                &self.proxy_intercept_errors,
                &outer.proxy_intercept_errors,
            ),
            auth_basic: pick(&self.auth_basic, &outer.auth_basic),
            auth_basic_user_file: pick(&self.auth_basic_user_file, &outer.auth_basic_user_file),
            limit_conn: pick(&self.limit_conn, &outer.limit_conn),
            limit_req: pick(&self.limit_req, &outer.limit_req),
            limit_conn_status: pick(&self.limit_conn_status, &outer.limit_conn_status),
            limit_req_status: pick(&self.limit_req_status, &outer.limit_req_status),
            access_log: pick(&self.access_log, &outer.access_log),
            add_header: pick(&self.add_header, &outer.add_header),
            error_page: pick(&self.error_page, &outer.error_page),
            root: pick(&self.root, &outer.root),
            index: pick(&self.index, &outer.index),
            tls: self.tls.over(&outer.tls),
            gzip: self.gzip.over(&outer.gzip),
            proxy_headers: self.proxy_headers.over(&outer.proxy_headers),
            content: self.content.over(&outer.content),
            proxy_http2: pick(&self.proxy_http2, &outer.proxy_http2),
            proxy_pass_request_headers: pick(
                &self.proxy_pass_request_headers,
                &outer.proxy_pass_request_headers,
            ),
            proxy_pass_request_body: pick(
                &self.proxy_pass_request_body,
                &outer.proxy_pass_request_body,
            ),
            client_max_body_size: pick(&self.client_max_body_size, &outer.client_max_body_size),
            grpc_set_header: pick(&self.grpc_set_header, &outer.grpc_set_header),
            grpc_connect_timeout: pick(&self.grpc_connect_timeout, &outer.grpc_connect_timeout),
            grpc_read_timeout: pick(&self.grpc_read_timeout, &outer.grpc_read_timeout),
            grpc_send_timeout: pick(&self.grpc_send_timeout, &outer.grpc_send_timeout),
            access: pick(&self.access, &outer.access),
            satisfy: pick(&self.satisfy, &outer.satisfy),
            real_ip_from: pick(&self.real_ip_from, &outer.real_ip_from),
            real_ip_header: pick(&self.real_ip_header, &outer.real_ip_header),
            real_ip_recursive: pick(&self.real_ip_recursive, &outer.real_ip_recursive),
            auth_request: pick(&self.auth_request, &outer.auth_request),
            absolute_redirect: pick(&self.absolute_redirect, &outer.absolute_redirect),
            port_in_redirect: pick(&self.port_in_redirect, &outer.port_in_redirect),
            server_name_in_redirect: pick(
                &self.server_name_in_redirect,
                &outer.server_name_in_redirect,
            ),
            auth_request_set: pick(&self.auth_request_set, &outer.auth_request_set),
            resolver: self.resolver.over(&outer.resolver),
        }
    }

    /// The realip module's settings, when `set_real_ip_from` is in effect.
    fn real_ip(&self) -> Option<RealIp> {
        Some(RealIp {
            from: self.real_ip_from.clone()?,
            header: self.real_ip_header.clone().unwrap_or_default(),
            recursive: self.real_ip_recursive.unwrap_or(false),
        })
    }
}

/// Where paths go: `prefix` for data paths (root, logs), `conf_dir` for configuration files.
pub(crate) struct Paths<'a> {
    pub(crate) prefix: PathBuf,
    pub(crate) conf_dir: PathBuf,
    pub(crate) rules: &'a super::include::PathRules<'a>,
    /// Resolve host names in `listen` and `proxy_pass` now, as nginx does at start.
    pub(crate) resolve_names: bool,
}

pub(crate) struct Importer<'a> {
    pub(crate) diags: Vec<Diagnostic>,
    pub(crate) positions: HashMap<String, Pos>,
    paths: Paths<'a>,
    upstream_names: HashSet<String>,
}

/// The result of importing the main context.
pub(crate) struct Imported {
    pub(crate) http: Option<HttpConfig>,
    pub(crate) diags: Vec<Diagnostic>,
    pub(crate) positions: HashMap<String, Pos>,
}

pub(crate) fn import(nodes: &[Node], paths: Paths<'_>) -> Imported {
    let mut imp = Importer {
        diags: Vec::new(),
        positions: HashMap::new(),
        paths,
        upstream_names: HashSet::new(),
    };
    let mut uses = Vec::new();
    vars::variable_uses(nodes, &mut uses);
    imp.positions.extend(uses);
    let mut worker_processes: Option<usize> = None;
    let mut worker_connections: Option<(usize, Pos)> = None;
    let mut http_nodes = Vec::new();
    for node in nodes {
        match node.name.as_str() {
            "worker_processes" => {
                if let Some(a) = imp.one(node) {
                    if a.text == "auto" {
                        worker_processes = None;
                    } else {
                        match a.text.parse::<usize>() {
                            Ok(n) if n > 0 => worker_processes = Some(n),
                            _ => imp.err(&a.pos, format!("invalid value \"{}\" in \"worker_processes\"", a.text), Some("a number of workers or auto")),
                        }
                    }
                }
            }
            "events" => {
                for child in imp.block(node) {
                    match child.name.as_str() {
                        "worker_connections" => {
                            if let Some(a) = imp.one(child) {
                                match a.text.parse::<usize>() {
                                    Ok(n) if n > 0 => worker_connections = Some((n, a.pos.clone())),
                                    _ => imp.err(&a.pos, format!("invalid number \"{}\" in \"worker_connections\"", a.text), Some("a positive integer")),
                                }
                            }
                        }
                        "use" => {
                            if let Some(a) = imp.one(child) {
                                if a.text != "epoll" {
                                    imp.warn(child, format!("use {}: halo always uses epoll (through tokio) on Linux; ignored", a.text));
                                }
                            }
                        }
                        _ => imp.other(child, "events"),
                    }
                }
            }
            "http" => http_nodes.push(node),
            "user" => imp.warn(node, "user: halo does not switch users per worker; it runs as the user that starts it (use the service manager's User=); ignored"),
            // pid, error_log and daemon are process settings: `halo nginx` (nginx's command line)
            // reads and applies them itself; the configuration they would go into has no place
            // for them, so here they are checked and reported as ignored by `halo run`.
            "error_log" => {
                if imp.no_block(node) {
                    match node.args.as_slice() {
                        [_] => imp.warn(node, ERROR_LOG_IGNORED),
                        [_, level] if is_error_log_level(&level.text) => imp.warn(node, ERROR_LOG_IGNORED),
                        [_, level] => imp.err(&level.pos, format!("invalid log level \"{}\"", level.text), Some("debug, info, notice, warn, error, crit, alert or emerg")),
                        _ => imp.err(&node.pos, "invalid number of arguments in \"error_log\" directive", Some("a file and an optional level")),
                    }
                }
            }
            "pid" => {
                if imp.one(node).is_some() {
                    imp.warn(node, "pid: applied by `halo nginx`; `halo run` writes a pid file with --pid-file; ignored");
                }
            }
            "daemon" => {
                if imp.flag(node).is_some() {
                    imp.warn(node, "daemon: applied by `halo nginx`; `halo run` always stays in the foreground; ignored");
                }
            }
            "stream" | "mail" => imp.err(&node.pos, format!("\"{}\" (TCP/mail proxying) is not supported by halo", node.name), Some("http")),
            _ => imp.other(node, "main"),
        }
    }
    let http = match http_nodes.as_slice() {
        [] => None,
        [first, rest @ ..] => {
            for extra in rest {
                imp.err(&extra.pos, "\"http\" directive is duplicate", None);
            }
            let mut http = imp.http(first);
            http.worker_threads = worker_processes;
            if let Some((n, _)) = worker_connections {
                // nginx: worker_connections is per worker; halo's limit is global.
                let workers = worker_processes
                    .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
                    .unwrap_or(1);
                http.worker_connections = n.saturating_mul(workers);
            }
            Some(http)
        }
    };
    Imported {
        http,
        diags: imp.diags,
        positions: imp.positions,
    }
}

impl Importer<'_> {
    fn err(&mut self, pos: &Pos, message: impl Into<String>, expected: Option<&str>) {
        let mut d = pos.error(message);
        if let Some(e) = expected {
            d = d.expected(e);
        }
        self.diags.push(d);
    }

    fn warn(&mut self, node: &Node, message: impl Into<String>) {
        self.diags.push(node.pos.warning(message));
    }

    fn record(&mut self, path: String, pos: &Pos) {
        self.positions.insert(path, pos.clone());
    }

    /// A directive not handled in `context`: refused, warned, or unknown.
    fn other(&mut self, node: &Node, context: &str) {
        let name = node.name.as_str();
        if let Some(reason) = refused_reason(name) {
            self.err(
                &node.pos,
                format!("\"{name}\" is not supported by halo: {reason}"),
                None,
            );
        } else if let Some(reason) = warned_reason(name) {
            self.warn(node, format!("{name}: {reason}; ignored"));
        } else if name == "error_log" {
            // nginx allows it in http, server and location too.
            self.warn(node, format!("error_log: halo has one error log (the main level's, applied by `halo nginx`); ignored in {context}"));
        } else if super::directives::is_known(name) {
            self.err(
                &node.pos,
                format!("\"{name}\" directive is not allowed here (in {context})"),
                None,
            );
        } else {
            self.err(&node.pos, format!("unknown directive \"{name}\""), None);
        }
    }

    fn block<'n>(&mut self, node: &'n Node) -> &'n [Node] {
        match &node.block {
            Some(b) => b,
            None => {
                self.err(
                    &node.pos,
                    format!("directive \"{}\" has no opening \"{{\"", node.name),
                    Some("{"),
                );
                &[]
            }
        }
    }

    fn no_block(&mut self, node: &Node) -> bool {
        if node.block.is_some() {
            self.err(
                &node.pos,
                format!("directive \"{}\" is not terminated by \";\"", node.name),
                Some(";"),
            );
            return false;
        }
        true
    }

    fn one<'n>(&mut self, node: &'n Node) -> Option<&'n Arg> {
        if !self.no_block(node) {
            return None;
        }
        match node.args.as_slice() {
            [a] => Some(a),
            _ => {
                self.err(
                    &node.pos,
                    format!("invalid number of arguments in \"{}\" directive", node.name),
                    Some("exactly one argument"),
                );
                None
            }
        }
    }

    /// The address of `allow`, `deny` or `set_real_ip_from`: `all`, `unix:`, an address or a
    /// CIDR network (host bits set: cleared with a warning, as nginx).
    fn addr_match(&mut self, a: &Arg, directive: &str) -> Option<AddrMatch> {
        if a.text == "all" && directive == "set_real_ip_from" {
            self.err(
                &a.pos,
                "invalid parameter \"all\" in \"set_real_ip_from\"",
                Some("an address, ADDR/LEN or unix:"),
            );
            return None;
        }
        match AddrMatch::parse(&a.text) {
            Ok((m, trimmed)) => {
                if trimmed {
                    self.diags.push(a.pos.warning(format!(
                        "low address bits of {} are meaningless; read as {m}",
                        a.text
                    )));
                }
                Some(m)
            }
            Err(message) => {
                let hint = if directive == "set_real_ip_from" {
                    " (halo does not resolve host names here; write the addresses)"
                } else {
                    ""
                };
                self.err(
                    &a.pos,
                    format!("{message}{hint}"),
                    Some("ADDR, ADDR/LEN, all or unix:"),
                );
                None
            }
        }
    }

    fn flag(&mut self, node: &Node) -> Option<bool> {
        let a = self.one(node)?;
        match a.text.as_str() {
            "on" => Some(true),
            "off" => Some(false),
            other => {
                let pos = a.pos.clone();
                self.err(
                    &pos,
                    format!("invalid value \"{other}\" in \"{}\" directive", node.name),
                    Some("\"on\" or \"off\""),
                );
                None
            }
        }
    }

    fn time(&mut self, node: &Node, arg: &Arg) -> Option<Duration> {
        match parse_duration(&arg.text) {
            Ok(d) => Some(d),
            Err(_) => {
                self.err(
                    &arg.pos,
                    format!("\"{}\" directive invalid value \"{}\"", node.name, arg.text),
                    Some("a time such as 60s, 1m, 500ms"),
                );
                None
            }
        }
    }

    fn time_one(&mut self, node: &Node) -> Option<Duration> {
        let a = self.one(node)?.clone();
        self.time(node, &a)
    }

    fn size(&mut self, node: &Node, arg: &Arg) -> Option<u64> {
        match parse_size(&arg.text) {
            Ok(n) => Some(n),
            Err(_) => {
                self.err(
                    &arg.pos,
                    format!("\"{}\" directive invalid value \"{}\"", node.name, arg.text),
                    Some("a size such as 512, 10k, 1m"),
                );
                None
            }
        }
    }

    fn number<T: std::str::FromStr>(&mut self, node: &Node, arg: &Arg) -> Option<T> {
        match arg.text.parse::<T>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.err(
                    &arg.pos,
                    format!(
                        "invalid number \"{}\" in \"{}\" directive",
                        arg.text, node.name
                    ),
                    Some("a non-negative integer"),
                );
                None
            }
        }
    }

    fn status(&mut self, node: &Node) -> Option<u16> {
        let a = self.one(node)?.clone();
        let n: u16 = self.number(node, &a)?;
        if (400..=599).contains(&n) {
            Some(n)
        } else {
            self.err(
                &a.pos,
                format!("value {n} in \"{}\" must be between 400 and 599", node.name),
                Some("400..=599"),
            );
            None
        }
    }

    /// nginx resolves `root`, log and data paths against the prefix (`-p`).
    fn data_path(&self, written: &str) -> String {
        self.paths
            .rules
            .locate(written, &self.paths.prefix)
            .to_string_lossy()
            .into_owned()
    }

    /// nginx resolves `auth_basic_user_file` against the conf prefix.
    fn conf_path(&self, written: &str) -> String {
        self.paths
            .rules
            .locate(written, &self.paths.conf_dir)
            .to_string_lossy()
            .into_owned()
    }

    /// Directives common to http, server and location. Returns false if `node` is none of them.
    fn scope_directive(&mut self, node: &Node, scope: &mut Scope) -> bool {
        match node.name.as_str() {
            "proxy_set_header" => {
                if self.no_block(node) {
                    match node.args.as_slice() {
                        [name, value] => {
                            scope
                                .proxy_set_header
                                .get_or_insert_with(BTreeMap::new)
                                .insert(name.text.clone(), value.text.clone());
                        }
                        _ => self.err(
                            &node.pos,
                            "invalid number of arguments in \"proxy_set_header\" directive",
                            Some("proxy_set_header NAME VALUE;"),
                        ),
                    }
                }
            }
            "proxy_redirect" => {
                if self.no_block(node) {
                    match node.args.as_slice() {
                        [one] if one.text == "off" => {
                            scope.proxy_redirect = Some(ProxyRedirect::Mode(RedirectMode::Off))
                        }
                        [one] if one.text == "default" => {
                            scope.proxy_redirect = Some(ProxyRedirect::Mode(RedirectMode::Default))
                        }
                        [from, to] => {
                            let rule = RedirectRule {
                                from: from.text.clone(),
                                to: to.text.clone(),
                            };
                            match &mut scope.proxy_redirect {
                                Some(ProxyRedirect::Rules(rules)) => rules.push(rule),
                                _ => scope.proxy_redirect = Some(ProxyRedirect::Rules(vec![rule])),
                            }
                        }
                        _ => self.err(
                            &node.pos,
                            "invalid arguments in \"proxy_redirect\" directive",
                            Some("off, default, or FROM TO"),
                        ),
                    }
                }
            }
            "proxy_connect_timeout" => {
                scope.proxy_connect_timeout = self.time_one(node).or(scope.proxy_connect_timeout)
            }
            "client_max_body_size" => {
                if let Some(a) = self.one(node).cloned() {
                    scope.client_max_body_size = self.size(node, &a).or(scope.client_max_body_size);
                }
            }
            "proxy_pass_request_headers" => {
                scope.proxy_pass_request_headers =
                    self.flag(node).or(scope.proxy_pass_request_headers)
            }
            "proxy_pass_request_body" => {
                scope.proxy_pass_request_body = self.flag(node).or(scope.proxy_pass_request_body)
            }
            "grpc_connect_timeout" => {
                scope.grpc_connect_timeout = self.time_one(node).or(scope.grpc_connect_timeout)
            }
            "grpc_read_timeout" => {
                scope.grpc_read_timeout = self.time_one(node).or(scope.grpc_read_timeout)
            }
            "grpc_send_timeout" => {
                scope.grpc_send_timeout = self.time_one(node).or(scope.grpc_send_timeout)
            }
            "grpc_set_header" => {
                if self.no_block(node) {
                    match node.args.as_slice() {
                        [name, value] => {
                            scope
                                .grpc_set_header
                                .get_or_insert_with(BTreeMap::new)
                                .insert(name.text.clone(), value.text.clone());
                        }
                        _ => self.err(
                            &node.pos,
                            "invalid number of arguments in \"grpc_set_header\" directive",
                            Some("grpc_set_header NAME VALUE;"),
                        ),
                    }
                }
            }
            "proxy_read_timeout" => {
                scope.proxy_read_timeout = self.time_one(node).or(scope.proxy_read_timeout)
            }
            "proxy_send_timeout" => {
                scope.proxy_send_timeout = self.time_one(node).or(scope.proxy_send_timeout)
            }
            "proxy_next_upstream_timeout" => {
                scope.proxy_next_upstream_timeout =
                    self.time_one(node).or(scope.proxy_next_upstream_timeout)
            }
            "proxy_next_upstream_tries" => {
                if let Some(a) = self.one(node).cloned() {
                    scope.proxy_next_upstream_tries =
                        self.number(node, &a).or(scope.proxy_next_upstream_tries);
                }
            }
            "proxy_intercept_errors" => {
                scope.proxy_intercept_errors = self.flag(node).or(scope.proxy_intercept_errors)
            }
            "proxy_next_upstream" => {
                if self.no_block(node) {
                    let mut list = Vec::new();
                    for a in &node.args {
                        let when = match a.text.as_str() {
                            "off" => continue,
                            "error" => NextUpstreamWhen::Error,
                            "timeout" => NextUpstreamWhen::Timeout,
                            "invalid_header" => NextUpstreamWhen::InvalidHeader,
                            "http_500" => NextUpstreamWhen::Http500,
                            "http_502" => NextUpstreamWhen::Http502,
                            "http_503" => NextUpstreamWhen::Http503,
                            "http_504" => NextUpstreamWhen::Http504,
                            "http_403" => NextUpstreamWhen::Http403,
                            "http_404" => NextUpstreamWhen::Http404,
                            "http_429" => NextUpstreamWhen::Http429,
                            "non_idempotent" => NextUpstreamWhen::NonIdempotent,
                            other => {
                                self.err(&a.pos, format!("invalid value \"{other}\" in \"proxy_next_upstream\""), Some("error, timeout, invalid_header, http_500, http_502, http_503, http_504, http_403, http_404, http_429, non_idempotent or off"));
                                continue;
                            }
                        };
                        list.push(when);
                    }
                    if node.args.is_empty() {
                        self.err(
                            &node.pos,
                            "invalid number of arguments in \"proxy_next_upstream\" directive",
                            Some("at least one condition"),
                        );
                    }
                    scope.proxy_next_upstream = Some(list);
                }
            }
            "auth_basic" => {
                if let Some(a) = self.one(node) {
                    let realm = if a.text == "off" {
                        None
                    } else {
                        Some(a.text.clone())
                    };
                    scope.auth_basic = Some((realm, node.pos.clone()));
                }
            }
            "auth_basic_user_file" => {
                if let Some(a) = self.one(node) {
                    // With variables, the path is made per request (and a relative one
                    // looked up in the conf directory then).
                    scope.auth_basic_user_file = Some(if a.text.contains('$') {
                        a.text.clone()
                    } else {
                        self.conf_path(&a.text.clone())
                    });
                }
            }
            "allow" | "deny" => {
                if let Some(a) = self.one(node) {
                    let a = a.clone();
                    if let Some(m) = self.addr_match(&a, &node.name) {
                        let rule = if node.name == "allow" {
                            AccessRule::Allow(m)
                        } else {
                            AccessRule::Deny(m)
                        };
                        scope.access.get_or_insert_with(Vec::new).push(rule);
                    }
                }
            }
            "satisfy" => {
                if let Some(a) = self.one(node) {
                    match a.text.as_str() {
                        "all" => scope.satisfy = Some(Satisfy::All),
                        "any" => scope.satisfy = Some(Satisfy::Any),
                        other => {
                            let pos = a.pos.clone();
                            self.err(
                                &pos,
                                format!("invalid value \"{other}\" in \"satisfy\" directive"),
                                Some("all or any"),
                            );
                        }
                    }
                }
            }
            "set_real_ip_from" => {
                if let Some(a) = self.one(node) {
                    let a = a.clone();
                    if let Some(m) = self.addr_match(&a, "set_real_ip_from") {
                        scope.real_ip_from.get_or_insert_with(Vec::new).push(m);
                    }
                }
            }
            "absolute_redirect" | "port_in_redirect" | "server_name_in_redirect" => {
                if let Some(on) = self.flag(node) {
                    match node.name.as_str() {
                        "absolute_redirect" => scope.absolute_redirect = Some(on),
                        "port_in_redirect" => scope.port_in_redirect = Some(on),
                        _ => scope.server_name_in_redirect = Some(on),
                    }
                }
            }
            "auth_request" => {
                if let Some(a) = self.one(node) {
                    scope.auth_request = Some(if a.text == "off" {
                        None
                    } else if a.text.starts_with('/') {
                        Some(a.text.clone())
                    } else {
                        let pos = a.pos.clone();
                        self.err(
                            &pos,
                            format!("invalid URI \"{}\" in \"auth_request\"", a.text),
                            Some("a local URI starting with / or off"),
                        );
                        return true;
                    });
                }
            }
            "auth_request_set" => {
                if self.no_block(node) {
                    match node.args.as_slice() {
                        [var, value] if var.text.len() > 1 && var.text.starts_with('$') => {
                            scope.auth_request_set.get_or_insert_with(Vec::new).push(
                                crate::http::AuthRequestSet {
                                    variable: var.text[1..].to_owned(),
                                    value: value.text.clone(),
                                },
                            );
                        }
                        _ => self.err(
                            &node.pos,
                            "invalid arguments in \"auth_request_set\" directive",
                            Some("auth_request_set $VARIABLE VALUE;"),
                        ),
                    }
                }
            }
            "real_ip_header" => {
                if let Some(a) = self.one(node) {
                    scope.real_ip_header = Some(RealIpHeader::parse(&a.text));
                }
            }
            "real_ip_recursive" => {
                if let Some(on) = self.flag(node) {
                    scope.real_ip_recursive = Some(on);
                }
            }
            "limit_conn" => {
                if self.no_block(node) {
                    match node.args.as_slice() {
                        [zone, limit] => {
                            if let Some(n) = self.number::<u32>(node, limit) {
                                if n == 0 {
                                    self.err(
                                        &limit.pos,
                                        "invalid number of connections \"0\"",
                                        Some("at least 1"),
                                    );
                                } else {
                                    scope.limit_conn.get_or_insert_with(Vec::new).push((
                                        LimitConn {
                                            zone: zone.text.clone(),
                                            limit: n,
                                        },
                                        zone.pos.clone(),
                                    ));
                                }
                            }
                        }
                        _ => self.err(
                            &node.pos,
                            "invalid number of arguments in \"limit_conn\" directive",
                            Some("limit_conn ZONE NUMBER;"),
                        ),
                    }
                }
            }
            "limit_req" => {
                if self.no_block(node) {
                    if let Some(rule) = self.limit_req(node) {
                        scope.limit_req.get_or_insert_with(Vec::new).push(rule);
                    }
                }
            }
            "limit_conn_status" => {
                scope.limit_conn_status = self.status(node).or(scope.limit_conn_status)
            }
            "limit_req_status" => {
                scope.limit_req_status = self.status(node).or(scope.limit_req_status)
            }
            "access_log" => {
                if self.no_block(node) {
                    self.access_log(node, scope);
                }
            }
            "add_header" => {
                if self.no_block(node) {
                    match node.args.as_slice() {
                        [name, value] | [name, value, _] => {
                            let always = match node.args.get(2) {
                                None => false,
                                Some(a) if a.text == "always" => true,
                                Some(a) => {
                                    self.err(
                                        &a.pos,
                                        format!("invalid parameter \"{}\"", a.text),
                                        Some("always"),
                                    );
                                    false
                                }
                            };
                            scope
                                .add_header
                                .get_or_insert_with(Vec::new)
                                .push(AddHeader {
                                    name: name.text.clone(),
                                    value: value.text.clone(),
                                    always,
                                });
                        }
                        _ => self.err(
                            &node.pos,
                            "invalid number of arguments in \"add_header\" directive",
                            Some("add_header NAME VALUE [always];"),
                        ),
                    }
                }
            }
            "error_page" => {
                if self.no_block(node) {
                    if let Some(page) = self.error_page(node) {
                        scope
                            .error_page
                            .get_or_insert_with(Vec::new)
                            .push((page, node.pos.clone()));
                    }
                }
            }
            "root" => {
                if let Some(a) = self.one(node) {
                    scope.root = Some(self.data_path(&a.text.clone()));
                }
            }
            "proxy_http_version" => {
                if let Some(a) = self.one(node).cloned() {
                    match a.text.as_str() {
                        "1.1" => scope.proxy_http2 = Some(false),
                        "1.0" => {
                            self.warn(node, "proxy_http_version 1.0: halo speaks HTTP/1.1 to upstreams (with keep-alive); requests are otherwise the same");
                            scope.proxy_http2 = Some(false);
                        }
                        "2" => scope.proxy_http2 = Some(true),
                        other => self.err(
                            &a.pos,
                            format!(
                                "invalid value \"{other}\" in \"proxy_http_version\" directive"
                            ),
                            Some("1.0, 1.1 or 2"),
                        ),
                    }
                }
            }
            "index" => {
                if self.no_block(node) {
                    scope.index = Some(node.args.iter().map(|a| a.text.clone()).collect());
                }
            }
            "resolver" | "resolver_timeout" => {
                return self.resolver_directive(node, &mut scope.resolver)
            }
            _ if proxy_headers::is_proxy_headers_directive(&node.name) => {
                return self.proxy_headers_directive(node, &mut scope.proxy_headers)
            }
            _ if content::is_content_directive(&node.name) => {
                return self.content_directive(node, &mut scope.content)
            }
            _ => return self.gzip_directive(node, &mut scope.gzip),
        }
        true
    }

    fn access_log(&mut self, node: &Node, scope: &mut Scope) {
        let Some((path, rest)) = node.args.split_first() else {
            self.err(
                &node.pos,
                "invalid number of arguments in \"access_log\" directive",
                Some("access_log PATH [FORMAT] | off;"),
            );
            return;
        };
        if path.text == "off" {
            scope.access_log = Some(Vec::new());
            return;
        }
        if path.text.starts_with("syslog:") {
            self.warn(
                node,
                "access_log to syslog is not supported by halo; ignored",
            );
            return;
        }
        let mut log = AccessLog {
            path: self.data_path(&path.text),
            format: "combined".to_owned(),
            buffer: None,
            flush: None,
        };
        let mut rest = rest.iter();
        if let Some(format) = rest.clone().next() {
            if !format.text.contains('=') {
                log.format = format.text.clone();
                rest.next();
            }
        }
        for a in rest {
            let (key, value) = a.text.split_once('=').unwrap_or((a.text.as_str(), ""));
            let value = Arg {
                text: value.to_owned(),
                pos: a.pos.clone(),
            };
            match key {
                "buffer" => log.buffer = self.size(node, &value),
                "flush" => log.flush = self.time(node, &value),
                "gzip" | "if" => {
                    self.diags.push(a.pos.warning(format!(
                        "access_log parameter \"{}\" is not supported by halo; ignored",
                        a.text
                    )));
                }
                _ => self.err(
                    &a.pos,
                    format!("invalid parameter \"{}\" in \"access_log\"", a.text),
                    Some("buffer=SIZE or flush=TIME"),
                ),
            }
        }
        scope
            .access_log
            .get_or_insert_with(Vec::new)
            .push((log, node.pos.clone()));
    }

    /// `error_page CODE... [=[RESPONSE]] URI`.
    fn error_page(&mut self, node: &Node) -> Option<ErrorPage> {
        let Some((uri, codes)) = node.args.split_last() else {
            self.err(
                &node.pos,
                "invalid number of arguments in \"error_page\" directive",
                Some("error_page CODE ... URI;"),
            );
            return None;
        };
        let mut page = ErrorPage {
            codes: Vec::new(),
            uri: uri.text.clone(),
            status: None,
            status_from_page: false,
        };
        for a in codes {
            if let Some(answer) = a.text.strip_prefix('=') {
                if answer.is_empty() {
                    page.status_from_page = true;
                } else {
                    match answer.parse::<u16>() {
                        Ok(n) => page.status = Some(n),
                        Err(_) => self.err(
                            &a.pos,
                            format!("invalid response code \"{answer}\""),
                            Some("=CODE"),
                        ),
                    }
                }
                continue;
            }
            match a.text.parse::<u16>() {
                Ok(n) if (300..=599).contains(&n) => page.codes.push(n),
                Ok(n) => self.err(
                    &a.pos,
                    format!("value \"{n}\" must be between 300 and 599"),
                    Some("300..=599"),
                ),
                Err(_) => self.err(
                    &a.pos,
                    format!("invalid value \"{}\"", a.text),
                    Some("a status code 300..=599"),
                ),
            }
        }
        if page.codes.is_empty() {
            // Codes that were there but invalid are already reported.
            if codes.iter().all(|a| a.text.starts_with('=')) {
                self.err(
                    &node.pos,
                    "invalid number of arguments in \"error_page\" directive",
                    Some("at least one status code"),
                );
            }
            return None;
        }
        Some(page)
    }

    fn limit_req(&mut self, node: &Node) -> Option<(LimitReq, Pos)> {
        let mut rule = LimitReq {
            zone: String::new(),
            burst: 0,
            nodelay: false,
            delay: 0,
        };
        let mut zone_pos = node.pos.clone();
        for a in &node.args {
            match a.text.split_once('=') {
                Some(("zone", z)) => {
                    rule.zone = z.to_owned();
                    zone_pos = a.pos.clone();
                }
                Some(("burst", n)) => {
                    rule.burst = self.number(
                        node,
                        &Arg {
                            text: n.to_owned(),
                            pos: a.pos.clone(),
                        },
                    )?
                }
                Some(("delay", n)) => {
                    rule.delay = self.number(
                        node,
                        &Arg {
                            text: n.to_owned(),
                            pos: a.pos.clone(),
                        },
                    )?
                }
                None if a.text == "nodelay" => rule.nodelay = true,
                _ => {
                    self.err(
                        &a.pos,
                        format!("invalid parameter \"{}\"", a.text),
                        Some("zone=NAME [burst=N] [nodelay | delay=N]"),
                    );
                    return None;
                }
            }
        }
        if rule.zone.is_empty() {
            self.err(
                &node.pos,
                "\"limit_req\" must have \"zone\" parameter",
                Some("zone=NAME"),
            );
            return None;
        }
        Some((rule, zone_pos))
    }

    fn http(&mut self, node: &Node) -> HttpConfig {
        let mut http = HttpConfig::default();
        let mut scope = Scope::default();
        self.record("http".to_owned(), &node.pos);
        let block = self.block(node);
        // Upstreams may be defined after the proxy_pass that names them.
        for child in block {
            if child.name == "upstream" {
                if let Some(name) = child.args.first() {
                    self.upstream_names.insert(name.text.clone());
                }
            }
        }
        let mut server_nodes = Vec::new();
        for child in block {
            if self.tls_directive(child, "http", &mut scope.tls)
                || self.scope_directive(child, &mut scope)
            {
                continue;
            }
            match child.name.as_str() {
                "server" => server_nodes.push(child),
                "upstream" => {
                    let index = http.upstreams.len();
                    if let Some(up) = self.upstream(child, index) {
                        http.upstreams.push(up);
                    }
                }
                "log_format" => self.log_format(child, &mut http),
                "sendfile" => http.sendfile = self.flag(child).unwrap_or(http.sendfile),
                "server_tokens" => {
                    http.server_tokens = self.flag(child).unwrap_or(http.server_tokens)
                }
                "keepalive_timeout" => {
                    if self.no_block(child) {
                        match child.args.as_slice() {
                            [t] | [t, _] => {
                                if let Some(d) = self.time(child, t) {
                                    http.keepalive_timeout = d;
                                }
                                if child.args.len() == 2 {
                                    self.warn(child, "keepalive_timeout header_timeout (Keep-Alive: timeout=) is not sent by halo; ignored");
                                }
                            }
                            _ => self.err(
                                &child.pos,
                                "invalid number of arguments in \"keepalive_timeout\" directive",
                                Some("keepalive_timeout TIME [HEADER_TIME];"),
                            ),
                        }
                    }
                }
                "keepalive_requests" => {
                    if let Some(a) = self.one(child).cloned() {
                        http.keepalive_requests =
                            self.number(child, &a).unwrap_or(http.keepalive_requests);
                    }
                }
                "client_header_timeout" => {
                    http.client_header_timeout =
                        self.time_one(child).unwrap_or(http.client_header_timeout)
                }
                "client_body_timeout" => {
                    http.client_body_timeout =
                        self.time_one(child).unwrap_or(http.client_body_timeout)
                }
                "send_timeout" => {
                    http.send_timeout = self.time_one(child).unwrap_or(http.send_timeout)
                }
                "client_header_buffer_size" => {
                    if let Some(a) = self.one(child).cloned() {
                        http.client_header_buffer_size = self
                            .size(child, &a)
                            .unwrap_or(http.client_header_buffer_size);
                    }
                }
                "large_client_header_buffers" => match child.args.as_slice() {
                    [n, s] => {
                        if let (Some(n), Some(s)) = (self.number(child, n), self.size(child, s)) {
                            http.large_client_header_buffers.number = n;
                            http.large_client_header_buffers.size = s;
                        }
                    }
                    _ => self.err(
                        &child.pos,
                        "invalid number of arguments in \"large_client_header_buffers\" directive",
                        Some("NUMBER SIZE"),
                    ),
                },
                "limit_conn_zone" => {
                    let index = http.limit_conn_zones.len();
                    if let Some(zone) = self.limit_conn_zone(child, index) {
                        http.limit_conn_zones.push(zone);
                    }
                }
                "limit_req_zone" => {
                    let index = http.limit_req_zones.len();
                    if let Some(zone) = self.limit_req_zone(child, index) {
                        http.limit_req_zones.push(zone);
                    }
                }
                "map" => {
                    if let Some(map) = self.map(child) {
                        http.maps.push(map);
                    }
                }
                "geo" => {
                    if let Some(geo) = self.geo(child, http.geo.len()) {
                        http.geo.push(geo);
                    }
                }
                "split_clients" => {
                    if let Some(split) = self.split_clients(child, http.split_clients.len()) {
                        http.split_clients.push(split);
                    }
                }
                "location" => self.err(
                    &child.pos,
                    "\"location\" directive is not allowed here (in http)",
                    Some("location inside server"),
                ),
                _ => self.other(child, "http"),
            }
        }
        if let Some(size) = scope.client_max_body_size {
            http.client_max_body_size = size;
        }
        (http.gzip, http.expires) = (scope.gzip.gzip(), scope.gzip.expires);
        // The http level's types are the runtime's table; servers and locations carry only
        // the ones they (or their server) set.
        if let Some(t) = scope.content.default_type.take() {
            http.default_type = t;
        }
        if let Some(types) = scope.content.types.take() {
            http.mime_types = types;
        }
        if let Some(logs) = &scope.access_log {
            for (i, (log, pos)) in logs.iter().enumerate() {
                self.record(format!("http.access_log[{i}]"), pos);
                http.access_log.push(log.clone());
            }
        }
        for child in server_nodes {
            let index = http.servers.len();
            if let Some(server) = self.server(child, index, &scope) {
                http.servers.push(server);
            }
        }
        http
    }

    fn log_format(&mut self, node: &Node, http: &mut HttpConfig) {
        let Some((name, rest)) = node.args.split_first() else {
            self.err(
                &node.pos,
                "invalid number of arguments in \"log_format\" directive",
                Some("log_format NAME STRING ...;"),
            );
            return;
        };
        let mut parts = rest;
        if let Some(first) = rest.first() {
            if let Some(escape) = first.text.strip_prefix("escape=") {
                if escape != "default" {
                    self.warn(node, format!("log_format escape={escape} is not supported by halo; default escaping is used"));
                }
                parts = &rest[1..];
            }
        }
        if name.text == "combined" {
            self.err(
                &name.pos,
                "duplicate \"log_format\" name \"combined\"",
                Some("another name; combined is built in"),
            );
            return;
        }
        // nginx concatenates the strings of a log_format.
        let text: String = parts.iter().map(|a| a.text.as_str()).collect();
        http.log_formats.insert(name.text.clone(), text);
    }

    fn limit_conn_zone(&mut self, node: &Node, index: usize) -> Option<LimitConnZone> {
        let [key, zone] = node.args.as_slice() else {
            self.err(
                &node.pos,
                "invalid number of arguments in \"limit_conn_zone\" directive",
                Some("limit_conn_zone KEY zone=NAME:SIZE;"),
            );
            return None;
        };
        let (name, size) = self.zone_arg(node, zone)?;
        self.record(format!("http.limit_conn_zones[{index}]"), &node.pos);
        self.record(format!("http.limit_conn_zones[{index}].key"), &key.pos);
        self.record(format!("http.limit_conn_zones[{index}].name"), &zone.pos);
        Some(LimitConnZone {
            name,
            key: key.text.clone(),
            size,
        })
    }

    fn limit_req_zone(&mut self, node: &Node, index: usize) -> Option<LimitReqZone> {
        let mut key = None;
        let mut zone = None;
        let mut rate = None;
        for a in &node.args {
            if a.text.starts_with("zone=") {
                zone = self.zone_arg(node, a);
            } else if let Some(r) = a.text.strip_prefix("rate=") {
                match r.parse::<RequestRate>() {
                    Ok(r) => rate = Some(r),
                    Err(_) => self.err(
                        &a.pos,
                        format!("invalid rate \"{r}\""),
                        Some("rate=Nr/s or rate=Nr/m"),
                    ),
                }
            } else if key.is_none() {
                key = Some(a.clone());
            } else {
                self.err(
                    &a.pos,
                    format!("invalid parameter \"{}\"", a.text),
                    Some("KEY zone=NAME:SIZE rate=RATE"),
                );
            }
        }
        let (Some(key), Some((name, size)), Some(rate)) = (key, zone, rate) else {
            self.err(
                &node.pos,
                "\"limit_req_zone\" needs a key, zone=NAME:SIZE and rate=RATE",
                Some("limit_req_zone KEY zone=NAME:SIZE rate=RATE;"),
            );
            return None;
        };
        self.record(format!("http.limit_req_zones[{index}]"), &node.pos);
        self.record(format!("http.limit_req_zones[{index}].key"), &key.pos);
        Some(LimitReqZone {
            name,
            key: key.text,
            size,
            rate,
        })
    }

    /// `zone=NAME:SIZE`.
    fn zone_arg(&mut self, node: &Node, arg: &Arg) -> Option<(String, u64)> {
        let spec = arg.text.strip_prefix("zone=").unwrap_or("");
        let Some((name, size)) = spec.split_once(':') else {
            self.err(
                &arg.pos,
                format!("invalid zone size \"{}\"", arg.text),
                Some("zone=NAME:SIZE"),
            );
            return None;
        };
        if name.is_empty() {
            self.err(&arg.pos, "empty zone name", Some("zone=NAME:SIZE"));
            return None;
        }
        let size = self.size(
            node,
            &Arg {
                text: size.to_owned(),
                pos: arg.pos.clone(),
            },
        )?;
        if size < 8192 {
            self.err(
                &arg.pos,
                format!("zone \"{name}\" is too small"),
                Some("at least 8k"),
            );
            return None;
        }
        Some((name.to_owned(), size))
    }

    fn upstream(&mut self, node: &Node, index: usize) -> Option<UpstreamConfig> {
        let [name] = node.args.as_slice() else {
            self.err(
                &node.pos,
                "invalid number of arguments in \"upstream\" directive",
                Some("upstream NAME { ... }"),
            );
            return None;
        };
        let at = format!("http.upstreams[{index}]");
        self.record(at.clone(), &node.pos);
        self.record(format!("{at}.name"), &name.pos);
        let mut up = UpstreamConfig {
            name: name.text.clone(),
            method: BalanceMethod::RoundRobin,
            servers: Vec::new(),
            keepalive: 32,
            keepalive_timeout: Duration::from_secs(60),
            keepalive_requests: 1000,
            keepalive_time: Duration::from_secs(3600),
            health_check: None,
        };
        self.record(format!("{at}.servers"), &node.pos);
        for child in self.block(node) {
            match child.name.as_str() {
                "server" => {
                    let j = up.servers.len();
                    if let Some(server) = self.upstream_server(child) {
                        self.record(format!("{at}.servers[{j}]"), &child.pos);
                        for field in ["address", "weight", "backup"] {
                            self.record(format!("{at}.servers[{j}].{field}"), &child.pos);
                        }
                        up.servers.push(server);
                    }
                }
                "ip_hash" => {
                    self.no_block(child);
                    up.method = BalanceMethod::IpHash;
                }
                "least_conn" => up.method = BalanceMethod::LeastConn,
                "random" => {
                    if !child.args.is_empty() {
                        self.warn(child, "random two [METHOD] is not supported by halo; plain random is used");
                    }
                    up.method = BalanceMethod::Random;
                }
                "hash" => match child.args.as_slice() {
                    [key] => up.method = BalanceMethod::Hash { key: key.text.clone(), consistent: false },
                    [key, c] if c.text == "consistent" => up.method = BalanceMethod::Hash { key: key.text.clone(), consistent: true },
                    _ => self.err(&child.pos, "invalid arguments in \"hash\" directive", Some("hash KEY [consistent];")),
                },
                "keepalive" => {
                    if let Some(a) = self.one(child).cloned() {
                        up.keepalive = self.number(child, &a).unwrap_or(up.keepalive);
                    }
                }
                "keepalive_timeout" => up.keepalive_timeout = self.time_one(child).unwrap_or(up.keepalive_timeout),
                "keepalive_time" => up.keepalive_time = self.time_one(child).unwrap_or(up.keepalive_time),
                "keepalive_requests" => {
                    if let Some(a) = self.one(child).cloned() {
                        up.keepalive_requests = self.number(child, &a).unwrap_or(up.keepalive_requests);
                    }
                }
                "zone" => self.warn(child, "zone: halo shares upstream state between all threads without a shared memory zone; ignored"),
                _ => self.other(child, "upstream"),
            }
        }
        Some(up)
    }

    /// `server ADDRESS [weight=N] [max_fails=N] [fail_timeout=T] [max_conns=N] [backup] [down]`.
    fn upstream_server(&mut self, node: &Node) -> Option<ServerConfig> {
        if !self.no_block(node) {
            return None;
        }
        let Some((address, params)) = node.args.split_first() else {
            self.err(
                &node.pos,
                "invalid number of arguments in \"server\" directive",
                Some("server ADDRESS [PARAMETERS];"),
            );
            return None;
        };
        if address.text.starts_with("unix:") {
            self.err(
                &address.pos,
                "upstream servers on Unix sockets are not supported by halo",
                Some("HOST:PORT"),
            );
            return None;
        }
        let address_text = self.host_port(&address.text, &address.pos, "server")?;
        let mut server = ServerConfig {
            address: address_text,
            weight: 1,
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
            max_conns: 0,
            backup: false,
            down: false,
        };
        for p in params {
            let value = |text: &str| Arg {
                text: text.to_owned(),
                pos: p.pos.clone(),
            };
            match p.text.split_once('=') {
                Some(("weight", n)) => {
                    let n: u32 = self.number(node, &value(n))?;
                    if n == 0 {
                        self.err(
                            &p.pos,
                            "invalid parameter \"weight=0\"",
                            Some("weight=1 or more"),
                        );
                        return None;
                    }
                    server.weight = n;
                }
                Some(("max_fails", n)) => server.max_fails = self.number(node, &value(n))?,
                Some(("max_conns", n)) => server.max_conns = self.number(node, &value(n))?,
                Some(("fail_timeout", t)) => server.fail_timeout = self.time(node, &value(t))?,
                Some(("slow_start" | "route" | "service", _)) => {
                    self.diags.push(p.pos.warning(format!(
                        "server parameter \"{}\" is not supported by halo; ignored",
                        p.text
                    )));
                }
                None if p.text == "backup" => server.backup = true,
                None if p.text == "down" => server.down = true,
                None if p.text == "resolve" || p.text == "drain" => {
                    self.diags.push(p.pos.warning(format!("server parameter \"{}\" is not supported by halo (names are resolved at start and reload); ignored", p.text)));
                }
                _ => {
                    self.err(
                        &p.pos,
                        format!("invalid parameter \"{}\"", p.text),
                        Some("weight=, max_fails=, fail_timeout=, max_conns=, backup, down"),
                    );
                    return None;
                }
            }
        }
        Some(server)
    }

    /// Checks `HOST[:PORT]` / `[V6][:PORT]` and adds nginx's default port 80.
    fn host_port(&mut self, text: &str, pos: &Pos, directive: &str) -> Option<String> {
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let Some((v6, after)) = rest.split_once(']') else {
                self.err(
                    pos,
                    format!("invalid IPv6 address \"{text}\" in \"{directive}\""),
                    Some("[ADDRESS]:PORT"),
                );
                return None;
            };
            if v6.parse::<std::net::Ipv6Addr>().is_err() {
                self.err(
                    pos,
                    format!("invalid IPv6 address \"{v6}\" in \"{directive}\""),
                    Some("an IPv6 address"),
                );
                return None;
            }
            (format!("[{v6}]"), after.strip_prefix(':'))
        } else {
            match text.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (text.to_owned(), None),
            }
        };
        if host.contains(':') {
            self.err(
                pos,
                format!("IPv6 address \"{text}\" in \"{directive}\" needs brackets"),
                Some("[ADDRESS]:PORT"),
            );
            return None;
        }
        if host.is_empty() {
            self.err(
                pos,
                format!("no host in \"{text}\" of the \"{directive}\" directive"),
                Some("HOST[:PORT]"),
            );
            return None;
        }
        if host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && host.parse::<Ipv4Addr>().is_err()
        {
            self.err(
                pos,
                format!("invalid IP address \"{host}\" in \"{directive}\""),
                Some("an IPv4 address such as 192.168.2.226"),
            );
            return None;
        }
        let port = match port {
            None => 80,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => {
                    self.err(
                        pos,
                        format!("invalid port in \"{text}\" of the \"{directive}\" directive"),
                        Some("a port 1..=65535"),
                    );
                    return None;
                }
            },
        };
        Some(format!("{host}:{port}"))
    }

    fn server(&mut self, node: &Node, index: usize, http_scope: &Scope) -> Option<ServerBlock> {
        let at = format!("http.servers[{index}]");
        self.record(at.clone(), &node.pos);
        let mut scope = Scope::default();
        let mut server = ServerBlock {
            listen: Vec::new(),
            server_name: Vec::new(),
            ..ServerBlock::default()
        };
        let mut location_nodes = Vec::new();
        let mut server_return: Option<(LocationAction, Pos)> = None;
        let mut server_try_files: Option<(Vec<String>, Pos)> = None;
        let mut ssl_on = false;
        // Rewrite-module directives in order (returns included), and whether any is more
        // than a `return`.
        let mut rewrite_ops: Vec<crate::rewrite::RewriteOp> = Vec::new();
        let mut rewrite_logic = false;
        for child in self.block(node) {
            if self.tls_directive(child, "server", &mut scope.tls)
                || self.scope_directive(child, &mut scope)
            {
                continue;
            }
            match child.name.as_str() {
                "try_files" => {
                    if let Some(list) = self.try_files(child) {
                        server_try_files = Some((list, child.pos.clone()));
                    }
                }
                "listen" => {
                    if let Some(l) = self.listen(child) {
                        self.record(format!("{at}.listen[{}]", server.listen.len()), &child.pos);
                        server.listen.push(l);
                    }
                }
                // nginx before 1.25.1: `ssl on` makes every listen of the server TLS.
                "ssl" => {
                    if self.flag(child) == Some(true) {
                        self.warn(child, "the \"ssl\" directive is deprecated (removed in nginx 1.25.1), use the \"listen ... ssl\" directive instead");
                        ssl_on = true;
                    }
                }
                "server_name" => server
                    .server_name
                    .extend(child.args.iter().map(|a| a.text.clone())),
                "location" => location_nodes.push(child),
                "return" => {
                    if let Some(action) = self.return_action(child) {
                        if let LocationAction::Return { code, text } = &action {
                            rewrite_ops.push(crate::rewrite::RewriteOp::Return {
                                code: *code,
                                text: text.clone(),
                            });
                        }
                        server_return = Some((action, child.pos.clone()));
                    }
                }
                name if rewrite::is_rewrite_directive(name) => {
                    if let Some(op) = self.rewrite_op(child) {
                        rewrite_ops.push(op);
                        rewrite_logic = true;
                    }
                }
                _ => match ignored_in_server_or_location(&child.name) {
                    Some(warning) => self.warn(child, warning),
                    None => self.other(child, "server"),
                },
            }
        }
        if server.listen.is_empty() {
            server.listen.push(Listen::default());
        }
        if ssl_on {
            for listen in &mut server.listen {
                listen.ssl = true;
            }
        }
        if server.server_name.is_empty() {
            server.server_name.push(String::new());
        }
        let effective = scope.over(http_scope);
        (server.gzip, server.expires) = (effective.gzip.gzip(), effective.gzip.expires);
        server.autoindex = effective.content.autoindex();
        (server.tls, server.http2) = self.server_tls(&effective.tls, &at);
        server.access = effective.access.clone().unwrap_or_default();
        server.satisfy = effective.satisfy.unwrap_or_default();
        server.auth_basic = self.auth_basic(&effective);
        server.real_ip = effective.real_ip();
        server.root = effective
            .root
            .clone()
            .unwrap_or_else(|| self.data_path("html"));
        if let Some(index_files) = &effective.index {
            server.index = index_files.clone();
        }
        for (k, (page, pos)) in effective.error_page.iter().flatten().enumerate() {
            self.record(format!("{at}.error_page[{k}]"), pos);
            server.error_page.push(page.clone());
        }
        for (k, (rule, pos)) in effective.limit_conn.iter().flatten().enumerate() {
            self.record(format!("{at}.limit_conn[{k}]"), pos);
            self.record(format!("{at}.limit_conn[{k}].zone"), pos);
            server.limit_conn.push(rule.clone());
        }
        for (k, (rule, pos)) in effective.limit_req.iter().flatten().enumerate() {
            self.record(format!("{at}.limit_req[{k}].zone"), pos);
            server.limit_req.push(rule.clone());
        }
        if let Some(logs) = &scope.access_log {
            server.access_log = Some(logs.iter().map(|(l, _)| l.clone()).collect());
            for (k, (_, pos)) in logs.iter().enumerate() {
                self.record(format!("{at}.access_log[{k}]"), pos);
            }
        }
        for child in location_nodes {
            let j = server.locations.len();
            if let Some(loc) = self.location(child, &format!("{at}.locations[{j}]"), &effective) {
                server.locations.push(loc);
            }
        }
        // A request no location matches is served with the server's own settings (files from
        // its root, its add_header, limits and logs): an implicit `location /` built from the
        // server level says the same, and as the shortest prefix it loses to every other match.
        let has_root_prefix = server.locations.iter().any(|l| {
            l.path == "/" && matches!(l.match_kind, MatchKind::Prefix | MatchKind::PrefixNoRegex)
        });
        if rewrite_logic {
            // The operations run in order before the location is chosen; a `return` among
            // them is one of them, not every location's content.
            server.rewrite = std::mem::take(&mut rewrite_ops);
            server_return = None;
        }
        if !has_root_prefix {
            let implicit = Node {
                name: "location".to_owned(),
                pos: node.pos.clone(),
                args: vec![Arg {
                    text: "/".to_owned(),
                    pos: node.pos.clone(),
                }],
                block: Some(Vec::new()),
            };
            let j = server.locations.len();
            if let Some(mut loc) =
                self.location(&implicit, &format!("{at}.locations[{j}]"), &effective)
            {
                // A server-level try_files serves the requests no location takes.
                if let Some((list, _)) = server_try_files.take() {
                    loc.try_files = list;
                }
                server.locations.push(loc);
            }
        }
        if let Some((_, pos)) = server_try_files {
            self.diags.push(pos.warning(
                "try_files at server level applies only to requests no location takes, and \"location /\" takes them all; it has no effect",
            ));
        }
        // A server-level `return` runs in the rewrite phase before any location is chosen
        // (ngx_http_rewrite_module): every request gets it.
        // (The implicit `location /` above carries the server's settings, add_header too.)
        if let Some((action, _)) = server_return {
            fn set_all(list: &mut [Location], action: &LocationAction) {
                for loc in list {
                    loc.action = action.clone();
                    set_all(&mut loc.locations, action);
                }
            }
            set_all(&mut server.locations, &action);
        }
        Some(server)
    }

    /// `listen ADDRESS[:PORT] | PORT [default_server] [...]`.
    fn listen(&mut self, node: &Node) -> Option<Listen> {
        if !self.no_block(node) {
            return None;
        }
        let Some((address, params)) = node.args.split_first() else {
            self.err(
                &node.pos,
                "invalid number of arguments in \"listen\" directive",
                Some("listen [ADDRESS:]PORT;"),
            );
            return None;
        };
        let text = address.text.as_str();
        if text.starts_with("unix:") {
            self.err(
                &address.pos,
                "listening on a Unix socket is not supported by halo",
                Some("[ADDRESS:]PORT"),
            );
            return None;
        }
        let addr = if let Ok(port) = text.parse::<u16>() {
            SocketAddr::from(([0, 0, 0, 0], port))
        } else if let Ok(sa) = text.parse::<SocketAddr>() {
            sa
        } else {
            let hp = self.host_port(text, &address.pos, "listen")?;
            let hp = hp
                .strip_prefix("*:")
                .map_or(hp.clone(), |p| format!("0.0.0.0:{p}"));
            match hp.parse::<SocketAddr>() {
                Ok(sa) => sa,
                Err(_) => match self.resolve(&hp) {
                    Some(sa) => sa,
                    None => {
                        self.err(
                            &address.pos,
                            format!("host not found in \"{text}\" of the \"listen\" directive"),
                            Some("an IP address and port"),
                        );
                        return None;
                    }
                },
            }
        };
        if addr.port() == 0 {
            self.err(
                &address.pos,
                format!("invalid port in \"{text}\" of the \"listen\" directive"),
                Some("a port 1..=65535"),
            );
            return None;
        }
        let mut listen = Listen {
            addr,
            default_server: false,
            ssl: false,
            http2: false,
            proxy_protocol: false,
        };
        for p in params {
            let name = p.text.split_once('=').map_or(p.text.as_str(), |(n, _)| n);
            match name {
                "default_server" | "default" => listen.default_server = true,
                "ssl" => listen.ssl = true,
                "http2" => {
                    // nginx 1.25.1+ warns the same way and still enables HTTP/2.
                    self.diags.push(p.pos.warning(
                        "the \"listen ... http2\" directive is deprecated, use the \"http2\" directive instead",
                    ));
                    listen.http2 = true;
                }
                "proxy_protocol" => listen.proxy_protocol = true,
                "quic" | "http3" => {
                    self.err(
                        &p.pos,
                        format!("listen parameter \"{}\" is not supported by halo", p.text),
                        None,
                    );
                    return None;
                }
                "ipv6only" | "reuseport" | "backlog" | "rcvbuf" | "sndbuf" | "deferred"
                | "bind" | "so_keepalive" | "fastopen" | "accept_filter" | "setfib" => {
                    self.diags.push(p.pos.warning(format!(
                        "listen parameter \"{}\" is not supported by halo; ignored",
                        p.text
                    )));
                }
                _ => {
                    self.err(
                        &p.pos,
                        format!("invalid parameter \"{}\"", p.text),
                        Some("default_server"),
                    );
                    return None;
                }
            }
        }
        Some(listen)
    }

    /// `return CODE [TEXT]` or `return URL` (302).
    fn return_action(&mut self, node: &Node) -> Option<LocationAction> {
        if !self.no_block(node) {
            return None;
        }
        match node.args.as_slice() {
            [one]
                if one.text.starts_with("http://")
                    || one.text.starts_with("https://")
                    || one.text.starts_with('$') =>
            {
                Some(LocationAction::Return {
                    code: 302,
                    text: Some(one.text.clone()),
                })
            }
            [code] | [code, _] => {
                let n: u16 = match code.text.parse() {
                    Ok(n) if n <= 999 => n,
                    _ => {
                        self.err(
                            &code.pos,
                            format!("invalid return code \"{}\"", code.text),
                            Some("a status code, or a URL"),
                        );
                        return None;
                    }
                };
                Some(LocationAction::Return {
                    code: n,
                    text: node.args.get(1).map(|a| a.text.clone()),
                })
            }
            _ => {
                self.err(
                    &node.pos,
                    "invalid number of arguments in \"return\" directive",
                    Some("return CODE [TEXT]; or return URL;"),
                );
                None
            }
        }
    }

    fn location(&mut self, node: &Node, at: &str, server_scope: &Scope) -> Option<Location> {
        self.record(at.to_owned(), &node.pos);
        let (match_kind, path) = match node.args.as_slice() {
            [path] if path.text.starts_with('@') => (MatchKind::Named, path.text.clone()),
            [path] if path.text.starts_with('=') && path.text.len() > 1 => {
                (MatchKind::Exact, path.text[1..].to_owned())
            }
            [path] if path.text.starts_with("^~") && path.text.len() > 2 => {
                (MatchKind::PrefixNoRegex, path.text[2..].to_owned())
            }
            [path] if path.text.starts_with("~*") && path.text.len() > 2 => {
                (MatchKind::RegexCaseInsensitive, path.text[2..].to_owned())
            }
            [path] if path.text.starts_with('~') && path.text.len() > 1 => {
                (MatchKind::Regex, path.text[1..].to_owned())
            }
            [path] => (MatchKind::Prefix, path.text.clone()),
            [modifier, path] => {
                let kind = match modifier.text.as_str() {
                    "=" => MatchKind::Exact,
                    "^~" => MatchKind::PrefixNoRegex,
                    "~" => MatchKind::Regex,
                    "~*" => MatchKind::RegexCaseInsensitive,
                    other => {
                        self.err(
                            &modifier.pos,
                            format!("invalid location modifier \"{other}\""),
                            Some("=, ^~, ~ or ~*"),
                        );
                        return None;
                    }
                };
                (kind, path.text.clone())
            }
            _ => {
                self.err(
                    &node.pos,
                    "invalid number of arguments in \"location\" directive",
                    Some("location [=|^~|~|~*] PATH { ... }"),
                );
                return None;
            }
        };
        self.record(format!("{at}.path"), &node.pos);
        let mut scope = Scope::default();
        let mut action: Option<LocationAction> = None;
        let mut grpc = false;
        let mut alias = None;
        let mut rewrite_ops: Vec<crate::rewrite::RewriteOp> = Vec::new();
        let mut rewrite_logic = false;
        let mut action_is_return = false;
        let mut internal = false;
        let mut nested_nodes: Vec<&Node> = Vec::new();
        let mut try_files: Vec<String> = Vec::new();
        let mut limit_except: Option<(Vec<String>, Scope)> = None;
        for child in self.block(node) {
            if self.tls_directive(child, "location", &mut scope.tls)
                || self.scope_directive(child, &mut scope)
            {
                continue;
            }
            match child.name.as_str() {
                "proxy_pass" => {
                    if let Some(a) = self.one(child).cloned() {
                        self.record(format!("{at}.action.pass"), &a.pos);
                        self.record(format!("{at}.action"), &a.pos);
                        if let Some(pass) = self.proxy_pass(&a) {
                            action = Some(LocationAction::Proxy { pass });
                        }
                    }
                }
                "grpc_pass" => {
                    if let Some(a) = self.one(child).cloned() {
                        self.record(format!("{at}.action.pass"), &a.pos);
                        self.record(format!("{at}.action"), &a.pos);
                        // grpc:// is h2c, grpcs:// TLS; without a scheme, grpc://.
                        let text = if let Some(rest) = a.text.strip_prefix("grpcs://") {
                            format!("https://{rest}")
                        } else if let Some(rest) = a.text.strip_prefix("grpc://") {
                            format!("http://{rest}")
                        } else if a.text.contains("://") {
                            self.err(
                                &a.pos,
                                format!("invalid URL prefix in \"{}\"", a.text),
                                Some("grpc:// or grpcs://"),
                            );
                            continue;
                        } else {
                            format!("http://{}", a.text)
                        };
                        let arg = Arg {
                            text,
                            pos: a.pos.clone(),
                        };
                        if let Some(pass) = self.proxy_pass(&arg) {
                            action = Some(LocationAction::Proxy { pass });
                            grpc = true;
                        }
                    }
                }
                "stub_status" => {
                    if self.no_block(child) {
                        match child.args.as_slice() {
                            [] => action = Some(LocationAction::StubStatus),
                            [a] if a.text == "on" => action = Some(LocationAction::StubStatus),
                            [a] if a.text == "off" => {}
                            _ => self.err(
                                &child.pos,
                                "invalid arguments in \"stub_status\" directive",
                                Some("stub_status;"),
                            ),
                        }
                    }
                }
                "return" => {
                    if let Some(r) = self.return_action(child) {
                        if let LocationAction::Return { code, text } = &r {
                            rewrite_ops.push(crate::rewrite::RewriteOp::Return {
                                code: *code,
                                text: text.clone(),
                            });
                        }
                        action = Some(r);
                        action_is_return = true;
                    }
                }
                name if rewrite::is_rewrite_directive(name) => {
                    if let Some(op) = self.rewrite_op(child) {
                        rewrite_ops.push(op);
                        rewrite_logic = true;
                    }
                }
                "alias" => {
                    if let Some(a) = self.one(child) {
                        alias = Some(self.data_path(&a.text.clone()));
                    }
                }
                "location" => {
                    if child.args.iter().any(|a| a.text.starts_with('@')) {
                        self.err(
                            &child.pos,
                            "named location can be on the server level only",
                            None,
                        );
                    } else {
                        nested_nodes.push(child);
                    }
                }
                "try_files" => {
                    if let Some(list) = self.try_files(child) {
                        try_files = list;
                    }
                }
                "internal" => {
                    if self.no_block(child) {
                        if child.args.is_empty() {
                            internal = true;
                        } else {
                            self.err(
                                &child.pos,
                                "invalid number of arguments in \"internal\" directive",
                                Some("internal;"),
                            );
                        }
                    }
                }
                "limit_except" => {
                    if limit_except.is_some() {
                        self.err(&child.pos, "\"limit_except\" directive is duplicate", None);
                    } else {
                        limit_except = self.limit_except(child);
                    }
                }
                _ => match ignored_in_server_or_location(&child.name) {
                    Some(warning) => self.warn(child, warning),
                    None => self.other(child, "location"),
                },
            }
        }
        let effective = scope.over(server_scope);
        if rewrite_logic && action_is_return {
            // The returns run among the other operations; what is left is the content handler.
            action = None;
        }
        let action = action.unwrap_or(LocationAction::Static {
            root: if alias.is_some() {
                None
            } else {
                scope.root.clone()
            },
            alias,
            index: scope.index.clone(),
        });
        let auth_basic = self.auth_basic(&effective);
        let limit_except = limit_except.map(|(methods, le_scope)| {
            let le = le_scope.over(&effective);
            LimitExcept {
                methods,
                access: le.access.clone().unwrap_or_default(),
                auth_basic: self.auth_basic(&le),
                satisfy: le.satisfy.unwrap_or_default(),
            }
        });
        let defaults = Location::default();
        // Fields the HTTP model may gain later take their defaults.
        #[allow(clippy::needless_update)]
        let mut loc = Location {
            match_kind,
            path,
            action,
            proxy_set_header: if grpc {
                // nginx's grpc module passes the client's Host ($http_host) by default.
                let mut set = effective.grpc_set_header.clone().unwrap_or_default();
                if !set.keys().any(|k| k.eq_ignore_ascii_case("host")) {
                    set.insert("Host".to_owned(), "$http_host".to_owned());
                }
                set
            } else {
                effective.proxy_set_header.clone().unwrap_or_default()
            },
            proxy_redirect: effective
                .proxy_redirect
                .clone()
                .unwrap_or(defaults.proxy_redirect),
            proxy_connect_timeout: if grpc {
                effective.grpc_connect_timeout
            } else {
                effective.proxy_connect_timeout
            }
            .unwrap_or(defaults.proxy_connect_timeout),
            proxy_read_timeout: if grpc {
                effective.grpc_read_timeout
            } else {
                effective.proxy_read_timeout
            }
            .unwrap_or(defaults.proxy_read_timeout),
            proxy_send_timeout: if grpc {
                effective.grpc_send_timeout
            } else {
                effective.proxy_send_timeout
            }
            .unwrap_or(defaults.proxy_send_timeout),
            proxy_next_upstream: effective
                .proxy_next_upstream
                .clone()
                .unwrap_or(defaults.proxy_next_upstream),
            proxy_next_upstream_tries: effective
                .proxy_next_upstream_tries
                .unwrap_or(defaults.proxy_next_upstream_tries),
            proxy_next_upstream_timeout: effective
                .proxy_next_upstream_timeout
                .unwrap_or(defaults.proxy_next_upstream_timeout),
            proxy_intercept_errors: effective
                .proxy_intercept_errors
                .unwrap_or(defaults.proxy_intercept_errors),
            auth_basic,
            limit_conn: None,
            limit_req: None,
            limit_conn_status: effective
                .limit_conn_status
                .unwrap_or(defaults.limit_conn_status),
            limit_req_status: effective
                .limit_req_status
                .unwrap_or(defaults.limit_req_status),
            access_log: None,
            add_header: effective.add_header.clone().unwrap_or_default(),
            error_page: None,
            proxy_ssl: self.upstream_tls(&effective.tls, &node.pos, grpc),
            upstream_http2: grpc || effective.proxy_http2.unwrap_or(false),
            grpc,
            rewrite: if rewrite_logic {
                rewrite_ops
            } else {
                Vec::new()
            },
            client_max_body_size: effective.client_max_body_size,
            proxy_pass_request_headers: effective.proxy_pass_request_headers.unwrap_or(true),
            proxy_pass_request_body: effective.proxy_pass_request_body.unwrap_or(true),
            access: effective.access.clone(),
            satisfy: effective.satisfy.unwrap_or_default(),
            internal,
            limit_except,
            try_files,
            auth_request: effective.auth_request.clone().flatten(),
            auth_request_set: effective.auth_request_set.clone().unwrap_or_default(),
            redirect_form: crate::http::RedirectForm {
                absolute: effective.absolute_redirect.unwrap_or(true),
                port: effective.port_in_redirect.unwrap_or(true),
                server_name: effective.server_name_in_redirect.unwrap_or(false),
            },
            // Applied after the location's rewrites when the server's left the address as it
            // was (a nested location inherits the outer one's).
            real_ip: effective.real_ip(),
            resolver: effective.resolver.resolver(),
            ..Location::default()
        };
        (loc.gzip, loc.expires) = (effective.gzip.gzip(), effective.gzip.expires);
        loc.proxy_headers = effective.proxy_headers.model();
        loc.default_type = effective.content.default_type.clone();
        loc.mime_types = effective.content.types.clone();
        loc.autoindex = effective.content.autoindex();
        loc.if_modified_since = effective.content.if_modified_since;
        if let Some(rules) = &scope.limit_conn {
            for (k, (_, pos)) in rules.iter().enumerate() {
                self.record(format!("{at}.limit_conn[{k}].zone"), pos);
            }
            loc.limit_conn = Some(rules.iter().map(|(r, _)| r.clone()).collect());
        }
        if let Some(rules) = &scope.limit_req {
            for (k, (_, pos)) in rules.iter().enumerate() {
                self.record(format!("{at}.limit_req[{k}].zone"), pos);
            }
            loc.limit_req = Some(rules.iter().map(|(r, _)| r.clone()).collect());
        }
        if let Some(logs) = &scope.access_log {
            loc.access_log = Some(logs.iter().map(|(l, _)| l.clone()).collect());
        }
        if let Some(pages) = &scope.error_page {
            for (k, (_, pos)) in pages.iter().enumerate() {
                self.record(format!("{at}.error_page[{k}]"), pos);
            }
            loc.error_page = Some(pages.iter().map(|(p, _)| p.clone()).collect());
        }
        // Nested locations inherit this location's settings, as nginx merges them.
        for child in nested_nodes {
            let k = loc.locations.len();
            if let Some(mut inner) =
                self.location(child, &format!("{at}.locations[{k}]"), &effective)
            {
                // `None` means "the server's" in the model: a nested location takes this one's.
                if inner.limit_conn.is_none() {
                    inner.limit_conn = loc.limit_conn.clone();
                }
                if inner.limit_req.is_none() {
                    inner.limit_req = loc.limit_req.clone();
                }
                if inner.access_log.is_none() {
                    inner.access_log = loc.access_log.clone();
                }
                if inner.error_page.is_none() {
                    inner.error_page = loc.error_page.clone();
                }
                loc.locations.push(inner);
            }
        }
        Some(loc)
    }

    /// `try_files FILE... URI|=CODE|@NAME`.
    fn try_files(&mut self, node: &Node) -> Option<Vec<String>> {
        if !self.no_block(node) {
            return None;
        }
        if node.args.len() < 2 {
            self.err(
                &node.pos,
                "invalid number of arguments in \"try_files\" directive",
                Some("try_files FILE ... URI; or try_files FILE ... =CODE;"),
            );
            return None;
        }
        if let Some(last) = node.args.last() {
            if let Some(code) = last.text.strip_prefix('=') {
                if !code.parse::<u16>().is_ok_and(|c| c <= 999) {
                    self.err(
                        &last.pos,
                        format!("invalid code \"{}\"", last.text),
                        Some("=CODE"),
                    );
                    return None;
                }
            }
        }
        Some(node.args.iter().map(|a| a.text.clone()).collect())
    }

    /// `auth_basic` + `auth_basic_user_file` in effect at a level.
    fn auth_basic(&mut self, effective: &Scope) -> Option<AuthBasic> {
        match &effective.auth_basic {
            Some((Some(realm), pos)) => {
                if effective.auth_basic_user_file.is_none() {
                    let warning = pos.warning(format!(
                        "auth_basic \"{realm}\" without auth_basic_user_file: nginx does not ask for a password then, and neither does halo; this location is public"
                    ));
                    // Inherited by several locations, said once.
                    if !self.diags.contains(&warning) {
                        self.diags.push(warning);
                    }
                }
                let user_file = effective.auth_basic_user_file.clone();
                let conf_dir = user_file
                    .as_ref()
                    .filter(|f| f.contains('$'))
                    .map(|_| self.paths.conf_dir.to_string_lossy().into_owned());
                Some(AuthBasic {
                    realm: realm.clone(),
                    user_file,
                    conf_dir,
                })
            }
            _ => None,
        }
    }

    /// `limit_except METHOD... { allow/deny/auth_basic }`: the methods and the block's own
    /// settings (merged with the location's by the caller).
    fn limit_except(&mut self, node: &Node) -> Option<(Vec<String>, Scope)> {
        let mut methods = Vec::new();
        for a in &node.args {
            let upper = a.text.to_ascii_uppercase();
            if crate::access::LIMIT_EXCEPT_METHODS.contains(&upper.as_str()) {
                methods.push(upper);
            } else {
                self.err(
                    &a.pos,
                    format!("invalid method \"{}\"", a.text),
                    Some("GET, HEAD, POST, PUT, DELETE, MKCOL, COPY, MOVE, OPTIONS, PROPFIND, PROPPATCH, LOCK, UNLOCK or PATCH"),
                );
            }
        }
        if node.args.is_empty() {
            self.err(
                &node.pos,
                "invalid number of arguments in \"limit_except\" directive",
                Some("limit_except METHOD... { ... }"),
            );
        }
        let mut scope = Scope::default();
        for child in self.block(node) {
            match child.name.as_str() {
                "allow" | "deny" | "auth_basic" | "auth_basic_user_file" => {
                    self.scope_directive(child, &mut scope);
                }
                name if super::directives::is_known(name) => self.err(
                    &child.pos,
                    format!("\"{name}\" inside limit_except is not supported by halo"),
                    Some("allow, deny, auth_basic or auth_basic_user_file"),
                ),
                name => self.err(&child.pos, format!("unknown directive \"{name}\""), None),
            }
        }
        Some((methods, scope))
    }

    /// The first address of `host:port`, if names may be resolved and it resolves.
    fn resolve(&self, host_port: &str) -> Option<SocketAddr> {
        if !self.paths.resolve_names {
            return None;
        }
        host_port.to_socket_addrs().ok().and_then(|mut a| a.next())
    }

    /// `proxy_pass http://UPSTREAM[/uri]` or `http://HOST[:PORT][/uri]`. A name that is no
    /// upstream is a host name, resolved now as nginx does ("host not found in upstream").
    fn proxy_pass(&mut self, arg: &Arg) -> Option<String> {
        let text = arg.text.as_str();
        // nginx checks a URL with variables only per request (its scheme may be a variable).
        if text.contains('$') {
            return Some(text.to_owned());
        }
        let (scheme, rest) = match (text.strip_prefix("http://"), text.strip_prefix("https://")) {
            (Some(rest), _) => ("http", rest),
            (None, Some(rest)) => ("https", rest),
            (None, None) => {
                self.err(
                    &arg.pos,
                    format!("invalid URL prefix in \"{text}\""),
                    Some("http:// or https:// and an upstream or HOST:PORT"),
                );
                return None;
            }
        };
        let (host, uri) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if self.upstream_names.contains(host) {
            return Some(text.to_owned());
        }
        // https:// without a port means 443.
        let with_port = if scheme == "https"
            && !host.ends_with(']')
            && host
                .rsplit_once(':')
                .is_none_or(|(_, p)| p.parse::<u16>().is_err())
        {
            format!("{host}:443")
        } else {
            host.to_owned()
        };
        let host_port = self.host_port(&with_port, &arg.pos, "proxy_pass")?;
        let bare_host = host_port
            .rsplit_once(':')
            .map_or(host_port.as_str(), |(h, _)| h);
        let is_ip = bare_host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .is_ok();
        if !is_ip && self.resolve(&host_port).is_none() {
            let why = if self.paths.resolve_names {
                ""
            } else {
                " (name resolution is off)"
            };
            self.err(
                &arg.pos,
                format!("host not found in upstream \"{host}\"{why}"),
                Some("the name of an upstream block, or a resolvable HOST[:PORT]"),
            );
            return None;
        }
        Some(format!("{scheme}://{host_port}{uri}"))
    }
}

/// The warning for a directive nginx accepts in `server` and `location` blocks but halo ignores
/// there (it takes it from the `http` block only, or not at all); `None` for any other directive.
fn ignored_in_server_or_location(name: &str) -> Option<String> {
    match name {
        "keepalive_timeout"
        | "keepalive_requests"
        | "client_body_timeout"
        | "send_timeout"
        | "client_header_timeout"
        | "large_client_header_buffers"
        | "client_header_buffer_size" => Some(format!(
            "{name}: halo applies this per http block only; set it in http {{ }}; ignored here"
        )),
        "charset" | "source_charset" => Some(format!(
            "{name}: halo does not convert or label charsets; ignored"
        )),
        _ => None,
    }
}

const ERROR_LOG_IGNORED: &str = "error_log: applied by `halo nginx`; `halo run` logs through tracing to stderr/journald (--log); ignored";

/// The levels `error_log` accepts.
const ERROR_LOG_LEVELS: &[&str] = &[
    "debug", "info", "notice", "warn", "error", "crit", "alert", "emerg",
];

/// Whether `level` is a level `error_log` accepts, nginx's debug_* module filters included.
fn is_error_log_level(level: &str) -> bool {
    ERROR_LOG_LEVELS.contains(&level) || level.starts_with("debug_")
}

/// Directive names the importer handles, for spotting a missing `;`.
pub(crate) fn handled(name: &str) -> bool {
    matches!(
        name,
        "worker_processes"
            | "events"
            | "worker_connections"
            | "use"
            | "http"
            | "user"
            | "error_log"
            | "pid"
            | "proxy_set_header"
            | "proxy_redirect"
            | "proxy_connect_timeout"
            | "proxy_read_timeout"
            | "proxy_send_timeout"
            | "proxy_next_upstream"
            | "proxy_next_upstream_tries"
            | "proxy_next_upstream_timeout"
            | "proxy_intercept_errors"
            | "auth_basic"
            | "auth_basic_user_file"
            | "limit_conn"
            | "limit_req"
            | "limit_conn_status"
            | "limit_req_status"
            | "access_log"
            | "add_header"
            | "error_page"
            | "root"
            | "index"
            | "server"
            | "upstream"
            | "default_type"
            | "types"
            | "log_format"
            | "sendfile"
            | "server_tokens"
            | "keepalive_timeout"
            | "keepalive_requests"
            | "client_header_timeout"
            | "client_body_timeout"
            | "send_timeout"
            | "client_max_body_size"
            | "client_header_buffer_size"
            | "large_client_header_buffers"
            | "limit_conn_zone"
            | "limit_req_zone"
            | "map"
            | "geo"
            | "split_clients"
            | "location"
            | "listen"
            | "server_name"
            | "return"
            | "proxy_pass"
            | "stub_status"
            | "alias"
            | "ip_hash"
            | "least_conn"
            | "random"
            | "hash"
            | "keepalive"
            | "keepalive_time"
            | "zone"
            | "include"
            | "proxy_http_version"
            | "internal"
            | "charset"
            | "grpc_pass"
            | "ssl"
            | "proxy_pass_request_headers"
            | "proxy_pass_request_body"
            | "set"
            | "if"
            | "rewrite"
            | "break"
            | "rewrite_log"
            | "uninitialized_variable_warn"
            | "grpc_set_header"
            | "grpc_connect_timeout"
            | "grpc_read_timeout"
            | "grpc_send_timeout"
            | "allow"
            | "deny"
            | "satisfy"
            | "limit_except"
            | "set_real_ip_from"
            | "real_ip_header"
            | "real_ip_recursive"
            | "try_files"
            | "auth_request"
            | "absolute_redirect"
            | "port_in_redirect"
            | "server_name_in_redirect"
            | "auth_request_set"
    ) || ssl::is_tls_directive(name)
        || gzip::is_gzip_directive(name)
        || resolver::is_resolver_directive(name)
        || proxy_headers::is_proxy_headers_directive(name)
        || content::is_content_directive(name)
}
