//! Serving files from `root`/`alias` with `index`, as nginx's static module with its
//! not_modified and range filters (nginx 1.22, default settings: `etag on`,
//! `if_modified_since exact`, `max_ranges` unlimited): ETag and Last-Modified, conditional
//! requests (304 / 412), byte ranges (206, multipart/byteranges, 416) and If-Range.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};

use crate::body::{FileBody, Multipart, ResponseBody, ResponseKind};
use crate::runtime::Runtime;

/// Outcome of a static lookup.
pub(crate) enum StaticResult {
    Found(Box<Response<ResponseBody>>),
    /// A directory requested without the trailing slash: redirect to `uri/`.
    AddSlash,
    Status(StatusCode),
}

/// Maps the normalised URI to a file: `root + uri`, or `alias + (uri - location prefix)`.
pub(crate) fn file_path(
    root: &Path,
    alias: Option<&Path>,
    uri: &str,
    prefix_len: usize,
) -> PathBuf {
    match alias {
        Some(alias) => {
            let rest = uri.get(prefix_len..).unwrap_or("");
            let mut path = alias.as_os_str().to_owned();
            path.push(rest);
            PathBuf::from(path)
        }
        None => {
            let mut path = root.as_os_str().to_owned();
            path.push(uri);
            PathBuf::from(path)
        }
    }
}

/// What nginx's index module makes of a directory URI.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum IndexTarget {
    /// This name (relative to the URI) is a file in the directory.
    File(String),
    /// An index name starting with `/` reached before any existing file: the URI to redirect
    /// to, unchecked (nginx's `ngx_http_index_handler`).
    Absolute(String),
}

/// The first of `index` that is a file in the directory `dir`, or an absolute name met first
/// (nginx's index module). Names with variables are made by `render` first.
pub(crate) async fn find_index(
    dir: &Path,
    index: &[String],
    render: impl Fn(&str) -> String,
) -> Option<IndexTarget> {
    for written in index {
        let name = if written.contains('$') {
            render(written)
        } else {
            written.clone()
        };
        if name.starts_with('/') {
            return Some(IndexTarget::Absolute(name));
        }
        if tokio::fs::metadata(dir.join(&name))
            .await
            .is_ok_and(|m| m.is_file())
        {
            return Some(IndexTarget::File(name));
        }
    }
    None
}

