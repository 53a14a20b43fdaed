//! Golden adverts captured from keepalived 2.2.7 (tests/fixtures/README.md): our decoder accepts them
//! with a valid checksum, and our instances, configured alike, send byte-identical packets.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use halo_vrrp::{Action, Advert, Authentication, Instance, InstanceConfig, State, Version};

struct Fixture {
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
    bytes: Vec<u8>,
}

fn load(name: &str) -> Fixture {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let (mut src, mut dst, mut ttl, mut bytes) = (None, None, None, Vec::new());
    for line in text.lines() {
        if let Some(meta) = line.strip_prefix("# ") {
            if let Some((key, value)) = meta.split_once(": ") {
                match key {
                    "src" => src = Some(value.parse().unwrap()),
                    "dst" => dst = Some(value.parse().unwrap()),
                    "ttl" => ttl = Some(value.parse().unwrap()),
                    _ => {}
                }
            }
        } else {
            bytes.extend(
                line.split_whitespace()
                    .map(|b| u8::from_str_radix(b, 16).unwrap()),
            );
        }
    }
    Fixture {
        src: src.unwrap(),
        dst: dst.unwrap(),
        ttl: ttl.unwrap(),
        bytes,
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pass(p: &str) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..p.len()].copy_from_slice(p.as_bytes());
    out
}

/// Sends the instance's first master advert and its shutdown advert; returns both packets.
fn master_and_stop_packets(cfg: InstanceConfig) -> (Vec<u8>, Vec<u8>) {
    let t0 = Instant::now();
    let mut vi = Instance::new(cfg, t0).unwrap();
    if vi.state() != State::Master {
        let at = vi.poll_timeout().unwrap();
        vi.handle_timeout(at);
    }
    assert_eq!(vi.state(), State::Master);
    let first = first_advert(&mut vi);
    vi.shutdown(t0 + Duration::from_secs(10));
    let stop = first_advert(&mut vi);
    (first, stop)
}

fn first_advert(vi: &mut Instance) -> Vec<u8> {
    let mut found = None;
    while let Some(action) = vi.poll_action() {
        if let Action::SendAdvert { packet, .. } = action {
            found.get_or_insert(packet);
        }
    }
    found.unwrap()
}

#[test]
fn v2_pass_auth_matches_keepalived() {
    // RFC 3768 §5.3: Auth Type 1, Adver Int 1 s, 8-byte Authentication Data trailer "1111\0\0\0\0".
    let fx = load("v2_ipv4_vrid51.hex");
    assert_eq!(fx.ttl, 255);
    let advert = Advert::decode(&fx.bytes, fx.src, fx.dst).unwrap();
    assert_eq!(advert.version, Version::V2);
    assert_eq!(
        (advert.vrid, advert.priority, advert.adver_int),
        (51, 100, 1)
    );
    assert_eq!(
        advert.authentication,
        Authentication::Password(pass("1111"))
    );
    assert_eq!(
        advert.addresses,
        vec![ip("198.18.0.242"), ip("198.18.0.243")]
    );
    assert_eq!(advert.encode(fx.src, fx.dst).unwrap(), fx.bytes);
    assert_eq!(halo_vrrp::packet::peek_vrid(&fx.bytes), Some(51));

    let mut cfg = InstanceConfig::new("V2_PASS", 51, fx.src, advert.addresses.clone());
    cfg.auth_pass = Some(pass("1111"));
    let (first, stop) = master_and_stop_packets(cfg);
    assert_eq!(first, fx.bytes);
    assert_eq!(stop, load("v2_ipv4_vrid51_prio0.hex").bytes);
}

#[test]
fn v2_no_auth_matches_keepalived() {
    let fx = load("v2_ipv4_vrid54.hex");
    let advert = Advert::decode(&fx.bytes, fx.src, fx.dst).unwrap();
    assert_eq!(advert.authentication, Authentication::None);
    let mut cfg = InstanceConfig::new(
        "V2_NOAUTH_STATE_MASTER",
        54,
        fx.src,
        vec![ip("198.18.0.244")],
    );
    cfg.start_as_master = true;
    let (first, stop) = master_and_stop_packets(cfg);
    assert_eq!(first, fx.bytes);
    assert_eq!(stop, load("v2_ipv4_vrid54_prio0.hex").bytes);
}

