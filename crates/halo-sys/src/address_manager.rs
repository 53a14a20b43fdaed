//! Adding and removing addresses over rtnetlink.

use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use rtnetlink::{AddressMessageBuilder, Handle};
use tokio::task::JoinHandle;

use crate::error::{IoContext, Result, SysError};
use crate::net_events::NetEventStream;

/// Adds and removes interface addresses (VIPs) through a netlink connection owned by a tokio task, in the
/// network namespace of the thread that created it.
#[derive(Debug)]
pub struct AddressManager {
    handle: Handle,
    connection: JoinHandle<()>,
}

impl AddressManager {
    /// Opens the netlink connection and spawns its task. Needs a current tokio runtime.
    pub fn new() -> Result<AddressManager> {
        let (connection, handle, _unsolicited) =
            rtnetlink::new_connection().context(|| "opening rtnetlink socket".to_string())?;
        let connection = tokio::spawn(connection);
        Ok(AddressManager { handle, connection })
    }

    /// Adds `ip/prefix_len` to interface `ifindex`. Already present counts as success (EEXIST). IPv6
    /// addresses are added with IFA_F_NODAD so they are usable at once (a VIP must not sit tentative while
    /// we are master; the VRRP election already guarantees uniqueness).
    pub async fn add(&self, ifindex: u32, ip: IpAddr, prefix_len: u8) -> Result<()> {
        let mut request = self.handle.address().add(ifindex, ip, prefix_len);
        if ip.is_ipv6() {
            let message = request.message_mut();
            message.header.flags |= AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        match request.execute().await {
            Ok(()) => Ok(()),
            Err(err) if netlink_errno(&err) == Some(libc::EEXIST) => Ok(()),
            Err(source) => Err(SysError::Netlink {
                operation: format!("add {ip}/{prefix_len} on ifindex {ifindex}"),
                source,
            }),
        }
    }

    /// Removes `ip/prefix_len` from interface `ifindex`. Already absent counts as success (EADDRNOTAVAIL).
    pub async fn remove(&self, ifindex: u32, ip: IpAddr, prefix_len: u8) -> Result<()> {
        match self
            .handle
            .address()
            .del(address_message(ifindex, ip, prefix_len))
            .execute()
            .await
        {
            Ok(()) => Ok(()),
            Err(err) if netlink_errno(&err) == Some(libc::EADDRNOTAVAIL) => Ok(()),
            Err(source) => Err(SysError::Netlink {
                operation: format!("remove {ip}/{prefix_len} from ifindex {ifindex}"),
                source,
            }),
        }
    }

    /// The addresses currently on interface `ifindex`, with their prefix lengths, in kernel order.
    pub async fn addresses(&self, ifindex: u32) -> Result<Vec<(IpAddr, u8)>> {
        let mut dump = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute();
        let mut found = Vec::new();
        loop {
            match dump.try_next().await {
                Ok(Some(message)) => {
                    if let Some(ip) = address_of(&message) {
                        found.push((ip, message.header.prefix_len));
                    }
                }
                Ok(None) => return Ok(found),
                Err(source) => {
                    return Err(SysError::Netlink {
                        operation: format!("list addresses of ifindex {ifindex}"),
                        source,
                    })
                }
            }
        }
    }

    /// Subscribes to address and link changes of this namespace (RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR,
    /// RTNLGRP_LINK) on a new netlink socket. See [`NetEventStream`].
    pub fn watch(&self) -> Result<NetEventStream> {
        NetEventStream::subscribe()
    }
}

impl Drop for AddressManager {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

fn address_message(ifindex: u32, ip: IpAddr, prefix_len: u8) -> AddressMessage {
    match ip {
        IpAddr::V4(v4) => AddressMessageBuilder::<std::net::Ipv4Addr>::new()
            .index(ifindex)
            .address(v4, prefix_len)
            .build(),
        IpAddr::V6(v6) => AddressMessageBuilder::<std::net::Ipv6Addr>::new()
            .index(ifindex)
            .address(v6, prefix_len)
            .build(),
    }
}

/// The interface address of an RTM_*ADDR message: IFA_LOCAL when present (IPv4; IFA_ADDRESS is the peer on
/// point-to-point links), else IFA_ADDRESS (IPv6).
pub(crate) fn address_of(message: &AddressMessage) -> Option<IpAddr> {
    let local = message.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    local.or_else(|| {
        message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })
}

/// The positive errno of a kernel refusal.
fn netlink_errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(message) => Some(message.raw_code().abs()),
        _ => None,
    }
}
