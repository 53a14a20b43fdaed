//! Selection rules shared by the balancers: tried bitmap, down, max_conns, backup list,
//! "no live upstreams", least_conn loads, random two, reload and active-health marks.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use common::*;
use halo_lb::{LbError, Method, Outcome, PickKey, Tried, Upstream};

#[test]
fn a_request_never_gets_the_same_peer_twice_then_no_live_upstreams() {
    let up = upstream(Method::RoundRobin, servers(&[('a', 5), ('b', 1), ('c', 1)]));
    let now = Instant::now();
    let mut tried = Tried::new(&up);
    let mut got = String::new();
    for _ in 0..up.tries_limit() {
        let p = up.pick(now, &PickKey::None, &mut tried).unwrap();
        up.release(now, p, Outcome::NotFailed);
        got.push(letter(&up, p));
    }
    let mut sorted: Vec<char> = got.chars().collect();
    sorted.sort_unstable();
    assert_eq!(sorted, ['a', 'b', 'c']);
    assert_eq!(tried.attempts(), 3);
    assert!(up.pick(now, &PickKey::None, &mut tried).is_err());
}

#[test]
fn down_servers_are_never_picked_and_do_not_count_as_tries() {
    let mut specs = servers(&[('a', 1), ('b', 1), ('c', 1)]);
    specs[1].down = true;
    let up = upstream(Method::RoundRobin, specs);
    assert_eq!(sequence(&up, Instant::now(), &PickKey::None, 6), "acacac");
    // ngx_http_upstream_init_round_robin: tries count servers that are not down.
    assert_eq!(up.tries_limit(), 2);
}

#[test]
fn max_conns_excludes_a_busy_server_until_released() {
    let specs = vec![
        servers(&[('a', 1)])[0].clone().with_max_conns(1),
        servers(&[('b', 1)])[0].clone(),
    ];
    let up = upstream(Method::RoundRobin, specs);
    let now = Instant::now();
    let held = up.pick(now, &PickKey::None, &mut Tried::new(&up)).unwrap();
    assert_eq!(letter(&up, held), 'a');
    assert_eq!(sequence(&up, now, &PickKey::None, 3), "bbb");
    assert!(!up.snapshot(now)[0].available);
    up.release(now, held, Outcome::Success);
    assert!(sequence(&up, now, &PickKey::None, 2).contains('a'));
}

#[test]
fn single_server_at_max_conns_is_no_live_upstreams() {
    let specs = vec![servers(&[('a', 1)])[0].clone().with_max_conns(1)];
    let up = upstream(Method::RoundRobin, specs);
    let now = Instant::now();
    let _held = up.pick(now, &PickKey::None, &mut Tried::new(&up)).unwrap();
    assert!(up.pick(now, &PickKey::None, &mut Tried::new(&up)).is_err());
}

fn with_backup(method: Method) -> Upstream {
    let mut specs = servers(&[('a', 1), ('b', 1), ('c', 1), ('d', 1)]);
    specs[2].backup = true;
    specs[3].backup = true;
    upstream(method, specs)
}

#[test]
fn backup_is_used_only_when_no_primary_is_eligible() {
    for method in [Method::RoundRobin, Method::LeastConn] {
        let up = with_backup(method);
        let t0 = Instant::now();
        assert_eq!(sequence(&up, t0, &PickKey::None, 4), "abab", "{method:?}");
        // Fail both primaries: the backup list takes over (tried bitmap reset).
        for _ in 0..2 {
            let p = up.pick(t0, &PickKey::None, &mut Tried::new(&up)).unwrap();
            up.release(t0, p, Outcome::Failed);
        }
        assert_eq!(sequence(&up, t0, &PickKey::None, 4), "cdcd", "{method:?}");
        // Once fail_timeout has passed the primaries are back.
        let back = sequence(&up, t0 + secs(11), &PickKey::None, 2);
        assert!(
            back.chars().all(|c| c == 'a' || c == 'b'),
            "{method:?} {back}"
        );
    }
}

