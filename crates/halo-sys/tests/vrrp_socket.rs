//! VrrpSocket between two namespaces on a bridge: v4/v6 × multicast/unicast, as root.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::{inside, promptly, two_hosts, A_V4, A_V6, B_V4, B_V6};
use halo_sys::{Interface, IpFamily, VrrpSocket, VRRP_GROUP_V4, VRRP_GROUP_V6};
use halo_testkit::require_root;

/// A VRRPv3-looking message; bytes 6..8 stand for the checksum, which must arrive exactly as sent (the
/// kernel must not compute or rewrite it).
const PAYLOAD: [u8; 12] = [0x31, 51, 100, 1, 0x00, 0x64, 0xde, 0xad, 198, 18, 0, 100];

async fn exchange(tag: &str, family: IpFamily, multicast: bool) {
    let lan = two_hosts(tag);
    let (a, b) = (lan.host("a"), lan.host("b"));
    let a_sock = inside(a, || VrrpSocket::open("eth0", family, multicast)).unwrap();
    let b_sock = inside(b, || VrrpSocket::open("eth0", family, multicast)).unwrap();
    let b_if = inside(b, || Interface::by_name("eth0")).unwrap();
    let a_if = inside(a, || Interface::by_name("eth0")).unwrap();

    let (src, dst): (IpAddr, IpAddr) = match (family, multicast) {
        (IpFamily::V4, true) => (a_if.primary_ipv4().unwrap().into(), VRRP_GROUP_V4.into()),
        (IpFamily::V4, false) => (A_V4.into(), B_V4.into()),
        (IpFamily::V6, true) => (a_if.link_local_ipv6().unwrap().into(), VRRP_GROUP_V6.into()),
        (IpFamily::V6, false) => (A_V6.into(), B_V6.into()),
    };
    a_sock.send(src, dst, &PAYLOAD).await.unwrap();
    let got = promptly("advert at b", b_sock.recv()).await.unwrap();
    assert_eq!(got.src, src);
    assert_eq!(got.dst, dst);
    assert_eq!(
        got.ttl, 255,
        "RFC 5798 §5.1.1.3/§5.1.2.3: sent with TTL/hop limit 255"
    );
    assert_eq!(got.ifindex, b_if.index);
    assert_eq!(got.payload, PAYLOAD);

    // Multicast loop is off: the sender does not hear itself.
    let echoed = tokio::time::timeout(Duration::from_millis(300), a_sock.recv()).await;
    assert!(
        echoed.is_err(),
        "sender received its own advert: {echoed:?}"
    );
}

#[tokio::test]
async fn ipv4_multicast_advert_arrives_with_ttl_255_and_exact_payload() {
    if require_root("ipv4_multicast_advert_arrives_with_ttl_255_and_exact_payload") {
        exchange("sys-v4m", IpFamily::V4, true).await;
    }
}

#[tokio::test]
async fn ipv4_unicast_advert_arrives() {
    if require_root("ipv4_unicast_advert_arrives") {
        exchange("sys-v4u", IpFamily::V4, false).await;
    }
}

#[tokio::test]
async fn ipv6_multicast_advert_arrives_from_link_local_with_hop_limit_255() {
    if require_root("ipv6_multicast_advert_arrives_from_link_local_with_hop_limit_255") {
        exchange("sys-v6m", IpFamily::V6, true).await;
    }
}

#[tokio::test]
async fn ipv6_unicast_advert_arrives() {
    if require_root("ipv6_unicast_advert_arrives") {
        exchange("sys-v6u", IpFamily::V6, false).await;
    }
}

#[tokio::test]
async fn source_address_is_the_one_asked_for() {
    if !require_root("source_address_is_the_one_asked_for") {
        return;
    }
    let lan = two_hosts("sys-src");
    lan.add_addr("a", "198.18.0.100/24").unwrap();
    let a_sock = inside(lan.host("a"), || {
        VrrpSocket::open("eth0", IpFamily::V4, true)
    })
    .unwrap();
    let b_sock = inside(lan.host("b"), || {
        VrrpSocket::open("eth0", IpFamily::V4, true)
    })
    .unwrap();
    let vip: IpAddr = "198.18.0.100".parse().unwrap();
    a_sock
        .send(vip, VRRP_GROUP_V4.into(), &PAYLOAD)
        .await
        .unwrap();
    assert_eq!(
        promptly("advert at b", b_sock.recv()).await.unwrap().src,
        vip
    );
    a_sock
        .send(A_V4.into(), VRRP_GROUP_V4.into(), &PAYLOAD)
        .await
        .unwrap();
    assert_eq!(
        promptly("advert at b", b_sock.recv()).await.unwrap().src,
        IpAddr::from(A_V4)
    );
}

