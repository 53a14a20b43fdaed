//! limit_conn and limit_req (`ngx_http_limit_conn_module.c`, `ngx_http_limit_req_module.c`).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Instant;

use common::*;
use halo_lb::limit::{ConnLimiter, Rate, RequestDelay, RequestLimitSpec, RequestLimiter, Verdict};

#[test]
fn conn_limit_counts_concurrent_requests_per_key_and_forgets_at_zero() {
    let limiter = ConnLimiter::new(1000);
    let ip = [198u8, 18, 0, 10];
    let t1 = limiter.try_acquire(&ip, 2).unwrap();
    let t2 = limiter.try_acquire(&ip, 2).unwrap();
    assert!(
        limiter.try_acquire(&ip, 2).is_none(),
        "third concurrent request rejected"
    );
    let other = limiter.try_acquire(&[198, 18, 0, 11], 2).unwrap();
    assert_eq!(limiter.count(&ip), 2);
    limiter.release(t1);
    let t3 = limiter.try_acquire(&ip, 2).unwrap();
    limiter.release(t2);
    limiter.release(t3);
    limiter.release(other);
    assert_eq!(limiter.keys(), 0, "entries are removed at zero");
}

#[test]
fn conn_limit_ignores_the_empty_key() {
    // nginx: "if the key is empty, the request is not accounted".
    let limiter = ConnLimiter::new(10);
    let tokens: Vec<_> = (0..5)
        .map(|_| limiter.try_acquire(b"", 1).unwrap())
        .collect();
    assert_eq!(limiter.keys(), 0);
    tokens.into_iter().for_each(|t| limiter.release(t));
}

#[test]
fn conn_limit_zone_full_rejects_new_keys() {
    let limiter = ConnLimiter::new(1); // one key per shard
    let mut held = Vec::new();
    let mut rejected = 0;
    for i in 0..1000u32 {
        match limiter.try_acquire(&i.to_be_bytes(), 10) {
            Some(t) => held.push(t),
            None => rejected += 1,
        }
    }
    assert!(limiter.keys() <= 64);
    assert!(rejected >= 1000 - 64);
    held.into_iter().for_each(|t| limiter.release(t));
    assert_eq!(limiter.keys(), 0);
}

#[test]
fn conn_permit_releases_on_drop_across_threads() {
    let limiter = Arc::new(ConnLimiter::new(100));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    let permit = limiter.try_acquire_owned(b"k", 4);
                    drop(permit);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(limiter.count(b"k"), 0);
    assert_eq!(limiter.keys(), 0);
}

fn limiter(rate: Rate, burst: u32, delay: RequestDelay) -> RequestLimiter {
    RequestLimiter::new(RequestLimitSpec {
        rate,
        burst,
        delay,
        max_keys: 10_000,
    })
    .unwrap()
}

#[test]
fn rate_1rs_without_burst_rejects_within_the_same_second() {
    // excess = excess - rate*ms/1000 + 1000; reject when > burst*1000 (= 0).
    let l = limiter(Rate::PerSecond(1), 0, RequestDelay::After(0));
    let t0 = Instant::now();
    assert_eq!(
        l.check(t0, b"k"),
        Verdict::Pass,
        "a new key stores excess 0"
    );
    assert_eq!(l.check(t0 + ms(999), b"k"), Verdict::Reject, "excess 1");
    assert_eq!(l.check(t0 + ms(1000), b"k"), Verdict::Pass, "excess 0");
    assert_eq!(l.check(t0 + ms(1500), b"k"), Verdict::Reject);
    assert_eq!(
        l.check(t0 + ms(1500), b"other"),
        Verdict::Pass,
        "keys are independent"
    );
}

#[test]
fn burst_delays_by_excess_over_rate_then_rejects() {
    let l = limiter(Rate::PerSecond(1), 2, RequestDelay::After(0));
    let t0 = Instant::now();
    assert_eq!(l.check(t0, b"k"), Verdict::Pass);
    assert_eq!(l.check(t0, b"k"), Verdict::Delay(ms(1000)), "excess 1000");
    assert_eq!(l.check(t0, b"k"), Verdict::Delay(ms(2000)), "excess 2000");
    assert_eq!(l.check(t0, b"k"), Verdict::Reject, "excess 3000 > 2000");
    // A rejected request does not consume: 500 ms later excess = 2000 - 500 + 1000 = 2500.
    assert_eq!(l.check(t0 + ms(500), b"k"), Verdict::Reject);
    // 1000 ms later: 2000 - 1000 + 1000 = 2000 -> delayed 2 s.
    assert_eq!(l.check(t0 + ms(1000), b"k"), Verdict::Delay(ms(2000)));
}

#[test]
fn nodelay_passes_the_whole_burst_at_once_but_consumes_slots() {
    let l = limiter(Rate::PerSecond(10), 3, RequestDelay::Never);
    let t0 = Instant::now();
    for _ in 0..4 {
        assert_eq!(l.check(t0, b"k"), Verdict::Pass);
    }
    assert_eq!(l.check(t0, b"k"), Verdict::Reject);
    // 10 r/s drains one slot per 100 ms.
    assert_eq!(l.check(t0 + ms(100), b"k"), Verdict::Pass);
    assert_eq!(l.check(t0 + ms(100), b"k"), Verdict::Reject);
}

