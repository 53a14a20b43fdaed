//! Proxying: balancing, retries (proxy_next_upstream), timeouts, headers, keepalive pool,
//! WebSocket upgrades — against real backends on 127.0.0.1.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn one_upstream(
    listen: std::net::SocketAddr,
    servers: &[std::net::SocketAddr],
    location: &str,
    upstream_extra: &str,
) -> String {
    let servers: Vec<String> = servers
        .iter()
        .map(|a| format!("{{ address = \"{a}\" }}"))
        .collect();
    format!(
        r#"
[[upstreams]]
name = "app"
servers = [{}]
{upstream_extra}

[[servers]]
listen = [{{ addr = "{listen}" }}]
server_name = ["localhost"]

[[servers.locations]]
path = "/"
action = {{ type = "proxy", pass = "http://app" }}
{location}
"#,
        servers.join(", ")
    )
}

#[tokio::test]
async fn round_robin_spreads_requests_and_sets_nginx_headers() {
    let a = backend("a").await;
    let b = backend("b").await;
    let listen = free_addr();
    let location = r#"proxy_set_header = { X-Real-IP = "$remote_addr", X-Forwarded-For = "$proxy_add_x_forwarded_for" }"#;
    let proxy = start(&one_upstream(listen, &[a.addr, b.addr], location, "")).await;
    let mut client = Client::connect(listen).await;
    let mut bodies = Vec::new();
    for _ in 0..4 {
        let req = Request::get("/x?y=1")
            .header("host", "localhost")
            .header("x-forwarded-for", "203.0.113.9")
            .header("connection", "keep-alive, x-drop-me")
            .header("x-drop-me", "1")
            .header("te", "trailers")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let reply = client.send(req).await;
        assert_eq!(reply.status, StatusCode::OK);
        bodies.push(reply.body);
    }
    assert_eq!(bodies, ["a", "b", "a", "b"]);
    let seen = a.seen.lock().unwrap();
    let (method, uri, headers) = &seen[0];
    assert_eq!(method, "GET");
    assert_eq!(uri, "/x?y=1");
    // Default Host is $proxy_host, the upstream name (nginx `proxy_set_header Host $proxy_host`).
    assert_eq!(headers["host"], "app");
    assert_eq!(headers["x-real-ip"], "127.0.0.1");
    assert_eq!(headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert!(
        headers.get("x-drop-me").is_none(),
        "header listed in Connection must not be forwarded"
    );
    assert!(headers.get("te").is_none());
    drop(seen);
    assert_eq!(proxy.stats().requests, 4);
}

#[tokio::test]
async fn host_header_variable_and_uri_replacement() {
    let a = backend("a").await;
    let listen = free_addr();
    let text = format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}" }}]
[[servers.locations]]
path = "/api/"
action = {{ type = "proxy", pass = "http://{}/v2/" }}
proxy_set_header = {{ Host = "$host" }}
"#,
        a.addr
    );
    let _proxy = start(&text).await;
    let reply = Client::connect(listen)
        .await
        .get("Example.ORG:8080", "/api/users?id=3")
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let seen = a.seen.lock().unwrap();
    assert_eq!(seen[0].1, "/v2/users?id=3");
    assert_eq!(seen[0].2["host"], "example.org");
}

