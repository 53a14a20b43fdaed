//! HTTP/2 abuse: each known flood (rapid reset, CONTINUATION flood, HPACK bomb, PING and
//! SETTINGS floods, a zero flow-control window) is run by a misbehaving client
//! (`h2_abuse.py`, Debian's python3-h2), and a well-behaved client is served meanwhile.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::Response;
use http_body_util::Full;

const PYTHON: &str = "/usr/bin/python3";

async fn abuse(attack: &str, addr: SocketAddr) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/h2_abuse.py");
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(PYTHON)
            .args([
                script,
                attack,
                &addr.ip().to_string(),
                &addr.port().to_string(),
            ])
            .output(),
    )
    .await
    .expect("the abusive client ran too long")
    .expect("Debian's python3 with python3-h2 must be installed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{attack}: {stderr}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A normal HTTP/2 request by curl, with prior knowledge, must succeed quickly.
async fn served(addr: SocketAddr) {
    let started = Instant::now();
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "5", "--http2-prior-knowledge"])
        .arg(format!("http://{addr}/"))
        .output()
        .await
        .expect("curl must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "fine");
    assert!(started.elapsed() < Duration::from_secs(3));
}

fn closed_after(line: &str) -> Option<u64> {
    line.strip_prefix("closed after ")?.parse().ok()
}

/// A directory removed when dropped.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn h2c_proxy() -> (halo_proxy::Proxy, SocketAddr, Backend, TempDir) {
    // /slow waits on the backend, so reset streams are still in flight when cancelled.
    let slow = backend_with(std::sync::Arc::new(|_req| {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Response::new(Full::new(Bytes::from_static(b"slow")))
        })
    }))
    .await;
    let dir = std::env::temp_dir().join(format!(
        "halo-h2-{}-{}",
        std::process::id(),
        slow.addr.port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("big"), vec![b'x'; 1 << 20]).unwrap();
    let listen = free_addr();
    let text = format!(
        r#"
keepalive_timeout = "1s"
[[servers]]
listen = [{{ addr = "{listen}" }}]
http2 = {{ enabled = true }}
locations = [
  {{ match = "exact", path = "/", action = {{ type = "return", code = 200, text = "fine" }} }},
  {{ path = "/slow", action = {{ type = "proxy", pass = "http://{}" }} }},
  {{ path = "/big", action = {{ type = "static", root = "{}" }} }},
]
"#,
        slow.addr,
        dir.display()
    );
    (start(&text).await, listen, slow, TempDir(dir))
}

#[tokio::test]
async fn rapid_reset_loses_the_connection_and_spares_others() {
    let (proxy, addr, _slow, _dir) = h2c_proxy().await;
    let line = abuse("rapid_reset", addr).await;
    println!("rapid reset: {line}");
    let n = closed_after(&line).unwrap_or_else(|| panic!("{line}"));
    assert!(n < 5000, "{line}");
    served(addr).await;
    let stats = proxy.stats();
    assert!(stats.h2_connections >= 2, "{stats:?}");
    // Either halo's cutoff (cancelled streams a second) or h2's limit on streams reset before
    // they were accepted ended it; few of the 5,000 requests reached a handler.
    assert!(stats.requests < 400, "{stats:?}");
}

#[tokio::test]
async fn continuation_flood_is_cut() {
    let (_proxy, addr, _slow, _dir) = h2c_proxy().await;
    let line = abuse("continuation_flood", addr).await;
    println!("continuation flood: {line}");
    // 32 KiB of header list is the limit: far fewer than 20,000 frames of 1 KB get through.
    let n = closed_after(&line).unwrap_or_else(|| panic!("{line}"));
    assert!(n < 1000, "{line}");
    served(addr).await;
}

#[tokio::test]
async fn hpack_bomb_is_cut() {
    let (_proxy, addr, _slow, _dir) = h2c_proxy().await;
    let line = abuse("hpack_bomb", addr).await;
    println!("hpack bomb: {line}");
    let n = closed_after(&line).unwrap_or_else(|| panic!("{line}"));
    assert!(n < 200, "{line}");
    served(addr).await;
}

#[tokio::test]
async fn ping_and_settings_floods_do_not_stall_others() {
    let (_proxy, addr, _slow, _dir) = h2c_proxy().await;
    // The flooding client never reads: the server stops reading it once its answers back up.
    let (ping, ()) = tokio::join!(abuse("ping_flood", addr), served(addr));
    assert!(ping.contains("after"), "{ping}");
    let (settings, ()) = tokio::join!(abuse("settings_flood", addr), served(addr));
    assert!(settings.contains("after"), "{settings}");
    served(addr).await;
}

#[tokio::test]
async fn a_zero_window_stall_is_closed_by_the_idle_timeout() {
    let (_proxy, addr, _slow, _dir) = h2c_proxy().await;
    let started = Instant::now();
    let line = abuse("zero_window", addr).await;
    assert!(closed_after(&line).is_some(), "{line}");
    // keepalive_timeout is 1 s: the stalled connection is gone well before the client's 10 s.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    served(addr).await;
}
