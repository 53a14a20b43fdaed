//! Routing, limits, stub_status, auth_basic, access_log, error_page, return, static files,
//! add_header, reload.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Request, Response, StatusCode};
use http_body_util::Full;

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("halo-proxy-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn server_name_and_location_precedence_choose_the_handler() {
    let listen = free_addr();
    let text = format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}" }}]
server_name = ["default.test"]
locations = [{{ path = "/", action = {{ type = "return", code = 200, text = "default" }} }}]

[[servers]]
listen = [{{ addr = "{listen}", default_server = true }}]
server_name = ["example.com", "*.example.com", "~^api[0-9]+\\.test$"]

[[servers.locations]]
match = "exact"
path = "/"
action = {{ type = "return", code = 200, text = "A" }}

[[servers.locations]]
path = "/"
action = {{ type = "return", code = 200, text = "B" }}

[[servers.locations]]
path = "/documents/"
action = {{ type = "return", code = 200, text = "C" }}

[[servers.locations]]
match = "prefix_no_regex"
path = "/images/"
action = {{ type = "return", code = 200, text = "D" }}

[[servers.locations]]
match = "regex_ci"
path = '\.(gif|jpg|jpeg)$'
action = {{ type = "return", code = 200, text = "E $uri $host" }}

[[servers.locations]]
path = "/old"
action = {{ type = "return", code = 301, text = "http://$host/new$is_args$args" }}
"#
    );
    let _proxy = start(&text).await;
    let mut c = Client::connect(listen).await;
    assert_eq!(c.get("example.com", "/").await.body, "A");
    assert_eq!(c.get("example.com", "/index.html").await.body, "B");
    assert_eq!(
        c.get("example.com", "/documents/document.html").await.body,
        "C"
    );
    assert_eq!(c.get("example.com", "/images/1.gif").await.body, "D");
    assert_eq!(
        c.get("www.example.com", "/documents/1.JPG").await.body,
        "E /documents/1.JPG www.example.com"
    );
    assert_eq!(c.get("api12.test", "/").await.body, "A");
    assert_eq!(c.get("default.test", "/").await.body, "default");
    // Unknown host: the default_server.
    assert_eq!(c.get("nobody.test", "/").await.body, "A");
    let moved = c.get("example.com", "/old?a=1").await;
    assert_eq!(moved.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(moved.headers["location"], "http://example.com/new?a=1");
}

#[tokio::test]
async fn stub_status_is_byte_exact_and_auth_basic_guards_it() {
    let dir = tempdir("auth");
    let users = dir.join("htpasswd");
    std::fs::write(&users, "admin:$apr1$abcdefgh$h9FWgUz3n9YxylKLlR5SQ/\n").unwrap();
    let listen = free_addr();
    let text = format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}" }}]
[[servers.locations]]
path = "/NginxStatus"
action = {{ type = "stub_status" }}
auth_basic = {{ realm = "NginxStatus", user_file = "{}" }}
[[servers.locations]]
path = "/open"
action = {{ type = "stub_status" }}
auth_basic = {{ realm = "no file means no auth" }}
"#,
        users.display()
    );
    let proxy = start(&text).await;
    let mut c = Client::connect(listen).await;
    let denied = c.get("localhost", "/NginxStatus").await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        denied.headers["www-authenticate"],
        "Basic realm=\"NginxStatus\""
    );
    let req = Request::get("/NginxStatus")
        .header("host", "localhost")
        .header("authorization", "Basic YWRtaW46c2VjcmV0") // admin:secret
        .body(Full::new(Bytes::new()))
        .unwrap();
    let ok = c.send(req).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.headers["content-type"], "text/plain");
    assert!(ok.headers["server"].to_str().unwrap().starts_with("halo/"));
    assert_eq!(
        ok.body,
        "Active connections: 1 \nserver accepts handled requests\n 1 1 2 \nReading: 0 Writing: 1 Waiting: 0 \n"
    );
    assert_eq!(c.get("localhost", "/open").await.status, StatusCode::OK);
    assert_eq!(proxy.stats().rejected_auth, 1);
}

