//! One request from head to response: virtual server and location, hardening checks, limits,
//! authentication, the location's action, `error_page`, `add_header`, keepalive limits and the
//! access log record.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Instant;

use halo_config::http::ErrorPage;
use halo_lb::limit::Verdict;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;

use crate::access_log::{LogRecord, PendingLog};
use crate::auth_request::AuthAnswer;
use crate::body::{ClientBody, ResponseBody};
use crate::connection::ConnInfo;
use crate::forward::{forward, Forwarding, ProxyFailure, UpstreamReport};
use crate::routing::host_without_port;
use crate::runtime::{ActionRt, LimitKey, LocationRt, Runtime, ServerRt};
use crate::server::Shared;
use crate::static_files::{self, StaticResult};
use crate::stats::{stub_status_text, Counters};
use crate::try_files::Tried;
use crate::variables::{push_display, Var, VarSource};

/// The request as variables see it.
pub(crate) struct RequestCtx<'a> {
    pub info: &'a ConnInfo,
    /// The client's address: the connection's, or what the realip module found.
    pub peer: SocketAddr,
    pub parts: &'a http::request::Parts,
    /// Normalised path (`$uri`).
    pub uri: &'a str,
    /// `$host`: Host without port, lower case; else the server name.
    pub host: &'a str,
    pub server: &'a ServerRt,
    /// `$proxy_host` of the location being served ("" outside proxy_pass).
    pub proxy_host: &'a str,
    pub has_body: bool,
    /// What the rewrite module made of the request (variables, captures, new arguments).
    pub rw: Option<&'a crate::rewrite::RewriteState>,
    /// The regex of the location that matched, for `$1`.. when no rewrite matched since.
    pub loc_regex: Option<&'a regex::Regex>,
    /// What the upstream tries gave (`$upstream_*`), once the request was passed.
    pub upstream: Option<&'a UpstreamReport>,
    /// The `map`s, `geo`s and `split_clients` of the configuration, by user variable index.
    pub maps: &'a [Option<std::sync::Arc<crate::defined_vars::DefinedVar>>],
    /// When the request started and its `$request_id`, shared by its internal redirects.
    pub stamp: &'a std::sync::Arc<crate::request_vars::RequestStamp>,
    /// `$remote_user`, once `auth_basic` accepted the request.
    pub remote_user: Option<&'a str>,
    /// Set when an internal redirect brought the request here.
    pub internal: Option<&'a Internal>,
}

/// A request re-entering [`handle`] by an internal redirect (`try_files`, `error_page`).
#[derive(Debug, Clone)]
pub(crate) struct Internal {
    /// Redirects so far (nginx allows 10 in all).
    hops: u8,
    /// The client's request target (`$request_uri`).
    request_uri: String,
    /// `$uri` here, as the redirect gave it (nginx does not normalise it again).
    uri: String,
    /// Go to this named location instead of searching by URI.
    named: Option<String>,
    /// Brought here by `error_page`: errors here are not redirected again
    /// (`recursive_error_pages off`).
    error_page: bool,
    /// The status an error page answers with (`error_page` without `=`, or `=CODE`), set
    /// before this location's `add_header` judges it.
    status: Option<StatusCode>,
    /// An `auth_request` subrequest: the access phase is skipped.
    subrequest: bool,
    /// The client's address as the realip module left it: it stays for the whole request.
    peer: SocketAddr,
    /// Variables set so far (`set`, `auth_request_set`): they survive internal redirects.
    vars: Vec<Option<String>>,
}

/// Marks a response an internal redirect produced: the location that served it already
/// added its headers.
#[derive(Debug, Clone, Copy)]
struct Redirected;

/// What made an internal redirect.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// `try_files`, `index`: the same request elsewhere.
    Internal,
    /// `auth_request`: a GET with the request's headers but not its body, its answer
    /// judged by the caller.
    Subrequest,
    /// `error_page`; `whole`: the page answers with the error status, so the request's
    /// Range and conditional headers do not apply to it (nginx serves it whole); `forced`:
    /// the status it answers with.
    ErrorPage {
        whole: bool,
        forced: Option<StatusCode>,
    },
}

/// Where an internal redirect goes.
enum Target {
    /// A URI, with `?args` if it has them.
    Uri(String),
    /// A named location (`@name`), with the request's URI and arguments.
    Named(String),
}

impl RequestCtx<'_> {
    /// `$request_uri`: the client's request target, also after internal redirects.
    fn request_uri(&self) -> &str {
        match self.internal {
            Some(internal) => &internal.request_uri,
            None => self
                .parts
                .uri
                .path_and_query()
                .map_or("/", |pq| pq.as_str()),
        }
    }

    /// The request was redirected internally or its URI rewritten (for `internal`).
    fn is_internal(&self) -> bool {
        self.internal.is_some() || self.rw.is_some_and(|rw| rw.uri.is_some())
    }

    /// `$args`: changed by a rewrite, else the request's.
    fn args(&self) -> Option<&str> {
        match self.rw.and_then(|rw| rw.args.as_deref()) {
            Some(args) => Some(args),
            None => self.parts.uri.query(),
        }
    }
}

