//! Facts about one network interface: index, MAC, addresses, state.

use std::net::{Ipv4Addr, Ipv6Addr};

use nix::net::if_::InterfaceFlags;

use crate::error::{IoContext, Result, SysError};

/// A snapshot of one interface, read with `getifaddrs(3)` in the calling thread's network namespace.
///
/// Call [`Interface::by_name`] again to refresh it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Interface name, e.g. `eth0`.
    pub name: String,
    /// Kernel interface index.
    pub index: u32,
    /// Link-layer (Ethernet) address.
    pub mac: [u8; 6],
    flags: InterfaceFlags,
    ipv4: Vec<Ipv4Addr>,
    ipv6: Vec<Ipv6Addr>,
}

impl Interface {
    /// Reads the interface called `name`.
    pub fn by_name(name: &str) -> Result<Interface> {
        let index = nix::net::if_::if_nametoindex(name)
            .map_err(|_| SysError::NoSuchInterface(name.to_string()))?;
        let mut mac = None;
        let mut flags = InterfaceFlags::empty();
        let mut ipv4 = Vec::new();
        let mut ipv6 = Vec::new();
        let entries = nix::ifaddrs::getifaddrs().context(|| "getifaddrs".to_string())?;
        for entry in entries.filter(|e| e.interface_name == name) {
            flags = entry.flags;
            let Some(address) = entry.address else {
                continue;
            };
            if let Some(link) = address.as_link_addr() {
                mac = mac.or(link.addr());
            } else if let Some(v4) = address.as_sockaddr_in() {
                ipv4.push(v4.ip());
            } else if let Some(v6) = address.as_sockaddr_in6() {
                ipv6.push(v6.ip());
            }
        }
        let mac = mac.ok_or_else(|| SysError::NoMacAddress(name.to_string()))?;
        Ok(Interface {
            name: name.to_string(),
            index,
            mac,
            flags,
            ipv4,
            ipv6,
        })
    }

    /// The primary IPv4 address: the first one the kernel lists. Linux keeps every primary address ahead of
    /// the secondaries of its subnet and appends new primaries after the existing ones, so the first entry is
    /// the interface's oldest primary address — never a secondary (e.g. a VIP added inside the same subnet).
    /// A VIP in another subnet (e.g. a /32) is a primary too but comes after, unless it was there first;
    /// callers that must never pick a VIP should filter [`Interface::ipv4_addresses`] themselves.
    /// RFC 5798 §5.1.1.1 / RFC 3768 §5.2.1: VRRP adverts are sent from the primary address.
    pub fn primary_ipv4(&self) -> Option<Ipv4Addr> {
        self.ipv4.first().copied()
    }

    /// All IPv4 addresses, in kernel order.
    pub fn ipv4_addresses(&self) -> &[Ipv4Addr] {
        &self.ipv4
    }

    /// The first IPv6 link-local (fe80::/10) address: the source of VRRPv3 IPv6 adverts (RFC 5798 §5.1.2.1).
    pub fn link_local_ipv6(&self) -> Option<Ipv6Addr> {
        self.ipv6
            .iter()
            .copied()
            .find(Ipv6Addr::is_unicast_link_local)
    }

    /// All IPv6 addresses, in kernel order.
    pub fn ipv6_addresses(&self) -> &[Ipv6Addr] {
        &self.ipv6
    }

    /// Administratively up and operationally running (IFF_UP and IFF_RUNNING: carrier present).
    pub fn is_up(&self) -> bool {
        self.flags
            .contains(InterfaceFlags::IFF_UP | InterfaceFlags::IFF_RUNNING)
    }
}
