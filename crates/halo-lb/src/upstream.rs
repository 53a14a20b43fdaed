//! An `upstream {}` block: servers, balancing method and shared balancer state.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::consistent_hash::Ring;
use crate::error::{LbError, NoLiveUpstreams};
use crate::peer::{PeerId, PeerState, PeerStatus};
use crate::server::ServerSpec;
use crate::tried::Tried;
use crate::{hash, ip_hash, least_conn, random, round_robin};

/// The balancing method of an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Smooth weighted round robin (nginx default).
    RoundRobin,
    /// `ip_hash`: client /24 (IPv4) or full IPv6 address.
    IpHash,
    /// `least_conn`.
    LeastConn,
    /// `hash KEY` (Cache::Memcached compatible) or `hash KEY consistent` (ketama).
    Hash {
        /// `consistent` flag.
        consistent: bool,
    },
    /// `random` or `random two` (`two` uses least_conn between the two picks).
    Random {
        /// `two` flag.
        two: bool,
    },
}

impl Method {
    /// The directive as written in nginx.conf.
    pub fn nginx_name(self) -> &'static str {
        match self {
            Method::RoundRobin => "round-robin",
            Method::IpHash => "ip_hash",
            Method::LeastConn => "least_conn",
            Method::Hash { consistent: false } => "hash",
            Method::Hash { consistent: true } => "hash consistent",
            Method::Random { two: false } => "random",
            Method::Random { two: true } => "random two",
        }
    }

    /// Whether `backup` servers are allowed (nginx: only round robin and least_conn set
    /// `NGX_HTTP_UPSTREAM_BACKUP`).
    pub fn supports_backup(self) -> bool {
        matches!(self, Method::RoundRobin | Method::LeastConn)
    }
}

/// The request-dependent input of a selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickKey<'a> {
    /// No key (round robin, least_conn).
    None,
    /// Client address for `ip_hash`: IPv4 hashes its first three octets, IPv6 all sixteen
    /// (an IPv4-mapped IPv6 address is hashed as IPv6, as nginx does on a dual-stack socket;
    /// pass `ip.to_canonical()` to get IPv4 behaviour). Any other key hashes three zero bytes.
    ClientIp(IpAddr),
    /// The evaluated `hash` key. An empty key selects by round robin, as in nginx.
    Hash(&'a [u8]),
    /// A random value supplied by the caller for `random` (a fresh one per pick, please).
    /// Further draws needed within one pick are derived from it with SplitMix64.
    Random(u64),
}

/// How an attempt on a peer ended, for passive health (`free_round_robin_peer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The upstream answered and the answer was used.
    Success,
    /// `NGX_PEER_FAILED`: error, timeout, invalid header, or a status listed in
    /// `proxy_next_upstream` (other than 403/404).
    Failed,
    /// `NGX_PEER_NEXT`: 403/404 listed in `proxy_next_upstream` — moved on, but not a failure.
    NotFailed,
}

/// Shared mutable state: one [`PeerState`] per server, indexed like `servers`.
#[derive(Debug)]
struct State {
    peers: Vec<PeerState>,
    /// Fallback source of randomness when `random` gets no [`PickKey::Random`].
    random_counter: u64,
}

/// One upstream: its servers, method and balancer state. Thread-safe; every method takes
/// `&self` and state is global across threads.
#[derive(Debug)]
pub struct Upstream {
    name: String,
    method: Method,
    servers: Vec<ServerSpec>,
    /// Indices of non-backup servers, in configuration order (nginx `peers`).
    primary: Vec<usize>,
    /// Indices of backup servers (nginx `peers->next`).
    backup: Vec<usize>,
    /// nginx `peers->single`: exactly one primary server and no backup.
    single: bool,
    /// Sum of primary weights, down servers included (nginx `total_weight`).
    primary_weight: u64,
    /// Ketama ring for `hash ... consistent`.
    ring: Option<Ring>,
    state: Mutex<State>,
    picks: AtomicU64,
}

/// Borrowed view used by the balancer modules while the state lock is held.
pub(crate) struct Selection<'a> {
    pub specs: &'a [ServerSpec],
    pub peers: &'a mut [PeerState],
    pub primary: &'a [usize],
    pub backup: &'a [usize],
    pub single: bool,
    pub primary_weight: u64,
    pub now: Instant,
}

impl Selection<'_> {
    /// Not tried by this request and passes the common filter.
    pub fn usable(&self, index: usize, tried: &Tried) -> bool {
        !tried.contains(index) && self.peers[index].eligible(&self.specs[index], self.now)
    }

    /// Walk the primary list subtracting weights (nginx ip_hash / hash / random).
    pub fn primary_by_weight(&self, mut w: u64) -> usize {
        for &index in self.primary {
            let weight = u64::from(self.specs[index].weight);
            if w < weight {
                return index;
            }
            w -= weight;
        }
        // Unreachable when w < primary_weight; stay in bounds regardless.
        self.primary.last().copied().unwrap_or(0)
    }
}