impl VarSource for RequestCtx<'_> {
    fn write_var(&self, var: &Var, out: &mut String) {
        let parts = self.parts;
        match var {
            Var::Host => out.push_str(self.host),
            Var::RemoteAddr => push_display(out, self.peer.ip()),
            Var::RemotePort => {
                // A realip address given without a port has none (nginx prints nothing).
                if self.peer.port() != 0 {
                    push_display(out, self.peer.port())
                }
            }
            Var::RealipRemoteAddr => push_display(out, self.info.peer.ip()),
            Var::RealipRemotePort => push_display(out, self.info.peer.port()),
            Var::ProxyProtocol(which) => which.write(self.info.proxied.as_deref(), out),
            Var::BinaryRemoteAddr => match self.peer.ip() {
                std::net::IpAddr::V4(ip) => out.push_str(&String::from_utf8_lossy(&ip.octets())),
                std::net::IpAddr::V6(ip) => out.push_str(&String::from_utf8_lossy(&ip.octets())),
            },
            Var::ProxyAddXForwardedFor => {
                // nginx: all X-Forwarded-For lines joined with ", ", then ", $remote_addr".
                for value in parts.headers.get_all("x-forwarded-for") {
                    out.push_str(&String::from_utf8_lossy(value.as_bytes()));
                    out.push_str(", ");
                }
                push_display(out, self.peer.ip());
            }
            Var::Scheme => out.push_str(if self.info.tls.is_some() {
                "https"
            } else {
                "http"
            }),
            Var::Tls(var) => var.write(self.info.tls.as_deref(), out),
            Var::RequestUri => out.push_str(self.request_uri()),
            Var::Uri => out.push_str(self.uri),
            Var::Args => out.push_str(self.args().unwrap_or("")),
            Var::IsArgs => {
                if self.args().is_some_and(|a| !a.is_empty()) {
                    out.push('?');
                }
            }
            Var::User(index) => {
                if let Some(Some(value)) = self.rw.and_then(|rw| rw.vars.get(*index)) {
                    out.push_str(value);
                } else if let Some(Some(map)) = self.maps.get(*index) {
                    map.write(self, out);
                }
            }
            Var::Capture(n) => match self.rw.filter(|rw| !rw.captures.is_empty()) {
                Some(rw) => {
                    if let Some(Some(value)) = rw.captures.get(*n) {
                        out.push_str(value);
                    }
                }
                None => {
                    let caps = self.loc_regex.and_then(|r| r.captures(self.uri));
                    if let Some(m) = caps.as_ref().and_then(|c| c.get(*n)) {
                        out.push_str(m.as_str());
                    }
                }
            },
            Var::RequestFilename => {
                out.push_str(&self.server.root.to_string_lossy());
                out.push_str(self.uri);
            }
            Var::DocumentRoot => out.push_str(&self.server.root.to_string_lossy()),
            Var::UpstreamAddr => {
                if let Some(r) = self.upstream {
                    out.push_str(&r.addr);
                }
            }
            Var::UpstreamStatus => {
                if let Some(r) = self.upstream {
                    out.push_str(&r.status);
                }
            }
            Var::UpstreamResponseTime => {
                if let Some(r) = self.upstream {
                    out.push_str(&r.response_time);
                }
            }
            Var::UpstreamConnectTime => {
                if let Some(r) = self.upstream {
                    out.push_str(&r.connect_time);
                }
            }
            Var::Connections(which) => {
                let s = self.info.track.counters_snapshot();
                push_display(
                    out,
                    match which {
                        crate::variables::ConnectionsVar::Active => s.active,
                        crate::variables::ConnectionsVar::Reading => s.reading,
                        crate::variables::ConnectionsVar::Writing => s.writing,
                        crate::variables::ConnectionsVar::Waiting => s.waiting,
                    },
                );
            }
            Var::RequestMethod => out.push_str(parts.method.as_str()),
            Var::ServerName => out.push_str(&self.server.name),
            Var::ServerPort => push_display(out, self.info.local.port()),
            Var::ServerAddr => push_display(out, self.info.local.ip()),
            Var::ServerProtocol => out.push_str(protocol(parts.version)),
            Var::ProxyHost => out.push_str(self.proxy_host),
            Var::Request => {
                push_display(
                    out,
                    format_args!(
                        "{} {} {}",
                        parts.method,
                        self.request_uri(),
                        protocol(parts.version)
                    ),
                );
            }
            Var::ConnectionRequests => push_display(
                out,
                self.info
                    .track
                    .requests
                    .load(std::sync::atomic::Ordering::Relaxed),
            ),
            Var::Connection => push_display(out, self.info.track.serial),
            Var::Pid => push_display(out, std::process::id()),
            Var::HttpHeader(name) => {
                crate::request_vars::write_header(name, parts.headers.get_all(name).iter(), out);
            }
            Var::Arg(name) => {
                if let Some(query) = self.args() {
                    if let Some(value) = query.split('&').find_map(|kv| {
                        kv.strip_prefix(name.as_str())
                            .and_then(|r| r.strip_prefix('='))
                    }) {
                        out.push_str(value);
                    }
                }
            }
            Var::TimeLocal => {
                out.push_str(&crate::access_log::time_local(std::time::SystemTime::now()))
            }
            Var::TimeIso8601 => out.push_str(&crate::access_log::time_iso8601(
                std::time::SystemTime::now(),
            )),
            Var::RemoteUser => out.push_str(self.remote_user.unwrap_or("")),
            Var::Cookie(_)
            | Var::RequestId
            | Var::NginxVersion
            | Var::Hostname
            | Var::ContentLength
            | Var::ContentType
            | Var::Msec
            | Var::RequestTime => crate::request_vars::write_request_var(self, var, out),
            Var::Status
            | Var::BodyBytesSent
            | Var::BytesSent
            | Var::RequestLength
            | Var::UpstreamHttp(_)
            | Var::SentHttpHeader(_) => {}
        }
    }
}

fn protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    }
}

/// The title of nginx's built-in page for a status (`ngx_http_error_pages`); `None` for the
/// statuses nginx answers with an empty body.
fn page_title(status: u16) -> Option<&'static str> {
    Some(match status {
        301 => "301 Moved Permanently",
        302 => "302 Found",
        303 => "303 See Other",
        307 => "307 Temporary Redirect",
        308 => "308 Permanent Redirect",
        400 => "400 Bad Request",
        401 => "401 Authorization Required",
        402 => "402 Payment Required",
        403 => "403 Forbidden",
        404 => "404 Not Found",
        405 => "405 Not Allowed",
        406 => "406 Not Acceptable",
        408 => "408 Request Time-out",
        409 => "409 Conflict",
        410 => "410 Gone",
        411 => "411 Length Required",
        412 => "412 Precondition Failed",
        413 => "413 Request Entity Too Large",
        414 => "414 Request-URI Too Large",
        415 => "415 Unsupported Media Type",
        416 => "416 Requested Range Not Satisfiable",
        421 => "421 Misdirected Request",
        429 => "429 Too Many Requests",
        431 => "431 Request Header Fields Too Large",
        494 => "400 Request Header Or Cookie Too Large",
        495 => "400 The SSL certificate error",
        496 => "400 No required SSL certificate was sent",
        497 => "400 The plain HTTP request was sent to HTTPS port",
        500 => "500 Internal Server Error",
        501 => "501 Not Implemented",
        502 => "502 Bad Gateway",
        503 => "503 Service Temporarily Unavailable",
        504 => "504 Gateway Time-out",
        505 => "505 HTTP Version Not Supported",
        507 => "507 Insufficient Storage",
        _ => return None,
    })
}

/// nginx's built-in page for a status, signed "halo"; an empty body where nginx has no page
/// (2xx, 304, 418, ...).
pub(crate) fn error_response(status: StatusCode) -> Response<ResponseBody> {
    let Some(title) = page_title(status.as_u16()) else {
        let mut response = Response::new(ResponseBody::empty());
        *response.status_mut() = status;
        return response;
    };
    let body = format!(
        "<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>halo</center>\r\n</body>\r\n</html>\r\n"
    );
    let mut response = Response::new(ResponseBody::full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    response
}

fn close_connection(response: &mut Response<ResponseBody>) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

/// What the routing step found.
struct Routed<'a> {
    location: Option<(&'a LocationRt, usize)>,
}

/// Checks nginx applies before any location runs (`ngx_http_process_request_headers`).
/// The head's own checks; `Ok` carries the declared Content-Length, if any.
fn check_head(parts: &http::request::Parts, rt: &Runtime) -> Result<Option<u64>, StatusCode> {
    let target_len = parts.uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if target_len > rt.max_request_line {
        return Err(StatusCode::URI_TOO_LONG);
    }
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        // "client sent duplicate host header"
        return Err(StatusCode::BAD_REQUEST);
    }
    match host {
        Some(host) => {
            let bytes = host.as_bytes();
            if bytes.is_empty() && parts.version == Version::HTTP_11 {
                return Err(StatusCode::BAD_REQUEST);
            }
            // ngx_http_validate_host: no '/', '\', NUL, spaces, or leading dot.
            if bytes
                .iter()
                .any(|b| matches!(b, b'/' | b'\\' | 0 | b' ' | b'\t') || *b < 0x20)
                || bytes.first() == Some(&b'.')
            {
                return Err(StatusCode::BAD_REQUEST);
            }
        }
        None if parts.version == Version::HTTP_11 && parts.uri.authority().is_none() => {
            // "client sent HTTP/1.1 request without Host header"
            return Err(StatusCode::BAD_REQUEST);
        }
        None => {}
    }
    let mut lengths = parts.headers.get_all(header::CONTENT_LENGTH).iter();
    let Some(first) = lengths.next() else {
        return Ok(None);
    };
    let parsed = first
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    if parsed.is_none() || lengths.any(|other| other != first) {
        return Err(StatusCode::BAD_REQUEST);
    }
    Ok(parsed)
}

