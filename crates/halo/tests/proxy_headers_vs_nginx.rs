//! proxy_hide_header, proxy_pass_header, proxy_ignore_headers, proxy_method, proxy_set_body,
//! proxy_cookie_domain, proxy_cookie_path and proxy_redirect against Debian's nginx: one
//! nginx.conf served by nginx and by halo in the same test, and a backend thread whose answers
//! carry Server, Date, X-Pad, X-Accel-*, Set-Cookie with Domain and Path, Location, Refresh and
//! custom headers, and whose body echoes the method, URI, body and headers it received.
//! Compared: the status, the relevant response headers (presence, value and order) and the echo.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::*;

const CONF: &str = r#"
events {}
http {
    access_log off;
    proxy_hide_header X-Http-Hidden;
    proxy_cookie_domain backend.local example.com;
    server {
        listen 127.0.0.1:PORT;
        server_name localhost;
        proxy_pass_header X-Pad;
        location /plain/ {
            proxy_pass http://BACKEND;
        }
        location /hide/ {
            proxy_hide_header X-Custom-A;
            proxy_hide_header x-custom-b;
            proxy_pass http://BACKEND;
        }
        location /pass/ {
            proxy_pass_header Server;
            proxy_pass_header X-Accel-Buffering;
            proxy_hide_header X-Accel-Limit-Rate;
            proxy_pass_header X-Accel-Limit-Rate;
            proxy_pass http://BACKEND;
        }
        location /passdate/ {
            proxy_pass_header Date;
            proxy_pass http://BACKEND;
        }
        location /ignore/ {
            proxy_ignore_headers X-Accel-Redirect X-Accel-Expires Expires Cache-Control Set-Cookie Vary X-Accel-Limit-Rate X-Accel-Buffering X-Accel-Charset;
            proxy_pass http://BACKEND;
        }
        location /method/ {
            proxy_method PUT;
            proxy_pass http://BACKEND;
        }
        location /methodvar/ {
            proxy_method $arg_m;
            proxy_pass http://BACKEND;
        }
        location /body/ {
            proxy_set_body "id=$arg_id&uri=$uri";
            proxy_set_header Content-Type application/x-www-form-urlencoded;
            proxy_pass http://BACKEND;
        }
        location /cookie/ {
            proxy_cookie_domain off;
            proxy_cookie_path /two/ /cookie/;
            proxy_cookie_path ~*^/RE/(.*)$ /re-$1;
            proxy_pass http://BACKEND;
        }
        location /cookiedom/ {
            proxy_cookie_domain ~^(\w+)\.backend\.local$ $1.example.org;
            proxy_cookie_domain .other.local .$host;
            proxy_cookie_path $uri /by-uri/;
            proxy_pass http://BACKEND;
        }
        location /redir/ {
            proxy_redirect http://$proxy_host/two/ /redir/;
            proxy_redirect ~^http://elsewhere/(\w+)/(.*)$ http://$host/moved/$1?rest=$2;
            proxy_redirect ~*^HTTPS://CASE/ /ci/;
            proxy_pass http://BACKEND/two/;
        }
        location /redirdef/ {
            proxy_pass http://BACKEND/two/;
        }
        location /outer/ {
            proxy_hide_header X-Custom-B;
            location /outer/inner/ {
                proxy_pass http://BACKEND;
            }
            location /outer/own/ {
                proxy_hide_header X-Custom-A;
                proxy_pass http://BACKEND;
            }
        }
    }
}
"#;

const BACKEND_DATE: &str = "Thu, 01 Jan 2015 00:00:00 GMT";

fn backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || answer(stream, port));
        }
    });
    port
}

fn query_param<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    target.split_once('?')?.1.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v)
    })
}

