//! Smooth weighted round robin (`ngx_http_upstream_round_robin.c`).

use crate::tried::Tried;
use crate::upstream::Selection;

/// `ngx_http_upstream_get_round_robin_peer`: the single-server shortcut, the smooth weighted
/// choice over the primaries, then the backup list (tried bitmap cleared) when no primary is
/// eligible. Once a request moved to the backups it stays there.
pub(crate) fn pick(sel: &mut Selection<'_>, tried: &mut Tried) -> Option<usize> {
    if !tried.on_backup {
        if sel.single {
            // peers->single: only `down` and `max_conns` are checked; max_fails/fail_timeout
            // and the tried bit are ignored. No backups exist in this case.
            let index = sel.primary.first().copied()?;
            let st = &sel.peers[index];
            let spec = &sel.specs[index];
            if st.is_down(spec) || st.at_max_conns(spec) {
                return None;
            }
            return Some(index);
        }
        if let Some(index) = smooth_weighted(sel, tried, sel.primary) {
            return Some(index);
        }
        if sel.backup.is_empty() {
            return None;
        }
        tried.on_backup = true;
        tried.clear();
    }
    smooth_weighted(sel, tried, sel.backup)
}

/// `ngx_http_upstream_get_peer`: over the usable peers of `list`, the smooth weighted round robin
/// step ([`smooth_weighted_among`]).
pub(crate) fn smooth_weighted(
    sel: &mut Selection<'_>,
    tried: &Tried,
    list: &[usize],
) -> Option<usize> {
    smooth_weighted_among(sel, list, |sel, index| sel.usable(index, tried))
}

/// nginx's smooth weighted round robin step over the peers of `candidates` that `keep` accepts:
/// add `effective_weight` to `current_weight`, let `effective_weight` recover by 1 towards
/// `weight`, take the largest `current_weight` (the first wins ties) and subtract the total from
/// it. Round robin, the ties of least_conn and the servers of one ketama point all use it.
pub(crate) fn smooth_weighted_among(
    sel: &mut Selection<'_>,
    candidates: &[usize],
    mut keep: impl FnMut(&Selection<'_>, usize) -> bool,
) -> Option<usize> {
    let mut best: Option<usize> = None;
    let mut total: i64 = 0;
    for &index in candidates {
        if !keep(sel, index) {
            continue;
        }
        let weight = i64::from(sel.specs[index].weight);
        let peer = &mut sel.peers[index];
        peer.current_weight += peer.effective_weight;
        total += peer.effective_weight;
        if peer.effective_weight < weight {
            peer.effective_weight += 1;
        }
        let current = peer.current_weight;
        if best.is_none_or(|b| current > sel.peers[b].current_weight) {
            best = Some(index);
        }
    }
    let best = best?;
    sel.peers[best].current_weight -= total;
    Some(best)
}
