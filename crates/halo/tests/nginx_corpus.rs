//! A corpus of real-world nginx.conf patterns (`tests/corpus/*.conf`), judged against Debian's
//! nginx: `halo check` accepts each fixture or refuses it at the line its header names, and every
//! accepted one is served by nginx and by halo in the same test, with the same requests sent to
//! both; status, the headers that matter and the body must agree.
//!
//! A fixture starts with header comments:
//!
//! ```text
//! # kind: what it is and the public pattern it follows
//! # expect: ok                      (or)  # expect: refused LINE "WORD"
//! # request: METHOD PATH [Header: value]...
//! # request-known-diff: METHOD PATH [Header: value]... -- why halo answers differently
//! # headers: Name...                (more response headers to compare, e.g. ETag Last-Modified)
//! ```
//!
//! `HALO_CORPUS_VERBOSE=1` (with `--nocapture`) prints every answer. Request lines of a refused
//! fixture are not sent; they are kept for the day halo accepts it.
//!
//! `refused LINE "WORD"`: `halo check` exits 1 and one of its `error:` lines names `:LINE:` of
//! the fixture and contains WORD. A `request-known-diff` must still differ (when it agrees, the
//! test fails so that the line becomes a plain `request`). Every fixture, refused or not, must
//! pass `nginx -t`: the corpus is of valid nginx configurations.
//!
//! Placeholders substituted in each fixture:
//!
//! - `PORT`: the port to listen on, on 127.0.0.1 (nginx and halo get different ones);
//! - `DIR`: the scratch directory (also nginx's `-p` prefix and the directory of the halo copy);
//! - `BACKEND`: `127.0.0.1:PORT` of the echo backend;
//! - `DEADPORT`: a port nothing listens on (an upstream that refuses connections).
//!
//! `DIR` holds, made by this test: `html/index.html`, `html/a.txt`, `html/big.txt` (over 1 KiB of
//! text), `html/app.js`, `html/style.css`, `html/fonts/site.woff2`, `html/sub/index.html`,
//! `html/404.html`, `html/50x.html`, `html/maintenance.html`,
//! `html/.well-known/acme-challenge/token123`, `htpasswd` (user `admin`, password `secret`, as
//! `$apr1$`; user `plain`, password `plainpass`, as `{PLAIN}`) and `maintenance.on` (a flag
//! file). Every one was modified Mon, 01 Jan 2024 00:00:00 GMT, so `a.txt` (12 bytes) has the
//! ETag `"65920080-c"`.
//!
//! The echo backend answers every request with 200, `Content-Type: text/plain`, `X-Backend: echo`
//! and a body of the request line's method and target followed by the request headers that show
//! how the proxy rewrote them (Host, Connection, Upgrade, Authorization, Content-Length,
//! Content-Type, every `X-*`), one `name: value` a line, sorted by name; `Connection: close` is
//! left out (nginx's default HTTP/1.0 to upstreams sends it, halo keeps upstream connections alive
//! by design: docs/compatibility.md, proxy_http_version).
//!
//! Compared: the status; Location (with each server's own port written `PORT`, and reduced to its
//! path when it is an absolute URL of the server itself: nginx's redirects are absolute, halo's
//! are the path), Content-Type, Cache-Control, WWW-Authenticate, Vary, Content-Encoding,
//! Retry-After, X-Backend, every header named by an `add_header` of the fixture or by its
//! `# headers:` line, and whether Expires is present; the body, except that
//! for an error status (400 and up) answered by both with a built-in error page only the status
//! and headers are compared (halo's built-in pages are nginx's signed "halo", but some titles are
//! the HTTP reason phrases, not nginx's), and that in other built-in pages (redirects) the
//! signature lines (`<hr><center>nginx/1.22.1</center>`, `<hr><center>halo</center>`) are made
//! equal. A custom error page (error_page to a file or a `return` with text) is compared whole.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const NGINX: &str = "/usr/sbin/nginx";

