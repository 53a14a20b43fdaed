//! Passing a request to an upstream (`ngx_http_upstream.c` + `ngx_http_proxy_module.c`): peer
//! selection through halo-lb, pooled connections, `proxy_next_upstream` retries, header rules,
//! `proxy_redirect`, and Upgrade (WebSocket) tunnels.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use halo_lb::{Method as LbMethod, Outcome, PeerId, PickKey, Tried};
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::body::{ClientBody, ResponseBody, ResponseKind, UpstreamBody};
use crate::handler::RequestCtx;
use crate::runtime::{HeaderSource, LocationRt, ProxyPassRt, UpstreamRt};
use crate::upstream_h1::{put_chunk, put_header, ResponseError, ResponseHead, UpstreamConn};
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
        LbMethod::IpHash => PickKey::ClientIp(f.ctx.peer.ip()),
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
    if let Some(body) = f.pass.headers.body(f.ctx) {
        // `proxy_set_body`: this body instead of the client's, replayable on retries.
        f.body = None;
        f.buffered = Some(body);
    }
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
            Ok((answer, connect_time)) => {
                let status = answer.status();
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
                    drop(answer);
                    continue;
                }
                lease.outcome = if listed { failure } else { Outcome::Success };
                return Ok(match answer {
                    Answer::H1(head, conn) if status == 101 => {
                        tunnel(head, conn, f.client_upgrade.take(), lease)
                    }
                    Answer::H1(head, conn) => client_response(head, conn, lease, &f),
                    Answer::H2(response) => client_response_h2(response, lease, &f),
                });
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
    tls: Option<&crate::upstream_tls::UpstreamTlsRt>,
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
    // nginx bounds the TLS handshake by proxy_connect_timeout too.
    let connecting = UpstreamConn::connect(addr, tls);
    let result = if timeout.is_zero() {
        Ok(connecting.await)
    } else {
        tokio::time::timeout(timeout, connecting).await
    };
    let kind = match result {
        Ok(Ok(conn)) => return Ok((conn, started.elapsed())),
        Err(_) => FailKind::Timeout,
        Ok(Err(error)) => {
            tracing::warn!(%addr, %error, "connect() to upstream failed");
            FailKind::Error
        }
    };
    Err(AttemptError {
        kind,
        sent: false,
        connect_time: None,
    })
}

/// How writing a request to an upstream went wrong.
struct SendFailure {
    error: std::io::Error,
    /// Some of the request reached the socket.
    started: bool,
}

/// Writes the request: its head, then the body (buffered, or streamed from the client with
/// `client_body_timeout`, in chunks when the client sent no Content-Length). Every write waits at
/// most `proxy_send_timeout`.
async fn send_request(
    conn: &mut UpstreamConn,
    head: &[u8],
    f: &mut Forwarding<'_>,
    chunked: bool,
) -> Result<(), SendFailure> {
    let timeout = f.loc.cfg.proxy_send_timeout;
    let first = match &f.buffered {
        Some(bytes) if !bytes.is_empty() => {
            let mut wire = Vec::with_capacity(head.len() + bytes.len());
            wire.extend_from_slice(head);
            wire.extend_from_slice(bytes);
            conn.write_all(&wire, timeout).await
        }
        _ => conn.write_all(head, timeout).await,
    };
    first.map_err(|error| SendFailure {
        error,
        started: false,
    })?;
    let Some(mut body) = f.body.take() else {
        return Ok(());
    };
    let sent = |error| SendFailure {
        error,
        started: true,
    };
    let mut wire = Vec::new();
    loop {
        let frame = match http_body_util::BodyExt::frame(&mut body).await {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(error)) => return Err(sent(std::io::Error::other(error))),
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if data.is_empty() {
            continue;
        }
        if chunked {
            wire.clear();
            put_chunk(&mut wire, &data);
            conn.write_all(&wire, timeout).await.map_err(sent)?;
        } else {
            conn.write_all(&data, timeout).await.map_err(sent)?;
        }
    }
    if chunked {
        conn.write_all(b"0\r\n\r\n", timeout).await.map_err(sent)?;
    }
    Ok(())
}

