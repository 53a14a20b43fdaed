//! How a location treats the upstream's response headers and what it sends upstream beyond
//! `proxy_set_header`: nginx's `proxy_hide_header`, `proxy_pass_header`,
//! `proxy_ignore_headers`, `proxy_method`, `proxy_set_body`, `proxy_cookie_domain` and
//! `proxy_cookie_path`.

use serde::{Deserialize, Serialize};

/// The headers nginx's proxy module hides from the client unless `proxy_pass_header` names
/// them (`ngx_http_proxy_hide_headers`). Server and Date are replaced by halo's own.
pub const DEFAULT_HIDDEN: [&str; 8] = [
    "Date",
    "Server",
    "X-Pad",
    "X-Accel-Expires",
    "X-Accel-Redirect",
    "X-Accel-Limit-Rate",
    "X-Accel-Buffering",
    "X-Accel-Charset",
];

/// One location's settings; the default is nginx's (only [`DEFAULT_HIDDEN`] hidden).
///
/// TOML: `[locations.proxy_headers]` with `hide_header = ["X-Powered-By"]`,
/// `pass_header = ["Server"]`, `method = "POST"`, `set_body = "id=$arg_id"`,
/// `cookie_domain = [{ from = "backend.local", to = "example.com" }]`, ...
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyHeaders {
    /// More upstream response headers not passed to the client (`proxy_hide_header`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hide_header: Vec<String>,
    /// Headers of [`DEFAULT_HIDDEN`] passed after all (`proxy_pass_header`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pass_header: Vec<String>,
    /// `proxy_ignore_headers`: accepted; halo never acts on these headers (no cache, no
    /// X-Accel processing), so the list changes nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignore_headers: Vec<IgnoreHeader>,
    /// The method sent upstream instead of the client's (`proxy_method`, variables allowed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The body sent upstream instead of the client's (`proxy_set_body`, variables allowed),
    /// with its own Content-Length.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_body: Option<String>,
    /// `proxy_cookie_domain` rules, the first that matches rewrites a Set-Cookie `Domain`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cookie_domain: Vec<CookieRewrite>,
    /// `proxy_cookie_path` rules, the first that matches rewrites a Set-Cookie `Path`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cookie_path: Vec<CookieRewrite>,
}

impl ProxyHeaders {
    /// Whether nothing differs from nginx's defaults (skipped when serialised).
    pub fn is_default(&self) -> bool {
        *self == ProxyHeaders::default()
    }
}

/// `proxy_cookie_domain FROM TO` / `proxy_cookie_path FROM TO`. `from` starting with `~`
/// (or `~*`, case-insensitive) is a regex and `to` may then use its captures; variables are
/// allowed in both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookieRewrite {
    /// What the attribute's value must be (domain: equal, ignoring case and a leading dot;
    /// path: a prefix), or `~regex`.
    pub from: String,
    /// The replacement.
    pub to: String,
}

/// A `proxy_ignore_headers` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IgnoreHeader {
    /// nginx: an internal redirect to the header's URI. halo never redirects on it.
    #[serde(rename = "X-Accel-Redirect")]
    XAccelRedirect,
    /// nginx: the cache time of the response. halo has no cache.
    #[serde(rename = "X-Accel-Expires")]
    XAccelExpires,
    /// nginx: the response's send rate. halo never limits it from this header.
    #[serde(rename = "X-Accel-Limit-Rate")]
    XAccelLimitRate,
    /// nginx: buffering of the response on or off. halo always streams.
    #[serde(rename = "X-Accel-Buffering")]
    XAccelBuffering,
    /// nginx: the charset of the response for the charset filter. halo has no such filter.
    #[serde(rename = "X-Accel-Charset")]
    XAccelCharset,
    /// nginx: cache time. halo has no cache.
    Expires,
    /// nginx: cache time and whether to cache. halo has no cache.
    #[serde(rename = "Cache-Control")]
    CacheControl,
    /// nginx: responses with cookies are not cached. halo has no cache.
    #[serde(rename = "Set-Cookie")]
    SetCookie,
    /// nginx: responses with `Vary: *` are not cached. halo has no cache.
    Vary,
}

impl IgnoreHeader {
    /// The name as nginx spells it, case-insensitively.
    pub fn parse(name: &str) -> Option<IgnoreHeader> {
        const ALL: [(&str, IgnoreHeader); 9] = [
            ("X-Accel-Redirect", IgnoreHeader::XAccelRedirect),
            ("X-Accel-Expires", IgnoreHeader::XAccelExpires),
            ("X-Accel-Limit-Rate", IgnoreHeader::XAccelLimitRate),
            ("X-Accel-Buffering", IgnoreHeader::XAccelBuffering),
            ("X-Accel-Charset", IgnoreHeader::XAccelCharset),
            ("Expires", IgnoreHeader::Expires),
            ("Cache-Control", IgnoreHeader::CacheControl),
            ("Set-Cookie", IgnoreHeader::SetCookie),
            ("Vary", IgnoreHeader::Vary),
        ];
        ALL.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, h)| *h)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ignore_header_names_are_case_insensitive_as_nginx_reads_them() {
        assert_eq!(
            IgnoreHeader::parse("x-accel-redirect"),
            Some(IgnoreHeader::XAccelRedirect)
        );
        assert_eq!(IgnoreHeader::parse("Vary"), Some(IgnoreHeader::Vary));
        assert_eq!(IgnoreHeader::parse("X-Foo"), None);
    }

    #[test]
    fn default_is_skipped_and_round_trips() {
        let p = ProxyHeaders {
            hide_header: vec!["X-Powered-By".into()],
            cookie_domain: vec![CookieRewrite {
                from: "~^(.+)\\.local$".into(),
                to: "$1.example.com".into(),
            }],
            ..ProxyHeaders::default()
        };
        let text = toml::to_string(&p).unwrap();
        let back: ProxyHeaders = toml::from_str(&text).unwrap();
        assert_eq!(back, p);
        assert!(ProxyHeaders::default().is_default());
    }
}