impl Upstream {
    /// Build an upstream. Fails like nginx's configuration check: no primary server, weight 0,
    /// or `backup` with a method that does not support it.
    pub fn new(name: &str, method: Method, servers: Vec<ServerSpec>) -> Result<Self, LbError> {
        for spec in &servers {
            if spec.weight == 0 {
                return Err(LbError::ZeroWeight {
                    upstream: name.to_owned(),
                    server: spec.name.clone(),
                });
            }
            if spec.backup && !method.supports_backup() {
                return Err(LbError::BackupNotSupported {
                    upstream: name.to_owned(),
                    method: method.nginx_name(),
                    server: spec.name.clone(),
                });
            }
        }
        let primary: Vec<usize> = (0..servers.len()).filter(|&i| !servers[i].backup).collect();
        let backup: Vec<usize> = (0..servers.len()).filter(|&i| servers[i].backup).collect();
        if primary.is_empty() {
            return Err(LbError::NoServers {
                upstream: name.to_owned(),
            });
        }
        // ngx_http_upstream_init_round_robin: `peers->single = (n == 1)`, then
        // `peers->single = 0` when backup servers exist.
        let single = primary.len() == 1 && backup.is_empty();
        let primary_weight = primary.iter().map(|&i| u64::from(servers[i].weight)).sum();
        let ring = matches!(method, Method::Hash { consistent: true })
            .then(|| Ring::build(&servers, &primary));
        let peers = servers.iter().map(PeerState::new).collect();
        Ok(Self {
            name: name.to_owned(),
            method,
            servers,
            primary,
            backup,
            single,
            primary_weight,
            ring,
            state: Mutex::new(State {
                peers,
                random_counter: 0,
            }),
            picks: AtomicU64::new(0),
        })
    }

    /// The upstream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The balancing method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Choose a peer for an attempt of a request and count a connection on it.
    ///
    /// Call [`Upstream::release`] exactly once for every peer returned.
    pub fn pick(
        &self,
        now: Instant,
        key: &PickKey,
        tried: &mut Tried,
    ) -> Result<PeerId, NoLiveUpstreams> {
        let mut state = self.lock();
        let State {
            peers,
            random_counter,
        } = &mut *state;
        let mut sel = Selection {
            specs: &self.servers,
            peers,
            primary: &self.primary,
            backup: &self.backup,
            single: self.single,
            primary_weight: self.primary_weight,
            now,
        };
        let chosen = match self.method {
            Method::RoundRobin => round_robin::pick(&mut sel, tried),
            Method::LeastConn => least_conn::pick(&mut sel, tried),
            Method::IpHash => {
                let bytes = ip_hash::key_bytes(match key {
                    PickKey::ClientIp(ip) => Some(*ip),
                    _ => None,
                });
                ip_hash::pick(&mut sel, tried, bytes.as_slice())
            }
            Method::Hash { consistent } => {
                let bytes: &[u8] = match key {
                    PickKey::Hash(bytes) => bytes,
                    _ => &[],
                };
                match &self.ring {
                    Some(ring) if consistent => ring.pick(&mut sel, tried, bytes),
                    _ => hash::pick(&mut sel, tried, bytes),
                }
            }
            Method::Random { two } => {
                let seed = match key {
                    PickKey::Random(value) => *value,
                    _ => {
                        *random_counter = random_counter.wrapping_add(1);
                        random::mix(*random_counter ^ now_entropy(now))
                    }
                };
                random::pick(&mut sel, tried, seed, two)
            }
        };
        match chosen {
            Some(index) => {
                let spec = &self.servers[index];
                let peer = &mut sel.peers[index];
                peer.note_selected(spec, now);
                peer.add_conn();
                tried.insert(index);
                tried.attempts += 1;
                self.picks.fetch_add(1, Ordering::Relaxed);
                Ok(PeerId(index))
            }
            None => {
                // The proxy logs the error with request context; nginx: "no live upstreams".
                tracing::debug!(upstream = %self.name, "no live upstreams");
                Err(NoLiveUpstreams {
                    upstream: self.name.clone(),
                })
            }
        }
    }

