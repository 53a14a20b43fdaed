//! Per-peer runtime state (nginx `ngx_http_upstream_rr_peer_t`) and its public snapshot.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::server::ServerSpec;

/// A server of an [`crate::Upstream`]: the index into [`crate::Upstream::servers`]
/// (configuration order, backups included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub(crate) usize);

impl PeerId {
    /// Index into [`crate::Upstream::servers`].
    pub fn index(self) -> usize {
        self.0
    }

    /// The peer at this index of [`crate::Upstream::servers`] (for status/admin endpoints and
    /// active checks that iterate over the servers).
    pub fn from_index(index: usize) -> Self {
        Self(index)
    }
}

/// Status of one peer, for status pages and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer.
    pub id: PeerId,
    /// Failures counted since the last reset (nginx `fails`).
    pub fails: u32,
    /// Requests currently using the peer (nginx `conns`).
    pub conns: u32,
    /// Whether a request could be sent to it right now (not down, not failed within
    /// `fail_timeout`, not at `max_conns`, not marked unhealthy by active checks).
    pub available: bool,
    /// nginx `effective_weight` (lowered by failures, recovers +1 per selection).
    pub effective_weight: i64,
    /// nginx `current_weight` (smooth weighted round-robin accumulator).
    pub current_weight: i64,
    /// Configured weight.
    pub weight: u32,
    /// Configured `backup`.
    pub backup: bool,
    /// Configured `down`.
    pub down: bool,
    /// Result of active health checks (`true` when no checks run).
    pub active_healthy: bool,
    /// When the peer is disabled by passive health: the time left until it gets a probe request.
    pub unavailable_for: Option<Duration>,
}

/// Mutable balancer state of one peer. Guarded by the upstream's mutex, except `conns`, which
/// is an atomic shared with the previous generation of the upstream after a reload so that
/// requests still in flight on the old configuration release into the same counter.
#[derive(Debug)]
pub(crate) struct PeerState {
    pub current_weight: i64,
    pub effective_weight: i64,
    pub conns: Arc<AtomicU32>,
    pub fails: u32,
    /// Time of the last failure (nginx `accessed`); `None` = never (nginx's 0).
    pub accessed: Option<Instant>,
    /// Time of the last failure or of the last selection made after `fail_timeout` had passed
    /// (nginx `checked`); `None` = never.
    pub checked: Option<Instant>,
    /// Marked down by active health checks (halo extension).
    pub active_down: bool,
}

impl PeerState {
    pub fn new(spec: &ServerSpec) -> Self {
        Self {
            current_weight: 0,
            effective_weight: i64::from(spec.weight),
            conns: Arc::new(AtomicU32::new(0)),
            fails: 0,
            accessed: None,
            checked: None,
            active_down: false,
        }
    }

    pub fn conns(&self) -> u32 {
        self.conns.load(Ordering::Acquire)
    }

    pub fn add_conn(&self) {
        // Saturating: a counter can never wrap, whatever the caller does.
        let _ = self
            .conns
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                Some(c.saturating_add(1))
            });
    }

    pub fn remove_conn(&self) {
        // Saturating: a release without a matching pick never underflows.
        let _ = self
            .conns
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                Some(c.saturating_sub(1))
            });
    }

    /// Time since `checked`; `None` (never checked) counts as infinitely long ago, like
    /// nginx's `checked = 0` against `ngx_time()`.
    fn since_checked(&self, now: Instant) -> Option<Duration> {
        self.checked.map(|c| now.saturating_duration_since(c))
    }

    /// nginx: `peer->max_fails && peer->fails >= peer->max_fails && now - peer->checked <=
    /// peer->fail_timeout` — the peer is temporarily disabled.
    pub fn failed_recently(&self, spec: &ServerSpec, now: Instant) -> bool {
        spec.max_fails != 0
            && self.fails >= spec.max_fails
            && self
                .since_checked(now)
                .is_some_and(|since| since <= spec.fail_timeout)
    }

    /// nginx: `peer->max_conns && peer->conns >= peer->max_conns`.
    pub fn at_max_conns(&self, spec: &ServerSpec) -> bool {
        spec.max_conns != 0 && self.conns() >= spec.max_conns
    }

    /// `down` (configured or by active checks).
    pub fn is_down(&self, spec: &ServerSpec) -> bool {
        spec.down || self.active_down
    }

    /// The eligibility filter shared by every nginx balancer (apart from the `tried` bit).
    pub fn eligible(&self, spec: &ServerSpec, now: Instant) -> bool {
        !self.is_down(spec) && !self.failed_recently(spec, now) && !self.at_max_conns(spec)
    }

    /// nginx, after choosing a peer: `if (now - best->checked > best->fail_timeout)
    /// best->checked = now;` — a selection after the timeout is the "check" that lets the next
    /// success reset `fails`.
    pub fn note_selected(&mut self, spec: &ServerSpec, now: Instant) {
        let expired = self
            .since_checked(now)
            .is_none_or(|since| since > spec.fail_timeout);
        if expired {
            self.checked = Some(now);
        }
    }

    /// Remaining time of passive-health disablement, if disabled.
    pub fn unavailable_for(&self, spec: &ServerSpec, now: Instant) -> Option<Duration> {
        if !self.failed_recently(spec, now) {
            return None;
        }
        let since = self.since_checked(now)?;
        Some(spec.fail_timeout.saturating_sub(since))
    }
}
