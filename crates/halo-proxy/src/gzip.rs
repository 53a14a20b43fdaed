//! nginx's response filters for compression and expiry, applied once a response is made,
//! whatever made it (static files, proxied responses, `return` texts, error pages):
//!
//! - the headers filter's `expires` (`ngx_http_headers_filter_module`), first;
//! - the gzip filter (`ngx_http_gzip_filter_module`) with the core module's `gzip_ok` checks
//!   (`ngx_http_gzip_ok`: Accept-Encoding, `gzip_http_version`, `gzip_disable`,
//!   `gzip_proxied`), then `gzip_vary`'s header (`ngx_http_header_filter`);
//! - `gzip_static` (`ngx_http_gzip_static_module`), which answers before the static module.
//!
//! A location without any of them has no [`FiltersRt`]: its responses cost one `Option` check.

use std::path::Path;

use halo_config::gzip::{Expires, Gzip, GzipHttpVersion, GzipProxied, GzipStatic};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode, Version};

use crate::body::ResponseBody;
use crate::runtime::Runtime;
use crate::static_files::{self, StaticResult};

/// The compiled filters of one location (or of a server, for requests no location takes).
#[derive(Debug)]
pub(crate) struct FiltersRt {
    gzip: Option<GzipRt>,
    expires: Option<Expires>,
}

#[derive(Debug)]
struct GzipRt {
    enable: bool,
    /// `gzip_types *`.
    any_type: bool,
    /// Lower case, `text/html` included.
    types: Vec<String>,
    min_length: u64,
    level: u32,
    vary: bool,
    proxied: Vec<GzipProxied>,
    http_version: GzipHttpVersion,
    msie6: bool,
    disable: Vec<regex::bytes::Regex>,
    static_files: GzipStatic,
}

/// `gzip_vary`: set on a response whose type, status and length qualify for compression (or
/// by `gzip_static on` when the `.gz` file exists), compressed or not.
#[derive(Debug, Clone, Copy)]
struct VaryMarker;

/// The result of `gzip_ok` for the request, when `gzip_static` already judged it (nginx keeps
/// it in `r->gzip_tested`/`r->gzip_ok`, and the gzip filter does not judge again).
#[derive(Debug, Clone, Copy)]
struct Tested(bool);

impl FiltersRt {
    /// `None` when nothing here changes a response.
    pub fn build(
        gzip: Option<&Gzip>,
        expires: Option<Expires>,
    ) -> Result<Option<std::sync::Arc<FiltersRt>>, String> {
        let expires = expires.filter(|e| *e != Expires::Off);
        let gzip = match gzip.filter(|g| g.is_active()) {
            Some(g) => Some(GzipRt::build(g)?),
            None => None,
        };
        if gzip.is_none() && expires.is_none() {
            return Ok(None);
        }
        Ok(Some(std::sync::Arc::new(FiltersRt { gzip, expires })))
    }
}

impl GzipRt {
    fn build(g: &Gzip) -> Result<GzipRt, String> {
        let mut types: Vec<String> = vec!["text/html".to_owned()];
        let mut any_type = false;
        for t in &g.types {
            if t == "*" {
                any_type = true;
            } else {
                types.push(t.to_ascii_lowercase());
            }
        }
        let mut disable = Vec::new();
        let mut msie6 = false;
        for d in &g.disable {
            if d == "msie6" {
                msie6 = true;
                continue;
            }
            // nginx compiles gzip_disable caseless.
            let regex = regex::bytes::RegexBuilder::new(d)
                .case_insensitive(true)
                .build()
                .map_err(|e| format!("gzip_disable {d:?}: {e}"))?;
            disable.push(regex);
        }
        if !(1..=9).contains(&g.comp_level) {
            return Err(format!("gzip comp_level {} is not 1..=9", g.comp_level));
        }
        Ok(GzipRt {
            enable: g.enable,
            any_type,
            types,
            min_length: g.min_length,
            level: g.comp_level,
            vary: g.vary,
            proxied: g.proxied.clone(),
            http_version: g.http_version,
            msie6,
            disable,
            static_files: g.static_files,
        })
    }
}

