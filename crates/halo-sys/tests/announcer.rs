//! Gratuitous ARP and unsolicited NA from one namespace update the neighbour cache of another, as root.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::{inside, ip, two_hosts, PROMPTLY};
use halo_sys::{Announcer, Interface};
use halo_testkit::{neigh_mac, require_root, wait_until, Netns};

const STALE_MAC: &str = "02:00:00:00:00:99";

fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Makes `host` map `vip` to [`STALE_MAC`] with a stale entry, as an old master would have left it.
fn plant_stale_entry(host: &Netns, vip: IpAddr) {
    let vip_text = vip.to_string();
    let mut cmd = vec!["ip"];
    if vip.is_ipv6() {
        cmd.push("-6");
    }
    cmd.extend([
        "neigh", "replace", &vip_text, "lladdr", STALE_MAC, "dev", "eth0", "nud", "stale",
    ]);
    host.exec_checked(&cmd).unwrap();
    assert_eq!(neigh_mac(host, vip).as_deref(), Some(STALE_MAC));
}

/// An announcer on `host`'s eth0, with that interface.
fn announcer_on_eth0(host: &Netns) -> (Announcer, Interface) {
    inside(host, || {
        let eth0 = Interface::by_name("eth0").unwrap();
        (Announcer::new(eth0.index, eth0.mac).unwrap(), eth0)
    })
}

/// Waits (at most [`PROMPTLY`]) until `peer` maps `vip` to `mac`; panics otherwise.
fn await_neighbour_mac(peer: &Netns, vip: IpAddr, mac: [u8; 6]) {
    let want = mac_string(mac);
    wait_until(PROMPTLY, Duration::from_millis(20), || {
        neigh_mac(peer, vip).as_deref() == Some(want.as_str())
    })
    .unwrap_or_else(|_| panic!("b still maps the VIP to {:?}", neigh_mac(peer, vip)));
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
    plant_stale_entry(b, vip);

    let (announcer, a_if) = announcer_on_eth0(a);
    announcer
        .send_garp("198.18.0.100".parse().unwrap())
        .unwrap();
    await_neighbour_mac(b, vip, a_if.mac);
}

#[tokio::test]
async fn unsolicited_na_overrides_the_peer_neighbour_entry() {
    if !require_root("unsolicited_na_overrides_the_peer_neighbour_entry") {
        return;
    }
    let lan = two_hosts("sys-na");
    let (a, b) = (lan.host("a"), lan.host("b"));
    let vip = ip("fd00:198:18::100");
    plant_stale_entry(b, vip);

    let (announcer, a_if) = announcer_on_eth0(a);
    // The NA needs a valid checksum and hop limit 255, or b's kernel drops it (RFC 4861 §7.1.2).
    announcer
        .send_unsolicited_na("fd00:198:18::100".parse().unwrap())
        .unwrap();
    await_neighbour_mac(b, vip, a_if.mac);
}
