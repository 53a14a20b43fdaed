//! AddressManager and the netlink event stream inside a namespace, as root.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;

use common::{inside, ip, promptly, two_hosts};
use futures::StreamExt;
use halo_sys::{AddrEvent, AddressManager, Interface, LinkEvent, NetEvent, NetEventStream};
use halo_testkit::{has_address, require_root};

async fn next_matching(
    events: &mut NetEventStream,
    what: &str,
    wanted: impl Fn(&NetEvent) -> bool,
) -> NetEvent {
    promptly(what, async {
        loop {
            let event = events.next().await.unwrap();
            if wanted(&event) {
                return event;
            }
        }
    })
    .await
}

#[tokio::test]
async fn add_and_remove_are_idempotent_and_visible_to_ip() {
    if !require_root("add_and_remove_are_idempotent_and_visible_to_ip") {
        return;
    }
    let lan = two_hosts("sys-addr");
    let a = lan.host("a");
    let (manager, ifindex) = inside(a, || {
        (
            AddressManager::new().unwrap(),
            Interface::by_name("eth0").unwrap().index,
        )
    });
    let vip4 = ip("198.18.0.100");
    let vip6 = ip("fd00:198:18::100");

    manager.add(ifindex, vip4, 24).await.unwrap();
    manager.add(ifindex, vip4, 24).await.unwrap(); // EEXIST is success
    manager.add(ifindex, vip6, 64).await.unwrap();
    manager.add(ifindex, vip6, 64).await.unwrap();
    assert!(has_address(a, "eth0", vip4));
    assert!(has_address(a, "eth0", vip6));
    let listed = manager.addresses(ifindex).await.unwrap();
    assert!(
        listed.contains(&(vip4, 24)) && listed.contains(&(vip6, 64)),
        "{listed:?}"
    );

    // IFA_F_NODAD: the IPv6 VIP is never tentative.
    let shown = a
        .exec_checked(&["ip", "-6", "addr", "show", "dev", "eth0"])
        .unwrap();
    let line = shown
        .lines()
        .find(|l| l.contains("fd00:198:18::100/64"))
        .unwrap();
    assert!(
        line.contains("nodad") && !line.contains("tentative"),
        "{line}"
    );

    manager.remove(ifindex, vip4, 24).await.unwrap();
    manager.remove(ifindex, vip4, 24).await.unwrap(); // EADDRNOTAVAIL is success
    manager.remove(ifindex, vip6, 64).await.unwrap();
    manager.remove(ifindex, vip6, 64).await.unwrap();
    assert!(!has_address(a, "eth0", vip4));
    assert!(!has_address(a, "eth0", vip6));
    // The host's own addresses are untouched.
    assert!(has_address(a, "eth0", common::A_V4.into()));

    // A real failure is still an error: no such interface.
    let err = manager.add(999_999, vip4, 24).await.unwrap_err();
    assert!(matches!(err, halo_sys::SysError::Netlink { .. }), "{err}");
}

#[tokio::test]
async fn watch_reports_external_address_removal_and_link_changes() {
    if !require_root("watch_reports_external_address_removal_and_link_changes") {
        return;
    }
    let lan = two_hosts("sys-watch");
    let a = lan.host("a");
    let (manager, mut events, ifindex) = inside(a, || {
        let manager = AddressManager::new().unwrap();
        let events = manager.watch().unwrap();
        (manager, events, Interface::by_name("eth0").unwrap().index)
    });
    let vip: IpAddr = ip("198.18.0.100");

    manager.add(ifindex, vip, 24).await.unwrap();
    let added = next_matching(
        &mut events,
        "RTM_NEWADDR",
        |e| matches!(e, NetEvent::Addr(a) if a.ip == vip),
    )
    .await;
    assert_eq!(
        added,
        NetEvent::Addr(AddrEvent {
            ifindex,
            ip: vip,
            prefix_len: 24,
            added: true
        })
    );

    // Someone else deletes our VIP (keepalived issue #836 scenario): we must hear of it.
    a.exec_checked(&["ip", "addr", "del", "198.18.0.100/24", "dev", "eth0"])
        .unwrap();
    let removed = next_matching(
        &mut events,
        "RTM_DELADDR",
        |e| matches!(e, NetEvent::Addr(a) if a.ip == vip && !a.added),
    )
    .await;
    assert_eq!(
        removed,
        NetEvent::Addr(AddrEvent {
            ifindex,
            ip: vip,
            prefix_len: 24,
            added: false
        })
    );

    // IPv6 too.
    let vip6 = ip("fd00:198:18::100");
    manager.add(ifindex, vip6, 64).await.unwrap();
    a.exec_checked(&["ip", "addr", "del", "fd00:198:18::100/64", "dev", "eth0"])
        .unwrap();
    next_matching(
        &mut events,
        "RTM_DELADDR v6",
        |e| matches!(e, NetEvent::Addr(a) if a.ip == vip6 && !a.added),
    )
    .await;

    // Cable pulled at the switch: carrier goes, the link is reported down; plugged back: up.
    lan.set_port_up("a", false).unwrap();
    next_matching(&mut events, "link down", |e| {
        *e == NetEvent::Link(LinkEvent { ifindex, up: false })
    })
    .await;
    assert!(!inside(a, || Interface::by_name("eth0")).unwrap().is_up());
    lan.set_port_up("a", true).unwrap();
    next_matching(&mut events, "link up", |e| {
        *e == NetEvent::Link(LinkEvent { ifindex, up: true })
    })
    .await;
    assert!(inside(a, || Interface::by_name("eth0")).unwrap().is_up());
}
