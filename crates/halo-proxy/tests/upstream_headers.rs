//! proxy_hide_header / proxy_pass_header, proxy_method, proxy_set_body, proxy_cookie_* and
//! proxy_redirect behave the same whether the upstream is spoken to in HTTP/1.1 or HTTP/2.
#![allow(clippy::unwrap_used)]

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use common::*;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Answers HTTP/1.1 and h2c alike: the method, URI, body and Content-Length it got, with
/// headers to hide, pass and rewrite.
async fn echo_backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let (parts, body) = req.into_parts();
                    let body = body.collect().await.unwrap().to_bytes();
                    let length = parts
                        .headers
                        .get("content-length")
                        .map_or("-".to_owned(), |v| v.to_str().unwrap().to_owned());
                    let text = format!(
                        "{} {} len={length} body={}",
                        parts.method,
                        parts.uri.path_and_query().unwrap(),
                        String::from_utf8_lossy(&body)
                    );
                    let response = Response::builder()
                        .status(302)
                        .header("server", "backend/1.0")
                        .header("x-pad", "pad")
                        .header("x-accel-expires", "60")
                        .header("x-secret", "s")
                        .header("x-kept", "k")
                        .header("location", format!("http://{addr}/two/next"))
                        .header("set-cookie", "a=1; Domain=backend.local; Path=/two/x")
                        .header("set-cookie", "b=2; Domain=eu.backend.local")
                        .body(Full::new(Bytes::from(text)))
                        .unwrap();
                    Ok::<_, Infallible>(response)
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

fn location(path: &str, backend: SocketAddr, h2: bool) -> String {
    format!(
        r#"
[[servers.locations]]
path = "{path}"
action = {{ type = "proxy", pass = "http://{backend}/two/" }}
upstream_http2 = {h2}
proxy_redirect = [{{ from = "~^http://[^/]+/two/(.*)$", to = "/moved/$1" }}]
[servers.locations.proxy_headers]
hide_header = ["X-Secret"]
pass_header = ["Server", "X-Pad"]
method = "$arg_m"
set_body = "id=$arg_id"
cookie_domain = [{{ from = "~^(\\w+)\\.backend\\.local$", to = "$1.example.com" }}, {{ from = "backend.local", to = "$host" }}]
cookie_path = [{{ from = "/two/", to = "{path}" }}]
"#
    )
}

#[tokio::test]
async fn http1_and_http2_upstreams_get_the_same_rules() {
    let backend = echo_backend().await;
    let listen = free_addr();
    let _proxy = start(&format!(
        "[[servers]]\nlisten = [{{ addr = \"{listen}\" }}]\n{}{}",
        location("/h1/", backend, false),
        location("/h2/", backend, true)
    ))
    .await;
    for prefix in ["/h1/", "/h2/"] {
        let mut client = Client::connect(listen).await;
        let request = Request::post(format!("{prefix}p?m=PUT&id=7"))
            .header("host", "front.test")
            .body(Full::new(Bytes::from_static(b"client body")))
            .unwrap();
        let reply = client.send(request).await;
        let header = |name: &str| {
            reply
                .headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(reply.status, 302, "{prefix}");
        assert_eq!(
            reply.body, "PUT /two/p?m=PUT&id=7 len=4 body=id=7",
            "{prefix}"
        );
        assert_eq!(header("server"), ["backend/1.0"], "{prefix}");
        assert_eq!(header("x-pad"), ["pad"], "{prefix}");
        assert!(header("x-secret").is_empty(), "{prefix}");
        assert!(header("x-accel-expires").is_empty(), "{prefix}");
        assert_eq!(header("x-kept"), ["k"], "{prefix}");
        assert_eq!(
            header("location"),
            [format!("http://front.test:{}/moved/next", listen.port())],
            "{prefix}"
        );
        assert_eq!(
            header("set-cookie"),
            [
                format!("a=1; Domain=front.test; Path={prefix}x"),
                "b=2; Domain=eu.example.com".to_owned()
            ],
            "{prefix}"
        );
    }
}
