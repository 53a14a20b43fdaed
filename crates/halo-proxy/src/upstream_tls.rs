//! TLS toward upstreams (`proxy_pass https://`, `proxy_ssl_*`): the rustls client settings of
//! a location, and the connection type that carries either plain TCP or TLS.
//!
//! nginx's defaults are kept, insecure as they are: `proxy_ssl_verify off` accepts any
//! certificate (the handshake signature is still checked), and `proxy_ssl_server_name off`
//! sends no SNI. Sessions are resumed on new connections (`proxy_ssl_session_reuse on`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use halo_config::http::UpstreamTls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// The TLS side of a `proxy_pass https://` location.
#[derive(Debug)]
pub(crate) struct UpstreamTlsRt {
    /// Distinguishes the settings a pooled connection was made with: a connection is reused
    /// only by the settings that made it (a reload that changes `proxy_ssl_*` opens new ones).
    pub id: u64,
    config: Arc<ClientConfig>,
    /// The name verified (and sent as SNI when `proxy_ssl_server_name on`).
    name: ServerName<'static>,
}

/// `proxy_ssl_verify off`: any certificate is taken; the handshake signature must still verify.
#[derive(Debug)]
struct AcceptAnyCertificate(crate::tls_signature::KeyProof);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.tls12(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.tls13(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.schemes()
    }
}

impl UpstreamTlsRt {
    /// Compiles a location's `proxy_ssl_*`; `host` is the proxy_pass host (port removed).
    pub fn build(tls: &UpstreamTls, host: &str, h2: bool) -> Result<UpstreamTlsRt, String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&crate::tls_signature::versions(&tls.protocols))
            .map_err(|e| format!("proxy_ssl settings: {e}"))?;
        let builder = if tls.verify {
            let path = tls.trusted_certificate.as_deref().unwrap_or("");
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
                format!("cannot load proxy_ssl_trusted_certificate \"{path}\": {e}")
            })?;
            for cert in certs {
                let cert = cert.map_err(|e| {
                    format!("cannot load proxy_ssl_trusted_certificate \"{path}\": {e}")
                })?;
                roots
                    .add(cert)
                    .map_err(|e| format!("proxy_ssl_trusted_certificate \"{path}\": {e}"))?;
            }
            builder.with_root_certificates(roots)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(
                    crate::tls_signature::KeyProof(provider.clone()),
                )))
        };
        let mut config = match &tls.certificate {
            Some(pair) => {
                let certs: Vec<CertificateDer<'static>> =
                    CertificateDer::pem_file_iter(&pair.certificate)
                        .and_then(|i| i.collect::<Result<_, _>>())
                        .map_err(|e| {
                            format!(
                                "cannot load proxy_ssl_certificate \"{}\": {e}",
                                pair.certificate
                            )
                        })?;
                let key = PrivateKeyDer::from_pem_file(&pair.key).map_err(|e| {
                    format!(
                        "cannot load proxy_ssl_certificate_key \"{}\": {e}",
                        pair.key
                    )
                })?;
                builder.with_client_auth_cert(certs, key).map_err(|e| {
                    format!(
                        "proxy_ssl_certificate \"{}\" and key \"{}\": {e}",
                        pair.certificate, pair.key
                    )
                })?
            }
            None => builder.with_no_client_auth(),
        };
        config.enable_sni = tls.server_name;
        config.alpn_protocols = vec![if h2 {
            b"h2".to_vec()
        } else {
            b"http/1.1".to_vec()
        }];
        config.resumption = if tls.session_reuse {
            rustls::client::Resumption::in_memory_sessions(256)
        } else {
            rustls::client::Resumption::disabled()
        };
        let name_text = tls
            .name
            .clone()
            .unwrap_or_else(|| host.trim_matches(|c| c == '[' || c == ']').to_owned());
        let name = ServerName::try_from(name_text.clone())
            .map_err(|e| format!("proxy_ssl_name \"{name_text}\": {e}"))?;
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Ok(UpstreamTlsRt {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            config: Arc::new(config),
            name,
        })
    }

    /// Runs the handshake on a connected socket.
    pub async fn handshake(&self, tcp: TcpStream) -> io::Result<UpstreamIo> {
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let tls = connector.connect(self.name.clone(), tcp).await?;
        Ok(UpstreamIo::Tls(Box::new(tls), self.id))
    }
}

/// An upstream connection: plain TCP, or TLS over it.
#[derive(Debug)]
pub(crate) enum UpstreamIo {
    Plain(TcpStream),
    /// With the [`UpstreamTlsRt::id`] of the settings that made it.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>, u64),
}

impl UpstreamIo {
    /// Whether a request with these TLS settings (None: plain) may use this connection.
    pub fn suits(&self, tls: Option<&UpstreamTlsRt>) -> bool {
        match (self, tls) {
            (UpstreamIo::Plain(_), None) => true,
            (UpstreamIo::Tls(_, id), Some(tls)) => *id == tls.id,
            _ => false,
        }
    }

    fn tcp(&self) -> &TcpStream {
        match self {
            UpstreamIo::Plain(s) => s,
            UpstreamIo::Tls(s, _) => s.get_ref().0,
        }
    }

    /// No byte and no close arrived while the connection idled (a TLS connection is only
    /// peeked at, so nothing is lost).
    pub fn looks_alive(&self) -> bool {
        match self {
            UpstreamIo::Plain(s) => {
                let mut probe = [0u8; 1];
                matches!(s.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
            UpstreamIo::Tls(..) => {
                let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
                matches!(socket2::SockRef::from(self.tcp()).peek(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }

    /// Writes all of `bytes`; `timeout` bounds each wait for the socket (0 = none).
    pub async fn write_all(&mut self, bytes: &[u8], timeout: Duration) -> io::Result<()> {
        match self {
            UpstreamIo::Plain(s) => crate::server_h1::write_all_within(s, bytes, timeout).await,
            UpstreamIo::Tls(s, _) => {
                let writing = async {
                    s.write_all(bytes).await?;
                    s.flush().await
                };
                if timeout.is_zero() {
                    writing.await
                } else {
                    tokio::time::timeout(timeout, writing).await.map_err(|_| {
                        io::Error::new(io::ErrorKind::TimedOut, "proxy_send_timeout")
                    })?
                }
            }
        }
    }

    /// Reads into `buf`'s spare room (`room` bytes offered); Ready(Ok(0)) at end of stream.
    pub fn poll_read_into(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
        room: usize,
    ) -> Poll<io::Result<usize>> {
        match self {
            UpstreamIo::Plain(s) => loop {
                match s.try_read_buf(buf) {
                    Ok(n) => {
                        if n > 0 && n < room {
                            crate::server_h1::forget_readable(s);
                        }
                        return Poll::Ready(Ok(n));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::task::ready!(s.poll_read_ready(cx))?;
                    }
                    Err(e) => return Poll::Ready(Err(e)),
                }
            },
            UpstreamIo::Tls(s, _) => {
                let start = buf.len();
                buf.resize(start + room, 0);
                let mut read = ReadBuf::new(&mut buf[start..]);
                let result = Pin::new(&mut **s).poll_read(cx, &mut read);
                let n = read.filled().len();
                buf.truncate(start + n);
                result.map_ok(|()| n)
            }
        }
    }
}

impl AsyncRead for UpstreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            UpstreamIo::Tls(s, _) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpstreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
            UpstreamIo::Tls(s, _) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_flush(cx),
            UpstreamIo::Tls(s, _) => Pin::new(&mut **s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpstreamIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            UpstreamIo::Tls(s, _) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}
