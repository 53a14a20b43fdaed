//! Directory listings as nginx 1.22's autoindex module renders them
//! (`ngx_http_autoindex_module.c`): for a GET or HEAD of a URI ending in `/` whose directory
//! has no index file. Names starting with `.` are left out; directories come first, then
//! byte order of the names; html, json and xml formats.

use std::os::unix::ffi::OsStringExt as _;
use std::path::Path;
use std::time::UNIX_EPOCH;

use halo_config::content::{Autoindex, AutoindexFormat};
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use time::OffsetDateTime;

use crate::body::ResponseBody;

/// nginx's `NGX_HTTP_AUTOINDEX_NAME_LEN`: the width of the name column in html.
const NAME_LEN: usize = 50;

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The file name's bytes, as the directory holds them.
    pub name: Vec<u8>,
    pub dir: bool,
    /// Neither a directory nor a regular file (after following links).
    pub other: bool,
    /// Seconds since the epoch.
    pub mtime: i64,
    pub size: u64,
}

/// The listing of `dir` for `uri`, or the status nginx answers when the directory cannot
/// be read (404 when missing, 403 when not permitted, 500 otherwise).
pub(crate) async fn answer(
    dir: &Path,
    uri: &str,
    args: Option<&str>,
    settings: &Autoindex,
) -> Result<Response<ResponseBody>, StatusCode> {
    // nginx checks the callback name before reading the directory (400 when invalid).
    let callback = match settings.format {
        AutoindexFormat::Jsonp => jsonp_callback(args)?,
        _ => None,
    };
    let entries = read_entries(dir).await?;
    let (body, kind) = match settings.format {
        AutoindexFormat::Jsonp => match callback {
            Some(name) => {
                let mut body = format!("/* callback */\r\n{name}(").into_bytes();
                body.extend(json(&entries));
                body.extend_from_slice(b");");
                (body, "application/javascript")
            }
            None => (json(&entries), "application/json"),
        },
        AutoindexFormat::Html => (
            html(uri, &entries, settings, local_offset(settings)),
            "text/html",
        ),
        AutoindexFormat::Json => (json(&entries), "application/json"),
        AutoindexFormat::Xml => (
            xml(&entries, local_offset(settings)),
            "text/xml; charset=utf-8",
        ),
    };
    let mut response = Response::new(ResponseBody::full(body));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    Ok(response)
}

/// The `callback` argument of a jsonp listing: `None` when absent or empty, 400 when longer
/// than 50 bytes or not made of letters, digits, `_` and `.` (nginx's
/// `ngx_http_autoindex_jsonp_callback`).
fn jsonp_callback(args: Option<&str>) -> Result<Option<String>, StatusCode> {
    let value = args
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("callback="))
        .unwrap_or("");
    if value.is_empty() {
        return Ok(None);
    }
    let valid = value.len() <= NAME_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    if !valid {
        return Err(StatusCode::BAD_REQUEST);
    }
    Ok(Some(value.to_owned()))
}

/// The offset added to times with `autoindex_localtime on` (seconds).
fn local_offset(settings: &Autoindex) -> i64 {
    if !settings.localtime {
        return 0;
    }
    time::UtcOffset::current_local_offset()
        .map(|o| i64::from(o.whole_seconds()))
        .unwrap_or(0)
}

async fn read_entries(dir: &Path) -> Result<Vec<Entry>, StatusCode> {
    let mut read = match tokio::fs::read_dir(dir).await {
        Ok(read) => read,
        Err(e) => {
            return Err(match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => {
                    StatusCode::NOT_FOUND
                }
                std::io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            })
        }
    };
    let mut entries = Vec::new();
    loop {
        let item = match read.next_entry().await {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(_) => return Err(StatusCode::INTERNAL_SERVER_ERROR),
        };
        let name = item.file_name().into_vec();
        if name.starts_with(b".") {
            continue;
        }
        // nginx stats each entry (following links); one that vanished or loops is skipped.
        let Ok(meta) = tokio::fs::metadata(item.path()).await else {
            continue;
        };
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        entries.push(Entry {
            name,
            dir: meta.is_dir(),
            other: !meta.is_dir() && !meta.is_file(),
            mtime,
            size: meta.len(),
        });
    }
    sort(&mut entries);
    Ok(entries)
}

