//! Static files against Debian's nginx: one nginx.conf, served by nginx and by halo in the same
//! test, the same requests to both (ETag and Last-Modified, conditional requests, byte ranges,
//! multipart/byteranges, If-Range); status, the validator and range headers, Content-Type and
//! Content-Length, and the bodies of 200 and 206 answers must agree.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, UNIX_EPOCH};

use common::*;

/// No `location /`: `/a.txt` is served with the server's root (halo's server-root path), and
/// `/alias/...` by a location (its location path).
const CONF: &str = r#"
events {}
http {
    root DIR/html;
    access_log off;
    types { text/plain txt; text/html html; application/octet-stream bin; }
    default_type application/x-halo-test;
    server {
        listen 127.0.0.1:PORT;
        server_name localhost;
        location /alias/ {
            alias DIR/html/;
        }
        location /dir/ {
        }
    }
}
"#;

/// The files' modification time: 2023-11-14 22:13:20 GMT.
const MTIME: u64 = 1_700_000_000;
const LM: &str = "Tue, 14 Nov 2023 22:13:20 GMT";
/// `"<mtime hex>-<size hex>"` of the 100-byte file.
const ETAG: &str = "\"6553f100-64\"";

/// What is compared of one answer.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    content_type: String,
    /// For multipart: whether the boundary is nginx's 20 digits.
    boundary: String,
    /// Only for 2xx and 304 (error pages name the server).
    content_length: String,
    content_range: String,
    etag: String,
    last_modified: String,
    accept_ranges: String,
    /// 200 and 206 only; multipart boundaries replaced by `BOUNDARY`.
    body: Vec<u8>,
}

impl Answer {
    fn show(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let body: String = body.chars().take(160).collect();
        format!(
            "{} type={:?}{} len={:?} range={:?} etag={:?} lm={:?} ar={:?} body({})={:?}",
            self.status,
            self.content_type,
            self.boundary,
            self.content_length,
            self.content_range,
            self.etag,
            self.last_modified,
            self.accept_ranges,
            self.body.len(),
            body
        )
    }
}

fn header(head: &str, name: &str) -> String {
    head.lines()
        .skip(1)
        .find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default()
}

fn ask(port: u16, method: &str, path: &str, headers: &str) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw.get(split + 4..).unwrap_or_default().to_vec();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut content_type = header(&head, "content-type");
    let mut boundary = String::new();
    if let Some((kind, b)) = content_type.split_once("; boundary=") {
        boundary = if b.len() == 20 && b.bytes().all(|c| c.is_ascii_digit()) {
            " (boundary: 20 digits)".to_owned()
        } else {
            format!(" (boundary: {b:?})")
        };
        body = replace(&body, b.as_bytes(), b"BOUNDARY");
        content_type = kind.to_owned();
    }
    if status != 200 && status != 206 {
        body.clear();
    }
    let content_length = if status < 400 {
        header(&head, "content-length")
    } else {
        String::new()
    };
    Answer {
        status,
        content_type,
        boundary,
        content_length,
        content_range: header(&head, "content-range"),
        etag: header(&head, "etag"),
        last_modified: header(&head, "last-modified"),
        accept_ranges: header(&head, "accept-ranges"),
        body,
    }
}

