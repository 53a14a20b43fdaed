//! Hostile and broken clients: request smuggling shapes, oversized heads, slow clients,
//! disconnects, and a property test throwing random bytes at a real socket.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn returning(listen: std::net::SocketAddr, extra: &str) -> String {
    format!(
        r#"
client_header_timeout = "300ms"
keepalive_timeout = "400ms"
large_client_header_buffers = {{ number = 2, size = "1k" }}
{extra}
[[servers]]
listen = [{{ addr = "{listen}" }}]
[[servers.locations]]
path = "/"
action = {{ type = "return", code = 200, text = "fine" }}
"#
    )
}

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or("")
}

#[tokio::test]
async fn framing_attacks_are_refused_or_neutralised() {
    let listen = free_addr();
    let proxy = start(&returning(listen, "")).await;
    // Two different Content-Length values: 400 (RFC 9112 §6.3).
    let r = raw(
        listen,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    )
    .await;
    assert!(status_line(&r).starts_with("HTTP/1.1 400"), "{r}");
    // Transfer-Encoding whose final coding is not chunked: 400.
    let r = raw(
        listen,
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert!(status_line(&r).starts_with("HTTP/1.1 400"), "{r}");
    // Invalid header name.
    let r = raw(
        listen,
        b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n",
    )
    .await;
    assert!(status_line(&r).starts_with("HTTP/1.1 400"), "{r}");
    // HTTP/1.1 without Host, and a Host with a slash (ngx_http_validate_host).
    let r = raw(listen, b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(status_line(&r).starts_with("HTTP/1.1 400"), "{r}");
    let r = raw(listen, b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n").await;
    assert!(status_line(&r).starts_with("HTTP/1.1 400"), "{r}");
    // Content-Length together with chunked: refused with 400 and the connection closed, so a
    // smuggled second request is never read (RFC 9112 §6.1, §6.3 item 3). Also as the second
    // request of a keep-alive connection, and with the request line of a GET.
    for wire in [
        &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        let sent = Instant::now();
        let r = raw(listen, wire).await;
        assert!(sent.elapsed() < Duration::from_secs(2), "the connection was not closed");
        let statuses: Vec<&str> = r
            .split("HTTP/1.1 ")
            .skip(1)
            .map(|rest| &rest[..3])
            .collect();
        assert_eq!(statuses.last(), Some(&"400"), "{r}");
        assert!(!r.contains("/smuggled"), "{r}");
        assert!(statuses.len() <= 2, "{r}");
    }
    assert!(proxy.stats().rejected_malformed >= 6, "{:?}", proxy.stats());
}

#[tokio::test]
async fn oversized_heads_get_431_and_414() {
    let listen = free_addr();
    let _proxy = start(&returning(listen, "")).await;
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "b".repeat(4096)
    );
    let r = raw(listen, big_header.as_bytes()).await;
    assert!(status_line(&r).starts_with("HTTP/1.1 431"), "{r}");
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "u".repeat(1500));
    let r = raw(listen, long_uri.as_bytes()).await;
    assert!(status_line(&r).starts_with("HTTP/1.1 414"), "{r}");
}

#[tokio::test]
async fn slow_header_clients_are_cut_while_others_are_served() {
    let listen = free_addr();
    let proxy = start(&returning(listen, "")).await;
    let mut slow = TcpStream::connect(listen).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // Meanwhile a normal client is served.
    assert_eq!(get(listen, "/").await.body, "fine");
    // Keep dribbling bytes: the header timeout counts from the first byte, not the last.
    let dribble = async {
        for _ in 0..20 {
            if slow.write_all(b"X-A: b\r\n").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    dribble.await;
    let rest = read_to_close(&mut slow, Duration::from_secs(2)).await;
    assert!(rest.is_empty(), "no response to a timed-out head: {rest}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(proxy.stats().timed_out >= 1);
}

#[tokio::test]
async fn idle_keepalive_connections_close_after_keepalive_timeout() {
    let listen = free_addr();
    let _proxy = start(&returning(listen, "")).await;
    let mut s = TcpStream::connect(listen).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let all = read_to_close(&mut s, Duration::from_secs(3)).await;
    assert!(all.starts_with("HTTP/1.1 200"), "{all}");
    let idle = started.elapsed();
    assert!(
        idle >= Duration::from_millis(350) && idle < Duration::from_secs(2),
        "{idle:?}"
    );
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_request() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream_closed = Arc::new(AtomicBool::new(false));
    let flag = upstream_closed.clone();
    tokio::spawn(async move {
        if let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            // Never answer; wait for the proxy to give up on us.
            if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await
            {
                flag.store(true, Ordering::SeqCst);
            }
        }
    });
    let listen = free_addr();
    let text = format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}" }}]
[[servers.locations]]
path = "/"
action = {{ type = "proxy", pass = "http://{addr}" }}
"#
    );
    let _proxy = start(&text).await;
    let mut s = TcpStream::connect(listen).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(s);
    eventually("upstream connection closed after client left", || {
        upstream_closed.load(Ordering::SeqCst)
    })
    .await;
}

fn valid_request() -> Vec<u8> {
    b"POST /p?q=1 HTTP/1.1\r\nHost: fuzz\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello".to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Random bytes and mutations of a valid request never panic or hang the proxy, and it
    /// keeps serving valid requests afterwards.
    #[test]
    fn random_and_mutated_requests_do_not_break_the_proxy(
        noise in proptest::collection::vec(any::<u8>(), 0..600),
        flips in proptest::collection::vec((0usize..80, any::<u8>()), 0..6),
        use_noise in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let listen = free_addr();
            let proxy = start(&returning(listen, "")).await;
            let input = if use_noise {
                noise.clone()
            } else {
                let mut req = valid_request();
                for (at, byte) in &flips {
                    let i = at % req.len();
                    req[i] = *byte;
                }
                req
            };
            let mut s = TcpStream::connect(listen).await.unwrap();
            let _ = s.write_all(&input).await;
            let _ = s.shutdown().await;
            let started = Instant::now();
            let _ = read_to_close(&mut s, Duration::from_secs(3)).await;
            prop_assert!(started.elapsed() < Duration::from_secs(2), "connection hung");
            let reply = get(listen, "/").await;
            prop_assert_eq!(reply.body, "fine");
            prop_assert!(proxy.healthy());
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn clients_that_stop_reading_are_cut_by_send_timeout() {
    let dir = std::env::temp_dir().join(format!("halo-proxy-{}-send", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("big.bin"), vec![7u8; 32 << 20]).unwrap();
    let listen = free_addr();
    let text = format!(
        r#"
send_timeout = "300ms"
[[servers]]
listen = [{{ addr = "{listen}" }}]
root = "{}"
[[servers.locations]]
path = "/"
"#,
        dir.display()
    );
    let proxy = start(&text).await;
    let mut s = TcpStream::connect(listen).await.unwrap();
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 64];
    let n = s.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"));
    // Stop reading: the proxy's writes block, and send_timeout closes the connection.
    eventually("stalled connection closed", || proxy.stats().active == 0).await;
    assert!(proxy.stats().timed_out >= 1);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn graceful_shutdown_lets_the_request_in_flight_finish() {
    let gate = Arc::new(tokio::sync::Notify::new());
    let g = gate.clone();
    let slow = backend_with(Arc::new(move |_req| {
        let g = g.clone();
        Box::pin(async move {
            g.notified().await;
            http::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(
                b"done",
            )))
        })
    }))
    .await;
    let listen = free_addr();
    let text = format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}" }}]
[[servers.locations]]
path = "/"
action = {{ type = "proxy", pass = "http://{}" }}
"#,
        slow.addr
    );
    let proxy = Arc::new(start(&text).await);
    let in_flight = tokio::spawn(async move { get(listen, "/").await });
    eventually("request at the backend", || {
        slow.hits.load(Ordering::SeqCst) == 1
    })
    .await;
    let p = proxy.clone();
    let stopping = tokio::spawn(async move { p.shutdown(true, Duration::from_secs(5)).await });
    eventually("listener closed", || {
        std::net::TcpStream::connect(listen).is_err()
    })
    .await;
    gate.notify_one();
    let reply = in_flight.await.unwrap();
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (http::StatusCode::OK, "done")
    );
    tokio::time::timeout(Duration::from_secs(3), stopping)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(proxy.stats().active, 0);
}

