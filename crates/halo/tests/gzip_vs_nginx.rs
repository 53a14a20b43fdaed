//! gzip, gzip_static and expires against Debian's nginx: one nginx.conf, served by nginx and by
//! halo in the same test, the same requests to both (static files, a `return` text, proxied
//! answers of a small backend with various types, encodings, ETags and cache headers, requests
//! with and without Accept-Encoding, Via, HTTP/1.0, HEAD, Range). Status, Content-Encoding,
//! Vary, whether Content-Length is sent, ETag, whether Expires is sent, Cache-Control and the
//! decompressed body must agree (compressed bytes may differ).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, UNIX_EPOCH};

use common::*;

const CONF: &str = r#"
events {}
http {
    root DIR/html;
    access_log off;
    server_tokens off;
    types { text/plain txt; text/html html; text/css css; image/png png; }
    default_type application/octet-stream;
    gzip on;
    gzip_types text/plain text/css;
    gzip_vary on;
    gzip_min_length 100;
    gzip_comp_level 5;
    gzip_buffers 16 8k;
    server {
        listen 127.0.0.1:PORT;
        server_name localhost;
        location / {
        }
        location /p/ {
            gzip_proxied any;
            proxy_pass http://127.0.0.1:BACKEND/;
        }
        location /expired/ {
            gzip_proxied expired no-cache;
            proxy_pass http://127.0.0.1:BACKEND/;
        }
        location /noetag/ {
            gzip_proxied no_etag auth;
            proxy_pass http://127.0.0.1:BACKEND/;
        }
        location /plain/ {
            proxy_pass http://127.0.0.1:BACKEND/;
        }
        location /cached/ {
            expires 30d;
            gzip_types *;
            proxy_pass http://127.0.0.1:BACKEND/;
        }
        location = /text.txt {
            return 200 "a return text that is long enough for gzip_min_length, a return text that is long enough";
        }
        location /st/ {
            alias DIR/html/;
            gzip_static on;
            expires 1h;
        }
        location /always/ {
            alias DIR/html/;
            gzip_static always;
        }
        location /mod/ {
            alias DIR/html/;
            expires modified 1h;
            gzip off;
        }
        location /epoch/ {
            alias DIR/html/;
            expires epoch;
        }
        location /max/ {
            alias DIR/html/;
            expires max;
        }
        location /neg/ {
            alias DIR/html/;
            expires -1;
        }
        location /old/ {
            alias DIR/html/;
            gzip_http_version 1.0;
            gzip_disable "msie6" "^Wget";
            gzip_min_length 1000;
        }
    }
}
"#;

/// The files' modification time: 2023-11-14 22:13:20 GMT.
const MTIME: u64 = 1_700_000_000;

/// What is compared of one answer.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    content_encoding: String,
    vary: String,
    has_length: bool,
    etag: String,
    has_expires: bool,
    cache_control: String,
    /// Decompressed; error pages with nginx's signature as halo's.
    body: Vec<u8>,
}

impl Answer {
    fn show(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let body: String = body.chars().take(60).collect();
        format!(
            "{} ce={:?} vary={:?} length={} etag={:?} expires={} cc={:?} body({})={:?}",
            self.status,
            self.content_encoding,
            self.vary,
            self.has_length,
            self.etag,
            self.has_expires,
            self.cache_control,
            self.body.len(),
            body
        )
    }
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|l| {
        l.split_once(':')
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
    })
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = std::str::from_utf8(&raw[..line_end]).unwrap();
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

