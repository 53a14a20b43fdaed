//! HTTPS and HTTP/2 in front, checked with real clients (curl, openssl s_client): SNI picks the
//! server and its certificate, ALPN picks HTTP/2, `$ssl_*` variables, `ssl_reject_handshake`,
//! reload swapping certificates (and keeping them when the new ones are bad), h2c with prior
//! knowledge, client certificates, and garbage that is counted without harming anyone.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::pki::TestCa;
use common::*;

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("halo-tls-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs curl; returns (exit success, stdout, stderr).
async fn curl(args: &[&str]) -> (bool, String, String) {
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::process::Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .args(args)
            .output(),
    )
    .await
    .expect("curl timed out")
    .expect("curl must be installed (apt-get install curl)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `curl https://NAME:PORT/PATH` resolved to `addr`, trusting `ca`.
async fn curl_https(
    addr: SocketAddr,
    name: &str,
    ca: &Path,
    extra: &[&str],
) -> (bool, String, String) {
    let resolve = format!("{name}:{}:{}", addr.port(), addr.ip());
    let url = format!("https://{name}:{}/", addr.port());
    let mut args = vec!["--resolve", &resolve, "--cacert", ca.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(&url);
    curl(&args).await
}

fn server_toml(
    listen: SocketAddr,
    names: &str,
    cert: &Path,
    key: &Path,
    extra: &str,
    text: &str,
) -> String {
    format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}", ssl = true }}]
server_name = [{names}]
{extra}
tls = {{ certificates = [{{ certificate = "{}", key = "{}" }}] }}
locations = [{{ path = "/", action = {{ type = "return", code = 200, text = "{text}" }} }}]
"#,
        cert.display(),
        key.display()
    )
}

#[tokio::test]
async fn sni_picks_the_server_and_its_certificate_and_alpn_picks_http2() {
    let dir = tempdir("sni");
    let ca = TestCa::new(&dir, "ca");
    let a = ca.leaf(&dir, "a", &["a.test"]);
    let b = ca.leaf(&dir, "b", &["b.test"]);
    let listen = free_addr();
    let vars = "$ssl_server_name $ssl_protocol $https $scheme $server_protocol $ssl_session_reused";
    let text = server_toml(
        listen,
        "\"a.test\"",
        &a.cert,
        &a.key,
        "",
        &format!("A {vars}"),
    ) + &server_toml(
        listen,
        "\"b.test\"",
        &b.cert,
        &b.key,
        "http2 = { enabled = true }",
        &format!("B {vars}"),
    );
    let proxy = start(&text).await;

    let (ok, body, err) = curl_https(listen, "a.test", &ca.cert, &["--http2"]).await;
    assert!(ok, "{err}");
    // a.test has no `http2 on`: ALPN settles on HTTP/1.1.
    assert_eq!(body, "A a.test TLSv1.3 on https HTTP/1.1 .");
    let (ok, body, err) = curl_https(listen, "b.test", &ca.cert, &["--http2"]).await;
    assert!(ok, "{err}");
    assert_eq!(body, "B b.test TLSv1.3 on https HTTP/2.0 .");
    // TLS 1.2 with a suite chosen from nginx's default cipher string.
    let (ok, body, err) = curl_https(
        listen,
        "a.test",
        &ca.cert,
        &["--tls-max", "1.2", "-w", " %{http_version}"],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(body, "A a.test TLSv1.2 on https HTTP/1.1 . 1.1");
    // The certificate is b.test's, so a client asking for a.test at b's certificate fails
    // verification: curl checks the name it asked for against what SNI selected.
    let stats = proxy.stats();
    assert!(stats.tls_handshakes >= 3, "{stats:?}");
    assert_eq!(stats.h2_connections, 1, "{stats:?}");
}

#[tokio::test]
async fn unknown_names_get_the_default_server_or_are_rejected() {
    let dir = tempdir("reject");
    let ca = TestCa::new(&dir, "ca");
    let a = ca.leaf(&dir, "a", &["a.test"]);
    let listen = free_addr();
    let text = format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}", ssl = true, default_server = true }}]
tls = {{ reject_handshake = true }}
locations = [{{ path = "/", action = {{ type = "return", code = 200, text = "default" }} }}]
"#
    ) + &server_toml(listen, "\"a.test\"", &a.cert, &a.key, "", "A");
    let proxy = start(&text).await;
    let (ok, body, err) = curl_https(listen, "a.test", &ca.cert, &[]).await;
    assert!(ok, "{err}");
    assert_eq!(body, "A");
    let (ok, _, err) = curl_https(listen, "other.test", &ca.cert, &["-k"]).await;
    assert!(!ok, "an unknown name must not get a handshake");
    // nginx's answer: a fatal unrecognized_name alert.
    assert!(err.contains("unrecognized name"), "{err}");
    assert!(proxy.stats().tls_handshake_failures >= 1);
}

