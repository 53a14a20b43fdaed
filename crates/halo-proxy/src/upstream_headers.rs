//! What a `proxy_pass` location does to the request it sends and to the upstream's response
//! headers beyond hop-by-hop rules: `proxy_hide_header` / `proxy_pass_header` (with nginx's
//! default hidden set), `proxy_method`, `proxy_set_body`, `proxy_redirect`,
//! `proxy_cookie_domain` and `proxy_cookie_path`.

use std::borrow::Cow;

use http::{header, HeaderMap, HeaderName, HeaderValue, Method};

use halo_config::proxy_headers::{ProxyHeaders, DEFAULT_HIDDEN};

use crate::handler::RequestCtx;
use crate::rewrite_rule::{first_match, RewriteRule, TextMatch};
use crate::variables::{push_display, Template};

/// The upstream's `Server` passed to the client (`proxy_pass_header Server`): halo then adds
/// none of its own. A response extension.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UpstreamServerPassed;

/// The upstream's `Date` passed to the client (`proxy_pass_header Date`): halo's HTTP/1
/// writer then writes it where it is and no Date of its own. A response extension.
#[derive(Debug, Clone, Copy)]
pub(crate) struct UpstreamDatePassed;

/// A location's rules, compiled.
#[derive(Debug, Default)]
pub(crate) struct UpstreamHeadersRt {
    /// Response headers removed (Server excluded: halo replaces it in place).
    hide: Vec<HeaderName>,
    pass_server: bool,
    pass_date: bool,
    method: Option<MethodSource>,
    set_body: Option<Template>,
    /// `proxy_redirect` rules, tried in order.
    pub redirects: Vec<RewriteRule>,
    cookie_domain: Vec<RewriteRule>,
    cookie_path: Vec<RewriteRule>,
}

#[derive(Debug)]
enum MethodSource {
    Constant(Method),
    Template(Template),
}

impl UpstreamHeadersRt {
    /// Compiles a location's settings; `redirects` are its `proxy_redirect` rules.
    pub fn new(
        cfg: &ProxyHeaders,
        redirects: Vec<RewriteRule>,
        user: &[String],
    ) -> Result<Self, String> {
        let named = |list: &[String]| -> Result<Vec<HeaderName>, String> {
            list.iter()
                .map(|n| {
                    HeaderName::from_bytes(n.as_bytes())
                        .map_err(|_| format!("invalid header name {n:?}"))
                })
                .collect()
        };
        // ngx_http_upstream_hide_headers_hash: the default set and proxy_hide_header's names,
        // less proxy_pass_header's (a name both hidden and passed is passed).
        let passed = named(&cfg.pass_header)?;
        let mut hide: Vec<HeaderName> = DEFAULT_HIDDEN
            .iter()
            .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
            .collect();
        for name in named(&cfg.hide_header)? {
            if !hide.contains(&name) {
                hide.push(name);
            }
        }
        hide.retain(|n| !passed.contains(n));
        let pass_server = !hide.contains(&header::SERVER);
        let pass_date = !hide.contains(&header::DATE);
        // Hidden, they are replaced by halo's own where the response is written: the plain
        // path never rebuilds the header map for them.
        hide.retain(|n| *n != header::SERVER && *n != header::DATE);
        let method = match &cfg.method {
            None => None,
            Some(text) => {
                let template = Template::parse_with(text, user)?;
                Some(match template.as_constant() {
                    Some(constant) => MethodSource::Constant(
                        Method::from_bytes(constant.as_bytes())
                            .map_err(|_| format!("invalid proxy_method {constant:?}"))?,
                    ),
                    None => MethodSource::Template(template),
                })
            }
        };
        let set_body = cfg
            .set_body
            .as_deref()
            .map(|t| Template::parse_with(t, user))
            .transpose()?;
        let compile = |list: &[halo_config::proxy_headers::CookieRewrite], domain: bool| {
            list.iter()
                .map(|r| RewriteRule::new(&r.from, &r.to, user, domain))
                .collect::<Result<Vec<_>, String>>()
        };
        Ok(UpstreamHeadersRt {
            hide,
            pass_server,
            pass_date,
            method,
            set_body,
            redirects,
            cookie_domain: compile(&cfg.cookie_domain, true)?,
            cookie_path: compile(&cfg.cookie_path, false)?,
        })
    }