/// Serves `path` (a directory gets its index files tried). `headers` are the request's: the
/// conditional headers and Range are answered as nginx's filters answer them for a 200.
pub(crate) async fn serve(
    rt: &Runtime,
    loc: Option<&crate::runtime::LocationRt>,
    method: &Method,
    path: PathBuf,
    uri: &str,
    index: &[String],
    headers: &HeaderMap,
) -> StaticResult {
    // nginx's static and index modules take GET, HEAD and POST; a POST is refused only once
    // the file is found (a missing one is 404, so `error_page 404` can still take it).
    if method != Method::GET && method != Method::HEAD && method != Method::POST {
        return StaticResult::Status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let mut target = path;
    if uri.ends_with('/') {
        let mut found = None;
        for name in index {
            let candidate = target.join(name);
            if tokio::fs::metadata(&candidate)
                .await
                .is_ok_and(|m| m.is_file())
            {
                found = Some(candidate);
                break;
            }
        }
        match found {
            Some(file) => target = file,
            // nginx answers 403 for a directory without index (autoindex off), 404 if missing.
            None => {
                return match tokio::fs::metadata(&target).await {
                    Ok(m) if m.is_dir() => StaticResult::Status(StatusCode::FORBIDDEN),
                    _ => StaticResult::Status(StatusCode::NOT_FOUND),
                };
            }
        }
    }
    let meta = match tokio::fs::metadata(&target).await {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return StaticResult::Status(StatusCode::FORBIDDEN)
        }
        Err(_) => return StaticResult::Status(StatusCode::NOT_FOUND),
    };
    if meta.is_dir() {
        return StaticResult::AddSlash;
    }
    if method == Method::POST {
        return StaticResult::Status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let file = match tokio::fs::File::open(&target).await {
        Ok(file) => file,
        Err(_) => return StaticResult::Status(StatusCode::FORBIDDEN),
    };
    let types = loc.and_then(|l| l.types.as_ref());
    let kind = crate::mime::type_for(rt, types, target.extension().and_then(|e| e.to_str()));
    let len = meta.len();
    let mut validators = Validators::new(meta.mtime(), len);
    validators.ims = loc
        .and_then(|l| l.cfg.if_modified_since)
        .unwrap_or_default();

    // The not_modified filter: 412 and 304 come before ranges.
    match validators.precondition(headers) {
        Precondition::Failed => return StaticResult::Status(StatusCode::PRECONDITION_FAILED),
        Precondition::NotModified => {
            let mut response = Response::new(ResponseBody::empty());
            *response.status_mut() = StatusCode::NOT_MODIFIED;
            validators.insert(response.headers_mut());
            return StaticResult::Found(Box::new(response));
        }
        Precondition::Proceed => {}
    }

    let plan = validators.range_plan(headers);
    let mut response = match plan {
        RangePlan::Full => {
            let mut response = Response::new(ResponseBody::new(ResponseKind::File(FileBody::new(
                file, len,
            ))));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, kind);
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            validators.insert(headers);
            headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            return StaticResult::Found(Box::new(response));
        }
        RangePlan::Unsatisfiable => {
            // nginx's special response: its error page (Last-Modified, ETag and Accept-Ranges
            // cleared) with `Content-Range: bytes */LEN`.
            let mut response = crate::handler::error_response(StatusCode::RANGE_NOT_SATISFIABLE);
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return StaticResult::Found(Box::new(response));
        }
        RangePlan::Single(start, end) => {
            let part = end - start;
            let mut response = Response::new(ResponseBody::new(ResponseKind::File(
                FileBody::range(file, start, part),
            )));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, kind);
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(part));
            if let Ok(value) = HeaderValue::from_str(&format!("bytes {}-{}/{len}", start, end - 1))
            {
                headers.insert(header::CONTENT_RANGE, value);
            }
            response
        }
        RangePlan::Multi(ranges) => {
            let boundary = next_boundary();
            let multipart = Multipart::new(&boundary, kind.as_bytes(), len);
            let parts: Vec<(u64, u64)> = ranges.iter().map(|&(s, e)| (s, e - s)).collect();
            let total = multipart.body_len(&parts);
            let mut response = Response::new(ResponseBody::new(ResponseKind::File(
                FileBody::multipart(file, parts, multipart),
            )));
            let headers = response.headers_mut();
            if let Ok(value) =
                HeaderValue::from_str(&format!("multipart/byteranges; boundary={boundary}"))
            {
                headers.insert(header::CONTENT_TYPE, value);
            }
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
            response
        }
    };
    *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    validators.insert(response.headers_mut());
    StaticResult::Found(Box::new(response))
}

/// nginx's multipart boundary: a number, zero-padded to 20 digits, different for each response.
fn next_boundary() -> String {
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        (now.as_secs() << 20) ^ u64::from(now.subsec_nanos()) ^ u64::from(std::process::id())
    });
    format!(
        "{:020}",
        seed.wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed))
    )
}

/// What the not_modified filter decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Precondition {
    /// Serve the file (and let the range filter look at it).
    Proceed,
    /// 304.
    NotModified,
    /// 412.
    Failed,
}

/// What the range filter decides; ranges are `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RangePlan {
    /// 200 with `Accept-Ranges: bytes`.
    Full,
    /// 206 with Content-Range.
    Single(u64, u64),
    /// 206 multipart/byteranges.
    Multi(Vec<(u64, u64)>),
    /// 416 with `Content-Range: bytes */LEN`.
    Unsatisfiable,
}

/// A file's validators as nginx computes them: its mtime (seconds) and size.
#[derive(Debug, Clone)]
struct Validators {
    mtime: i64,
    len: u64,
    /// `"<mtime hex>-<size hex>"` (`ngx_http_set_etag`).
    etag: String,
    /// `if_modified_since` (exact).
    ims: halo_config::content::IfModifiedSince,
}

impl Validators {
    fn new(mtime: i64, len: u64) -> Self {
        let sign = if mtime < 0 { "-" } else { "" };
        let etag = format!("\"{sign}{:x}-{len:x}\"", mtime.unsigned_abs());
        Validators {
            mtime,
            len,
            etag,
            ims: Default::default(),
        }
    }

