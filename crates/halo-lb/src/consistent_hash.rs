//! `hash KEY consistent`: ketama ring compatible with Cache::Memcached::Fast
//! (`ngx_http_upstream_hash_module.c`, `ngx_http_upstream_init_chash` / `get_chash_peer`).

use crate::ip_hash::MAX_REHASH;
use crate::round_robin;
use crate::server::ServerSpec;
use crate::tried::Tried;
use crate::upstream::Selection;

/// Points per unit of weight.
pub(crate) const POINTS_PER_WEIGHT: u32 = 160;

/// One point of the ring: its hash and the server (by index of the first server carrying
/// that name; peers are matched by name, as nginx compares `peer->server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Point {
    pub hash: u32,
    pub server: usize,
}

/// The sorted, de-duplicated points of all primary servers (down ones included).
#[derive(Debug, Clone)]
pub(crate) struct Ring {
    points: Vec<Point>,
}

/// Split a server name into host and port like nginx: `unix:PATH` -> (PATH, none); otherwise
/// at the last `:`; no `:` -> whole name, no port.
pub(crate) fn host_and_port(name: &str) -> (&[u8], &[u8]) {
    let bytes = name.as_bytes();
    if bytes.len() >= 5 && bytes[..5].eq_ignore_ascii_case(b"unix:") {
        return (&bytes[5..], &[]);
    }
    match bytes.iter().rposition(|&c| c == b':') {
        Some(colon) => (&bytes[..colon], &bytes[colon + 1..]),
        None => (bytes, &[]),
    }
}

/// Points of one server: `crc32(HOST "\0" PORT PREV_HASH)`, PREV_HASH being the previous
/// point's hash as 4 little-endian bytes (0 for the first point).
pub(crate) fn server_points(name: &str, weight: u32) -> impl Iterator<Item = u32> {
    let (host, port) = host_and_port(name);
    let mut base = crc32fast::Hasher::new();
    base.update(host);
    base.update(&[0]);
    base.update(port);
    let mut prev: u32 = 0;
    (0..weight.saturating_mul(POINTS_PER_WEIGHT)).map(move |_| {
        let mut h = base.clone();
        h.update(&prev.to_le_bytes());
        prev = h.finalize();
        prev
    })
}

impl Ring {
    pub(crate) fn build(specs: &[ServerSpec], primary: &[usize]) -> Self {
        let mut points = Vec::new();
        for &index in primary {
            let spec = &specs[index];
            let owner = primary
                .iter()
                .copied()
                .find(|&i| specs[i].name == spec.name)
                .unwrap_or(index);
            points.extend(server_points(&spec.name, spec.weight).map(|hash| Point {
                hash,
                server: owner,
            }));
        }
        // nginx sorts with qsort (unstable) and keeps the first of equal hashes; a stable sort
        // keeps the configuration-order first.
        points.sort_by_key(|p| p.hash);
        points.dedup_by_key(|p| p.hash);
        Self { points }
    }

    /// `ngx_http_upstream_find_chash_point`: index of the first point with hash >= `hash`
    /// (may equal the number of points; lookups wrap with `% len`).
    pub(crate) fn find(&self, hash: u32) -> usize {
        self.points.partition_point(|p| p.hash < hash)
    }

    #[cfg(test)]
    pub(crate) fn points(&self) -> &[Point] {
        &self.points
    }

    /// `ngx_http_upstream_get_chash_peer`.
    pub(crate) fn pick(
        &self,
        sel: &mut Selection<'_>,
        tried: &mut Tried,
        key: &[u8],
    ) -> Option<usize> {
        // init_chash_peer: the start point is computed once per request.
        if tried.chash_point.is_none() {
            tried.chash_point = Some(self.find(crc32fast::hash(key)));
        }
        if tried.hash_tries > MAX_REHASH || sel.single || key.is_empty() || self.points.is_empty() {
            return round_robin::pick(sel, tried);
        }
        loop {
            let point_index = tried.chash_point.unwrap_or(0) % self.points.len();
            let owner = self.points[point_index].server;
            // Smooth weighted round robin among the usable peers carrying that server name.
            let best = round_robin::smooth_weighted_among(sel, sel.primary, |sel, index| {
                sel.specs[index].name == sel.specs[owner].name && sel.usable(index, tried)
            });
            if best.is_some() {
                return best;
            }
            tried.chash_point = Some(tried.chash_point.unwrap_or(0).wrapping_add(1));
            tried.hash_tries += 1;
            if tried.hash_tries > MAX_REHASH {
                return round_robin::pick(sel, tried);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn host_port_split_follows_nginx_init_chash() {
        assert_eq!(
            host_and_port("198.18.0.226:80"),
            (&b"198.18.0.226"[..], &b"80"[..])
        );
        assert_eq!(
            host_and_port("[fd00::1]:8080"),
            (&b"[fd00::1]"[..], &b"8080"[..])
        );
        assert_eq!(host_and_port("backend"), (&b"backend"[..], &b""[..]));
        assert_eq!(
            host_and_port("UNIX:/run/a.sock"),
            (&b"/run/a.sock"[..], &b""[..])
        );
    }

    #[test]
    fn points_chain_previous_hash_little_endian() {
        let pts: Vec<u32> = server_points("198.18.0.226:80", 1).collect();
        assert_eq!(pts.len(), 160);
        let first = crc32fast::hash(b"198.18.0.226\x0080\x00\x00\x00\x00");
        assert_eq!(pts[0], first);
        let mut second_input = b"198.18.0.226\x0080".to_vec();
        second_input.extend_from_slice(&first.to_le_bytes());
        assert_eq!(pts[1], crc32fast::hash(&second_input));
    }

    #[test]
    fn find_returns_first_point_at_or_above_and_may_wrap() {
        let spec = ServerSpec::new("a:1", "127.0.0.1:1".parse().unwrap());
        let ring = Ring::build(&[spec], &[0]);
        let pts = ring.points();
        assert!(pts.windows(2).all(|w| w[0].hash < w[1].hash));
        assert_eq!(ring.find(pts[3].hash), 3);
        assert_eq!(ring.find(pts[3].hash + 1), 4);
        assert_eq!(ring.find(0), usize::from(pts[0].hash == 0));
        assert_eq!(
            ring.find(u32::MAX),
            pts.len() - usize::from(pts[pts.len() - 1].hash == u32::MAX)
        );
    }
}