/// What `halo check` must do with a fixture.
#[derive(Debug, PartialEq)]
enum Expect {
    Ok,
    Refused { line: u32, word: String },
}

/// One `# request:` (or `# request-known-diff:`) line.
#[derive(Debug)]
struct Request {
    text: String,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    known_diff: Option<String>,
}

#[derive(Debug)]
struct Fixture {
    name: String,
    text: String,
    expect: Expect,
    requests: Vec<Request>,
    /// Response headers compared besides the usual ones (`# headers:`), lower-cased.
    headers: Vec<String>,
}

/// A token that starts a header in a request line: `Name:`.
fn is_header_name(token: &str) -> bool {
    token.len() > 1
        && token.ends_with(':')
        && token[..token.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn parse_request(text: &str, known_diff: Option<String>) -> Request {
    let mut tokens = text.split_whitespace();
    let method = tokens
        .next()
        .expect("request line without a method")
        .to_owned();
    let path = tokens
        .next()
        .expect("request line without a path")
        .to_owned();
    let mut headers: Vec<(String, String)> = Vec::new();
    for token in tokens {
        if is_header_name(token) {
            headers.push((token[..token.len() - 1].to_owned(), String::new()));
        } else {
            let (_, value) = headers
                .last_mut()
                .unwrap_or_else(|| panic!("request {text:?}: {token:?} is no header"));
            if !value.is_empty() {
                value.push(' ');
            }
            value.push_str(token);
        }
    }
    Request {
        text: text.to_owned(),
        method,
        path,
        headers,
        known_diff,
    }
}

fn parse_fixture(path: &Path) -> Fixture {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let mut expect = None;
    let mut kind = false;
    let mut requests = Vec::new();
    let mut headers = Vec::new();
    for line in text.lines() {
        let Some(comment) = line.strip_prefix('#') else {
            break;
        };
        let comment = comment.trim();
        if comment.starts_with("kind:") {
            kind = true;
        } else if let Some(e) = comment.strip_prefix("expect:") {
            let e = e.trim();
            expect = Some(if e == "ok" {
                Expect::Ok
            } else {
                let rest = e
                    .strip_prefix("refused ")
                    .unwrap_or_else(|| panic!("{name}: bad expect line {e:?}"));
                let (line, word) = rest
                    .split_once(' ')
                    .unwrap_or_else(|| panic!("{name}: bad expect line {e:?}"));
                Expect::Refused {
                    line: line.parse().unwrap(),
                    word: word.trim().trim_matches('"').to_owned(),
                }
            });
        } else if let Some(h) = comment.strip_prefix("headers:") {
            headers.extend(h.split_whitespace().map(str::to_ascii_lowercase));
        } else if let Some(r) = comment.strip_prefix("request:") {
            requests.push(parse_request(r.trim(), None));
        } else if let Some(r) = comment.strip_prefix("request-known-diff:") {
            let (r, why) = r
                .split_once(" -- ")
                .unwrap_or_else(|| panic!("{name}: a known diff needs \" -- reason\""));
            requests.push(parse_request(r.trim(), Some(why.trim().to_owned())));
        }
    }
    assert!(kind, "{name}: no `# kind:` line");
    Fixture {
        expect: expect.unwrap_or_else(|| panic!("{name}: no `# expect:` line")),
        name,
        text,
        requests,
        headers,
    }
}

/// The names given to `add_header` in a fixture, lower-cased.
fn add_header_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("add_header") {
            if let Some(n) = words.next() {
                let n = n
                    .trim_matches(|c| c == '\'' || c == '"')
                    .to_ascii_lowercase();
                if !names.contains(&n) {
                    names.push(n);
                }
            }
        }
    }
    names
}

