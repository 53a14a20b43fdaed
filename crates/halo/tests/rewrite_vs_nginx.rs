//! The rewrite and map modules against Debian's nginx: one nginx.conf, served by nginx and by halo in
//! the same test, the same requests to both; status, Location path and body must agree.
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
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    map $arg_v $mapped { default "d"; ~^a "starts-a"; ~*^Z "z-any-case"; b "exact-b"; }
    map $mapped $chained { default "other"; exact-b "chained-b"; }
    server {
        listen 127.0.0.1:PORT;
        server_name localhost;
        set $who "world";
        if ($request_method = POST) { return 405; }
        rewrite ^/old/(.*)$ /new/$1 last;
        rewrite ^/moved/(.*)$ /new/$1 permanent;
        location /new/ {
            if ($arg_x ~* "^y(es)?$") { set $who "x$1"; }
            return 200 "hello $who $uri $args";
        }
        location /args/ {
            rewrite ^/args/(.*)$ /new/$1?added=1 last;
        }
        location /noargs/ {
            rewrite ^ /new/plain? last;
        }
        location ~ ^/cap/(\d+)/(?<word>\w+)$ {
            return 200 "num=$1 word=$word";
        }
        location /br/ {
            set $v a;
            break;
            set $v b;
            return 200 "v=$v";
        }
        location /file/ {
            if (-f $request_filename) { return 200 "file $uri"; }
            if (!-e $request_filename) { return 404; }
            return 200 "other";
        }
        location /loop {
            rewrite ^ /loop last;
        }
        location /redir/ {
            rewrite ^/redir/(.*)$ /new/$1 redirect;
        }
        location = /empty {
            if ($http_x_flag) { return 200 "flag=$http_x_flag"; }
            return 200 "no flag";
        }
        location /map/ {
            return 200 "$connection_upgrade $mapped $chained";
        }
        location /neq/ {
            if ($arg_a != "1") { return 403; }
            return 200 "a is 1";
        }
    }
}
"#;

/// (status, Location path without scheme/host/port, body) of one request.
fn ask(port: u16, method: &str, path: &str, headers: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head_status(head);
    let location = head_header(head, "location");
    let location = match location.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map_or(String::new(), |i| rest[i..].to_owned()),
        None => location,
    };
    // Only the bodies of 200s are compared: error pages name the server.
    let body = if status == 200 {
        body.to_owned()
    } else {
        String::new()
    };
    (status, location, body)
}

#[test]
fn rewrite_module_answers_like_nginx() {
    let dir = Scratch::new("rewrite-vs-nginx");
    std::fs::create_dir_all(dir.path("html/file")).unwrap();
    std::fs::write(dir.path("html/file/there.txt"), "x").unwrap();
    std::fs::create_dir_all(dir.path("html/file/adir")).unwrap();
    let d = dir.0.display().to_string();
    let (nginx_port, halo_port) = (free_port(), free_port());
    let conf = |port: u16| CONF.replace("DIR", &d).replace("PORT", &port.to_string());
    dir.write("nginx.conf", &conf(nginx_port));
    dir.write("halo.conf", &conf(halo_port));
    let (_nginx, _halo) = spawn_nginx_and_halo(&dir);
    wait_port(nginx_port);
    wait_port(halo_port);
    let cases: &[(&str, &str, &str)] = &[
        ("GET", "/old/abc", ""),
        ("GET", "/old/abc?q=1", ""),
        ("GET", "/moved/abc?q=1", ""),
        ("POST", "/new/x", ""),
        ("GET", "/new/x?x=yes", ""),
        ("GET", "/new/x?x=Y", ""),
        ("GET", "/new/x?x=no", ""),
        ("GET", "/args/p?orig=2", ""),
        ("GET", "/noargs/p?orig=2", ""),
        ("GET", "/cap/42/hello", ""),
        ("GET", "/cap/x/hello", ""),
        ("GET", "/br/", ""),
        ("GET", "/file/there.txt", ""),
        ("GET", "/file/adir", ""),
        ("GET", "/file/missing", ""),
        ("GET", "/loop", ""),
        ("GET", "/redir/a?b=c", ""),
        ("GET", "/empty", ""),
        ("GET", "/empty", "X-Flag: on\r\n"),
        ("GET", "/empty", "X-Flag: 0\r\n"),
        ("GET", "/map/", ""),
        ("GET", "/map/?v=b", "Upgrade: websocket\r\n"),
        ("GET", "/map/?v=abc", ""),
        ("GET", "/map/?v=zZ", ""),
        ("GET", "/map/?v=ba", ""),
        ("GET", "/neq/?a=1", ""),
        ("GET", "/neq/?a=2", ""),
    ];
    let mut differ = Vec::new();
    for (method, path, headers) in cases {
        let want = ask(nginx_port, method, path, headers);
        let got = ask(halo_port, method, path, headers);
        if want != got {
            differ.push(format!(
                "{method} {path} {headers:?}: nginx {want:?}, halo {got:?}"
            ));
        }
    }
    assert!(differ.is_empty(), "answers differ:\n{}", differ.join("\n"));
}