#[tokio::test]
async fn limit_conn_rejects_concurrent_requests_over_the_limit() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let g = gate.clone();
    let slow = backend_with(Arc::new(move |_req| {
        let g = g.clone();
        Box::pin(async move {
            g.notified().await;
            Response::new(Full::new(Bytes::from_static(b"slow")))
        })
    }))
    .await;
    let listen = free_addr();
    let text = format!(
        r#"
limit_conn_zones = [{{ name = "perip", key = "$binary_remote_addr", size = "10m" }}]
[[servers]]
listen = [{{ addr = "{listen}" }}]
limit_conn = [{{ zone = "perip", limit = 1 }}]
[[servers.locations]]
path = "/"
action = {{ type = "proxy", pass = "http://{}" }}
"#,
        slow.addr
    );
    let proxy = start(&text).await;
    let first = tokio::spawn(async move { get(listen, "/").await });
    eventually("first request at the backend", || {
        slow.hits.load(Ordering::SeqCst) == 1
    })
    .await;
    let second = get(listen, "/").await;
    assert_eq!(second.status, StatusCode::SERVICE_UNAVAILABLE);
    gate.notify_one();
    assert_eq!(first.await.unwrap().status, StatusCode::OK);
    // The slot is free again once the first response finished.
    gate.notify_one();
    assert_eq!(get(listen, "/").await.status, StatusCode::OK);
    assert_eq!(proxy.stats().rejected_limit_conn, 1);
}

#[tokio::test]
async fn limit_req_without_burst_rejects_the_second_quick_request() {
    let listen = free_addr();
    let text = format!(
        r#"
limit_req_zones = [{{ name = "one", rate = "1r/s" }}]
[[servers]]
listen = [{{ addr = "{listen}" }}]
[[servers.locations]]
path = "/"
action = {{ type = "stub_status" }}
limit_req = [{{ zone = "one" }}]
limit_req_status = 429
"#
    );
    let proxy = start(&text).await;
    let mut c = Client::connect(listen).await;
    assert_eq!(c.get("localhost", "/").await.status, StatusCode::OK);
    assert_eq!(
        c.get("localhost", "/").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(proxy.stats().rejected_limit_req, 1);
}

#[tokio::test]
async fn error_page_serves_a_local_file_for_upstream_errors() {
    let dir = tempdir("errpage");
    std::fs::write(dir.join("404.html"), "<p>sorry</p>").unwrap();
    let listen = free_addr();
    let text = format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}" }}]
root = "{root}"
error_page = [{{ codes = [404, 500, 502, 503, 504], uri = "/404.html" }}]
[[servers.locations]]
path = "/"
action = {{ type = "proxy", pass = "http://{dead}" }}
[[servers.locations]]
match = "exact"
path = "/404.html"
[[servers.locations]]
path = "/static/"
action = {{ type = "static" }}
add_header = [{{ name = "X-Served-By", value = "halo $server_port" }}]
"#,
        root = dir.display(),
        dead = dead_addr()
    );
    let _proxy = start(&text).await;
    let reply = get(listen, "/app").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.body, "<p>sorry</p>");
    assert_eq!(reply.headers["content-type"], "text/html");
    // Static: a missing file is a 404 with the same error page; present files have MIME types.
    std::fs::create_dir_all(dir.join("static")).unwrap();
    std::fs::write(dir.join("static/a.css"), "body{}").unwrap();
    let css = get(listen, "/static/a.css").await;
    assert_eq!((css.status, css.body.as_str()), (StatusCode::OK, "body{}"));
    assert_eq!(css.headers["content-type"], "text/css");
    assert_eq!(
        css.headers["x-served-by"],
        format!("halo {}", listen.port())
    );
    let missing = get(listen, "/static/nope.css").await;
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (StatusCode::NOT_FOUND, "<p>sorry</p>")
    );
    assert!(
        missing.headers.get("x-served-by").is_none(),
        "add_header without always skips 404"
    );
}

