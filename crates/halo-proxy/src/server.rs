//! The [`Proxy`]: listeners, accept loops, configuration swap on reload, graceful shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use halo_config::http::HttpConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::access_log::LogFiles;
use crate::connection::{self, GRACEFUL, HARD, RUNNING};
use crate::error::ProxyError;
use crate::listener;
use crate::pool::Pools;
use crate::runtime::{peer_addrs, Runtime};
use crate::stats::{Counters, Stats};

/// State shared by the accept loops and every connection.
#[derive(Debug)]
pub(crate) struct Shared {
    pub runtime: ArcSwap<Runtime>,
    pub counters: Arc<Counters>,
    pub pools: Arc<Pools>,
    pub logs: LogFiles,
    /// Where quiet keep-alive connections wait without a task (None if it could not be made).
    pub idle: Option<Arc<crate::idle_lot::IdleLot>>,
    shutdown: watch::Sender<u8>,
    serial: AtomicU64,
    /// Bumped by every [`Proxy::pause_accepting`]; only the latest pause lifts the filters.
    pause_generation: AtomicU64,
}

impl Shared {
    /// A receiver of the shutdown state (RUNNING, GRACEFUL, HARD).
    pub fn shutdown_receiver(&self) -> watch::Receiver<u8> {
        self.shutdown.subscribe()
    }

    /// Not shutting down.
    pub fn is_running(&self) -> bool {
        *self.shutdown.borrow() == RUNNING
    }
}

#[derive(Debug)]
struct ListenerTask {
    handle: JoinHandle<()>,
    /// The listening socket itself, for [`Proxy::pause_accepting`].
    socket: Arc<TcpListener>,
}

/// The HTTP reverse proxy: create with [`Proxy::start`].
#[derive(Debug)]
pub struct Proxy {
    shared: Arc<Shared>,
    listeners: Mutex<HashMap<SocketAddr, ListenerTask>>,
    flusher: JoinHandle<()>,
}

impl Proxy {
    /// Compiles `cfg`, binds every `listen` address (SO_REUSEADDR, IP_FREEBIND, backlog 4096)
    /// and starts accepting on the current tokio runtime. The runtime's worker count is the
    /// caller's choice ([`HttpConfig::worker_threads`] is for the binary to apply).
    pub async fn start(cfg: Arc<HttpConfig>) -> Result<Proxy, ProxyError> {
        let pools = Arc::new(Pools::default());
        let logs = LogFiles::default();
        let runtime = Runtime::build(cfg, None, &pools, &logs)?;
        let addrs: Vec<SocketAddr> = runtime.listeners.keys().copied().collect();
        let (shutdown, _) = watch::channel(RUNNING);
        let counters = Arc::new(Counters::default());
        let (idle, idle_poll) = match crate::idle_lot::IdleLot::new(counters.clone()) {
            Ok((lot, poll)) => (Some(lot), Some(poll)),
            Err(error) => {
                tracing::warn!(%error, "idle connections will not be parked");
                (None, None)
            }
        };
        let shared = Arc::new(Shared {
            runtime: ArcSwap::from_pointee(runtime),
            counters,
            pools,
            logs,
            idle: idle.clone(),
            shutdown,
            // `$connection` counts from 1, as nginx's connection numbers do.
            serial: AtomicU64::new(1),
            pause_generation: AtomicU64::new(0),
        });
        let mut bound = Vec::new();
        for addr in addrs {
            bound.push((addr, listener::bind(addr)?));
        }
        let mut listeners = HashMap::new();
        for (addr, socket) in bound {
            listeners.insert(addr, spawn_accept(socket, addr, shared.clone()));
        }
        let flusher = spawn_flusher(Arc::downgrade(&shared));
        if let (Some(lot), Some(poll)) = (idle, idle_poll) {
            tokio::spawn(crate::idle_lot::run(lot, poll, Arc::downgrade(&shared)));
        }
        crate::health_check::spawn_all(&shared);
        tracing::info!(listeners = listeners.len(), "proxy started");
        Ok(Proxy {
            shared,
            listeners: Mutex::new(listeners),
            flusher,
        })
    }

