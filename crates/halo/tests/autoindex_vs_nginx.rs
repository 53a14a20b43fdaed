//! Directory listings against Debian's nginx: one nginx.conf, served by nginx and by halo in
//! the same test, the same requests to both; the status, Content-Type and the whole listing
//! (html with exact and rounded sizes, json, jsonp, xml) must agree; so must the types of
//! files and `return` texts under location-level `types` and `default_type`. The files have fixed
//! modification times, so dates compare too. HTTP/1.0 requests keep nginx's body unchunked.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use common::*;

const CONF: &str = r#"
events {}
http {
    access_log off;
    server {
        listen 127.0.0.1:PORT;
        server_name localhost;
        autoindex on;
        root DIR/list;
        location /html/ {
            alias DIR/list/;
        }
        location /rounded/ {
            alias DIR/list/;
            autoindex_exact_size off;
        }
        location /json/ {
            alias DIR/list/;
            autoindex_format json;
        }
        location /jsonp/ {
            alias DIR/list/;
            autoindex_format jsonp;
        }
        location /xml/ {
            alias DIR/list/;
            autoindex_format xml;
        }
        location /off/ {
            alias DIR/list/;
            autoindex off;
        }
        location /typed/ {
            alias DIR/list/;
            types { text/x-halo txt; }
            default_type application/x-default;
            location /typed/Zdir/ {
                alias DIR/list/Zdir/;
                default_type text/x-inner;
            }
        }
        location = /typed-return {
            default_type application/json;
            return 200 '{"ok":true}';
        }
        location /indexed/ {
            alias DIR/list/sub/;
            index index.html;
        }
    }
}
"#;

/// 2023-11-14 22:13:20 GMT.
const MTIME: u64 = 1_700_000_000;

#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

fn ask(port: u16, method: &str, path: &str) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "{method} {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let content_type = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    Answer {
        status,
        content_type,
        // Error pages name the server.
        body: if status == 200 {
            body.to_owned()
        } else {
            String::new()
        },
    }
}

fn touch(path: &Path, secs: u64) {
    std::fs::File::open(path)
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

#[test]
fn listings_answer_like_nginx() {
    let dir = Scratch::new("autoindex-vs-nginx");
    let list = dir.path("list");
    std::fs::create_dir_all(list.join("sub")).unwrap();
    std::fs::create_dir_all(list.join("Zdir")).unwrap();
    let long = format!("{}.txt", "long-name-".repeat(6));
    let files: Vec<(String, Vec<u8>, u64)> = vec![
        ("a.txt".into(), vec![b'a'; 100], MTIME),
        ("big.bin".into(), vec![0; 300_000], MTIME + 61),
        ("mid.bin".into(), vec![0; 10_752], MTIME + 3600),
        ("huge-ish.bin".into(), vec![0; 1_572_864], MTIME),
        ("b&c <x> \"q\".txt".into(), b"x".to_vec(), MTIME),
        ("f\u{e9}\u{e9} 100%.txt".into(), b"utf8".to_vec(), MTIME),
        (long, b"long".to_vec(), MTIME),
        (".hidden".into(), b"h".to_vec(), MTIME),
        ("sub/index.html".into(), b"<p>index</p>".to_vec(), MTIME),
        ("Zdir/x".into(), b"x".to_vec(), MTIME),
    ];
    for (name, data, mtime) in &files {
        let path = list.join(name);
        std::fs::write(&path, data).unwrap();
        touch(&path, *mtime);
    }
    touch(&list.join("sub"), MTIME + 86_400);
    touch(&list.join("Zdir"), MTIME + 120);
    let d = dir.0.display().to_string();
    let (nginx_port, halo_port) = (free_port(), free_port());
    let conf = |port: u16| CONF.replace("DIR", &d).replace("PORT", &port.to_string());
    dir.write("nginx.conf", &conf(nginx_port));
    dir.write("halo.conf", &conf(halo_port));
    let (_nginx, _halo) = spawn_nginx_and_halo(&dir);
    wait_port(nginx_port);
    wait_port(halo_port);

    let cases = [
        // No location takes these: the server's root.
        ("GET", "/"),
        ("GET", "/Zdir/"),
        ("GET", "/sub/"),
        ("GET", "/html/"),
        ("HEAD", "/html/"),
        ("GET", "/html/?a=1"),
        ("GET", "/html/Zdir/"),
        ("GET", "/html/missing/"),
        ("GET", "/html/a.txt"),
        ("GET", "/rounded/"),
        ("GET", "/json/"),
        ("GET", "/json/Zdir/"),
        ("GET", "/jsonp/?callback=cb.x_1"),
        ("GET", "/jsonp/"),
        ("GET", "/jsonp/?callback=bad(name"),
        ("GET", "/xml/"),
        ("GET", "/off/"),
        ("GET", "/indexed/"),
        // types and default_type at location level, inherited by a nested location.
        ("GET", "/typed/a.txt"),
        ("GET", "/typed/big.bin"),
        ("GET", "/typed/Zdir/x"),
        ("GET", "/typed-return"),
    ];
    let mut differ = Vec::new();
    for (method, path) in cases {
        let want = ask(nginx_port, method, path);
        let got = ask(halo_port, method, path);
        if want != got {
            differ.push(format!(
                "{method} {path}:\n  nginx {want:?}\n  halo  {got:?}"
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
