//! The per-request variables nginx's core module computes from the request itself:
//! `$cookie_NAME`, `$request_id`, `$msec`, `$request_time`, `$nginx_version`, `$hostname`,
//! `$content_length`, `$content_type`, and how `$http_NAME` reads repeated header lines
//! (`ngx_http_variables.c` of nginx 1.22).

use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::handler::RequestCtx;
use crate::variables::{push_display, Var, VarSource};

/// What stays the same for the whole of one request, internal redirects included: when it
/// started and its `$request_id` (made when first used).
#[derive(Debug)]
pub(crate) struct RequestStamp {
    pub started: Instant,
    id: OnceLock<[u8; 16]>,
}

impl RequestStamp {
    pub fn new(started: Instant) -> Arc<RequestStamp> {
        Arc::new(RequestStamp {
            started,
            id: OnceLock::new(),
        })
    }

    /// `$request_id`: 16 random bytes as 32 lower-case hex digits.
    pub fn write_id(&self, out: &mut String) {
        let id = self.id.get_or_init(rand::random::<[u8; 16]>);
        for byte in id {
            push_display(out, format_args!("{byte:02x}"));
        }
    }

    /// `$request_time`: seconds since the request started, with milliseconds.
    pub fn write_request_time(&self, out: &mut String) {
        let elapsed = self.started.elapsed();
        push_display(
            out,
            format_args!("{}.{:03}", elapsed.as_secs(), elapsed.subsec_millis()),
        );
    }
}

/// `$msec`: the current time in seconds with milliseconds.
pub(crate) fn write_msec(out: &mut String) {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    push_display(
        out,
        format_args!("{}.{:03}", now.as_secs(), now.subsec_millis()),
    );
}

/// `$nginx_version`: halo answers with its own version (as its `Server` header does), so a
/// configuration can tell which program serves it.
pub(crate) const NGINX_VERSION: &str = env!("CARGO_PKG_VERSION");

/// `$hostname`: the host name, lower case (nginx lowers it when it starts).
pub(crate) fn hostname() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|n| n.trim().to_ascii_lowercase())
            .unwrap_or_default()
    })
}

/// `$http_NAME` as nginx 1.22 reads it: every `Cookie` line joined with "; ", every
/// `X-Forwarded-For` line with ", ", any other header its first line. `false` when absent.
pub(crate) fn write_header<'v>(
    name: &HeaderName,
    mut values: impl Iterator<Item = &'v HeaderValue>,
    out: &mut String,
) -> bool {
    let separator = if *name == http::header::COOKIE {
        "; "
    } else if name.as_str() == "x-forwarded-for" {
        ", "
    } else {
        let Some(first) = values.next() else {
            return false;
        };
        out.push_str(&String::from_utf8_lossy(first.as_bytes()));
        return true;
    };
    let mut found = false;
    for value in values {
        if found {
            out.push_str(separator);
        }
        out.push_str(&String::from_utf8_lossy(value.as_bytes()));
        found = true;
    }
    found
}

/// `$cookie_NAME`: the value of the first cookie called `name` (ASCII case-insensitive) in the
/// `Cookie` lines, as nginx 1.22's `ngx_http_parse_multi_header_lines` finds it: pairs end at
/// `;` or `,`, spaces around `=` and before a name are skipped, the value runs to the next `;`.
pub(crate) fn cookie<'h>(
    lines: impl Iterator<Item = &'h HeaderValue>,
    name: &str,
) -> Option<&'h [u8]> {
    let name = name.as_bytes();
    for line in lines {
        let value = line.as_bytes();
        if name.len() > value.len() {
            continue;
        }
        let mut start = 0;
        let end = value.len();
        while start < end {
            let matched = value
                .get(start..start + name.len())
                .is_some_and(|n| n.eq_ignore_ascii_case(name));
            if matched {
                let mut p = start + name.len();
                while p < end && value[p] == b' ' {
                    p += 1;
                }
                if p < end && value[p] == b'=' {
                    p += 1;
                    while p < end && value[p] == b' ' {
                        p += 1;
                    }
                    let last = value[p..]
                        .iter()
                        .position(|b| *b == b';')
                        .map_or(end, |i| p + i);
                    return Some(&value[p..last]);
                }
                start = p;
            }
            // Skip to the next pair.
            while start < end {
                let ch = value[start];
                start += 1;
                if ch == b';' || ch == b',' {
                    break;
                }
            }
            while start < end && value[start] == b' ' {
                start += 1;
            }
        }
    }
    None
}

/// The first line of header `name`, if any.
pub(crate) fn write_first(headers: &HeaderMap, name: &HeaderName, out: &mut String) {
    if let Some(value) = headers.get(name) {
        out.push_str(&String::from_utf8_lossy(value.as_bytes()));
    }
}

