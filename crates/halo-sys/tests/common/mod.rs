//! Shared set-up for halo-sys's namespace tests: a two-host LAN and helpers to build things inside a host.
#![allow(clippy::unwrap_used, dead_code)]

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use halo_testkit::{Lan, Netns};

pub const A_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);
pub const B_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 12);
pub const A_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x198, 0x18, 0, 0, 0, 0, 0x11);
pub const B_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x198, 0x18, 0, 0, 0, 0, 0x12);
/// Bound on every wait for something that should happen at once on a veth LAN.
pub const PROMPTLY: Duration = Duration::from_secs(5);

/// Hosts `a` and `b` on one switch, with IPv4 and ULA IPv6 addresses.
pub fn two_hosts(tag: &str) -> Lan {
    let lan = Lan::new(tag, &["a", "b"]).unwrap();
    lan.add_addr("a", &format!("{A_V4}/24")).unwrap();
    lan.add_addr("b", &format!("{B_V4}/24")).unwrap();
    lan.add_addr("a", &format!("{A_V6}/64")).unwrap();
    lan.add_addr("b", &format!("{B_V6}/64")).unwrap();
    lan
}

/// Runs `make` inside `ns` with the current tokio runtime entered, so that sockets and netlink
/// connections it creates belong to `ns` and are registered with this runtime.
pub fn inside<R: Send>(ns: &Netns, make: impl FnOnce() -> R + Send) -> R {
    let runtime = tokio::runtime::Handle::current();
    ns.run_in(move || {
        let _entered = runtime.enter();
        make()
    })
    .unwrap()
}

/// Awaits `future` for at most [`PROMPTLY`].
pub async fn promptly<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PROMPTLY, future).await {
        Ok(value) => value,
        Err(_) => panic!("{what}: nothing within {PROMPTLY:?}"),
    }
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
