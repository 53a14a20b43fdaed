//! Variables, `geo`, `split_clients` and regex `server_name` captures against Debian's nginx:
//! one nginx.conf, served by nginx and by halo in the same test, the same requests to both;
//! status, the `X-*` headers and the body must agree. Values that are random or follow the
//! clock (`$request_id`, `$msec`, `$request_time`, `$time_*`) are compared by shape. realip
//! (`X-Forwarded-For` from 127.0.0.1) gives each request the client address it names, for
//! `geo` and `split_clients`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::*;

const CONF: &str = r#"
events {}
http {
    access_log off;
    set_real_ip_from 127.0.0.1;
    real_ip_header X-Forwarded-For;
    geo $net {
        default        world;
        10.0.0.0/8     ten;
        10.1.0.0/16    ten-one;
        10.1.2.3       host;
        192.0.2.0/24   doc;
        198.51.100.7/24 net2;
        2001:db8::/32  doc6;
        2001:db8:1::/48 doc6-1;
        delete         192.0.2.0/24;
    }
    geo $arg_ip $argnet {
        default          none;
        203.0.113.0/24   net3;
        255.255.255.255  invalid;
    }
    geo $nodefault {
        10.0.0.0/8 ten;
    }
    split_clients "${remote_addr}AAA" $bucket {
        10%   a;
        20.5% b;
        *     c;
    }
    split_clients "$arg_k" $nostar {
        50% half;
    }
    map $cookie_variant $ab { default a; b b; }
    server {
        listen 127.0.0.1:PORT;
        server_name localhost;
        location /cookie {
            return 200 "v=[$cookie_variant] s=[$cookie_Session] ab=$ab all=[$http_cookie]\n";
        }
        location /hdr {
            return 200 "xff=[$http_x_forwarded_for] a=[$http_x_a] ua=[$http_user_agent] ct=[$content_type] cl=[$content_length] addr=$remote_addr\n";
        }
        location /geo {
            return 200 "addr=$remote_addr net=$net argnet=$argnet nd=[$nodefault] bucket=$bucket nostar=[$nostar]\n";
        }
        location /id {
            add_header X-Id $request_id;
            return 200 "$request_id $request_id\n";
        }
        location /time {
            return 200 "msec=$msec rt=$request_time iso=$time_iso8601 local=$time_local\n";
        }
        location /misc {
            return 200 "args=[$args] is=[$is_args] https=[$https] hostname=$hostname\n";
        }
        location /sent {
            add_header X-Ct $sent_http_content_type;
            add_header X-Cl $sent_http_content_length;
            add_header X-Srv "[$sent_http_server]";
            return 200 "sent\n";
        }
        location /up {
            proxy_pass http://127.0.0.1:BACKPORT/backend;
            add_header X-Up "[$upstream_http_x_backend]";
            add_header X-Up-Ct "[$upstream_http_content_type]";
            add_header X-Sent-Backend "[$sent_http_x_backend]";
        }
    }
    server {
        listen 127.0.0.1:BACKPORT;
        server_name backend;
        location / {
            add_header X-Backend "b1";
            return 200 "backend\n";
        }
    }
    server {
        listen 127.0.0.1:PORT;
        server_name ~^(?<sub>\w+)\.example\.com$;
        root DIR/$sub;
        location /ret {
            proxy_set_header X-Sub $sub;
            return 200 "sub=$sub one=$1\n";
        }
    }
    server {
        listen 127.0.0.1:PORT;
        server_name ~^www\.(?<dom>[a-z]+)\.test$;
        location ~ ^/loc/(?<part>\w+) {
            return 200 "dom=$dom part=$part one=$1\n";
        }
        location /srv {
            return 200 "dom=$dom one=$1\n";
        }
    }
}
"#;

/// (status, `X-*` headers sorted, body) of one request.
fn ask(port: u16, path: &str, host: &str, headers: &str) -> (u16, Vec<String>, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut x: Vec<String> = head
        .lines()
        .filter(|l| l.len() > 2 && l[..2].eq_ignore_ascii_case("x-"))
        .map(|l| l.to_ascii_lowercase())
        .collect();
    x.sort();
    let body = if status == 200 {
        body.to_owned()
    } else {
        String::new()
    };
    (status, x, body)
}

