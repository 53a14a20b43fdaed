//! `least_conn` (`ngx_http_upstream_least_conn_module.c`).

use crate::round_robin;
use crate::tried::Tried;
use crate::upstream::Selection;

/// `ngx_http_upstream_get_least_conn_peer`: single server -> round robin's shortcut; else the
/// least `conns/weight` among usable primaries, ties broken by smooth weighted round robin;
/// then the backup list the same way.
pub(crate) fn pick(sel: &mut Selection<'_>, tried: &mut Tried) -> Option<usize> {
    if sel.single {
        return round_robin::pick(sel, tried);
    }
    if !tried.on_backup {
        if let Some(index) = least_of(sel, tried, sel.primary) {
            return Some(index);
        }
        if sel.backup.is_empty() {
            return None;
        }
        tried.on_backup = true;
        tried.clear();
    }
    least_of(sel, tried, sel.backup)
}

/// `peer.conns * best.weight < best.conns * peer.weight`: compares conns/weight without
/// division.
fn load_cmp(sel: &Selection<'_>, a: usize, b: usize) -> std::cmp::Ordering {
    let lhs = u64::from(sel.peers[a].conns()) * u64::from(sel.specs[b].weight);
    let rhs = u64::from(sel.peers[b].conns()) * u64::from(sel.specs[a].weight);
    lhs.cmp(&rhs)
}

fn least_of(sel: &mut Selection<'_>, tried: &Tried, list: &[usize]) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None; // (position in list, server index)
    let mut many = false;
    for (pos, &index) in list.iter().enumerate() {
        if !sel.usable(index, tried) {
            continue;
        }
        match best {
            None => {
                best = Some((pos, index));
                many = false;
            }
            Some((_, b)) => match load_cmp(sel, index, b) {
                std::cmp::Ordering::Less => {
                    best = Some((pos, index));
                    many = false;
                }
                std::cmp::Ordering::Equal => many = true,
                std::cmp::Ordering::Greater => {}
            },
        }
    }
    let (start, mut best) = best?;
    let mut total: i64 = 0;
    if many {
        // Smooth weighted round robin among the peers tied with `best`, scanning from it.
        for &index in &list[start..] {
            if tried.contains(index) || sel.peers[index].is_down(&sel.specs[index]) {
                continue;
            }
            if load_cmp(sel, index, best) != std::cmp::Ordering::Equal {
                continue;
            }
            if !sel.peers[index].eligible(&sel.specs[index], sel.now) {
                continue;
            }
            let weight = i64::from(sel.specs[index].weight);
            let peer = &mut sel.peers[index];
            peer.current_weight += peer.effective_weight;
            total += peer.effective_weight;
            if peer.effective_weight < weight {
                peer.effective_weight += 1;
            }
            if sel.peers[index].current_weight > sel.peers[best].current_weight {
                best = index;
            }
        }
    }
    sel.peers[best].current_weight -= total;
    Some(best)
}