/// `client_max_body_size` of the location (or the http level's), 0 = unlimited.
fn body_limit(rt: &Runtime, loc: Option<&LocationRt>) -> u64 {
    loc.and_then(|l| l.cfg.client_max_body_size)
        .unwrap_or(rt.cfg.client_max_body_size)
}

/// nginx checks Content-Length against the chosen location's `client_max_body_size` once the
/// location is known (ngx_http_core_find_config_phase).
fn check_body_size(declared: Option<u64>, limit: u64) -> Result<(), StatusCode> {
    match declared {
        Some(length) if limit > 0 && length > limit => Err(StatusCode::PAYLOAD_TOO_LARGE),
        _ => Ok(()),
    }
}

/// Serves one request; `body` is None for a request without one (halo's own HTTP/1 codec).
pub(crate) async fn handle(
    shared: &Shared,
    info: &ConnInfo,
    mut parts: http::request::Parts,
    body: Option<Incoming>,
) -> Response<ResponseBody> {
    let started = Instant::now();
    let internal = parts.extensions.remove::<Internal>();
    let stamp = parts
        .extensions
        .remove::<std::sync::Arc<crate::request_vars::RequestStamp>>()
        .unwrap_or_else(|| crate::request_vars::RequestStamp::new(started));
    // An internal redirect is the same request: counted, limited and logged once, outside.
    let nth = if internal.is_some() {
        0
    } else {
        info.track.request_started()
    };
    let current = shared.runtime.load_full();
    let rt: &Runtime = if current.listeners.contains_key(&info.listen) {
        &current
    } else {
        &info.accepted_with
    };
    let client_upgrade = if parts.headers.contains_key(header::UPGRADE) {
        let upgrade = parts.extensions.remove::<OnUpgrade>();
        if upgrade.is_some() {
            info.track.last_request();
        }
        upgrade
    } else {
        None
    };

    let mut report = UpstreamReport::default();
    let mut remote_user = None;
    let raw_host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    let host_lc = host_without_port(raw_host);
    let matched = rt
        .listeners
        .get(&info.listen)
        .map(|names| names.find_match(&host_lc));
    let server_regex = matched.and_then(|(_, regex)| regex);
    let server = matched
        .and_then(|(index, _)| rt.servers.get(index))
        .or_else(|| rt.servers.first());
    let Some(server) = server else {
        let mut response = error_response(StatusCode::INTERNAL_SERVER_ERROR);
        response.body_mut().finish.track = Some(info.track.clone());
        return response;
    };
    let host: &str = if host_lc.is_empty() {
        &server.name
    } else {
        &host_lc
    };
    let proxied_source = info.proxied.as_ref().map(|p| p.source);
    // realip at server level (nginx's POST_READ): before the server's rewrite operations.
    // After an internal redirect the address stays what it became (nginx changes the
    // connection's address for the rest of the request).
    let server_real_ip = match &internal {
        Some(internal) => Some(internal.peer),
        None => server
            .real_ip
            .as_ref()
            .and_then(|r| r.client(info.peer, &parts.headers, proxied_source)),
    };
    let mut peer = server_real_ip.unwrap_or(info.peer);

    let normalized = match &internal {
        Some(internal) => Ok(Cow::Owned(internal.uri.clone())),
        None => crate::uri::normalize_path(parts.uri.path()),
    };
    let head_check = check_head(&parts, rt).and_then(|declared| {
        normalized
            .as_ref()
            .map(|_| declared)
            .map_err(|_| StatusCode::BAD_REQUEST)
    });
    let uri: Cow<'_, str> = normalized.clone().unwrap_or(Cow::Borrowed("/"));
    let has_body = body
        .as_ref()
        .is_some_and(|b| !http_body::Body::is_end_stream(b));
    // The rewrite module's phases (server level, then the location's, again after `last`),
    // only for servers that have rewrite operations.
    let mut rw = crate::rewrite::RewriteState::default();
    if let Some(internal) = &internal {
        rw.vars = internal.vars.clone();
    }
    let carried_vars = !rw.vars.is_empty();
    // A regex server_name's captures ($1.., named ones) are variables from here on.
    if let Some(regex) = server_regex {
        rw.capture_location(regex, &host_lc, &rt.user_vars);
    }
    let mut early = None;
    // A jump to a named location starts there (its rewrite operations first).
    let named = internal.as_ref().and_then(|i| i.named.as_deref());
    let named_start = named.and_then(|name| server.named.get(name).copied());
    let named_missing = named.is_some() && named_start.is_none();
    if named_missing {
        tracing::error!(name = named.unwrap_or(""), "could not find named location");
    }
    let found = if server.rewrites && head_check.is_ok() {
        let base = RequestCtx {
            info,
            peer,
            parts: &parts,
            uri: &uri,
            host,
            server,
            proxy_host: "",
            has_body,
            rw: None,
            loc_regex: None,
            upstream: None,
            maps: &rt.maps,
            stamp: &stamp,
            remote_user: None,
            internal: internal.as_ref(),
        };
        let (found, answer) = rewrite_phases(rt, &base, &mut rw, named_start);
        early = answer;
        found
    } else if let Some(index) = named_start {
        Some(crate::routing::LocationMatch {
            index,
            prefix_len: 0,
        })
    } else {
        let found = server.table.find(&uri);
        // A regex location's captures replace the server name's.
        if let Some(regex) = found.and_then(|m| server.table.regex(m.index)) {
            if server_regex.is_some() {
                rw.capture_location(regex, &uri, &rt.user_vars);
            }
        }
        found
    };
    if named_missing {
        early = Some((500, None));
    }
    let uri: &str = rw.uri.as_deref().unwrap_or(&uri);
    let routed = Routed {
        location: found.and_then(|m| server.locations.get(m.index).map(|l| (l, m.prefix_len))),
    };
    report.enabled = routed
        .location
        .is_some_and(|(l, _)| !l.access_logs.is_empty() || l.headers_use_upstream);
    let head_check = head_check.and_then(|declared| {
        check_body_size(declared, body_limit(rt, routed.location.map(|(l, _)| l)))
    });
    // realip at location level (nginx's PREACCESS), unless the server's already applied or a
    // `return` answered in the rewrite phase before it.
    if server_real_ip.is_none() && early.is_none() {
        let preaccess = routed
            .location
            .filter(|(l, _)| !matches!(l.action, ActionRt::Return { .. }));
        if let Some(r) = preaccess.and_then(|(l, _)| l.real_ip.as_ref()) {
            peer = r
                .client(info.peer, &parts.headers, proxied_source)
                .unwrap_or(peer);
        }
    }
    let ctx = RequestCtx {
        info,
        peer,
        parts: &parts,
        uri,
        host,
        server,
        proxy_host: "",
        has_body,
        rw: (server.rewrites || server_regex.is_some() || carried_vars).then_some(&rw),
        loc_regex: found.and_then(|m| server.table.regex(m.index)),
        upstream: None,
        maps: &rt.maps,
        stamp: &stamp,
        remote_user: None,
        internal: internal.as_ref(),
    };

    // gzip and expires, of the location that serves the request (or the server's).
    let filters = match routed.location {
        _ if head_check.is_err() => None,
        Some((loc, _)) => loc.filters.as_deref(),
        None => server.filters.as_deref(),
    };
    let mut response = match head_check {
        Err(status) => {
            Counters::bump(&shared.counters.rejected_malformed);
            let mut response = error_response(status);
            close_connection(&mut response);
            response
        }
        Ok(()) if early.is_some() => {
            let (code, text) = early.unwrap_or((500, None));
            let pages = routed
                .location
                .map_or(&server.error_pages, |(l, _)| &l.error_pages);
            let types = routed.location.and_then(|(l, _)| l.types.as_ref());
            let mut response = match return_response(rt, types, ctx.uri, code, text) {
                Ok(response) => Box::pin(redirect_error_page(shared, &ctx, response, pages)).await,
                Err(status) => Box::pin(serve_error(shared, &ctx, status, pages)).await,
            };
            if let Some((loc, _)) = routed.location {
                add_headers(&ctx, loc, &mut response);
            }
            response
        }
        Ok(()) => match routed.location {
            // No location matched (or the server has none): nginx serves files from the
            // server's root, as its static module does for any request that reaches it.
            None => match server.access.check(peer.ip(), &ctx, &parts.headers) {
                Ok(user) => {
                    remote_user = user;
                    Box::pin(serve_server_root(shared, rt, &ctx, server)).await
                }
                Err(refusal) => match refused(shared, refusal) {
                    Ok(response) => response,
                    Err(status) => {
                        Box::pin(serve_error(shared, &ctx, status, &server.error_pages)).await
                    }
                },
            },
            Some((loc, prefix_len)) => {
                let mut permits = Vec::new();
                let mut set_vars = None;
                let outcome = run_location(
                    shared,
                    rt,
                    &ctx,
                    loc,
                    prefix_len,
                    body,
                    client_upgrade,
                    &mut report,
                    &mut permits,
                    &mut remote_user,
                    &mut set_vars,
                )
                .await;
                // Variables auth_request_set made hold for the rest of the request.
                let ctx = RequestCtx {
                    rw: set_vars.as_ref().or(ctx.rw),
                    ..ctx
                };
                let mut response = match outcome {
                    Ok(response) => {
                        let pages = &loc.error_pages;
                        Box::pin(redirect_error_page(shared, &ctx, response, pages)).await
                    }
                    Err(status) => {
                        Box::pin(serve_error(shared, &ctx, status, &loc.error_pages)).await
                    }
                };
                force_status(internal.as_ref(), &mut response);
                response.body_mut().finish.permits.extend(permits);
                let actx = RequestCtx {
                    upstream: Some(&report),
                    ..ctx
                };
                add_headers(&actx, loc, &mut response);
                response
            }
        },
    };

    if let Some(f) = filters.filter(|_| response.extensions().get::<Redirected>().is_none()) {
        crate::gzip::filter(f, &parts, &mut response);
    }
    // A request whose body was not read completely leaves the connection unusable.
    let unread_body = matches!(
        response.status(),
        StatusCode::REQUEST_TIMEOUT | StatusCode::PAYLOAD_TOO_LARGE
    );
    if nth >= rt.cfg.keepalive_requests || unread_body {
        close_connection(&mut response);
    }
    if response.headers().contains_key(header::CONNECTION) {
        info.track.last_request();
    }
    let logs = routed
        .location
        .map(|(l, _)| &l.access_logs)
        .filter(|l| !l.is_empty() && internal.is_none());
    if let Some(sinks) = logs {
        let record = log_record(&ctx, &response, report, remote_user, started, nth, sinks);
        response.body_mut().finish.log = Some(Box::new(PendingLog {
            sinks: sinks.clone(),
            record,
        }));
    }
    if internal.is_none() {
        let form = routed
            .location
            .map_or_else(Default::default, |(l, _)| l.cfg.redirect_form);
        absolute_location(&ctx, form, &mut response);
    }
    // Inserted in place: the upstream's header order stays as it was.
    if response
        .extensions()
        .get::<crate::upstream_headers::UpstreamServerPassed>()
        .is_none()
    {
        response
            .headers_mut()
            .insert(header::SERVER, rt.server_header.clone());
    }
    // The request ends when the outermost response does (not a subrequest's or a redirect's).
    if internal.is_none() {
        response.body_mut().finish.track = Some(info.track.clone());
    }
    response
}

