//! Test helpers: real backends on 127.0.0.1, a small HTTP client, raw socket I/O.
#![allow(clippy::unwrap_used, dead_code)]

pub mod pki;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use halo_config::http::HttpConfig;
use halo_proxy::Proxy;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub type Handler = Arc<
    dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>
        + Send
        + Sync,
>;

/// A backend HTTP server counting requests and connections, remembering request heads.
pub struct Backend {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    pub conns: Arc<AtomicUsize>,
    pub seen: Arc<Mutex<Vec<(String, String, HeaderMap)>>>,
    task: tokio::task::JoinHandle<()>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Drop for Backend {
    /// Like a server going down: the listener and every open connection close.
    fn drop(&mut self) {
        self.task.abort();
        let _ = self.stop.send(true);
    }
}

pub async fn backend_with(handler: Handler) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let conns = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (h, c, s) = (hits.clone(), conns.clone(), seen.clone());
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            c.fetch_add(1, Ordering::SeqCst);
            let (handler, h, s) = (handler.clone(), h.clone(), s.clone());
            let mut stop_rx = stop_rx.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    h.fetch_add(1, Ordering::SeqCst);
                    s.lock().unwrap().push((
                        req.method().to_string(),
                        req.uri().to_string(),
                        req.headers().clone(),
                    ));
                    let fut = handler(req);
                    async move { Ok::<_, std::convert::Infallible>(fut.await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades();
                tokio::select! {
                    _ = conn => {}
                    _ = stop_rx.changed() => {}
                }
            });
        }
    });
    Backend {
        addr,
        hits,
        conns,
        seen,
        task,
        stop,
    }
}

/// A backend answering `text` with 200.
pub async fn backend(text: &'static str) -> Backend {
    backend_with(Arc::new(move |_req| {
        Box::pin(async move { Response::new(Full::new(Bytes::from_static(text.as_bytes()))) })
    }))
    .await
}

/// A backend answering with `status`.
pub async fn backend_status(status: u16, text: &'static str) -> Backend {
    backend_with(Arc::new(move |_req| {
        Box::pin(async move {
            let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
            *r.status_mut() = StatusCode::from_u16(status).unwrap();
            r
        })
    }))
    .await
}

/// An address nothing listens on.
pub fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// A free port on 127.0.0.1.
pub fn free_addr() -> SocketAddr {
    dead_addr()
}

pub fn config(text: &str) -> Arc<HttpConfig> {
    Arc::new(toml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}")))
}

pub async fn start(text: &str) -> Proxy {
    Proxy::start(config(text)).await.unwrap()
}

/// A full response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

/// A keepalive HTTP/1.1 client connection.
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        Client { sender }
    }

    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Reply {
        tokio::time::timeout(Duration::from_secs(10), async {
            self.sender.ready().await.unwrap();
            let resp = self.sender.send_request(req).await.unwrap();
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            Reply {
                status: parts.status,
                headers: parts.headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            }
        })
        .await
        .expect("request timed out")
    }

    pub async fn get(&mut self, host: &str, path: &str) -> Reply {
        let req = Request::get(path)
            .header("host", host)
            .body(Full::new(Bytes::new()))
            .unwrap();
        self.send(req).await
    }
}

/// One GET on a fresh connection.
pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    Client::connect(addr).await.get("localhost", path).await
}

/// Writes `bytes`, reads until the peer closes or 3 s pass; returns what was read.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    read_to_close(&mut stream, Duration::from_secs(3)).await
}

pub async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Waits (bounded) until `cond` holds.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..300 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

/// A backend that answers an Upgrade request with 101 and then echoes every byte; a request
/// without `Upgrade: websocket` and `Connection: upgrade` gets 400.
pub async fn upgrade_echo_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_lowercase();
                if !head.contains("upgrade: websocket") || !head.contains("connection: upgrade") {
                    let _ = s
                        .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    return;
                }
                s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n")
                    .await
                    .unwrap();
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Asks for a WebSocket upgrade on `s`, expects 101, then checks that `payload` comes back.
pub async fn expect_upgrade_echo<S>(s: &mut S, host: &str, payload: &[u8])
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(payload).await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], payload);
}