    /// Last-Modified and ETag, as the 200, 206 and 304 responses carry them.
    fn insert(&self, headers: &mut HeaderMap) {
        if let Ok(secs) = u64::try_from(self.mtime) {
            let when = UNIX_EPOCH + Duration::from_secs(secs);
            if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(when)) {
                headers.insert(header::LAST_MODIFIED, value);
            }
        }
        if let Ok(value) = HeaderValue::from_str(&self.etag) {
            headers.insert(header::ETAG, value);
        }
    }

    /// nginx's not_modified filter, in its order: If-Unmodified-Since, then If-Match (412 if
    /// either fails); then If-Modified-Since and If-None-Match, both of which (when present)
    /// must say "not modified" for a 304. Of a repeated header the first line counts (nginx
    /// 1.22 refuses repeated If-Modified-Since / If-Unmodified-Since with 400 before this).
    fn precondition(&self, headers: &HeaderMap) -> Precondition {
        if let Some(value) = headers.get(header::IF_UNMODIFIED_SINCE) {
            // An unparsable date is nginx's -1: never >= a file's mtime.
            if parse_http_time(value.as_bytes()).unwrap_or(-1) < self.mtime {
                return Precondition::Failed;
            }
        }
        if let Some(value) = headers.get(header::IF_MATCH) {
            if !etag_list_matches(value.as_bytes(), self.etag.as_bytes(), false) {
                return Precondition::Failed;
            }
        }
        let ims = headers.get(header::IF_MODIFIED_SINCE);
        let inm = headers.get(header::IF_NONE_MATCH);
        if ims.is_none() && inm.is_none() {
            return Precondition::Proceed;
        }
        if let Some(value) = ims {
            // `if_modified_since exact` (the default): only the very same second is "not
            // modified"; `before`: any date not earlier than the file's; `off`: never.
            if self
                .ims
                .modified(parse_http_time(value.as_bytes()), self.mtime)
            {
                return Precondition::Proceed;
            }
        }
        if let Some(value) = inm {
            if !etag_list_matches(value.as_bytes(), self.etag.as_bytes(), true) {
                return Precondition::Proceed;
            }
        }
        Precondition::NotModified
    }

    /// nginx's range filter for a 200 of `len` bytes.
    fn range_plan(&self, headers: &HeaderMap) -> RangePlan {
        let Some(range) = headers.get(header::RANGE).map(HeaderValue::as_bytes) else {
            return RangePlan::Full;
        };
        if range.len() < 7 || !range[..6].eq_ignore_ascii_case(b"bytes=") {
            return RangePlan::Full;
        }
        if let Some(if_range) = headers.get(header::IF_RANGE).map(HeaderValue::as_bytes) {
            if if_range.len() >= 2 && if_range.last() == Some(&b'"') {
                // An entity tag: byte for byte the ETag (so a weak one never matches).
                if if_range != self.etag.as_bytes() {
                    return RangePlan::Full;
                }
            } else if parse_http_time(if_range).unwrap_or(-1) != self.mtime {
                return RangePlan::Full;
            }
        }
        match parse_ranges(&range[6..], self.len) {
            RangeSet::Ranges(ranges) => match ranges.as_slice() {
                [(start, end)] => RangePlan::Single(*start, *end),
                _ => RangePlan::Multi(ranges),
            },
            RangeSet::Declined => RangePlan::Full,
            RangeSet::Unsatisfiable => RangePlan::Unsatisfiable,
        }
    }
}

/// `ngx_http_test_if_match`: `*` alone matches anything; else a comma-separated list of entity
/// tags, one of which must equal `etag` byte for byte (with `weak`, as for If-None-Match, a
/// `W/` before a listed tag is ignored). Whitespace may follow a tag.
fn etag_list_matches(list: &[u8], etag: &[u8], weak: bool) -> bool {
    if list == b"*" {
        return true;
    }
    let etag = match etag.strip_prefix(b"W/") {
        Some(strong) if weak && etag.len() > 2 => strong,
        _ => etag,
    };
    let mut at = 0;
    while at < list.len() {
        let rest = &list[at..];
        if weak && rest.len() > 2 && rest.starts_with(b"W/") {
            at += 2;
        }
        let rest = &list[at..];
        if etag.len() > rest.len() {
            return false;
        }
        if rest.starts_with(etag) {
            let after = rest[etag.len()..]
                .iter()
                .position(|&c| c != b' ' && c != b'\t')
                .map(|i| rest[etag.len() + i]);
            if matches!(after, None | Some(b',')) {
                return true;
            }
        }
        // On to the next element: past the comma and the blanks that follow it.
        while at < list.len() && list[at] != b',' {
            at += 1;
        }
        while at < list.len() && matches!(list[at], b' ' | b'\t' | b',') {
            at += 1;
        }
    }
    false
}

