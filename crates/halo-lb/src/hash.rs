//! `hash KEY` (`ngx_http_upstream_hash_module.c`, Cache::Memcached compatible).

use crate::ip_hash::MAX_REHASH;
use crate::round_robin;
use crate::tried::Tried;
use crate::upstream::Selection;

/// One Cache::Memcached step: `(crc32([REHASH] KEY) >> 16) & 0x7fff`, where REHASH is the
/// decimal rehash counter, omitted on the first iteration.
pub(crate) fn memcached_step(rehash: u32, key: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    if rehash > 0 {
        crc.update(rehash.to_string().as_bytes());
    }
    crc.update(key);
    (crc.finalize() >> 16) & 0x7fff
}

/// `ngx_http_upstream_get_hash_peer`: add the step to the running hash, map
/// `hash % total_weight` onto the weighted primaries, rehash while unusable; round robin with
/// an empty key, a single server, or after more than 20 rehashes.
pub(crate) fn pick(sel: &mut Selection<'_>, tried: &mut Tried, key: &[u8]) -> Option<usize> {
    if tried.hash_tries > MAX_REHASH || sel.single || key.is_empty() {
        return round_robin::pick(sel, tried);
    }
    loop {
        let step = memcached_step(tried.rehash, key);
        tried.key_hash = tried.key_hash.wrapping_add(step);
        tried.rehash = tried.rehash.saturating_add(1);
        let index = sel.primary_by_weight(u64::from(tried.key_hash) % sel.primary_weight.max(1));
        if sel.usable(index, tried) {
            return Some(index);
        }
        tried.hash_tries += 1;
        if tried.hash_tries > MAX_REHASH {
            return round_robin::pick(sel, tried);
        }
    }
}