fn ask(port: u16, method: &str, path: &str, version: &str, headers: &str) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} {version}\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if header(&head, "transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body);
    }
    let content_encoding = header(&head, "content-encoding").unwrap_or_default();
    if content_encoding == "gzip" && method != "HEAD" {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut plain)
            .unwrap();
        body = plain;
    }
    let text =
        String::from_utf8_lossy(&body).replace("<center>nginx</center>", "<center>halo</center>");
    Answer {
        status,
        content_encoding,
        vary: head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case("vary"))
            .map(|(_, v)| v.trim())
            .collect::<Vec<_>>()
            .join(", "),
        has_length: header(&head, "content-length").is_some(),
        etag: header(&head, "etag").unwrap_or_default(),
        has_expires: header(&head, "expires").is_some(),
        cache_control: header(&head, "cache-control").unwrap_or_default(),
        body: text.into_bytes(),
    }
}

/// The backend: `/?ct=TYPE&ce=ENCODING&etag=E&cc=CACHE-CONTROL&exp=EXPIRES&lm=DATE&n=REPEAT
/// &status=CODE&chunked=1` answers with those headers and "hello backend " n times.
fn backend(listener: TcpListener) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        std::thread::spawn(move || {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if stream.read(&mut byte).unwrap_or(0) == 0 {
                    return;
                }
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let target = head.split(' ').nth(1).unwrap_or("/").to_owned();
            let query = target.split_once('?').map_or("", |(_, q)| q);
            let param = |name: &str| {
                query.split('&').find_map(|kv| {
                    let (k, v) = kv.split_once('=')?;
                    (k == name).then(|| v.replace("%20", " ").replace("%22", "\""))
                })
            };
            let n: usize = param("n").and_then(|n| n.parse().ok()).unwrap_or(50);
            let body = "hello backend ".repeat(n);
            let status = param("status").unwrap_or_else(|| "200".to_owned());
            let mut out = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
            out.push_str(&format!(
                "Content-Type: {}\r\n",
                param("ct").unwrap_or_else(|| "text/plain".to_owned())
            ));
            for (key, name) in [
                ("ce", "Content-Encoding"),
                ("etag", "ETag"),
                ("cc", "Cache-Control"),
                ("exp", "Expires"),
                ("lm", "Last-Modified"),
            ] {
                if let Some(value) = param(key) {
                    out.push_str(&format!("{name}: {value}\r\n"));
                }
            }
            if param("chunked").is_some() {
                out.push_str(&format!(
                    "Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                    body.len()
                ));
            } else {
                out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
            }
            let _ = stream.write_all(out.as_bytes());
        });
    }
}

