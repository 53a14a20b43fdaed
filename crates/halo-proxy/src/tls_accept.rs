//! Accepting a TLS connection: read the ClientHello, pick the server block by SNI (nginx's
//! server_name rules, falling back to the port's default server), finish the handshake with
//! that block's configuration within `client_header_timeout`, then serve HTTP/1.1 or HTTP/2 as
//! ALPN settled.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rustls::server::Acceptor;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::LazyConfigAcceptor;

use crate::connection::{ConnInfo, ConnTrack};
use crate::server::Shared;
use crate::stats::Counters;

/// What a TLS handshake settled, for `$ssl_*` variables and client-certificate checks.
#[derive(Debug)]
pub(crate) struct TlsInfo {
    /// `$ssl_protocol`: `TLSv1.2` or `TLSv1.3`.
    pub protocol: &'static str,
    /// `$ssl_cipher` (OpenSSL's name).
    pub cipher: &'static str,
    /// `$ssl_server_name`: the SNI the client sent.
    pub server_name: Option<String>,
    /// `$ssl_session_reused`.
    pub reused: bool,
    /// `$ssl_alpn_protocol`.
    pub alpn: Option<&'static str>,
    /// `$ssl_client_verify`: SUCCESS, FAILED:reason or NONE.
    pub client_verify: String,
    /// The client's certificate chain, leaf first.
    pub client_chain: Vec<CertificateDer<'static>>,
    /// Requests on this connection are refused (`ssl_verify_client` said no).
    pub refuse_requests: bool,
}

fn protocol_name(version: Option<rustls::ProtocolVersion>) -> &'static str {
    match version {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "",
    }
}

/// TLS alert record: fatal `unrecognized_name` (RFC 8446 §6.2), what nginx sends for
/// `ssl_reject_handshake`.
const UNRECOGNIZED_NAME_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70];

/// Reads the ClientHello without taking it from the socket; if the server it selects rejects
/// handshakes, answers `unrecognized_name` and says so. The real handshake then reads the same
/// bytes again.
async fn refused(
    stream: &TcpStream,
    listener: &crate::tls_config::TlsListener,
) -> std::io::Result<bool> {
    let mut buf = vec![0u8; 16 * 1024 + 5];
    let mut seen = 0;
    // Readiness stays set while the bytes are only peeked at: a client sending its hello in
    // pieces is waited for with a growing pause, not a busy loop.
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        stream.readable().await?;
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Ok(false);
        }
        let mut acceptor = Acceptor::default();
        acceptor.read_tls(&mut &buf[..n])?;
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let sni = accepted.client_hello().server_name().map(str::to_owned);
                let rejects = listener
                    .select(sni.as_deref())
                    .is_none_or(|server| server.config.is_none());
                if rejects {
                    // Seven bytes into a fresh socket's empty send buffer: one write.
                    let _ = stream.try_write(&UNRECOGNIZED_NAME_ALERT);
                }
                return Ok(rejects);
            }
            // Not a whole ClientHello yet: wait for more (bounded by the handshake timeout).
            Ok(None) if n < buf.len() => {
                if n == seen {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_millis(50));
                }
                seen = n;
            }
            Ok(None) => return Ok(false),
            // Not TLS: the real handshake fails on it and counts it.
            Err(_) => return Ok(false),
        }
    }
}

/// Serves one accepted connection on a TLS address.
pub(crate) async fn serve(
    accepted: crate::connection::Accepted,
    shared: Arc<Shared>,
    runtime: Arc<crate::runtime::Runtime>,
    shutdown: watch::Receiver<u8>,
) {
    let crate::connection::Accepted {
        stream,
        peer,
        listen,
        serial,
        proxied,
    } = accepted;
    let _ = stream.set_nodelay(true);
    let local = crate::connection::local_addr(&stream, listen);
    let track = Arc::new(ConnTrack::new(shared.counters.clone(), serial));
    let Some(listener) = runtime.tls.get(&listen).cloned() else {
        return;
    };
    let handshake = async {
        if listener.may_reject && refused(&stream, &listener).await? {
            return Err(std::io::Error::other(
                "handshake rejected (ssl_reject_handshake)",
            ));
        }
        let start = LazyConfigAcceptor::new(Acceptor::default(), stream).await?;
        let sni = start.client_hello().server_name().map(str::to_owned);
        let Some(server) = listener.select(sni.as_deref()).cloned() else {
            return Err(std::io::Error::other("no server for this address"));
        };
        let Some(config) = server.config.clone() else {
            // ssl_reject_handshake: the ClientHello is dropped unanswered but for rustls's
            // alert from a configuration without certificates.
            return Err(std::io::Error::other(format!(
                "handshake rejected for server name {:?}",
                sni.unwrap_or_default()
            )));
        };
        let tls = start.into_stream(config).await?;
        Ok((tls, server))
    };
    let (tls, server) =
        match tokio::time::timeout(runtime.cfg.client_header_timeout, handshake).await {
            Ok(Ok(done)) => done,
            Ok(Err(error)) => {
                Counters::bump(&shared.counters.tls_handshake_failures);
                tracing::debug!(%peer, %error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                Counters::bump(&shared.counters.tls_handshake_failures);
                Counters::bump(&shared.counters.timed_out);
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        };
    let conn = tls.get_ref().1;
    let reused = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    Counters::bump(&shared.counters.tls_handshakes);
    if reused {
        Counters::bump(&shared.counters.tls_resumed);
    }
    let h2 = conn.alpn_protocol() == Some(b"h2");
    let client_chain: Vec<CertificateDer<'static>> = conn
        .peer_certificates()
        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
        .unwrap_or_default();
    let (client_verify, refuse_requests) = match &server.client_auth {
        Some(auth) => {
            let verdict = auth.verdict(
                Some(&client_chain)
                    .filter(|c| !c.is_empty())
                    .map(|c| c.as_slice()),
            );
            let refuse = auth.refuses(&verdict);
            (verdict, refuse)
        }
        None => ("NONE".to_owned(), false),
    };
    let info = TlsInfo {
        protocol: protocol_name(conn.protocol_version()),
        cipher: conn
            .negotiated_cipher_suite()
            .map_or("", |s| crate::tls_config::openssl_suite_name(s.suite())),
        server_name: conn.server_name().map(str::to_owned),
        reused,
        alpn: match conn.alpn_protocol() {
            Some(b"h2") => Some("h2"),
            Some(b"http/1.1") => Some("http/1.1"),
            _ => None,
        },
        client_verify,
        client_chain,
        refuse_requests,
    };
    let info = Arc::new(ConnInfo {
        peer,
        local,
        listen,
        track: track.clone(),
        accepted_with: runtime,
        tls: Some(Arc::new(info)),
        proxied,
    });
    if h2 {
        shared
            .counters
            .h2_connections
            .fetch_add(1, Ordering::Relaxed);
    }
    crate::hyper_conn::serve(tls, info, shared, shutdown, h2, server.http2).await;
}
