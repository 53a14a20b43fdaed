//! max_fails / fail_timeout timelines (`ngx_http_upstream_free_round_robin_peer` and the
//! eligibility filter of `ngx_http_upstream_get_peer`), driven with an explicit clock.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Instant;

use common::*;
use halo_lb::{Method, Outcome, PickKey, Tried, Upstream};

fn two_servers(max_fails: u32) -> Upstream {
    let specs = servers(&[('a', 1), ('b', 1)])
        .into_iter()
        .map(|s| s.with_failures(max_fails, secs(10)))
        .collect();
    upstream(Method::RoundRobin, specs)
}

/// Requests at `now` until one is given server `want` (others are released with success);
/// returns that peer unreleased. Bounded.
fn pick_until(up: &Upstream, now: Instant, want: char) -> halo_lb::PeerId {
    for _ in 0..20 {
        let p = pick(up, now);
        if letter(up, p) == want {
            return p;
        }
        up.release(now, p, Outcome::Success);
    }
    panic!("{want} never picked");
}

/// Pick with a fresh request and return the peer without releasing it.
fn pick(up: &Upstream, now: Instant) -> halo_lb::PeerId {
    up.pick(now, &PickKey::None, &mut Tried::new(up)).unwrap()
}

#[test]
fn one_failure_disables_for_fail_timeout_inclusive_then_one_probe() {
    let t0 = Instant::now();
    let up = two_servers(1);
    let a = pick(&up, t0);
    assert_eq!(letter(&up, a), 'a');
    up.release(t0, a, Outcome::Failed);
    // now - checked <= fail_timeout: unavailable up to and including t0 + 10 s.
    for at in [t0, t0 + secs(5), t0 + secs(10)] {
        assert_eq!(sequence(&up, at, &PickKey::None, 3), "bbb");
        assert!(!up.snapshot(at)[0].available);
    }
    // After the timeout exactly one request probes it: selecting it sets checked = now, which
    // makes it unavailable again for everybody else while the probe runs.
    let probe_time = t0 + secs(10) + ms(1);
    // (a's effective_weight fell to 0 with the failure, so b may win the first passes.)
    let probe = pick_until(&up, probe_time, 'a');
    assert_eq!(sequence(&up, probe_time, &PickKey::None, 3), "bbb");
    // The probe succeeds: accessed (t0) < checked (probe_time) -> fails = 0.
    up.release(probe_time, probe, Outcome::Success);
    assert_eq!(up.snapshot(probe_time)[0].fails, 0);
    assert!(sequence(&up, probe_time, &PickKey::None, 4).contains('a'));
}

#[test]
fn failed_probe_disables_for_another_fail_timeout() {
    let t0 = Instant::now();
    let up = two_servers(1);
    let a = pick(&up, t0);
    up.release(t0, a, Outcome::Failed);
    let t1 = t0 + secs(11);
    let probe = pick_until(&up, t1, 'a');
    up.release(t1, probe, Outcome::Failed);
    assert_eq!(up.snapshot(t1)[0].fails, 2);
    assert_eq!(up.snapshot(t1)[0].unavailable_for, Some(secs(10)));
    assert_eq!(sequence(&up, t1 + secs(10), &PickKey::None, 2), "bb");
    let again = pick_until(&up, t1 + secs(10) + ms(1), 'a');
    up.release(t1 + secs(10) + ms(1), again, Outcome::Success);
    assert_eq!(up.snapshot(t1 + secs(11))[0].fails, 0);
}

#[test]
fn success_resets_fails_only_after_a_check_following_the_failure() {
    // max_fails=3: failures accumulate while no selection happened more than fail_timeout
    // after the last check; `if (peer->accessed < peer->checked) peer->fails = 0`.
    let t0 = Instant::now();
    let up = two_servers(3);
    let a = pick(&up, t0);
    up.release(t0, a, Outcome::Failed); // fails 1, accessed = checked = t0
    let t1 = t0 + secs(3);
    let a = pick_until(&up, t1, 'a');
    up.release(t1, a, Outcome::Success); // checked still t0: no reset
    assert_eq!(up.snapshot(t1)[0].fails, 1);
    // A selection more than fail_timeout after the check sets checked = now; then a success
    // clears the counter.
    let t2 = t0 + secs(12);
    let a = pick_until(&up, t2, 'a');
    up.release(t2, a, Outcome::Success);
    assert_eq!(up.snapshot(t2)[0].fails, 0);
}

#[test]
fn max_fails_failures_within_the_window_disable_the_server() {
    let t0 = Instant::now();
    let up = two_servers(2);
    let a = pick(&up, t0);
    up.release(t0, a, Outcome::Failed);
    assert!(
        up.snapshot(t0)[0].available,
        "1 of 2 failures: still available"
    );
    let t1 = t0 + secs(4);
    let p = pick_until(&up, t1, 'a');
    up.release(t1, p, Outcome::Failed);
    let status = &up.snapshot(t1)[0];
    assert_eq!(status.fails, 2);
    assert!(!status.available);
    assert_eq!(status.unavailable_for, Some(secs(10)));
}

