//! Gratuitous ARP and unsolicited NA from one namespace update the neighbour cache of another, as root.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{inside, ip, two_hosts, PROMPTLY};
use halo_sys::{Announcer, Interface};
use halo_testkit::{neigh_mac, require_root, wait_until};

const STALE_MAC: &str = "02:00:00:00:00:99";

fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[tokio::test]
async fn garp_moves_the_peer_neighbour_entry_to_our_mac() {
    if !require_root("garp_moves_the_peer_neighbour_entry_to_our_mac") {
        return;
    }
    let lan = two_hosts("sys-garp");
    let (a, b) = (lan.host("a"), lan.host("b"));
    let vip = ip("198.18.0.100");
    // b believes the VIP is at an old master's MAC. locktime 0: accept the update however recent the entry.
    b.exec_checked(&["sysctl", "-qw", "net.ipv4.neigh.eth0.locktime=0"])
        .unwrap();
    b.exec_checked(&[
        "ip",
        "neigh",
        "replace",
        "198.18.0.100",
        "lladdr",
        STALE_MAC,
        "dev",
        "eth0",
        "nud",
        "stale",
    ])
    .unwrap();
    assert_eq!(neigh_mac(b, vip).as_deref(), Some(STALE_MAC));

    let (announcer, a_if) = inside(a, || {
        let a_if = Interface::by_name("eth0").unwrap();
        (Announcer::new(a_if.index, a_if.mac).unwrap(), a_if)
    });
    announcer
        .send_garp("198.18.0.100".parse().unwrap())
        .unwrap();
    let want = mac_string(a_if.mac);
    wait_until(PROMPTLY, Duration::from_millis(20), || {
        neigh_mac(b, vip).as_deref() == Some(want.as_str())
    })
    .unwrap_or_else(|_| panic!("b still maps the VIP to {:?}", neigh_mac(b, vip)));
}

#[tokio::test]
async fn unsolicited_na_overrides_the_peer_neighbour_entry() {
    if !require_root("unsolicited_na_overrides_the_peer_neighbour_entry") {
        return;
    }
    let lan = two_hosts("sys-na");
    let (a, b) = (lan.host("a"), lan.host("b"));
    let vip = ip("fd00:198:18::100");
    b.exec_checked(&[
        "ip",
        "-6",
        "neigh",
        "replace",
        "fd00:198:18::100",
        "lladdr",
        STALE_MAC,
        "dev",
        "eth0",
        "nud",
        "stale",
    ])
    .unwrap();
    assert_eq!(neigh_mac(b, vip).as_deref(), Some(STALE_MAC));

    let (announcer, a_if) = inside(a, || {
        let a_if = Interface::by_name("eth0").unwrap();
        (Announcer::new(a_if.index, a_if.mac).unwrap(), a_if)
    });
    // The NA needs a valid checksum and hop limit 255, or b's kernel drops it (RFC 4861 §7.1.2).
    announcer
        .send_unsolicited_na("fd00:198:18::100".parse().unwrap())
        .unwrap();
    let want = mac_string(a_if.mac);
    wait_until(PROMPTLY, Duration::from_millis(20), || {
        neigh_mac(b, vip).as_deref() == Some(want.as_str())
    })
    .unwrap_or_else(|_| panic!("b still maps the VIP to {:?}", neigh_mac(b, vip)));
}