/// The files fixtures serve, under the scratch directory.
fn make_site(dir: &Scratch) {
    let files: &[(&str, &str)] = &[
        (
            "html/index.html",
            "<!doctype html><title>corpus</title><div id=app>index</div>\n",
        ),
        ("html/a.txt", "a text file\n"),
        ("html/app.js", "console.log('app');\n"),
        ("html/style.css", "body { margin: 0 }\n"),
        ("html/fonts/site.woff2", "wOF2-not-really-a-font\n"),
        ("html/sub/index.html", "<p>sub index</p>\n"),
        ("html/404.html", "<h1>custom 404</h1>\n"),
        ("html/50x.html", "<h1>custom 50x</h1>\n"),
        ("html/maintenance.html", "<h1>down for maintenance</h1>\n"),
        ("html/.well-known/acme-challenge/token123", "token123.key\n"),
        (
            "htpasswd",
            "# users\nadmin:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/\nplain:{PLAIN}plainpass\n",
        ),
        ("maintenance.on", ""),
    ];
    let big: String = (0..64)
        .map(|i| format!("line {i:02} of a compressible text file\n"))
        .collect();
    for (name, text) in files.iter().chain([&("html/big.txt", big.as_str())]) {
        let p = dir.path(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        // A fixed modification time, so that Last-Modified and ETag are known to fixtures.
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(SITE_MTIME))
            .unwrap();
    }
}

/// Modification time of the site's files: Mon, 01 Jan 2024 00:00:00 GMT (ETag `"65920080-SIZE"`).
const SITE_MTIME: u64 = 1_704_067_200;

/// Reads one HTTP/1.x message head (up to the blank line); `None` at a clean EOF.
fn read_head(r: &mut impl BufRead) -> std::io::Result<Option<Vec<String>>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            return Ok(if lines.is_empty() { None } else { Some(lines) });
        }
        let line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.is_empty() {
            if lines.is_empty() {
                continue;
            }
            return Ok(Some(lines));
        }
        lines.push(line);
    }
}

fn header<'a>(head: &'a [(String, String)], name: &str) -> Option<&'a str> {
    head.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn split_headers(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect()
}

/// Reads a body framed by Content-Length or chunked encoding (or, with `to_eof`, up to EOF).
fn read_body(
    r: &mut impl BufRead,
    headers: &[(String, String)],
    to_eof: bool,
) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if header(headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk)?;
            if size == 0 {
                // The last chunk: read trailers up to the blank line (two bytes already read).
                if chunk != b"\r\n" {
                    let mut rest = String::new();
                    while r.read_line(&mut rest)? > 2 {
                        rest.clear();
                    }
                }
                return Ok(body);
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    if let Some(len) = header(headers, "content-length") {
        let len: usize = len.parse().unwrap_or(0);
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    } else if to_eof {
        r.read_to_end(&mut body)?;
    }
    Ok(body)
}

/// The echo backend: answers every request with what it received (see the module comment).
fn echo_backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                while let Ok(Some(head)) = read_head(&mut r) {
                    let headers = split_headers(&head[1..]);
                    if read_body(&mut r, &headers, false).is_err() {
                        return;
                    }
                    let mut parts = head[0].split(' ');
                    let (method, target, version) = (
                        parts.next().unwrap_or(""),
                        parts.next().unwrap_or(""),
                        parts.next().unwrap_or(""),
                    );
                    let mut shown: Vec<&(String, String)> = headers
                        .iter()
                        .filter(|(n, v)| {
                            // nginx's default upstream HTTP/1.0 says `Connection: close`; halo
                            // keeps upstream connections alive by design (compatibility.md).
                            let default_close =
                                n == "connection" && v.eq_ignore_ascii_case("close");
                            let shown_name = n.starts_with("x-")
                                || [
                                    "host",
                                    "connection",
                                    "upgrade",
                                    "authorization",
                                    "content-length",
                                    "content-type",
                                ]
                                .contains(&n.as_str());
                            shown_name && !default_close
                        })
                        .collect();
                    shown.sort_by(|a, b| a.0.cmp(&b.0));
                    let mut body = format!("{method} {target}\n");
                    for (n, v) in shown {
                        body += &format!("{n}: {v}\n");
                    }
                    let close = header(&headers, "connection")
                        .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                        || version == "HTTP/1.0";
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Backend: echo\r\n\
                         Content-Length: {}\r\n{}\r\n{body}",
                        body.len(),
                        if close { "Connection: close\r\n" } else { "" }
                    );
                    if w.write_all(answer.as_bytes()).is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// One response as the comparison sees it.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// Sends `req` to 127.0.0.1:`port` on a new connection and reads the answer; a connection closed
