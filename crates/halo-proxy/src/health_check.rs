//! Active health checks of upstream servers (a halo extension; nginx OSS has none): every
//! `interval`, a TCP connect or an HTTP GET per server; `fall` failures in a row take a server
//! out of rotation, `rise` successes bring it back (HAProxy semantics).

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use halo_config::http::HealthCheck;
use halo_lb::health::{ActiveCheckState, HealthChange};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::runtime::UpstreamRt;
use crate::server::Shared;

/// Starts one checker task per upstream of the current runtime that has a `health_check`.
/// A task ends when a reload replaced its upstream or the proxy is gone.
pub(crate) fn spawn_all(shared: &Arc<Shared>) {
    let runtime = shared.runtime.load();
    for (name, upstream) in &runtime.upstreams {
        let Some(check) = runtime
            .cfg
            .upstream(name)
            .and_then(|u| u.health_check.clone())
        else {
            continue;
        };
        tokio::spawn(run(Arc::downgrade(shared), upstream.clone(), check));
    }
}

async fn run(shared: Weak<Shared>, upstream: Arc<UpstreamRt>, check: HealthCheck) {
    let peers = upstream.lb.snapshot(Instant::now());
    let mut states: Vec<ActiveCheckState> = peers
        .iter()
        .map(|p| {
            if p.active_healthy {
                ActiveCheckState::new(check.rise, check.fall)
            } else {
                ActiveCheckState::starting_unhealthy(check.rise, check.fall)
            }
        })
        .collect();
    let mut tick = tokio::time::interval(check.interval);
    loop {
        tick.tick().await;
        let current = match shared.upgrade() {
            Some(shared) if shared.is_running() => {
                shared.runtime.load().upstreams.get(&upstream.name).cloned()
            }
            _ => return,
        };
        if !current.is_some_and(|c| Arc::ptr_eq(&c, &upstream)) {
            return;
        }
        let probes = peers.iter().map(|peer| {
            let spec = upstream.lb.server(peer.id);
            probe(spec.addr, &spec.name, check.uri.as_deref(), check.timeout)
        });
        let results = futures::future::join_all(probes).await;
        for ((peer, state), ok) in peers.iter().zip(states.iter_mut()).zip(results) {
            match state.record(ok) {
                Some(HealthChange::BecameHealthy) => {
                    tracing::info!(upstream = %upstream.name, server = %upstream.lb.server(peer.id).name, "active health check: server is healthy again");
                    upstream.lb.set_active_health(peer.id, true);
                }
                Some(HealthChange::BecameUnhealthy) => {
                    tracing::warn!(upstream = %upstream.name, server = %upstream.lb.server(peer.id).name, "active health check: server taken out of rotation");
                    upstream.lb.set_active_health(peer.id, false);
                }
                None => {}
            }
        }
    }
}

/// One check: TCP connect, or `GET uri` answered with a 2xx/3xx status line.
async fn probe(
    addr: std::net::SocketAddr,
    host: &str,
    uri: Option<&str>,
    timeout: Duration,
) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let Some(uri) = uri else {
            return Some(true);
        };
        let request = format!("GET {uri} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: halo-health-check\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 16];
        let mut filled = 0;
        while filled < 12 {
            let n = stream.read(&mut head[filled..]).await.ok()?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        let line = std::str::from_utf8(&head[..filled]).ok()?;
        let status = line.strip_prefix("HTTP/1.")?.get(2..5)?;
        Some(status.starts_with('2') || status.starts_with('3'))
    };
    matches!(tokio::time::timeout(timeout, attempt).await, Ok(Some(true)))
}
