//! try_files, named locations and error_page's internal redirects against Debian's nginx: one
//! nginx.conf served by nginx and by halo in the same test, the same requests to both; status,
//! Location, the `X-Loc` header of the location that answered, and 200 bodies must agree.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

const CONF: &str = r#"
events {}
http {
    root DIR/html;
    access_log off;
    server {
        listen 127.0.0.1:PORT;
        server_name localhost;
        location / {
            add_header X-Loc root;
            try_files $uri $uri/ /fallback/$uri?from=try;
        }
        location /fallback/ {
            add_header X-Loc fallback;
            return 200 "fallback uri=$uri args=$args request_uri=$request_uri";
        }
        location /code/ {
            try_files $uri =418;
        }
        location /named/ {
            add_header X-Loc named-entry;
            try_files $uri @app;
        }
        location @app {
            add_header X-Loc app;
            return 200 "app uri=$uri args=$args method=$request_method";
        }
        location /keepargs/ {
            try_files /nothing /fallback/kept?$args;
        }
        location /hidden/ {
            internal;
            add_header X-Loc hidden;
            return 200 "hidden uri=$uri";
        }
        location /tointernal/ {
            try_files /nothing /hidden/x;
        }
        location /errors/ {
            error_page 404 /pages/missing.html;
            error_page 403 =200 /pages/missing.html;
            error_page 410 = @gone;
            error_page 500 =503 @gone;
        }
        location /errors/gone {
            error_page 404 = @gone;
        }
        location = /errors/forbidden/ {
            error_page 403 =200 /pages/missing.html;
            deny all;
        }
        location /pages/ {
            add_header X-Loc pages always;
        }
        location @gone {
            add_header X-Loc gone always;
            return 410 "gone uri=$uri";
        }
        location /loop/ {
            try_files /nothing /loop/again;
        }
        location /alias/ {
            alias DIR/other/;
            try_files $uri =404;
        }
    }
}
"#;

/// (status, Location, X-Loc, body of a 200/410).
fn ask(port: u16, method: &str, path: &str) -> (u16, String, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head_status(head);
    let header = |name: &str| head_header(head, name);
    let location = header("location");
    let location = match location.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map_or(String::new(), |i| rest[i..].to_owned()),
        None => location,
    };
    let body = if matches!(status, 200 | 410) && !body.contains("<center>") {
        body.to_owned()
    } else {
        String::new()
    };
    (status, location, header("x-loc"), body)
}

#[test]
fn internal_redirects_answer_like_nginx() {
    let dir = Scratch::new("try-files-vs-nginx");
    for sub in ["html/dir", "html/pages", "html/errors", "other"] {
        std::fs::create_dir_all(dir.path(sub)).unwrap();
    }
    std::fs::write(dir.path("html/file.txt"), "file\n").unwrap();
    std::fs::write(dir.path("html/dir/index.html"), "dir index\n").unwrap();
    std::fs::write(dir.path("html/pages/missing.html"), "missing page\n").unwrap();
    std::fs::write(dir.path("html/errors/here.txt"), "here\n").unwrap();
    std::fs::write(dir.path("other/a.txt"), "aliased\n").unwrap();
    let d = dir.0.display().to_string();
    let (nginx_port, halo_port) = (free_port(), free_port());
    let conf = |port: u16| CONF.replace("DIR", &d).replace("PORT", &port.to_string());
    dir.write("nginx.conf", &conf(nginx_port));
    dir.write("halo.conf", &conf(halo_port));
    let (_nginx, _halo) = spawn_nginx_and_halo(&dir);
    wait_port(nginx_port);
    wait_port(halo_port);
    let cases: &[(&str, &str)] = &[
        ("GET", "/file.txt"),
        ("GET", "/dir/"),
        ("GET", "/dir"),
        ("GET", "/nothing/here?a=1"),
        ("HEAD", "/nothing"),
        ("GET", "/code/x"),
        ("GET", "/named/x?q=2"),
        ("POST", "/named/x"),
        ("GET", "/keepargs/?k=v"),
        ("GET", "/hidden/x"),
        ("GET", "/tointernal/"),
        ("GET", "/errors/here.txt"),
        ("GET", "/errors/absent?z=1"),
        ("HEAD", "/errors/absent"),
        ("GET", "/errors/gone"),
        ("GET", "/errors/forbidden/"),
        ("GET", "/loop/x"),
        ("GET", "/alias/a.txt"),
        ("GET", "/alias/b.txt"),
    ];
    let mut differ = Vec::new();
    let mut statuses = Vec::new();
    for (method, path) in cases {
        let want = ask(nginx_port, method, path);
        let got = ask(halo_port, method, path);
        statuses.push(got.0);
        if want != got {
            differ.push(format!("{method} {path}: nginx {want:?}, halo {got:?}"));
        }
    }
    assert!(differ.is_empty(), "answers differ:\n{}", differ.join("\n"));
    for code in [200, 301, 404, 410, 418, 500] {
        assert!(
            statuses.contains(&code),
            "no case answered {code}: {statuses:?}"
        );
    }
}
