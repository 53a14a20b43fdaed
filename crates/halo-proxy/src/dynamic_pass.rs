//! `proxy_pass` with variables (nginx `ngx_http_proxy_eval` + `ngx_http_upstream_init_request`):
//! the URL is evaluated per request; its host (with its port) names an `upstream {}` block or
//! an upstream made by another `proxy_pass`, else an IP address is used as it is, else the name
//! is resolved through the location's `resolver` (none: 502, "no resolver defined to resolve").
//! The URI sent is the URL's path verbatim when it has one, else the client's request URI.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use halo_config::http::{BalanceMethod, Location, ServerConfig, UpstreamConfig, UpstreamTls};
use http::{HeaderValue, StatusCode};

use crate::handler::RequestCtx;
use crate::pool::Pools;
use crate::resolver::DnsResolver;
use crate::runtime::{build_upstream, ProxyPassRt, Runtime, UpstreamRt};
use crate::variables::Template;

/// At most this many (URL host, addresses) upstreams are kept per location; then the table
/// starts over (a new one only loses its round-robin position and idle connections' reuse).
const MADE_UPSTREAMS_MAX: usize = 256;

/// The part of a location's `proxy_pass` that is only known per request.
pub(crate) struct DynamicPassRt {
    url: Template,
    resolver: Option<DnsResolver>,
    proxy_ssl: UpstreamTls,
    h2: bool,
    headers: Arc<crate::upstream_headers::UpstreamHeadersRt>,
    pools: Arc<Pools>,
    /// Upstreams made for evaluated URLs, by (https, host:port, addresses): their balancer
    /// state and TLS settings carry over from request to request.
    made: Mutex<HashMap<MadeKey, Made>>,
}

type MadeKey = (bool, String, Vec<SocketAddr>);
type Made = (
    Arc<UpstreamRt>,
    Option<Arc<crate::upstream_tls::UpstreamTlsRt>>,
);

impl std::fmt::Debug for DynamicPassRt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicPassRt")
            .field("url", &self.url)
            .field("resolver", &self.resolver)
            .finish_non_exhaustive()
    }
}

/// An evaluated `proxy_pass` URL, split as nginx's `ngx_parse_url` does.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct PassUrl<'a> {
    pub secure: bool,
    /// `host[:port]` as written (`$proxy_host`, the `Host` header).
    pub authority: &'a str,
    /// The host without port and brackets.
    pub host: &'a str,
    /// The port written, if any.
    pub port: Option<u16>,
    /// The URI part: from the first `/` or `?` (a leading `?` gets a `/` in front when sent).
    pub uri: Option<&'a str>,
}

impl PassUrl<'_> {
    fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(if self.secure { 443 } else { 80 })
    }
}

/// Splits an evaluated URL; `Err` is nginx's complaint (the request then gets 500).
pub(crate) fn parse_url(url: &str) -> Result<PassUrl<'_>, String> {
    let prefix = |p: &str| {
        url.get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p))
    };
    let (secure, rest) = if prefix("http://") {
        (false, &url[7..])
    } else if prefix("https://") {
        (true, &url[8..])
    } else {
        return Err(format!("invalid URL prefix in \"{url}\""));
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, uri) = rest.split_at(end);
    let uri = (!uri.is_empty()).then_some(uri);
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let close = v6
            .find(']')
            .ok_or_else(|| format!("invalid host in upstream \"{rest}\""))?;
        let after = &v6[close + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(format!("invalid host in upstream \"{rest}\"")),
        };
        (&v6[..close], port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => return Err(format!("invalid port in upstream \"{rest}\"")),
        },
    };
    if host.is_empty() {
        return Err(format!("no host in upstream \"{rest}\""));
    }
    Ok(PassUrl {
        secure,
        authority,
        host,
        port,
        uri,
    })
}

impl DynamicPassRt {
    pub fn build(
        pass: &str,
        loc: &Location,
        user_vars: &[String],
        pools: &Arc<Pools>,
        headers: crate::upstream_headers::UpstreamHeadersRt,
    ) -> Result<DynamicPassRt, String> {
        Ok(DynamicPassRt {
            url: Template::parse_with(pass, user_vars)?,
            resolver: loc.resolver.as_ref().map(DnsResolver::new),
            proxy_ssl: loc.proxy_ssl.clone(),
            h2: loc.upstream_http2 || loc.grpc,
            headers: Arc::new(headers),
            pools: pools.clone(),
            made: Mutex::new(HashMap::new()),
        })
    }

