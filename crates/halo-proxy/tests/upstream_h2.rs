//! HTTP/2 toward upstreams: `proxy_http_version 2` over h2c and over TLS (ALPN h2), and
//! `grpc_pass`-style locations whose trailers (grpc-status) reach the client, with a gRPC
//! status instead of an HTML error page when no upstream answers.
#![allow(clippy::unwrap_used)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::pki::TestCa;
use common::*;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// A plain-HTTP front whose only location sends everything to `pass` with `extra` settings.
fn front(listen: SocketAddr, pass: &str, extra: &str, h2_front: bool) -> String {
    let h2 = if h2_front {
        "http2 = { enabled = true }"
    } else {
        ""
    };
    format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}" }}]
{h2}
[[servers.locations]]
path = "/"
action = {{ type = "proxy", pass = "{pass}" }}
{extra}
"#
    )
}

#[tokio::test]
async fn proxy_http_version_2_speaks_h2c_and_h2_over_tls() {
    // Backends: halo itself, answering with the protocol it was spoken to in.
    let h2c = free_addr();
    let h2c_backend = start(&format!(
        r#"
[[servers]]
listen = [{{ addr = "{h2c}" }}]
http2 = {{ enabled = true }}
locations = [{{ path = "/", action = {{ type = "return", code = 200, text = "$server_protocol $scheme $request_uri" }} }}]
"#
    ))
    .await;
    let dir = std::env::temp_dir().join(format!("halo-up-h2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = TestCa::new(&dir, "ca");
    let leaf = ca.leaf(&dir, "backend", &["backend.test"]);
    let tls = free_addr();
    let _tls_backend = start(&format!(
        r#"
[[servers]]
listen = [{{ addr = "{tls}", ssl = true }}]
http2 = {{ enabled = true }}
tls = {{ certificates = [{{ certificate = "{}", key = "{}" }}] }}
locations = [{{ path = "/", action = {{ type = "return", code = 200, text = "$server_protocol $scheme $ssl_alpn_protocol" }} }}]
"#,
        leaf.cert.display(),
        leaf.key.display()
    ))
    .await;

    let listen = free_addr();
    let proxy = start(&front(
        listen,
        &format!("http://{h2c}"),
        "upstream_http2 = true",
        false,
    ))
    .await;
    for _ in 0..3 {
        let reply = get(listen, "/a?b=c").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body, "HTTP/2.0 http /a?b=c");
    }
    // One HTTP/2 connection carried the three requests.
    assert_eq!(h2c_backend.stats().accepts, 1);
    assert_eq!(h2c_backend.stats().h2_connections, 1);
    proxy
        .reload(config(&front(
            listen,
            &format!("https://{tls}"),
            "upstream_http2 = true",
            false,
        )))
        .unwrap();
    let reply = get(listen, "/").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body, "HTTP/2.0 https h2");
}

/// A gRPC-like upstream: answers `grpc-status: 0` in trailers after one message.
async fn grpc_backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let te = req.headers().get("te").cloned();
                    let mut trailers = HeaderMap::new();
                    trailers.insert("grpc-status", HeaderValue::from_static("0"));
                    trailers.insert("x-te-seen", te.unwrap_or(HeaderValue::from_static("none")));
                    let frames = vec![
                        Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"\0\0\0\0\x02hi"))),
                        Ok(Frame::trailers(trailers)),
                    ];
                    let mut response =
                        Response::new(StreamBody::new(futures::stream::iter(frames)));
                    response
                        .headers_mut()
                        .insert("content-type", HeaderValue::from_static("application/grpc"));
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

/// One gRPC-style POST over h2c; returns (status, headers, body, trailers).
async fn grpc_call(front: SocketAddr) -> (u16, HeaderMap, Bytes, Option<HeaderMap>) {
    let tcp = tokio::net::TcpStream::connect(front).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = Request::post(format!("http://{front}/pkg.Service/Method"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(Bytes::from_static(b"\0\0\0\0\x02yo")))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(5), sender.send_request(request))
        .await
        .unwrap()
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let collected = response.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned();
    (status, headers, collected.to_bytes(), trailers)
}

#[tokio::test]
async fn grpc_trailers_pass_and_an_unreachable_upstream_is_a_grpc_status() {
    let backend = grpc_backend().await;
    let listen = free_addr();
    let proxy = start(&front(
        listen,
        &format!("http://{backend}"),
        "grpc = true\nproxy_set_header = { Host = \"$http_host\" }",
        true,
    ))
    .await;
    let (status, headers, body, trailers) = grpc_call(listen).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/grpc");
    assert_eq!(&body[..], b"\0\0\0\0\x02hi");
    let trailers = trailers.expect("trailers reach the client");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(
        trailers["x-te-seen"], "trailers",
        "te: trailers passes to the upstream"
    );

    // Nothing listens: a trailers-only gRPC answer, UNAVAILABLE.
    let dead = dead_addr();
    proxy
        .reload(config(&front(
            listen,
            &format!("http://{dead}"),
            "grpc = true",
            true,
        )))
        .unwrap();
    let (status, headers, body, _) = grpc_call(listen).await;
    assert_eq!(status, 200);
    assert_eq!(headers["grpc-status"], "14");
    assert!(body.is_empty());
}