    /// Applies a new configuration without dropping anything in flight: listeners kept by the
    /// new configuration stay open, new ones are bound first (nothing changes if that fails),
    /// removed ones stop accepting (their open connections finish normally); balancer state,
    /// limiter state and idle upstream connections carry over. Call it inside the tokio runtime
    /// (new listeners are registered with it); upstream host names are resolved here, blocking.
    pub fn reload(&self, cfg: Arc<HttpConfig>) -> Result<(), ProxyError> {
        if *self.shared.shutdown.borrow() != RUNNING {
            return Err(ProxyError::ShutDown);
        }
        let old = self.shared.runtime.load_full();
        let runtime = Runtime::build(cfg, Some(&old), &self.shared.pools, &self.shared.logs)?;
        let mut listeners = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut fresh = Vec::new();
        for addr in runtime.listeners.keys() {
            if !listeners.contains_key(addr) {
                fresh.push((*addr, listener::bind(*addr)?));
            }
        }
        let keep_peers = peer_addrs(&runtime);
        let wanted: Vec<SocketAddr> = runtime.listeners.keys().copied().collect();
        self.shared.runtime.store(Arc::new(runtime));
        for (addr, socket) in fresh {
            listeners.insert(addr, spawn_accept(socket, addr, self.shared.clone()));
        }
        listeners.retain(|addr, task| {
            let keep = wanted.contains(addr);
            if !keep {
                task.handle.abort();
                tracing::info!(%addr, "listener closed by reload");
            }
            keep
        });
        self.shared.pools.retain(&keep_peers);
        crate::health_check::spawn_all(&self.shared);
        tracing::info!("configuration reloaded");
        Ok(())
    }

    /// Stops accepting. Graceful: connections finish their current request (idle ones close
    /// now) until `deadline`, after which the rest are closed. Not graceful: all close now.
    pub async fn shutdown(&self, graceful: bool, deadline: Duration) {
        {
            let mut listeners = self
                .listeners
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for (_, task) in listeners.drain() {
                task.handle.abort();
            }
        }
        let _ = self
            .shared
            .shutdown
            .send(if graceful { GRACEFUL } else { HARD });
        if graceful {
            let until = tokio::time::Instant::now() + deadline;
            while self.shared.counters.active.load(Ordering::Relaxed) > 0
                && tokio::time::Instant::now() < until
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let _ = self.shared.shutdown.send(HARD);
        }
        self.shared.logs.flush_all();
        self.flusher.abort();
    }