/// The variables of this module for a request being served.
pub(crate) fn write_request_var(ctx: &RequestCtx<'_>, var: &Var, out: &mut String) {
    let headers = &ctx.parts.headers;
    match var {
        Var::Cookie(name) => {
            if let Some(value) = cookie(headers.get_all(http::header::COOKIE).iter(), name) {
                out.push_str(&String::from_utf8_lossy(value));
            }
        }
        Var::RequestId => ctx.stamp.write_id(out),
        Var::RequestTime => ctx.stamp.write_request_time(out),
        Var::Msec => write_msec(out),
        Var::NginxVersion => out.push_str(NGINX_VERSION),
        Var::Hostname => out.push_str(hostname()),
        Var::ContentLength => write_first(headers, &http::header::CONTENT_LENGTH, out),
        Var::ContentType => write_first(headers, &http::header::CONTENT_TYPE, out),
        _ => {}
    }
}

/// A request's variables while its response is being made: `add_header` reads
/// `$sent_http_NAME` (the response's headers so far) and `$upstream_http_NAME` (the proxied
/// response's).
pub(crate) struct ResponseVars<'a> {
    pub ctx: &'a RequestCtx<'a>,
    pub headers: &'a HeaderMap,
    /// The response came from an upstream.
    pub from_upstream: bool,
    /// The body's length when known (`$sent_http_content_length` of a response whose
    /// Content-Length is written when it is sent).
    pub length: Option<u64>,
}

impl VarSource for ResponseVars<'_> {
    fn write_var(&self, var: &Var, out: &mut String) {
        match var {
            Var::SentHttpHeader(name) if *name == http::header::CONTENT_LENGTH => {
                match self.headers.get(name) {
                    Some(_) => write_first(self.headers, name, out),
                    None => {
                        if let Some(length) = self.length {
                            push_display(out, length);
                        }
                    }
                }
            }
            // nginx's header filter writes Server and Date after add_header ran.
            Var::SentHttpHeader(name)
                if *name != http::header::SERVER && *name != http::header::DATE =>
            {
                write_first(self.headers, name, out)
            }
            Var::SentHttpHeader(_) => {}
            Var::UpstreamHttp(name) => {
                if self.from_upstream {
                    write_first(self.headers, name, out)
                }
            }
            _ => self.ctx.write_var(var, out),
        }
    }
}

/// The `root`s of `cfg` that hold variables (`root /sites/$domain;`), compiled: a request's
/// root is the rendered text ([`root_for`]).
pub(crate) fn root_templates(
    cfg: &halo_config::http::HttpConfig,
    user: &[String],
    errors: &mut Vec<String>,
) -> std::collections::HashMap<std::path::PathBuf, crate::variables::Template> {
    let mut out = std::collections::HashMap::new();
    let location_roots = cfg.servers.iter().flat_map(|s| {
        s.locations.iter().filter_map(|l| match &l.action {
            halo_config::http::LocationAction::Static {
                root: Some(root), ..
            } => Some(root),
            _ => None,
        })
    });
    let roots = cfg.servers.iter().map(|s| &s.root).chain(location_roots);
    for root in roots.filter(|r| r.contains('$')) {
        match crate::variables::Template::parse_with(root, user) {
            Ok(template) => {
                out.insert(std::path::PathBuf::from(root), template);
            }
            Err(e) => errors.push(format!("root: {e}")),
        }
    }
    out
}

/// The root a request uses: `root` itself, or its variables rendered.
pub(crate) fn root_for<'p>(
    templates: &std::collections::HashMap<std::path::PathBuf, crate::variables::Template>,
    ctx: &RequestCtx<'_>,
    root: &'p std::path::Path,
) -> std::borrow::Cow<'p, std::path::Path> {
    match templates.get(root) {
        Some(template) => std::borrow::Cow::Owned(template.render(ctx).into()),
        None => std::borrow::Cow::Borrowed(root),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in lines {
            map.append(http::header::COOKIE, HeaderValue::from_str(line).unwrap());
        }
        map
    }

    fn get<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
        cookie(h.get_all(http::header::COOKIE).iter(), name)
            .map(|v| std::str::from_utf8(v).unwrap())
    }

    /// ngx_http_parse_multi_header_lines (nginx 1.22): first match over all lines, names
    /// case-insensitive, `,` separates too, a prefix of a longer name is no match.
    #[test]
    fn cookies_are_found_as_nginx_finds_them() {
        let h = headers(&["a=1; bb=2;c = 3 ", "d=4, e=5", "A=9"]);
        assert_eq!(get(&h, "a"), Some("1"));
        assert_eq!(get(&h, "b"), None);
        assert_eq!(get(&h, "bb"), Some("2"));
        assert_eq!(get(&h, "c"), Some("3 "));
        assert_eq!(get(&h, "d"), Some("4, e=5"));
        assert_eq!(get(&h, "e"), Some("5"));
        assert_eq!(get(&h, "BB"), Some("2"));
        assert_eq!(get(&h, "zz"), None);
        let h = headers(&["x=", "y"]);
        assert_eq!(get(&h, "x"), Some(""));
        assert_eq!(get(&h, "y"), None);
    }

    #[test]
    fn request_ids_are_32_hex_digits_and_stable() {
        let stamp = RequestStamp::new(Instant::now());
        let (mut a, mut b) = (String::new(), String::new());
        stamp.write_id(&mut a);
        stamp.write_id(&mut b);
        assert_eq!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        let mut other = String::new();
        RequestStamp::new(Instant::now()).write_id(&mut other);
        assert_ne!(a, other);
    }
}