#[test]
fn delay_n_passes_n_excess_requests_then_delays() {
    let l = limiter(Rate::PerSecond(2), 4, RequestDelay::After(2));
    let t0 = Instant::now();
    assert_eq!(l.check(t0, b"k"), Verdict::Pass); // 0
    assert_eq!(l.check(t0, b"k"), Verdict::Pass); // 1000
    assert_eq!(l.check(t0, b"k"), Verdict::Pass); // 2000 <= 2000
                                                  // 3000: (3000 - 2000) * 1000 / 2000 = 500 ms.
    assert_eq!(l.check(t0, b"k"), Verdict::Delay(ms(500)));
    assert_eq!(l.check(t0, b"k"), Verdict::Delay(ms(1000)));
    assert_eq!(l.check(t0, b"k"), Verdict::Reject);
}

#[test]
fn per_minute_rate_uses_integer_milli_requests() {
    // ctx->rate = 1 * 1000 / 60 = 16 milli-requests per second.
    assert_eq!(Rate::PerMinute(1).milli_per_second(), 16);
    assert_eq!(Rate::PerMinute(30).milli_per_second(), 500);
    let l = limiter(Rate::PerMinute(1), 0, RequestDelay::After(0));
    let t0 = Instant::now();
    assert_eq!(l.check(t0, b"k"), Verdict::Pass);
    // 60 s drain 16*60000/1000 = 960 < 1000: still rejected (nginx's rounding).
    assert_eq!(l.check(t0 + secs(60), b"k"), Verdict::Reject);
    // 62.5 s drain exactly 1000.
    assert_eq!(l.check(t0 + ms(62_500), b"k"), Verdict::Pass);
}

#[test]
fn request_limiter_memory_is_bounded_by_evicting_least_recently_used() {
    let l = RequestLimiter::new(RequestLimitSpec {
        rate: Rate::PerSecond(1),
        burst: 0,
        delay: RequestDelay::After(0),
        max_keys: 64 * 4,
    })
    .unwrap();
    let t0 = Instant::now();
    for i in 0..10_000u32 {
        let _ = l.check(t0, &i.to_be_bytes());
    }
    assert!(l.keys() <= 64 * 4, "{}", l.keys());
}

#[test]
fn idle_drained_keys_expire_after_a_minute() {
    let l = limiter(Rate::PerSecond(1), 0, RequestDelay::After(0));
    let t0 = Instant::now();
    for i in 0..100u32 {
        let _ = l.check(t0, &i.to_be_bytes());
    }
    let before = l.keys();
    for i in 0..200u32 {
        let _ = l.check(t0 + secs(61), &(1_000_000 + i).to_be_bytes());
    }
    assert!(l.keys() < before + 200, "stale keys were dropped");
}

#[test]
fn zero_rate_is_rejected() {
    assert!(RequestLimiter::new(RequestLimitSpec {
        rate: Rate::PerMinute(0),
        burst: 0,
        delay: RequestDelay::Never,
        max_keys: 1,
    })
    .is_err());
}

#[test]
fn several_zones_consume_nothing_when_one_rejects() {
    // ngx_http_limit_req_handler: earlier zones are only looked up; they are charged by
    // ngx_http_limit_req_account after the last zone passed.
    let per_ip = limiter(Rate::PerSecond(1), 5, RequestDelay::Never);
    let per_server = limiter(Rate::PerSecond(1), 0, RequestDelay::After(0));
    let t0 = Instant::now();
    let zones = |ip: &'static [u8]| [(&per_ip, ip), (&per_server, &b"srv"[..])];
    assert_eq!(RequestLimiter::check_all(t0, &zones(b"ip1")), Verdict::Pass);
    // per_server rejects: per_ip must not be charged.
    for _ in 0..10 {
        assert_eq!(
            RequestLimiter::check_all(t0, &zones(b"ip1")),
            Verdict::Reject
        );
    }
    // per_ip alone still has its whole burst (excess 1000 after the first charged request).
    for _ in 0..5 {
        assert_eq!(per_ip.check(t0, b"ip1"), Verdict::Pass);
    }
    assert_eq!(per_ip.check(t0, b"ip1"), Verdict::Reject);
}

#[test]
fn several_zones_delay_by_the_largest() {
    let slow = limiter(Rate::PerSecond(1), 5, RequestDelay::After(0));
    let fast = limiter(Rate::PerSecond(10), 5, RequestDelay::After(0));
    let t0 = Instant::now();
    let zones = [(&slow, &b"k"[..]), (&fast, &b"k"[..])];
    assert_eq!(RequestLimiter::check_all(t0, &zones), Verdict::Pass);
    // Second: slow excess 1000 -> 1 s, fast excess 1000 -> 100 ms.
    assert_eq!(
        RequestLimiter::check_all(t0, &zones),
        Verdict::Delay(secs(1))
    );
    assert_eq!(RequestLimiter::check_all(t0, &[]), Verdict::Pass);
}
