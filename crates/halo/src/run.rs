//! `halo run`: the daemon. Loads the configuration, starts the proxy and the VRRP instances, and
//! handles signals: SIGHUP reloads, SIGTERM/SIGINT stop (VRRP priority 0 first), SIGQUIT stops
//! gracefully (VRRP hands over, then the proxy drains), SIGUSR1 reopens log files.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use halo_config::Config;
use tokio::signal::unix::{signal, SignalKind};

use crate::cli::ConfigSource;
use crate::config_source::{load, load_or_report, print_diagnostics};
use crate::http::HttpSide;
use crate::vrrp::status::StatusBoard;
use crate::vrrp::VrrpRuntime;

/// How often the proxy's health is handed to VRRP tracking.
const PROXY_HEALTH_EVERY: Duration = Duration::from_millis(200);
/// Tells the proxy the local time zone's current offset, for `$time_local` in access logs.
fn refresh_local_utc_offset() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    halo_proxy::set_local_utc_offset(halo_sys::local_utc_offset(now).unwrap_or(0));
}

/// Connections parked (see halo-proxy's idle lot) after which freed memory is returned.
const TRIM_AFTER_PARKS: u64 = 512;

/// How long SIGQUIT lets in-flight requests finish.
const DRAIN_DEADLINE: Duration = Duration::from_secs(30);

pub struct RunOptions {
    pub source: ConfigSource,
    pub pid_file: Option<PathBuf>,
    pub state_file: Option<PathBuf>,
    /// The configuration `source` gives, already loaded and reported by the caller (`halo
    /// nginx`); `None`: load it here.
    pub config: Option<Config>,
    /// Called once serving: listeners bound and the pid file written (`halo nginx` with
    /// `daemon on` tells the waiting parent here).
    pub on_ready: Option<Box<dyn FnOnce() + Send>>,
}

/// Runs until a stop signal. Returns the process exit code.
pub fn run(mut opts: RunOptions) -> anyhow::Result<()> {
    let config = match opts.config.take() {
        Some(c) => c,
        None => load_or_report(&opts.source)?.config,
    };
    let threads = config
        .http
        .as_ref()
        .and_then(|h| h.worker_threads)
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if let Some(http) = &config.http {
        crate::limits::raise_nofile(http.worker_connections as u64);
    }
    // One worker (nginx `worker_processes 1`): a current-thread runtime, with no cross-thread
    // wakeups or work stealing; more: the multi-threaded scheduler.
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .context("starting the runtime")?;
    runtime.block_on(serve(opts, config))
}

async fn serve(mut opts: RunOptions, config: Config) -> anyhow::Result<()> {
    let board = StatusBoard::new();
    if let Some(path) = &opts.state_file {
        board.spawn_writer(path.clone());
    }
    // The proxy first: listeners (on the VIP too, thanks to IP_FREEBIND) are up before this node
    // can become master.
    let mut http = HttpSide::start(config.http.clone()).await?;
    let mut vrrp = if config.vrrp.instances.is_empty() {
        None
    } else {
        Some(
            VrrpRuntime::start(
                config.vrrp.clone(),
                board.clone(),
                http.health(),
                http.handoff_hook(),
            )
            .await?,
        )
    };
    if let Some(addr) = config.admin.status_listen {
        crate::admin::spawn(
            addr,
            crate::admin::Sources {
                board: board.clone(),
                proxy: http.proxy(),
            },
        )
        .await?;
    }
    if let Some(p) = &opts.pid_file {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if let Some(ready) = opts.on_ready.take() {
        ready();
    }
    tracing::info!(
        "halo {} running: {} VRRP instance(s), HTTP {}",
        env!("CARGO_PKG_VERSION"),
        config.vrrp.instances.len(),
        if config.http.is_some() { "on" } else { "off" }
    );
    let mut current = config;
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    refresh_local_utc_offset();
    let mut health_tick = tokio::time::interval(PROXY_HEALTH_EVERY);
    let (mut parks_at_trim, mut parks_before) = (0, 0);
    loop {
        tokio::select! {
            _ = health_tick.tick() => {
                if let (Some(v), Some(h)) = (vrrp.as_mut(), http.health()) {
                    v.set_proxy_healthy(h);
                }
                refresh_local_utc_offset();
                // Many connections went idle and gave their task memory back to the allocator:
                // hand it on to the kernel (the allocator keeps freed memory otherwise). Trimmed
                // after every TRIM_AFTER_PARKS parks, and once parking quieted down.
                let parks = http.parks();
                let quiet = parks == parks_before && parks != parks_at_trim;
                if parks >= parks_at_trim + TRIM_AFTER_PARKS || quiet {
                    parks_at_trim = parks;
                    halo_sys::release_free_memory();
                }
                parks_before = parks;
            }
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration");
                match load(&opts.source) {
                    Err(diags) => {
                        print_diagnostics(&diags);
                        let errors = diags.iter().filter(|d| d.is_error()).count();
                        for d in diags.iter().filter(|d| d.is_error()) {
                            tracing::error!("{d}");
                        }
                        tracing::error!("reload refused: {errors} error(s); the running configuration stays");
                    }
                    Ok(loaded) => {
                        print_diagnostics(&loaded.warnings);
                        let new = loaded.config;
                        if let Err(e) = http.reload(new.http.clone()).await {
                            tracing::error!("reload of the HTTP side failed, it keeps its previous configuration: {e:#}");
                        }
                        match (&mut vrrp, new.vrrp.instances.is_empty()) {
                            (Some(v), _) => {
                                if let Err(e) = v.apply(new.vrrp.clone()).await {
                                    tracing::error!("reload of the VRRP side failed: {e:#}");
                                }
                            }
                            (None, false) => match VrrpRuntime::start(new.vrrp.clone(), board.clone(), http.health(), http.handoff_hook()).await {
                                Ok(v) => vrrp = Some(v),
                                Err(e) => tracing::error!("starting VRRP on reload failed: {e:#}"),
                            },
                            (None, true) => {}
                        }
                        current = new;
                        tracing::info!("reload done");
                    }
                }
            }
            _ = usr1.recv() => {
                tracing::info!("SIGUSR1: reopening log files");
                http.reopen_logs();
                crate::error_log::reopen();
            }
            _ = term.recv() => { stop(&mut vrrp, &mut http, false).await; break; }
            _ = int.recv() => { stop(&mut vrrp, &mut http, false).await; break; }
            _ = quit.recv() => { stop(&mut vrrp, &mut http, true).await; break; }
        }
    }
    let _ = current;
    if let Some(p) = &opts.pid_file {
        let _ = std::fs::remove_file(p);
    }
    tracing::info!("halo stopped");
    Ok(())
}

async fn stop(vrrp: &mut Option<VrrpRuntime>, http: &mut HttpSide, graceful: bool) {
    tracing::info!(
        "stopping{}",
        if graceful {
            " gracefully (VRRP first, then draining)"
        } else {
            ""
        }
    );
    if let Some(v) = vrrp.as_mut() {
        v.shutdown().await;
    }
    http.shutdown(graceful, DRAIN_DEADLINE).await;
}