#[test]
fn a_request_that_moved_to_backups_stays_there() {
    // get_round_robin_peer's failed: branch switches rrp->peers to the backup list for the
    // rest of the request.
    let up = with_backup(Method::RoundRobin);
    let now = Instant::now();
    let mut tried = Tried::new(&up);
    let mut got = String::new();
    for _ in 0..up.tries_limit() {
        match up.pick(now, &PickKey::None, &mut tried) {
            Ok(p) => {
                got.push(letter(&up, p));
                up.release(now, p, Outcome::NotFailed);
            }
            Err(_) => break,
        }
    }
    assert_eq!(got.len(), 4);
    assert!(got[..2].chars().all(|c| c == 'a' || c == 'b'));
    assert!(got[2..].chars().all(|c| c == 'c' || c == 'd'));
    assert!(tried.on_backup());
    assert_eq!(up.tries_limit(), 4);
}

#[test]
fn backup_with_hash_methods_is_a_configuration_error() {
    for method in [
        Method::IpHash,
        Method::Hash { consistent: false },
        Method::Hash { consistent: true },
        Method::Random { two: true },
    ] {
        let mut specs = servers(&[('a', 1), ('b', 1)]);
        specs[1].backup = true;
        let err = Upstream::new("u", method, specs).unwrap_err();
        assert!(
            matches!(err, LbError::BackupNotSupported { .. }),
            "{method:?}"
        );
    }
}

#[test]
fn configuration_errors() {
    let mut only_backup = servers(&[('a', 1)]);
    only_backup[0].backup = true;
    assert!(matches!(
        Upstream::new("u", Method::RoundRobin, only_backup),
        Err(LbError::NoServers { .. })
    ));
    assert!(matches!(
        Upstream::new("u", Method::RoundRobin, servers(&[('a', 0)])),
        Err(LbError::ZeroWeight { .. })
    ));
}

#[test]
fn least_conn_compares_conns_per_weight_by_cross_multiplication() {
    let up = upstream(Method::LeastConn, servers(&[('a', 2), ('b', 1), ('c', 1)]));
    let now = Instant::now();
    let key = PickKey::None;
    // Hold one request on each: a has 1/2, b and c 1/1 -> a is least loaded.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(up.pick(now, &key, &mut Tried::new(&up)).unwrap());
    }
    let mut letters: Vec<char> = held.iter().map(|&p| letter(&up, p)).collect();
    letters.sort_unstable();
    assert_eq!(letters, ['a', 'b', 'c']);
    let next = up.pick(now, &key, &mut Tried::new(&up)).unwrap();
    assert_eq!(letter(&up, next), 'a');
    held.push(next);
    // Now a has 2/2 = b 1/1 = c 1/1: a tie -> SWRR among all three.
    let snapshot = up.snapshot(now);
    assert_eq!(
        snapshot.iter().map(|s| s.conns).collect::<Vec<_>>(),
        [2, 1, 1]
    );
    for p in held {
        up.release(now, p, Outcome::Success);
    }
    assert!(up.snapshot(now).iter().all(|s| s.conns == 0));
}

#[test]
fn random_two_prefers_the_less_loaded_of_two_distinct_draws() {
    let up = upstream(Method::Random { two: true }, servers(&[('a', 1), ('b', 1)]));
    let now = Instant::now();
    let _busy = up
        .pick(now, &PickKey::Random(1), &mut Tried::new(&up))
        .unwrap();
    let busy_letter = letter(&up, _busy);
    for seed in 0..50u64 {
        let p = up
            .pick(now, &PickKey::Random(seed), &mut Tried::new(&up))
            .unwrap();
        assert_ne!(letter(&up, p), busy_letter, "seed {seed}");
        up.release(now, p, Outcome::Success);
    }
}

#[test]
fn random_follows_weights_roughly_and_skips_down() {
    let mut specs = servers(&[('a', 3), ('b', 1), ('c', 1)]);
    specs[2].down = true;
    let up = upstream(Method::Random { two: false }, specs);
    let now = Instant::now();
    let mut counts = [0u32; 3];
    for seed in 0..4000u64 {
        let c = one(&up, now, &PickKey::Random(seed));
        counts[usize::from(c as u8 - b'a')] += 1;
    }
    assert_eq!(counts[2], 0);
    // Expect 3000 / 1000; allow generous noise.
    assert!((2700..3300).contains(&counts[0]), "{counts:?}");
}

