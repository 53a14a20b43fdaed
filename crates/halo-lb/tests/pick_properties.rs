//! Properties over random configurations and event sequences, for every method.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use halo_lb::{Method, Outcome, PeerId, PickKey, ServerSpec, Tried, Upstream};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Event {
    /// Start a request (pick) with this key material.
    Pick(u64),
    /// Finish the n-th in-flight request with an outcome.
    Finish(usize, u8),
    /// Advance the clock.
    Wait(u64),
    /// Active check mark.
    Health(usize, bool),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => any::<u64>().prop_map(Event::Pick),
        3 => (any::<usize>(), 0u8..3).prop_map(|(i, o)| Event::Finish(i, o)),
        1 => (0u64..15_000).prop_map(Event::Wait),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(i, h)| Event::Health(i, h)),
    ]
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::RoundRobin),
        Just(Method::LeastConn),
        Just(Method::IpHash),
        Just(Method::Hash { consistent: false }),
        Just(Method::Hash { consistent: true }),
        Just(Method::Random { two: false }),
        Just(Method::Random { two: true }),
    ]
}

fn server() -> impl Strategy<Value = (u32, u32, u32, bool, bool)> {
    // weight, max_fails, max_conns, backup, down
    (
        1u32..6,
        0u32..3,
        0u32..3,
        any::<bool>(),
        prop::bool::weighted(0.2),
    )
}

fn build(method: Method, raw: &[(u32, u32, u32, bool, bool)]) -> Option<Upstream> {
    let specs: Vec<ServerSpec> = raw
        .iter()
        .enumerate()
        .map(|(i, &(weight, max_fails, max_conns, backup, down))| {
            let name = format!("198.18.1.{}:80", i + 1);
            let mut s = ServerSpec::new(name.clone(), name.parse().unwrap())
                .with_weight(weight)
                .with_failures(max_fails, Duration::from_secs(10))
                .with_max_conns(max_conns);
            s.backup = backup && method.supports_backup();
            s.down = down;
            s
        })
        .collect();
    Upstream::new("p", method, specs).ok()
}

fn key(method: Method, material: u64) -> (PickKey<'static>, Vec<u8>) {
    let bytes = material.to_string().into_bytes();
    match method {
        Method::IpHash => (
            PickKey::ClientIp(std::net::IpAddr::from((material as u32).to_be_bytes())),
            bytes,
        ),
        Method::Random { .. } => (PickKey::Random(material), bytes),
        _ => (PickKey::None, bytes),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn picks_are_eligible_and_exist_whenever_an_eligible_peer_exists(
        method in method(),
        raw in prop::collection::vec(server(), 1..7),
        events in prop::collection::vec(event(), 1..120),
    ) {
        let Some(up) = build(method, &raw) else { return Ok(()); };
        let mut now = Instant::now();
        let mut in_flight: Vec<PeerId> = Vec::new();
        for ev in events {
            match ev {
                Event::Pick(material) => {
                    let (k, bytes) = key(method, material);
                    let k = if matches!(method, Method::Hash { .. }) { PickKey::Hash(&bytes) } else { k };
                    let before = up.snapshot(now);
                    let any_available = before.iter().any(|s| s.available);
                    let mut tried = Tried::new(&up);
                    match up.pick(now, &k, &mut tried) {
                        Ok(p) => {
                            let status = &before[p.index()];
                            prop_assert!(status.available, "picked unavailable {:?} from {:?}", p, before);
                            // Backups only when no primary was available.
                            if status.backup {
                                prop_assert!(!before.iter().any(|s| !s.backup && s.available));
                            }
                            in_flight.push(p);
                        }
                        Err(_) => prop_assert!(!any_available, "no pick though available: {:?}", before),
                    }
                }
                Event::Finish(i, o) => {
                    if !in_flight.is_empty() {
                        let p = in_flight.swap_remove(i % in_flight.len());
                        let outcome = [Outcome::Success, Outcome::Failed, Outcome::NotFailed][usize::from(o)];
                        up.release(now, p, outcome);
                    }
                }
                Event::Wait(ms) => now += Duration::from_millis(ms),
                Event::Health(i, healthy) => {
                    up.set_active_health(PeerId::from_index(i % up.servers().len()), healthy);
                }
            }
            // conns equal the requests in flight: no leak, no underflow.
            let snap = up.snapshot(now);
            for (index, s) in snap.iter().enumerate() {
                let expected = in_flight.iter().filter(|p| p.index() == index).count();
                prop_assert_eq!(s.conns as usize, expected);
                prop_assert!(s.effective_weight >= 0 && s.effective_weight <= i64::from(s.weight));
            }
        }
    }

    #[test]
    fn a_request_tries_each_peer_at_most_once(
        method in method(),
        raw in prop::collection::vec(server(), 1..7),
        material in any::<u64>(),
    ) {
        let Some(up) = build(method, &raw) else { return Ok(()); };
        let now = Instant::now();
        let (k, bytes) = key(method, material);
        let k = if matches!(method, Method::Hash { .. }) { PickKey::Hash(&bytes) } else { k };
        let mut tried = Tried::new(&up);
        let mut seen = Vec::new();
        for _ in 0..up.tries_limit() {
            match up.pick(now, &k, &mut tried) {
                Ok(p) => {
                    if !up.is_single() {
                        prop_assert!(!seen.contains(&p), "{:?} twice", p);
                    }
                    seen.push(p);
                    up.release(now, p, Outcome::Failed);
                }
                Err(_) => break,
            }
        }
    }
}
