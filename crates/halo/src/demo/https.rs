//! The demo's HTTPS: a certificate made at start (self-signed, for the VIP and `localhost`), one
//! more server block in the seed's conf.d that terminates TLS and HTTP/2 on port 443 and proxies
//! to the same upstream, and a check that fetches a page through the VIP over TLS.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

/// What the demo's certificate is made for.
pub struct DemoCertificate {
    pub cert_file: std::path::PathBuf,
    der: Vec<u8>,
}

/// Makes the certificate and writes `conf.d/https.conf` next to the seed's files under `dir`.
pub fn prepare(dir: &Path, vip: &str) -> anyhow::Result<DemoCertificate> {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), vip.to_owned()])
        .context("certificate parameters")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "halo demo");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .context("making an ECDSA key")?;
    let cert = params
        .self_signed(&key)
        .context("signing the certificate")?;
    let tls = dir.join("nginx/tls");
    std::fs::create_dir_all(&tls)?;
    let cert_file = tls.join("demo.crt");
    std::fs::write(&cert_file, cert.pem())?;
    std::fs::write(tls.join("demo.key"), key.serialize_pem())?;
    // An ordinary nginx server block, in the directory the seed's nginx.conf includes.
    std::fs::write(
        dir.join("nginx/conf.d/https.conf"),
        "server {\n    listen 443 ssl;\n    http2 on;\n    server_name localhost;\n\
         \x20   ssl_certificate /etc/nginx/tls/demo.crt;\n    ssl_certificate_key /etc/nginx/tls/demo.key;\n\
         \x20   ssl_protocols TLSv1.2 TLSv1.3;\n    access_log off;\n\
         \x20   location / {\n        proxy_set_header Host $host;\n        proxy_set_header X-Forwarded-Proto $scheme;\n\
         \x20       proxy_pass http://xuad;\n    }\n}\n",
    )?;
    Ok(DemoCertificate {
        cert_file,
        der: cert.der().to_vec(),
    })
}

/// `GET /` over TLS to `vip:443` from namespace `ns`, trusting only the demo's certificate:
/// the protocol version and the body's first word (the web server that answered).
pub fn fetch(ns: &str, vip: IpAddr, cert: &DemoCertificate) -> anyhow::Result<(String, String)> {
    let ns = ns.to_owned();
    let der = cert.der.clone();
    std::thread::spawn(move || -> anyhow::Result<(String, String)> {
        halo_testkit::enter_netns(&ns)?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(rustls_pki_types::CertificateDer::from(der))?;
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls_pki_types::ServerName::from(vip);
        let conn = rustls::ClientConnection::new(Arc::new(config), name)?;
        let tcp = TcpStream::connect_timeout(&SocketAddr::new(vip, 443), Duration::from_secs(3))?;
        tcp.set_read_timeout(Some(Duration::from_secs(3)))?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut buf = Vec::new();
        // A peer that closes without close_notify still gave us the whole response.
        let _ = tls.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        anyhow::ensure!(text.starts_with("HTTP/1.1 200"), "answer: {text}");
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
        let protocol = match tls.conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLS",
        };
        Ok((
            protocol.to_owned(),
            body.split_whitespace().next().unwrap_or("").to_owned(),
        ))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the HTTPS check panicked"))?
}