#[tokio::test]
async fn connection_refused_moves_to_next_server_and_marks_it_failed() {
    let live = backend("live").await;
    let dead = dead_addr();
    let listen = free_addr();
    let proxy = start(&one_upstream(listen, &[dead, live.addr], "", "")).await;
    for _ in 0..4 {
        let reply = get(listen, "/").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, "live");
    }
    let status = proxy.upstream_status();
    let app = &status.iter().find(|(n, _)| n == "app").unwrap().1;
    assert!(
        !app[0].available,
        "dead server is out for fail_timeout: {app:?}"
    );
    assert_eq!(live.hits.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn all_servers_down_is_502() {
    let listen = free_addr();
    let _proxy = start(&one_upstream(listen, &[dead_addr(), dead_addr()], "", "")).await;
    assert_eq!(get(listen, "/").await.status, StatusCode::BAD_GATEWAY);
    // Both are now failed (max_fails=1): "no live upstreams" -> 502 without connecting.
    assert_eq!(get(listen, "/").await.status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn read_timeout_is_504() {
    let slow = backend_with(Arc::new(|_req| {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Response::new(Full::new(Bytes::from_static(b"late")))
        })
    }))
    .await;
    let listen = free_addr();
    let _proxy = start(&one_upstream(
        listen,
        &[slow.addr],
        r#"proxy_read_timeout = "200ms""#,
        "",
    ))
    .await;
    let started = std::time::Instant::now();
    assert_eq!(get(listen, "/").await.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// An upstream that takes the connection but never reads: the streamed request body fills the
/// socket buffers, and proxy_send_timeout (not proxy_read_timeout, 60 s here) ends it with 504.
#[tokio::test]
async fn send_timeout_is_504_when_the_upstream_stops_reading() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let deaf = socket.listen(16).unwrap();
    let deaf_addr = deaf.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = deaf.accept().await {
            held.push(s);
        }
    });
    let listen = free_addr();
    let config = format!(
        "client_max_body_size = 0\n{}",
        one_upstream(listen, &[deaf_addr], r#"proxy_send_timeout = "300ms""#, "")
    );
    let _proxy = start(&config).await;
    let body_len: usize = 256 * 1024 * 1024;
    let stream = TcpStream::connect(listen).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        let head =
            format!("POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: {body_len}\r\n\r\n");
        wr.write_all(head.as_bytes()).await?;
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..body_len / chunk.len() {
            wr.write_all(&chunk).await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let started = std::time::Instant::now();
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while !reply.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout(Duration::from_secs(10), rd.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => reply.extend_from_slice(&buf[..n]),
            other => panic!("no response: {other:?}"),
        }
    }
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 504"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    writer.abort();
}

#[tokio::test]
async fn http_500_retried_only_when_listed() {
    let bad = backend_status(500, "bad").await;
    let good = backend("good").await;
    let listen = free_addr();
    let _proxy = start(&one_upstream(
        listen,
        &[bad.addr, good.addr],
        r#"proxy_next_upstream = ["error", "timeout", "http_500"]"#,
        "",
    ))
    .await;
    let reply = get(listen, "/").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "good")
    );
    assert_eq!(bad.hits.load(Ordering::SeqCst), 1);

    let listen2 = free_addr();
    let bad2 = backend_status(500, "bad").await;
    let _proxy2 = start(&one_upstream(listen2, &[bad2.addr], "", "")).await;
    let reply = get(listen2, "/").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "bad")
    );
}

#[tokio::test]
async fn post_is_not_retried_after_it_was_sent() {
    // Both backends accept, read the request and close without answering.
    async fn closer() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let c = count.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
            }
        });
        (addr, count)
    }
    let (a, a_count) = closer().await;
    let (b, b_count) = closer().await;
    let listen = free_addr();
    let text = one_upstream(listen, &[a, b], "", "")
        .replace(
            &format!("\"{a}\" }}"),
            &format!("\"{a}\", max_fails = 0 }}"),
        )
        .replace(
            &format!("\"{b}\" }}"),
            &format!("\"{b}\", max_fails = 0 }}"),
        );
    assert!(text.contains("max_fails = 0"), "{text}");
    let _proxy = start(&text).await;
    let req = Request::post("/")
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let reply = Client::connect(listen).await.send(req).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        a_count.load(Ordering::SeqCst) + b_count.load(Ordering::SeqCst),
        1,
        "POST went to one server only"
    );
    // GET is retried on the other server.
    let reply = get(listen, "/").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        a_count.load(Ordering::SeqCst) + b_count.load(Ordering::SeqCst),
        3
    );
}

#[tokio::test]
async fn upstream_connections_are_reused() {
    let a = backend("a").await;
    let listen = free_addr();
    let _proxy = start(&one_upstream(listen, &[a.addr], "", "")).await;
    let mut client = Client::connect(listen).await;
    for _ in 0..10 {
        assert_eq!(client.get("localhost", "/").await.status, StatusCode::OK);
    }
    assert_eq!(a.hits.load(Ordering::SeqCst), 10);
    assert_eq!(
        a.conns.load(Ordering::SeqCst),
        1,
        "one pooled upstream connection"
    );
}

#[tokio::test]
async fn stale_pooled_connection_is_replaced_transparently() {
    // The backend closes every connection after one response (Connection: close is not sent,
    // so the proxy pools it and finds it dead later).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            });
        }
    });
    let listen = free_addr();
    let _proxy = start(&one_upstream(listen, &[addr], "", "")).await;
    for _ in 0..5 {
        let reply = get(listen, "/").await;
        assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "ok"));
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

