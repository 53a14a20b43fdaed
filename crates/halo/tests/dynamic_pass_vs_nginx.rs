//! `proxy_pass` with variables and `resolver` against Debian's nginx: one nginx.conf served by
//! nginx and by halo in the same test, an echo backend thread, and a small DNS server thread
//! on 127.0.0.1 (UDP) that knows `app.test`, `web.test` (127.0.0.1) and `two.test`
//! (127.0.0.2, where nothing listens, and 127.0.0.1) and nothing else. The
//! request's `X-To` header is the URL's host: an upstream name (matched without a port), an IP
//! address, a name to resolve, one that does not resolve, one with no resolver in effect; the
//! locations cover nginx's URI rules (a path in the URL goes verbatim, none sends the client's
//! URI). Compared: the status and the backend's echo of method, URI and Host.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use common::*;

const CONF: &str = r#"
events {}
http {
    access_log off;
    upstream appup { server BACKEND; }
    server {
        listen 127.0.0.1:PORT;
        server_name localhost;
        resolver 127.0.0.1:DNS valid=5s;
        resolver_timeout 3s;
        location /up/ {
            proxy_pass http://$http_x_to;
        }
        location /path/ {
            proxy_pass http://$http_x_to/fixed$uri;
        }
        location /req/ {
            proxy_pass http://$http_x_to$request_uri;
        }
        location /query/ {
            proxy_pass http://$http_x_to?from=query;
        }
        location /scheme/ {
            proxy_pass $scheme://appup$uri;
        }
        location /any/ {
            proxy_pass $http_x_url;
        }
        location /rw/ {
            rewrite ^/rw/(.*)$ /new/$1 break;
            proxy_pass http://$http_x_to;
        }
        location /v4/ {
            resolver 127.0.0.1:DNS ipv6=off;
            proxy_pass http://$http_x_to;
        }
    }
    server {
        listen 127.0.0.1:PORT2;
        server_name localhost;
        location / {
            proxy_pass http://$http_x_to;
        }
    }
}
"#;

/// Echoes `METHOD URI host=HOST`.
fn backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || echo(stream));
        }
    });
    port
}

fn echo(mut stream: TcpStream) {
    let Some(request) = read_backend_request(&stream) else {
        return;
    };
    let (method, target) = (&request.method, &request.target);
    let host = request
        .headers
        .iter()
        .find(|(n, _)| n == "host")
        .map_or("", |(_, v)| v.as_str());
    let text = format!("{method} {target} host={host}\n");
    let reply = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.write_all(reply.as_bytes());
}

/// A DNS server for the test's names: A 127.0.0.1 (TTL 5) for `app.test` and `web.test`,
/// 127.0.0.2 and 127.0.0.1 for `two.test`, no AAAA for them (NOERROR, empty), NXDOMAIN for
/// every other name.
fn dns_server() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((len, from)) = socket.recv_from(&mut buf) else {
                continue;
            };
            if let Some(reply) = dns_reply(&buf[..len]) {
                let _ = socket.send_to(&reply, from);
            }
        }
    });
    port
}

fn dns_reply(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    // The question: labels up to the root, then type and class.
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question_end = at + 4;
    let name = labels.join(".");
    let addresses: &[[u8; 4]] = match name.as_str() {
        "app.test" | "web.test" => &[[127, 0, 0, 1]],
        // Nothing listens on 127.0.0.2: the request moves on to the other address.
        "two.test" => &[[127, 0, 0, 2], [127, 0, 0, 1]],
        _ => &[],
    };
    let known = !addresses.is_empty();
    let answers = if qtype == 1 {
        addresses.len() as u16
    } else {
        0
    };
    let rcode = if known { 0 } else { 3 };
    let mut out = Vec::new();
    out.extend_from_slice(&query[..2]);
    // QR, opcode 0, AA, RD copied; RA; the rcode.
    out.push(0x84 | (query[2] & 0x01));
    out.push(0x80 | rcode);
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&answers.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(query.get(12..question_end)?);
    for address in addresses.iter().filter(|_| qtype == 1) {
        out.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4]);
        out.extend_from_slice(address);
    }
    Some(out)
}

/// (status, body of a 200).
fn ask(port: u16, method: &str, path: &str, headers: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if status == 200 {
        body.to_owned()
    } else {
        String::new()
    };
    (status, body)
}

#[test]
fn dns_reply_answers_known_names_only() {
    // A query for app.test, type A, class IN.
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(b"\x03app\x04test\x00\x00\x01\x00\x01");
    let r = dns_reply(&q).unwrap();
    assert_eq!((&r[..2], r[3] & 0x0f, r[7]), (&[0x12, 0x34][..], 0, 1));
    assert_eq!(&r[r.len() - 4..], &[127, 0, 0, 1]);
    q[13] = b'b';
    let r = dns_reply(&q).unwrap();
    assert_eq!((r[3] & 0x0f, r[7]), (3, 0));
}