/// The filters, on a response made for `parts`: `expires`, then gzip and its Vary.
pub(crate) fn filter(
    f: &FiltersRt,
    parts: &http::request::Parts,
    response: &mut Response<ResponseBody>,
) {
    if let Some(expires) = f.expires {
        crate::expires::apply(expires, response.status(), response.headers_mut());
    }
    let Some(gz) = &f.gzip else {
        return;
    };
    let mut vary = response.extensions().get::<VaryMarker>().is_some();
    if gz.enable && qualifies(gz, response) {
        vary = true;
        let ok = match response.extensions().get::<Tested>() {
            Some(Tested(ok)) => *ok,
            None => gzip_ok(gz, parts, response.headers()),
        };
        if ok {
            compress(gz, response);
        }
    }
    if vary && gz.vary {
        response
            .headers_mut()
            .append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

/// The gzip header filter's checks on the response: status 200, 403 or 404, not encoded
/// already, at least `gzip_min_length` when the length is known, a type of `gzip_types`.
fn qualifies(gz: &GzipRt, response: &Response<ResponseBody>) -> bool {
    if !matches!(response.status().as_u16(), 200 | 403 | 404) {
        return false;
    }
    let headers = response.headers();
    if headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| !v.is_empty())
    {
        return false;
    }
    let length = match headers.get(header::CONTENT_LENGTH) {
        Some(v) => v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()),
        None => response.body().exact_len(),
    };
    if length.is_some_and(|len| len < gz.min_length) {
        return false;
    }
    type_matches(gz, headers)
}

/// `ngx_http_test_content_type`: `*` takes everything; else the type in lower case, without
/// a `; charset=` parameter (nginx keeps other parameters in the type it compares).
fn type_matches(gz: &GzipRt, headers: &HeaderMap) -> bool {
    if gz.any_type {
        return true;
    }
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    let base = media_type(value.as_bytes());
    !base.is_empty()
        && gz
            .types
            .iter()
            .any(|t| t.as_bytes().eq_ignore_ascii_case(base))
}

/// The Content-Type up to a `;` that starts a `charset=` parameter (as nginx's upstream and
/// charset code set `content_type_len`), else the whole value.
fn media_type(value: &[u8]) -> &[u8] {
    let mut from = 0;
    while let Some(at) = value
        .get(from..)
        .and_then(|v| v.iter().position(|b| *b == b';'))
    {
        let semi = from + at;
        let rest = value.get(semi + 1..).unwrap_or_default().trim_ascii_start();
        if rest.len() >= 8 && rest[..8].eq_ignore_ascii_case(b"charset=") {
            return &value[..semi];
        }
        from = semi + 1;
    }
    value
}

/// Headers for a compressed body: Content-Encoding, no Content-Length or Accept-Ranges, a weak
/// ETag (`ngx_http_weak_etag`: an unquoted one is dropped); the body streams through deflate.
fn compress(gz: &GzipRt, response: &mut Response<ResponseBody>) {
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::ACCEPT_RANGES);
    if let Some(etag) = headers.get(header::ETAG) {
        let bytes = etag.as_bytes();
        if !(bytes.len() > 2 && bytes.starts_with(b"W/")) {
            if bytes.first() == Some(&b'"') {
                let mut weak = Vec::with_capacity(bytes.len() + 2);
                weak.extend_from_slice(b"W/");
                weak.extend_from_slice(bytes);
                if let Ok(value) = HeaderValue::from_bytes(&weak) {
                    headers.insert(header::ETAG, value);
                }
            } else {
                headers.remove(header::ETAG);
            }
        }
    }
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    response.body_mut().gzip(gz.level);
}

fn version_rank(version: Version) -> u8 {
    match version {
        Version::HTTP_09 => 0,
        Version::HTTP_10 => 1,
        Version::HTTP_11 => 2,
        _ => 3,
    }
}