/// One try on one peer. A pooled connection that turns out dead before the request was
/// answered is replaced by a fresh one without using up a try (nginx gives the try back).
/// What an upstream answered.
enum Answer {
    H1(ResponseHead, UpstreamConn),
    H2(Response<hyper::body::Incoming>),
}

impl Answer {
    fn status(&self) -> u16 {
        match self {
            Answer::H1(head, _) => head.status.as_u16(),
            Answer::H2(response) => response.status().as_u16(),
        }
    }
}

async fn attempt(
    f: &mut Forwarding<'_>,
    peer: PeerId,
) -> Result<(Answer, Option<Duration>), AttemptError> {
    if f.pass.h2 {
        return attempt_h2(f, peer).await;
    }
    let (head, conn, connect_time) = attempt_h1(f, peer).await?;
    Ok((Answer::H1(head, conn), connect_time))
}

/// One try over HTTP/2: a live connection to the peer is reused (a stream of it), else one is
/// made; a reused connection that turns out closed before the request went out is replaced once.
async fn attempt_h2(
    f: &mut Forwarding<'_>,
    peer: PeerId,
) -> Result<(Answer, Option<Duration>), AttemptError> {
    let upstream = &f.pass.upstream;
    let cfg = &f.loc.cfg;
    let tls = f.pass.tls.as_deref();
    let pool = upstream
        .pools
        .get(peer.index())
        .cloned()
        .unwrap_or_default();
    let mut connect_time = None;
    let mut pooled = pool.h2.get(tls);
    loop {
        let reused = pooled.is_some();
        let mut sender = match pooled.take() {
            Some(sender) => sender,
            None => {
                let started = Instant::now();
                let (conn, _) =
                    Box::pin(connect(upstream, peer, cfg.proxy_connect_timeout, tls)).await?;
                let handshake = pool.h2.handshake(conn, tls);
                let sender = match tokio::time::timeout(
                    cfg.proxy_connect_timeout.max(Duration::from_millis(1)),
                    handshake,
                )
                .await
                {
                    Ok(Ok(sender)) => sender,
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "HTTP/2 handshake with the upstream failed");
                        return Err(AttemptError {
                            kind: FailKind::Error,
                            sent: false,
                            connect_time: None,
                        });
                    }
                    Err(_) => {
                        return Err(AttemptError {
                            kind: FailKind::Timeout,
                            sent: false,
                            connect_time: None,
                        })
                    }
                };
                connect_time = Some(started.elapsed());
                sender
            }
        };
        let replayable = f.body.is_none();
        let request = build_h2_request(f);
        let sending = crate::upstream_h2::send(&mut sender, request);
        let outcome = if cfg.proxy_read_timeout.is_zero() {
            Ok(sending.await)
        } else {
            tokio::time::timeout(cfg.proxy_read_timeout, sending).await
        };
        match outcome {
            Ok(Ok(response)) => return Ok((Answer::H2(response), connect_time)),
            Err(_) => {
                return Err(AttemptError {
                    kind: FailKind::Timeout,
                    sent: true,
                    connect_time,
                })
            }
            Ok(Err(error)) => {
                if reused && replayable && (error.is_closed() || error.is_canceled()) {
                    continue;
                }
                tracing::debug!(%error, "upstream HTTP/2 request failed");
                return Err(AttemptError {
                    kind: FailKind::Error,
                    sent: true,
                    connect_time,
                });
            }
        }
    }
}

