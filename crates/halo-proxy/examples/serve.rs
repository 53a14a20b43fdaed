//! Runs the proxy alone from a native TOML file of the `[http]` model (for load tests):
//! `cargo run -p halo-proxy --example serve -- proxy.toml`.

use std::sync::Arc;

use halo_config::http::HttpConfig;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: serve CONFIG.toml")?;
    let cfg: HttpConfig = toml::from_str(&std::fs::read_to_string(&path)?)?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = cfg.worker_threads {
        builder.worker_threads(threads);
    }
    let runtime = builder.enable_all().build()?;
    runtime.block_on(async move {
        let proxy = halo_proxy::Proxy::start(Arc::new(cfg)).await?;
        eprintln!("listening on {:?}", proxy.listen_addrs());
        tokio::signal::ctrl_c().await?;
        proxy
            .shutdown(true, std::time::Duration::from_secs(5))
            .await;
        eprintln!("{:?}", proxy.stats());
        Ok(())
    })
}