#[tokio::test]
async fn mismatched_family_is_refused_before_sending() {
    if !require_root("mismatched_family_is_refused_before_sending") {
        return;
    }
    let lan = two_hosts("sys-fam");
    let sock = inside(lan.host("a"), || {
        VrrpSocket::open("eth0", IpFamily::V4, false)
    })
    .unwrap();
    let err = sock
        .send(A_V6.into(), B_V6.into(), &PAYLOAD)
        .await
        .unwrap_err();
    assert!(
        matches!(err, halo_sys::SysError::FamilyMismatch(_)),
        "{err}"
    );
    let missing = inside(lan.host("a"), || {
        VrrpSocket::open("nope0", IpFamily::V4, false)
    })
    .unwrap_err();
    assert!(
        matches!(missing, halo_sys::SysError::NoSuchInterface(_)),
        "{missing}"
    );
}

/// RFC 5798 §7.1: the receiver must see the TTL / hop limit the packet really carried (a forwarded advert
/// arrives with less than 255 and must be dropped by the engine), not a constant.
#[tokio::test]
async fn ttl_and_hop_limit_are_reported_as_received() {
    if !require_root("ttl_and_hop_limit_are_reported_as_received") {
        return;
    }
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};

    let lan = two_hosts("sys-ttl");
    let b_v4 = inside(lan.host("b"), || {
        VrrpSocket::open("eth0", IpFamily::V4, false)
    })
    .unwrap();
    let b_v6 = inside(lan.host("b"), || {
        VrrpSocket::open("eth0", IpFamily::V6, false)
    })
    .unwrap();
    // A plain raw socket in a that sends like a router one hop away would have forwarded.
    let (forged_v4, forged_v6) = lan
        .host("a")
        .run_in(|| {
            let v4 = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).unwrap();
            v4.set_ttl_v4(254).unwrap();
            let v6 = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(112))).unwrap();
            v6.set_unicast_hops_v6(254).unwrap();
            (v4, v6)
        })
        .unwrap();
    let to_v4 = SockAddr::from(SocketAddr::V4(SocketAddrV4::new(B_V4, 0)));
    forged_v4.send_to(&PAYLOAD, &to_v4).unwrap();
    let got = promptly("v4 at b", b_v4.recv()).await.unwrap();
    assert_eq!(
        (got.ttl, got.src, got.payload.as_slice()),
        (254, IpAddr::from(A_V4), PAYLOAD.as_slice())
    );

    let to_v6 = SockAddr::from(SocketAddr::V6(SocketAddrV6::new(B_V6, 0, 0, 0)));
    forged_v6.send_to(&PAYLOAD, &to_v6).unwrap();
    let got = promptly("v6 at b", b_v6.recv()).await.unwrap();
    assert_eq!(
        (got.ttl, got.src, got.payload.as_slice()),
        (254, IpAddr::from(A_V6), PAYLOAD.as_slice())
    );
}

/// keepalived's IPv6 unicast peers: the source stays the link-local address (RFC 5798 §5.1.2.1) while the
/// peer may be named by its link-local (needs the scope id, set by `send`) or by a global address.
#[tokio::test]
async fn ipv6_unicast_from_link_local_reaches_link_local_and_global_peers() {
    if !require_root("ipv6_unicast_from_link_local_reaches_link_local_and_global_peers") {
        return;
    }
    let lan = two_hosts("sys-v6ll");
    let (a, b) = (lan.host("a"), lan.host("b"));
    let a_sock = inside(a, || VrrpSocket::open("eth0", IpFamily::V6, false)).unwrap();
    let b_sock = inside(b, || VrrpSocket::open("eth0", IpFamily::V6, false)).unwrap();
    let a_ll: IpAddr = inside(a, || Interface::by_name("eth0"))
        .unwrap()
        .link_local_ipv6()
        .unwrap()
        .into();
    let b_ll: IpAddr = inside(b, || Interface::by_name("eth0"))
        .unwrap()
        .link_local_ipv6()
        .unwrap()
        .into();
    for dst in [b_ll, IpAddr::from(B_V6)] {
        a_sock.send(a_ll, dst, &PAYLOAD).await.unwrap();
        let got = promptly("advert at b", b_sock.recv()).await.unwrap();
        assert_eq!((got.src, got.dst, got.ttl), (a_ll, dst, 255));
    }
}