/// nginx's order: directories first, then by the bytes of the name.
pub(crate) fn sort(entries: &mut [Entry]) {
    entries.sort_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.name.cmp(&b.name)));
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `02-Dec-2026 11:21` (nginx's html date column).
fn short_date(secs: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let month = MONTHS
        .get(usize::from(u8::from(t.month())).saturating_sub(1))
        .copied()
        .unwrap_or("Jan");
    format!(
        "{:02}-{month}-{} {:02}:{:02}",
        t.day(),
        t.year(),
        t.hour(),
        t.minute()
    )
}

/// `Wed, 02 Dec 2026 11:21:19 GMT` (nginx's `ngx_http_time`).
fn http_time(secs: i64) -> String {
    let when = u64::try_from(secs).map_or(UNIX_EPOCH, |s| {
        UNIX_EPOCH + std::time::Duration::from_secs(s)
    });
    httpdate::fmt_http_date(when)
}

/// nginx's `ngx_escape_html`.
fn escape_html(text: &[u8], out: &mut Vec<u8>) {
    for &b in text {
        match b {
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            b => out.push(b),
        }
    }
}

/// nginx's `ngx_escape_uri(..., NGX_ESCAPE_URI_COMPONENT)`: all but letters, digits and
/// `-._~` as `%XX`.
fn escape_uri_component(text: &[u8], out: &mut Vec<u8>) {
    for &b in text {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
}

/// nginx's `ngx_escape_json`.
fn escape_json(text: &[u8], out: &mut Vec<u8>) {
    for &b in text {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b if b < 0x20 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            b => out.push(b),
        }
    }
}

/// The size column without `autoindex_exact_size`: bytes up to 9999, else K, M or G
/// rounded to the nearest.
fn rounded_size(length: u64) -> String {
    const K: u64 = 1024;
    let scaled = |unit: u64| length / unit + u64::from(length % unit > unit / 2 - 1);
    if length > K * K * K - 1 {
        format!("{:6}G", scaled(K * K * K))
    } else if length > K * K - 1 {
        format!("{:6}M", scaled(K * K))
    } else if length > 9999 {
        format!("{:6}K", scaled(K))
    } else {
        format!(" {length:6}")
    }
}

/// The html listing. Names are measured and cut in bytes, as nginx does unless the charset
/// module marked the response UTF-8.
pub(crate) fn html(uri: &str, entries: &[Entry], settings: &Autoindex, offset: i64) -> Vec<u8> {
    let mut out = b"<html>\r\n<head><title>Index of ".to_vec();
    escape_html(uri.as_bytes(), &mut out);
    out.extend_from_slice(b"</title></head>\r\n<body>\r\n<h1>Index of ");
    escape_html(uri.as_bytes(), &mut out);
    out.extend_from_slice(b"</h1><hr><pre><a href=\"../\">../</a>\r\n");
    for e in entries {
        out.extend_from_slice(b"<a href=\"");
        escape_uri_component(&e.name, &mut out);
        if e.dir {
            out.push(b'/');
        }
        out.extend_from_slice(b"\">");
        let len = e.name.len();
        if len > NAME_LEN {
            escape_html(e.name.get(..NAME_LEN - 3).unwrap_or_default(), &mut out);
            out.extend_from_slice(b"..&gt;</a>");
        } else {
            escape_html(&e.name, &mut out);
            let mut len = len;
            if e.dir && NAME_LEN > len {
                out.push(b'/');
                len += 1;
            }
            out.extend_from_slice(b"</a>");
            out.extend(std::iter::repeat_n(b' ', NAME_LEN.saturating_sub(len)));
        }
        out.push(b' ');
        out.extend_from_slice(short_date(e.mtime + offset).as_bytes());
        out.push(b' ');
        let size = if settings.exact_size {
            if e.dir {
                "                  -".to_owned()
            } else {
                format!("{:19}", e.size)
            }
        } else if e.dir {
            "      -".to_owned()
        } else {
            rounded_size(e.size)
        };
        out.extend_from_slice(size.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"</pre><hr></body>\r\n</html>\r\n");
    out
}

pub(crate) fn json(entries: &[Entry]) -> Vec<u8> {
    let mut out = b"[".to_vec();
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"\r\n{ \"name\":\"");
        escape_json(&e.name, &mut out);
        out.extend_from_slice(b"\", \"type\":\"");
        out.extend_from_slice(kind(e).as_bytes());
        out.extend_from_slice(b"\", \"mtime\":\"");
        out.extend_from_slice(http_time(e.mtime).as_bytes());
        if e.dir || e.other {
            out.push(b'"');
        } else {
            out.extend_from_slice(format!("\", \"size\":{}", e.size).as_bytes());
        }
        out.extend_from_slice(b" }");
    }
    out.extend_from_slice(b"\r\n]");
    out
}

