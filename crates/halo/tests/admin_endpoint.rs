//! `[admin] status_listen`: JSON status and Prometheus metrics over HTTP (loopback).
#![allow(clippy::unwrap_used)]

mod common;

use common::{free_port, http_get, spawn_halo, wait_port};

#[test]
fn status_and_metrics_report_the_proxy() {
    let dir = std::env::temp_dir().join(format!("halo-admin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (front, admin) = (free_port(), free_port());
    let conf = dir.join("halo.toml");
    std::fs::write(
        &conf,
        format!(
            "[admin]\nstatus_listen = \"127.0.0.1:{admin}\"\n\n[http]\nworker_threads = 1\n\n\
             [[http.servers]]\nlisten = [{{ addr = \"127.0.0.1:{front}\" }}]\n\n\
             [[http.servers.locations]]\npath = \"/\"\naction = {{ type = \"return\", code = 200, text = \"hi\" }}\n"
        ),
    )
    .unwrap();
    let _halo = spawn_halo(
        &["run", "--config", conf.to_str().unwrap()],
        &dir.join("halo.log"),
    );
    wait_port(front);
    wait_port(admin);
    for _ in 0..3 {
        assert!(http_get(front, "/").ends_with("hi"));
    }
    let metrics = http_get(admin, "/metrics");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains("# TYPE halo_http_requests_total counter"),
        "{metrics}"
    );
    let requests: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("halo_http_requests_total "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(requests, 3, "{metrics}");
    let status = http_get(admin, "/status");
    let body = status.split("\r\n\r\n").nth(1).unwrap();
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["http"]["requests"].as_u64(), Some(3), "{body}");
    assert!(v["vrrp"]["instances"].as_object().unwrap().is_empty());
    assert!(http_get(admin, "/nope").starts_with("HTTP/1.1 404"));
    let _ = std::fs::remove_dir_all(&dir);
}
