//! Client certificates as nginx treats them (`ssl_verify_client`): the handshake asks for a
//! certificate and never fails because of it; the certificate is verified after the handshake
//! and each request is judged by the result (`$ssl_client_verify`: `SUCCESS`, `FAILED:reason`
//! or `NONE`). With `on`, a request without a valid certificate gets 400, as nginx answers
//! (its internal 495/496 go out as 400).

use std::sync::Arc;

use halo_config::http::{ServerTls, VerifyClient};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};

/// Asks for a certificate, accepts whatever chain comes (the signature over the handshake is
/// still checked, so the client holds the key), and leaves the verdict to [`verdict`].
#[derive(Debug)]
struct AskAndRecord {
    hints: Vec<DistinguishedName>,
    proof: crate::tls_signature::KeyProof,
}

impl ClientCertVerifier for AskAndRecord {
    fn offer_client_auth(&self) -> bool {
        true
    }
    fn client_auth_mandatory(&self) -> bool {
        false
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }
    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.proof.tls12(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.proof.tls13(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.proof.schemes()
    }
}

/// How a server block judges client certificates after the handshake.
#[derive(Debug)]
pub(crate) struct ClientAuth {
    pub mode: VerifyClient,
    /// The real chain verifier (None when no CA is configured, as `optional_no_ca` allows).
    verifier: Option<Arc<dyn ClientCertVerifier>>,
    depth: u32,
}

fn load_certs(path: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot load {what} \"{path}\": {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot load {what} \"{path}\": {e}"))
}

/// The handshake-time verifier of a server block, and its per-connection judge.
pub(crate) fn verifier(
    tls: &ServerTls,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    if tls.verify_client == VerifyClient::Off {
        return Ok(WebPkiClientVerifier::no_client_auth());
    }
    let mut hints = Vec::new();
    if let Some(path) = &tls.client_certificate {
        for cert in load_certs(path, "ssl_client_certificate")? {
            let mut store = RootCertStore::empty();
            store
                .add(cert)
                .map_err(|e| format!("ssl_client_certificate \"{path}\": {e}"))?;
            hints.extend(store.subjects());
        }
    }
    Ok(Arc::new(AskAndRecord {
        hints,
        proof: crate::tls_signature::KeyProof(provider.clone()),
    }))
}

/// The post-handshake judge of a server block's client certificates.
pub(crate) fn client_auth(
    tls: &ServerTls,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<Arc<ClientAuth>>, String> {
    if tls.verify_client == VerifyClient::Off {
        return Ok(None);
    }
    let mut roots = RootCertStore::empty();
    for (path, what) in [
        (&tls.client_certificate, "ssl_client_certificate"),
        (&tls.trusted_certificate, "ssl_trusted_certificate"),
    ] {
        if let Some(path) = path {
            for cert in load_certs(path, what)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("{what} \"{path}\": {e}"))?;
            }
        }
    }
    let verifier = if roots.is_empty() {
        None
    } else {
        let mut builder =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
        if let Some(path) = &tls.crl {
            let crls = CertificateRevocationListDer::pem_file_iter(path)
                .map_err(|e| format!("cannot load ssl_crl \"{path}\": {e}"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("cannot load ssl_crl \"{path}\": {e}"))?;
            builder = builder.with_crls(crls);
        }
        Some(
            builder
                .build()
                .map_err(|e| format!("client certificate verification: {e}"))?,
        )
    };
    Ok(Some(Arc::new(ClientAuth {
        mode: tls.verify_client,
        verifier,
        depth: tls.verify_depth,
    })))
}

impl ClientAuth {
    /// `$ssl_client_verify` for the chain a client sent.
    pub fn verdict(&self, chain: Option<&[CertificateDer<'static>]>) -> String {
        let Some((leaf, intermediates)) = chain.and_then(|c| c.split_first()) else {
            return "NONE".to_owned();
        };
        // OpenSSL counts the certificates between the leaf and the trusted CA; a chain that also
        // carries the CA itself is allowed one more.
        if intermediates.len() > self.depth as usize {
            return "FAILED:certificate chain too long".to_owned();
        }
        let Some(verifier) = &self.verifier else {
            return if self.mode == VerifyClient::OptionalNoCa {
                "FAILED:unable to get local issuer certificate".to_owned()
            } else {
                "FAILED:no trusted CA".to_owned()
            };
        };
        match verifier.verify_client_cert(leaf, intermediates, UnixTime::now()) {
            Ok(_) => "SUCCESS".to_owned(),
            Err(e) => format!("FAILED:{e}"),
        }
    }

    /// Whether a request on a connection with this verdict is refused (nginx's 495/496).
    pub fn refuses(&self, verdict: &str) -> bool {
        match self.mode {
            VerifyClient::Off => false,
            VerifyClient::On => verdict != "SUCCESS",
            VerifyClient::Optional => verdict.starts_with("FAILED"),
            // Issuer problems are forgiven; anything else about the certificate is not.
            VerifyClient::OptionalNoCa => {
                verdict.starts_with("FAILED")
                    && !verdict.contains("issuer")
                    && !verdict.contains("UnknownIssuer")
            }
        }
    }
}