fn kind(e: &Entry) -> &'static str {
    if e.dir {
        "directory"
    } else if e.other {
        "other"
    } else {
        "file"
    }
}

pub(crate) fn xml(entries: &[Entry], offset: i64) -> Vec<u8> {
    let mut out = b"<?xml version=\"1.0\"?>\r\n<list>\r\n".to_vec();
    for e in entries {
        let t = OffsetDateTime::from_unix_timestamp(e.mtime + offset)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let mut open = format!(
            "<{} mtime=\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z\"",
            kind(e),
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        if !e.dir && !e.other {
            open.push_str(&format!(" size=\"{}\"", e.size));
        }
        open.push('>');
        out.extend_from_slice(open.as_bytes());
        escape_html(&e.name, &mut out);
        out.extend_from_slice(format!("</{}>\r\n", kind(e)).as_bytes());
    }
    out.extend_from_slice(b"</list>\r\n");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn entry(name: &str, dir: bool, size: u64) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            dir,
            other: false,
            mtime: 1_700_000_000,
            size,
        }
    }

    #[test]
    fn directories_first_then_bytes_of_names() {
        let mut list = vec![
            entry("b", false, 1),
            entry("Z", true, 0),
            entry("a", true, 0),
            entry("B", false, 1),
        ];
        sort(&mut list);
        let names: Vec<&[u8]> = list.iter().map(|e| e.name.as_slice()).collect();
        assert_eq!(names, [&b"Z"[..], b"a", b"B", b"b"]);
    }

    #[test]
    fn html_rows_as_nginx_pads_them() {
        let list = vec![entry("dir", true, 4096), entry("f&1", false, 12345)];
        let page = String::from_utf8(html("/x/", &list, &Autoindex::default(), 0)).unwrap();
        let row = |link: &str, shown: usize, size: &str| {
            format!(
                "{link}{} 14-Nov-2023 22:13 {size:>19}\r\n",
                " ".repeat(50 - shown)
            )
        };
        assert!(page.contains(&row("<a href=\"dir/\">dir/</a>", 4, "-")));
        assert!(page.contains(&row("<a href=\"f%261\">f&amp;1</a>", 3, "12345")));
        let rounded = Autoindex {
            exact_size: false,
            ..Autoindex::default()
        };
        let page = String::from_utf8(html("/x/", &list, &rounded, 0)).unwrap();
        assert!(page.contains(" 14-Nov-2023 22:13     12K\r\n"), "{page}");
        let long = "x".repeat(60);
        let page = String::from_utf8(html(
            "/",
            &[entry(&long, false, 1)],
            &Autoindex::default(),
            0,
        ))
        .unwrap();
        assert!(page.contains(&format!(">{}..&gt;</a> 14-Nov", "x".repeat(47))));
    }

    #[test]
    fn jsonp_callbacks_as_nginx_checks_them() {
        assert_eq!(
            jsonp_callback(Some("a=1&callback=foo.bar_1")),
            Ok(Some("foo.bar_1".into()))
        );
        assert_eq!(jsonp_callback(Some("callback=")), Ok(None));
        assert_eq!(jsonp_callback(None), Ok(None));
        assert_eq!(
            jsonp_callback(Some("callback=a(b")),
            Err(StatusCode::BAD_REQUEST)
        );
    }

    #[test]
    fn rounded_sizes() {
        assert_eq!(rounded_size(9999), "   9999");
        assert_eq!(rounded_size(10000), "    10K");
        assert_eq!(rounded_size(10 * 1024 + 512), "    11K");
        assert_eq!(rounded_size(3 * 1024 * 1024), "     3M");
        assert_eq!(rounded_size(5 * 1024 * 1024 * 1024), "     5G");
    }

    #[test]
    fn json_entries() {
        let list = vec![entry("d", true, 0), entry("a\"b", false, 7)];
        assert_eq!(
            String::from_utf8(json(&list)).unwrap(),
            "[\r\n{ \"name\":\"d\", \"type\":\"directory\", \"mtime\":\"Tue, 14 Nov 2023 22:13:20 GMT\" },\r\n{ \"name\":\"a\\\"b\", \"type\":\"file\", \"mtime\":\"Tue, 14 Nov 2023 22:13:20 GMT\", \"size\":7 }\r\n]"
        );
    }
}