    /// Stops taking new connections for `duration`: incoming SYNs are dropped (a socket filter on each
    /// listening socket), so clients retransmit them about a second later, while connections already
    /// open carry on. VRRP uses it when this node hands its virtual IP to another: nothing new starts
    /// here in the moment clients switch to the new master, so no connection is cut by the switch.
    pub fn pause_accepting(&self, duration: Duration) {
        let generation = self.shared.pause_generation.fetch_add(1, Ordering::SeqCst) + 1;
        let sockets: Vec<Arc<TcpListener>> = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|t| t.socket.clone())
            .collect();
        for s in &sockets {
            if let Err(error) = socket2::SockRef::from(&**s).attach_filter(&DROP_ALL) {
                tracing::warn!(%error, "cannot pause accepting");
            }
        }
        let shared = self.shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            // A later pause extends this one.
            if shared.pause_generation.load(Ordering::SeqCst) == generation {
                for s in &sockets {
                    let _ = socket2::SockRef::from(&**s).detach_filter();
                }
            }
        });
    }

    /// The stub_status counters and halo's rejection counters.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Whether every listener's accept loop is running (for VRRP `track_script`-like tracking).
    pub fn healthy(&self) -> bool {
        let listeners = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        !listeners.is_empty() && listeners.values().all(|t| !t.handle.is_finished())
    }

    /// The addresses being listened on.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        let listeners = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut addrs: Vec<SocketAddr> = listeners.keys().copied().collect();
        addrs.sort();
        addrs
    }

    /// Writes buffered access-log lines out now.
    pub fn flush_logs(&self) {
        self.shared.logs.flush_all();
    }

    /// Reopens every access log file (after rotation; nginx `-s reopen`). Returns the files
    /// that could not be reopened.
    pub fn reopen_logs(&self) -> Vec<(String, std::io::Error)> {
        self.shared.logs.reopen_all()
    }

    /// Every certificate file served on a TLS address, with its expiry (Unix seconds).
    pub fn certificates(&self) -> Vec<(String, i64)> {
        let runtime = self.shared.runtime.load();
        let mut all: Vec<(String, i64)> = runtime
            .tls
            .values()
            .flat_map(|l| l.servers.values())
            .flat_map(|s| s.expiry.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// Per-upstream peer status (balancer view), by upstream name.
    pub fn upstream_status(&self) -> Vec<(String, Vec<halo_lb::PeerStatus>)> {
        let runtime = self.shared.runtime.load();
        let now = std::time::Instant::now();
        let mut all: Vec<_> = runtime
            .upstreams
            .values()
            .map(|u| (u.name.clone(), u.lb.snapshot(now)))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let listeners = self
            .listeners
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for (_, task) in listeners.drain() {
            task.handle.abort();
        }
        self.flusher.abort();
        self.shared.logs.flush_all();
    }
}

/// A classic BPF program of one instruction, `ret #0`: accept nothing (BPF_RET | BPF_K = 0x06).
const DROP_ALL: [socket2::SockFilter; 1] = [socket2::SockFilter::new(0x06, 0, 0, 0)];

fn spawn_accept(socket: TcpListener, listen: SocketAddr, shared: Arc<Shared>) -> ListenerTask {
    let socket = Arc::new(socket);
    let accept_socket = socket.clone();
    let handle = tokio::spawn(async move {
        let socket = accept_socket;
        loop {
            match socket.accept().await {
                Ok((stream, peer)) => {
                    Counters::bump(&shared.counters.accepts);
                    let active = shared.counters.active.load(Ordering::Relaxed);
                    // One load of the configuration serves the limit, the choice of protocol
                    // and the connection itself.
                    let runtime = shared.runtime.load_full();
                    let limit = runtime.cfg.worker_connections as u64;
                    if active >= limit {
                        tracing::warn!(
                            limit,
                            "worker_connections are not enough, closing a new connection"
                        );
                        drop(stream);
                        continue;
                    }
                    Counters::bump(&shared.counters.handled);
                    let accepted = connection::Accepted {
                        stream,
                        peer,
                        listen,
                        serial: shared.serial.fetch_add(1, Ordering::Relaxed),
                        proxied: None,
                    };
                    let shutdown = shared.shutdown.subscribe();
                    if runtime.proxy_protocol.contains(&listen) {
                        tokio::spawn(serve_proxied(accepted, shared.clone(), runtime, shutdown));
                    } else {
                        serve_accepted(accepted, &shared, runtime, shutdown);
                    }
                }
                Err(error) => {
                    // EMFILE/ENFILE/ENOBUFS: back off briefly, like nginx disabling accept.
                    tracing::error!(%listen, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    ListenerTask { handle, socket }
}

/// Hands an accepted connection to its protocol: TLS or plain.
fn serve_accepted(
    accepted: connection::Accepted,
    shared: &Arc<Shared>,
    runtime: Arc<crate::runtime::Runtime>,
    shutdown: tokio::sync::watch::Receiver<u8>,
) {
    if runtime.tls.contains_key(&accepted.listen) {
        tokio::spawn(crate::tls_accept::serve(
            accepted,
            shared.clone(),
            runtime,
            shutdown,
        ));
    } else {
        tokio::spawn(connection::serve(
            accepted,
            shared.clone(),
            runtime,
            shutdown,
        ));
    }
}

/// A connection on a `proxy_protocol` address: its PROXY header first (within
/// `client_header_timeout`), then TLS or HTTP. A connection without a valid header is closed,
/// as nginx closes it.
async fn serve_proxied(
    mut accepted: connection::Accepted,
    shared: Arc<Shared>,
    runtime: Arc<crate::runtime::Runtime>,
    shutdown: tokio::sync::watch::Receiver<u8>,
) {
    let read = crate::proxy_protocol::read_header(&mut accepted.stream);
    match tokio::time::timeout(runtime.cfg.client_header_timeout, read).await {
        Ok(Ok(proxied)) => {
            accepted.proxied = proxied.map(Box::new);
            serve_accepted(accepted, &shared, runtime, shutdown);
        }
        Ok(Err(error)) => {
            Counters::bump(&shared.counters.rejected_malformed);
            let peer = accepted.peer;
            tracing::debug!(%peer, %error, "closing a connection without a valid PROXY protocol header");
        }
        Err(_) => {
            Counters::bump(&shared.counters.timed_out);
            let peer = accepted.peer;
            tracing::debug!(%peer, "timed out waiting for the PROXY protocol header");
        }
    }
}

fn spawn_flusher(shared: std::sync::Weak<Shared>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            match shared.upgrade() {
                Some(shared) => shared.logs.flush_all(),
                None => break,
            }
        }
    })
}