/// What `ngx_http_range_parse` makes of a Range header's value after `bytes=`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RangeSet {
    /// The satisfiable ranges, `[start, end)`, in the order asked.
    Ranges(Vec<(u64, u64)>),
    /// Serve the whole file: ranges overlap or add up to more than the file, or a range
    /// starts at 0 but is empty (a file of 0 bytes).
    Declined,
    /// 416: bad syntax, a number too large, or no range inside the file.
    Unsatisfiable,
}

/// nginx's range parser: `a-b` (b clamped to the file), `a-`, `-n` (the last n bytes);
/// spaces allowed around numbers and `-`; elements separated by `,`; ranges starting at or
/// after the end are dropped.
fn parse_ranges(spec: &[u8], len: u64) -> RangeSet {
    const CUTOFF: i64 = i64::MAX / 10;
    const CUTLIM: i64 = i64::MAX % 10;
    // nginx reads a NUL-terminated string: past the end reads as 0.
    let at = |i: usize| spec.get(i).copied().unwrap_or(0);
    let skip_spaces = |mut i: usize| {
        while at(i) == b' ' {
            i += 1;
        }
        i
    };
    let number = |mut i: usize| -> Option<(i64, usize)> {
        let mut n: i64 = 0;
        while at(i).is_ascii_digit() {
            let digit = i64::from(at(i) - b'0');
            if n >= CUTOFF && (n > CUTOFF || digit > CUTLIM) {
                return None;
            }
            n = n * 10 + digit;
            i += 1;
        }
        Some((n, i))
    };
    let content_length = i64::try_from(len).unwrap_or(i64::MAX);
    let mut ranges = Vec::new();
    let mut size: i64 = 0;
    let mut p = 0;
    loop {
        p = skip_spaces(p);
        let (start, end);
        if at(p) != b'-' {
            if !at(p).is_ascii_digit() {
                return RangeSet::Unsatisfiable;
            }
            let Some((first, next)) = number(p) else {
                return RangeSet::Unsatisfiable;
            };
            p = skip_spaces(next);
            if at(p) != b'-' {
                return RangeSet::Unsatisfiable;
            }
            p = skip_spaces(p + 1);
            if matches!(at(p), b',' | 0) {
                (start, end) = (first, content_length);
            } else {
                if !at(p).is_ascii_digit() {
                    return RangeSet::Unsatisfiable;
                }
                let Some((last, next)) = number(p) else {
                    return RangeSet::Unsatisfiable;
                };
                p = skip_spaces(next);
                if !matches!(at(p), b',' | 0) {
                    return RangeSet::Unsatisfiable;
                }
                start = first;
                end = if last >= content_length {
                    content_length
                } else {
                    last + 1
                };
            }
        } else {
            p += 1;
            if !at(p).is_ascii_digit() {
                return RangeSet::Unsatisfiable;
            }
            let Some((suffix, next)) = number(p) else {
                return RangeSet::Unsatisfiable;
            };
            p = skip_spaces(next);
            if !matches!(at(p), b',' | 0) {
                return RangeSet::Unsatisfiable;
            }
            start = if suffix < content_length {
                content_length - suffix
            } else {
                0
            };
            end = content_length;
        }
        if start < end {
            if size > i64::MAX - (end - start) {
                return RangeSet::Unsatisfiable;
            }
            size += end - start;
            // Both are within 0..=len here.
            ranges.push((start.unsigned_abs(), end.unsigned_abs()));
        } else if start == 0 {
            return RangeSet::Declined;
        }
        let separator = at(p);
        p += 1;
        if separator != b',' {
            break;
        }
    }
    if ranges.is_empty() {
        return RangeSet::Unsatisfiable;
    }
    if size > content_length {
        return RangeSet::Declined;
    }
    RangeSet::Ranges(ranges)
}

