//! Handshake signature checks that also work for X.509 v1 certificates.
//!
//! webpki (rustls's certificate parser) refuses version 1 certificates, which OpenSSL still
//! makes (`openssl x509 -req`, `openssl req -x509` with no extensions) and nginx accepts. Where
//! halo takes a peer's certificate without judging its chain (`proxy_ssl_verify off`, client
//! certificates judged after the handshake), the handshake signature must still prove the peer
//! holds the key: when webpki cannot read the certificate, its public key is read with
//! x509-parser and checked with the same signature algorithms rustls uses.

use std::sync::Arc;

use halo_config::http::TlsVersion;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::CertificateDer;

/// rustls's versions for `ssl_protocols` / `proxy_ssl_protocols`.
pub(crate) fn versions(protocols: &[TlsVersion]) -> Vec<&'static rustls::SupportedProtocolVersion> {
    protocols
        .iter()
        .map(|v| match v {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        })
        .collect()
}

/// The handshake-signature half of a certificate verifier that takes any certificate (the
/// client-certificate judge after the handshake, `proxy_ssl_verify off`): the peer must still
/// prove it holds the key.
#[derive(Debug)]
pub(crate) struct KeyProof(pub Arc<CryptoProvider>);

impl KeyProof {
    pub fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
            false,
        )
    }

    pub fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
            true,
        )
    }

    pub fn schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Schemes TLS 1.3 allows (RFC 8446 §4.2.3: no PKCS#1 v1.5, no SHA-1).
fn allowed_in_tls13(scheme: SignatureScheme) -> bool {
    use SignatureScheme as S;
    matches!(
        scheme,
        S::ECDSA_NISTP256_SHA256
            | S::ECDSA_NISTP384_SHA384
            | S::ECDSA_NISTP521_SHA512
            | S::RSA_PSS_SHA256
            | S::RSA_PSS_SHA384
            | S::RSA_PSS_SHA512
            | S::ED25519
            | S::ED448
    )
}

/// Verifies the handshake signature `dss` over `message` by the key in `cert`.
pub(crate) fn verify(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algorithms: &WebPkiSupportedAlgorithms,
    tls13: bool,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    let standard = if tls13 {
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    } else {
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    };
    match standard {
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadEncoding | rustls::CertificateError::Other(_),
        )) => {}
        other => return other,
    }
    let bad = || rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature);
    if tls13 && !allowed_in_tls13(dss.scheme) {
        return Err(rustls::Error::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ));
    }
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
    let key = parsed.public_key().subject_public_key.data.as_ref();
    let candidates = algorithms
        .mapping
        .iter()
        .find(|(scheme, _)| *scheme == dss.scheme)
        .map(|(_, algs)| *algs)
        .ok_or_else(bad)?;
    let candidates = if tls13 {
        &candidates[..candidates.len().min(1)]
    } else {
        candidates
    };
    if candidates
        .iter()
        .any(|alg| alg.verify_signature(key, message, dss.signature()).is_ok())
    {
        Ok(HandshakeSignatureValid::assertion())
    } else {
        Err(bad())
    }
}