#[allow(clippy::too_many_arguments)]
async fn run_location(
    shared: &Shared,
    rt: &Runtime,
    ctx: &RequestCtx<'_>,
    loc: &LocationRt,
    prefix_len: usize,
    body: Option<Incoming>,
    client_upgrade: Option<OnUpgrade>,
    report: &mut UpstreamReport,
    permits: &mut Vec<halo_lb::limit::ConnPermit>,
    remote_user: &mut Option<String>,
    set_vars: &mut Option<crate::rewrite::RewriteState>,
) -> Result<Response<ResponseBody>, StatusCode> {
    let ip = ctx.peer.ip();
    // `internal` (nginx judges it when the location is found, before the limits).
    let internal_request = ctx.is_internal();
    if loc.access.internal && !internal_request {
        return Err(StatusCode::NOT_FOUND);
    }
    // `return` belongs to nginx's rewrite phase: it answers before the limits and the access
    // checks, which then never see the request.
    if let ActionRt::Return { .. } = &loc.action {
        return Box::pin(serve_local(shared, rt, ctx, loc, prefix_len)).await;
    }
    let mut octets = [0u8; 16];
    let binary: &[u8] = match ip {
        std::net::IpAddr::V4(v4) => {
            octets[..4].copy_from_slice(&v4.octets());
            &octets[..4]
        }
        std::net::IpAddr::V6(v6) => {
            octets = v6.octets();
            &octets[..]
        }
    };
    let key_for = |kind: &LimitKey| -> Cow<'_, [u8]> {
        match kind {
            LimitKey::BinaryRemoteAddr => Cow::Borrowed(binary),
            LimitKey::RemoteAddr => Cow::Owned(ip.to_string().into_bytes()),
            LimitKey::Empty => Cow::Borrowed(&[]),
            LimitKey::Template(template) => Cow::Owned(template.render(ctx).into_bytes()),
        }
    };
    // limit_conn (PREACCESS, after the head was read): every rule must pass. An internal
    // redirect was limited where it began.
    let limits = ctx.internal.is_none();
    for (zone, limit, kind) in loc.limit_conn.iter().filter(|_| limits) {
        let key = key_for(kind);
        match zone.try_acquire_owned(&key, *limit) {
            Some(permit) => permits.push(permit),
            None => {
                Counters::bump(&shared.counters.rejected_limit_conn);
                tracing::warn!(client = %ip, "limiting connections by zone");
                return Err(status_or_503(loc.cfg.limit_conn_status));
            }
        }
    }
    // limit_req: the longest delay of all rules applies; any reject rejects.
    let mut delay = std::time::Duration::ZERO;
    for (limiter, kind) in loc.limit_req.iter().filter(|_| limits) {
        let key = key_for(kind);
        match limiter.check(Instant::now(), &key) {
            Verdict::Pass => {}
            Verdict::Delay(d) => delay = delay.max(d),
            Verdict::Reject => {
                Counters::bump(&shared.counters.rejected_limit_req);
                tracing::warn!(client = %ip, "limiting requests by zone");
                return Err(status_or_503(loc.cfg.limit_req_status));
            }
        }
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    // The access phase: allow/deny, auth_basic, auth_request, combined by satisfy (the
    // limit_except block's rules for the methods it does not list). Subrequests skip it, as
    // in nginx.
    let subrequest = ctx.internal.is_some_and(|i| i.subrequest);
    let after_auth;
    let auth_ctx;
    let mut ctx = ctx;
    if !subrequest && (!loc.access.is_open() || loc.auth_request.is_some()) {
        use crate::access::{Refusal, Verdict};
        let rules = loc.access.rules_for(&ctx.parts.method);
        let any = rules.satisfy() == halo_config::access::Satisfy::Any;
        let mut refusal = None;
        let mut granted = false;
        match rules.judge(ip, ctx, &ctx.parts.headers) {
            Verdict::Refused(r) if !any => return refused(shared, r),
            Verdict::Refused(r) => refusal = Some(r),
            Verdict::Granted(user) => {
                *remote_user = user;
                granted = any;
            }
            Verdict::Passed(user) => *remote_user = user,
        }
        if let (Some(auth), false) = (&loc.auth_request, granted) {
            let (answer, vars) = Box::pin(auth_subrequest(shared, ctx, auth)).await;
            if let Some(vars) = vars {
                *set_vars = Some(vars.clone());
                after_auth = vars;
                auth_ctx = RequestCtx {
                    rw: Some(&after_auth),
                    ..*ctx
                };
                ctx = &auth_ctx;
            }
            match answer {
                AuthAnswer::Allow => refusal = None,
                AuthAnswer::Forbidden if !any => return refused(shared, Refusal::Forbidden),
                AuthAnswer::Forbidden => {
                    // 401 beats 403.
                    if refusal.is_none() {
                        refusal = Some(Refusal::Forbidden);
                    }
                }
                AuthAnswer::Unauthorized(challenge) => {
                    // auth_basic's challenge (satisfy any) comes first, then the service's.
                    let basic = match refusal {
                        Some(Refusal::Unauthorized(basic)) => Some(basic),
                        _ => None,
                    };
                    Counters::bump(&shared.counters.rejected_auth);
                    let mut response = error_response(StatusCode::UNAUTHORIZED);
                    for value in basic.into_iter().chain(challenge) {
                        response
                            .headers_mut()
                            .append(header::WWW_AUTHENTICATE, value);
                    }
                    return Ok(response);
                }
                AuthAnswer::Error(status) => {
                    tracing::error!(%status, "auth request unexpected status");
                    return Err(StatusCode::INTERNAL_SERVER_ERROR);
                }
            }
        }
        if let Some(r) = refusal {
            return refused(shared, r);
        }
    }
    // try_files (nginx's PRECONTENT phase): a file found becomes `$uri` here; otherwise a
    // status, a named location or an internal redirect.
    let mut found_uri: Option<String> = None;
    if let Some(try_files) = &loc.try_files {
        let (root, alias) = match &loc.action {
            ActionRt::Static { root, alias, .. } => (
                root.as_deref().unwrap_or(&ctx.server.root),
                alias
                    .as_deref()
                    .map(|a| (a, ctx.uri.get(..prefix_len).unwrap_or(""))),
            ),
            _ => (ctx.server.root.as_path(), None),
        };
        let method = ctx.parts.method.clone();
        let root = crate::request_vars::root_for(&rt.root_templates, ctx, root);
        match try_files.run(ctx, &root, alias).await {
            Tried::Found(uri) => found_uri = Some(uri),
            Tried::Status(code) => {
                let status =
                    StatusCode::from_u16(code).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
                return if code >= 400 {
                    Err(status)
                } else {
                    Ok(error_response(status))
                };
            }
            Tried::Named(name) => {
                let target = Target::Named(name);
                return Ok(internal_redirect(
                    shared,
                    ctx,
                    target,
                    method,
                    body,
                    client_upgrade,
                    Cause::Internal,
                )
                .await);
            }
            Tried::Redirect(uri) => {
                let target = Target::Uri(uri);
                return Ok(internal_redirect(
                    shared,
                    ctx,
                    target,
                    method,
                    body,
                    client_upgrade,
                    Cause::Internal,
                )
                .await);
            }
        }
    }
    let tried_ctx;
    let ctx = match &found_uri {
        Some(uri) => {
            tried_ctx = RequestCtx { uri, ..*ctx };
            &tried_ctx
        }
        None => ctx,
    };
    match &loc.action {
        ActionRt::Proxy(pass) => {
            let evaluated;
            let pass = match &pass.dynamic {
                None => pass,
                Some(dynamic) => {
                    evaluated = Box::pin(dynamic.evaluate(ctx, rt)).await?;
                    &evaluated
                }
            };
            let proxy_host = pass.proxy_host.to_str().unwrap_or("");
            let pctx = RequestCtx {
                proxy_host,
                remote_user: remote_user.as_deref(),
                ..*ctx
            };
            let limit = body_limit(rt, Some(loc));
            let client_body = body
                .filter(|_| ctx.has_body && loc.cfg.proxy_pass_request_body)
                .map(|body| ClientBody::new(body, rt.cfg.client_body_timeout, limit));
            let (client_body, buffered) = match client_body {
                Some(small) if small_body(ctx.parts) => {
                    (None, Some(Box::pin(read_small_body(small)).await?))
                }
                other => (other, None),
            };
            let forwarding = Forwarding {
                ctx: &pctx,
                loc,
                pass,
                prefix_len,
                body: client_body,
                buffered,
                client_upgrade,
            };
            match forward(forwarding, report).await {
                Ok(response) => {
                    let status = response.status();
                    if loc.cfg.proxy_intercept_errors
                        && status.as_u16() >= 300
                        && find_error_page(&loc.error_pages, status).is_some()
                    {
                        return Err(status);
                    }
                    Ok(response)
                }
                Err(ProxyFailure::Status(status)) if loc.cfg.grpc => Ok(grpc_unavailable(status)),
                Err(ProxyFailure::Status(status) | ProxyFailure::ClientBody(status)) => Err(status),
            }
        }
        // Boxed, like the other rare paths: the common proxied request keeps a small state.
        _ => Box::pin(serve_local(shared, rt, ctx, loc, prefix_len)).await,
    }
}