#[tokio::test]
async fn reload_swaps_certificates_and_a_bad_one_keeps_the_old_serving() {
    let dir = tempdir("reload");
    let ca = TestCa::new(&dir, "ca");
    let first = ca.leaf(&dir, "first", &["a.test"]);
    let second = ca.leaf(&dir, "second", &["a.test"]);
    let other = ca.leaf(&dir, "other", &["a.test"]);
    let listen = free_addr();
    let fingerprint_of = |der: &[u8]| {
        use sha1::Digest;
        sha1::Sha1::digest(der)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let served = || async {
        let out = tokio::process::Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &listen.to_string(),
                "-servername",
                "a.test",
            ])
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .expect("openssl must be installed (apt-get install openssl)");
        let pem = String::from_utf8_lossy(&out.stdout).into_owned();
        let start = pem
            .find("-----BEGIN CERTIFICATE-----")
            .expect("a certificate");
        let end = pem.find("-----END CERTIFICATE-----").unwrap() + 25;
        let parsed = rustls_pki_types::pem::PemObject::from_pem_slice(&pem.as_bytes()[start..end]);
        let der: rustls_pki_types::CertificateDer<'static> = parsed.unwrap();
        fingerprint_of(&der)
    };
    let proxy = start(&server_toml(
        listen,
        "\"a.test\"",
        &first.cert,
        &first.key,
        "",
        "A",
    ))
    .await;
    assert_eq!(served().await, fingerprint_of(&first.der));

    proxy
        .reload(config(&server_toml(
            listen,
            "\"a.test\"",
            &second.cert,
            &second.key,
            "",
            "A",
        )))
        .unwrap();
    assert_eq!(served().await, fingerprint_of(&second.der));

    // A key that belongs to another certificate: the reload fails, naming both files.
    let error = proxy
        .reload(config(&server_toml(
            listen,
            "\"a.test\"",
            &first.cert,
            &other.key,
            "",
            "A",
        )))
        .unwrap_err()
        .to_string();
    assert!(error.contains("do not belong together"), "{error}");
    assert!(error.contains(first.cert.to_str().unwrap()), "{error}");
    // A missing file likewise.
    let missing = dir.join("missing.crt");
    let error = proxy
        .reload(config(&server_toml(
            listen,
            "\"a.test\"",
            &missing,
            &first.key,
            "",
            "A",
        )))
        .unwrap_err()
        .to_string();
    assert!(error.contains("missing.crt"), "{error}");
    assert_eq!(
        served().await,
        fingerprint_of(&second.der),
        "the old certificate keeps serving"
    );
}

#[tokio::test]
async fn cleartext_http2_with_prior_knowledge_and_http1_share_a_port() {
    let listen = free_addr();
    let text = format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}" }}]
http2 = {{ enabled = true }}
locations = [{{ path = "/", action = {{ type = "return", code = 200, text = "$server_protocol $scheme" }} }}]
"#
    );
    let _proxy = start(&text).await;
    let url = format!("http://{listen}/");
    let (ok, body, err) = curl(&["--http2-prior-knowledge", &url]).await;
    assert!(ok, "{err}");
    assert_eq!(body, "HTTP/2.0 http");
    let (ok, body, err) = curl(&[&url]).await;
    assert!(ok, "{err}");
    assert_eq!(body, "HTTP/1.1 http");
}