#[tokio::test]
async fn keepalive_requests_and_worker_connections_are_enforced() {
    let listen = free_addr();
    let proxy = start(&returning(
        listen,
        "keepalive_requests = 2\nworker_connections = 2",
    ))
    .await;
    let mut s = TcpStream::connect(listen).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
    let all = read_to_close(&mut s, Duration::from_secs(2)).await;
    // The second response carries `Connection: close`; the third request is never answered.
    assert_eq!(all.matches("HTTP/1.1 200").count(), 2, "{all}");
    assert!(
        all.to_ascii_lowercase().contains("connection: close"),
        "{all}"
    );
    // Two connections open: the third is accepted and closed at once (accepts > handled).
    let _a = TcpStream::connect(listen).await.unwrap();
    let _b = TcpStream::connect(listen).await.unwrap();
    eventually("two connections active", || proxy.stats().active == 2).await;
    let mut c = TcpStream::connect(listen).await.unwrap();
    let _ = c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    let refused = read_to_close(&mut c, Duration::from_secs(2)).await;
    assert!(refused.is_empty(), "{refused}");
    let stats = proxy.stats();
    assert_eq!(stats.accepts, stats.handled + 1, "{stats:?}");
}

#[tokio::test]
async fn parked_keepalive_connections_resume_and_pipelining_works() {
    let listen = free_addr();
    let text = format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}" }}]
