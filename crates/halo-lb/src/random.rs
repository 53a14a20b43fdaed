//! `random [two]` (`ngx_http_upstream_random_module.c`).

use crate::ip_hash::MAX_REHASH;
use crate::round_robin;
use crate::tried::Tried;
use crate::upstream::Selection;

/// SplitMix64 finaliser: spreads one caller-supplied value into well-mixed bits.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Deterministic stream of draws derived from the caller's random value.
struct Draws {
    state: u64,
}

impl Draws {
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }
}

/// `ngx_http_upstream_get_random_peer` / `get_random2_peer`: draw a peer with probability
/// weight/total (`peek_random_peer`); skip tried/down/failed/full draws; with `two`, draw a
/// second distinct usable peer and keep the one with fewer `conns/weight` (the second on a
/// tie). More than 20 unusable draws, or a single server, fall back to round robin.
pub(crate) fn pick(
    sel: &mut Selection<'_>,
    tried: &mut Tried,
    seed: u64,
    two: bool,
) -> Option<usize> {
    if tried.hash_tries > MAX_REHASH || sel.single {
        return round_robin::pick(sel, tried);
    }
    let mut draws = Draws { state: seed };
    let mut prev: Option<usize> = None;
    loop {
        let index = sel.primary_by_weight(draws.next() % sel.primary_weight.max(1));
        if prev != Some(index) && sel.usable(index, tried) {
            if !two {
                return Some(index);
            }
            match prev {
                None => prev = Some(index),
                Some(first) => {
                    // nginx: `if (peer->conns * prev->weight > prev->conns * peer->weight)
                    // peer = prev;`
                    let second_load =
                        u64::from(sel.peers[index].conns()) * u64::from(sel.specs[first].weight);
                    let first_load =
                        u64::from(sel.peers[first].conns()) * u64::from(sel.specs[index].weight);
                    return Some(if second_load > first_load {
                        first
                    } else {
                        index
                    });
                }
            }
        }
        tried.hash_tries += 1;
        if tried.hash_tries > MAX_REHASH {
            return round_robin::pick(sel, tried);
        }
    }
}