/// `ngx_http_gzip_ok`: whether this request may get a compressed answer; `response` is what
/// `gzip_proxied` judges for requests with `Via`.
fn gzip_ok(gz: &GzipRt, parts: &http::request::Parts, response: &HeaderMap) -> bool {
    let request = &parts.headers;
    // nginx 1.22 keeps the first Accept-Encoding line.
    let Some(ae) = request.get(header::ACCEPT_ENCODING) else {
        return false;
    };
    let ae = ae.as_bytes();
    if ae.len() < 4 || !(ae.starts_with(b"gzip,") || accepts_gzip(ae)) {
        return false;
    }
    let user_agent = request.get(header::USER_AGENT).map(|v| v.as_bytes());
    if gz.msie6 && user_agent.is_some_and(is_msie6) {
        return false;
    }
    let wanted = match gz.http_version {
        GzipHttpVersion::Http10 => 1,
        GzipHttpVersion::Http11 => 2,
    };
    if version_rank(parts.version) < wanted {
        return false;
    }
    if request.contains_key(header::VIA) && !proxied_ok(gz, request, response) {
        return false;
    }
    if let Some(ua) = user_agent {
        if gz.disable.iter().any(|r| r.is_match(ua)) {
            return false;
        }
    }
    true
}

/// `gzip_proxied` for a request that came through a proxy.
fn proxied_ok(gz: &GzipRt, request: &HeaderMap, response: &HeaderMap) -> bool {
    let has = |p: GzipProxied| gz.proxied.contains(&p);
    if gz.proxied.is_empty() || has(GzipProxied::Off) {
        return false;
    }
    if has(GzipProxied::Any) {
        return true;
    }
    if has(GzipProxied::Auth) && request.contains_key(header::AUTHORIZATION) {
        return true;
    }
    if let Some(expires) = response.get(header::EXPIRES) {
        if !has(GzipProxied::Expired) {
            return false;
        }
        let Some(expires) = static_files::parse_http_time(expires.as_bytes()) else {
            return false;
        };
        // The upstream's Date is not kept (nginx hides it): now.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        return expires < now;
    }
    let mut controls = response.get_all(header::CACHE_CONTROL).iter().peekable();
    if controls.peek().is_some() {
        let directive = |name: &[u8]| {
            response.get_all(header::CACHE_CONTROL).iter().any(|v| {
                v.as_bytes().split(|b| *b == b',').any(|d| {
                    let d = d.split(|b| *b == b'=').next().unwrap_or_default();
                    d.trim_ascii().eq_ignore_ascii_case(name)
                })
            })
        };
        return (has(GzipProxied::NoCache) && directive(b"no-cache"))
            || (has(GzipProxied::NoStore) && directive(b"no-store"))
            || (has(GzipProxied::Private) && directive(b"private"));
    }
    if has(GzipProxied::NoLastModified) && response.contains_key(header::LAST_MODIFIED) {
        return false;
    }
    if has(GzipProxied::NoEtag) && response.contains_key(header::ETAG) {
        return false;
    }
    true
}

/// `ngx_http_gzip_accept_encoding`: a `gzip` token (at the start or after `,` or space,
/// any case) followed by the end, `,`, or `;q=` with a non-zero quality.
fn accepts_gzip(ae: &[u8]) -> bool {
    let lower = |b: &u8| b.to_ascii_lowercase();
    let mut start = 0;
    let mut p = loop {
        let Some(at) = ae.get(start..).and_then(|rest| {
            rest.windows(4)
                .position(|w| w.iter().map(lower).eq(*b"gzip"))
        }) else {
            return false;
        };
        let at = start + at;
        if at == 0 || matches!(ae.get(at - 1), Some(b',' | b' ')) {
            break at + 4;
        }
        start = at + 4;
    };
    loop {
        let Some(&c) = ae.get(p) else {
            return true;
        };
        p += 1;
        match c {
            b',' => return true,
            b';' => break,
            b' ' => {}
            _ => return false,
        }
    }
    loop {
        let Some(&c) = ae.get(p) else {
            return true;
        };
        p += 1;
        match c {
            b'q' | b'Q' => break,
            b' ' => {}
            _ => return false,
        }
    }
    if p + 2 > ae.len() || ae.get(p) != Some(&b'=') {
        return false;
    }
    quantity(ae.get(p + 1..).unwrap_or_default()) != 0
}

