//! Passing a request to an upstream (`ngx_http_upstream.c` + `ngx_http_proxy_module.c`): peer
//! selection through halo-lb, pooled connections, `proxy_next_upstream` retries, header rules,
//! `proxy_redirect`, and Upgrade (WebSocket) tunnels.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use halo_lb::{Method as LbMethod, Outcome, PeerId, PickKey, Tried};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::body::{ClientBody, RequestBody, ResponseBody, ResponseKind, UpstreamBody};
use crate::handler::RequestCtx;
use crate::pool::{ConnectError, UpstreamConn};
use crate::runtime::{HeaderSource, LocationRt, ProxyPassRt, UpstreamRt};
use crate::variables::push_display;

/// A peer in use by one attempt; released into the balancer (passive health) when dropped.
#[derive(Debug)]
pub(crate) struct PeerLease {
    upstream: Arc<UpstreamRt>,
    peer: PeerId,
    pub outcome: Outcome,
}

impl Drop for PeerLease {
    fn drop(&mut self) {
        self.upstream
            .lb
            .release(Instant::now(), self.peer, self.outcome);
    }
}

/// `$upstream_addr`, `$upstream_status`, `$upstream_response_time`, `$upstream_connect_time`:
/// one entry per attempt, joined with ", " as nginx does.
#[derive(Debug, Default)]
pub(crate) struct UpstreamReport {
    /// Only filled when an access log will print it (saves formatting on the hot path).
    pub enabled: bool,
    pub addr: String,
    pub status: String,
    pub response_time: String,
    pub connect_time: String,
}

impl UpstreamReport {
    fn begin(&mut self, addr: std::net::SocketAddr) {
        if !self.enabled {
            return;
        }
        for field in [
            &mut self.addr,
            &mut self.status,
            &mut self.response_time,
            &mut self.connect_time,
        ] {
            if !field.is_empty() {
                field.push_str(", ");
            }
        }
        push_display(&mut self.addr, addr);
    }

    fn end(&mut self, status: Option<u16>, started: Instant, connect: Option<Duration>) {
        if !self.enabled {
            return;
        }
        match status {
            Some(code) => push_display(&mut self.status, code),
            None => self.status.push_str("502"),
        }
        let t = started.elapsed();
        push_display(
            &mut self.response_time,
            format_args!("{}.{:03}", t.as_secs(), t.subsec_millis()),
        );
        match connect {
            Some(c) => push_display(
                &mut self.connect_time,
                format_args!("{}.{:03}", c.as_secs(), c.subsec_millis()),
            ),
            None => self.connect_time.push('-'),
        }
    }
}

/// Why an attempt failed (nginx `NGX_HTTP_UPSTREAM_FT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailKind {
    Error,
    Timeout,
    InvalidHeader,
}

#[derive(Debug)]
struct AttemptError {
    kind: FailKind,
    /// The request (head) reached the upstream socket.
    sent: bool,
    connect_time: Option<Duration>,
}

/// The request could not be answered by an upstream; the handler answers with this status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyFailure {
    Status(StatusCode),
    /// The client body was cut (too large / too slow): 413 or 408.
    ClientBody(StatusCode),
}

/// Everything of the client request the proxy needs after the head was inspected.
pub(crate) struct Forwarding<'a> {
    pub ctx: &'a RequestCtx<'a>,
    pub loc: &'a LocationRt,
    pub pass: &'a ProxyPassRt,
    pub prefix_len: usize,
    /// A body streamed from the client (single use: no retry once sent).
    pub body: Option<ClientBody>,
    /// A small body read before the first try (replayed on retries, as nginx's buffered bodies).
    pub buffered: Option<bytes::Bytes>,
    pub client_upgrade: Option<OnUpgrade>,
}

/// nginx `ngx_http_upstream_next`: the status a request gets when the last try failed.
fn failure_status(kind: FailKind) -> StatusCode {
    match kind {
        FailKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        FailKind::Error | FailKind::InvalidHeader => StatusCode::BAD_GATEWAY,
    }
}

/// POST, LOCK and PATCH are not passed to the next server once sent, unless `non_idempotent`.
fn is_non_idempotent(method: &Method) -> bool {
    method == Method::POST || method == Method::PATCH || method.as_str() == "LOCK"
}