#[test]
fn hash_with_empty_key_uses_round_robin() {
    let up = upstream(
        Method::Hash { consistent: false },
        servers(&[('a', 1), ('b', 1)]),
    );
    assert_eq!(
        sequence(&up, Instant::now(), &PickKey::Hash(b""), 4),
        "abab"
    );
    let up = upstream(
        Method::Hash { consistent: true },
        servers(&[('a', 1), ('b', 1)]),
    );
    assert_eq!(
        sequence(&up, Instant::now(), &PickKey::Hash(b""), 4),
        "abab"
    );
}

#[test]
fn ip_hash_retry_continues_the_hash_and_never_repeats() {
    let up = upstream(Method::IpHash, servers(&[('a', 1), ('b', 1), ('c', 1)]));
    let now = Instant::now();
    let key = PickKey::ClientIp("198.18.0.10".parse().unwrap());
    let mut tried = Tried::new(&up);
    let mut got = Vec::new();
    for _ in 0..3 {
        let p = up.pick(now, &key, &mut tried).unwrap();
        up.release(now, p, Outcome::Failed);
        got.push(letter(&up, p));
    }
    got.sort_unstable();
    assert_eq!(got, ['a', 'b', 'c']);
    assert!(up.pick(now, &key, &mut tried).is_err());
}

#[test]
fn release_never_underflows_conns() {
    let up = upstream(Method::RoundRobin, servers(&[('a', 1), ('b', 1)]));
    let now = Instant::now();
    let p = up.pick(now, &PickKey::None, &mut Tried::new(&up)).unwrap();
    up.release(now, p, Outcome::Success);
    up.release(now, p, Outcome::Success);
    assert_eq!(up.snapshot(now)[p.index()].conns, 0);
}

#[test]
fn reload_carries_state_of_servers_with_the_same_name_and_address() {
    let t0 = Instant::now();
    let old = upstream(Method::RoundRobin, servers(&[('a', 1), ('b', 1)]));
    let a = old.pick(t0, &PickKey::None, &mut Tried::new(&old)).unwrap();
    old.release(t0, a, Outcome::Failed);
    let in_flight = old.pick(t0, &PickKey::None, &mut Tried::new(&old)).unwrap();
    assert_eq!(letter(&old, in_flight), 'b');

    // New configuration: c added, b kept, a kept.
    let new = upstream(Method::RoundRobin, servers(&[('c', 1), ('b', 1), ('a', 1)]));
    new.carry_state_from(&old);
    let snap = new.snapshot(t0);
    assert_eq!(
        (snap[2].fails, snap[2].available),
        (1, false),
        "a keeps its failure"
    );
    assert_eq!(snap[1].conns, 1, "b keeps its in-flight request");
    // The in-flight request finishes on the old generation; the shared counter drops.
    old.release(t0, in_flight, Outcome::Success);
    assert_eq!(new.snapshot(t0)[1].conns, 0);
    assert_eq!(new.snapshot(t0)[0].fails, 0);
}

#[test]
fn active_health_marks_a_peer_down_and_up() {
    let up = upstream(Method::RoundRobin, servers(&[('a', 1), ('b', 1)]));
    let now = Instant::now();
    let a = halo_lb::PeerId::from_index(0);
    up.set_active_health(a, false);
    assert_eq!(sequence(&up, now, &PickKey::None, 3), "bbb");
    assert!(!up.snapshot(now)[0].active_healthy);
    up.set_active_health(a, true);
    assert!(sequence(&up, now, &PickKey::None, 3).contains('a'));
}

#[test]
fn concurrent_picks_and_releases_balance_out() {
    use std::sync::Arc;
    for method in [
        Method::RoundRobin,
        Method::LeastConn,
        Method::Random { two: true },
    ] {
        let up = Arc::new(upstream(method, servers(&[('a', 3), ('b', 1), ('c', 2)])));
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let up = Arc::clone(&up);
                std::thread::spawn(move || {
                    let now = Instant::now();
                    for i in 0..2000u64 {
                        let key = PickKey::Random(t * 1_000_000 + i);
                        let p = up.pick(now, &key, &mut Tried::new(&up)).unwrap();
                        up.release(now, p, Outcome::Success);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let snap = up.snapshot(Instant::now());
        assert!(snap.iter().all(|s| s.conns == 0), "{method:?}");
        assert_eq!(up.total_picks(), 8000);
    }
}