/// `ngx_http_gzip_quantity`: `0`/`1`, optionally `.` and up to three digits; 0 for anything
/// else. (nginx adds the digits up; only whether the result is 0 matters.)
fn quantity(q: &[u8]) -> u32 {
    let mut bytes = q.iter();
    let value = match bytes.next() {
        Some(b'0') => 0,
        Some(b'1') => 100,
        _ => return 0,
    };
    let mut value = value;
    match bytes.next() {
        None | Some(b',' | b' ') => return value,
        Some(b'.') => {}
        Some(_) => return 0,
    }
    let mut digits = 0;
    for &c in bytes {
        if c == b',' || c == b' ' {
            break;
        }
        if !c.is_ascii_digit() {
            return 0;
        }
        value += u32::from(c - b'0');
        digits += 1;
    }
    if value > 100 || digits > 3 {
        return 0;
    }
    value
}

/// nginx's `msie6` (`ngx_http_process_user_agent`): MSIE 4.x or 5.x, or 6.x without SV1, and
/// not Opera.
fn is_msie6(ua: &[u8]) -> bool {
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    if find(ua, b"Opera").is_some() {
        return false;
    }
    let Some(at) = find(ua, b"MSIE ") else {
        return false;
    };
    if at + 7 >= ua.len() || ua.get(at + 6) != Some(&b'.') {
        return false;
    }
    match ua.get(at + 5) {
        Some(b'4' | b'5') => true,
        Some(b'6') => find(ua.get(at + 8..).unwrap_or_default(), b"SV1").is_none(),
        _ => false,
    }
}

/// What the gzip modules decide before the static module serves a file.
pub(crate) enum BeforeStatic {
    /// `gzip_static` answered (the `.gz` file), or failed with this status.
    Answered(Result<Box<Response<ResponseBody>>, StatusCode>),
    /// The static module serves the file: with these request headers (without Range, when the
    /// answer will be compressed: nginx's range filter runs after gzip and sees no 200 to cut),
    /// and then marks it.
    Serve(Option<HeaderMap>, Marks),
}

/// What the static module's answer carries to [`filter`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Marks {
    vary: bool,
    tested: Option<bool>,
}

impl Marks {
    pub fn apply(self, response: &mut Response<ResponseBody>) {
        if self.vary {
            response.extensions_mut().insert(VaryMarker);
        }
        if let Some(ok) = self.tested {
            response.extensions_mut().insert(Tested(ok));
        }
    }
}

/// `gzip_static` (answers with `FILE.gz` when it exists and the client takes gzip), and the
/// Range a compressed answer ignores, for a static file at `path` (before its index files).
pub(crate) async fn before_static(
    rt: &Runtime,
    f: &FiltersRt,
    parts: &http::request::Parts,
    uri: &str,
    path: &Path,
) -> BeforeStatic {
    let mut marks = Marks::default();
    let Some(gz) = &f.gzip else {
        return BeforeStatic::Serve(None, marks);
    };
    let get_or_head = parts.method == Method::GET || parts.method == Method::HEAD;
    if gz.static_files != GzipStatic::Off && get_or_head && !uri.ends_with('/') {
        let ok = match gz.static_files {
            GzipStatic::Always => true,
            _ => {
                // Judged before any response header exists (nginx caches this verdict).
                let ok = gzip_ok(gz, parts, &HeaderMap::new());
                marks.tested = Some(ok);
                ok
            }
        };
        if gz.vary || ok {
            let mut gz_path = path.as_os_str().to_owned();
            gz_path.push(".gz");
            let gz_path = std::path::PathBuf::from(gz_path);
            let is_file = tokio::fs::metadata(&gz_path)
                .await
                .is_ok_and(|m| m.is_file());
            if is_file {
                if gz.static_files == GzipStatic::On {
                    marks.vary = true;
                }
                if ok {
                    let answer = serve_gz(rt, parts, path, gz_path, marks).await;
                    return BeforeStatic::Answered(answer.map(Box::new));
                }
            }
        }
    }
    // The gzip filter will compress this file: the request's Range does not apply.
    if gz.enable && parts.headers.contains_key(header::RANGE) && get_or_head {
        if let Ok(meta) = tokio::fs::metadata(path).await {
            if meta.is_file() && meta.len() >= gz.min_length {
                let mut headers = HeaderMap::new();
                headers.insert(header::CONTENT_TYPE, mime_for_path(rt, path));
                // What the static module sends and `expires` adds, for `gzip_proxied`.
                headers.insert(header::ETAG, HeaderValue::from_static("\"\""));
                headers.insert(
                    header::LAST_MODIFIED,
                    HeaderValue::from_static("Thu, 01 Jan 1970 00:00:01 GMT"),
                );
                if let Some(expires) = f.expires {
                    crate::expires::apply(expires, StatusCode::OK, &mut headers);
                }
                let ok = match marks.tested {
                    Some(ok) => ok,
                    None => gzip_ok(gz, parts, &headers),
                };
                if type_matches(gz, &headers) && ok {
                    let mut request = parts.headers.clone();
                    request.remove(header::RANGE);
                    return BeforeStatic::Serve(Some(request), marks);
                }
            }
        }
    }
    BeforeStatic::Serve(None, marks)
}