#[test]
fn gzip_and_expires_answer_like_nginx() {
    let dir = Scratch::new("gzip-vs-nginx");
    let html = dir.path("html");
    std::fs::create_dir_all(&html).unwrap();
    let text: String = "0123456789abcdefghijklmnopqrstuvwxyz\n".repeat(80);
    let mut gz = Vec::new();
    {
        let mut encoder = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::best());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap();
    }
    let mut only = Vec::new();
    {
        let mut encoder = flate2::write::GzEncoder::new(&mut only, flate2::Compression::fast());
        encoder
            .write_all(b"only the compressed file exists")
            .unwrap();
        encoder.finish().unwrap();
    }
    let png: Vec<u8> = (0..2000u32).map(|i| (i * 7 % 256) as u8).collect();
    let html_text = format!("<p>{text}</p>");
    let css = "body { color: red }\n".repeat(30);
    let files: [(&str, &[u8]); 8] = [
        ("a.txt", text.as_bytes()),
        ("small.txt", b"tiny"),
        ("a.html", html_text.as_bytes()),
        ("a.css", css.as_bytes()),
        ("img.png", &png),
        ("st.txt", text.as_bytes()),
        ("st.txt.gz", &gz),
        ("only.txt.gz", &only),
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
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || backend(listener));

    let d = dir.0.display().to_string();
    let (nginx_port, halo_port) = (free_port(), free_port());
    let conf = |port: u16| {
        CONF.replace("DIR", &d)
            .replace("BACKEND", &backend_port.to_string())
            .replace("PORT", &port.to_string())
    };
    dir.write("nginx.conf", &conf(nginx_port));
    dir.write("halo.conf", &conf(halo_port));
    let (_nginx, _halo) = spawn_nginx_and_halo(&dir);
    wait_port(nginx_port);
    wait_port(halo_port);

    let ae = |v: &str| format!("Accept-Encoding: {v}\r\n");
    let gzip = ae("gzip");
    let via = "Via: 1.1 proxy\r\n".to_owned();
    let h11 = "HTTP/1.1";
    let h10 = "HTTP/1.0";
    let etag = |len: usize| format!("If-None-Match: \"{MTIME:x}-{len:x}\"\r\n");
    let cases: Vec<(&str, &str, &str, String)> = vec![
        // Static files: type, length, Accept-Encoding as nginx parses it.
        ("GET", "/a.txt", h11, String::new()),
        ("GET", "/a.txt", h11, gzip.clone()),
        ("HEAD", "/a.txt", h11, gzip.clone()),
        ("GET", "/a.html", h11, gzip.clone()),
        ("GET", "/a.css", h11, ae("deflate, gzip;q=0.5")),
        ("GET", "/a.txt", h11, ae("gzip;q=0")),
        ("GET", "/a.txt", h11, ae("x-gzip")),
        ("GET", "/a.txt", h11, ae("GZIP")),
        ("GET", "/small.txt", h11, gzip.clone()),
        ("GET", "/img.png", h11, gzip.clone()),
        ("GET", "/missing", h11, gzip.clone()),
        ("GET", "/a.txt", h10, gzip.clone()),
        ("GET", "/a.txt", h11, gzip.clone() + &via),
        // Filter order: 304 before gzip, Range ignored by a compressed answer.
        ("GET", "/a.txt", h11, gzip.clone() + &etag(text.len())),
        ("GET", "/a.txt", h11, gzip.clone() + "Range: bytes=0-9\r\n"),
        (
            "GET",
            "/img.png",
            h11,
            gzip.clone() + "Range: bytes=0-9\r\n",
        ),
        // A return text.
        ("GET", "/text.txt", h11, gzip.clone()),
        ("GET", "/text.txt", h11, String::new()),
        // Proxied answers.
        ("GET", "/p/x", h11, gzip.clone()),
        ("HEAD", "/p/x", h11, gzip.clone()),
        ("GET", "/p/x?etag=%22abc%22", h11, gzip.clone()),
        ("GET", "/p/x?etag=W/%22abc%22", h11, gzip.clone()),
        ("GET", "/p/x?etag=abc", h11, gzip.clone()),
        ("GET", "/p/x?ce=br", h11, gzip.clone()),
        ("GET", "/p/x?chunked=1&n=1", h11, gzip.clone()),
        ("GET", "/p/x?n=1", h11, gzip.clone()),
        ("GET", "/p/x?status=201", h11, gzip.clone()),
        ("GET", "/p/x?status=403", h11, gzip.clone()),
        ("GET", "/p/x?status=500", h11, gzip.clone()),
        ("GET", "/p/x?ct=text/plain;charset=utf-8", h11, gzip.clone()),
        ("GET", "/p/x?ct=TEXT/CSS", h11, gzip.clone()),
        ("GET", "/p/x?ct=application/json", h11, gzip.clone()),
        ("GET", "/p/x", h11, gzip.clone() + &via),
        ("GET", "/plain/x", h11, gzip.clone() + &via),
        ("GET", "/plain/x", h11, gzip.clone()),
        // gzip_proxied rules.
        ("GET", "/expired/x", h11, gzip.clone() + &via),
        ("GET", "/expired/x?cc=max-age=60", h11, gzip.clone() + &via),
        ("GET", "/expired/x?cc=no-cache", h11, gzip.clone() + &via),
        (
            "GET",
            "/expired/x?exp=Thu,%2001%20Jan%201970%2000:00:01%20GMT",
            h11,
            gzip.clone() + &via,
        ),
        (
            "GET",
            "/expired/x?exp=Thu,%2031%20Dec%202037%2023:55:55%20GMT",
            h11,
            gzip.clone() + &via,
        ),
        ("GET", "/noetag/x?etag=%22a%22", h11, gzip.clone() + &via),
        (
            "GET",
            "/noetag/x?etag=%22a%22",
            h11,
            gzip.clone() + &via + "Authorization: Basic eDp5\r\n",
        ),
        ("GET", "/noetag/x", h11, gzip.clone() + &via),
        // expires on proxied answers (replacing the upstream's headers), gzip_types *.
        ("GET", "/cached/x", h11, gzip.clone()),
        ("GET", "/cached/x?cc=private&exp=soon", h11, String::new()),
        ("GET", "/cached/x?status=302", h11, String::new()),
        ("GET", "/cached/x?status=404", h11, gzip.clone()),
        ("GET", "/cached/x?ct=application/json", h11, gzip.clone()),
        // gzip_static.
        ("GET", "/st/st.txt", h11, gzip.clone()),
        ("GET", "/st/st.txt", h11, String::new()),
        ("HEAD", "/st/st.txt", h11, gzip.clone()),
        (
            "GET",
            "/st/st.txt",
            h11,
            gzip.clone() + "Range: bytes=0-3\r\n",
        ),
        ("GET", "/st/st.txt", h11, gzip.clone() + &via),
        ("GET", "/st/only.txt", h11, gzip.clone()),
        ("GET", "/st/only.txt", h11, String::new()),
        ("GET", "/st/a.txt", h11, gzip.clone()),
        ("GET", "/st/img.png", h11, gzip.clone()),
        ("GET", "/always/st.txt", h11, String::new()),
        ("GET", "/always/only.txt", h11, String::new()),
        // expires on static files.
        ("GET", "/mod/img.png", h11, String::new()),
        ("GET", "/mod/a.txt", h11, gzip.clone()),
        ("GET", "/epoch/img.png", h11, String::new()),
        ("GET", "/max/img.png", h11, gzip.clone()),
        ("GET", "/neg/img.png", h11, String::new()),
        ("GET", "/max/missing", h11, String::new()),
        ("GET", "/max/img.png", h11, etag(png.len())),
        (
            "GET",
            "/max/img.png",
            h11,
            "Range: bytes=0-1\r\n".to_owned(),
        ),
        // gzip_http_version, gzip_disable, gzip_min_length.
        ("GET", "/old/a.txt", h10, gzip.clone()),
        ("GET", "/old/st.txt", h10, gzip.clone()),
        (
            "GET",
            "/old/a.html",
            h11,
            gzip.clone() + "User-Agent: Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1)\r\n",
        ),
        (
            "GET",
            "/old/a.html",
            h11,
            gzip.clone() + "User-Agent: wget/1.0\r\n",
        ),
        (
            "GET",
            "/old/a.html",
            h11,
            gzip.clone() + "User-Agent: curl/8\r\n",
        ),
    ];
    let mut differ = Vec::new();
    let (mut gzipped, mut expiring) = (0, 0);
    for (method, path, version, headers) in &cases {
        let want = ask(nginx_port, method, path, version, headers);
        let got = ask(halo_port, method, path, version, headers);
        gzipped += usize::from(want.content_encoding == "gzip");
        expiring += usize::from(want.has_expires);
        if want != got {
            differ.push(format!(
                "{method} {path} {version} {headers:?}:\n  nginx {}\n  halo  {}",
                want.show(),
                got.show()
            ));
        }
    }
    // The cases exercise what they are about.
    assert!(
        gzipped >= 20 && expiring >= 8,
        "{gzipped} gzipped, {expiring} with Expires"
    );
    assert!(
        differ.is_empty(),
        "{} of {} answers differ:\n{}",
        differ.len(),
        cases.len(),
        differ.join("\n")
    );
}
