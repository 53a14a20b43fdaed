//! The access phase and the client's address against Debian's nginx: allow/deny, satisfy,
//! auth_basic, limit_except, internal, the realip module (X-Forwarded-For, X-Real-IP, PROXY
//! protocol) and `listen ... proxy_protocol`. One nginx.conf, served by nginx and by halo in the
//! same test; the same requests (raw bytes, so PROXY headers can lead) go to both, and status,
//! the `X-Addr` header and 200 bodies must agree.
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
    add_header X-Addr "$remote_addr|$remote_port|$realip_remote_addr" always;
    server {
        listen 127.0.0.1:PORT_A;
        server_name localhost;
        set_real_ip_from 127.0.0.1;
        set_real_ip_from 198.18.0.0/24;
        real_ip_header X-Forwarded-For;
        real_ip_recursive on;
        location /acl/ {
            deny 198.18.1.1;
            allow 198.18.1.0/24;
            allow 2001:db8::/32;
            deny all;
        }
        location /any/ {
            satisfy any;
            allow 198.18.2.0/24;
            deny all;
            auth_basic "zone";
            auth_basic_user_file DIR/htpasswd;
        }
        location /all/ {
            allow 198.18.2.0/24;
            deny all;
            auth_basic "zone";
            auth_basic_user_file DIR/htpasswd;
        }
        location /ro/ {
            limit_except GET {
                allow 198.18.3.0/24;
                deny all;
            }
        }
        location /hidden/ {
            internal;
        }
        location /via/ {
            rewrite ^/via/(.*)$ /hidden/$1 last;
        }
        location /ret/ {
            deny all;
            return 200 "return runs before access";
        }
    }
    server {
        listen 127.0.0.1:PORT_B proxy_protocol;
        server_name localhost;
        set_real_ip_from 127.0.0.1;
        real_ip_header proxy_protocol;
        add_header X-PP "$proxy_protocol_addr|$proxy_protocol_port|$proxy_protocol_server_addr|$proxy_protocol_server_port" always;
        location /acl/ {
            allow 198.18.5.0/24;
            deny all;
        }
    }
    server {
        listen 127.0.0.1:PORT_C;
        server_name localhost;
        location /loc/ {
            set_real_ip_from 127.0.0.0/8;
        }
        location /plain/ {
        }
    }
}
"#;

/// (status, X-Addr, X-PP, body of a 200) of one exchange; status 0 when the connection
/// closed without an answer.
fn exchange(port: u16, bytes: &[u8]) -> (u16, String, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(bytes).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head_status(head);
    let header = |name: &str| head_header(head, name);
    // The connection's own port differs between the two runs: only its presence counts.
    let addr = header("x-addr");
    let addr = match addr.split('|').collect::<Vec<_>>().as_slice() {
        [a, p, r] => {
            let p = match p.parse::<u16>() {
                Ok(_) if *r == "127.0.0.1" && *a == "127.0.0.1" => "PEER_PORT",
                _ => p,
            };
            format!("{a}|{p}|{r}")
        }
        _ => addr,
    };
    let body = if status == 200 {
        body.to_owned()
    } else {
        String::new()
    };
    (status, addr, header("x-pp"), body)
}

fn request(method: &str, path: &str, headers: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .into_bytes()
}

