//! Location matching with nested locations against Debian's nginx: one nginx.conf served by
//! nginx and by halo in the same test, the same URIs to both; which location answered (its
//! `return` text) and the headers it inherited must agree.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

const CONF: &str = r#"
events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:PORT;
        server_name localhost;
        location / {
            add_header X-Outer root always;
            return 200 "root";
        }
        location /api/ {
            add_header X-Outer api always;
            location /api/v1/ {
                return 200 "api-v1";
            }
            location ~ \.json$ {
                return 200 "api-json";
            }
            location = /api/exact {
                return 200 "api-exact";
            }
            location ^~ /api/static/ {
                location ~ \.css$ {
                    return 200 "api-static-css";
                }
                return 200 "api-static";
            }
            return 200 "api";
        }
        location ~ \.json$ {
            return 200 "top-json";
        }
        location ~ ^/img/ {
            add_header X-Outer img always;
            location ~ \.png$ {
                return 200 "img-png";
            }
            return 200 "img";
        }
        location ^~ /noregex/ {
            location /noregex/deep/ {
                return 200 "noregex-deep";
            }
            return 200 "noregex";
        }
    }
}
"#;

fn ask(port: u16, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head_status(head);
    let outer = head_header(head, "x-outer");
    (status, outer, body.to_owned())
}

#[test]
fn nested_locations_match_like_nginx() {
    let dir = Scratch::new("locations-vs-nginx");
    let d = dir.0.display().to_string();
    let (nginx_port, halo_port) = (free_port(), free_port());
    let conf = |port: u16| CONF.replace("DIR", &d).replace("PORT", &port.to_string());
    dir.write("nginx.conf", &conf(nginx_port));
    dir.write("halo.conf", &conf(halo_port));
    let (_nginx, _halo) = spawn_nginx_and_halo(&dir);
    wait_port(nginx_port);
    wait_port(halo_port);
    let uris = [
        "/",
        "/x.json",
        "/api/",
        "/api/x",
        "/api/x.json",
        "/api/v1/",
        "/api/v1/a.json",
        "/api/exact",
        "/api/exact.json",
        "/api/static/a.css",
        "/api/static/a.json",
        "/api/static/",
        "/img/a.png",
        "/img/a.gif",
        "/img/a.json",
        "/noregex/a.json",
        "/noregex/deep/a.json",
        "/other.png",
    ];
    let mut differ = Vec::new();
    for uri in uris {
        let want = ask(nginx_port, uri);
        let got = ask(halo_port, uri);
        if want != got {
            differ.push(format!("{uri}: nginx {want:?}, halo {got:?}"));
        }
    }
    assert!(differ.is_empty(), "answers differ:\n{}", differ.join("\n"));
}