/// without an answer (nginx's 444) is status 0.
/// Status, header lines and body of one answer.
type RawAnswer = (u16, Vec<(String, String)>, Vec<u8>);

fn ask(port: u16, req: &Request) -> std::io::Result<RawAnswer> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut text = format!("{} {} HTTP/1.1\r\n", req.method, req.path);
    let has = |name: &str| {
        req.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    };
    if !has("host") {
        text += "Host: localhost\r\n";
    }
    if !has("connection") {
        text += "Connection: close\r\n";
    }
    let body_len = match req
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        Some((_, v)) => v.parse().unwrap(),
        None if ["POST", "PUT"].contains(&req.method.as_str()) => {
            text += "Content-Length: 0\r\n";
            0
        }
        None => 0,
    };
    for (n, v) in &req.headers {
        text += &format!("{n}: {v}\r\n");
    }
    text += "\r\n";
    let mut bytes = text.into_bytes();
    bytes.resize(bytes.len() + body_len, b'x');
    s.write_all(&bytes)?;
    let mut r = BufReader::new(s);
    let Some(head) = read_head(&mut r)? else {
        return Ok((0, Vec::new(), Vec::new()));
    };
    let status = head[0]
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = split_headers(&head[1..]);
    let no_body = req.method == "HEAD" || status == 204 || status == 304 || status < 200;
    let body = if no_body {
        Vec::new()
    } else {
        read_body(&mut r, &headers, true)?
    };
    Ok((status, headers, body))
}

/// The parts of an answer that are compared, with the server's own port written `PORT`.
fn compared(raw: std::io::Result<RawAnswer>, port: u16, host: &str, names: &[String]) -> Answer {
    let (status, headers, body) = match raw {
        Ok(r) => r,
        Err(e) => {
            return Answer {
                status: 0,
                headers: Vec::new(),
                body: format!("<i/o error: {e}>"),
            }
        }
    };
    let port = port.to_string();
    let mut kept = Vec::new();
    for name in names {
        let values: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        if values.is_empty() {
            continue;
        }
        let value = if name == "expires" {
            "(present)".to_owned()
        } else {
            values.join(" | ").replace(&port, "PORT")
        };
        let value = if name == "location" {
            same_server_path(&value, host)
        } else {
            value
        };
        kept.push((name.clone(), value));
    }
    // Compressed bodies are compared decompressed (nginx's and halo's deflate differ).
    let gzipped = headers
        .iter()
        .any(|(n, v)| n == "content-encoding" && v == "gzip");
    let mut plain = Vec::new();
    let body = if gzipped && !body.is_empty() {
        match std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain) {
            Ok(_) => plain,
            Err(e) => format!("<bad gzip body: {e}>").into_bytes(),
        }
    } else {
        body
    };
    let body = String::from_utf8_lossy(&body);
    let builtin = body.contains("<hr><center>nginx") || body.contains("<hr><center>halo</center>");
    if status >= 400 && builtin {
        // Error statuses: the status is what matters, and halo's built-in pages take their
        // titles from the HTTP reason phrases where nginx has its own ("401 Authorization
        // Required" / "401 Unauthorized").
        return Answer {
            status,
            headers: kept,
            body: "(built-in error page)".to_owned(),
        };
    }
    let body = body
        .replace(&port, "PORT")
        .replace(
            "<hr><center>nginx/1.22.1</center>",
            "<hr><center>SERVER</center>",
        )
        .replace("<hr><center>nginx</center>", "<hr><center>SERVER</center>")
        .replace("<hr><center>halo</center>", "<hr><center>SERVER</center>");
    Answer {
        status,
        headers: kept,
        body,
    }
}