#[tokio::test]
async fn client_certificates_are_judged_per_request() {
    let dir = tempdir("mtls");
    let ca = TestCa::new(&dir, "ca");
    let client_ca = TestCa::new(&dir, "clientca");
    let stranger_ca = TestCa::new(&dir, "strangerca");
    let a = ca.leaf(&dir, "a", &["a.test"]);
    let good = client_ca.leaf(&dir, "good", &["alice"]);
    let bad = stranger_ca.leaf(&dir, "bad", &["mallory"]);
    let listen = free_addr();
    let text = format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}", ssl = true }}]
server_name = ["a.test"]
tls = {{ certificates = [{{ certificate = "{}", key = "{}" }}], verify_client = "on", client_certificate = "{}" }}
locations = [{{ path = "/", action = {{ type = "return", code = 200, text = "$ssl_client_verify $ssl_client_s_dn" }} }}]
"#,
        a.cert.display(),
        a.key.display(),
        client_ca.cert.display()
    );
    let _proxy = start(&text).await;
    let (ok, body, err) = curl_https(
        listen,
        "a.test",
        &ca.cert,
        &[
            "--cert",
            good.cert.to_str().unwrap(),
            "--key",
            good.key.to_str().unwrap(),
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(body, "SUCCESS CN=alice");
    // No certificate, or one from an unknown CA: the handshake succeeds, the request gets 400.
    let (ok, _, err) = curl_https(listen, "a.test", &ca.cert, &["-f"]).await;
    assert!(!ok && err.contains("400"), "{err}");
    let (ok, _, err) = curl_https(
        listen,
        "a.test",
        &ca.cert,
        &[
            "-f",
            "--cert",
            bad.cert.to_str().unwrap(),
            "--key",
            bad.key.to_str().unwrap(),
        ],
    )
    .await;
    assert!(!ok && err.contains("400"), "{err}");
}

#[tokio::test]
async fn garbage_instead_of_a_handshake_is_counted_and_harms_no_one() {
    let dir = tempdir("garbage");
    let ca = TestCa::new(&dir, "ca");
    let a = ca.leaf(&dir, "a", &["a.test"]);
    let listen = free_addr();
    let proxy = start(&server_toml(listen, "\"a.test\"", &a.cert, &a.key, "", "A")).await;
    // A plain HTTP request and random bytes on the TLS port; one client that stalls mid-hello.
    let reply = raw(listen, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").await;
    assert!(!reply.starts_with("HTTP/1.1 200"), "{reply}");
    let _ = raw(
        listen,
        &[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8],
    )
    .await;
    let mut stalled = tokio::net::TcpStream::connect(listen).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stalled, &[0x16, 0x03, 0x01])
        .await
        .unwrap();
    let (ok, body, err) = curl_https(listen, "a.test", &ca.cert, &[]).await;
    assert!(ok, "{err}");
    assert_eq!(body, "A");
    eventually("both bad handshakes are counted", || {
        proxy.stats().tls_handshake_failures >= 2
    })
    .await;
}

/// A TLS backend: another halo proxy answering with what its handshake saw.
async fn tls_backend(
    dir: &Path,
    ca: &TestCa,
    client_ca: Option<&Path>,
) -> (halo_proxy::Proxy, SocketAddr) {
    let leaf = ca.leaf(dir, "backend", &["backend.test"]);
    let listen = free_addr();
    let verify = client_ca.map_or(String::new(), |ca| {
        format!(
            ", verify_client = \"on\", client_certificate = \"{}\"",
            ca.display()
        )
    });
    let text = format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}", ssl = true }}]
tls = {{ certificates = [{{ certificate = "{}", key = "{}" }}]{verify} }}
locations = [{{ path = "/", action = {{ type = "return", code = 200, text = "sni=$ssl_server_name $ssl_protocol $ssl_client_verify host=$host" }} }}]
"#,
        leaf.cert.display(),
        leaf.key.display()
    );
    (start(&text).await, listen)
}

