//! The status endpoint (`[admin] status_listen`): JSON status at `/status` and Prometheus metrics at
//! `/metrics`, for the VRRP instances and the proxy. It has no authentication: bind it to loopback or
//! a management address.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::vrrp::status::{StatusBoard, StatusSnapshot};

/// What the endpoint reports on.
#[derive(Clone)]
pub struct Sources {
    pub board: StatusBoard,
    pub proxy: Option<Arc<halo_proxy::Proxy>>,
}

/// Binds `addr` and serves until the runtime ends.
pub async fn spawn(addr: SocketAddr, sources: Sources) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the status endpoint {addr}"))?;
    tracing::info!("status endpoint on http://{addr}/status and /metrics");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let sources = sources.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let sources = sources.clone();
                    async move { Ok::<_, Infallible>(respond(&sources, &req)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(())
}

fn respond<B>(sources: &Sources, req: &Request<B>) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match req.uri().path() {
        "/status" => (StatusCode::OK, "application/json", status_json(sources)),
        "/metrics" => (
            StatusCode::OK,
            "text/plain; version=0.0.4",
            metrics(sources),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /status or /metrics\n".to_string(),
        ),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn status_json(sources: &Sources) -> String {
    let vrrp: StatusSnapshot = sources.board.snapshot();
    let http = sources.proxy.as_ref().map(|p| {
        let s = p.stats();
        let upstreams: serde_json::Map<String, serde_json::Value> = p
            .upstream_status()
            .into_iter()
            .map(|(name, peers)| {
                let peers: Vec<serde_json::Value> = peers
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "peer": p.id.index(),
                            "available": p.available,
                            "fails": p.fails,
                            "conns": p.conns,
                            "weight": p.weight,
                            "effective_weight": p.effective_weight,
                            "backup": p.backup,
                            "down": p.down,
                        })
                    })
                    .collect();
                (name, serde_json::Value::Array(peers))
            })
            .collect();
        serde_json::json!({
            "active": s.active, "accepts": s.accepts, "handled": s.handled, "requests": s.requests,
            "reading": s.reading, "writing": s.writing, "waiting": s.waiting,
            "parked": s.parked, "parks": s.parks,
            "rejected": {
                "malformed": s.rejected_malformed, "timed_out": s.timed_out,
                "limit_conn": s.rejected_limit_conn, "limit_req": s.rejected_limit_req,
                "auth": s.rejected_auth, "access": s.rejected_access,
            },
            "upstreams": upstreams,
        })
    });
    let v = serde_json::json!({ "vrrp": vrrp, "http": http });
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Prometheus text exposition (format 0.0.4).
fn metrics(sources: &Sources) -> String {
    let mut out = String::new();
    let o = &mut out;
    let snap = sources.board.snapshot();
    family(
        o,
        "halo_vrrp_master",
        "gauge",
        "1 while the instance is MASTER.",
    );
    family(
        o,
        "halo_vrrp_fault",
        "gauge",
        "1 while the instance is in FAULT.",
    );
    family(o, "halo_vrrp_priority", "gauge", "Effective priority.");
    family(
        o,
        "halo_vrrp_transitions_total",
        "counter",
        "State transitions since start.",
    );
    family(
        o,
        "halo_vrrp_addresses_restored_total",
        "counter",
        "Virtual addresses put back after someone else removed them.",
    );
    family(
        o,
        "halo_vrrp_packets_total",
        "counter",
        "VRRP adverts sent, received, or dropped by reason.",
    );
    for i in snap.instances.values() {
        let l = format!("instance=\"{}\",vrid=\"{}\"", i.name, i.vrid);
        let _ = writeln!(
            o,
            "halo_vrrp_master{{{l}}} {}",
            u8::from(i.state == "MASTER")
        );
        let _ = writeln!(o, "halo_vrrp_fault{{{l}}} {}", u8::from(i.state == "FAULT"));
        let _ = writeln!(o, "halo_vrrp_priority{{{l}}} {}", i.effective_priority);
        let _ = writeln!(o, "halo_vrrp_transitions_total{{{l}}} {}", i.transitions);
        let _ = writeln!(
            o,
            "halo_vrrp_addresses_restored_total{{{l}}} {}",
            i.addresses_restored
        );
        for (k, v) in &i.counters {
            let kind = match k.as_str() {
                "rx_adverts" => "received".to_string(),
                "tx_adverts" => "sent".to_string(),
                other => match other.strip_prefix("drop_") {
                    Some(reason) => format!("dropped_{reason}"),
                    None => continue,
                },
            };
            let _ = writeln!(o, "halo_vrrp_packets_total{{{l},kind=\"{kind}\"}} {v}");
        }
    }
    if let Some(p) = &sources.proxy {
        let s = p.stats();
        family(
            o,
            "halo_http_connections",
            "gauge",
            "Client connections by state (stub_status).",
        );
        family(
            o,
            "halo_http_accepts_total",
            "counter",
            "Accepted client connections.",
        );
        family(o, "halo_http_requests_total", "counter", "Client requests.");
        family(
            o,
            "halo_http_connections_parked",
            "gauge",
            "Idle keep-alive connections held without a task.",
        );
        family(
            o,
            "halo_http_parks_total",
            "counter",
            "Idle connections parked.",
        );
        family(
            o,
            "halo_http_rejected_total",
            "counter",
            "Requests refused by halo, by reason.",
        );
        family(
            o,
            "halo_tls_handshakes_total",
            "counter",
            "TLS handshakes with clients, by result (full, resumed, failed).",
        );
        family(
            o,
            "halo_http2_connections_total",
            "counter",
            "Client connections that spoke HTTP/2.",
        );
        family(
            o,
            "halo_http2_reset_floods_total",
            "counter",
            "HTTP/2 connections closed for cancelling too many streams (rapid reset).",
        );
        family(
            o,
            "halo_tls_certificate_expiry_timestamp_seconds",
            "gauge",
            "When each served certificate expires (Unix time).",
        );
        family(
            o,
            "halo_upstream_peer_available",
            "gauge",
            "1 while the balancer may pick the peer.",
        );
        family(
            o,
            "halo_upstream_peer_fails",
            "gauge",
            "Failures counted against the peer (max_fails).",
        );
        family(
            o,
            "halo_upstream_peer_connections",
            "gauge",
            "Requests in flight to the peer.",
        );
        for (state, v) in [
            ("active", s.active),
            ("reading", s.reading),
            ("writing", s.writing),
            ("waiting", s.waiting),
        ] {
            let _ = writeln!(o, "halo_http_connections{{state=\"{state}\"}} {v}");
        }
        let _ = writeln!(o, "halo_http_accepts_total {}", s.accepts);
        let _ = writeln!(o, "halo_http_requests_total {}", s.requests);
        let _ = writeln!(o, "halo_http_connections_parked {}", s.parked);
        let _ = writeln!(o, "halo_http_parks_total {}", s.parks);
        for (reason, v) in [
            ("malformed", s.rejected_malformed),
            ("timeout", s.timed_out),
            ("limit_conn", s.rejected_limit_conn),
            ("limit_req", s.rejected_limit_req),
            ("auth", s.rejected_auth),
            ("access", s.rejected_access),
        ] {
            let _ = writeln!(o, "halo_http_rejected_total{{reason=\"{reason}\"}} {v}");
        }
        for (result, v) in [
            ("full", s.tls_handshakes.saturating_sub(s.tls_resumed)),
            ("resumed", s.tls_resumed),
            ("failed", s.tls_handshake_failures),
        ] {
            let _ = writeln!(o, "halo_tls_handshakes_total{{result=\"{result}\"}} {v}");
        }
        let _ = writeln!(o, "halo_http2_connections_total {}", s.h2_connections);
        let _ = writeln!(o, "halo_http2_reset_floods_total {}", s.h2_reset_floods);
        for (file, not_after) in p.certificates() {
            let file = file.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(
                o,
                "halo_tls_certificate_expiry_timestamp_seconds{{file=\"{file}\"}} {not_after}"
            );
        }
        for (name, peers) in p.upstream_status() {
            for peer in peers {
                let l = format!("upstream=\"{name}\",peer=\"{}\"", peer.id.index());
                let _ = writeln!(
                    o,
                    "halo_upstream_peer_available{{{l}}} {}",
                    u8::from(peer.available)
                );
                let _ = writeln!(o, "halo_upstream_peer_fails{{{l}}} {}", peer.fails);
                let _ = writeln!(o, "halo_upstream_peer_connections{{{l}}} {}", peer.conns);
            }
        }
    }
    out
}