[[servers.locations]]
path = "/"
action = {{ type = "return", code = 200, text = "fine" }}
"#
    );
    let proxy = start(&text).await;
    let mut c = Client::connect(listen).await;
    assert_eq!(c.get("a", "/").await.body, "fine");
    // Quiet past the parking delay: the connection leaves its task for the idle lot, and
    // stub_status still counts it as Waiting.
    eventually("the connection parked", || proxy.stats().parked == 1).await;
    assert_eq!(proxy.stats().waiting, 1);
    assert_eq!(c.get("a", "/").await.body, "fine");
    assert_eq!(proxy.stats().parked, 0, "a request takes it out of the lot");
    eventually("parked again", || proxy.stats().parks == 2).await;
    // Pipelined requests on a parked connection: both answered, in order.
    let mut s = TcpStream::connect(listen).await.unwrap();
    s.write_all(b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let _ = s.read(&mut buf).await.unwrap();
    eventually("both connections parked", || proxy.stats().parked == 2).await;
    s.write_all(b"GET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await.unwrap();
    let rest = read_to_close(&mut s, Duration::from_secs(3)).await;
    assert_eq!(rest.matches("HTTP/1.1 200").count(), 2, "{rest}");
    assert_eq!(proxy.stats().requests, 5);
    // A client that closes while parked is noticed and forgotten.
    drop(s);
    drop(c);
    eventually("closed connections leave the lot", || {
        let stats = proxy.stats();
        stats.parked == 0 && stats.active == 0
    })
    .await;
}

#[tokio::test]
async fn graceful_shutdown_closes_parked_connections_at_once() {
    let listen = free_addr();
    let proxy = start(&returning(listen, "")).await;
    let mut c = Client::connect(listen).await;
    assert_eq!(c.get("a", "/").await.body, "fine");
    let mut raw_conn = TcpStream::connect(listen).await.unwrap();
    raw_conn
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let _ = raw_conn.read(&mut buf).await.unwrap();
    eventually("both parked", || proxy.stats().parked == 2).await;
    let started = Instant::now();
    proxy.shutdown(true, Duration::from_secs(10)).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(proxy.stats().active, 0);
    let rest = read_to_close(&mut raw_conn, Duration::from_secs(2)).await;
    assert!(rest.is_empty(), "{rest}");
}