/// `ngx_parse_http_time`: RFC 1123 (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`) dates, read as
/// leniently as nginx reads them (the weekday and what follows the time are not checked;
/// a month is told by as few letters as tell it apart). Seconds since the epoch.
pub(crate) fn parse_http_time(value: &[u8]) -> Option<i64> {
    #[derive(PartialEq, Eq)]
    enum Format {
        Rfc1123,
        Rfc850,
        Asctime,
    }
    const MONTH_DAYS: [u32; 12] = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let end = value.len();
    let at = |i: usize| value.get(i).copied().unwrap_or(0);
    let digit = |i: usize| at(i).is_ascii_digit().then(|| u32::from(at(i) - b'0'));
    let two = |i: usize| Some(digit(i)? * 10 + digit(i + 1)?);
    let four = |i: usize| Some(two(i)? * 100 + two(i + 2)?);

    // The weekday ends at a comma (RFC 1123, RFC 850) or a space (asctime).
    let mut asctime = false;
    let mut p = 0;
    while p < end {
        if value[p] == b',' {
            break;
        }
        if value[p] == b' ' {
            asctime = true;
            break;
        }
        p += 1;
    }
    p += 1;
    while p < end && value[p] == b' ' {
        p += 1;
    }
    if end.saturating_sub(p) < 18 {
        return None;
    }
    let mut format = Format::Asctime;
    let mut day = 0;
    if !asctime {
        day = two(p)?;
        p += 2;
        format = match at(p) {
            b' ' if end.saturating_sub(p) >= 18 => Format::Rfc1123,
            b'-' => Format::Rfc850,
            _ => return None,
        };
        p += 1;
    }
    let month: usize = match at(p) {
        b'J' if at(p + 1) == b'a' => 0,
        b'J' if at(p + 2) == b'n' => 5,
        b'J' => 6,
        b'F' => 1,
        b'M' if at(p + 2) == b'r' => 2,
        b'M' => 4,
        b'A' if at(p + 1) == b'p' => 3,
        b'A' => 7,
        b'S' => 8,
        b'O' => 9,
        b'N' => 10,
        b'D' => 11,
        _ => return None,
    };
    p += 3;
    match format {
        Format::Rfc1123 if at(p) != b' ' => return None,
        Format::Rfc850 if at(p) != b'-' => return None,
        _ => {}
    }
    p += 1;
    let mut year = 0;
    match format {
        Format::Rfc1123 => {
            year = four(p)?;
            p += 4;
        }
        Format::Rfc850 => {
            year = two(p)?;
            year += if year < 70 { 2000 } else { 1900 };
            p += 2;
        }
        Format::Asctime => {
            if at(p) == b' ' {
                p += 1;
            }
            day = digit(p)?;
            p += 1;
            if at(p) != b' ' {
                day = day * 10 + digit(p)?;
                p += 1;
            }
            if end.saturating_sub(p) < 14 {
                return None;
            }
        }
    }
    if at(p) != b' ' {
        return None;
    }
    p += 1;
    let hour = two(p)?;
    p += 2;
    if at(p) != b':' {
        return None;
    }
    let min = two(p + 1)?;
    p += 3;
    if at(p) != b':' {
        return None;
    }
    let sec = two(p + 1)?;
    p += 3;
    if format == Format::Asctime {
        if at(p) != b' ' {
            return None;
        }
        year = four(p + 1)?;
    }
    if hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    if day == 29 && month == 1 {
        if !leap {
            return None;
        }
    } else if day > MONTH_DAYS[month] {
        return None;
    }
    Some(
        days_from_civil(i64::from(year), month as i64 + 1, i64::from(day)) * 86_400
            + i64::from(hour) * 3600
            + i64::from(min) * 60
            + i64::from(sec),
    )
}

