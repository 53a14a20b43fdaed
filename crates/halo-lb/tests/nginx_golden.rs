//! Pick sequences recorded from a real nginx 1.22.1 (one worker, loopback backends that answer
//! their own letter, sequential curl requests): `tests/nginx_golden/record.sh` with
//! `nginx.conf.in` produced `recorded-1.22.1.txt`. Each upstream here mirrors one `upstream {}`
//! block of that configuration.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;
use std::time::Instant;

use common::*;
use halo_lb::{Method, PickKey};

#[test]
fn round_robin_weights_5_1_1_is_smooth() {
    // ngx_http_upstream_get_peer: smooth weighted round robin, "a a b a c a a".
    let up = upstream(Method::RoundRobin, servers(&[('a', 5), ('b', 1), ('c', 1)]));
    assert_eq!(
        sequence(&up, Instant::now(), &PickKey::None, 14),
        "aabacaaaabacaa"
    );
}

#[test]
fn round_robin_weights_3_2_1() {
    let up = upstream(Method::RoundRobin, servers(&[('a', 3), ('b', 2), ('c', 1)]));
    assert_eq!(
        sequence(&up, Instant::now(), &PickKey::None, 12),
        "abacbaabacba"
    );
}

#[test]
fn least_conn_ties_fall_back_to_smooth_weighted_round_robin() {
    // ngx_http_upstream_get_least_conn_peer: all conns 0 -> "many" -> SWRR among the tied.
    let up = upstream(Method::LeastConn, servers(&[('a', 2), ('b', 1), ('c', 1)]));
    assert_eq!(
        sequence(&up, Instant::now(), &PickKey::None, 12),
        "abcaabcaabca"
    );
}

fn client(third_octet: u8) -> PickKey<'static> {
    PickKey::ClientIp(IpAddr::from([127, 0, third_octet, 1]))
}

#[test]
fn ip_hash_matches_nginx_for_16_client_networks() {
    // ngx_http_upstream_get_ip_hash_peer: 89, *113, %6271 over the first three octets.
    let up = upstream(Method::IpHash, servers(&[('a', 1), ('b', 1), ('c', 1)]));
    let got: String = (0..16)
        .map(|o| one(&up, Instant::now(), &client(o)))
        .collect();
    assert_eq!(got, "cabcabcabcabcabc");
    // Affinity: the same client network again gets the same server.
    let again: String = (0..16)
        .map(|o| one(&up, Instant::now(), &client(o)))
        .collect();
    assert_eq!(again, got);
}

#[test]
fn ip_hash_respects_weights_and_rehashes_past_down_servers() {
    let mut specs = servers(&[('a', 3), ('b', 1), ('c', 1), ('d', 1)]);
    specs[2].down = true;
    let up = upstream(Method::IpHash, specs);
    let got: String = (0..16)
        .map(|o| one(&up, Instant::now(), &client(o)))
        .collect();
    assert_eq!(got, "abbdaaabbdaaabad");
}

const KEYS: [&str; 16] = [
    "a",
    "b",
    "c",
    "foo",
    "bar",
    "baz",
    "user1",
    "user2",
    "user3",
    "user4",
    "user5",
    "user6",
    "/index.html",
    "42",
    "x",
    "y",
];

fn by_key(up: &halo_lb::Upstream) -> String {
    KEYS.iter()
        .map(|k| one(up, Instant::now(), &PickKey::Hash(k.as_bytes())))
        .collect()
}

#[test]
fn hash_is_cache_memcached_compatible() {
    // ngx_http_upstream_get_hash_peer: ((crc32([REHASH] KEY) >> 16) & 0x7fff) + PREV % total.
    let up = upstream(
        Method::Hash { consistent: false },
        servers(&[('a', 1), ('b', 1), ('c', 2)]),
    );
    assert_eq!(by_key(&up), "ccbccabaccabcaac");
}

#[test]
fn hash_rehashes_with_decimal_prefix_past_a_down_server() {
    let mut specs = servers(&[('a', 1), ('b', 1), ('c', 1)]);
    specs[1].down = true;
    let up = upstream(Method::Hash { consistent: false }, specs);
    assert_eq!(by_key(&up), "cacacaaaaaccccaa");
}

#[test]
fn hash_consistent_is_ketama_compatible() {
    // ngx_http_upstream_init_chash: 160 points per weight, crc32(HOST \0 PORT PREV_HASH).
    let up = upstream(
        Method::Hash { consistent: true },
        servers(&[('a', 1), ('b', 1), ('c', 2)]),
    );
    assert_eq!(by_key(&up), "bccccccbbaaaccca");
}

#[test]
fn hash_consistent_moves_only_the_down_servers_keys_to_the_next_point() {
    let mut specs = servers(&[('a', 1), ('b', 1), ('c', 2)]);
    specs[1].down = true;
    let up = upstream(Method::Hash { consistent: true }, specs);
    assert_eq!(by_key(&up), "cccccccacaaaccca");
}

#[test]
fn passive_health_timeline_with_a_refusing_server() {
    // upstream fail { server a; server b weight=3 max_fails=1 fail_timeout=2s; } where b
    // refuses connections; three bursts of six requests 3.5 s apart. nginx logged
    // $upstream_addr "b, a" for the first request (b wins with weight 3, fails, retry on a),
    // then only a; after the timeout b's effective_weight (3 - 3/1 = 0) must climb back
    // before its current_weight wins, so the probe is the third request of the burst.
    use halo_lb::{Outcome, Tried};
    let mut specs = servers(&[('a', 1), ('b', 3)]);
    specs[1] = specs[1].clone().with_failures(1, secs(2));
    let up = upstream(Method::RoundRobin, specs);
    let t0 = Instant::now();
    let mut log = Vec::new();
    for burst in 0..3u64 {
        let now = t0 + ms(3500 * burst);
        for _ in 0..6 {
            let mut tried = Tried::new(&up);
            let mut attempts = Vec::new();
            loop {
                let peer = up.pick(now, &PickKey::None, &mut tried).unwrap();
                attempts.push(letter(&up, peer).to_string());
                if letter(&up, peer) == 'b' {
                    up.release(now, peer, Outcome::Failed);
                } else {
                    up.release(now, peer, Outcome::Success);
                    break;
                }
            }
            log.push(attempts.join(", "));
        }
    }
    let expected = [
        "b, a", "a", "a", "a", "a", "a", //
        "a", "a", "b, a", "a", "a", "a", //
        "a", "a", "b, a", "a", "a", "a",
    ];
    assert_eq!(log, expected);
}
