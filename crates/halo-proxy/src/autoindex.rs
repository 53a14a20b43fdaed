//! Directory listings as nginx 1.22's autoindex module renders them
//! (`ngx_http_autoindex_module.c`): for a GET or HEAD of a URI ending in `/` whose directory
//! has no index file. Names starting with `.` are left out; directories come first, then
//! byte order of the names; html, json and xml formats.

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
    pub name: String,
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
            Some(name) => (
                format!("{name}({});", json(&entries)),
                "application/javascript",
            ),
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
        let name = item.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
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
    entries.sort_by(|a, b| {
        b.dir
            .cmp(&a.dir)
            .then_with(|| a.name.as_bytes().cmp(b.name.as_bytes()))
    });
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
fn escape_html(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// nginx's `ngx_escape_uri(..., NGX_ESCAPE_URI_COMPONENT)`: all but letters, digits and
/// `-._~` as `%XX`.
fn escape_uri_component(text: &str, out: &mut String) {
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// nginx's `ngx_escape_json`.
fn escape_json(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
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

pub(crate) fn html(uri: &str, entries: &[Entry], settings: &Autoindex, offset: i64) -> String {
    let mut out = String::from("<html>\r\n<head><title>Index of ");
    escape_html(uri, &mut out);
    out.push_str("</title></head>\r\n<body>\r\n<h1>Index of ");
    escape_html(uri, &mut out);
    out.push_str("</h1><hr><pre><a href=\"../\">../</a>\r\n");
    for e in entries {
        out.push_str("<a href=\"");
        escape_uri_component(&e.name, &mut out);
        if e.dir {
            out.push('/');
        }
        out.push_str("\">");
        let chars = e.name.chars().count();
        if chars > NAME_LEN {
            let head: String = e.name.chars().take(NAME_LEN - 3).collect();
            escape_html(&head, &mut out);
            out.push_str("..&gt;</a>");
        } else {
            escape_html(&e.name, &mut out);
            let mut len = chars;
            if e.dir && NAME_LEN > len {
                out.push('/');
                len += 1;
            }
            out.push_str("</a>");
            out.push_str(&" ".repeat(NAME_LEN.saturating_sub(len)));
        }
        out.push(' ');
        out.push_str(&short_date(e.mtime + offset));
        out.push(' ');
        if settings.exact_size {
            if e.dir {
                out.push_str("                  -");
            } else {
                out.push_str(&format!("{:19}", e.size));
            }
        } else if e.dir {
            out.push_str("      -");
        } else {
            out.push_str(&rounded_size(e.size));
        }
        out.push_str("\r\n");
    }
    out.push_str("</pre><hr></body>\r\n</html>\r\n");
    out
}

pub(crate) fn json(entries: &[Entry]) -> String {
    let mut out = String::from("[");
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("\r\n{ \"name\":\"");
        escape_json(&e.name, &mut out);
        out.push_str("\", \"type\":\"");
        out.push_str(kind(e));
        out.push_str("\", \"mtime\":\"");
        out.push_str(&http_time(e.mtime));
        if e.dir || e.other {
            out.push('"');
        } else {
            out.push_str(&format!("\", \"size\":{}", e.size));
        }
        out.push_str(" }");
    }
    out.push_str("\r\n]\r\n");
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

pub(crate) fn xml(entries: &[Entry], offset: i64) -> String {
    let mut out = String::from("<?xml version=\"1.0\"?>\r\n<list>\r\n");
    for e in entries {
        out.push('<');
        out.push_str(kind(e));
        let t = OffsetDateTime::from_unix_timestamp(e.mtime + offset)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        out.push_str(&format!(
            " mtime=\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z\"",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ));
        if !e.dir && !e.other {
            out.push_str(&format!(" size=\"{}\"", e.size));
        }
        out.push('>');
        escape_html(&e.name, &mut out);
        out.push_str("</");
        out.push_str(kind(e));
        out.push_str(">\r\n");
    }
    out.push_str("</list>\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, dir: bool, size: u64) -> Entry {
        Entry {
            name: name.to_owned(),
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
        let names: Vec<&str> = list.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["Z", "a", "B", "b"]);
    }

    #[test]
    fn html_rows_as_nginx_pads_them() {
        let list = vec![entry("dir", true, 4096), entry("f&1", false, 12345)];
        let page = html("/x/", &list, &Autoindex::default(), 0);
        assert!(page.contains(
            "<a href=\"dir/\">dir/</a>                                               14-Nov-2023 22:13                   -\r\n"
        ));
        assert!(page.contains(
            "<a href=\"f%261\">f&amp;1</a>                                              14-Nov-2023 22:13               12345\r\n"
        ));
        let rounded = Autoindex {
            exact_size: false,
            ..Autoindex::default()
        };
        let page = html("/x/", &list, &rounded, 0);
        assert!(page.contains(" 14-Nov-2023 22:13     12K\r\n"), "{page}");
        let long = "x".repeat(60);
        let page = html("/", &[entry(&long, false, 1)], &Autoindex::default(), 0);
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
            json(&list),
            "[\r\n{ \"name\":\"d\", \"type\":\"directory\", \"mtime\":\"Tue, 14 Nov 2023 22:13:20 GMT\" },\r\n{ \"name\":\"a\\\"b\", \"type\":\"file\", \"mtime\":\"Tue, 14 Nov 2023 22:13:20 GMT\", \"size\":7 }\r\n]\r\n"
        );
    }
}
