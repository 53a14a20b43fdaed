//! A stream of address and link changes from rtnetlink multicast groups.

use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::mpsc::UnboundedReceiver;
use futures::Stream;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::link::{LinkFlags, LinkMessage};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::sys::SocketAddr;
use rtnetlink::MulticastGroup;
use tokio::task::JoinHandle;

use crate::address_manager::address_of;
use crate::error::{IoContext, Result};

/// An address appeared on or disappeared from an interface (RTM_NEWADDR / RTM_DELADDR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrEvent {
    /// Interface index.
    pub ifindex: u32,
    /// The address.
    pub ip: IpAddr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// `true` for added (or changed), `false` for removed.
    pub added: bool,
}

/// A link changed state (RTM_NEWLINK / RTM_DELLINK). The kernel sends RTM_NEWLINK for many kinds of change,
/// so consecutive events may repeat the same `up` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkEvent {
    /// Interface index.
    pub ifindex: u32,
    /// Administratively up and running (IFF_UP and IFF_RUNNING); `false` when the link was deleted.
    pub up: bool,
}

/// One change reported by [`NetEventStream`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetEvent {
    /// An address change.
    Addr(AddrEvent),
    /// A link state change.
    Link(LinkEvent),
}

/// Address and link changes of the network namespace the stream was created in.
///
/// Netlink multicast is lossy under pressure (the socket buffer can overflow); treat events as hints and
/// re-read the state ([`crate::AddressManager::addresses`], [`crate::Interface::by_name`]) periodically too.
/// The stream ends if the netlink connection dies. Dropping it closes the socket.
#[derive(Debug)]
pub struct NetEventStream {
    messages: UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>,
    connection: JoinHandle<()>,
}

impl NetEventStream {
    /// Opens a netlink socket subscribed to RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR and RTNLGRP_IPV6_IFADDR. Needs a
    /// current tokio runtime. Events start with the first change after this call.
    pub fn subscribe() -> Result<NetEventStream> {
        let (connection, _handle, messages) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Link,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
        ])
        .context(|| "subscribing to rtnetlink address and link groups".to_string())?;
        let connection = tokio::spawn(connection);
        Ok(NetEventStream {
            messages,
            connection,
        })
    }
}

impl Drop for NetEventStream {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Stream for NetEventStream {
    type Item = NetEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<NetEvent>> {
        loop {
            match Pin::new(&mut self.messages).poll_next(cx) {
                Poll::Ready(Some((message, _))) => {
                    if let Some(event) = to_event(message.payload) {
                        return Poll::Ready(Some(event));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

fn to_event(payload: NetlinkPayload<RouteNetlinkMessage>) -> Option<NetEvent> {
    let NetlinkPayload::InnerMessage(message) = payload else {
        return None;
    };
    let (address, added) = match message {
        RouteNetlinkMessage::NewAddress(m) => (m, true),
        RouteNetlinkMessage::DelAddress(m) => (m, false),
        RouteNetlinkMessage::NewLink(m) => {
            return Some(NetEvent::Link(LinkEvent {
                ifindex: m.header.index,
                up: link_is_up(&m),
            }))
        }
        RouteNetlinkMessage::DelLink(m) => {
            return Some(NetEvent::Link(LinkEvent {
                ifindex: m.header.index,
                up: false,
            }))
        }
        _ => return None,
    };
    let ip = address_of(&address)?;
    Some(NetEvent::Addr(AddrEvent {
        ifindex: address.header.index,
        ip,
        prefix_len: address.header.prefix_len,
        added,
    }))
}

fn link_is_up(message: &LinkMessage) -> bool {
    message
        .header
        .flags
        .contains(LinkFlags::Up | LinkFlags::Running)
}
