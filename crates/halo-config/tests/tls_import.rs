//! nginx's TLS, HTTP/2 and gRPC directives imported with nginx's inheritance.
#![allow(clippy::unwrap_used)]

use halo_config::http::{LocationAction, SessionCache, TlsVersion, VerifyClient};
use halo_config::import_nginx;
use std::path::Path;
use std::time::Duration;

fn import(text: &str) -> (halo_config::Config, Vec<String>) {
    let dir = std::env::temp_dir().join(format!(
        "halo-tls-import-{}-{}",
        std::process::id(),
        text.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, text).unwrap();
    let (config, warnings) = import_nginx(&conf, Path::new("/srv")).unwrap_or_else(|e| {
        panic!(
            "{}",
            e.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        )
    });
    let warnings = warnings.iter().map(|d| d.to_string()).collect();
    (config, warnings)
}

#[test]
fn ssl_directives_inherit_from_http_to_server_as_nginx_does() {
    let (config, warnings) = import(
        "events {}\nhttp {\n\
         ssl_certificate certs/site.crt;\n\
         ssl_certificate_key certs/site.key;\n\
         ssl_protocols TLSv1 TLSv1.2 TLSv1.3;\n\
         ssl_session_cache shared:SSL:10m;\n\
         ssl_session_timeout 10m;\n\
         server { listen 443 ssl; server_name a.test; http2 on; }\n\
         server { listen 443 ssl; server_name b.test;\n\
           ssl_protocols TLSv1.3;\n\
           ssl_certificate /etc/ssl/b.ecdsa.crt; ssl_certificate_key /etc/ssl/b.ecdsa.key;\n\
           ssl_certificate /etc/ssl/b.rsa.crt; ssl_certificate_key /etc/ssl/b.rsa.key;\n\
           ssl_verify_client optional; ssl_client_certificate /etc/ssl/ca.pem;\n\
           http2_max_concurrent_streams 64; http2_idle_timeout 3m; }\n\
         }\n",
    );
    let http = config.http.unwrap();
    let (a, b) = (&http.servers[0], &http.servers[1]);
    assert!(a.listen[0].ssl && !a.listen[0].http2);
    // Inherited from http, relative to the configuration directory.
    assert_eq!(a.tls.certificates.len(), 1);
    assert!(a.tls.certificates[0]
        .certificate
        .ends_with("/certs/site.crt"));
    // TLSv1 dropped with a warning naming it.
    assert_eq!(a.tls.protocols, vec![TlsVersion::Tls12, TlsVersion::Tls13]);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(":5:") && w.contains("TLSv1 is insecure")),
        "{warnings:?}"
    );
    assert_eq!(a.tls.session_cache, SessionCache::Sessions(40960));
    assert_eq!(a.tls.session_timeout, Duration::from_secs(600));
    assert!(a.http2.enabled);
    // A server's own list replaces the inherited one entirely, pairs kept in order.
    assert_eq!(b.tls.protocols, vec![TlsVersion::Tls13]);
    assert_eq!(b.tls.certificates.len(), 2);
    assert_eq!(b.tls.certificates[1].key, "/etc/ssl/b.rsa.key");
    assert_eq!(b.tls.verify_client, VerifyClient::Optional);
    assert_eq!(b.http2.max_concurrent_streams, 64);
    assert!(!b.http2.enabled);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("http2_idle_timeout: obsolete")),
        "{warnings:?}"
    );
}

#[test]
fn proxy_ssl_grpc_pass_and_proxy_http_version_2() {
    let (config, _) = import(
        "events {}\nhttp {\n\
         proxy_ssl_verify on;\n\
         proxy_ssl_trusted_certificate /etc/ssl/internal.pem;\n\
         server { listen 80;\n\
           location /api/ { proxy_pass https://10.0.0.5; proxy_ssl_name api.internal; proxy_ssl_server_name on; }\n\
           location /h2/ { proxy_http_version 2; proxy_pass http://10.0.0.6:8080; }\n\
           location /grpc/ { grpc_pass grpcs://10.0.0.7:50051; grpc_ssl_server_name on; grpc_read_timeout 1h; }\n\
           location /plain-grpc/ { grpc_pass 10.0.0.8:50051; }\n\
         }\n}\n",
    );
    let http = config.http.unwrap();
    let locs = &http.servers[0].locations;
    let pass = |i: usize| match &locs[i].action {
        LocationAction::Proxy { pass } => pass.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(pass(0), "https://10.0.0.5:443");
    assert!(locs[0].proxy_ssl.verify && locs[0].proxy_ssl.server_name);
    assert_eq!(locs[0].proxy_ssl.name.as_deref(), Some("api.internal"));
    assert!(locs[1].upstream_http2 && !locs[1].grpc);
    assert_eq!(pass(2), "https://10.0.0.7:50051");
    assert!(locs[2].grpc && locs[2].upstream_http2);
    // grpc_ssl_* apply to grpc_pass; proxy_ssl_verify (a proxy_* directive) does not.
    assert!(locs[2].proxy_ssl.server_name && !locs[2].proxy_ssl.verify);
    assert_eq!(locs[2].proxy_read_timeout, Duration::from_secs(3600));
    assert_eq!(
        locs[2].proxy_set_header.get("Host").map(String::as_str),
        Some("$http_host")
    );
    assert_eq!(pass(3), "http://10.0.0.8:50051");
}
