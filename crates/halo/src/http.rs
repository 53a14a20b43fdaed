//! The HTTP side of a running halo: the proxy of `halo-proxy`, or nothing when the configuration has
//! no HTTP part (VRRP only, like a keepalived.conf alone).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use halo_config::http::HttpConfig;
use halo_proxy::Proxy;

pub struct HttpSide {
    proxy: Option<Arc<Proxy>>,
}

impl HttpSide {
    pub async fn start(cfg: Option<HttpConfig>) -> anyhow::Result<HttpSide> {
        let proxy = match cfg {
            Some(c) => Some(Arc::new(
                Proxy::start(Arc::new(c))
                    .await
                    .context("starting the HTTP proxy")?,
            )),
            None => None,
        };
        Ok(HttpSide { proxy })
    }

    /// Swaps in a new HTTP configuration; listeners that stay are never closed.
    pub async fn reload(&mut self, cfg: Option<HttpConfig>) -> anyhow::Result<()> {
        match (&self.proxy, cfg) {
            (Some(p), Some(c)) => p.reload(Arc::new(c)).context("reloading the proxy")?,
            (None, Some(c)) => {
                self.proxy = Some(Arc::new(
                    Proxy::start(Arc::new(c))
                        .await
                        .context("starting the HTTP proxy")?,
                ))
            }
            (Some(_), None) => {
                if let Some(p) = self.proxy.take() {
                    p.shutdown(true, Duration::from_secs(30)).await;
                }
            }
            (None, None) => {}
        }
        Ok(())
    }

    pub fn reopen_logs(&self) {
        if let Some(p) = &self.proxy {
            for (path, e) in p.reopen_logs() {
                tracing::error!("cannot reopen log file {path}: {e}");
            }
        }
    }

    /// Whether the proxy serves (every listener's accept loop runs), for VRRP tracking; `None` when
    /// this node has no HTTP side.
    pub fn health(&self) -> Option<bool> {
        self.proxy.as_ref().map(|p| p.healthy())
    }

    /// Connections parked without a task since start (0 without an HTTP side).
    pub fn parks(&self) -> u64 {
        self.proxy.as_ref().map_or(0, |p| p.stats().parks)
    }

    /// The running proxy, for the status endpoint.
    pub fn proxy(&self) -> Option<Arc<Proxy>> {
        self.proxy.clone()
    }

    /// What VRRP calls when it hands the VIP over: stop taking new connections for that long.
    pub fn handoff_hook(&self) -> Option<crate::vrrp::HandoffHook> {
        let proxy = self.proxy.clone()?;
        Some(Arc::new(move |d| proxy.pause_accepting(d)))
    }

    pub async fn shutdown(&mut self, graceful: bool, deadline: Duration) {
        if let Some(p) = self.proxy.take() {
            p.shutdown(graceful, deadline).await;
        }
    }
}