/// nginx's header filter: a `Location` starting with `/` that halo made (not an upstream's)
/// gets `scheme://host[:port]` in front, the host from the request (or the
/// server's name with `server_name_in_redirect on`), the port unless it is the scheme's.
fn absolute_location(
    ctx: &RequestCtx<'_>,
    form: halo_config::http::RedirectForm,
    response: &mut Response<ResponseBody>,
) {
    // An upstream's relative Location passes as it is (nginx leaves it out of the filter).
    if !form.absolute || response.body().finish.lease.is_some() {
        return;
    }
    let Some(location) = response.headers().get(header::LOCATION) else {
        return;
    };
    if !location.as_bytes().starts_with(b"/") {
        return;
    }
    let tls = ctx.info.tls.is_some();
    let host = if form.server_name {
        ctx.server.name.as_str()
    } else {
        ctx.host
    };
    let port = ctx.info.local.port();
    let mut absolute = String::with_capacity(location.len() + host.len() + 16);
    absolute.push_str(if tls { "https://" } else { "http://" });
    absolute.push_str(host);
    if form.port && port != if tls { 443 } else { 80 } {
        absolute.push(':');
        push_display(&mut absolute, port);
    }
    absolute.push_str(&String::from_utf8_lossy(location.as_bytes()));
    if let Ok(value) = HeaderValue::from_str(&absolute) {
        response.headers_mut().insert(header::LOCATION, value);
    }
}

/// An error page answers with the error's status; it is set before the serving location's
/// `add_header` judges the status, as in nginx.
fn force_status(internal: Option<&Internal>, response: &mut Response<ResponseBody>) {
    if let Some(status) = internal.and_then(|i| i.status) {
        if response.extensions().get::<Redirected>().is_some() {
            return;
        }
        // A page that redirects or fails keeps its own status (nginx 1.15.4+).
        if response.status().as_u16() < 300 {
            *response.status_mut() = status;
        }
    }
}