/// The request for an HTTP/2 upstream: the same header rules as HTTP/1.1 (hop-by-hop headers
/// out, `proxy_set_header` applied), Host as `:authority`, and `te: trailers` kept (gRPC needs it).
fn build_h2_request(f: &mut Forwarding<'_>) -> http::Request<crate::upstream_h2::H2Body> {
    use http_body_util::BodyExt;
    let ctx = f.ctx;
    let client = &ctx.parts.headers;
    let target = upstream_target(ctx, f.pass, f.prefix_len);
    let mut headers = HeaderMap::with_capacity(client.len() + f.loc.set_headers.len());
    let has_connection_header = client.contains_key(header::CONNECTION);
    let pass_body = f.loc.cfg.proxy_pass_request_body && !f.pass.headers.sets_body();
    for (name, value) in client
        .iter()
        .filter(|_| f.loc.cfg.proxy_pass_request_headers)
    {
        if !pass_body && name == header::CONTENT_LENGTH {
            continue;
        }
        if name == header::TE {
            if value.as_bytes().eq_ignore_ascii_case(b"trailers") {
                headers.append(header::TE, value.clone());
            }
            continue;
        }
        if is_hop_by_hop(name)
            || name == header::HOST
            || f.loc.override_names.contains(name)
            || (has_connection_header && listed_in_connection(client, name))
        {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    let mut authority = f.pass.proxy_host.clone();
    let mut scratch = String::new();
    for (name, _, source) in &f.loc.set_headers {
        let value = match source {
            HeaderSource::Constant(value) => value.clone(),
            HeaderSource::ProxyHost => f.pass.proxy_host.clone(),
            HeaderSource::Template(template) => {
                scratch.clear();
                template.render_into(ctx, &mut scratch);
                match HeaderValue::from_str(&scratch) {
                    Ok(v) => v,
                    Err(_) => continue,
                }
            }
        };
        if value.is_empty() {
            continue;
        }
        if name == header::HOST {
            authority = value;
        } else {
            headers.append(name.clone(), value);
        }
    }
    let scheme = if f.pass.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let authority = authority.to_str().unwrap_or("localhost");
    let uri = format!("{scheme}://{authority}{target}")
        .parse::<http::Uri>()
        .or_else(|_| format!("{scheme}://localhost{target}").parse())
        .unwrap_or_default();
    let body: crate::upstream_h2::H2Body = if let Some(body) = f.body.take() {
        body.boxed_unsync()
    } else if let Some(bytes) = &f.buffered {
        http_body_util::Full::new(bytes.clone())
            .map_err(|never| match never {})
            .boxed_unsync()
    } else {
        http_body_util::Empty::new()
            .map_err(|never| match never {})
            .boxed_unsync()
    };
    if let Some(bytes) = f.buffered.as_ref().filter(|_| f.pass.headers.sets_body()) {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    }
    let mut request = http::Request::new(body);
    *request.method_mut() = f.pass.headers.method(ctx).into_owned();
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_2;
    *request.headers_mut() = headers;
    request
}

/// An HTTP/2 upstream's response for the client: hop-by-hop headers out, `proxy_redirect`,
/// the body's frames (trailers included) passed as they come.
fn client_response_h2(
    response: Response<hyper::body::Incoming>,
    lease: PeerLease,
    f: &Forwarding<'_>,
) -> Response<ResponseBody> {
    let (parts, incoming) = response.into_parts();
    let mut headers = parts.headers;
    strip_hop_by_hop(&mut headers);
    let passed = f.pass.headers.apply(&mut headers, f.ctx);
    let mut body = ResponseBody::new(ResponseKind::UpstreamH2(
        crate::upstream_h2::H2ResponseBody::new(incoming, f.loc.cfg.proxy_read_timeout),
    ));
    body.finish.lease = Some(lease);
    let mut out = Response::new(body);
    *out.status_mut() = parts.status;
    *out.headers_mut() = headers;
    mark_passed(&mut out, passed);
    out
}

/// Records that the upstream's Server or Date goes to the client (`proxy_pass_header`).
fn mark_passed(
    response: &mut Response<ResponseBody>,
    passed: (
        Option<crate::upstream_headers::UpstreamServerPassed>,
        Option<crate::upstream_headers::UpstreamDatePassed>,
    ),
) {
    if let Some(server) = passed.0 {
        response.extensions_mut().insert(server);
    }
    if let Some(date) = passed.1 {
        response.extensions_mut().insert(date);
    }
}

async fn attempt_h1(
    f: &mut Forwarding<'_>,
    peer: PeerId,
) -> Result<(ResponseHead, UpstreamConn, Option<Duration>), AttemptError> {
    let upstream = &f.pass.upstream;
    let cfg = &f.loc.cfg;
    let pool = upstream
        .pools
        .get(peer.index())
        .cloned()
        .unwrap_or_default();
    // A streamed body cannot be replayed on a fresh connection: check the pooled one first.
    let probe = f.body.is_some();
    let tls = f.pass.tls.as_deref();
    // An upstream group used by both http:// and https:// locations pools both kinds: a pooled
    // connection of the other kind is closed, not used.
    let pooled = pool
        .checkout(Instant::now(), &upstream.limits, probe)
        .filter(|c| c.stream.suits(tls));
    let (mut conn, mut connect_time) = match pooled {
        Some(conn) => (conn, None),
        None => {
            let (conn, took) =
                Box::pin(connect(upstream, peer, cfg.proxy_connect_timeout, tls)).await?;
            (conn, Some(took))
        }
    };
    let (head, chunked) = build_request_head(f);
    // nginx reads no body after a HEAD it sent (`proxy_method HEAD` too).
    let head_request = *f.pass.headers.method(f.ctx) == Method::HEAD;
    loop {
        conn.requests += 1;
        if let Err(failure) = send_request(&mut conn, &head, f, chunked).await {
            if conn.reused && !failure.started {
                let (fresh, took) =
                    Box::pin(connect(upstream, peer, cfg.proxy_connect_timeout, tls)).await?;
                (conn, connect_time) = (fresh, Some(took));
                continue;
            }
            tracing::debug!(error = %failure.error, "sending the request upstream failed");
            let kind = if failure.error.kind() == std::io::ErrorKind::TimedOut {
                FailKind::Timeout
            } else {
                FailKind::Error
            };
            return Err(AttemptError {
                kind,
                sent: failure.started,
                connect_time,
            });
        }
        let reading = conn.read_head(head_request);
        let outcome = if cfg.proxy_read_timeout.is_zero() {
            Ok(reading.await)
        } else {
            tokio::time::timeout(cfg.proxy_read_timeout, reading).await
        };
        let error = match outcome {
            Ok(Ok(head)) => return Ok((head, conn, connect_time)),
            Err(_) => {
                return Err(AttemptError {
                    kind: FailKind::Timeout,
                    sent: true,
                    connect_time,
                })
            }
            Ok(Err(error)) => error,
        };
        let replayable = !f.ctx.has_body || f.buffered.is_some();
        if conn.reused && replayable && matches!(error, ResponseError::ClosedBeforeAnswer) {
            // The pooled connection was closed by the upstream as we reused it.
            let (fresh, took) =
                Box::pin(connect(upstream, peer, cfg.proxy_connect_timeout, tls)).await?;
            (conn, connect_time) = (fresh, Some(took));
            continue;
        }
        let kind = match &error {
            ResponseError::Invalid(_) => FailKind::InvalidHeader,
            ResponseError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => FailKind::Timeout,
            _ => FailKind::Error,
        };
        tracing::debug!(%error, "upstream request failed");
        return Err(AttemptError {
            kind,
            sent: true,
            connect_time,
        });
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

/// The upstream request head for one attempt, and whether a streamed body goes chunked.
fn build_request_head(f: &Forwarding<'_>) -> (Vec<u8>, bool) {
    let ctx = f.ctx;
    let client = &ctx.parts.headers;
    let target = upstream_target(ctx, f.pass, f.prefix_len);
    let mut out = Vec::with_capacity(256 + target.len());
    out.extend_from_slice(f.pass.headers.method(ctx).as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let has_connection_header = client.contains_key(header::CONNECTION);
    let case = ctx.parts.extensions.get::<crate::header_case::HeaderCase>();
    let mut has_length = false;
    let pass_headers = f.loc.cfg.proxy_pass_request_headers;
    let pass_body = f.loc.cfg.proxy_pass_request_body && !f.pass.headers.sets_body();
    for (name, value) in client.iter().filter(|_| pass_headers) {
        if !pass_body && name == header::CONTENT_LENGTH {
            continue;
        }
        if is_hop_by_hop(name)
            || f.loc.override_names.contains(name)
            || (has_connection_header && listed_in_connection(client, name))
        {
            continue;
        }
        has_length |= name == header::CONTENT_LENGTH;
        crate::header_case::put_header(&mut out, case, name, value.as_bytes());
    }
    let mut scratch = String::new();
    for (name, spelled, source) in &f.loc.set_headers {
        let value: &[u8] = match source {
            HeaderSource::Constant(value) => value.as_bytes(),
            HeaderSource::ProxyHost => f.pass.proxy_host.as_bytes(),
            HeaderSource::Template(template) => {
                scratch.clear();
                template.render_into(ctx, &mut scratch);
                scratch.as_bytes()
            }
        };
        // Like nginx, an empty value leaves the header out; CR/LF never reach the wire.
        if !value.is_empty() && !value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            has_length |= name == header::CONTENT_LENGTH;
            put_header(&mut out, spelled, value);
        }
    }
    // WebSocket is tunnelled without `proxy_set_header Upgrade/Connection` lines (halo's
    // convenience); any other protocol (h2c above all: a tunnel past every later request's
    // routing and access rules) passes only where the configuration sets the headers, as in
    // nginx, and a location that sets them gets exactly what it sets.
    if f.client_upgrade.is_some() && !f.loc.override_names.contains(&header::UPGRADE) {
        if let Some(upgrade) = client
            .get(header::UPGRADE)
            .filter(|u| u.as_bytes().eq_ignore_ascii_case(b"websocket"))
        {
            put_header(&mut out, b"Upgrade", upgrade.as_bytes());
            put_header(&mut out, b"Connection", b"upgrade");
        }
    }
    let mut chunked = false;
    if !has_length {
        if f.body.is_some() {
            put_header(&mut out, b"Transfer-Encoding", b"chunked");
            chunked = true;
        } else if let Some(bytes) = &f.buffered {
            put_header(
                &mut out,
                b"Content-Length",
                bytes.len().to_string().as_bytes(),
            );
        } else if pass_body
            && matches!(ctx.parts.method, Method::POST | Method::PUT | Method::PATCH)
        {
            put_header(&mut out, b"Content-Length", b"0");
        }
    }
    out.extend_from_slice(b"\r\n");
    (out, chunked)
}

/// nginx: without a URI in proxy_pass the request URI goes as the client sent it; with one,
/// the part of the normalised URI matching the location prefix is replaced by it.
fn upstream_target<'a>(
    ctx: &'a RequestCtx<'_>,
    pass: &ProxyPassRt,
    prefix_len: usize,
) -> std::borrow::Cow<'a, str> {
    // nginx: a URL with variables that has a path sends that path, nothing appended.
    if let Some(uri) = pass.uri.as_ref().filter(|_| pass.verbatim) {
        return std::borrow::Cow::Owned(uri.clone());
    }
    let original = ctx.parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let rewritten = ctx.rw.filter(|rw| rw.uri.is_some() || rw.args.is_some());
    let with_args = |mut target: String| {
        if let Some(query) = ctx
            .rw
            .and_then(|rw| rw.args.as_deref())
            .or(ctx.parts.uri.query())
        {
            if !query.is_empty() {
                target.push('?');
                target.push_str(query);
            }
        }
        std::borrow::Cow::Owned(target)
    };
    // nginx: without a URI part, the request URI goes as the client sent it, or normalised
    // once a rewrite changed it; a rewrite in this very location (break) makes the changed
    // URI go whole, whatever the URI part says.
    let Some(replacement) = pass
        .uri
        .as_ref()
        .filter(|_| !rewritten.is_some_and(|rw| rw.changed_in_location))
    else {
        return match rewritten {
            Some(_) => with_args(crate::uri::encode_path(ctx.uri).into_owned()),
            None => std::borrow::Cow::Borrowed(original),
        };
    };
    let rest = ctx.uri.get(prefix_len..).unwrap_or("");
    let mut target = String::with_capacity(replacement.len() + rest.len() + 16);
    target.push_str(replacement);
    target.push_str(&crate::uri::encode_path(rest));
    with_args(target)
}

/// Removes an upstream response's hop-by-hop headers (and those its Connection lists),
/// keeping the order of the others: clients and tests read headers in the upstream's order,
/// and `HeaderMap::remove` would move the last header into the removed one's place.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    const HOP: [HeaderName; 5] = [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::TRAILER,
        HeaderName::from_static("keep-alive"),
    ];
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    let drop = |name: &HeaderName| {
        HOP.contains(name) || name.as_str() == "proxy-connection" || listed.contains(name)
    };
    if !headers.keys().any(drop) {
        return;
    }
    let old = std::mem::take(headers);
    headers.reserve(old.len());
    let mut current: Option<HeaderName> = None;
    for (name, value) in old {
        if let Some(name) = name {
            current = Some(name);
        }
        if let Some(name) = current.as_ref().filter(|n| !drop(n)) {
            headers.append(name.clone(), value);
        }
    }
}