fn front(listen: SocketAddr, backend: SocketAddr, proxy_ssl: &str) -> String {
    format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}" }}]
[[servers.locations]]
path = "/"
action = {{ type = "proxy", pass = "https://{backend}" }}
proxy_ssl = {{ {proxy_ssl} }}
"#
    )
}

#[tokio::test]
async fn proxy_pass_https_keeps_nginx_defaults_and_verifies_when_asked() {
    let dir = tempdir("upstream");
    let ca = TestCa::new(&dir, "ca");
    let other_ca = TestCa::new(&dir, "otherca");
    let (backend, backend_addr) = tls_backend(&dir, &ca, None).await;

    // nginx's defaults: no verification, no SNI; connections are kept alive.
    let listen = free_addr();
    let proxy = start(&front(listen, backend_addr, "")).await;
    for _ in 0..3 {
        let reply = get(listen, "/").await;
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(
            reply.body,
            format!("sni= TLSv1.3 NONE host={}", backend_addr.ip())
        );
        assert_eq!(reply.headers.get_all("date").iter().count(), 1, "{reply:?}");
    }
    assert_eq!(
        backend.stats().tls_handshakes,
        1,
        "one kept-alive TLS connection"
    );

    // SNI and verification against the right CA, by proxy_ssl_name.
    let trusted = ca.cert.display();
    let text = front(
        listen,
        backend_addr,
        &format!("server_name = true, name = \"backend.test\", verify = true, trusted_certificate = \"{trusted}\""),
    );
    proxy.reload(config(&text)).unwrap();
    let reply = get(listen, "/").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(
        reply.body.starts_with("sni=backend.test TLSv1.3"),
        "{reply:?}"
    );

    // Verification against a CA that did not sign the backend: 502, nothing proxied.
    let text = front(
        listen,
        backend_addr,
        &format!(
            "name = \"backend.test\", verify = true, trusted_certificate = \"{}\"",
            other_ca.cert.display()
        ),
    );
    proxy.reload(config(&text)).unwrap();
    let reply = get(listen, "/").await;
    assert_eq!(reply.status, 502, "{reply:?}");
    // A name the certificate does not carry: 502 too.
    let text = front(
        listen,
        backend_addr,
        &format!("name = \"wrong.test\", verify = true, trusted_certificate = \"{trusted}\""),
    );
    proxy.reload(config(&text)).unwrap();
    assert_eq!(get(listen, "/").await.status, 502);
}

#[tokio::test]
async fn proxy_ssl_certificate_authenticates_halo_to_the_upstream() {
    let dir = tempdir("upstream-mtls");
    let ca = TestCa::new(&dir, "ca");
    let client_ca = TestCa::new(&dir, "clientca");
    let client = client_ca.leaf(&dir, "halo-client", &["halo"]);
    let (_backend, backend_addr) = tls_backend(&dir, &ca, Some(&client_ca.cert)).await;
    let listen = free_addr();
    let _proxy = start(&front(
        listen,
        backend_addr,
        &format!(
            "certificate = {{ certificate = \"{}\", key = \"{}\" }}",
            client.cert.display(),
            client.key.display()
        ),
    ))
    .await;
    let reply = get(listen, "/").await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert!(reply.body.contains("SUCCESS"), "{reply:?}");
}

#[tokio::test]
async fn websocket_upgrades_work_over_tls() {
    let backend = upgrade_echo_backend().await;
    let dir = tempdir("wss");
    let ca = TestCa::new(&dir, "ca");
    let leaf = ca.leaf(&dir, "a", &["a.test"]);
    let listen = free_addr();
    let text = format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}", ssl = true }}]