#[test]
fn not_failed_outcome_is_not_counted() {
    // NGX_PEER_NEXT (403/404 in proxy_next_upstream) is not NGX_PEER_FAILED.
    let t0 = Instant::now();
    let up = two_servers(1);
    let a = pick(&up, t0);
    up.release(t0, a, Outcome::NotFailed);
    assert_eq!(up.snapshot(t0)[0].fails, 0);
    assert!(up.snapshot(t0)[0].available);
}

#[test]
fn failure_lowers_effective_weight_by_weight_over_max_fails_and_it_recovers_per_selection() {
    let t0 = Instant::now();
    let specs = vec![
        servers(&[('a', 10)])[0].clone().with_failures(2, secs(10)),
        servers(&[('b', 1)])[0].clone(),
    ];
    let up = upstream(Method::RoundRobin, specs);
    let a = pick(&up, t0);
    assert_eq!(letter(&up, a), 'a');
    up.release(t0, a, Outcome::Failed);
    assert_eq!(up.snapshot(t0)[0].effective_weight, 5, "10 - 10/2");
    // Every selection pass in which a is eligible raises it by one, whoever is chosen.
    for expected in 6..=10 {
        let _ = one(&up, t0, &PickKey::None);
        assert_eq!(up.snapshot(t0)[0].effective_weight, expected);
    }
    let _ = one(&up, t0, &PickKey::None);
    assert_eq!(up.snapshot(t0)[0].effective_weight, 10, "capped at weight");
}

#[test]
fn effective_weight_floors_at_zero() {
    let t0 = Instant::now();
    let specs = servers(&[('a', 3), ('b', 1)])
        .into_iter()
        .map(|s| s.with_failures(1, secs(10)))
        .collect();
    let up = upstream(Method::RoundRobin, specs);
    let a = pick(&up, t0);
    up.release(t0, a, Outcome::Failed);
    up.release(t0, a, Outcome::Failed);
    assert_eq!(up.snapshot(t0)[0].effective_weight, 0);
}

#[test]
fn max_fails_zero_disables_accounting() {
    let t0 = Instant::now();
    let specs = servers(&[('a', 1), ('b', 1)])
        .into_iter()
        .map(|s| s.with_failures(0, secs(10)))
        .collect();
    let up = upstream(Method::RoundRobin, specs);
    for _ in 0..5 {
        let a = pick(&up, t0);
        up.release(t0, a, Outcome::Failed);
    }
    assert!(up.snapshot(t0).iter().all(|s| s.available));
    assert_eq!(up.snapshot(t0)[0].effective_weight, 1);
}

#[test]
fn single_server_ignores_max_fails() {
    // peers->single (one primary, no backup): get_round_robin_peer checks only down and
    // max_conns, free_round_robin_peer only drops conns.
    let t0 = Instant::now();
    let up = upstream(Method::RoundRobin, servers(&[('a', 1)]));
    assert!(up.is_single());
    for i in 0..5 {
        let a = pick(&up, t0 + secs(i));
        up.release(t0 + secs(i), a, Outcome::Failed);
    }
    assert_eq!(up.snapshot(t0)[0].fails, 0);
    assert_eq!(one(&up, t0 + secs(5), &PickKey::None), 'a');
    assert_eq!(up.tries_limit(), 1);
}

#[test]
fn single_primary_with_backup_is_not_single() {
    // ngx_http_upstream_init_round_robin sets peers->single = 0 when backups exist.
    let t0 = Instant::now();
    let mut specs = servers(&[('a', 1), ('b', 1)]);
    specs[1].backup = true;
    let up = upstream(Method::RoundRobin, specs);
    assert!(!up.is_single());
    let a = pick(&up, t0);
    assert_eq!(letter(&up, a), 'a');
    up.release(t0, a, Outcome::Failed);
    assert_eq!(one(&up, t0 + secs(1), &PickKey::None), 'b');
}

#[test]
fn all_failed_gives_no_live_upstreams_until_a_timeout_expires() {
    // The old "all peers failed: mark them live" reset was removed in nginx 1.11.5.
    let t0 = Instant::now();
    let up = two_servers(1);
    for _ in 0..2 {
        let p = pick(&up, t0);
        up.release(t0, p, Outcome::Failed);
    }
    let err = up.pick(t0 + secs(10), &PickKey::None, &mut Tried::new(&up));
    assert_eq!(err.unwrap_err().upstream, "test");
    assert!(up
        .pick(t0 + secs(11), &PickKey::None, &mut Tried::new(&up))
        .is_ok());
}
