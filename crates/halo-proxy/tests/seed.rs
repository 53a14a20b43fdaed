//! The seed's nginx.conf (seed README section 3), written as native TOML, against two real
//! backends: affinity by client IP, status page, error page, and acceptance test 5 ("shut
//! down WEB_1: the site keeps working").
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;

use common::*;
use http::StatusCode;

#[tokio::test]
async fn seed_configuration_behaves_like_the_nginx_original() {
    let web1 = backend("web1").await;
    let web2 = backend("web2").await;
    let html = std::env::temp_dir().join(format!("halo-proxy-{}-seed", std::process::id()));
    std::fs::create_dir_all(&html).unwrap();
    std::fs::write(html.join("404.html"), "custom 404").unwrap();
    let listen = free_addr();
    let text = format!(
        r#"
worker_threads = 4
worker_connections = 65535
keepalive_timeout = "120s"
sendfile = true
log_formats.main = '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for"'
limit_conn_zones = [{{ name = "perip", key = "$binary_remote_addr", size = "10m" }}]

[[upstreams]]
name = "xuad"
method = "ip_hash"
servers = [
  {{ address = "{web1}", max_fails = 1, fail_timeout = "60s" }},
  {{ address = "{web2}", max_fails = 1, fail_timeout = "60s" }},
]

[[servers]]
listen = [{{ addr = "{listen}" }}]
server_name = ["localhost"]
root = "{root}"
limit_conn = [{{ zone = "perip", limit = 200 }}]
error_page = [{{ codes = [404, 500, 502, 503, 504], uri = "/404.html" }}]

[[servers.locations]]
path = "/"
action = {{ type = "proxy", pass = "http://xuad" }}
proxy_redirect = "off"
proxy_set_header = {{ Host = "$host", X-Real-IP = "$remote_addr", X-Forwarded-For = "$proxy_add_x_forwarded_for" }}

[[servers.locations]]
path = "/NginxStatus"
action = {{ type = "stub_status" }}
access_log = []
auth_basic = {{ realm = "NginxStatus" }}

[[servers.locations]]
match = "exact"
path = "/404.html"
"#,
        web1 = web1.addr,
        web2 = web2.addr,
        root = html.display(),
    );
    let proxy = start(&text).await;
    // ip_hash: one client IP always lands on the same server.
    let first = get(listen, "/").await.body;
    for _ in 0..5 {
        assert_eq!(get(listen, "/").await.body, first);
    }
    let seen = if first == "web1" {
        web1.seen.lock().unwrap()[0].2.clone()
    } else {
        web2.seen.lock().unwrap()[0].2.clone()
    };
    assert_eq!(seen["host"], "localhost");
    assert_eq!(seen["x-real-ip"], "127.0.0.1");
    let status = get(listen, "/NginxStatus").await;
    assert_eq!(status.status, StatusCode::OK);
    assert!(
        status.body.starts_with("Active connections: "),
        "{}",
        status.body
    );

    // Acceptance test 5: the server this client uses goes away; the site keeps working.
    let (gone, other) = if first == "web1" {
        (web1, web2)
    } else {
        (web2, web1)
    };
    let other_name = if first == "web1" { "web2" } else { "web1" };
    drop(gone);
    for _ in 0..5 {
        let reply = get(listen, "/").await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, other_name)
        );
    }
    assert!(other.hits.load(Ordering::SeqCst) >= 5);
    // Both gone: the error page.
    drop(other);
    let reply = get(listen, "/").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::BAD_GATEWAY, "custom 404")
    );
    assert!(proxy.healthy());
}