#[tokio::test]
async fn access_log_writes_main_format_lines_with_upstream_variables() {
    let dir = tempdir("log");
    let log = dir.join("access.log");
    let a = backend("a").await;
    let listen = free_addr();
    let text = format!(
        r#"
log_formats.main = '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for" $upstream_addr $upstream_status'
access_log = [{{ path = "{}", format = "main" }}]
[[servers]]
listen = [{{ addr = "{listen}" }}]
[[servers.locations]]
path = "/"
action = {{ type = "proxy", pass = "http://{}" }}
[[servers.locations]]
path = "/quiet"
action = {{ type = "return", code = 204 }}
access_log = []
"#,
        log.display(),
        a.addr
    );
    let proxy = start(&text).await;
    let req = Request::get("/hello?x=1")
        .header("host", "localhost")
        .header("user-agent", "test-agent")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut c = Client::connect(listen).await;
    assert_eq!(c.send(req).await.status, StatusCode::OK);
    assert_eq!(
        c.get("localhost", "/quiet").await.status,
        StatusCode::NO_CONTENT
    );
    let mut content = String::new();
    for _ in 0..100 {
        proxy.flush_logs();
        content = std::fs::read_to_string(&log).unwrap_or_default();
        if !content.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let lines: Vec<&str> = content.lines().collect();
    assert_eq!(lines.len(), 1, "{content}");
    let line = lines[0];
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(
        line.contains(&format!(
            "\"GET /hello?x=1 HTTP/1.1\" 200 1 \"-\" \"test-agent\" \"-\" {} 200",
            a.addr
        )),
        "{line}"
    );
}

#[tokio::test]
async fn reload_keeps_listeners_adds_new_ones_and_switches_upstreams() {
    let a = backend("a").await;
    let b = backend("b").await;
    let listen = free_addr();
    let extra = free_addr();
    let first = format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}" }}]
[[servers.locations]]
path = "/"
action = {{ type = "proxy", pass = "http://{}" }}
"#,
        a.addr
    );
    let proxy = start(&first).await;
    let mut kept = Client::connect(listen).await;
    assert_eq!(kept.get("localhost", "/").await.body, "a");
    let second = format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}" }}, {{ addr = "{extra}" }}]
[[servers.locations]]
path = "/"
action = {{ type = "proxy", pass = "http://{}" }}
"#,
        b.addr
    );
    proxy.reload(config(&second)).unwrap();
    // The keepalive connection opened before the reload is still served, by the new config.
    assert_eq!(kept.get("localhost", "/").await.body, "b");
    assert_eq!(get(extra, "/").await.body, "b");
    assert_eq!(proxy.listen_addrs().len(), 2);
    assert!(proxy.healthy());
    // A broken configuration changes nothing.
    let broken = second.replace("http://", "ftp://");
    assert!(proxy.reload(config(&broken)).is_err());
    assert_eq!(get(extra, "/").await.body, "b");
    // Removing a listener closes it.
    proxy.reload(config(&first)).unwrap();
    eventually("extra listener closed", || {
        std::net::TcpStream::connect(extra).is_err()
    })
    .await;
    assert_eq!(kept.get("localhost", "/").await.body, "a");
    proxy.shutdown(true, Duration::from_secs(1)).await;
    assert!(!proxy.healthy());
}

#[tokio::test]
async fn proxy_redirect_default_maps_the_upstream_prefix_to_the_location() {
    let up = backend_with(Arc::new(|req| {
        Box::pin(async move {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::FOUND;
            let target = format!("http://app/two/moved{}", req.uri().path());
            r.headers_mut().insert("location", target.parse().unwrap());
            r
        })
    }))
    .await;
    let listen = free_addr();
    let text = format!(
        r#"
[[upstreams]]
name = "app"
servers = [{{ address = "{}" }}]
[[servers]]
listen = [{{ addr = "{listen}" }}]
[[servers.locations]]
path = "/one/"
action = {{ type = "proxy", pass = "http://app/two/" }}
[[servers.locations]]
path = "/off/"
action = {{ type = "proxy", pass = "http://app/two/" }}
proxy_redirect = "off"
"#,
        up.addr
    );
    let _proxy = start(&text).await;
    let mut c = Client::connect(listen).await;
    let moved = c.get("front.test", "/one/x").await;
    assert_eq!(moved.status, StatusCode::FOUND);
    assert_eq!(
        moved.headers["location"],
        format!("http://front.test:{}/one/moved/two/x", listen.port())
    );
    assert_eq!(up.seen.lock().unwrap()[0].1, "/two/x");
    let untouched = c.get("front.test", "/off/y").await;
    assert_eq!(untouched.headers["location"], "http://app/two/moved/two/y");
}