fn replace(haystack: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    while i < haystack.len() {
        if !from.is_empty() && haystack[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn static_files_answer_like_nginx() {
    let dir = Scratch::new("static-vs-nginx");
    let html = dir.path("html");
    std::fs::create_dir_all(html.join("dir")).unwrap();
    let text: Vec<u8> = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
        .iter()
        .cycle()
        .take(100)
        .copied()
        .collect();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let files: [(&str, &[u8]); 5] = [
        ("a.txt", &text),
        ("empty.txt", b""),
        ("big.bin", &big),
        ("noext", b"no extension here"),
        ("dir/index.html", b"<p>index of dir</p>\n"),
    ];
    for (name, data) in files {
        let path = html.join(name);
        std::fs::write(&path, data).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(UNIX_EPOCH + Duration::from_secs(MTIME))
            .unwrap();
    }
    let d = dir.0.display().to_string();
    let (nginx_port, halo_port) = (free_port(), free_port());
    let conf = |port: u16| CONF.replace("DIR", &d).replace("PORT", &port.to_string());
    dir.write("nginx.conf", &conf(nginx_port));
    dir.write("halo.conf", &conf(halo_port));
    let (_nginx, _halo) = spawn_nginx_and_halo(&dir);
    wait_port(nginx_port);
    wait_port(halo_port);

    let raw = |v: &str| format!("{v}\r\n");
    let inm = |v: &str| format!("If-None-Match: {v}\r\n");
    let ims = |v: &str| format!("If-Modified-Since: {v}\r\n");
    let im = |v: &str| format!("If-Match: {v}\r\n");
    let ius = |v: &str| format!("If-Unmodified-Since: {v}\r\n");
    let range = |v: &str| format!("Range: {v}\r\n");
    let if_range = |v: &str| format!("If-Range: {v}\r\n");
    let earlier = "Tue, 14 Nov 2023 22:13:19 GMT";
    let later = "Tue, 14 Nov 2023 22:13:21 GMT";
    let weak = format!("W/{ETAG}");
    let a = "/a.txt";
    let cases: Vec<(&str, &str, String)> = vec![
        // Plain answers: ETag, Last-Modified, Accept-Ranges, types.
        ("GET", a, String::new()),
        ("HEAD", a, String::new()),
        ("GET", "/empty.txt", String::new()),
        ("GET", "/big.bin", String::new()),
        ("GET", "/noext", String::new()),
        ("GET", "/dir/", String::new()),
        ("GET", "/alias/a.txt", String::new()),
        // If-None-Match: the ETag, weak, in a list, `*`, another.
        ("GET", a, inm(ETAG)),
        ("HEAD", a, inm(ETAG)),
        ("GET", a, inm(&weak)),
        ("GET", a, inm(&format!("\"x\", {ETAG}"))),
        ("GET", a, inm(&format!("\"x\",{weak} , \"y\""))),
        ("GET", a, inm("*")),
        ("GET", a, inm("\"x\"")),
        ("GET", a, inm(&format!("{ETAG}x"))),
        ("GET", "/alias/a.txt", inm(ETAG)),
        ("GET", "/dir/", inm("\"6553f100-14\"")),
        // If-Modified-Since: exact match only, in the three date formats.
        ("GET", a, ims(LM)),
        ("GET", a, ims(later)),
        ("GET", a, ims(earlier)),
        ("GET", a, ims("garbage")),
        ("GET", a, ims("Tuesday, 14-Nov-23 22:13:20 GMT")),
        ("GET", a, ims("Tue Nov 14 22:13:20 2023")),
        ("GET", a, ims("Sun, 14 Nov 2023 22:13:20 GMT")),
        ("GET", a, ims("Tue, 14 Nov 2023 22:13:20")),
        // Both: both must match.
        ("GET", a, ims(LM) + &inm(ETAG)),
        ("GET", a, ims(LM) + &inm("\"x\"")),
        ("GET", a, ims(later) + &inm(ETAG)),
        // If-Match (strong) and If-Unmodified-Since: 412.
        ("GET", a, im(ETAG)),
        ("GET", a, im("*")),
        ("GET", a, im("\"x\"")),
        ("GET", a, im(&weak)),
        ("GET", a, im(&format!("\"x\", {ETAG}"))),
        ("HEAD", a, im("\"x\"")),
        ("GET", a, ius(LM)),
        ("GET", a, ius(later)),
        ("GET", a, ius(earlier)),
        ("GET", a, ius("garbage")),
        // Precedence.
        ("GET", a, im("\"x\"") + &inm(ETAG)),
        ("GET", a, ius(earlier) + &ims(LM)),
        ("GET", a, ius(LM) + &inm(ETAG)),
        ("GET", a, im(ETAG) + &inm(ETAG)),
        ("GET", a, inm(ETAG) + &range("bytes=0-9")),
        ("GET", a, im("\"x\"") + &range("bytes=0-9")),
        ("GET", a, ims(earlier) + &range("bytes=0-9")),
        // Single ranges.
        ("GET", a, range("bytes=0-9")),
        ("HEAD", a, range("bytes=0-9")),
        ("GET", a, range("bytes=10-")),
        ("GET", a, range("bytes=-20")),
        ("GET", a, range("bytes=-200")),
        ("GET", a, range("bytes=50-1000")),
        ("GET", a, range("bytes=99-99")),
        ("GET", a, range("BYTES=0-5")),
        ("GET", a, range("bytes= 1 - 3 ")),
        ("GET", a, range("bytes=200-300,0-1")),
        ("GET", "/big.bin", range("bytes=100000-200000")),
        ("GET", "/big.bin", range("bytes=-70000")),
        ("GET", "/alias/a.txt", range("bytes=5-6")),
        ("GET", "/dir/", range("bytes=3-")),
        // Several ranges: multipart/byteranges.
        ("GET", a, range("bytes=0-0,10-19")),
        ("HEAD", a, range("bytes=0-0,10-19")),
        ("GET", a, range("bytes=0-4, 90- , -3")),
        ("GET", a, range("bytes=0-9,5-14")),
        ("GET", a, range("bytes=1-2 , 4-5")),
        ("GET", "/big.bin", range("bytes=0-9,250000-,-5")),
        ("GET", "/noext", range("bytes=0-1,3-4")),
        // Overlapping beyond the file's size: the whole file.
        ("GET", a, range("bytes=0-60,40-99")),
        ("GET", a, range("bytes=0-99,0-99")),
        // Unsatisfiable and bad syntax: 416.
        ("GET", a, range("bytes=200-300")),
        ("GET", a, range("bytes=100-")),
        ("GET", a, range("bytes=5-2")),
        ("GET", a, range("bytes=-0")),
        ("GET", a, range("bytes=abc")),
        ("GET", a, range("bytes=1-2,,3-4")),
        ("GET", a, range("bytes=0-1x")),
        ("GET", a, range("bytes=99999999999999999999-")),
        ("HEAD", a, range("bytes=200-")),
        // Other units or no range at all: 200.
        ("GET", a, range("items=0-5")),
        ("GET", a, range("bytes=")),
        // Empty file.
        ("GET", "/empty.txt", range("bytes=0-")),
        ("GET", "/empty.txt", range("bytes=-5")),
        ("GET", "/empty.txt", range("bytes=1-2")),
        // If-Range.
        ("GET", a, range("bytes=0-9") + &if_range(ETAG)),
        ("GET", a, range("bytes=0-9") + &if_range("\"x\"")),
        ("GET", a, range("bytes=0-9") + &if_range(&weak)),
        ("GET", a, range("bytes=0-9") + &if_range(LM)),
        ("GET", a, range("bytes=0-9") + &if_range(later)),
        ("GET", a, range("bytes=0-9") + &if_range("garbage")),
        ("GET", a, range("bytes=0-1,5-6") + &if_range(ETAG)),
        ("GET", a, range("bytes=abc") + &if_range("\"x\"")),
        ("GET", a, range("bytes=abc") + &if_range(ETAG)),
        ("GET", a, raw("If-Range: \"x\"")),
    ];
    let mut differ = Vec::new();
    for (method, path, headers) in &cases {
        let want = ask(nginx_port, method, path, headers);
        let got = ask(halo_port, method, path, headers);
        if want != got {
            differ.push(format!(
                "{method} {path} {headers:?}:\n  nginx {}\n  halo  {}",
                want.show(),
                got.show()
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{} of {} answers differ:\n{}",
        differ.len(),
        cases.len(),
        differ.join("\n")
    );
}
