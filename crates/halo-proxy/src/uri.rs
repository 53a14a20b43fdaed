//! Request path normalisation before location matching, as nginx's `ngx_http_parse_complex_uri`:
//! percent-decoding, merging of repeated slashes (`merge_slashes on`), and `.`/`..` resolution.
//! A path that climbs above `/` is a 400 in nginx.

use std::borrow::Cow;

/// Why a path cannot be normalised (nginx answers 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadPath;

/// Returns the normalised, decoded path; borrows when the path needs no change (the common case).
pub(crate) fn normalize_path(path: &str) -> Result<Cow<'_, str>, BadPath> {
    if !path.starts_with('/') {
        // `*` (OPTIONS) and absolute-form were turned into paths by hyper; anything else is odd.
        return if path == "*" {
            Ok(Cow::Borrowed(path))
        } else {
            Err(BadPath)
        };
    }
    let simple = !path.contains('%') && !path.contains("//") && !path.contains("/.");
    if simple {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = percent_decode(path)?;
    let mut segments: Vec<&str> = Vec::new();
    let ends_with_slash =
        decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(BadPath);
                }
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if ends_with_slash || out.is_empty() {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

fn percent_decode(path: &str) -> Result<String, BadPath> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(BadPath)?;
            let text = std::str::from_utf8(hex).map_err(|_| BadPath)?;
            let value = u8::from_str_radix(text, 16).map_err(|_| BadPath)?;
            if value == 0 {
                return Err(BadPath);
            }
            out.push(value);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    // Non-UTF-8 paths are kept lossily for matching; nginx matches raw bytes.
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Percent-encodes what must not appear raw in a request target (for proxy_pass URI replacement).
pub(crate) fn encode_path(path: &str) -> Cow<'_, str> {
    let needs = |b: u8| {
        b <= b' '
            || b >= 0x7f
            || matches!(
                b,
                b'"' | b'#' | b'%' | b'?' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
            )
    };
    if !path.bytes().any(needs) {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len() + 8);
    for b in path.bytes() {
        if needs(b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn normalises_like_nginx() {
        assert_eq!(normalize_path("/a/b").unwrap(), "/a/b");
        assert_eq!(normalize_path("/a//b/./c/../d").unwrap(), "/a/b/d");
        assert_eq!(normalize_path("/a/%2e%2e/b").unwrap(), "/b");
        assert_eq!(normalize_path("/a/").unwrap(), "/a/");
        assert_eq!(normalize_path("/a/b/..").unwrap(), "/a/");
        assert_eq!(normalize_path("/%41").unwrap(), "/A");
        assert_eq!(normalize_path("/..").unwrap_err(), BadPath);
        assert_eq!(normalize_path("/%zz").unwrap_err(), BadPath);
        assert_eq!(normalize_path("/a%00").unwrap_err(), BadPath);
        assert_eq!(encode_path("/a b?"), "/a%20b%3F");
    }
}
