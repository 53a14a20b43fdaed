//! An nginx.conf with HTTPS, run unchanged: `halo check` loads the certificates as `halo run`
//! does (a key that does not match is an error at the ssl_certificate line; a certificate about
//! to expire is a warning), curl gets HTTPS and HTTP/2, and SIGHUP swaps the certificate.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};

/// A self-signed certificate for `name` valid for `days`, written as NAME.crt / NAME.key.
fn cert(dir: &Scratch, file: &str, name: &str, days: i64) {
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    let now = std::time::SystemTime::now();
    params.not_before = (now - Duration::from_secs(86_400)).into();
    params.not_after = (now + Duration::from_secs(u64::try_from(days).unwrap() * 86_400)).into();
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = params.self_signed(&key).unwrap();
    dir.write(&format!("{file}.crt"), &cert.pem());
    dir.write(&format!("{file}.key"), &key.serialize_pem());
}

fn nginx_conf(dir: &Scratch, port: u16, cert: &str, key: &str) -> String {
    let conf = format!(
        "events {{}}\nhttp {{\n    server {{\n        listen 127.0.0.1:{port} ssl;\n        http2 on;\n        server_name site.test;\n        ssl_certificate {cert}.crt;\n        ssl_certificate_key {key}.key;\n        ssl_protocols TLSv1.2 TLSv1.3;\n        location / {{\n            return 200 \"$ssl_protocol $server_protocol $scheme\";\n        }}\n    }}\n}}\n"
    );
    dir.write("nginx.conf", &conf)
        .to_string_lossy()
        .into_owned()
}

fn check(conf: &str) -> (bool, String) {
    let out = Command::new(halo_bin())
        .args(["check", "--nginx", conf])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

fn curl(port: u16, crt: &Path, extra: &[&str]) -> (bool, String, String) {
    let resolve = format!("site.test:{port}:127.0.0.1");
    let url = format!("https://site.test:{port}/");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--resolve", &resolve, "--cacert"])
        .arg(crt)
        .args(extra)
        .arg(&url)
        .output()
        .expect("curl must be installed");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_loads_certificates_like_run_does() {
    let dir = Scratch::new("https-check");
    cert(&dir, "good", "site.test", 365);
    cert(&dir, "other", "site.test", 365);
    cert(&dir, "soon", "site.test", 3);
    let port = free_port();
    let (ok, out) = check(&nginx_conf(&dir, port, "good", "good"));
    assert!(ok, "{out}");
    // The key of another certificate: refused at the ssl_certificate line, naming both files.
    let (ok, out) = check(&nginx_conf(&dir, port, "good", "other"));
    assert!(!ok, "{out}");
    assert!(out.contains("nginx.conf:7:"), "{out}");
    assert!(out.contains("do not belong together"), "{out}");
    let (ok, out) = check(&nginx_conf(&dir, port, "missing", "good"));
    assert!(!ok && out.contains("missing.crt"), "{out}");
    // Three days left: valid, with a warning.
    let (ok, out) = check(&nginx_conf(&dir, port, "soon", "soon"));
    assert!(ok, "{out}");
    assert!(
        out.contains("expires in 2 day(s)") || out.contains("expires in 3 day(s)"),
        "{out}"
    );
}

#[test]
fn https_and_http2_from_an_unchanged_nginx_conf_and_sighup_swaps_the_certificate() {
    let dir = Scratch::new("https-run");
    cert(&dir, "first", "site.test", 365);
    cert(&dir, "second", "site.test", 365);
    let port = free_port();
    let conf = nginx_conf(&dir, port, "first", "first");
    let pid_file = dir.path("halo.pid");
    let _halo = spawn_halo(
        &[
            "run",
            "--nginx",
            &conf,
            "--pid-file",
            pid_file.to_str().unwrap(),
        ],
        &dir.path("halo.log"),
    );
    wait_port(port);
    let (ok, body, err) = curl(port, &dir.path("first.crt"), &["--http2"]);
    assert!(ok, "{err}");
    assert_eq!(body, "TLSv1.3 HTTP/2.0 https");
    let (ok, body, err) = curl(
        port,
        &dir.path("first.crt"),
        &["--http1.1", "--tls-max", "1.2"],
    );
    assert!(ok, "{err}");
    assert_eq!(body, "TLSv1.2 HTTP/1.1 https");

    // Same file names, new contents, then SIGHUP: new handshakes get the new certificate.
    std::fs::copy(dir.path("second.crt"), dir.path("first.crt")).unwrap();
    std::fs::copy(dir.path("second.key"), dir.path("first.key")).unwrap();
    Command::new(halo_bin())
        .args(["reload", "--pid-file", pid_file.to_str().unwrap()])
        .status()
        .unwrap();
    let t0 = Instant::now();
    loop {
        let (ok, _, _) = curl(port, &dir.path("second.crt"), &[]);
        if ok {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the new certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Now a broken key: the reload fails and the certificate in use keeps serving.
    std::fs::write(dir.path("first.key"), "not a key").unwrap();
    Command::new(halo_bin())
        .args(["reload", "--pid-file", pid_file.to_str().unwrap()])
        .status()
        .unwrap();
    let log = dir.path("halo.log");
    let t0 = Instant::now();
    while !std::fs::read_to_string(&log).unwrap().contains("first.key") {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the failed reload was not logged"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (ok, body, err) = curl(port, &dir.path("second.crt"), &[]);
    assert!(ok, "{err}");
    assert_eq!(body, "TLSv1.3 HTTP/2.0 https");
}

#[test]
fn metrics_show_certificate_expiry_and_handshakes() {
    let dir = Scratch::new("https-metrics");
    cert(&dir, "site", "site.test", 30);
    let (front, admin) = (free_port(), free_port());
    let crt = dir.path("site.crt");
    let key = dir.path("site.key");
    let conf = dir.write(
        "halo.toml",
        &format!(
            "[admin]\nstatus_listen = \"127.0.0.1:{admin}\"\n\n[http]\nworker_threads = 1\n\n\
             [[http.servers]]\nlisten = [{{ addr = \"127.0.0.1:{front}\", ssl = true }}]\n\
             tls = {{ certificates = [{{ certificate = \"{}\", key = \"{}\" }}] }}\n\n\
             [[http.servers.locations]]\npath = \"/\"\naction = {{ type = \"return\", code = 200, text = \"hi\" }}\n",
            crt.display(),
            key.display()
        ),
    );
    let _halo = spawn_halo(
        &["run", "--config", conf.to_str().unwrap()],
        &dir.path("halo.log"),
    );
    wait_port(front);
    wait_port(admin);
    let (ok, body, err) = curl(front, &crt, &[]);
    assert!(ok && body == "hi", "{err}");
    let metrics = http_get(admin, "/metrics");
    let value = |prefix: &str| -> i64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{prefix} missing in\n{metrics}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert_eq!(value("halo_tls_handshakes_total{result=\"full\"} "), 1);
    let expiry = value(&format!(
        "halo_tls_certificate_expiry_timestamp_seconds{{file=\"{}\"}} ",
        crt.display()
    ));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let days = (expiry - now) / 86_400;
    assert!((29..=30).contains(&days), "{days} days left");
}
