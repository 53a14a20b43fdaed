//! auth_request against Debian's nginx: one nginx.conf served by nginx and by halo in the same
//! test, an auth service and an application played by one small backend thread. The auth
//! service answers with the status the request asks for (`X-Want`), so every outcome (2xx,
//! 401 with a challenge, 403, anything else) and its combination with `satisfy` and
//! `auth_basic` is compared: status, WWW-Authenticate and the application's echo, which shows
//! what `auth_request_set` passed on.
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
    server {
        listen 127.0.0.1:PORT;
        server_name localhost;
        location = /auth {
            internal;
            proxy_pass http://BACKEND/check;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
        }
        location /app/ {
            auth_request /auth;
            auth_request_set $user $upstream_http_x_user;
            auth_request_set $code $upstream_status;
            proxy_set_header X-Auth-User $user;
            proxy_set_header X-Auth-Code $code;
            proxy_pass http://BACKEND;
        }
        location /any/ {
            satisfy any;
            deny all;
            auth_request /auth;
            proxy_pass http://BACKEND;
        }
        location /basic/ {
            auth_basic "zone";
            auth_basic_user_file DIR/htpasswd;
            auth_request /auth;
            proxy_pass http://BACKEND;
        }
        location /basicany/ {
            satisfy any;
            auth_basic "zone";
            auth_basic_user_file DIR/htpasswd;
            auth_request /auth;
            proxy_pass http://BACKEND;
        }
        location /off/ {
            auth_request off;
            proxy_pass http://BACKEND;
        }
    }
}
"#;

/// The auth service (`/check`: the status asked for in `X-Want`, a user name, a challenge
/// with 401) and the application (everything else: an echo of the headers that matter).
fn backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || answer(stream));
        }
    });
    port
}

fn answer(mut stream: TcpStream) {
    let Some(BackendRequest {
        method,
        target,
        headers,
        ..
    }) = read_backend_request(&stream)
    else {
        return;
    };
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let reply = if target.starts_with("/check") {
        let want: u16 = get("x-want").parse().unwrap_or(204);
        let challenge = if want == 401 {
            "WWW-Authenticate: Bearer realm=\"sso\"\r\n"
        } else {
            ""
        };
        format!(
            "HTTP/1.1 {want} X\r\nX-User: bob\r\n{challenge}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
    } else {
        let text = format!(
            "{method} {target} user={} code={} original={}\n",
            get("x-auth-user"),
            get("x-auth-code"),
            get("x-original-uri")
        );
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        )
    };
    let _ = stream.write_all(reply.as_bytes());
}

/// (status, WWW-Authenticate, body of a 200).
fn ask(port: u16, method: &str, path: &str, headers: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Content-Length: 4\r\nConnection: close\r\n\r\nbody"
    )
    .unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head_status(head);
    let challenge = head_header(head, "www-authenticate");
    let body = if status == 200 {
        body.to_owned()
    } else {
        String::new()
    };
    (status, challenge, body)
}

#[test]
fn auth_request_answers_like_nginx() {
    let dir = Scratch::new("auth-request-vs-nginx");
    // alice:secret
    std::fs::write(dir.path("htpasswd"), "alice:{PLAIN}secret\n").unwrap();
    let d = dir.0.display().to_string();
    let backend = format!("127.0.0.1:{}", backend());
    let (nginx_port, halo_port) = (free_port(), free_port());
    let conf = |port: u16| {
        CONF.replace("DIR", &d)
            .replace("BACKEND", &backend)
            .replace("PORT", &port.to_string())
    };
    dir.write("nginx.conf", &conf(nginx_port));
    dir.write("halo.conf", &conf(halo_port));
    let (_nginx, _halo) = spawn_nginx_and_halo(&dir);
    wait_port(nginx_port);
    wait_port(halo_port);
    let good = "Authorization: Basic YWxpY2U6c2VjcmV0\r\n";
    let want = |code: u16| format!("X-Want: {code}\r\n");
    let mut cases: Vec<(&str, &str, String)> = Vec::new();
    for code in [200, 204, 401, 403, 404, 500, 302] {
        cases.push(("GET", "/app/page?x=1", want(code)));
    }
    cases.push(("POST", "/app/form", want(204)));
    for code in [204, 401, 403] {
        cases.push(("GET", "/any/", want(code)));
        cases.push(("GET", "/basic/", want(code)));
        cases.push(("GET", "/basic/", format!("{}{good}", want(code))));
        cases.push(("GET", "/basicany/", want(code)));
        cases.push(("GET", "/basicany/", format!("{}{good}", want(code))));
    }
    cases.push(("GET", "/off/", want(403)));
    cases.push(("GET", "/auth", String::new()));
    let mut differ = Vec::new();
    let mut statuses = Vec::new();
    for (method, path, headers) in &cases {
        let expected = ask(nginx_port, method, path, headers);
        let got = ask(halo_port, method, path, headers);
        statuses.push(got.0);
        if expected != got {
            differ.push(format!(
                "{method} {path} {headers:?}: nginx {expected:?}, halo {got:?}"
            ));
        }
    }
    assert!(differ.is_empty(), "answers differ:\n{}", differ.join("\n"));
    for code in [200, 401, 403, 404, 500] {
        assert!(
            statuses.contains(&code),
            "no case answered {code}: {statuses:?}"
        );
    }
}
