//! `limit_conn` (`ngx_http_limit_conn_module.c`): concurrent requests per key.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::SHARDS;

/// Count of in-flight requests per key of one shard.
type Counts = HashMap<Box<[u8]>, u32>;

/// Concurrent-request counter per key (nginx `limit_conn_zone`). Entries exist only while
/// their count is above zero. Thread-safe.
#[derive(Debug)]
pub struct ConnLimiter {
    shards: Box<[Mutex<Counts>]>,
    hasher: RandomState,
    max_keys_per_shard: usize,
}

/// Proof of one counted request; give it back with [`ConnLimiter::release`].
#[derive(Debug)]
#[must_use = "a token that is not released leaks one slot of its key"]
pub struct ConnGuardToken {
    /// `None` for the empty key, which nginx does not count.
    key: Option<(usize, Box<[u8]>)>,
}

/// Owned RAII form of [`ConnGuardToken`]: releases on drop.
#[derive(Debug)]
pub struct ConnPermit {
    limiter: Arc<ConnLimiter>,
    token: Option<ConnGuardToken>,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            self.limiter.release(token);
        }
    }
}

impl ConnLimiter {
    /// A limiter holding at most about `max_keys` distinct keys at once (the zone size). When
    /// the zone is full, new keys are refused, like nginx's "could not allocate node" (503).
    pub fn new(max_keys: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            max_keys_per_shard: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    fn shard(&self, key: &[u8]) -> usize {
        (self.hasher.hash_one(key) % SHARDS as u64) as usize
    }

    fn lock(&self, shard: usize) -> Option<MutexGuard<'_, Counts>> {
        self.shards
            .get(shard)
            .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Count one more request for `key` unless it already has `limit` (nginx: `if (lc->conn
    /// >= limit) reject`). An empty key is not limited (nginx skips it) and always succeeds.
    /// `None` means: reject (503 by default), over the limit or zone full.
    pub fn try_acquire(&self, key: &[u8], limit: u32) -> Option<ConnGuardToken> {
        if key.is_empty() {
            return Some(ConnGuardToken { key: None });
        }
        let shard = self.shard(key);
        let mut map = self.lock(shard)?;
        if let Some(count) = map.get_mut(key) {
            if *count >= limit {
                return None;
            }
            *count += 1;
        } else {
            if limit == 0 || map.len() >= self.max_keys_per_shard {
                if limit != 0 {
                    tracing::error!("limit_conn zone is full, rejecting a new key");
                }
                return None;
            }
            map.insert(key.into(), 1);
        }
        Some(ConnGuardToken {
            key: Some((shard, key.into())),
        })
    }

    /// Like [`ConnLimiter::try_acquire`], but the permit releases itself when dropped.
    pub fn try_acquire_owned(self: &Arc<Self>, key: &[u8], limit: u32) -> Option<ConnPermit> {
        self.try_acquire(key, limit).map(|token| ConnPermit {
            limiter: Arc::clone(self),
            token: Some(token),
        })
    }

    /// Give a slot back; the entry disappears when its count reaches zero.
    pub fn release(&self, token: ConnGuardToken) {
        let Some((shard, key)) = token.key else {
            return;
        };
        let Some(mut map) = self.lock(shard) else {
            return;
        };
        if let Some(count) = map.get_mut(&key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                map.remove(&key);
            }
        }
    }

    /// Current count of `key`.
    pub fn count(&self, key: &[u8]) -> u32 {
        self.lock(self.shard(key))
            .and_then(|map| map.get(key).copied())
            .unwrap_or(0)
    }

    /// Number of keys with at least one counted request.
    pub fn keys(&self) -> usize {
        (0..self.shards.len())
            .filter_map(|s| self.lock(s).map(|m| m.len()))
            .sum()
    }
}
