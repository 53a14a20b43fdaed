//! Helpers shared by the integration tests.
#![allow(clippy::unwrap_used, dead_code)]

use std::time::{Duration, Instant};

use halo_lb::{Method, Outcome, PeerId, PickKey, ServerSpec, Tried, Upstream};

/// `(letter, weight)` -> servers `127.0.0.1:8081..` named as nginx.conf writes them, so that
/// `hash consistent` points equal the golden nginx run (letter a = 8081, b = 8082, ...).
pub fn servers(spec: &[(char, u32)]) -> Vec<ServerSpec> {
    spec.iter()
        .map(|&(letter, weight)| {
            let port = 8081 + u16::from(letter as u8 - b'a');
            let name = format!("127.0.0.1:{port}");
            ServerSpec::new(name.clone(), name.parse().unwrap()).with_weight(weight)
        })
        .collect()
}

pub fn upstream(method: Method, specs: Vec<ServerSpec>) -> Upstream {
    Upstream::new("test", method, specs).unwrap()
}

/// The letter of a peer (a = 8081).
pub fn letter(up: &Upstream, peer: PeerId) -> char {
    let port = up.server(peer).addr.port();
    char::from(b'a' + u8::try_from(port - 8081).unwrap())
}

/// One request: pick and release with success.
pub fn one(up: &Upstream, now: Instant, key: &PickKey) -> char {
    let mut tried = Tried::new(up);
    let peer = up.pick(now, key, &mut tried).unwrap();
    up.release(now, peer, Outcome::Success);
    letter(up, peer)
}

/// `n` sequential requests, each released before the next, like sequential curl calls.
pub fn sequence(up: &Upstream, now: Instant, key: &PickKey, n: usize) -> String {
    (0..n).map(|_| one(up, now, key)).collect()
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}