/// Days from 1970-01-01 to the proleptic Gregorian date (month 1..=12; day 0 is the last day
/// of the month before, as nginx's arithmetic makes it).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Years start in March, so the leap day is the last day of the year.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// 2023-11-14 22:13:20 GMT.
    const MTIME: i64 = 1_700_000_000;
    const LM: &str = "Tue, 14 Nov 2023 22:13:20 GMT";
    const ETAG: &str = "\"6553f100-64\"";

    fn v() -> Validators {
        Validators::new(MTIME, 100)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ranges(spec: &str, len: u64) -> RangeSet {
        parse_ranges(spec.as_bytes(), len)
    }

    #[test]
    fn etag_is_mtime_and_size_in_hex() {
        assert_eq!(v().etag, ETAG);
        assert_eq!(Validators::new(0, 0).etag, "\"0-0\"");
        assert_eq!(Validators::new(-16, 255).etag, "\"-10-ff\"");
    }

    #[test]
    fn ranges_of_every_form() {
        use RangeSet::*;
        assert_eq!(ranges("0-9", 100), Ranges(vec![(0, 10)]));
        assert_eq!(ranges("10-", 100), Ranges(vec![(10, 100)]));
        assert_eq!(ranges("-20", 100), Ranges(vec![(80, 100)]));
        assert_eq!(ranges("-200", 100), Ranges(vec![(0, 100)]));
        assert_eq!(ranges("50-1000", 100), Ranges(vec![(50, 100)]));
        assert_eq!(ranges("99-99", 100), Ranges(vec![(99, 100)]));
        assert_eq!(ranges("0-0,10-19", 100), Ranges(vec![(0, 1), (10, 20)]));
        // Spaces around numbers, dashes and commas; order kept.
        assert_eq!(
            ranges(" 1 - 2 , 90- ,-3", 100),
            Ranges(vec![(1, 3), (90, 100), (97, 100)])
        );
        // A range starting past the end is dropped; none left is 416.
        assert_eq!(ranges("200-300,0-1", 100), Ranges(vec![(0, 2)]));
        assert_eq!(ranges("200-300", 100), Unsatisfiable);
        assert_eq!(ranges("100-", 100), Unsatisfiable);
        assert_eq!(ranges("5-2", 100), Unsatisfiable);
        assert_eq!(ranges("-0", 100), Unsatisfiable);
    }

    #[test]
    fn bad_range_syntax_is_416() {
        for spec in [
            "abc", "", ",", "1-2,,3-4", "0-1x", "1", "1-a", "-", "--1", "1-2-3", "0-1;", "\t0-1",
            "0-1\t",
        ] {
            assert_eq!(ranges(spec, 100), RangeSet::Unsatisfiable, "{spec:?}");
        }
        // A number beyond off_t.
        assert_eq!(
            ranges("99999999999999999999-", 100),
            RangeSet::Unsatisfiable
        );
        assert_eq!(
            ranges("0-99999999999999999999", 100),
            RangeSet::Unsatisfiable
        );
        assert_eq!(ranges("9223372036854775807-", 100), RangeSet::Unsatisfiable);
        // The largest number is fine (and clamped).
        assert_eq!(
            ranges("0-9223372036854775807", 100),
            RangeSet::Ranges(vec![(0, 100)])
        );
    }

    #[test]
    fn overlapping_or_oversized_ranges_get_the_whole_file() {
        assert_eq!(ranges("0-60,40-99", 100), RangeSet::Declined);
        assert_eq!(ranges("0-99,0-99", 100), RangeSet::Declined);
        assert_eq!(ranges("-60,0-50", 100), RangeSet::Declined);
        // Overlapping but not adding up to more than the file: served as asked.
        assert_eq!(
            ranges("0-9,5-14", 100),
            RangeSet::Ranges(vec![(0, 10), (5, 15)])
        );
        // An empty file: a range from 0 declines, others are unsatisfiable.
        assert_eq!(ranges("0-", 0), RangeSet::Declined);
        assert_eq!(ranges("-5", 0), RangeSet::Declined);
        assert_eq!(ranges("0-0", 0), RangeSet::Declined);
        assert_eq!(ranges("1-2", 0), RangeSet::Unsatisfiable);
    }

    #[test]
    fn range_plan_needs_bytes_unit_and_if_range() {
        let plan = |pairs: &[(&str, &str)]| v().range_plan(&headers(pairs));
        assert_eq!(plan(&[]), RangePlan::Full);
        assert_eq!(plan(&[("range", "items=0-5")]), RangePlan::Full);
        assert_eq!(plan(&[("range", "bytes=")]), RangePlan::Full);
        assert_eq!(plan(&[("range", "BYTES=0-5")]), RangePlan::Single(0, 6));
        assert_eq!(
            plan(&[("range", "bytes=0-1,4-5")]),
            RangePlan::Multi(vec![(0, 2), (4, 6)])
        );
        assert_eq!(plan(&[("range", "bytes=x")]), RangePlan::Unsatisfiable);
        // If-Range: the ETag byte for byte, or the Last-Modified date.
        let with = |if_range: &str| plan(&[("range", "bytes=0-5"), ("if-range", if_range)]);
        assert_eq!(with(ETAG), RangePlan::Single(0, 6));
        assert_eq!(with(LM), RangePlan::Single(0, 6));
        assert_eq!(with("\"other\""), RangePlan::Full);
        assert_eq!(with(&format!("W/{ETAG}")), RangePlan::Full);
        assert_eq!(with("Tue, 14 Nov 2023 22:13:21 GMT"), RangePlan::Full);
        assert_eq!(with("garbage"), RangePlan::Full);
        // A bad Range under a failing If-Range is not even parsed.
        assert_eq!(
            plan(&[("range", "bytes=x"), ("if-range", "\"other\"")]),
            RangePlan::Full
        );
    }

    #[test]
    fn entity_tag_lists() {
        let e = ETAG.as_bytes();
        for (list, strong, weak) in [
            (ETAG.to_owned(), true, true),
            ("*".to_owned(), true, true),
            (format!("W/{ETAG}"), false, true),
            (format!("\"a\", {ETAG}"), true, true),
            (format!("\"a\",{ETAG} , \"b\""), true, true),
            (format!("\"a\",\tW/{ETAG}\t"), false, true),
            (format!("{ETAG}x"), false, false),
            ("\"a\", \"b\"".to_owned(), false, false),
            ("*, \"a\"".to_owned(), false, false),
            ("\"6553f100\"".to_owned(), false, false),
            (String::new(), false, false),
        ] {
            assert_eq!(
                etag_list_matches(list.as_bytes(), e, false),
                strong,
                "{list}"
            );
            assert_eq!(etag_list_matches(list.as_bytes(), e, true), weak, "{list}");
        }
    }

    #[test]
    fn preconditions_in_nginx_order() {
        use Precondition::*;
        let pre = |pairs: &[(&str, &str)]| v().precondition(&headers(pairs));
        let earlier = "Tue, 14 Nov 2023 22:13:19 GMT";
        let later = "Tue, 14 Nov 2023 22:13:21 GMT";
        assert_eq!(pre(&[]), Proceed);
        assert_eq!(pre(&[("if-none-match", ETAG)]), NotModified);
        assert_eq!(pre(&[("if-none-match", "*")]), NotModified);
        assert_eq!(pre(&[("if-none-match", "\"x\"")]), Proceed);
        // if_modified_since exact: only the same second.
        assert_eq!(pre(&[("if-modified-since", LM)]), NotModified);
        assert_eq!(pre(&[("if-modified-since", later)]), Proceed);
        assert_eq!(pre(&[("if-modified-since", earlier)]), Proceed);
        assert_eq!(pre(&[("if-modified-since", "nonsense")]), Proceed);
        // Both present: both must say "not modified".
        assert_eq!(
            pre(&[("if-modified-since", LM), ("if-none-match", "\"x\"")]),
            Proceed
        );
        assert_eq!(
            pre(&[("if-modified-since", later), ("if-none-match", ETAG)]),
            Proceed
        );
        assert_eq!(
            pre(&[("if-modified-since", LM), ("if-none-match", ETAG)]),
            NotModified
        );
        // If-Match is strong; If-Unmodified-Since needs a date at or after the mtime.
        assert_eq!(pre(&[("if-match", ETAG)]), Proceed);
        assert_eq!(pre(&[("if-match", "*")]), Proceed);
        assert_eq!(pre(&[("if-match", "\"x\"")]), Failed);
        assert_eq!(pre(&[("if-match", &format!("W/{ETAG}"))]), Failed);
        assert_eq!(pre(&[("if-unmodified-since", LM)]), Proceed);
        assert_eq!(pre(&[("if-unmodified-since", later)]), Proceed);
        assert_eq!(pre(&[("if-unmodified-since", earlier)]), Failed);
        assert_eq!(pre(&[("if-unmodified-since", "nonsense")]), Failed);
        // 412 wins over 304.
        assert_eq!(
            pre(&[("if-match", "\"x\""), ("if-none-match", ETAG)]),
            Failed
        );
        assert_eq!(
            pre(&[("if-unmodified-since", earlier), ("if-modified-since", LM)]),
            Failed
        );
        assert_eq!(
            pre(&[("if-unmodified-since", LM), ("if-none-match", ETAG)]),
            NotModified
        );
        // If-None-Match matching the ETag makes a 304 even when If-Match passes.
        assert_eq!(
            pre(&[("if-match", ETAG), ("if-none-match", ETAG)]),
            NotModified
        );
        // The first of repeated lines counts.
        assert_eq!(
            pre(&[("if-none-match", "\"x\""), ("if-none-match", ETAG)]),
            Proceed
        );
    }

    #[test]
    fn http_dates_as_nginx_reads_them() {
        for text in [
            LM,
            "Tue, 14 Nov 2023 22:13:20",
            "Tue, 14 Nov 2023 22:13:20 GMT trailing",
            "Sun, 14 Nov 2023 22:13:20 GMT",
            "Tuesday, 14-Nov-23 22:13:20 GMT",
            "Tue Nov 14 22:13:20 2023",
            "Tue,   14 Nov 2023 22:13:20 GMT",
        ] {
            assert_eq!(parse_http_time(text.as_bytes()), Some(MTIME), "{text}");
        }
        assert_eq!(parse_http_time(b"Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_time(b"Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_time(b"Sun Nov  6 08:49:37 1994"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_time(b"Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_time(b"Thu, 29 Feb 2024 00:00:00 GMT"),
            Some(1_709_164_800)
        );
        for text in [
            "",
            "nonsense",
            "Tue, 14 Nov 2023",
            "Tue, 14 Xyz 2023 22:13:20 GMT",
            "Tue, 31 Nov 2023 22:13:20 GMT",
            "Wed, 29 Feb 2023 00:00:00 GMT",
            "Tue, 14 Nov 2023 24:00:00 GMT",
            "Tue, 14 Nov 2023 22:60:00 GMT",
            "Tue, 14 Nov 2023 22-13-20 GMT",
            "1700000000",
        ] {
            assert_eq!(parse_http_time(text.as_bytes()), None, "{text}");
        }
    }

    #[test]
    fn boundaries_are_twenty_digits_and_differ() {
        let (a, b) = (next_boundary(), next_boundary());
        assert_ne!(a, b);
        for boundary in [a, b] {
            assert_eq!(boundary.len(), 20);
            assert!(boundary.bytes().all(|c| c.is_ascii_digit()));
        }
    }

    #[tokio::test]
    async fn file_bodies_serve_ranges_and_multipart() {
        use http_body_util::BodyExt as _;
        let path = std::env::temp_dir().join(format!("halo-static-{}", std::process::id()));
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let read = |body: FileBody| async move {
            let body = ResponseBody::new(ResponseKind::File(body));
            let expected = body.exact_len().unwrap();
            let got = body.collect().await.unwrap().to_bytes();
            assert_eq!(got.len() as u64, expected);
            got
        };

        let file = tokio::fs::File::open(&path).await.unwrap();
        assert_eq!(read(FileBody::new(file, 200_000)).await, data[..]);

        let file = tokio::fs::File::open(&path).await.unwrap();
        let got = read(FileBody::range(file, 70_000, 100_000)).await;
        assert_eq!(got, data[70_000..170_000]);

        let file = tokio::fs::File::open(&path).await.unwrap();
        let parts = vec![(150_000, 40_000), (0, 3), (5, 0), (199_999, 1)];
        let multipart = Multipart::new("00000000000000000042", b"text/plain", 200_000);
        let got = read(FileBody::multipart(file, parts, multipart)).await;
        let mut want = Vec::new();
        for (start, len) in [(150_000usize, 40_000usize), (0, 3), (5, 0), (199_999, 1)] {
            want.extend_from_slice(
                format!(
                    "\r\n--00000000000000000042\r\nContent-Type: text/plain\r\n\
                     Content-Range: bytes {start}-{}/200000\r\n\r\n",
                    (start + len).saturating_sub(1)
                )
                .as_bytes(),
            );
            want.extend_from_slice(&data[start..start + len]);
        }
        want.extend_from_slice(b"\r\n--00000000000000000042--\r\n");
        assert_eq!(got, want[..]);

        // Without a Content-Type, the parts have no Content-Type line.
        let file = tokio::fs::File::open(&path).await.unwrap();
        let multipart = Multipart::new("1", b"", 200_000);
        let got = read(FileBody::multipart(file, vec![(1, 1), (3, 1)], multipart)).await;
        assert_eq!(
            got,
            b"\r\n--1\r\nContent-Range: bytes 1-1/200000\r\n\r\n\x01\
              \r\n--1\r\nContent-Range: bytes 3-3/200000\r\n\r\n\x03\r\n--1--\r\n"[..]
        );
        std::fs::remove_file(&path).unwrap();
    }
}
