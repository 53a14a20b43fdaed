//! nginx's `expires` (`ngx_http_set_expires`): `Expires` and `Cache-Control` on responses
//! with status 200, 201, 204, 206, 301, 302, 303, 304, 307 or 308. An upstream's own
//! `Expires` and `Cache-Control` are replaced.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use halo_config::gzip::Expires;
use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;

/// Sets the headers for `expires` on a response of `status`.
pub(crate) fn apply(expires: Expires, status: StatusCode, headers: &mut HeaderMap) {
    if !matches!(
        status.as_u16(),
        200 | 201 | 204 | 206 | 301 | 302 | 303 | 304 | 307 | 308
    ) {
        return;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let (expires_at, cache_control): (i64, Option<i64>) = match expires {
        Expires::Off => return,
        Expires::Epoch => (1, None),
        Expires::Max => {
            set(
                headers,
                HeaderValue::from_static("Thu, 31 Dec 2037 23:55:55 GMT"),
                HeaderValue::from_static("max-age=315360000"),
            );
            return;
        }
        Expires::Access(0) | Expires::Modified(0) => (now, Some(0)),
        Expires::Access(seconds) => (now.saturating_add(seconds), Some(seconds)),
        Expires::Modified(seconds) => {
            let modified = headers
                .get(header::LAST_MODIFIED)
                .and_then(|v| crate::static_files::parse_http_time(v.as_bytes()));
            match modified {
                // Without a Last-Modified nginx counts from the request, as `expires TIME`.
                None => (now.saturating_add(seconds), Some(seconds)),
                Some(modified) => {
                    let at = modified.saturating_add(seconds);
                    (at, Some(at.saturating_sub(now)))
                }
            }
        }
        Expires::Daily(of_day) => {
            let at = next_time_of_day(now, of_day, crate::access_log::local_utc_offset());
            (at, Some(at - now))
        }
    };
    let negative = matches!(expires, Expires::Access(s) | Expires::Modified(s) if s < 0);
    let cache_control = match cache_control {
        Some(age) if age >= 0 && !negative => HeaderValue::from_str(&format!("max-age={age}"))
            .unwrap_or(HeaderValue::from_static("no-cache")),
        _ => HeaderValue::from_static("no-cache"),
    };
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(expires_at).unwrap_or(0));
    let date = HeaderValue::from_str(&httpdate::fmt_http_date(at))
        .unwrap_or(HeaderValue::from_static("Thu, 01 Jan 1970 00:00:01 GMT"));
    set(headers, date, cache_control);
}

/// nginx replaces the first `Expires` and `Cache-Control` lines and drops the others.
fn set(headers: &mut HeaderMap, expires: HeaderValue, cache_control: HeaderValue) {
    headers.insert(header::EXPIRES, expires);
    headers.insert(header::CACHE_CONTROL, cache_control);
}

/// `ngx_next_time`: the next moment (after `now`) at `of_day` seconds past local midnight,
/// in a zone `offset` seconds east of UTC.
fn next_time_of_day(now: i64, of_day: i64, offset: i32) -> i64 {
    let local = now + i64::from(offset);
    let midnight = local - local.rem_euclid(86_400);
    let at = midnight + of_day - i64::from(offset);
    if at > now {
        at
    } else {
        at + 86_400
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn headers_for(expires: Expires, status: u16, last_modified: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(lm) = last_modified {
            headers.insert(header::LAST_MODIFIED, HeaderValue::from_str(lm).unwrap());
        }
        apply(expires, StatusCode::from_u16(status).unwrap(), &mut headers);
        headers
    }

    #[test]
    fn fixed_values_as_nginx_sends_them() {
        let h = headers_for(Expires::Epoch, 200, None);
        assert_eq!(h[header::EXPIRES], "Thu, 01 Jan 1970 00:00:01 GMT");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        let h = headers_for(Expires::Max, 304, None);
        assert_eq!(h[header::EXPIRES], "Thu, 31 Dec 2037 23:55:55 GMT");
        assert_eq!(h[header::CACHE_CONTROL], "max-age=315360000");
        assert_eq!(
            headers_for(Expires::Access(60), 200, None)[header::CACHE_CONTROL],
            "max-age=60"
        );
        assert_eq!(
            headers_for(Expires::Access(0), 200, None)[header::CACHE_CONTROL],
            "max-age=0"
        );
        assert_eq!(
            headers_for(Expires::Access(-1), 200, None)[header::CACHE_CONTROL],
            "no-cache"
        );
        // `modified` in the past: the date, and no-cache.
        let h = headers_for(
            Expires::Modified(3600),
            200,
            Some("Tue, 14 Nov 2023 22:13:20 GMT"),
        );
        assert_eq!(h[header::EXPIRES], "Tue, 14 Nov 2023 23:13:20 GMT");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
    }

    #[test]
    fn only_on_the_statuses_nginx_names() {
        for status in [400, 404, 500, 202] {
            assert!(headers_for(Expires::Access(60), status, None).is_empty());
        }
        for status in [201, 204, 206, 301, 302, 303, 307, 308] {
            assert_eq!(headers_for(Expires::Access(60), status, None).len(), 2);
        }
    }

    #[test]
    fn time_of_day_is_the_next_one() {
        // 2023-11-14 22:13:20 UTC.
        let now = 1_700_000_000;
        assert_eq!(
            next_time_of_day(now, 23 * 3600, 0),
            1_699_920_000 + 23 * 3600
        );
        assert_eq!(next_time_of_day(now, 3600, 0), 1_700_006_400 + 3600);
        // At UTC+1 it is 23:13:20: 23:30 local is 22:30 UTC today.
        assert_eq!(
            next_time_of_day(now, 23 * 3600 + 1800, 3600),
            1_699_920_000 + 22 * 3600 + 1800
        );
    }
}