    /// The `proxy_pass` of this request, or the status nginx answers with.
    pub async fn evaluate(
        &self,
        ctx: &RequestCtx<'_>,
        rt: &Runtime,
    ) -> Result<ProxyPassRt, StatusCode> {
        let text = self.url.render(ctx);
        let url = parse_url(&text).map_err(|why| {
            tracing::error!("{why}");
            StatusCode::INTERNAL_SERVER_ERROR
        })?;
        let proxy_host = HeaderValue::from_str(url.authority).map_err(|_| {
            tracing::error!("invalid host in upstream \"{}\"", url.authority);
            StatusCode::INTERNAL_SERVER_ERROR
        })?;
        // nginx: a leading `?` gets a `/` in front.
        let uri = url.uri.map(|u| {
            if u.starts_with('?') {
                format!("/{u}")
            } else {
                u.to_owned()
            }
        });
        let (upstream, tls) = match find_upstream(rt, &url) {
            Some(up) => self.made(&url, Vec::new(), || Ok(up))?,
            None => {
                let addrs = self.addresses(&url).await?;
                let name = format!("{}:{}", url.host, url.port_or_default());
                let pools = self.pools.clone();
                let for_build = addrs.clone();
                self.made(&url, addrs, move || {
                    made_upstream(&name, &for_build, &pools)
                })?
            }
        };
        Ok(ProxyPassRt {
            upstream,
            uri,
            proxy_host,
            headers: self.headers.clone(),
            tls,
            h2: self.h2,
            dynamic: None,
            verbatim: true,
        })
    }

    /// The addresses of the URL's host: an IP address itself, else the resolver's answer.
    async fn addresses(&self, url: &PassUrl<'_>) -> Result<Vec<SocketAddr>, StatusCode> {
        let port = url.port_or_default();
        if let Ok(ip) = url.host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let Some(resolver) = &self.resolver else {
            tracing::error!("no resolver defined to resolve {}", url.host);
            return Err(StatusCode::BAD_GATEWAY);
        };
        match resolver.lookup(url.host).await {
            Ok(ips) => Ok(ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect()),
            Err(e) => {
                tracing::error!("{} could not be resolved ({e})", url.host);
                Err(StatusCode::BAD_GATEWAY)
            }
        }
    }

    /// The upstream (and TLS settings) kept for this URL and these addresses, made once.
    fn made(
        &self,
        url: &PassUrl<'_>,
        addrs: Vec<SocketAddr>,
        make: impl FnOnce() -> Result<Arc<UpstreamRt>, String>,
    ) -> Result<Made, StatusCode> {
        let key = (url.secure, url.authority.to_ascii_lowercase(), addrs);
        let mut made = self
            .made
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = made.get(&key) {
            return Ok(entry.clone());
        }
        let failed = |why: String| {
            tracing::error!("proxy_pass to \"{}\": {why}", url.authority);
            StatusCode::INTERNAL_SERVER_ERROR
        };
        let upstream = make().map_err(failed)?;
        let tls = if url.secure {
            let tls = crate::upstream_tls::UpstreamTlsRt::build(&self.proxy_ssl, url.host, self.h2)
                .map_err(failed)?;
            Some(Arc::new(tls))
        } else {
            None
        };
        if made.len() >= MADE_UPSTREAMS_MAX {
            made.clear();
        }
        made.insert(key, (upstream.clone(), tls.clone()));
        Ok((upstream, tls))
    }
}

/// The location's `ProxyPassRt` for a `proxy_pass` with variables: a placeholder upstream, and the
/// URL template that each request evaluates.
pub(crate) fn placeholder(
    pass: &str,
    loc: &Location,
    user_vars: &[String],
    pools: &Arc<Pools>,
) -> Result<ProxyPassRt, String> {
    use halo_config::http::ProxyRedirect;
    // `proxy_redirect default` compares with the URL as written, which has variables: it
    // never matches, so only explicit rules apply.
    let redirects = match &loc.proxy_redirect {
        ProxyRedirect::Rules(rules) => rules
            .iter()
            .map(|r| crate::rewrite_rule::RewriteRule::new(&r.from, &r.to, user_vars, false))
            .collect::<Result<_, String>>()?,
        ProxyRedirect::Mode(_) => Vec::new(),
    };
    let headers =
        crate::upstream_headers::UpstreamHeadersRt::new(&loc.proxy_headers, redirects, user_vars)?;
    let dynamic = DynamicPassRt::build(pass, loc, user_vars, pools, headers)?;
    // Never picked from: the request's own `ProxyPassRt` replaces this one.
    let none = UpstreamConfig {
        name: pass.to_owned(),
        method: BalanceMethod::RoundRobin,
        servers: vec![ServerConfig {
            address: "127.0.0.1:9".to_owned(),
            weight: 1,
            max_fails: 0,
            fail_timeout: std::time::Duration::ZERO,
            max_conns: 0,
            backup: false,
            down: true,
        }],
        keepalive: 0,
        keepalive_timeout: std::time::Duration::ZERO,
        keepalive_requests: 0,
        keepalive_time: std::time::Duration::ZERO,
        health_check: None,
    };
    Ok(ProxyPassRt {
        upstream: Arc::new(build_upstream(&none, pools)?),
        uri: None,
        proxy_host: HeaderValue::from_static(""),
        headers: Arc::default(),
        tls: None,
        h2: dynamic.h2,
        dynamic: Some(Arc::new(dynamic)),
        verbatim: false,
    })
}