/// Random and clock values replaced by their shape; `$request_id` must be the same wherever
/// one response shows it.
fn shapes(text: &str) -> String {
    let id = regex::Regex::new(r"\b[0-9a-f]{32}\b").unwrap();
    let ids: Vec<&str> = id.find_iter(text).map(|m| m.as_str()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "one request, several ids: {text}"
    );
    let text = id.replace_all(text, "<ID>");
    let msec = regex::Regex::new(r"msec=\d{10}\.\d{3}").unwrap();
    let text = msec.replace_all(&text, "msec=<MSEC>");
    let rt = regex::Regex::new(r"rt=\d+\.\d{3}").unwrap();
    let text = rt.replace_all(&text, "rt=<SECONDS>");
    let iso = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d").unwrap();
    let text = iso.replace_all(&text, "<ISO8601>");
    let local = regex::Regex::new(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}").unwrap();
    local.replace_all(&text, "<LOCAL>").into_owned()
}

#[test]
fn variables_answer_like_nginx() {
    let dir = Scratch::new("variables-vs-nginx");
    std::fs::create_dir_all(dir.path("alpha")).unwrap();
    std::fs::write(dir.path("alpha/page.txt"), "alpha page\n").unwrap();
    std::fs::create_dir_all(dir.path("beta")).unwrap();
    std::fs::write(dir.path("beta/page.txt"), "beta page\n").unwrap();
    let d = dir.0.display().to_string();
    let (nginx_port, halo_port) = (free_port(), free_port());
    let (nginx_back, halo_back) = (free_port(), free_port());
    let conf = |port: u16, back: u16| {
        CONF.replace("DIR", &d)
            .replace("BACKPORT", &back.to_string())
            .replace("PORT", &port.to_string())
    };
    dir.write("nginx.conf", &conf(nginx_port, nginx_back));
    dir.write("halo.conf", &conf(halo_port, halo_back));
    let (_nginx, _halo) = spawn_nginx_and_halo(&dir);
    for port in [nginx_port, halo_port, nginx_back, halo_back] {
        wait_port(port);
    }
    let xff = |addr: &str| format!("X-Forwarded-For: {addr}\r\n");
    let cases: Vec<(&str, &str, String)> = vec![
        ("/cookie", "localhost", String::new()),
        ("/cookie", "localhost", "Cookie: variant=b\r\n".into()),
        (
            "/cookie",
            "localhost",
            "Cookie: a=1; variant = b ; session=xyz\r\n".into(),
        ),
        (
            "/cookie",
            "localhost",
            "Cookie: a=1\r\nCookie: SESSION=two, variant=c\r\n".into(),
        ),
        (
            "/cookie",
            "localhost",
            "Cookie: variants=x; variant\r\n".into(),
        ),
        ("/hdr", "localhost", "X-A: one\r\nX-A: two\r\n".into()),
        (
            "/hdr",
            "localhost",
            "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\nUser-Agent: u1\r\nUser-Agent: u2\r\n"
                .into(),
        ),
        (
            "/hdr",
            "localhost",
            "Content-Type: text/plain\r\nContent-Length: 0\r\n".into(),
        ),
        ("/geo", "localhost", String::new()),
        ("/geo", "localhost", xff("10.9.9.9")),
        ("/geo", "localhost", xff("10.1.9.9")),
        ("/geo", "localhost", xff("10.1.2.3")),
        ("/geo", "localhost", xff("192.0.2.1")),
        ("/geo", "localhost", xff("198.51.100.200")),
        ("/geo", "localhost", xff("2001:db8::1")),
        ("/geo", "localhost", xff("2001:db8:1::1")),
        ("/geo", "localhost", xff("2001:db9::1")),
        ("/geo", "localhost", xff("::ffff:10.1.2.3")),
        ("/geo?ip=203.0.113.9", "localhost", String::new()),
        ("/geo?ip=nonsense", "localhost", String::new()),
        ("/geo?ip=2001:db8::5", "localhost", String::new()),
        ("/geo?k=abc", "localhost", xff("192.0.2.10")),
        ("/geo?k=hello", "localhost", xff("192.0.2.11")),
        ("/geo?k=x", "localhost", xff("192.0.2.12")),
        ("/geo?k=1", "localhost", xff("192.0.2.13")),
        ("/geo?k=22", "localhost", xff("192.0.2.14")),
        ("/geo?k=333", "localhost", xff("192.0.2.15")),
        ("/geo?k=4444", "localhost", xff("192.0.2.16")),
        ("/geo", "localhost", xff("192.0.2.17")),
        ("/geo", "localhost", xff("192.0.2.18")),
        ("/geo", "localhost", xff("192.0.2.19")),
        ("/geo", "localhost", xff("192.0.2.20")),
        ("/id", "localhost", String::new()),
        ("/time", "localhost", String::new()),
        ("/misc", "localhost", String::new()),
        ("/misc?a=1", "localhost", String::new()),
        ("/sent", "localhost", String::new()),
        ("/up", "localhost", String::new()),
        ("/ret", "alpha.example.com", String::new()),
        ("/page.txt", "alpha.example.com", String::new()),
        ("/page.txt", "beta.example.com", String::new()),
        ("/page.txt", "gamma.example.com", String::new()),
        ("/loc/piece", "www.site.test", String::new()),
        ("/srv", "www.site.test", String::new()),
    ];
    let mut differ = Vec::new();
    for (path, host, headers) in &cases {
        let (ws, wh, wb) = ask(nginx_port, path, host, headers);
        let (gs, gh, gb) = ask(halo_port, path, host, headers);
        let want = (ws, shapes(&wh.join("\n")), shapes(&wb));
        let got = (gs, shapes(&gh.join("\n")), shapes(&gb));
        if std::env::var_os("HALO_VARS_VERBOSE").is_some() {
            eprintln!("{path} Host: {host} {headers:?}\n  nginx {want:?}\n  halo  {got:?}");
        }
        if want != got {
            differ.push(format!(
                "{path} Host: {host} {headers:?}:\n  nginx {want:?}\n  halo  {got:?}"
            ));
        }
    }
    // A new id for every request.
    let id = |port| ask(port, "/id", "localhost", "").2;
    assert_ne!(id(halo_port), id(halo_port));
    assert!(differ.is_empty(), "answers differ:\n{}", differ.join("\n"));
}