/// A Location that names the server itself (`http://HOST[:PORT]/...`, HOST the request's Host)
/// reduced to its path: nginx makes redirects absolute (`absolute_redirect on`), halo sends the
/// path; both lead the client to the same place.
fn same_server_path(location: &str, host: &str) -> String {
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    for prefix in [format!("http://{host}:PORT/"), format!("http://{host}/")] {
        if let Some(rest) = location.strip_prefix(&prefix) {
            return format!("/{rest}");
        }
    }
    location.to_owned()
}

/// Runs `halo check` on the halo copy of a fixture and judges it against the expectation.
fn judge_check(fixture: &Fixture, conf: &Path, problems: &mut Vec<String>) {
    let out = Command::new(halo_bin())
        .args(["check", "--nginx", conf.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let name = &fixture.name;
    match &fixture.expect {
        Expect::Ok => {
            if !out.status.success() {
                problems.push(format!(
                    "{name}: expected `halo check` to accept it, it refused it:\n{stderr}{stdout}"
                ));
            }
        }
        Expect::Refused { line, word } => {
            let at = format!(":{line}:");
            let named = stderr
                .lines()
                .chain(stdout.lines())
                .any(|l| l.contains("error") && l.contains(&at) && l.contains(word.as_str()));
            if out.status.code() != Some(1) || !named {
                problems.push(format!(
                    "{name}: expected `halo check` to refuse line {line} naming {word:?}; \
                     it exited {:?} with:\n{stderr}{stdout}",
                    out.status.code()
                ));
            }
        }
    }
}

/// A port on 127.0.0.1 that is bound but not listening, so that connecting to it is refused for
/// as long as the socket lives.
fn dead_port() -> (socket2::Socket, u16) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    s.bind(&addr.into()).unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    (s, port)
}

/// Waits (at most 10 s) until something listens on 127.0.0.1:`port`.
fn listening(port: u16) -> bool {
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t0.elapsed() > Duration::from_secs(10) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// The last lines of a log file, for a problem report.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

fn nginx_command(dir: &Path, conf: &str, stem: &str) -> Command {
    let d = dir.display().to_string();
    let mut c = Command::new(NGINX);
    c.args(["-p", &d, "-c", conf, "-e", &format!("{stem}-error.log")])
        .args([
            "-g",
            &format!("daemon off; master_process off; pid {d}/{stem}.pid; user root;"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

#[test]
fn corpus_is_checked_and_served_like_nginx() {
    let t0 = Instant::now();
    assert!(
        Path::new(NGINX).exists(),
        "{NGINX} must be installed (Debian: apt-get install nginx-light)"
    );
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "conf"))
        .collect();
    paths.sort();
    let fixtures: Vec<Fixture> = paths.iter().map(|p| parse_fixture(p)).collect();
    assert!(fixtures.len() >= 20, "only {} fixtures", fixtures.len());

    let dir = Scratch::new("nginx-corpus");
    make_site(&dir);
    let d = dir.0.display().to_string();
    let backend = echo_backend();
    let (_dead, dead_port) = dead_port();
    // Ports are picked once each: two servers never get the same one.
    let mut taken = vec![backend, dead_port];
    let mut new_port = move || loop {
        let p = free_port();
        if !taken.contains(&p) {
            taken.push(p);
            return p;
        }
    };

    let verbose = std::env::var_os("HALO_CORPUS_VERBOSE").is_some();
    let mut problems = Vec::new();
    let mut known = Vec::new();
    let mut served = 0;
    for fixture in &fixtures {
        let stem = fixture.name.trim_end_matches(".conf");
        let (nginx_port, halo_port) = (new_port(), new_port());
        let conf = |port: u16| {
            fixture
                .text
                .replace("DEADPORT", &dead_port.to_string())
                .replace("PORT", &port.to_string())
                .replace("DIR", &d)
                .replace("BACKEND", &format!("127.0.0.1:{backend}"))
        };
        let nginx_conf = format!("nginx-{stem}.conf");
        dir.write(&nginx_conf, &conf(nginx_port));
        let halo_conf = dir.write(&format!("halo-{stem}.conf"), &conf(halo_port));

        // Every fixture is a configuration nginx accepts.
        let t = nginx_command(&dir.0, &nginx_conf, &format!("nginx-{stem}"))
            .arg("-t")
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        if !t.status.success() {
            problems.push(format!(
                "{}: nginx -t refuses it:\n{}",
                fixture.name,
                String::from_utf8_lossy(&t.stderr)
            ));
            continue;
        }
        judge_check(fixture, &halo_conf, &mut problems);
        if fixture.expect != Expect::Ok || fixture.requests.is_empty() {
            continue;
        }

        let nginx = nginx_command(&dir.0, &nginx_conf, &format!("nginx-{stem}"))
            .spawn()
            .unwrap();
        let _nginx = KillOnDrop(nginx);
        let halo_log = dir.path(&format!("halo-{stem}.log"));
        let _halo = spawn_halo(&["run", "--nginx", halo_conf.to_str().unwrap()], &halo_log);
        if !listening(nginx_port) {
            let log = dir.path(&format!("nginx-{stem}-error.log"));
            problems.push(format!(
                "{}: nginx never listened:\n{}",
                fixture.name,
                log_tail(&log)
            ));
            continue;
        }
        if !listening(halo_port) {
            problems.push(format!(
                "{}: halo never listened:\n{}",
                fixture.name,
                log_tail(&halo_log)
            ));
            continue;
        }
        served += 1;

        let mut names: Vec<String> = [
            "location",
            "content-type",
            "cache-control",
            "expires",
            "www-authenticate",
            "vary",
            "content-encoding",
            "retry-after",
            "x-backend",
        ]
        .map(str::to_owned)
        .to_vec();
        for n in add_header_names(&fixture.text)
            .into_iter()
            .chain(fixture.headers.iter().cloned())
        {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        for req in &fixture.requests {
            let host = req
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("host"))
                .map_or("localhost", |(_, v)| v.as_str());
            let want = compared(ask(nginx_port, req), nginx_port, host, &names);
            let got = compared(ask(halo_port, req), halo_port, host, &names);
            let differs = want != got;
            if verbose {
                eprintln!("{}: {}\n    nginx: {want:?}", fixture.name, req.text);
                if differs {
                    eprintln!("    halo:  {got:?}");
                }
            }
            match (&req.known_diff, differs) {
                (None, false) => {}
                (None, true) => problems.push(format!(
                    "{}: {}\n    nginx: {want:?}\n    halo:  {got:?}",
                    fixture.name, req.text
                )),
                (Some(why), true) => known.push(format!(
                    "{}: {} ({why})\n    nginx: {want:?}\n    halo:  {got:?}",
                    fixture.name, req.text
                )),
                (Some(_), false) => problems.push(format!(
                    "{}: {}: a known diff that no longer differs; make it a `# request:` line \
                     ({want:?})",
                    fixture.name, req.text
                )),
            }
        }
    }
    eprintln!(
        "{} fixtures ({} served by both), {} known differences, {:.1} s",
        fixtures.len(),
        served,
        known.len(),
        t0.elapsed().as_secs_f64()
    );
    for k in &known {
        eprintln!("known difference: {k}");
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