static RANDOM_STATE: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);

fn next_random() -> u64 {
    // SplitMix64 over a shared counter: good enough for `random` balancing.
    let mut z = RANDOM_STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Proxies the request; returns the response to send or the status of the failure.
pub(crate) async fn forward(
    mut f: Forwarding<'_>,
    report: &mut UpstreamReport,
) -> Result<Response<ResponseBody>, ProxyFailure> {
    let upstream = &f.pass.upstream;
    let lb = &upstream.lb;
    let cfg = &f.loc.cfg;
    let mut tried = Tried::new(lb);
    let configured_tries = usize::try_from(cfg.proxy_next_upstream_tries).unwrap_or(usize::MAX);
    let tries_limit = if configured_tries == 0 {
        lb.tries_limit()
    } else {
        configured_tries.min(lb.tries_limit())
    }
    .max(1);
    let first_start = Instant::now();
    let budget =
        (!cfg.proxy_next_upstream_timeout.is_zero()).then_some(cfg.proxy_next_upstream_timeout);
    let hash_text;
    let key = match lb.method() {
        LbMethod::IpHash => PickKey::ClientIp(f.ctx.info.peer.ip()),
        LbMethod::Hash { .. } => {
            hash_text = upstream
                .hash_key
                .as_ref()
                .map(|t| t.render(f.ctx))
                .unwrap_or_default();
            PickKey::Hash(hash_text.as_bytes())
        }
        LbMethod::Random { .. } => PickKey::Random(next_random()),
        LbMethod::RoundRobin | LbMethod::LeastConn => PickKey::None,
    };
    let has_body = f.body.is_some();
    let cut_flag = f.body.as_ref().map(|b| b.cut.clone());
    let mut attempts = 0usize;
    let mut last_failure = StatusCode::BAD_GATEWAY;
    let ne = f.loc.next_upstream;
    loop {
        let peer = match lb.pick(Instant::now(), &key, &mut tried) {
            Ok(peer) => peer,
            Err(no_live) => {
                if attempts == 0 {
                    tracing::error!(upstream = %upstream.name, "{no_live} while connecting to upstream");
                    report.begin_nolive(&upstream.name);
                }
                return Err(ProxyFailure::Status(last_failure));
            }
        };
        attempts += 1;
        // Until the attempt ends, the outcome is "not the server's fault": if this future is
        // dropped because the client went away, nginx too frees the peer without counting a
        // failure (NGX_HTTP_CLIENT_CLOSED_REQUEST, 499).
        let mut lease = PeerLease {
            upstream: upstream.clone(),
            peer,
            outcome: Outcome::NotFailed,
        };
        let addr = lb.server(peer).addr;
        report.begin(addr);
        let started = Instant::now();
        let attempt = attempt(&mut f, peer).await;
        let budget_left = budget.is_none_or(|b| first_start.elapsed() < b);
        match attempt {
            Ok((mut response, conn, connect_time)) => {
                let status = response.status().as_u16();
                report.end(Some(status), started, connect_time);
                let listed = ne.on_status(status);
                // 403 and 404 move on without counting as a failure (NGX_PEER_NEXT).
                let failure = if status == 403 || status == 404 {
                    Outcome::NotFailed
                } else {
                    Outcome::Failed
                };
                let may_retry = listed
                    && attempts < tries_limit
                    && budget_left
                    && !has_body
                    && (ne.non_idempotent || !is_non_idempotent(&f.ctx.parts.method));
                if may_retry {
                    lease.outcome = failure;
                    drop(response);
                    continue;
                }
                lease.outcome = if listed { failure } else { Outcome::Success };
                if status == 101 {
                    let upstream_upgrade = hyper::upgrade::on(&mut response);
                    return Ok(tunnel(
                        response,
                        upstream_upgrade,
                        f.client_upgrade.take(),
                        lease,
                    ));
                }
                return Ok(client_response(response, conn, lease, &f));
            }
            Err(error) => {
                report.end(None, started, error.connect_time);
                lease.outcome = Outcome::Failed;
                drop(lease);
                if let Some(flag) = &cut_flag {
                    match flag.load(Ordering::Relaxed) {
                        crate::body::CUT_TOO_LARGE => {
                            return Err(ProxyFailure::ClientBody(StatusCode::PAYLOAD_TOO_LARGE))
                        }
                        crate::body::CUT_TIMEOUT => {
                            return Err(ProxyFailure::ClientBody(StatusCode::REQUEST_TIMEOUT))
                        }
                        _ => {}
                    }
                }
                last_failure = failure_status(error.kind);
                tracing::warn!(%addr, kind = ?error.kind, "upstream attempt failed");
                let allowed = match error.kind {
                    FailKind::Error => ne.error,
                    FailKind::Timeout => ne.timeout,
                    FailKind::InvalidHeader => ne.invalid_header,
                };
                let body_gone = has_body && f.body.is_none();
                let blocked_method =
                    error.sent && is_non_idempotent(&f.ctx.parts.method) && !ne.non_idempotent;
                if !allowed
                    || attempts >= tries_limit
                    || !budget_left
                    || body_gone
                    || blocked_method
                {
                    return Err(ProxyFailure::Status(last_failure));
                }
            }
        }
    }
}

impl UpstreamReport {
    fn begin_nolive(&mut self, name: &str) {
        if self.addr.is_empty() {
            self.addr.push_str(name);
            self.status.push_str("502");
        }
    }
}

/// While another server of the upstream could take the request, one connect attempt waits at most
/// this long, whatever `proxy_connect_timeout` says (nginx waits the whole timeout, 60 s by
/// default, on a host that vanished). A SYN lost once is retransmitted after 1 s and still makes it.
const CONNECT_CAP_WITH_ALTERNATIVES: Duration = Duration::from_millis(1500);

async fn connect(
    upstream: &UpstreamRt,
    peer: PeerId,
    timeout: Duration,
) -> Result<(UpstreamConn, Duration), AttemptError> {
    let addr = upstream.lb.server(peer).addr;
    let alternatives = upstream.lb.servers().iter().filter(|s| !s.down).count() > 1;
    let timeout = if alternatives && (timeout.is_zero() || timeout > CONNECT_CAP_WITH_ALTERNATIVES)
    {
        CONNECT_CAP_WITH_ALTERNATIVES
    } else {
        timeout
    };
    let started = Instant::now();
    let kind = match UpstreamConn::connect(addr, timeout).await {
        Ok(conn) => return Ok((conn, started.elapsed())),
        Err(ConnectError::Timeout) => FailKind::Timeout,
        Err(ConnectError::Io(error)) => {
            tracing::warn!(%addr, %error, "connect() to upstream failed");
            FailKind::Error
        }
        Err(ConnectError::Handshake(error)) => {
            tracing::warn!(%addr, %error, "upstream handshake failed");
            FailKind::Error
        }
    };
    Err(AttemptError {
        kind,
        sent: false,
        connect_time: None,
    })
}

/// One try on one peer. A pooled connection that turns out dead before the request was
/// written is replaced by a fresh one without using up a try (nginx gives the try back).
async fn attempt(
    f: &mut Forwarding<'_>,
    peer: PeerId,
) -> Result<(Response<Incoming>, UpstreamConn, Option<Duration>), AttemptError> {
    let upstream = &f.pass.upstream;
    let cfg = &f.loc.cfg;
    let pool = upstream
        .pools
        .get(peer.index())
        .cloned()
        .unwrap_or_default();
    let (mut conn, mut connect_time) = match pool.checkout(Instant::now(), &upstream.limits) {
        Some(conn) => (conn, None),
        None => {
            let (conn, took) = connect(upstream, peer, cfg.proxy_connect_timeout).await?;
            (conn, Some(took))
        }
    };
    loop {
        if conn.sender.ready().await.is_err() {
            if conn.reused {
                let (fresh, took) = connect(upstream, peer, cfg.proxy_connect_timeout).await?;
                (conn, connect_time) = (fresh, Some(took));
                continue;
            }
            return Err(AttemptError {
                kind: FailKind::Error,
                sent: false,
                connect_time,
            });
        }
        let request = build_request(f);
        conn.note_request();
        let sending = conn.sender.try_send_request(request);
        let outcome = if cfg.proxy_read_timeout.is_zero() {
            Ok(sending.await)
        } else {
            tokio::time::timeout(cfg.proxy_read_timeout, sending).await
        };
        match outcome {
            Err(_) => {
                return Err(AttemptError {
                    kind: FailKind::Timeout,
                    sent: true,
                    connect_time,
                })
            }
            Ok(Ok(response)) => return Ok((response, conn, connect_time)),
            Ok(Err(mut error)) => {
                if let Some(request) = error.take_message() {
                    // Not written at all: the body is intact and goes back to its slot.
                    if let RequestBody::Client(body) = request.into_body() {
                        f.body = Some(body);
                    }
                    if conn.reused {
                        let (fresh, took) =
                            connect(upstream, peer, cfg.proxy_connect_timeout).await?;
                        (conn, connect_time) = (fresh, Some(took));
                        continue;
                    }
                    return Err(AttemptError {
                        kind: FailKind::Error,
                        sent: false,
                        connect_time,
                    });
                }
                let error = error.into_error();
                let replayable = !f.ctx.has_body || f.buffered.is_some();
                let stale = conn.reused
                    && replayable
                    && (error.is_incomplete_message() || error.is_canceled());
                if stale {
                    // The pooled connection was closed by the upstream as we reused it.
                    let (fresh, took) = connect(upstream, peer, cfg.proxy_connect_timeout).await?;
                    (conn, connect_time) = (fresh, Some(took));
                    continue;
                }
                let kind = if error.is_parse() || error.is_parse_status() {
                    FailKind::InvalidHeader
                } else if error.is_timeout() {
                    FailKind::Timeout
                } else {
                    FailKind::Error
                };
                tracing::debug!(%error, "upstream request failed");
                return Err(AttemptError {
                    kind,
                    sent: true,
                    connect_time,
                });
            }
        }
    }
}

/// Hop-by-hop headers never forwarded (RFC 9110 §7.6.1 and nginx `ngx_http_proxy_headers`).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "upgrade"
            | "expect"
            | "transfer-encoding"
            | "trailer"
            | "proxy-authenticate"
    )
}