    /// The method sent upstream (`proxy_method`, else the client's).
    pub fn method<'a>(&'a self, ctx: &'a RequestCtx<'_>) -> Cow<'a, Method> {
        match &self.method {
            None => Cow::Borrowed(&ctx.parts.method),
            Some(MethodSource::Constant(m)) => Cow::Borrowed(m),
            Some(MethodSource::Template(t)) => Method::from_bytes(t.render(ctx).as_bytes())
                .map_or(Cow::Borrowed(&ctx.parts.method), Cow::Owned),
        }
    }

    /// `proxy_set_body`, rendered: the body sent instead of the client's.
    pub fn body(&self, ctx: &RequestCtx<'_>) -> Option<bytes::Bytes> {
        self.set_body
            .as_ref()
            .map(|t| bytes::Bytes::from(t.render(ctx)))
    }

    /// Whether `proxy_set_body` replaces the client's body (its Content-Length is not passed).
    pub fn sets_body(&self) -> bool {
        self.set_body.is_some()
    }

    /// Applies the rules to an upstream response's headers (after the hop-by-hop ones went),
    /// keeping the order of the others; returns the extensions the response gets.
    pub fn apply(
        &self,
        headers: &mut HeaderMap,
        ctx: &RequestCtx<'_>,
    ) -> (Option<UpstreamServerPassed>, Option<UpstreamDatePassed>) {
        if headers.keys().any(|n| self.hide.contains(n)) {
            let old = std::mem::take(headers);
            headers.reserve(old.len());
            let mut current: Option<HeaderName> = None;
            for (name, value) in old {
                if let Some(name) = name {
                    current = Some(name);
                }
                if let Some(name) = current.as_ref().filter(|n| !self.hide.contains(n)) {
                    headers.append(name.clone(), value);
                }
            }
        }
        // nginx rewrites Location and Refresh whatever the status (ngx_http_upstream_headers_in).
        if !self.redirects.is_empty() {
            self.rewrite_location(headers, ctx);
        }
        if !(self.cookie_domain.is_empty() && self.cookie_path.is_empty())
            && headers.contains_key(header::SET_COOKIE)
        {
            self.rewrite_cookies(headers, ctx);
        }
        let date = headers.get_mut(header::DATE);
        let date_passed = self.pass_date && date.is_some();
        if let Some(date) = date.filter(|_| !self.pass_date) {
            // The client gets halo's Date (replaced in place: no reordering, no rebuild),
            // whichever writer sends the response.
            *date = crate::server_h1::date_now();
        }
        (
            (self.pass_server && headers.contains_key(header::SERVER))
                .then_some(UpstreamServerPassed),
            date_passed.then_some(UpstreamDatePassed),
        )
    }

    fn rewrite_cookies(&self, headers: &mut HeaderMap, ctx: &RequestCtx<'_>) {
        if let header::Entry::Occupied(mut entry) = headers.entry(header::SET_COOKIE) {
            for value in entry.iter_mut() {
                let Ok(text) = value.to_str() else {
                    continue;
                };
                if let Some(new) = crate::cookie_rewrite::rewrite_set_cookie(
                    text,
                    &self.cookie_domain,
                    &self.cookie_path,
                    ctx,
                ) {
                    if let Ok(new) = HeaderValue::from_str(&new) {
                        *value = new;
                    }
                }
            }
        }
    }

    /// `proxy_redirect` (`ngx_http_upstream_rewrite_location` / `_refresh`): the first rule
    /// that matches rewrites `Location`, or `Refresh` from its `url=`. A rewritten Location
    /// starting with `/` is made absolute (`absolute_redirect on`, nginx's header filter).
    fn rewrite_location(&self, headers: &mut HeaderMap, ctx: &RequestCtx<'_>) {
        if let Some(value) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) {
            if let Some(new) = first_match(&self.redirects, value, TextMatch::Prefix, ctx) {
                let mut out = String::new();
                if new.starts_with('/') {
                    out.push_str("http://");
                    out.push_str(ctx.host);
                    let port = ctx.info.local.port();
                    if port != 80 {
                        push_display(&mut out, format_args!(":{port}"));
                    }
                }
                out.push_str(&new);
                if let Ok(v) = HeaderValue::from_str(&out) {
                    headers.insert(header::LOCATION, v);
                }
            }
        }
        let refresh = HeaderName::from_static("refresh");
        if let Some(value) = headers.get(&refresh).and_then(|v| v.to_str().ok()) {
            let lower = value.to_ascii_lowercase();
            if let Some(at) = lower.find("url=").map(|i| i + 4) {
                let (head, url) = value.split_at(at);
                if let Some(new) = first_match(&self.redirects, url, TextMatch::Prefix, ctx) {
                    if let Ok(v) = HeaderValue::from_str(&format!("{head}{new}")) {
                        headers.insert(refresh, v);
                    }
                }
            }
        }
    }
}