fn answer(mut stream: TcpStream, port: u16) {
    let Some(BackendRequest {
        method,
        target,
        headers,
        body,
    }) = read_backend_request(&stream)
    else {
        return;
    };
    let mut echoed: Vec<String> = headers
        .iter()
        .filter(|(n, _)| {
            matches!(
                n.as_str(),
                "content-length" | "content-type" | "transfer-encoding" | "x-test"
            )
        })
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    echoed.sort();
    let text = format!(
        "{method} {target}\nbody={}\nheaders={}\n",
        String::from_utf8_lossy(&body),
        echoed.join(";")
    );
    let mut extra = String::new();
    let status = match query_param(&target, "loc") {
        Some(loc) => {
            extra.push_str(&format!(
                "Location: {}\r\n",
                loc.replace("BACKEND", &format!("127.0.0.1:{port}"))
            ));
            302
        }
        None => 200,
    };
    if query_param(&target, "refresh").is_some() {
        extra.push_str(&format!(
            "Refresh: 5; url=http://127.0.0.1:{port}/two/r\r\n"
        ));
    }
    if query_param(&target, "xar").is_some() {
        extra.push_str("X-Accel-Redirect: /plain/redirected\r\n");
    }
    let reply = format!(
        "HTTP/1.1 {status} X\r\n\
         Server: backend/1.0\r\n\
         Date: {BACKEND_DATE}\r\n\
         Content-Type: text/plain\r\n\
         X-Custom-A: a\r\n\
         Set-Cookie: a=1; Domain=backend.local; Path=/two/x\r\n\
         X-Pad: avoid browser bug\r\n\
         X-Accel-Expires: 60\r\n\
         X-Accel-Limit-Rate: 100000000\r\n\
         X-Accel-Buffering: no\r\n\
         X-Accel-Charset: utf-8\r\n\
         Set-Cookie: b=2;domain=.BACKEND.local;path=/re/deep; HttpOnly\r\n\
         X-Http-Hidden: h\r\n\
         Set-Cookie: c=3; Domain=eu.backend.local; Path=/cookiedom/x\r\n\
         Set-Cookie: d=4; Domain=.other.local\r\n\
         Set-Cookie: e; Domain=backend.local\r\n\
         Expires: Thu, 01 Jan 2015 00:00:00 GMT\r\n\
         Cache-Control: max-age=60\r\n\
         Vary: Accept\r\n\
         X-Custom-B: b\r\n\
         {extra}Content-Length: {}\r\n\
         Connection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.write_all(reply.as_bytes());
}

/// Status, the headers that matter in order (own Server/Date and the proxy's port
/// normalised), and the body. A method written `GET/1.0` is sent in an HTTP/1.0 request.
fn ask(port: u16, method: &str, path: &str, body: &str) -> (u16, Vec<String>, String) {
    let (method, version) = method.split_once('/').unwrap_or((method, "1.1"));
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/{version}\r\nHost: localhost\r\nX-Test: t1\r\nContent-Type: text/x-client\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
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
    let mut headers = Vec::new();
    for line in head.lines().skip(1) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        let value = value.trim().replace(&format!(":{port}"), ":PORT");
        let value = match name.as_str() {
            "server" if value != "backend/1.0" => "<own>".to_owned(),
            "date" if value != BACKEND_DATE => "<own>".to_owned(),
            "server" | "date" | "x-pad" | "set-cookie" | "location" | "refresh" | "expires"
            | "cache-control" | "vary" | "content-type" => value,
            n if n.starts_with("x-") => value,
            _ => continue,
        };
        headers.push(format!("{name}: {value}"));
    }
    // Compared in order within one name (Set-Cookie lines above all). Across names halo
    // keeps the upstream's order of each name's first line, as its header map groups the
    // lines of one name; nginx writes its own Server, Date and a rewritten Location first.
    headers.sort_by(|a, b| a.split(':').next().cmp(&b.split(':').next()));
    (status, headers, body.to_owned())
}

#[test]
fn proxy_header_rules_answer_like_nginx() {
    let dir = Scratch::new("proxy-headers-vs-nginx");
    let backend = format!("127.0.0.1:{}", backend());
    let (nginx_port, halo_port) = (free_port(), free_port());
    let conf = |port: u16| {
        CONF.replace("BACKEND", &backend)
            .replace("PORT", &port.to_string())
    };
    dir.write("nginx.conf", &conf(nginx_port));
    dir.write("halo.conf", &conf(halo_port));
    let (_nginx, _halo) = spawn_nginx_and_halo(&dir);
    wait_port(nginx_port);
    wait_port(halo_port);
    let cases: &[(&str, &str, &str)] = &[
        ("GET", "/plain/a?x=1", ""),
        ("POST", "/plain/form", "hello"),
        ("GET", "/hide/a", ""),
        ("GET", "/pass/a", ""),
        ("GET", "/passdate/a", ""),
        ("GET/1.0", "/passdate/a", ""),
        ("GET/1.0", "/pass/a", ""),
        ("GET/1.0", "/plain/a", ""),
        ("GET", "/ignore/a?xar=1", ""),
        ("POST", "/method/a", "payload"),
        ("GET", "/method/b", ""),
        ("GET", "/methodvar/a?m=PATCH", ""),
        ("POST", "/methodvar/b?m=OPTIONS", "x"),
        ("POST", "/body/a?id=7", "client body"),
        ("GET", "/body/b?id=8", ""),
        ("PUT", "/body/c?id=", "zz"),
        ("GET", "/cookie/x", ""),
        ("GET", "/cookiedom/x", ""),
        ("GET", "/redir/a?loc=http://BACKEND/two/next", ""),
        ("GET", "/redir/a?loc=http://elsewhere/abc/def/g", ""),
        ("GET", "/redir/a?loc=https://case/q", ""),
        ("GET", "/redir/a?loc=/relative/x", ""),
        ("GET", "/redir/a?refresh=1", ""),
        ("GET", "/redirdef/a?loc=http://BACKEND/two/x", ""),
        ("GET", "/redirdef/a?loc=http://other/two/x", ""),
        ("GET", "/outer/inner/a", ""),
        ("GET", "/outer/own/a", ""),
    ];
    let mut differ = Vec::new();
    for (method, path, body) in cases {
        let expected = ask(nginx_port, method, path, body);
        let got = ask(halo_port, method, path, body);
        if expected != got {
            differ.push(format!(
                "{method} {path}:\n  nginx {expected:?}\n  halo  {got:?}"
            ));
        }
    }
    assert!(differ.is_empty(), "answers differ:\n{}", differ.join("\n"));
}