/// nginx matches the URL's host against the upstreams of the configuration: an `upstream {}`
/// block when the URL has no port, an upstream made by a fixed `proxy_pass` by host and port.
fn find_upstream(rt: &Runtime, url: &PassUrl<'_>) -> Option<Arc<UpstreamRt>> {
    let blocks = &rt.cfg.upstreams;
    if url.port.is_some() {
        // Block names have no port; an upstream made by `proxy_pass http://HOST:PORT` does.
        return rt
            .upstreams
            .get(url.authority)
            .filter(|_| !blocks.iter().any(|b| b.name == url.authority))
            .cloned();
    }
    if let Some(block) = blocks
        .iter()
        .find(|b| b.name.eq_ignore_ascii_case(url.authority))
    {
        return rt.upstreams.get(&block.name).cloned();
    }
    // Upstreams of `proxy_pass http://HOST` are kept under HOST, those of https under HOST:443.
    let implicit = (!url.secure)
        .then(|| rt.upstreams.get(url.authority))
        .flatten();
    implicit
        .or_else(|| {
            rt.upstreams
                .get(&format!("{}:{}", url.authority, url.port_or_default()))
        })
        .cloned()
}

/// A round-robin upstream over the addresses of a name, failures not counted (nginx makes
/// these peers per request, so a failure is never remembered).
fn made_upstream(
    name: &str,
    addrs: &[SocketAddr],
    pools: &Pools,
) -> Result<Arc<UpstreamRt>, String> {
    let servers = addrs
        .iter()
        .map(|addr| ServerConfig {
            address: addr.to_string(),
            weight: 1,
            max_fails: 0,
            fail_timeout: std::time::Duration::from_secs(10),
            max_conns: 0,
            backup: false,
            down: false,
        })
        .collect();
    let config = UpstreamConfig {
        name: name.to_owned(),
        method: BalanceMethod::RoundRobin,
        servers,
        keepalive: 32,
        keepalive_timeout: std::time::Duration::from_secs(60),
        keepalive_requests: 1000,
        keepalive_time: std::time::Duration::from_secs(3600),
        health_check: None,
    };
    build_upstream(&config, pools).map(Arc::new)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_as_nginx_parse_url() {
        let u = parse_url("http://app.test:8080/a/b?x=1").unwrap();
        assert_eq!(
            (u.secure, u.authority, u.host, u.port, u.uri),
            (
                false,
                "app.test:8080",
                "app.test",
                Some(8080),
                Some("/a/b?x=1")
            )
        );
        let u = parse_url("HTTPS://backend").unwrap();
        assert_eq!(
            (u.secure, u.host, u.port, u.uri),
            (true, "backend", None, None)
        );
        assert_eq!(u.port_or_default(), 443);
        let u = parse_url("http://h?a=1").unwrap();
        assert_eq!(u.uri, Some("?a=1"));
        let u = parse_url("http://[::1]:81/x").unwrap();
        assert_eq!((u.host, u.port, u.authority), ("::1", Some(81), "[::1]:81"));
    }

    #[test]
    fn bad_urls_are_refused_with_nginx_words() {
        assert!(parse_url("ftp://x")
            .unwrap_err()
            .starts_with("invalid URL prefix"));
        assert!(parse_url("http://").unwrap_err().starts_with("no host"));
        assert!(parse_url("http://h:x/")
            .unwrap_err()
            .starts_with("invalid port"));
        assert!(parse_url("http:///path")
            .unwrap_err()
            .starts_with("no host"));
    }
}
