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
    let (start, best) = best?;
    if !many {
        return Some(best);
    }
    // Smooth weighted round robin among the peers tied with `best`, scanning from it.
    round_robin::smooth_weighted_among(sel, &list[start..], |sel, index| {
        !tried.contains(index)
            && !sel.peers[index].is_down(&sel.specs[index])
            && load_cmp(sel, index, best) == std::cmp::Ordering::Equal
            && sel.peers[index].eligible(&sel.specs[index], sel.now)
    })
}
