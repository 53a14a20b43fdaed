//! Response compression and expiry: nginx's gzip filter (`gzip*`, with the core module's
//! `gzip_vary`, `gzip_proxied`, `gzip_http_version`, `gzip_disable`), `gzip_static`, and the
//! headers filter's `expires`.
//!
//! At http, server and location level; a level without its own value takes the outer one
//! (`location` over `server` over `http`). The nginx importer resolves nginx's per-directive
//! inheritance and writes the resulting settings at each level that has any.

use serde::{Deserialize, Serialize};

/// nginx's gzip settings of one level.
///
/// TOML: `gzip = { enable = true, types = ["text/css"], min_length = 256, comp_level = 5,
/// vary = true, proxied = ["any"], disable = ["msie6"], static = "on" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Gzip {
    /// Compress responses (nginx `gzip`, off).
    pub enable: bool,
    /// Content types compressed besides `text/html`, which always is (nginx `gzip_types`);
    /// `"*"` = every type.
    pub types: Vec<String>,
    /// Responses whose Content-Length is below this are sent as they are (nginx
    /// `gzip_min_length`, 20). A response of unknown length is compressed.
    pub min_length: u64,
    /// zlib level 1..=9 (nginx `gzip_comp_level`, 1).
    pub comp_level: u32,
    /// Add `Vary: Accept-Encoding` to responses that qualify for compression, compressed or not
    /// (nginx `gzip_vary`, off).
    pub vary: bool,
    /// Which responses to requests with a `Via` header (requests from proxies) are compressed
    /// (nginx `gzip_proxied`, off).
    pub proxied: Vec<GzipProxied>,
    /// Lowest request HTTP version compressed for (nginx `gzip_http_version`, 1.1).
    pub http_version: GzipHttpVersion,
    /// User-Agent regular expressions (case-insensitive) not compressed for; `msie6` is
    /// nginx's test for MSIE 4 to 6 (nginx `gzip_disable`).
    pub disable: Vec<String>,
    /// Serve `FILE.gz` for `FILE` when the client accepts gzip (nginx `gzip_static`, off).
    #[serde(rename = "static")]
    pub static_files: GzipStatic,
}

impl Default for Gzip {
    fn default() -> Self {
        Gzip {
            enable: false,
            types: Vec::new(),
            min_length: 20,
            comp_level: 1,
            vary: false,
            proxied: Vec::new(),
            http_version: GzipHttpVersion::Http11,
            disable: Vec::new(),
            static_files: GzipStatic::Off,
        }
    }
}

impl Gzip {
    /// Whether these settings can change any response (compression, `gzip_static`, or Vary).
    pub fn is_active(&self) -> bool {
        self.enable || self.static_files != GzipStatic::Off
    }
}

/// One `gzip_proxied` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GzipProxied {
    #[serde(rename = "off")]
    Off,
    #[serde(rename = "expired")]
    Expired,
    #[serde(rename = "no-cache")]
    NoCache,
    #[serde(rename = "no-store")]
    NoStore,
    #[serde(rename = "private")]
    Private,
    #[serde(rename = "no_last_modified")]
    NoLastModified,
    #[serde(rename = "no_etag")]
    NoEtag,
    #[serde(rename = "auth")]
    Auth,
    #[serde(rename = "any")]
    Any,
}

impl GzipProxied {
    /// The parameter of nginx's spelling.
    pub fn parse(text: &str) -> Option<GzipProxied> {
        Some(match text {
            "off" => GzipProxied::Off,
            "expired" => GzipProxied::Expired,
            "no-cache" => GzipProxied::NoCache,
            "no-store" => GzipProxied::NoStore,
            "private" => GzipProxied::Private,
            "no_last_modified" => GzipProxied::NoLastModified,
            "no_etag" => GzipProxied::NoEtag,
            "auth" => GzipProxied::Auth,
            "any" => GzipProxied::Any,
            _ => return None,
        })
    }
}

/// `gzip_http_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GzipHttpVersion {
    #[serde(rename = "1.0")]
    Http10,
    #[serde(rename = "1.1")]
    Http11,
}

/// `gzip_static`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GzipStatic {
    #[default]
    Off,
    /// `FILE.gz` when the request passes the gzip checks (Accept-Encoding, Via, version).
    On,
    /// `FILE.gz` whatever the client accepts.
    Always,
}

/// nginx's `expires`: `Expires` and `Cache-Control` on 200, 201, 204, 206, 301, 302, 303,
/// 304, 307 and 308 responses.
///
/// TOML: a string as nginx writes it: `"off"`, `"epoch"`, `"max"`, `"1h"`, `"-1"`,
/// `"modified 30d"`, `"@15h30m"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Expires {
    /// No headers (the default).
    #[default]
    Off,
    /// `Expires: Thu, 01 Jan 1970 00:00:01 GMT`, `Cache-Control: no-cache`.
    Epoch,
    /// `Expires: Thu, 31 Dec 2037 23:55:55 GMT`, `Cache-Control: max-age=315360000`.
    Max,
    /// Seconds after the request (negative: `Cache-Control: no-cache`).
    Access(i64),
    /// Seconds after the file's (or the upstream's) Last-Modified.
    Modified(i64),
    /// The next time of day, seconds after local midnight (`@15h30m`).
    Daily(i64),
}