#[tokio::test]
async fn active_health_check_takes_a_failing_server_out() {
    let sick = backend_with(Arc::new(|req| {
        Box::pin(async move {
            let status = if req.uri().path() == "/health" {
                500
            } else {
                200
            };
            let mut r = Response::new(Full::new(Bytes::from_static(b"sick")));
            *r.status_mut() = StatusCode::from_u16(status).unwrap();
            r
        })
    }))
    .await;
    let well = backend("well").await;
    let listen = free_addr();
    let text = format!(
        r#"
[[upstreams]]
name = "app"
servers = [{{ address = "{}" }}, {{ address = "{}" }}]
health_check = {{ uri = "/health", interval = "30ms", fall = 2, rise = 1, timeout = "500ms" }}
[[servers]]
listen = [{{ addr = "{listen}" }}]
[[servers.locations]]
path = "/"
action = {{ type = "proxy", pass = "http://app" }}
"#,
        sick.addr, well.addr
    );
    let proxy = start(&text).await;
    eventually("sick server marked down", || {
        let status = proxy.upstream_status();
        status[0].1.first().is_some_and(|p| !p.active_healthy)
    })
    .await;
    for _ in 0..4 {
        assert_eq!(get(listen, "/").await.body, "well");
    }
}

#[tokio::test]
async fn slow_or_oversized_request_bodies_get_408_and_413() {
    use tokio::io::AsyncWriteExt;
    let sink = backend_with(Arc::new(|req| {
        Box::pin(async move {
            use http_body_util::BodyExt;
            let _ = req.into_body().collect().await;
            Response::new(Full::new(Bytes::from_static(b"got")))
        })
    }))
    .await;
    let listen = free_addr();
    let text = format!(
        r#"
client_body_timeout = "200ms"
client_max_body_size = 100
[[servers]]
listen = [{{ addr = "{listen}" }}]
[[servers.locations]]
path = "/"
action = {{ type = "proxy", pass = "http://{}" }}
"#,
        sink.addr
    );
    let _proxy = start(&text).await;
    let mut s = tokio::net::TcpStream::connect(listen).await.unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab")
        .await
        .unwrap();
    let reply = read_to_close(&mut s, Duration::from_secs(3)).await;
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    let chunked = format!(
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n96\r\n{}\r\n0\r\n\r\n",
        "z".repeat(150)
    );
    let reply = raw(listen, chunked.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
}

#[tokio::test]
async fn limit_req_burst_delays_excess_requests() {
    let listen = free_addr();
    let text = format!(
        r#"
limit_req_zones = [{{ name = "one", rate = "10r/s" }}]
[[servers]]
listen = [{{ addr = "{listen}" }}]
[[servers.locations]]
path = "/"
action = {{ type = "stub_status" }}
limit_req = [{{ zone = "one", burst = 5 }}]
"#
    );
    let _proxy = start(&text).await;
    let mut c = Client::connect(listen).await;
    assert_eq!(c.get("localhost", "/").await.status, StatusCode::OK);
    let started = std::time::Instant::now();
    // Second request within the same 100 ms slot: excess 1 > delay 0 -> held ~100 ms.
    assert_eq!(c.get("localhost", "/").await.status, StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(50),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn listens_on_ipv6_loopback() {
    let Ok(probe) = std::net::TcpListener::bind("[::1]:0") else {
        eprintln!("skipping: no IPv6 loopback");
        return;
    };
    let listen = probe.local_addr().unwrap();
    drop(probe);
    let text = format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}" }}]
[[servers.locations]]
path = "/"
action = {{ type = "return", code = 200, text = "$remote_addr" }}
"#
    );
    let _proxy = start(&text).await;
    assert_eq!(get(listen, "/").await.body, "::1");
}

/// `pause_accepting`: new connections are not answered (their SYNs are dropped, so clients retry
/// later) while open keepalive connections keep working; accepting resumes by itself.
#[tokio::test]
async fn pause_accepting_drops_new_connections_but_serves_open_ones() {
    let addr = free_addr();
    let proxy = start(&format!(
        "[[servers]]\nlisten = [{{ addr = \"{addr}\" }}]\n\n[[servers.locations]]\npath = \"/\"\n\
         action = {{ type = \"return\", code = 200, text = \"up\" }}\n"
    ))
    .await;
    let mut open = Client::connect(addr).await;
    assert_eq!(open.get("x", "/").await.body, "up");
    proxy.pause_accepting(Duration::from_millis(600));
    // A new connection is neither accepted nor refused: the handshake does not complete.
    let attempt = tokio::time::timeout(
        Duration::from_millis(200),
        tokio::net::TcpStream::connect(addr),
    )
    .await;
    assert!(
        attempt.is_err(),
        "a new connection was answered while paused"
    );
    assert_eq!(
        open.get("x", "/").await.body,
        "up",
        "open connection stalled"
    );
    // After the pause a fresh connection works again (the client's SYN retransmission or a new one).
    let t0 = std::time::Instant::now();
    loop {
        if let Ok(Ok(mut s)) = tokio::time::timeout(
            Duration::from_millis(300),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            assert!(out.ends_with("up"), "{out}");
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "accepting never resumed"
        );
    }
}

/// nginx keys zones by any text with variables; a key that renders empty is not limited.
#[tokio::test]
async fn limit_req_keys_may_be_any_variables() {
    let listen = free_addr();
    let text = format!(
        r#"
limit_req_zones = [{{ name = "byarg", key = "$arg_a", rate = "1r/m" }}]
[[servers]]
listen = [{{ addr = "{listen}" }}]
[[servers.locations]]
path = "/"
action = {{ type = "stub_status" }}
limit_req = [{{ zone = "byarg" }}]
"#
    );
    let _proxy = start(&text).await;
    let mut c = Client::connect(listen).await;
    assert_eq!(c.get("localhost", "/?a=1").await.status, StatusCode::OK);
    assert_eq!(
        c.get("localhost", "/?a=1").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(c.get("localhost", "/?a=2").await.status, StatusCode::OK);
    // No argument, empty key: never limited.
    for _ in 0..3 {
        assert_eq!(c.get("localhost", "/").await.status, StatusCode::OK);
    }
}

/// A regex location's captures, numbered and named, are variables in it (no rewrite
/// directives needed).
#[tokio::test]
async fn regex_location_captures_are_variables() {
    let listen = free_addr();
    let text = format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}" }}]
[[servers.locations]]
match = "regex"
path = '^/item/(\d+)/(?<slug>[a-z-]+)$'
action = {{ type = "return", code = 200, text = "id=$1 slug=$slug" }}
"#
    );
    let _proxy = start(&text).await;
    let mut c = Client::connect(listen).await;
    let reply = c.get("localhost", "/item/42/blue-shoes").await;
    assert_eq!(reply.body, "id=42 slug=blue-shoes");
}