tls = {{ certificates = [{{ certificate = "{}", key = "{}" }}] }}
locations = [{{ path = "/", action = {{ type = "proxy", pass = "http://{backend}" }} }}]
"#,
        leaf.cert.display(),
        leaf.key.display()
    );
    let _proxy = start(&text).await;

    let connector =
        tokio_rustls::TlsConnector::from(rustls_client(&ca.cert, rustls::DEFAULT_VERSIONS));
    let tcp = tokio::net::TcpStream::connect(listen).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("a.test").unwrap();
    let mut s = connector.connect(name, tcp).await.unwrap();
    expect_upgrade_echo(&mut s, "a.test", b"ping over tls").await;
}

/// A rustls client trusting only `ca`, speaking `versions`.
fn rustls_client(
    ca: &Path,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::sync::Arc<rustls::ClientConfig> {
    let pem = std::fs::read(ca).unwrap();
    let ca_der: rustls_pki_types::CertificateDer<'static> =
        rustls_pki_types::pem::PemObject::from_pem_slice(&pem).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_der).unwrap();
    std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

/// `openssl x509 -req` without extensions makes X.509 v1 certificates (nginx's own tests use
/// them); webpki refuses to parse v1, but nginx serves them, and so does halo.
#[tokio::test]
async fn x509_v1_rsa_certificates_made_by_openssl_are_served() {
    let dir = tempdir("v1");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("openssl must be installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for name in ["v1", "other"] {
        run(&["genrsa", "-out", &format!("{name}.key"), "2048"]);
        run(&[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            "/CN=localhost",
            "-out",
            &format!("{name}.csr"),
        ]);
        run(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &format!("{name}.csr"),
            "-signkey",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ]);
    }
    let text_of = |file: &str| std::fs::read_to_string(dir.join(file)).unwrap();
    assert!(!text_of("v1.crt").is_empty());
    let listen = free_addr();
    let toml = server_toml(
        listen,
        "\"localhost\"",
        &dir.join("v1.crt"),
        &dir.join("v1.key"),
        "",
        "v1",
    );
    let proxy = start(&toml).await;
    let (ok, body, err) = curl_https(listen, "localhost", &dir.join("v1.crt"), &["-k"]).await;
    assert!(ok, "{err}");
    assert_eq!(body, "v1");
    // A key from another v1 certificate is still caught.
    let bad = server_toml(
        listen,
        "\"localhost\"",
        &dir.join("v1.crt"),
        &dir.join("other.key"),
        "",
        "v1",
    );
    let error = proxy.reload(config(&bad)).unwrap_err().to_string();
    assert!(error.contains("do not belong together"), "{error}");
}

#[tokio::test]
async fn sessions_resume_by_ticket_and_by_cache() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempdir("resume");
    let ca = TestCa::new(&dir, "ca");
    let a = ca.leaf(&dir, "a", &["a.test"]);
    let listen = free_addr();
    let text = format!(
        r#"
[[servers]]
listen = [{{ addr = "{listen}", ssl = true }}]
server_name = ["a.test"]
tls = {{ certificates = [{{ certificate = "{}", key = "{}" }}], session_cache = {{ sessions = 1000 }} }}
locations = [{{ path = "/", action = {{ type = "return", code = 200, text = "$ssl_protocol $ssl_session_reused" }} }}]
"#,
        a.cert.display(),
        a.key.display()
    );
    let proxy = start(&text).await;
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        // One client configuration = one session store, as a browser keeps.
        let config = rustls_client(&ca.cert, &[version]);
        let mut bodies = Vec::new();
        for _ in 0..2 {
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let tcp = tokio::net::TcpStream::connect(listen).await.unwrap();
            let name = rustls_pki_types::ServerName::try_from("a.test").unwrap();
            let mut s = connector.connect(name, tcp).await.unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out).await;
            let text = String::from_utf8_lossy(&out).into_owned();
            bodies.push(text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned());
        }
        let p = if version == &rustls::version::TLS13 {
            "TLSv1.3"
        } else {
            "TLSv1.2"
        };
        assert_eq!(bodies, vec![format!("{p} ."), format!("{p} r")]);
    }
    assert_eq!(proxy.stats().tls_resumed, 2);
}