fn listed_in_connection(headers: &HeaderMap, name: &HeaderName) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(name.as_str()))
        })
    })
}

/// Builds the upstream request for one attempt.
fn build_request(f: &mut Forwarding<'_>) -> Request<RequestBody> {
    let ctx = f.ctx;
    let client = &ctx.parts.headers;
    let mut headers = HeaderMap::with_capacity(client.len() + f.loc.set_headers.len() + 2);
    let has_connection_header = client.contains_key(header::CONNECTION);
    for (name, value) in client {
        if is_hop_by_hop(name)
            || f.loc.override_names.contains(name)
            || (has_connection_header && listed_in_connection(client, name))
        {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    let mut scratch = String::new();
    for (name, source) in &f.loc.set_headers {
        let value = match source {
            HeaderSource::Constant(value) => Some(value.clone()),
            HeaderSource::ProxyHost => Some(f.pass.proxy_host.clone()),
            HeaderSource::Template(template) => {
                scratch.clear();
                template.render_into(ctx, &mut scratch);
                // from_bytes keeps obs-text (bytes >= 0x80) that from_str would refuse.
                HeaderValue::from_bytes(scratch.as_bytes()).ok()
            }
        };
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            headers.append(name.clone(), value);
        }
    }
    if f.client_upgrade.is_some() {
        if let Some(upgrade) = client.get(header::UPGRADE) {
            headers.insert(header::UPGRADE, upgrade.clone());
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
    }
    let body = match (f.body.take(), &f.buffered) {
        (Some(body), _) => RequestBody::Client(body),
        (None, Some(bytes)) => RequestBody::Buffered(Some(bytes.clone())),
        (None, None) => RequestBody::Empty,
    };
    let mut request = Request::new(body);
    *request.method_mut() = ctx.parts.method.clone();
    *request.uri_mut() = upstream_uri(ctx, f.pass, f.prefix_len);
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    request
}

/// nginx: without a URI in proxy_pass the request URI goes as the client sent it; with one,
/// the part of the normalised URI matching the location prefix is replaced by it.
fn upstream_uri(ctx: &RequestCtx<'_>, pass: &ProxyPassRt, prefix_len: usize) -> Uri {
    let original = ctx.parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let Some(replacement) = &pass.uri else {
        if ctx.parts.uri.scheme().is_none() && ctx.parts.uri.path_and_query().is_some() {
            // origin-form already: reuse it (a cheap reference-counted clone).
            return ctx.parts.uri.clone();
        }
        return Uri::try_from(original).unwrap_or_else(|_| Uri::from_static("/"));
    };
    let rest = ctx.uri.get(prefix_len..).unwrap_or("");
    let mut target = String::with_capacity(replacement.len() + rest.len() + 16);
    target.push_str(replacement);
    target.push_str(&crate::uri::encode_path(rest));
    if let Some(query) = ctx.parts.uri.query() {
        target.push('?');
        target.push_str(query);
    }
    Uri::try_from(target).unwrap_or_else(|_| Uri::from_static("/"))
}

/// Turns the upstream response into the client response (hop-by-hop removed, proxy_redirect).
fn client_response(
    response: Response<Incoming>,
    conn: UpstreamConn,
    lease: PeerLease,
    f: &Forwarding<'_>,
) -> Response<ResponseBody> {
    let (mut parts, body) = response.into_parts();
    let connection_listed: Vec<HeaderName> = parts
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in connection_listed {
        parts.headers.remove(name);
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "trailer",
    ] {
        parts.headers.remove(name);
    }
    if !f.pass.redirects.is_empty()
        && (parts.status.is_redirection() || parts.status == StatusCode::CREATED)
    {
        rewrite_location(&mut parts.headers, f);
    }
    parts.version = Version::HTTP_11;
    let upstream = &f.pass.upstream;
    let pool = upstream.pools.get(lease.peer.index()).cloned();
    let pooled = pool.map(|pool| (conn, pool, upstream.limits));
    let body = UpstreamBody::new(body, f.loc.cfg.proxy_read_timeout, pooled);
    let mut body = ResponseBody::new(ResponseKind::Upstream(body));
    body.finish.lease = Some(lease);
    Response::from_parts(parts, body)
}

/// `proxy_redirect`: the first rule whose prefix starts `Location`/`Refresh` rewrites it.
fn rewrite_location(headers: &mut HeaderMap, f: &Forwarding<'_>) {
    for name in [header::LOCATION, HeaderName::from_static("refresh")] {
        let Some(value) = headers
            .get(&name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
        else {
            continue;
        };
        for (from, to) in &f.pass.redirects {
            if let Some(rest) = value.strip_prefix(from.as_str()) {
                let mut rewritten = String::new();
                let replacement = to.render(f.ctx);
                if replacement.starts_with('/') {
                    // `absolute_redirect on` (nginx default): a relative Location gets the
                    // scheme, the Host and a non-default port (ngx_http_header_filter).
                    rewritten.push_str("http://");
                    rewritten.push_str(f.ctx.host);
                    let port = f.ctx.info.local.port();
                    if port != 80 {
                        push_display(&mut rewritten, format_args!(":{port}"));
                    }
                }
                rewritten.push_str(&replacement);
                rewritten.push_str(rest);
                if let Ok(v) = HeaderValue::from_str(&rewritten) {
                    headers.insert(name.clone(), v);
                }
                break;
            }
        }
    }
}

/// A 101 answer: both sides are upgraded and bytes are copied both ways until either closes.
fn tunnel(
    response: Response<Incoming>,
    upstream_upgrade: OnUpgrade,
    client_upgrade: Option<OnUpgrade>,
    lease: PeerLease,
) -> Response<ResponseBody> {
    let (parts, _) = response.into_parts();
    if let Some(client_upgrade) = client_upgrade {
        tokio::spawn(async move {
            let _lease = lease;
            match tokio::try_join!(client_upgrade, upstream_upgrade) {
                Ok((client, upstream)) => {
                    let mut client = TokioIo::new(client);
                    let mut upstream = TokioIo::new(upstream);
                    if let Err(error) =
                        tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                    {
                        tracing::debug!(%error, "upgraded connection ended");
                    }
                }
                Err(error) => tracing::debug!(%error, "upgrade failed"),
            }
        });
    }
    Response::from_parts(parts, ResponseBody::empty())
}