/// The `.gz` file as nginx's gzip_static sends it: the original file's type,
/// `Content-Encoding: gzip`, its own ETag and length, conditional requests judged by it, no
/// ranges.
async fn serve_gz(
    rt: &Runtime,
    parts: &http::request::Parts,
    path: &Path,
    gz_path: std::path::PathBuf,
    marks: Marks,
) -> Result<Response<ResponseBody>, StatusCode> {
    let mut request = parts.headers.clone();
    request.remove(header::RANGE);
    let served = static_files::serve(rt, None, &parts.method, gz_path, "", &[], &request).await;
    let mut response = match served {
        StaticResult::Found(response) => *response,
        StaticResult::Status(status) => return Err(status),
        StaticResult::AddSlash => return Err(StatusCode::NOT_FOUND),
    };
    let headers = response.headers_mut();
    headers.remove(header::ACCEPT_RANGES);
    if response.status() == StatusCode::OK {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, mime_for_path(rt, path));
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    marks.apply(&mut response);
    Ok(response)
}

/// The type of a file by its extension, else `default_type`.
fn mime_for_path(rt: &Runtime, path: &Path) -> HeaderValue {
    path.extension()
        .and_then(|e| e.to_str())
        .and_then(|e| rt.mime.get(&e.to_ascii_lowercase()))
        .cloned()
        .unwrap_or_else(|| rt.default_type.clone())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn accept_encoding_as_nginx_parses_it() {
        for yes in [
            "gzip",
            "gzip, deflate",
            "deflate, gzip",
            "GZIP",
            "br,gzip ;q=1",
            "gzip;q=0.001",
            "deflate, gzip;q=0.5",
            "gzip; q=1.000",
            "gzip;",
        ] {
            assert!(
                yes.starts_with("gzip,") || accepts_gzip(yes.as_bytes()),
                "{yes}"
            );
        }
        for no in [
            "x-gzip",
            "xgzip",
            "gzip;q=0",
            "gzip; q=0.0",
            "gzip;q=1.5",
            "gzip;q=0.0001",
            "gzipx",
            "identity",
            "gzip;q=",
        ] {
            assert!(!accepts_gzip(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn msie6_as_nginx_detects_it() {
        assert!(is_msie6(
            b"Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)"
        ));
        assert!(is_msie6(b"Mozilla/4.0 (compatible; MSIE 5.5; Windows 98)"));
        assert!(!is_msie6(
            b"Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)"
        ));
        assert!(!is_msie6(
            b"Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 6.0)"
        ));
        assert!(!is_msie6(b"Opera/9.0 (compatible; MSIE 6.0; Windows)"));
        assert!(!is_msie6(b"curl/8"));
    }

    #[test]
    fn media_type_drops_only_a_charset_parameter() {
        assert_eq!(media_type(b"text/plain; charset=utf-8"), b"text/plain");
        assert_eq!(media_type(b"text/plain;charset=utf-8"), b"text/plain");
        assert_eq!(media_type(b"text/plain; foo=bar"), b"text/plain; foo=bar");
        assert_eq!(media_type(b"text/css"), b"text/css");
    }
}