fn proxy_v2(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
    let mut v = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v.extend_from_slice(&[0x21, 0x11, 0, 12]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v
}

#[test]
fn access_and_real_ip_answer_like_nginx() {
    let dir = Scratch::new("access-vs-nginx");
    for sub in [
        "acl", "any", "all", "ro", "hidden", "loc", "plain", "ret", "via",
    ] {
        std::fs::create_dir_all(dir.path(&format!("html/{sub}"))).unwrap();
        std::fs::write(
            dir.path(&format!("html/{sub}/index.html")),
            format!("{sub}\n"),
        )
        .unwrap();
    }
    std::fs::write(dir.path("html/index.html"), "root\n").unwrap();
    // alice:secret
    std::fs::write(dir.path("htpasswd"), "alice:{PLAIN}secret\n").unwrap();
    let d = dir.0.display().to_string();
    let ports = |_: ()| (free_port(), free_port(), free_port());
    let (na, nb, nc) = ports(());
    let (ha, hb, hc) = ports(());
    let conf = |a: u16, b: u16, c: u16| {
        CONF.replace("DIR", &d)
            .replace("PORT_A", &a.to_string())
            .replace("PORT_B", &b.to_string())
            .replace("PORT_C", &c.to_string())
    };
    dir.write("nginx.conf", &conf(na, nb, nc));
    dir.write("halo.conf", &conf(ha, hb, hc));
    let (_nginx, _halo) = spawn_nginx_and_halo(&dir);
    for port in [na, nb, nc, ha, hb, hc] {
        wait_port(port);
    }
    let good = "Authorization: Basic YWxpY2U6c2VjcmV0\r\n";
    let bad = "Authorization: Basic YWxpY2U6d3Jvbmc=\r\n";
    let xff = |list: &str| format!("X-Forwarded-For: {list}\r\n");
    // (which server: 0 = A, 1 = B (PROXY protocol), 2 = C; bytes sent)
    let mut cases: Vec<(usize, String, Vec<u8>)> = Vec::new();
    let mut add = |server: usize, what: String, bytes: Vec<u8>| cases.push((server, what, bytes));
    for (path, headers) in [
        ("/acl/", String::new()),
        ("/acl/", xff("198.18.1.7")),
        ("/acl/", xff("198.18.1.1")),
        ("/acl/", xff("198.19.0.1")),
        ("/acl/", xff("2001:db8::5")),
        ("/acl/", xff("[2001:db8::5]:8080")),
        ("/acl/", xff("198.18.1.7:4321")),
        // Recursive: trusted hops on the right are skipped.
        ("/acl/", xff("198.18.1.7, 198.18.0.9, 198.18.0.10")),
        ("/acl/", xff("198.19.9.9, 198.18.1.7")),
        (
            "/acl/",
            format!("{}{}", xff("198.18.1.7"), xff("198.18.0.3")),
        ),
        // A malformed element ends the walk with the last good address.
        ("/acl/", xff("junk, 198.18.1.7")),
        ("/acl/", xff("junk")),
        ("/acl/", "X-Real-IP: 198.18.1.7\r\n".to_owned()),
        ("/any/", xff("198.18.2.5")),
        ("/any/", xff("198.19.2.5")),
        ("/any/", format!("{}{good}", xff("198.19.2.5"))),
        ("/any/", format!("{}{bad}", xff("198.19.2.5"))),
        ("/all/", format!("{}{good}", xff("198.18.2.5"))),
        ("/all/", xff("198.18.2.5")),
        ("/all/", format!("{}{good}", xff("198.19.2.5"))),
        ("/hidden/", String::new()),
        ("/via/", String::new()),
        ("/ret/", String::new()),
        ("/ro/", String::new()),
    ] {
        add(
            0,
            format!("A GET {path} {headers:?}"),
            request("GET", path, &headers),
        );
    }
    for (method, headers) in [
        ("HEAD", String::new()),
        ("DELETE", String::new()),
        ("PUT", xff("198.18.3.4")),
        ("PUT", xff("198.18.4.4")),
    ] {
        add(
            0,
            format!("A {method} /ro/ {headers:?}"),
            request(method, "/ro/", &headers),
        );
    }
    let get = request("GET", "/acl/", "");
    let with = |prefix: &[u8]| [prefix, &get].concat();
    add(
        1,
        "B v1 allowed".into(),
        with(b"PROXY TCP4 198.18.5.7 198.18.0.1 5555 80\r\n"),
    );
    add(
        1,
        "B v1 denied".into(),
        with(b"PROXY TCP4 198.18.6.7 198.18.0.1 5555 80\r\n"),
    );
    add(
        1,
        "B v1 tcp6".into(),
        with(b"PROXY TCP6 2001:db8::7 2001:db8::1 5555 443\r\n"),
    );
    add(1, "B v1 unknown".into(), with(b"PROXY UNKNOWN\r\n"));
    add(
        1,
        "B v2 allowed".into(),
        with(&proxy_v2([198, 18, 5, 9], [198, 18, 0, 1], 6000, 80)),
    );
    add(1, "B no header".into(), get.clone());
    add(1, "B broken v1".into(), with(b"PROXY TCP4 nonsense\r\n"));
    add(
        2,
        "C location realip".into(),
        request("GET", "/loc/", &xff("198.18.9.9")),
    );
    add(
        2,
        "C location realip X-Real-IP".into(),
        request("GET", "/loc/", "X-Real-IP: 198.18.9.9\r\n"),
    );
    add(
        2,
        "C no realip".into(),
        request("GET", "/plain/", "X-Real-IP: 198.18.9.9\r\n"),
    );

    let mut differ = Vec::new();
    for (server, what, bytes) in &cases {
        let (n, h) = [(na, ha), (nb, hb), (nc, hc)][*server];
        let want = exchange(n, bytes);
        let got = exchange(h, bytes);
        if want != got {
            differ.push(format!("{what}: nginx {want:?}, halo {got:?}"));
        }
    }
    assert!(differ.is_empty(), "answers differ:\n{}", differ.join("\n"));
    // Sanity: the cases do exercise both outcomes.
    let statuses: Vec<u16> = cases
        .iter()
        .map(|(server, _, bytes)| exchange([ha, hb, hc][*server], bytes).0)
        .collect();
    for code in [200, 401, 403, 404] {
        assert!(
            statuses.contains(&code),
            "no case answered {code}: {statuses:?}"
        );
    }
}