impl Expires {
    /// nginx's arguments: `[modified] TIME|epoch|max|off`, TIME may start with `-`, `+` or `@`.
    pub fn parse(args: &[&str]) -> Result<Expires, &'static str> {
        let (modified, value) = match args {
            [value] => (false, *value),
            ["modified", value] => (true, *value),
            [_, _] => return Err("invalid value"),
            _ => return Err("invalid number of arguments"),
        };
        if !modified {
            match value {
                "epoch" => return Ok(Expires::Epoch),
                "max" => return Ok(Expires::Max),
                "off" => return Ok(Expires::Off),
                _ => {}
            }
        }
        let (daily, minus, time) = if let Some(rest) = value.strip_prefix('@') {
            if modified {
                return Err("daily time cannot be used with \"modified\" parameter");
            }
            (true, false, rest)
        } else if let Some(rest) = value.strip_prefix('+') {
            (false, false, rest)
        } else if let Some(rest) = value.strip_prefix('-') {
            (false, true, rest)
        } else {
            (false, false, value)
        };
        let seconds = parse_seconds(time).ok_or("invalid value")?;
        if daily {
            if seconds > 24 * 60 * 60 {
                return Err("daily time value must be less than 24 hours");
            }
            return Ok(Expires::Daily(seconds));
        }
        let seconds = if minus { -seconds } else { seconds };
        Ok(if modified {
            Expires::Modified(seconds)
        } else {
            Expires::Access(seconds)
        })
    }
}

impl TryFrom<String> for Expires {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let args: Vec<&str> = text.split_whitespace().collect();
        Expires::parse(&args).map_err(|e| format!("expires {text:?}: {e}"))
    }
}

impl From<Expires> for String {
    fn from(expires: Expires) -> String {
        match expires {
            Expires::Off => "off".to_owned(),
            Expires::Epoch => "epoch".to_owned(),
            Expires::Max => "max".to_owned(),
            Expires::Access(s) => s.to_string(),
            Expires::Modified(s) => format!("modified {s}"),
            Expires::Daily(s) => format!("@{s}"),
        }
    }
}

/// nginx's `ngx_parse_time` in seconds: `1y 2M 3w 4d 5h 6m 7s` (units in this order, each
/// at most once, spaces after a unit allowed), a bare number is seconds. `M` = 30 days,
/// `y` = 365 days.
pub fn parse_seconds(text: &str) -> Option<i64> {
    const UNITS: [(u8, i64); 7] = [
        (b'y', 365 * 86_400),
        (b'M', 30 * 86_400),
        (b'w', 7 * 86_400),
        (b'd', 86_400),
        (b'h', 3_600),
        (b'm', 60),
        (b's', 1),
    ];
    let bytes = text.as_bytes();
    let mut total: i64 = 0;
    let mut value: i64 = 0;
    let mut valid = false;
    let mut step = 0usize;
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        if c.is_ascii_digit() {
            value = value.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
            valid = true;
            i += 1;
            continue;
        }
        if c == b'm' && bytes.get(i + 1) == Some(&b's') {
            // Milliseconds are not a unit of a time in seconds.
            return None;
        }
        let unit = UNITS.iter().position(|(u, _)| *u == c)?;
        if unit < step {
            return None;
        }
        step = unit + 1;
        total = total.checked_add(value.checked_mul(UNITS[unit].1)?)?;
        value = 0;
        i += 1;
        while bytes.get(i) == Some(&b' ') {
            i += 1;
        }
    }
    if !valid {
        return None;
    }
    total.checked_add(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn times_read_as_ngx_parse_time() {
        assert_eq!(parse_seconds("30d"), Some(30 * 86_400));
        assert_eq!(parse_seconds("1h 30m"), Some(5_400));
        assert_eq!(parse_seconds("1h30m10"), Some(5_410));
        assert_eq!(parse_seconds("90"), Some(90));
        assert_eq!(parse_seconds("1M"), Some(30 * 86_400));
        assert_eq!(parse_seconds("1y"), Some(365 * 86_400));
        assert_eq!(parse_seconds("30m1h"), None);
        assert_eq!(parse_seconds("10ms"), None);
        assert_eq!(parse_seconds("h"), None);
        assert_eq!(parse_seconds(""), None);
        assert_eq!(parse_seconds("1x"), None);
    }

    #[test]
    fn expires_arguments_as_nginx() {
        assert_eq!(Expires::parse(&["max"]), Ok(Expires::Max));
        assert_eq!(Expires::parse(&["epoch"]), Ok(Expires::Epoch));
        assert_eq!(Expires::parse(&["off"]), Ok(Expires::Off));
        assert_eq!(Expires::parse(&["-1"]), Ok(Expires::Access(-1)));
        assert_eq!(Expires::parse(&["+1h"]), Ok(Expires::Access(3600)));
        assert_eq!(
            Expires::parse(&["modified", "1h"]),
            Ok(Expires::Modified(3600))
        );
        assert_eq!(Expires::parse(&["@15h30m"]), Ok(Expires::Daily(55_800)));
        assert!(Expires::parse(&["modified", "@1h"]).is_err());
        assert!(Expires::parse(&["@25h"]).is_err());
        assert!(Expires::parse(&["modified", "max"]).is_err());
        assert!(Expires::parse(&["access", "1h"]).is_err());
        for e in [
            Expires::Off,
            Expires::Epoch,
            Expires::Max,
            Expires::Access(-5),
            Expires::Modified(7),
            Expires::Daily(60),
        ] {
            assert_eq!(Expires::try_from(String::from(e)), Ok(e));
        }
    }
}