/// An unknown variable is refused at the line of the directive using it (nginx names no line:
/// `unknown "nosuch_var" variable`), also when it is only used in a map's source.
#[test]
fn unknown_variables_are_refused_at_the_line_using_them() {
    let dir = Scratch::new("variables-unknown");
    let conf = |line: &str| {
        format!(
            "events {{}}\nhttp {{\n    access_log off;\n    map $nosuch_src $m {{ default a; }}\n    server {{\n        listen 127.0.0.1:{};\n        location / {{\n            add_header X-A $m;\n            {line}\n            return 200 ok;\n        }}\n    }}\n}}\n",
            free_port()
        )
    };
    for (name, text, line, var) in [
        ("map.conf", conf("add_header X-B b;"), 4, "$nosuch_src"),
        (
            "header.conf",
            conf("add_header X-B $cookie_ok$nosuch_var;"),
            9,
            "$nosuch_var",
        ),
    ] {
        let text = text.replace(
            "$nosuch_src",
            if line == 4 {
                "$nosuch_src"
            } else {
                "$cookie_a"
            },
        );
        let path = dir.write(name, &text);
        let out = Command::new(halo_bin())
            .args(["check", "--nginx", path.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: {stderr}");
        let at = format!("{}:{line}:", path.display());
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&at) && l.contains(var)),
            "{name}: want an error at {at} naming {var}:\n{stderr}"
        );
    }
}