#[test]
fn proxy_pass_with_variables_answers_like_nginx() {
    let dir = Scratch::new("dynamic-pass-vs-nginx");
    let backend_port = backend();
    let backend = format!("127.0.0.1:{backend_port}");
    let dns = dns_server();
    let ports = [(free_port(), free_port()), (free_port(), free_port())];
    let conf = |port: u16, port2: u16| {
        CONF.replace("BACKEND", &backend)
            .replace("PORT2", &port2.to_string())
            .replace("PORT", &port.to_string())
            .replace("DNS", &dns.to_string())
    };
    let (nginx_port, nginx_port2) = ports[0];
    let (halo_port, halo_port2) = ports[1];
    dir.write("nginx.conf", &conf(nginx_port, nginx_port2));
    dir.write("halo.conf", &conf(halo_port, halo_port2));
    let (_nginx, _halo) = spawn_nginx_and_halo(&dir);
    for port in [nginx_port, nginx_port2, halo_port, halo_port2] {
        wait_port(port);
    }
    let to = |host: &str| format!("X-To: {host}\r\n");
    let b = backend_port;
    let ip = to(&format!("127.0.0.1:{b}"));
    let app = to(&format!("app.test:{b}"));
    // (second server?, method, path, headers)
    let cases: Vec<(bool, &str, &str, String)> = vec![
        // The host names an upstream block (case-insensitively, no port): the client's URI.
        (false, "GET", "/up/a?x=1", to("appup")),
        (false, "GET", "/up/b", to("AppUp")),
        // With a port it is no upstream name: resolved (and not found).
        (false, "GET", "/up/c", to(&format!("appup:{b}"))),
        // An IP address needs no resolver.
        (false, "GET", "/up/d%20e?y", ip.clone()),
        // A name, resolved; one that does not resolve.
        (false, "GET", "/up/f?z=1", app.clone()),
        (false, "POST", "/up/g", to(&format!("web.test:{b}"))),
        (false, "GET", "/up/h", to(&format!("missing.test:{b}"))),
        // Two addresses: the one that refuses passes the request to the other.
        (false, "GET", "/up/h2", to(&format!("two.test:{b}"))),
        (false, "GET", "/up/h3", to(&format!("two.test:{b}"))),
        // No host at all.
        (false, "GET", "/up/i", String::new()),
        // A path in the URL goes verbatim, the client's arguments are not added.
        (false, "GET", "/path/p?a=b", app.clone()),
        (false, "GET", "/path/q%41", ip.clone()),
        (false, "GET", "/req/r?a=1", app.clone()),
        (false, "GET", "/query/s?a=1", ip.clone()),
        (false, "GET", "/scheme/t?u=1", String::new()),
        // The whole URL from a variable: a bad prefix is a 500.
        (
            false,
            "GET",
            "/any/u",
            format!("X-Url: http://127.0.0.1:{b}/w?v=1\r\n"),
        ),
        (false, "GET", "/any/v", "X-Url: ftp://x/\r\n".to_owned()),
        (false, "GET", "/any/w", String::new()),
        // rewrite ... break: the rewritten URI and the arguments.
        (false, "GET", "/rw/x?k=v", app.clone()),
        (false, "GET", "/v4/y", app.clone()),
        // No resolver in this server: names fail, upstreams and addresses work.
        (true, "GET", "/z1", app.clone()),
        (true, "GET", "/z2?q", ip.clone()),
        (true, "GET", "/z3", to("appup")),
    ];
    let mut differ = Vec::new();
    let mut statuses = Vec::new();
    for (second, method, path, headers) in &cases {
        let (n, h) = if *second {
            (nginx_port2, halo_port2)
        } else {
            (nginx_port, halo_port)
        };
        let expected = ask(n, method, path, headers);
        let got = ask(h, method, path, headers);
        statuses.push(got.0);
        println!("{method} {path} {headers:?}: halo {got:?}");
        if expected != got {
            differ.push(format!(
                "{method} {path} {headers:?}: nginx {expected:?}, halo {got:?}"
            ));
        }
    }
    assert!(differ.is_empty(), "answers differ:\n{}", differ.join("\n"));
    for code in [200, 500, 502] {
        assert!(
            statuses.contains(&code),
            "no case answered {code}: {statuses:?}"
        );
    }
    let nginx_log = std::fs::read_to_string(dir.path("nginx-error.log")).unwrap_or_default();
    let halo_log = std::fs::read_to_string(dir.path("halo.log")).unwrap_or_default();
    for log in [&nginx_log, &halo_log] {
        for line in [
            "no resolver defined to resolve app.test",
            "missing.test could not be resolved (3: Host not found)",
        ] {
            assert!(log.contains(line), "{line:?} not in\n{log}");
        }
    }
}
