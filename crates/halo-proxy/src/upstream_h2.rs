//! HTTP/2 toward upstreams (`proxy_http_version 2`, `grpc_pass`): h2 by ALPN over TLS,
//! prior-knowledge h2c over plain TCP, through hyper's HTTP/2 client.
//!
//! nginx opens one connection per request and keeps it alive for the next one; halo keeps one
//! HTTP/2 connection per peer (and per TLS settings) and multiplexes requests over it, up to
//! the streams the upstream allows. A connection the upstream closed (GOAWAY, reset) is
//! replaced on the next request.

use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use crate::body::IdleTimer;
use crate::upstream_tls::UpstreamTlsRt;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The request body type sent over HTTP/2.
pub(crate) type H2Body = UnsyncBoxBody<Bytes, BoxError>;

/// The HTTP/2 connections to one peer, by TLS settings (0 = plain h2c).
#[derive(Default)]
pub(crate) struct H2Senders {
    senders: Mutex<Vec<(u64, SendRequest<H2Body>)>>,
}

impl std::fmt::Debug for H2Senders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("H2Senders")
    }
}

impl H2Senders {
    /// A live connection made with these settings, if there is one.
    pub fn get(&self, tls: Option<&UpstreamTlsRt>) -> Option<SendRequest<H2Body>> {
        let id = tls.map_or(0, |t| t.id);
        let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        senders.retain(|(_, s)| !s.is_closed());
        senders
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, s)| s.clone())
    }

    fn put(&self, tls: Option<&UpstreamTlsRt>, sender: SendRequest<H2Body>) {
        let id = tls.map_or(0, |t| t.id);
        let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        senders.retain(|(i, s)| *i != id && !s.is_closed());
        senders.push((id, sender));
    }

    /// Runs the HTTP/2 handshake on a connection just made (TLS with ALPN h2 when `tls`) and
    /// keeps it for later requests.
    pub async fn handshake(
        &self,
        conn: crate::upstream_h1::UpstreamConn,
        tls: Option<&UpstreamTlsRt>,
    ) -> std::io::Result<SendRequest<H2Body>> {
        let mut builder = hyper::client::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .initial_stream_window_size(1 << 20)
            .initial_connection_window_size(4 << 20)
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        let (sender, connection) = builder
            .handshake(TokioIo::new(conn.stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "upstream HTTP/2 connection ended");
            }
        });
        self.put(tls, sender.clone());
        Ok(sender)
    }
}

/// Sends `request` on `sender` once it can take another stream.
pub(crate) async fn send(
    sender: &mut SendRequest<H2Body>,
    request: Request<H2Body>,
) -> Result<http::Response<Incoming>, hyper::Error> {
    sender.ready().await?;
    sender.send_request(request).await
}

/// An upstream HTTP/2 response body, frames (data and trailers) passed on as they come, with
/// `proxy_read_timeout` between two of them.
#[derive(Debug)]
pub(crate) struct H2ResponseBody {
    inner: Incoming,
    timeout: Duration,
    timer: IdleTimer,
}

impl H2ResponseBody {
    pub fn new(inner: Incoming, timeout: Duration) -> Self {
        H2ResponseBody {
            inner,
            timeout,
            timer: IdleTimer::default(),
        }
    }

    pub fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.timer.reset(self.timeout);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(Box::new(error)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(self.timer.poll_expired(cx, self.timeout));
                Poll::Ready(Some(Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "upstream timed out (proxy_read_timeout) while reading the response body",
                )))))
            }
        }
    }

    pub fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    pub fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