/// The `auth_request` subrequest: its verdict, and the request's variables with the
/// `auth_request_set` lines applied (when there are any).
async fn auth_subrequest(
    shared: &Shared,
    ctx: &RequestCtx<'_>,
    auth: &crate::auth_request::AuthRequestRt,
) -> (AuthAnswer, Option<crate::rewrite::RewriteState>) {
    let target = Target::Uri(auth.uri.clone());
    let response = internal_redirect(
        shared,
        ctx,
        target,
        Method::GET,
        None,
        None,
        Cause::Subrequest,
    )
    .await;
    let answer = AuthAnswer::of(response.status(), response.headers());
    if auth.sets.is_empty() {
        return (answer, None);
    }
    let source = crate::auth_request::SubAnswer {
        main: ctx,
        status: response.status(),
        headers: response.headers(),
    };
    let mut vars = ctx.rw.cloned().unwrap_or_default();
    for (index, template) in &auth.sets {
        vars.set(*index, template.render(&source));
    }
    (answer, Some(vars))
}

/// An access refusal: 401 with its challenge, or the status for `error_page` (403, 500).
fn refused(
    shared: &Shared,
    refusal: crate::access::Refusal,
) -> Result<Response<ResponseBody>, StatusCode> {
    use crate::access::Refusal;
    match refusal {
        Refusal::Unauthorized(challenge) => {
            Counters::bump(&shared.counters.rejected_auth);
            let mut response = error_response(StatusCode::UNAUTHORIZED);
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
            Ok(response)
        }
        Refusal::Forbidden => {
            Counters::bump(&shared.counters.rejected_access);
            Err(StatusCode::FORBIDDEN)
        }
        Refusal::Failed => Err(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// A gRPC location whose upstream could not answer: a trailers-only gRPC response with
/// `grpc-status: 14` (UNAVAILABLE, how gRPC maps 502/503/504), so the client library reports a
/// gRPC error it can retry rather than a protocol error.
fn grpc_unavailable(status: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::empty());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", http::HeaderValue::from_static("14"));
    let message = if status == StatusCode::GATEWAY_TIMEOUT {
        "upstream timed out"
    } else {
        "upstream unavailable"
    };
    headers.insert("grpc-message", http::HeaderValue::from_static(message));
    response
}

/// Bodies up to this size (by Content-Length) are read before the first try, so that
/// `proxy_next_upstream` can replay them like nginx does with its buffered bodies; larger or
/// chunked bodies are streamed.
const BUFFERED_BODY_LIMIT: u64 = 64 * 1024;

fn small_body(parts: &http::request::Parts) -> bool {
    parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|len| len <= BUFFERED_BODY_LIMIT)
}

/// Reads a small body completely (client_body_timeout between reads): 408 when too slow, 400
/// when the client broke it off.
async fn read_small_body(body: ClientBody) -> Result<bytes::Bytes, StatusCode> {
    use http_body_util::BodyExt as _;
    let cut = body.cut.clone();
    match body.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(match cut.load(std::sync::atomic::Ordering::Relaxed) {
            crate::body::CUT_TIMEOUT => StatusCode::REQUEST_TIMEOUT,
            crate::body::CUT_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }),
    }
}

