//! `split_clients` (`ngx_http_split_clients_module.c`, `ngx_murmurhash.c` of nginx 1.22): the
//! 32-bit MurmurHash2 of a text picks a bucket by percentage.

use halo_config::vars::SplitClientsConfig;

use crate::handler::RequestCtx;
use crate::variables::Template;

/// nginx's `ngx_murmur_hash2`: MurmurHash2 with seed 0 mixed with the length, little-endian.
pub(crate) fn murmur_hash2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    // nginx starts from the length as a 32-bit value.
    let mut h = data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// A compiled `split_clients`.
#[derive(Debug)]
pub(crate) struct SplitClientsRt {
    source: Template,
    /// (upper bound of the hash, value); `None` for `*`, which takes every hash.
    buckets: Vec<(Option<u32>, String)>,
}

impl SplitClientsRt {
    pub fn compile(cfg: &SplitClientsConfig, user: &[String]) -> Result<Self, String> {
        let mut last: u32 = 0;
        let buckets = cfg
            .buckets
            .iter()
            .map(|b| {
                let bound = b.percent.map(|p| {
                    // nginx: each share is floored on its own, then added up (in 32 bits).
                    let share = u64::from(p) * u64::from(u32::MAX) / 10_000;
                    last = last.wrapping_add(u32::try_from(share).unwrap_or(u32::MAX));
                    last
                });
                (bound, b.value.clone())
            })
            .collect();
        Ok(SplitClientsRt {
            source: Template::parse_with(&cfg.source, user)?,
            buckets,
        })
    }

    /// The value for a hash: the first bucket whose bound is above it, or `*`; else "".
    pub fn pick(&self, hash: u32) -> &str {
        self.buckets
            .iter()
            .find(|(bound, _)| bound.is_none_or(|b| hash < b))
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn write(&self, ctx: &RequestCtx<'_>, out: &mut String) {
        let text = self.source.render(ctx);
        out.push_str(self.pick(murmur_hash2(text.as_bytes())));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use halo_config::vars::SplitBucket;

    #[test]
    fn murmur_hash2_is_nginx_s() {
        // MurmurHash2 with seed 0 ("a" is the published reference value); the buckets nginx
        // picks with it are compared in tests/variables_vs_nginx.rs.
        assert_eq!(murmur_hash2(b""), 0);
        assert_eq!(murmur_hash2(b"a"), 0x92685f5e);
        assert_eq!(murmur_hash2(b"abcd"), 0x26873021);
        assert_eq!(murmur_hash2(b"abcde"), 0x5f09a8de);
    }

    fn split(buckets: &[(Option<u32>, &str)]) -> SplitClientsRt {
        SplitClientsRt::compile(
            &SplitClientsConfig {
                source: "$remote_addr".into(),
                variable: "v".into(),
                buckets: buckets
                    .iter()
                    .map(|(p, v)| SplitBucket {
                        percent: *p,
                        value: (*v).into(),
                    })
                    .collect(),
            },
            &[],
        )
        .unwrap()
    }

    #[test]
    fn buckets_split_the_hash_space_by_percentage() {
        let s = split(&[(Some(5000), "a"), (Some(2500), "b"), (None, "c")]);
        assert_eq!(s.pick(0), "a");
        assert_eq!(s.pick(0x7fff_fffe), "a");
        assert_eq!(s.pick(0x7fff_ffff), "b");
        // Each share is floored on its own: 0x7fffffff + 0x3fffffff.
        assert_eq!(s.pick(0xbfff_fffd), "b");
        assert_eq!(s.pick(0xbfff_fffe), "c");
        assert_eq!(s.pick(u32::MAX), "c");
        // Without `*`, hashes past the total get "" (and an explicit 100% misses u32::MAX,
        // as in nginx 1.22).
        let s = split(&[(Some(1000), "a")]);
        assert_eq!(s.pick(u32::MAX / 10 + 1), "");
        let s = split(&[(Some(10_000), "all")]);
        assert_eq!(s.pick(u32::MAX - 1), "all");
        assert_eq!(s.pick(u32::MAX), "");
    }
}