#[tokio::test]
async fn invalid_upstream_response_is_502() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"HTTP/9.9 banana\r\n\r\n").await;
        }
    });
    let listen = free_addr();
    let _proxy = start(&one_upstream(listen, &[addr], "", "")).await;
    assert_eq!(get(listen, "/").await.status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn request_and_response_bodies_stream_through() {
    let echo = backend_with(Arc::new(|req| {
        Box::pin(async move {
            use http_body_util::BodyExt;
            let body = req.into_body().collect().await.unwrap().to_bytes();
            Response::new(Full::new(body))
        })
    }))
    .await;
    let listen = free_addr();
    let _proxy = start(&one_upstream(listen, &[echo.addr], "", "")).await;
    let payload = "x".repeat(300_000);
    let req = Request::put("/")
        .header("host", "localhost")
        .body(Full::new(Bytes::from(payload.clone())))
        .unwrap();
    let reply = Client::connect(listen).await.send(req).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, payload);
    // Over the default client_max_body_size (1m): 413 before anything reaches the backend.
    let hits = echo.hits.load(Ordering::SeqCst);
    let req = Request::put("/")
        .header("host", "localhost")
        .body(Full::new(Bytes::from("y".repeat(2 << 20))))
        .unwrap();
    let reply = Client::connect(listen).await.send(req).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(echo.hits.load(Ordering::SeqCst), hits);
}

#[tokio::test]
async fn websocket_upgrade_is_tunnelled() {
    let addr = upgrade_echo_backend().await;
    let listen = free_addr();
    let _proxy = start(&one_upstream(listen, &[addr], "", "")).await;
    let mut s = TcpStream::connect(listen).await.unwrap();
    expect_upgrade_echo(&mut s, "localhost", b"ping").await;
}

#[tokio::test]
async fn small_request_bodies_are_replayed_on_the_next_server() {
    // The first server reads the request and closes without answering.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closer = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 8192];
            let _ = s.read(&mut buf).await;
        }
    });
    let echo = backend_with(Arc::new(|req| {
        Box::pin(async move {
            use http_body_util::BodyExt;
            let body = req.into_body().collect().await.unwrap().to_bytes();
            Response::new(Full::new(body))
        })
    }))
    .await;
    let listen = free_addr();
    let _proxy = start(&one_upstream(listen, &[closer, echo.addr], "", "")).await;
    let payload = "p".repeat(2000);
    let req = Request::put("/")
        .header("host", "localhost")
        .body(Full::new(Bytes::from(payload.clone())))
        .unwrap();
    let reply = Client::connect(listen).await.send(req).await;
    assert_eq!(
        (reply.status, reply.body.len()),
        (StatusCode::OK, payload.len())
    );
    assert_eq!(reply.body, payload);
}

/// A server whose host vanished answers nothing (no RST): a listening socket that drops every
/// packet (a drop-all socket filter) stands in for it on loopback. With the seed's settings
/// (proxy_connect_timeout 60 s by default) nginx would wait a minute; halo caps the attempt while
/// another server can take the request, and the client is answered by the live one quickly.
#[tokio::test]
async fn silent_server_is_skipped_within_two_seconds() {
    let live = backend("live").await;
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    socket2::SockRef::from(&silent)
        .attach_filter(&[socket2::SockFilter::new(0x06, 0, 0, 0)])
        .unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let listen = free_addr();
    let _proxy = start(&one_upstream(listen, &[silent_addr, live.addr], "", "")).await;
    for _ in 0..2 {
        let t0 = std::time::Instant::now();
        let reply = get(listen, "/").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body, "live");
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "took {:?}",
            t0.elapsed()
        );
    }
    drop(silent);
}