/// Turns the upstream response into the client response (hop-by-hop removed, proxy_redirect).
fn client_response(
    head: ResponseHead,
    conn: UpstreamConn,
    lease: PeerLease,
    f: &Forwarding<'_>,
) -> Response<ResponseBody> {
    let ResponseHead {
        status,
        mut headers,
        framing,
        keep_alive,
        case,
    } = head;
    strip_hop_by_hop(&mut headers);
    let passed = f.pass.headers.apply(&mut headers, f.ctx);
    let upstream = &f.pass.upstream;
    let pool = upstream
        .pools
        .get(lease.peer.index())
        .map(|pool| (pool.clone(), upstream.limits));
    let body = UpstreamBody::new(
        conn,
        framing,
        keep_alive,
        f.loc.cfg.proxy_read_timeout,
        pool,
    );
    let mut body = ResponseBody::new(ResponseKind::Upstream(body));
    body.finish.lease = Some(lease);
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.version_mut() = Version::HTTP_11;
    *response.headers_mut() = headers;
    if let Some(case) = case {
        response.extensions_mut().insert(case);
    }
    mark_passed(&mut response, passed);
    response
}

/// A 101 answer: both sides are upgraded and bytes are copied both ways until either closes.
fn tunnel(
    head: ResponseHead,
    conn: UpstreamConn,
    client_upgrade: Option<OnUpgrade>,
    lease: PeerLease,
) -> Response<ResponseBody> {
    if let Some(client_upgrade) = client_upgrade {
        tokio::spawn(async move {
            let _lease = lease;
            let UpstreamConn {
                stream: mut upstream,
                buf: early,
                ..
            } = conn;
            match client_upgrade.await {
                Ok(client) => {
                    let mut client = TokioIo::new(client);
                    // Bytes the upstream sent right behind its 101 belong to the tunnel.
                    let copied = async {
                        if !early.is_empty() {
                            tokio::io::AsyncWriteExt::write_all(&mut client, &early).await?;
                        }
                        tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                    };
                    if let Err(error) = copied.await {
                        tracing::debug!(%error, "upgraded connection ended");
                    }
                }
                Err(error) => tracing::debug!(%error, "upgrade failed"),
            }
        });
    }
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = head.status;
    *response.headers_mut() = head.headers;
    if let Some(case) = head.case {
        response.extensions_mut().insert(case);
    }
    response
}