/// nginx: `client_max_body_size` of the chosen location decides (checked once it is known).
#[tokio::test]
async fn client_max_body_size_applies_per_location() {
    let listen = free_addr();
    let text = format!(
        r#"
client_max_body_size = "1k"
[[servers]]
listen = [{{ addr = "{listen}" }}]
[[servers.locations]]
path = "/"
action = {{ type = "return", code = 200, text = "small" }}
[[servers.locations]]
path = "/upload/"
client_max_body_size = "10k"
action = {{ type = "return", code = 200, text = "big" }}
"#
    );
    let _proxy = start(&text).await;
    let body = vec![b'x'; 5000];
    let post = |path: &str| {
        Request::post(format!("http://{listen}{path}"))
            .header("host", "localhost")
            .body(Full::new(Bytes::from(body.clone())))
            .unwrap()
    };
    let mut c = Client::connect(listen).await;
    assert_eq!(c.send(post("/upload/file")).await.status, StatusCode::OK);
    let mut c = Client::connect(listen).await;
    assert_eq!(
        c.send(post("/")).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

/// nginx's `return 444` closes the connection without a response.
#[tokio::test]
async fn return_444_closes_without_a_response() {
    let listen = free_addr();
    let text = format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}" }}]
[[servers.locations]]
path = "/"
action = {{ type = "return", code = 444 }}
"#
    );
    let _proxy = start(&text).await;
    let reply = raw(listen, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert_eq!(reply, "", "nothing is sent");
}
