//! `limit_req` (`ngx_http_limit_req_module.c`): a leaky bucket per key, counted in
//! milli-requests with millisecond time steps, exactly like nginx.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use thiserror::Error;

use super::SHARDS;

/// `rate=` of `limit_req_zone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// `Nr/s`.
    PerSecond(u32),
    /// `Nr/m`.
    PerMinute(u32),
}

impl Rate {
    /// nginx `ctx->rate = rate * 1000 / scale`: milli-requests per second (integer division,
    /// so `1r/m` is 16).
    pub fn milli_per_second(self) -> u64 {
        match self {
            Rate::PerSecond(n) => u64::from(n) * 1000,
            Rate::PerMinute(n) => u64::from(n) * 1000 / 60,
        }
    }
}

/// `nodelay` / `delay=N` of `limit_req`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestDelay {
    /// `delay=N` (default `delay=0`): the first N excess requests pass at once, later ones
    /// within the burst are delayed.
    After(u32),
    /// `nodelay`: nothing within the burst is delayed.
    Never,
}

/// One `limit_req_zone` + `limit_req` pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimitSpec {
    /// Zone rate.
    pub rate: Rate,
    /// `burst=` (default 0).
    pub burst: u32,
    /// `nodelay` / `delay=`.
    pub delay: RequestDelay,
    /// Zone capacity in keys; the least recently used key is evicted when full.
    pub max_keys: usize,
}

/// Invalid `limit_req` parameters.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestLimitError {
    /// The rate rounds to zero milli-requests per second.
    #[error("invalid rate: must be at least 1r/s or 1r/m")]
    ZeroRate,
}

/// Decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on now.
    Pass,
    /// Go on after this delay (nginx holds the request on a timer).
    Delay(Duration),
    /// Over rate + burst: reject (`limit_req_status`, 503 by default).
    Reject,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Milli-requests above the rate (nginx `lr->excess`).
    excess: u64,
    /// Last accounting time (nginx `lr->last`).
    last: Instant,
    /// Position in the shard's recency order.
    seq: u64,
}

#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<Arc<[u8]>, Entry>,
    /// Recency order: oldest first (nginx keeps a queue, most recent at the head).
    by_recency: BTreeMap<u64, Arc<[u8]>>,
    next_seq: u64,
}

/// Per-key leaky bucket (nginx `limit_req`). Thread-safe; memory bounded by
/// [`RequestLimitSpec::max_keys`].
#[derive(Debug)]
pub struct RequestLimiter {
    spec: RequestLimitSpec,
    rate: u64,
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    max_keys_per_shard: usize,
}

/// How a lookup treats the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Check and store (the last or only zone of a request).
    Account,
    /// Check only (an earlier zone of several).
    Probe,
    /// Store without checking (an earlier zone, once all zones passed).
    Commit,
}

fn verdict(delay: Duration) -> Verdict {
    if delay.is_zero() {
        Verdict::Pass
    } else {
        Verdict::Delay(delay)
    }
}

/// nginx drops a stale node only after a minute without requests.
const STALE_AFTER_MS: u64 = 60_000;

impl RequestLimiter {
    /// Build a limiter.
    pub fn new(spec: RequestLimitSpec) -> Result<Self, RequestLimitError> {
        let rate = spec.rate.milli_per_second();
        if rate == 0 {
            return Err(RequestLimitError::ZeroRate);
        }
        Ok(Self {
            spec,
            rate,
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            max_keys_per_shard: spec.max_keys.div_ceil(SHARDS).max(1),
        })
    }

    /// The configuration.
    pub fn spec(&self) -> &RequestLimitSpec {
        &self.spec
    }

    fn lock(&self, shard: usize) -> Option<MutexGuard<'_, Shard>> {
        self.shards
            .get(shard)
            .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Account one request of `key` at `now` (`ngx_http_limit_req_lookup` + `_account`):
    /// `excess = max(0, excess - rate * ms / 1000 + 1000)`; over `burst * 1000` -> reject
    /// (state unchanged); else store it (and `last = now` only if `ms != 0`), pass if
    /// `excess <= delay * 1000`, otherwise delay `(excess - delay * 1000) * 1000 / rate` ms.
    /// A key's first request stores excess 0. An empty key is not limited.
    pub fn check(&self, now: Instant, key: &[u8]) -> Verdict {
        match self.lookup(now, key, Mode::Account) {
            Some(excess) => verdict(self.delay_for(excess)),
            None => Verdict::Reject,
        }
    }

