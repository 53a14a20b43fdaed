//! Header names as they were written. `http::HeaderMap` keeps names in lower case; nginx and
//! HAProxy pass an upstream's header names as the upstream spelled them (`X-Port`, not
//! `x-port`), and clients and test suites match them byte for byte. The spellings that are not
//! all lower case ride along with the headers in a [`HeaderCase`] extension: parsed heads record
//! them (from the same single copy of the head, so no name is copied), and the encoders write
//! them back. Headers halo itself produces are spelled the way nginx writes them (`Server`,
//! `Date`, `Content-Length`, ...).

use bytes::Bytes;
use http::header::{self, HeaderName};

/// The original spellings of header names that had upper-case letters, in arrival order.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeaderCase(Vec<(HeaderName, Bytes)>);

impl HeaderCase {
    /// Records `raw` as the spelling of `name` when it is not already lower case.
    pub fn note(list: &mut Option<HeaderCase>, name: &HeaderName, raw: Bytes) {
        if raw.iter().any(u8::is_ascii_uppercase) {
            let case = list.get_or_insert_with(HeaderCase::default);
            if !case.0.iter().any(|(n, _)| n == name) {
                case.0.push((name.clone(), raw));
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

/// nginx's spelling of the headers it writes itself, from its own fields (so whatever case an
/// upstream used, these come out like this).
fn nginx_spelling(name: &HeaderName) -> Option<&'static [u8]> {
    Some(match *name {
        header::SERVER => b"Server",
        header::DATE => b"Date",
        header::CONTENT_LENGTH => b"Content-Length",
        header::CONTENT_TYPE => b"Content-Type",
        header::CONNECTION => b"Connection",
        header::TRANSFER_ENCODING => b"Transfer-Encoding",
        header::LOCATION => b"Location",
        header::LAST_MODIFIED => b"Last-Modified",
        header::ETAG => b"ETag",
        header::ACCEPT_RANGES => b"Accept-Ranges",
        header::WWW_AUTHENTICATE => b"WWW-Authenticate",
        header::EXPIRES => b"Expires",
        header::CACHE_CONTROL => b"Cache-Control",
        header::CONTENT_ENCODING => b"Content-Encoding",
        header::CONTENT_RANGE => b"Content-Range",
        header::REFRESH => b"Refresh",
        header::VARY => b"Vary",
        header::HOST => b"Host",
        header::UPGRADE => b"Upgrade",
        _ => return None,
    })
}

/// How a response header's name goes on the wire: nginx's spelling for the headers nginx
/// writes itself, else the spelling it arrived with, else lower case.
pub(crate) fn response_name<'a>(case: Option<&'a HeaderCase>, name: &'a HeaderName) -> &'a [u8] {
    nginx_spelling(name)
        .or_else(|| case.and_then(|c| c.spelling(name)))
        .unwrap_or(name.as_str().as_bytes())
}

/// How a client's request header goes to the upstream: as the client spelled it.
pub(crate) fn request_name<'a>(case: Option<&'a HeaderCase>, name: &'a HeaderName) -> &'a [u8] {
    case.and_then(|c| c.spelling(name))
        .unwrap_or(name.as_str().as_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn spellings_come_back_and_nginx_names_win() {
        let mut case = None;
        let port = HeaderName::from_static("x-port");
        HeaderCase::note(&mut case, &port, Bytes::from_static(b"X-Port"));
        HeaderCase::note(
            &mut case,
            &header::CONTENT_TYPE,
            Bytes::from_static(b"content-TYPE"),
        );
        let lower = HeaderName::from_static("x-lower");
        HeaderCase::note(&mut case, &lower, Bytes::from_static(b"x-lower"));
        let case = case.unwrap();
        assert_eq!(response_name(Some(&case), &port), b"X-Port");
        assert_eq!(
            response_name(Some(&case), &header::CONTENT_TYPE),
            b"Content-Type"
        );
        assert_eq!(response_name(Some(&case), &lower), b"x-lower");
        assert_eq!(request_name(Some(&case), &port), b"X-Port");
        assert_eq!(request_name(None, &header::USER_AGENT), b"user-agent");
    }
}