    /// Report how an attempt ended and drop its connection count
    /// (`ngx_http_upstream_free_round_robin_peer`).
    ///
    /// - single server (one primary, no backup): only the connection count changes;
    /// - `Failed`: `fails++`, `accessed = checked = now`, `effective_weight -= weight/max_fails`
    ///   (floored at 0);
    /// - otherwise: `fails = 0` if a check happened after the last failure (`accessed < checked`).
    pub fn release(&self, now: Instant, peer: PeerId, outcome: Outcome) {
        let mut state = self.lock();
        let (Some(spec), Some(st)) = (self.servers.get(peer.0), state.peers.get_mut(peer.0)) else {
            return;
        };
        st.remove_conn();
        if self.single {
            return;
        }
        match outcome {
            Outcome::Failed => {
                st.fails = st.fails.saturating_add(1);
                st.accessed = Some(now);
                st.checked = Some(now);
                if let Some(penalty) = spec.weight.checked_div(spec.max_fails) {
                    st.effective_weight -= i64::from(penalty);
                    if st.fails >= spec.max_fails {
                        tracing::warn!(
                            upstream = %self.name,
                            server = %spec.name,
                            fails = st.fails,
                            fail_timeout = ?spec.fail_timeout,
                            "upstream server temporarily disabled"
                        );
                    }
                }
                st.effective_weight = st.effective_weight.max(0);
            }
            Outcome::Success | Outcome::NotFailed => {
                // "mark peer live if check passed"; None (never) sorts before Some.
                if st.accessed < st.checked {
                    st.fails = 0;
                }
            }
        }
    }

    /// The server behind a peer id.
    ///
    /// # Panics
    /// Only if `peer` comes from a different upstream with more servers.
    pub fn server(&self, peer: PeerId) -> &ServerSpec {
        &self.servers[peer.0]
    }

    /// All servers, configuration order, backups included. [`PeerId::index`] indexes this.
    pub fn servers(&self) -> &[ServerSpec] {
        &self.servers
    }

    /// Number of attempts a request may make (nginx `pc->tries` =
    /// `ngx_http_upstream_tries(peers)`): servers that are not `down`, primary plus backup, at
    /// least 1. With a single server nginx never retries (`pc->tries = 0` on free), which this
    /// count (1) already expresses.
    pub fn tries_limit(&self) -> usize {
        self.servers.iter().filter(|s| !s.down).count().max(1)
    }

    /// Whether nginx's single-server rule applies (one primary, no backup): `max_fails` and
    /// `fail_timeout` are ignored.
    pub fn is_single(&self) -> bool {
        self.single
    }

    /// Total successful picks since creation.
    pub fn total_picks(&self) -> u64 {
        self.picks.load(Ordering::Relaxed)
    }

    /// Status of every peer, indexed like [`Upstream::servers`].
    pub fn snapshot(&self, now: Instant) -> Vec<PeerStatus> {
        let state = self.lock();
        self.servers
            .iter()
            .zip(state.peers.iter())
            .enumerate()
            .map(|(index, (spec, st))| {
                let unavailable_for = if self.single {
                    None
                } else {
                    st.unavailable_for(spec, now)
                };
                PeerStatus {
                    id: PeerId(index),
                    fails: st.fails,
                    conns: st.conns(),
                    available: !st.is_down(spec)
                        && !st.at_max_conns(spec)
                        && unavailable_for.is_none(),
                    effective_weight: st.effective_weight,
                    current_weight: st.current_weight,
                    weight: spec.weight,
                    backup: spec.backup,
                    down: spec.down,
                    active_healthy: !st.active_down,
                    unavailable_for,
                }
            })
            .collect()
    }

    /// Configuration reload: every server of `self` whose name and address equal a server of
    /// `old` takes over that server's failure state, weights, active-health mark and its
    /// connection counter (shared, so requests still in flight on `old` release into it).
    pub fn carry_state_from(&self, old: &Upstream) {
        if std::ptr::eq(self, old) {
            return;
        }
        let old_state = old.lock();
        let mut state = self.lock();
        for (index, spec) in self.servers.iter().enumerate() {
            let Some(old_index) = old
                .servers
                .iter()
                .position(|o| o.name == spec.name && o.addr == spec.addr)
            else {
                continue;
            };
            let (Some(from), Some(to)) =
                (old_state.peers.get(old_index), state.peers.get_mut(index))
            else {
                continue;
            };
            to.fails = from.fails;
            to.accessed = from.accessed;
            to.checked = from.checked;
            to.active_down = from.active_down;
            to.effective_weight = from.effective_weight.min(i64::from(spec.weight));
            to.current_weight = from.current_weight;
            to.conns = from.conns.clone();
        }
    }

    /// Active health checks mark a peer unhealthy (skipped like `down`) or healthy again.
    pub fn set_active_health(&self, peer: PeerId, healthy: bool) {
        let mut state = self.lock();
        if let Some(st) = state.peers.get_mut(peer.0) {
            if st.active_down == healthy {
                tracing::info!(
                    upstream = %self.name,
                    server = %self.servers[peer.0].name,
                    healthy,
                    "active health check changed peer state"
                );
            }
            st.active_down = !healthy;
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is a few plain
        // field writes.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// Upstreams are shared across the proxy's worker threads.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<Upstream>();
    shared::<crate::limit::ConnLimiter>();
    shared::<crate::limit::RequestLimiter>();
};

/// Low bits of the time since an arbitrary origin, to decorrelate fallback random seeds.
fn now_entropy(now: Instant) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    std::hash::Hash::hash(&now, &mut h);
    h.finish()
}