    /// Several `limit_req` directives of one request, nginx style
    /// (`ngx_http_limit_req_handler`): every zone but the last is only probed; if any zone
    /// rejects, nothing is consumed in the probed zones; otherwise the last zone is accounted
    /// by [`RequestLimiter::check`] rules and the others are then charged unconditionally
    /// (`ngx_http_limit_req_account`). The delay is the largest of all zones. Entries with an
    /// empty key are skipped.
    pub fn check_all(now: Instant, checks: &[(&RequestLimiter, &[u8])]) -> Verdict {
        let checks: Vec<&(&RequestLimiter, &[u8])> =
            checks.iter().filter(|(_, key)| !key.is_empty()).collect();
        let Some(((last, last_key), rest)) = checks.split_last() else {
            return Verdict::Pass;
        };
        for (limiter, key) in rest {
            if limiter.lookup(now, key, Mode::Probe).is_none() {
                return Verdict::Reject;
            }
        }
        let Some(excess) = last.lookup(now, last_key, Mode::Account) else {
            return Verdict::Reject;
        };
        let mut delay = last.delay_for(excess);
        for (limiter, key) in rest {
            let excess = limiter.lookup(now, key, Mode::Commit).unwrap_or(0);
            delay = delay.max(limiter.delay_for(excess));
        }
        verdict(delay)
    }

    /// The shared lookup; `None` = over the burst.
    fn lookup(&self, now: Instant, key: &[u8], mode: Mode) -> Option<u64> {
        if key.is_empty() {
            return Some(0);
        }
        let shard_index = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        let mut guard = self.lock(shard_index)?;
        let shard = &mut *guard;
        let burst = u64::from(self.spec.burst) * 1000;
        let seq = shard.next_seq;
        shard.next_seq += 1;
        if let Some((stored_key, entry)) = shard.entries.get_key_value(key) {
            let (stored_key, old_seq) = (Arc::clone(stored_key), entry.seq);
            // nginx moves the node to the head of its queue on every lookup, even a rejected one.
            shard.by_recency.remove(&old_seq);
            shard.by_recency.insert(seq, stored_key);
            let entry = shard.entries.get_mut(key)?;
            entry.seq = seq;
            let ms = elapsed_ms(entry.last, now);
            let drained = self.rate.saturating_mul(ms) / 1000;
            let excess = (entry.excess + 1000).saturating_sub(drained);
            match mode {
                Mode::Probe => (excess <= burst).then_some(excess),
                Mode::Account => {
                    if excess > burst {
                        return None;
                    }
                    entry.excess = excess;
                    if ms != 0 {
                        entry.last = now;
                    }
                    Some(excess)
                }
                Mode::Commit => {
                    entry.excess = excess;
                    entry.last = now;
                    Some(excess)
                }
            }
        } else {
            if mode == Mode::Probe {
                // A new key passes with excess 0; its node is created when committed.
                return Some(0);
            }
            // New key: ngx_http_limit_req_expire(ctx, 1) drops up to two stale nodes first.
            self.expire(shard, now, false);
            if shard.entries.len() >= self.max_keys_per_shard {
                // ngx_http_limit_req_expire(ctx, 0): evict the least recently used node.
                self.expire(shard, now, true);
            }
            let key: Arc<[u8]> = key.into();
            shard.entries.insert(
                Arc::clone(&key),
                Entry {
                    excess: 0,
                    last: now,
                    seq,
                },
            );
            shard.by_recency.insert(seq, key);
            Some(0)
        }
    }

    /// Delay owed for `excess` under this zone's `delay=`/`nodelay`.
    fn delay_for(&self, excess: u64) -> Duration {
        let delay = match self.spec.delay {
            RequestDelay::Never => return Duration::ZERO,
            RequestDelay::After(n) => u64::from(n) * 1000,
        };
        if excess <= delay {
            Duration::ZERO
        } else {
            Duration::from_millis((excess - delay) * 1000 / self.rate)
        }
    }

    /// nginx's `ngx_http_limit_req_expire(ctx, n)`: walk from the least recently used end,
    /// removing nodes idle for a minute and fully drained, stopping at the first live one; at
    /// most two nodes, or three when `force` (n = 0), whose first is removed unconditionally.
    fn expire(&self, shard: &mut Shard, now: Instant, force: bool) {
        let mut looked = 0;
        let limit = if force { 3 } else { 2 };
        while looked < limit {
            let Some((&seq, key)) = shard.by_recency.iter().next() else {
                return;
            };
            let is_forced = force && looked == 0;
            looked += 1;
            if !is_forced {
                let Some(entry) = shard.entries.get(key) else {
                    return;
                };
                let ms = elapsed_ms(entry.last, now).max(elapsed_ms(now, entry.last));
                if ms < STALE_AFTER_MS {
                    return;
                }
                if entry.excess > self.rate.saturating_mul(ms) / 1000 {
                    return;
                }
            }
            let key = Arc::clone(key);
            shard.by_recency.remove(&seq);
            shard.entries.remove(&key);
        }
    }

    /// Number of keys currently tracked.
    pub fn keys(&self) -> usize {
        (0..self.shards.len())
            .filter_map(|s| self.lock(s).map(|g| g.entries.len()))
            .sum()
    }
}

/// Milliseconds from `from` to `to`, 0 if `to` is earlier (nginx clamps negative steps to 0).
fn elapsed_ms(from: Instant, to: Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_millis()).unwrap_or(u64::MAX)
}