fn status_or_503(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

/// Locally produced content: return, stub_status, static files.
async fn serve_local(
    shared: &Shared,
    rt: &Runtime,
    ctx: &RequestCtx<'_>,
    loc: &LocationRt,
    prefix_len: usize,
) -> Result<Response<ResponseBody>, StatusCode> {
    match &loc.action {
        ActionRt::Return { code, text } => {
            let text = text.as_ref().map(|t| t.render(ctx));
            return_response(rt, loc.types.as_ref(), ctx.uri, *code, text)
        }
        ActionRt::StubStatus => {
            if ctx.parts.method != Method::GET && ctx.parts.method != Method::HEAD {
                return Err(StatusCode::METHOD_NOT_ALLOWED);
            }
            let text = stub_status_text(&ctx.info.track.counters_snapshot());
            let mut response = Response::new(ResponseBody::full(text));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Ok(response)
        }
        ActionRt::Static { root, alias, index } => {
            let root = root.as_deref().unwrap_or(&ctx.server.root);
            let root = crate::request_vars::root_for(&rt.root_templates, ctx, root);
            let path = static_files::file_path(&root, alias.as_deref(), ctx.uri, prefix_len);
            let index = index.as_deref().unwrap_or(&ctx.server.index);
            // The index module: the first index file that exists is an internal redirect
            // (so its own location, add_header included, serves it), arguments kept.
            if ctx.uri.ends_with('/')
                && matches!(ctx.parts.method, Method::GET | Method::HEAD | Method::POST)
            {
                let render = |text: &str| {
                    crate::variables::Template::parse_with(text, &rt.user_vars)
                        .map(|t| t.render(ctx))
                        .unwrap_or_default()
                };
                if let Some(found) = static_files::find_index(&path, index, render).await {
                    let uri = match found {
                        static_files::IndexTarget::File(name) => format!("{}{name}", ctx.uri),
                        static_files::IndexTarget::Absolute(uri) => uri,
                    };
                    let target = Target::Uri(with_args(&uri, ctx.args()));
                    let method = ctx.parts.method.clone();
                    return Ok(internal_redirect(
                        shared,
                        ctx,
                        target,
                        method,
                        None,
                        None,
                        Cause::Internal,
                    )
                    .await);
                }
                if let (Some(settings), false) =
                    (&loc.cfg.autoindex, ctx.parts.method == Method::POST)
                {
                    return crate::autoindex::answer(&path, ctx.uri, ctx.args(), settings).await;
                }
            }
            let (mut headers, mut marks) = (None, crate::gzip::Marks::default());
            if let Some(f) = loc.filters.as_deref() {
                use crate::gzip::BeforeStatic;
                match crate::gzip::before_static(rt, f, ctx.parts, ctx.uri, &path).await {
                    BeforeStatic::Answered(answer) => return answer.map(|r| *r),
                    BeforeStatic::Serve(h, m) => (headers, marks) = (h, m),
                }
            }
            let headers = headers.as_ref().unwrap_or(&ctx.parts.headers);
            let served = static_files::serve(
                rt,
                Some(loc),
                &ctx.parts.method,
                path,
                ctx.uri,
                index,
                headers,
            );
            match served.await {
                StaticResult::Found(mut response) => {
                    marks.apply(&mut response);
                    Ok(*response)
                }
                StaticResult::Status(status) => Err(status),
                StaticResult::AddSlash => Ok(add_slash(ctx)),
            }
        }
        ActionRt::Proxy(_) => Err(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// `return CODE [TEXT]` (also from the rewrite module): a redirect with `Location`, a text,
/// or, for an error code without text, the error (so `error_page` applies).
fn return_response(
    rt: &Runtime,
    types: Option<&crate::mime::LocTypes>,
    uri: &str,
    code: u16,
    rendered: Option<String>,
) -> Result<Response<ResponseBody>, StatusCode> {
    let status = StatusCode::from_u16(code).map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    if code == 444 {
        // Closed without a response by halo's HTTP/1.1 writer; hyper-served connections get
        // the status with `Connection: close`.
        let mut response = Response::new(ResponseBody::empty());
        *response.status_mut() = status;
        close_connection(&mut response);
        return Ok(response);
    }
    if matches!(code, 301 | 302 | 303 | 307 | 308) {
        let mut response = error_response(status);
        if let Some(target) = rendered.and_then(|t| HeaderValue::from_str(&t).ok()) {
            response.headers_mut().insert(header::LOCATION, target);
        }
        return Ok(response);
    }
    if code >= 400 && rendered.is_none() {
        return Err(status);
    }
    // A text (or, below 400, nothing) is sent with the type of the URI's extension, as
    // nginx's `ngx_http_send_response` does.
    let mut response = Response::new(ResponseBody::full(rendered.unwrap_or_default()));
    *response.status_mut() = status;
    // nginx's header filter drops the type of a 204.
    if code != 204 {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, mime_for_uri(rt, types, uri));
    }
    Ok(response)
}

/// The type for a URI by its extension (after the last `.` of the last segment), else
/// `default_type`.
pub(crate) fn mime_for_uri(
    rt: &Runtime,
    types: Option<&crate::mime::LocTypes>,
    uri: &str,
) -> HeaderValue {
    let last = uri.rsplit('/').next().unwrap_or("");
    crate::mime::type_for(rt, types, last.rsplit_once('.').map(|(_, ext)| ext))
}

/// The server rewrite phase, then location matching with the location's rewrite phase,
/// again after each `rewrite ... last` (at most 10 times, then 500, as nginx). Returns the
/// location that serves the request and, if a `return` or redirect answered, that answer.
fn rewrite_phases(
    rt: &Runtime,
    base: &RequestCtx<'_>,
    rw: &mut crate::rewrite::RewriteState,
    mut named: Option<usize>,
) -> (
    Option<crate::routing::LocationMatch>,
    Option<(u16, Option<String>)>,
) {
    use crate::rewrite::Flow;
    let server = base.server;
    // A jump to a named location skips the server's operations (nginx goes straight to the
    // named location's rewrite phase).
    if named.is_none() {
        if let Flow::Return { code, text } = crate::rewrite::run(&server.rewrite, base, rw, false) {
            return (None, Some((code, text)));
        }
    }
    for _ in 0..=10 {
        let uri = rw.uri.clone().unwrap_or_else(|| base.uri.to_owned());
        let found = match named.take() {
            Some(index) => Some(crate::routing::LocationMatch {
                index,
                prefix_len: 0,
            }),
            None => server.table.find(&uri),
        };
        let Some(found) = found else {
            return (None, None);
        };
        let Some(loc) = server.locations.get(found.index) else {
            return (None, None);
        };
        if let Some(regex) = server.table.regex(found.index) {
            rw.capture_location(regex, &uri, &rt.user_vars);
        }
        if loc.rewrite.is_empty() {
            return (Some(found), None);
        }
        rw.changed_in_location = false;
        match crate::rewrite::run(&loc.rewrite, base, rw, true) {
            Flow::Done => return (Some(found), None),
            Flow::Return { code, text } => return (Some(found), Some((code, text))),
            Flow::Last => {}
        }
    }
    tracing::error!(
        "rewrite or internal redirection cycle while processing {}",
        base.uri
    );
    (None, Some((500, None)))
}

/// nginx's 301 to the same URI with a slash, for a directory asked for without one.
fn add_slash(ctx: &RequestCtx<'_>) -> Response<ResponseBody> {
    let mut response = error_response(StatusCode::MOVED_PERMANENTLY);
    let mut target = format!("{}/", ctx.uri);
    if let Some(q) = ctx.parts.uri.query() {
        target.push('?');
        target.push_str(q);
    }
    if let Ok(value) = HeaderValue::from_str(&target) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A request no location took: the server's root and index files, its error pages.
async fn serve_server_root(
    shared: &Shared,
    rt: &Runtime,
    ctx: &RequestCtx<'_>,
    server: &ServerRt,
) -> Response<ResponseBody> {
    let root = crate::request_vars::root_for(&rt.root_templates, ctx, &server.root);
    let path = static_files::file_path(&root, None, ctx.uri, 0);
    let headers = &ctx.parts.headers;
    match static_files::serve(
        rt,
        None,
        &ctx.parts.method,
        path,
        ctx.uri,
        &server.index,
        headers,
    )
    .await
    {
        StaticResult::Found(response) => *response,
        StaticResult::AddSlash => add_slash(ctx),
        StaticResult::Status(status) => {
            // A directory without index file: the autoindex module's listing, if on.
            let listing = match &server.autoindex {
                Some(settings)
                    if status == StatusCode::FORBIDDEN
                        && ctx.uri.ends_with('/')
                        && matches!(ctx.parts.method, Method::GET | Method::HEAD) =>
                {
                    let dir = static_files::file_path(&root, None, ctx.uri, 0);
                    Some(crate::autoindex::answer(&dir, ctx.uri, ctx.args(), settings).await)
                }
                _ => None,
            };
            match listing.unwrap_or(Err(status)) {
                Ok(response) => response,
                Err(status) => {
                    Box::pin(serve_error(shared, ctx, status, &server.error_pages)).await
                }
            }
        }
    }
}

fn find_error_page(pages: &[ErrorPage], status: StatusCode) -> Option<&ErrorPage> {
    pages.iter().find(|p| p.codes.contains(&status.as_u16()))
}

/// `error_page`: an internal redirect to a local URI (as GET, HEAD staying HEAD) or a named
/// location (same method), served by whatever location takes it; `recursive_error_pages
/// off`, so errors there are not redirected again. An absolute URL answers 302 (or the `=`
/// code). The answer keeps the original status unless the rule says `=` (the page's own) or
/// `=CODE`.
async fn serve_error(
    shared: &Shared,
    ctx: &RequestCtx<'_>,
    status: StatusCode,
    pages: &[ErrorPage],
) -> Response<ResponseBody> {
    let Some(page) = find_error_page(pages, status) else {
        return error_response(status);
    };
    if ctx.internal.is_some_and(|i| i.error_page) {
        return error_response(status);
    }
    if page.uri.starts_with("http://") || page.uri.starts_with("https://") {
        let code = page
            .status
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::FOUND);
        let mut response = error_response(code);
        if let Ok(value) = HeaderValue::from_str(&page.uri) {
            response.headers_mut().insert(header::LOCATION, value);
        }
        return response;
    }
    let (target, method) = if page.uri.starts_with('@') {
        (Target::Named(page.uri.clone()), ctx.parts.method.clone())
    } else {
        let method = if ctx.parts.method == Method::HEAD {
            Method::HEAD
        } else {
            Method::GET
        };
        (Target::Uri(page.uri.clone()), method)
    };
    let whole = !page.status_from_page && page.status != Some(200);
    let forced = if page.status_from_page {
        None
    } else {
        Some(
            page.status
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(status),
        )
    };
    let cause = Cause::ErrorPage { whole, forced };
    let mut response = internal_redirect(shared, ctx, target, method, None, None, cause).await;
    if let Some(forced) = forced {
        if response.status().as_u16() < 300 {
            *response.status_mut() = forced;
        }
    }
    // nginx's header filter keeps Last-Modified only on 200, 206 and 304; its range filter
    // offers ranges only on 200.
    if !matches!(response.status().as_u16(), 200 | 206 | 304) {
        response.headers_mut().remove(header::LAST_MODIFIED);
    }
    if response.status() != StatusCode::OK {
        response.headers_mut().remove(header::ACCEPT_RANGES);
    }
    response
}

/// A redirect halo made itself (`return 302`, a redirecting rewrite, a directory's added
/// slash) goes through `error_page` like an error, as in nginx; a page that is a local URI
/// keeps the redirect's Location. Upstream answers and redirected ones pass untouched.
async fn redirect_error_page(
    shared: &Shared,
    ctx: &RequestCtx<'_>,
    response: Response<ResponseBody>,
    pages: &[ErrorPage],
) -> Response<ResponseBody> {
    let status = response.status();
    let is_redirect = matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308);
    if !is_redirect
        || pages.is_empty()
        || response.body().finish.lease.is_some()
        || response.extensions().get::<Redirected>().is_some()
    {
        return response;
    }
    let Some(page) = find_error_page(pages, status) else {
        return response;
    };
    let local = !page.uri.starts_with("http://") && !page.uri.starts_with("https://");
    let location = response.headers().get(header::LOCATION).cloned();
    let mut answer = serve_error(shared, ctx, status, pages).await;
    if let (true, Some(location)) = (local, location) {
        answer
            .headers_mut()
            .entry(header::LOCATION)
            .or_insert(location);
    }
    answer
}

/// nginx's internal redirect: the request starts over (server rewrites, location search,
/// access checks, content) at another URI or a named location, with the same connection,
/// headers and (for try_files) body. At most 10 per request, then 500.
async fn internal_redirect(
    shared: &Shared,
    ctx: &RequestCtx<'_>,
    target: Target,
    method: Method,
    body: Option<Incoming>,
    upgrade: Option<OnUpgrade>,
    cause: Cause,
) -> Response<ResponseBody> {
    let hops = ctx.internal.map_or(0, |i| i.hops) + 1;
    if hops > 10 {
        tracing::error!(
            uri = ctx.uri,
            "rewrite or internal redirection cycle while internally redirecting"
        );
        return error_response(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let (path, uri, named) = match target {
        Target::Uri(uri) => {
            let (path, args) = uri
                .split_once('?')
                .map_or((uri.as_str(), None), |(p, a)| (p, Some(a)));
            (
                path.to_owned(),
                with_args(&crate::uri::encode_path(path), args),
                None,
            )
        }
        Target::Named(name) => (
            ctx.uri.to_owned(),
            with_args(&crate::uri::encode_path(ctx.uri), ctx.args()),
            Some(name),
        ),
    };
    let mut parts = Request::new(()).into_parts().0;
    parts.method = method;
    parts.version = ctx.parts.version;
    parts.headers = ctx.parts.headers.clone();
    if matches!(cause, Cause::ErrorPage { whole: true, .. }) {
        for name in [
            header::RANGE,
            header::IF_RANGE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            header::IF_UNMODIFIED_SINCE,
        ] {
            parts.headers.remove(name);
        }
    }
    if cause == Cause::Subrequest {
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.remove(header::TRANSFER_ENCODING);
    }
    let error_page = matches!(cause, Cause::ErrorPage { .. });
    parts.uri = match uri.parse() {
        Ok(uri) => uri,
        Err(_) => return error_response(StatusCode::INTERNAL_SERVER_ERROR),
    };
    if let Some(case) = ctx.parts.extensions.get::<crate::header_case::HeaderCase>() {
        parts.extensions.insert(case.clone());
    }
    if let Some(upgrade) = upgrade {
        parts.extensions.insert(upgrade);
    }
    parts.extensions.insert(ctx.stamp.clone());
    parts.extensions.insert(Internal {
        hops,
        request_uri: ctx.request_uri().to_owned(),
        uri: path,
        named,
        error_page: error_page || ctx.internal.is_some_and(|i| i.error_page),
        status: match cause {
            Cause::ErrorPage { forced, .. } => forced,
            Cause::Internal | Cause::Subrequest => ctx.internal.and_then(|i| i.status),
        },
        subrequest: cause == Cause::Subrequest,
        peer: ctx.peer,
        vars: ctx.rw.map(|rw| rw.vars.clone()).unwrap_or_default(),
    });
    let mut response = Box::pin(handle(shared, ctx.info, parts, body)).await;
    response.extensions_mut().insert(Redirected);
    response
}

fn with_args(path: &str, args: Option<&str>) -> String {
    match args {
        Some(args) if !args.is_empty() => format!("{path}?{args}"),
        _ => path.to_owned(),
    }
}

/// `add_header`: only for 200, 201, 204, 206, 301, 302, 303, 304, 307, 308 unless `always`.
fn add_headers(ctx: &RequestCtx<'_>, loc: &LocationRt, response: &mut Response<ResponseBody>) {
    if loc.add_headers.is_empty() || response.extensions().get::<Redirected>().is_some() {
        return;
    }
    // nginx's range filter runs after add_header: its 416 was a 200 then.
    let range_refused = response.status() == StatusCode::RANGE_NOT_SATISFIABLE
        && response.headers().contains_key(header::CONTENT_RANGE);
    let ok_status = range_refused
        || matches!(
            response.status().as_u16(),
            200 | 201 | 204 | 206 | 301 | 302 | 303 | 304 | 307 | 308
        );
    let from_upstream = response.body().finish.lease.is_some();
    for (name, template, always) in &loc.add_headers {
        if !ok_status && !always {
            continue;
        }
        let value = template.render(&crate::request_vars::ResponseVars {
            ctx,
            headers: response.headers(),
            from_upstream,
            length: http_body::Body::size_hint(response.body()).exact(),
        });
        if value.is_empty() {
            continue;
        }
        // nginx writes a value's CR and LF (`"...\n"` in the configuration) as they are,
        // which splits the head; halo leaves them out.
        let value = if value.contains(['\r', '\n']) {
            value.replace(['\r', '\n'], "")
        } else {
            value
        };
        if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
            response.headers_mut().append(name.clone(), value);
        }
    }
    if let Some(case) = &loc.add_header_case {
        let extensions = response.extensions_mut();
        match extensions.get_mut::<crate::header_case::HeaderCase>() {
            Some(existing) => existing.merge(case),
            None => {
                extensions.insert(case.clone());
            }
        }
    }
}

fn log_record(
    ctx: &RequestCtx<'_>,
    response: &Response<ResponseBody>,
    report: UpstreamReport,
    remote_user: Option<String>,
    started: Instant,
    nth: u64,
    sinks: &[std::sync::Arc<crate::access_log::LogSink>],
) -> LogRecord {
    let parts = ctx.parts;
    let request_uri = parts
        .uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    let mut request_headers = Vec::new();
    for sink in sinks {
        for name in &sink.wanted_headers {
            for value in parts.headers.get_all(name) {
                request_headers.push((name.clone(), value.clone()));
            }
        }
    }
    LogRecord {
        peer: Some(ctx.peer),
        conn_peer: Some(ctx.info.peer),
        proxied: ctx.info.proxied.as_deref().copied(),
        local: Some(ctx.info.local),
        remote_user,
        request_line: format!(
            "{} {} {}",
            parts.method,
            request_uri,
            protocol(parts.version)
        ),
        method: parts.method.to_string(),
        request_uri,
        uri: ctx.uri.to_owned(),
        host: ctx.host.to_owned(),
        server_name: ctx.server.name.clone(),
        protocol: protocol(parts.version),
        status: response.status().as_u16(),
        started: Some(started),
        request_headers,
        response_headers: response.headers().clone(),
        upstream_addr: report.addr,
        upstream_status: report.status,
        upstream_response_time: report.response_time,
        upstream_connect_time: report.connect_time,
        connection: ctx.info.track.serial,
        tls: ctx.info.tls.clone(),
        connection_requests: nth,
        request_length: 0,
        body_bytes_sent: 0,
        stamp: Some(ctx.stamp.clone()),
        from_upstream: response.body().finish.lease.is_some(),
    }
}