/// A client that gives up while its request waits on the upstream does not count against the
/// server (nginx frees the peer without a failure on a client-closed request, 499).
#[tokio::test]
async fn client_abort_is_not_an_upstream_failure() {
    let (arrived_tx, mut arrived) = tokio::sync::mpsc::unbounded_channel::<()>();
    let slow_handler: Handler = Arc::new(move |_req| {
        let arrived_tx = arrived_tx.clone();
        Box::pin(async move {
            let _ = arrived_tx.send(());
            tokio::time::sleep(Duration::from_millis(500)).await;
            Response::new(Full::new(Bytes::from_static(b"late")))
        })
    });
    // Two servers: with a single one nginx (and halo) never count failures at all.
    let a = backend_with(slow_handler.clone()).await;
    let b = backend_with(slow_handler).await;
    let listen = free_addr();
    let proxy = start(&one_upstream(listen, &[a.addr, b.addr], "", "")).await;
    for _ in 0..4 {
        let mut s = TcpStream::connect(listen).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), arrived.recv())
            .await
            .unwrap();
        drop(s); // the client goes away while the upstream works on it
    }
    // The leases are released once the proxy notices the closes; nothing may count as failed.
    let status = || proxy.upstream_status();
    eventually("the aborted requests are released", || {
        status()
            .iter()
            .find(|(n, _)| n == "app")
            .is_some_and(|(_, peers)| peers.iter().all(|p| p.conns == 0))
    })
    .await;
    let peers = status();
    let app = &peers.iter().find(|(n, _)| n == "app").unwrap().1;
    for p in app {
        assert_eq!(p.fails, 0, "{app:?}");
        assert!(p.available, "{app:?}");
    }
}

/// Reads one response with a Content-Length body from `s`; returns (status line, body).
async fn read_one(s: &mut TcpStream) -> (String, String) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&data[end + 4..end + 4 + len]).to_string();
                return (head.lines().next().unwrap_or("").to_owned(), body);
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&data));
        data.extend_from_slice(&buf[..n]);
    }
}

/// One keep-alive connection alternates between requests halo's own codec serves (GET, HEAD)
/// and requests hyper serves (bodies, HTTP/1.0 framing): every answer arrives, in order.
#[tokio::test]
async fn one_connection_moves_between_both_http_codecs() {
    let app = backend("app").await;
    let listen = free_addr();
    let proxy = start(&one_upstream(listen, &[app.addr], "", "")).await;
    let mut s = TcpStream::connect(listen).await.unwrap();
    let requests: [&[u8]; 5] = [
        b"GET /a HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"POST /b HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello",
        b"GET /c HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"POST /d HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"GET /e HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ];
    for request in requests {
        s.write_all(request).await.unwrap();
        let (status, body) = read_one(&mut s).await;
        assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "app"));
    }
    let seen = app.seen.lock().unwrap();
    let paths: Vec<&str> = seen.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(paths, ["/a", "/b", "/c", "/d", "/e"]);
    let stats = proxy.stats();
    assert_eq!((stats.accepts, stats.requests), (1, 5), "{stats:?}");
}

/// nginx and HAProxy keep header names as they were spelled; clients and nginx's own tests
/// match `X-Port:` byte for byte. halo's own headers are spelled as nginx spells them.
#[tokio::test]
async fn header_names_keep_their_case_on_both_legs() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let seen_tx = seen_tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let _ = seen_tx.send(String::from_utf8_lossy(&buf[..n]).into_owned());
                s.write_all(b"HTTP/1.1 200 OK\r\nX-Port: 8081\r\ncontent-type: text/plain\r\nX-lower-Mixed: yes\r\nContent-Length: 2\r\n\r\nok")
                    .await
                    .unwrap();
            });
        }
    });
    let listen = free_addr();
    let location = r#"proxy_set_header = { "X-Real-IP" = "$remote_addr" }"#;
    let _proxy = start(&one_upstream(listen, &[addr], location, "")).await;
    let reply = raw(
        listen,
        b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\nX-Custom-Thing: 1\r\nconnection: close\r\n\r\n",
    )
    .await;
    let request = seen_rx.recv().await.unwrap();
    for line in [
        "User-Agent: test\r\n",
        "X-Custom-Thing: 1\r\n",
        "X-Real-IP: 127.0.0.1\r\n",
        "Host: app\r\n",
    ] {
        assert!(request.contains(line), "{line:?} missing in\n{request}");
    }
    for line in [
        "X-Port: 8081\r\n",
        "X-lower-Mixed: yes\r\n",
        "Content-Type: text/plain\r\n",
        "Server: halo",
        "Date: ",
        "Content-Length: 2\r\n",
    ] {
        assert!(reply.contains(line), "{line:?} missing in\n{reply}");
    }
}

/// `$upstream_*` work in add_header, as in nginx (not only in access logs).
#[tokio::test]
async fn upstream_variables_in_add_header() {
    let backend = backend("hi").await;
    let listen = free_addr();
    let location = r#"add_header = [{ name = "X-Up", value = "$upstream_addr $upstream_status" }]"#;
    let _proxy = start(&one_upstream(listen, &[backend.addr], location, "")).await;
    let reply = get(listen, "/").await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.headers["x-up"],
        format!("{} 200", backend.addr).as_str()
    );
}
