//! Header names as they were written. `http::HeaderMap` keeps names in lower case; nginx and
//! HAProxy pass an upstream's header names as the upstream spelled them (`X-Port`, not
//! `x-port`), and clients and test suites match them byte for byte.
//!
//! Nearly every peer writes names in Title-Case (`Content-Type`, `X-Real-IP` aside), so that is
//! what a name is written as unless its head said otherwise: only spellings that are not
//! Title-Case (`x-lower`, `X-XSS-Protection`) are recorded, in a [`HeaderCase`] extension made
//! from the same single copy of the head (no name is copied, and the common head allocates
//! nothing). Headers nginx writes itself (`Server`, `Date`, `Content-Length`, ...) come out
//! as nginx spells them, whatever the upstream wrote.

use bytes::Bytes;
use http::header::HeaderName;

/// Spellings of header names that were not Title-Case, in arrival order.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeaderCase(Vec<(HeaderName, Bytes)>);

/// Whether `raw` is `name` (lower case) in Title-Case: a capital at the start and after each
/// `-`, lower case elsewhere.
fn is_title_case(raw: &[u8]) -> bool {
    let mut start = true;
    raw.iter().all(|&b| {
        let ok = if start {
            !b.is_ascii_lowercase()
        } else {
            !b.is_ascii_uppercase()
        };
        start = b == b'-';
        ok
    })
}

/// The headers nginx writes from its own fields: their spelling is nginx's, never the
/// upstream's.
fn nginx_owned(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "server"
            | "date"
            | "content-length"
            | "content-type"
            | "connection"
            | "transfer-encoding"
            | "location"
            | "last-modified"
            | "etag"
            | "keep-alive"
            | "accept-ranges"
            | "www-authenticate"
            | "expires"
            | "cache-control"
            | "content-encoding"
            | "content-range"
            | "refresh"
            | "vary"
    )
}

/// Names whose usual spelling is not Title-Case.
fn irregular(name: &HeaderName) -> Option<&'static [u8]> {
    Some(match name.as_str() {
        "etag" => b"ETag",
        "www-authenticate" => b"WWW-Authenticate",
        "te" => b"TE",
        "content-md5" => b"Content-MD5",
        _ => return None,
    })
}

impl HeaderCase {
    /// Records `raw` as the spelling of `name` when it is not Title-Case. `response`: headers
    /// nginx writes itself are not recorded (they keep nginx's spelling).
    pub fn note(
        list: &mut Option<HeaderCase>,
        name: &HeaderName,
        raw: &[u8],
        copy: impl FnOnce() -> Option<Bytes>,
        response: bool,
    ) {
        if is_title_case(raw) || (response && nginx_owned(name)) {
            return;
        }
        let Some(raw) = copy() else {
            return;
        };
        let case = list.get_or_insert_with(HeaderCase::default);
        if !case.0.iter().any(|(n, _)| n == name) {
            case.0.push((name.clone(), raw));
        }
    }

    /// The spellings of configured names (`add_header`): every one that is not Title-Case.
    pub fn of_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<HeaderCase> {
        let mut case = None;
        for raw in names {
            if let Ok(name) = HeaderName::from_bytes(raw.as_bytes()) {
                let copy = || Some(Bytes::copy_from_slice(raw.as_bytes()));
                HeaderCase::note(&mut case, &name, raw.as_bytes(), copy, false);
            }
        }
        case
    }

    /// Adds `other`'s spellings of names this one has none for.
    pub fn merge(&mut self, other: &HeaderCase) {
        for (name, raw) in &other.0 {
            if !self.0.iter().any(|(n, _)| n == name) {
                self.0.push((name.clone(), raw.clone()));
            }
        }
    }

    fn spelling(&self, name: &HeaderName) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, raw)| &raw[..])
    }
}

/// Appends `name` as it goes on the wire: its recorded spelling, else nginx's usual one, else
/// Title-Case.
fn put_name(out: &mut Vec<u8>, case: Option<&HeaderCase>, name: &HeaderName) {
    if let Some(spelled) = case
        .and_then(|c| c.spelling(name))
        .or_else(|| irregular(name))
    {
        out.extend_from_slice(spelled);
        return;
    }
    let mut start = true;
    for &b in name.as_str().as_bytes() {
        out.push(if start { b.to_ascii_uppercase() } else { b });
        start = b == b'-';
    }
}

/// Appends `name: value\r\n` with the name spelled as described above.
pub(crate) fn put_header(
    out: &mut Vec<u8>,
    case: Option<&HeaderCase>,
    name: &HeaderName,
    value: &[u8],
) {
    put_name(out, case, name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spelled(case: Option<&HeaderCase>, name: &HeaderName) -> String {
        let mut out = Vec::new();
        put_name(&mut out, case, name);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn spellings_come_back_and_nginx_names_win() {
        let mut case = None;
        let mut note = |name: &HeaderName, raw: &'static [u8], response: bool| {
            HeaderCase::note(
                &mut case,
                name,
                raw,
                || Some(Bytes::from_static(raw)),
                response,
            )
        };
        let port = HeaderName::from_static("x-port");
        let lower = HeaderName::from_static("x-lower");
        let xss = HeaderName::from_static("x-xss-protection");
        note(&port, b"X-Port", true);
        note(&http::header::CONTENT_TYPE, b"content-TYPE", true);
        note(&lower, b"x-lower", true);
        note(&xss, b"X-XSS-Protection", true);
        let case = case.unwrap();
        // Title-Case is not even recorded; nginx's own headers are not either.
        assert_eq!(case.0.len(), 2);
        assert_eq!(spelled(Some(&case), &port), "X-Port");
        assert_eq!(
            spelled(Some(&case), &http::header::CONTENT_TYPE),
            "Content-Type"
        );
        assert_eq!(spelled(Some(&case), &lower), "x-lower");
        assert_eq!(spelled(Some(&case), &xss), "X-XSS-Protection");
        assert_eq!(spelled(None, &http::header::ETAG), "ETag");
        assert_eq!(spelled(None, &http::header::USER_AGENT), "User-Agent");
    }

    #[test]
    fn title_case_is_recognised() {
        assert!(is_title_case(b"Content-Type"));
        assert!(is_title_case(b"X-Port"));
        assert!(!is_title_case(b"content-type"));
        assert!(!is_title_case(b"X-XSS-Protection"));
        assert!(!is_title_case(b"ETag"));
    }
}
