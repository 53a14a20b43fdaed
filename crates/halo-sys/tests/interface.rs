//! Interface facts read inside a namespace, as root.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::Ipv4Addr;

use common::{inside, two_hosts, A_V4};
use halo_sys::{Interface, SysError};
use halo_testkit::{link_mac, require_root};

#[tokio::test]
async fn reads_index_mac_primary_address_link_local_and_state() {
    if !require_root("reads_index_mac_primary_address_link_local_and_state") {
        return;
    }
    let lan = two_hosts("sys-if");
    let a = lan.host("a");
    // A secondary in the same subnet and a /32 VIP: neither may become the primary.
    lan.add_addr("a", "198.18.0.100/24").unwrap();
    lan.add_addr("a", "198.18.1.100/32").unwrap();
    let eth0 = inside(a, || Interface::by_name("eth0")).unwrap();

    let index: u32 = a
        .exec_checked(&["cat", "/sys/class/net/eth0/ifindex"])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(eth0.index, index);
    let mac = eth0
        .mac
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    assert_eq!(Some(mac), link_mac(a, "eth0"));
    assert_eq!(eth0.primary_ipv4(), Some(A_V4));
    let all = eth0.ipv4_addresses();
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(
        all.contains(&Ipv4Addr::new(198, 18, 0, 100))
            && all.contains(&Ipv4Addr::new(198, 18, 1, 100))
    );
    assert!(eth0.link_local_ipv6().unwrap().is_unicast_link_local());
    assert!(eth0.is_up());

    a.exec_checked(&["ip", "link", "set", "eth0", "down"])
        .unwrap();
    assert!(!inside(a, || Interface::by_name("eth0")).unwrap().is_up());

    let missing = inside(a, || Interface::by_name("nope0")).unwrap_err();
    assert!(matches!(missing, SysError::NoSuchInterface(_)), "{missing}");
}
