//! Temporary: the HTTP side while halo-proxy's API lands.
use std::time::Duration;

use halo_config::http::HttpConfig;

pub struct HttpSide;

impl HttpSide {
    pub async fn start(cfg: Option<HttpConfig>) -> anyhow::Result<HttpSide> {
        if cfg.is_some() {
            anyhow::bail!("HTTP side not wired yet");
        }
        Ok(HttpSide)
    }
    pub async fn reload(&mut self, _cfg: Option<HttpConfig>) -> anyhow::Result<()> {
        Ok(())
    }
    pub fn reopen_logs(&self) {}
    pub async fn shutdown(&mut self, _graceful: bool, _deadline: Duration) {}
}