#[test]
fn v3_ipv4_pseudo_header_checksum_matches_keepalived() {
    // RFC 5798 §5.2.8; keepalived vrrp.c builds the IPv4 pseudo-header {src, dst, 0, 112, len}.
    let fx = load("v3_ipv4_vrid52.hex");
    let advert = Advert::decode(&fx.bytes, fx.src, fx.dst).unwrap();
    assert_eq!(advert.version, Version::V3);
    assert_eq!(
        (advert.vrid, advert.priority, advert.adver_int),
        (52, 150, 50)
    );
    assert_eq!(advert.addresses, vec![ip("198.18.0.252")]);
    // The same message checked against another destination must fail: the pseudo-header is covered.
    assert!(Advert::decode(&fx.bytes, fx.src, ip("198.18.0.2")).is_err());

    let mut cfg = InstanceConfig::new("V3_V4", 52, fx.src, advert.addresses.clone());
    cfg.version = Version::V3;
    cfg.priority = 150;
    cfg.advert_interval = Duration::from_millis(500);
    let (first, stop) = master_and_stop_packets(cfg);
    assert_eq!(first, fx.bytes);
    assert_eq!(stop, load("v3_ipv4_vrid52_prio0.hex").bytes);
}

#[test]
fn v3_ipv6_checksum_matches_keepalived() {
    // RFC 5798 §5.2.8 with the RFC 2460 §8.1 IPv6 pseudo-header (computed by the kernel for keepalived).
    let fx = load("v3_ipv6_vrid53.hex");
    assert!(
        fx.src.to_string().starts_with("fe80::"),
        "RFC 5798 §5.1.2.1: source is the link-local address"
    );
    let advert = Advert::decode(&fx.bytes, fx.src, fx.dst).unwrap();
    assert_eq!(
        (advert.vrid, advert.priority, advert.adver_int),
        (53, 255, 100)
    );
    assert_eq!(
        advert.addresses,
        vec![ip("fd00:198:18::100"), ip("fd00:198:18::101")]
    );

    let mut cfg = InstanceConfig::new("V3_V6", 53, fx.src, advert.addresses.clone());
    cfg.priority = 255;
    cfg.start_as_master = true;
    // keepalived.conf(5) `state`: priority 255 + state MASTER is master immediately (no timer wait).
    let vi = Instance::new(cfg.clone(), Instant::now()).unwrap();
    assert_eq!(vi.state(), State::Master);
    let (first, stop) = master_and_stop_packets(cfg);
    assert_eq!(first, fx.bytes);
    assert_eq!(stop, load("v3_ipv6_vrid53_prio0.hex").bytes);
}

#[test]
fn every_fixture_is_accepted_by_a_matching_instance() {
    // Drives the full receive path (TTL, version, VRID, auth, interval, address list, checksum).
    let cases: [(&str, InstanceConfig); 3] = [
        ("v2_ipv4_vrid51.hex", {
            let mut c = InstanceConfig::new(
                "a",
                51,
                ip("198.18.0.2"),
                vec![ip("198.18.0.242"), ip("198.18.0.243")],
            );
            c.auth_pass = Some(pass("1111"));
            c
        }),
        ("v3_ipv4_vrid52.hex", {
            let mut c = InstanceConfig::new("b", 52, ip("198.18.0.2"), vec![ip("198.18.0.252")]);
            c.version = Version::V3;
            c.advert_interval = Duration::from_millis(500);
            c
        }),
        (
            "v3_ipv6_vrid53.hex",
            InstanceConfig::new(
                "c",
                53,
                ip("fe80::2"),
                vec![ip("fd00:198:18::100"), ip("fd00:198:18::101")],
            ),
        ),
    ];
    for (name, cfg) in cases {
        let fx = load(name);
        let now = Instant::now();
        let mut vi = Instance::new(cfg, now).unwrap();
        vi.handle_packet(now, fx.src, fx.dst, fx.ttl, &fx.bytes);
        assert_eq!(vi.counters().rx_adverts, 1, "{name}: {:?}", vi.counters());
        // Ethernet padding after the message is tolerated (keepalived compares against ip tot_len).
        let mut padded = fx.bytes.clone();
        padded.resize(46, 0);
        vi.handle_packet(now, fx.src, fx.dst, fx.ttl, &padded);
        assert_eq!(vi.counters().rx_adverts, 2, "{name} padded");
    }
}
