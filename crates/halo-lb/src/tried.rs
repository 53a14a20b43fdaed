//! Per-request selection state (nginx `ngx_http_upstream_rr_peer_data_t` and the per-request
//! data of the hash, ip_hash and random modules).

use crate::upstream::Upstream;

/// What one request has tried so far. Create one per client request with [`Tried::new`] and
/// pass it to every [`Upstream::pick`] of that request (first attempt and retries).
#[derive(Debug, Clone)]
pub struct Tried {
    /// One bit per server, indexed like [`Upstream::servers`].
    bits: Vec<u64>,
    /// The request switched to the backup list (nginx `rrp->peers = peers->next`); it never
    /// returns to the primaries.
    pub(crate) on_backup: bool,
    /// Rehash attempts of ip_hash / hash / hash consistent / random (nginx `tries`, > 20 falls
    /// back to round robin).
    pub(crate) hash_tries: u32,
    /// ip_hash running hash (nginx `iphp->hash`, starts at 89).
    pub(crate) ip_hash: u32,
    /// hash running sum (nginx `hp->hash`, starts at 0).
    pub(crate) key_hash: u32,
    /// hash rehash counter (nginx `hp->rehash`).
    pub(crate) rehash: u32,
    /// hash consistent: current point index (nginx `hp->hash`), set on the first pick.
    pub(crate) chash_point: Option<usize>,
    /// Number of successful picks made with this state.
    pub(crate) attempts: usize,
}

impl Tried {
    /// Fresh per-request state for `upstream`.
    pub fn new(upstream: &Upstream) -> Self {
        let words = upstream.servers().len().div_ceil(64);
        Self {
            bits: vec![0; words],
            on_backup: false,
            hash_tries: 0,
            ip_hash: crate::ip_hash::INITIAL_HASH,
            key_hash: 0,
            rehash: 0,
            chash_point: None,
            attempts: 0,
        }
    }

    /// Whether the server with this index was already tried.
    pub(crate) fn contains(&self, index: usize) -> bool {
        self.bits
            .get(index / 64)
            .is_some_and(|word| word & (1u64 << (index % 64)) != 0)
    }

    pub(crate) fn insert(&mut self, index: usize) {
        if let Some(word) = self.bits.get_mut(index / 64) {
            *word |= 1u64 << (index % 64);
        }
    }

    /// nginx clears the bitmap when switching to the backup list.
    pub(crate) fn clear(&mut self) {
        self.bits.iter_mut().for_each(|w| *w = 0);
    }

    /// Number of peers handed out to this request so far.
    pub fn attempts(&self) -> usize {
        self.attempts
    }

    /// Whether this request has moved on to the backup servers.
    pub fn on_backup(&self) -> bool {
        self.on_backup
    }
}
