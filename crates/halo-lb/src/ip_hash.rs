//! `ip_hash` (`ngx_http_upstream_ip_hash_module.c`).

use std::net::IpAddr;

use crate::round_robin;
use crate::tried::Tried;
use crate::upstream::Selection;

/// nginx `iphp->hash = 89`.
pub(crate) const INITIAL_HASH: u32 = 89;

/// Give up hashing after this many unusable choices and use round robin (nginx `> 20`).
pub(crate) const MAX_REHASH: u32 = 20;

/// The hashed bytes: the first three octets of an IPv4 address, all sixteen of an IPv6
/// address, three zero bytes without an address (nginx's pseudo address for unix sockets).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyBytes {
    buf: [u8; 16],
    len: usize,
}

impl KeyBytes {
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

pub(crate) fn key_bytes(ip: Option<IpAddr>) -> KeyBytes {
    let mut buf = [0u8; 16];
    match ip {
        Some(IpAddr::V4(v4)) => {
            buf[..3].copy_from_slice(&v4.octets()[..3]);
            KeyBytes { buf, len: 3 }
        }
        Some(IpAddr::V6(v6)) => KeyBytes {
            buf: v6.octets(),
            len: 16,
        },
        None => KeyBytes { buf, len: 3 },
    }
}

/// One round of the ip_hash function: `hash = (hash * 113 + byte) % 6271` per byte.
pub(crate) fn mix(mut hash: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        hash = (hash * 113 + u32::from(b)) % 6271;
    }
    hash
}

/// `ngx_http_upstream_get_ip_hash_peer`: hash the address bytes (continuing from the
/// request's previous hash on every retry), map `hash % total_weight` onto the weighted
/// primary list, rehash while the choice is tried/down/failed/full, and after more than 20
/// rehashes (or with a single server) fall back to round robin.
pub(crate) fn pick(sel: &mut Selection<'_>, tried: &mut Tried, bytes: &[u8]) -> Option<usize> {
    if tried.hash_tries > MAX_REHASH || sel.single {
        return round_robin::pick(sel, tried);
    }
    let mut hash = tried.ip_hash;
    loop {
        hash = mix(hash, bytes);
        let index = sel.primary_by_weight(u64::from(hash) % sel.primary_weight.max(1));
        if sel.usable(index, tried) {
            tried.ip_hash = hash;
            return Some(index);
        }
        tried.hash_tries += 1;
        if tried.hash_tries > MAX_REHASH {
            return round_robin::pick(sel, tried);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Method, PickKey, ServerSpec, Tried, Upstream};
    use std::time::Instant;

    #[test]
    fn hash_of_127_0_0_by_hand() {
        // 89 -> (89*113+127)%6271 = 3913 -> (3913*113+0)%6271 = 3199 -> (3199*113+0)%6271 =
        // 4040; 4040 % 3 = 2: the third server, as the recorded nginx run shows.
        assert_eq!(mix(INITIAL_HASH, &[127, 0, 0]), 4040);
        assert_eq!(
            key_bytes(Some("127.0.0.200".parse().unwrap())).as_slice(),
            [127, 0, 0]
        );
        assert_eq!(key_bytes(None).as_slice(), [0, 0, 0]);
        assert_eq!(
            key_bytes(Some("fd00::1".parse().unwrap())).as_slice().len(),
            16
        );
    }

    #[test]
    fn more_than_20_rehashes_fall_back_to_round_robin() {
        // Sixteen servers, fourteen down: some client networks miss the live ones 21 times in
        // a row and are then served by round robin, which (unlike ip_hash) moves
        // current_weight.
        let specs: Vec<ServerSpec> = (0..16u16)
            .map(|i| {
                let name = format!("198.18.0.{}:80", i + 1);
                let mut s = ServerSpec::new(name.clone(), name.parse().unwrap());
                s.down = i != 5 && i != 11;
                s
            })
            .collect();
        let now = Instant::now();
        let mut fell_back = 0;
        let mut hashed = 0;
        for third in 0..=255u8 {
            let up = Upstream::new("u", Method::IpHash, specs.clone()).unwrap();
            let ip = std::net::IpAddr::from([198, 18, third, 1]);
            let mut tried = Tried::new(&up);
            let p = up.pick(now, &PickKey::ClientIp(ip), &mut tried).unwrap();
            assert!(p.index() == 5 || p.index() == 11);
            let moved = up.snapshot(now).iter().any(|s| s.current_weight != 0);
            assert_eq!(moved, tried.hash_tries > MAX_REHASH, "third octet {third}");
            if moved {
                fell_back += 1;
            } else {
                hashed += 1;
            }
        }
        assert!(fell_back > 0 && hashed > 0, "{fell_back} {hashed}");
    }
}
