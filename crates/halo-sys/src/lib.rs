//! Linux specifics for the VRRP driver: raw IP protocol 112 sockets, interface facts, netlink address
//! management and monitoring, gratuitous ARP and unsolicited neighbour advertisements.
//!
//! This is the only crate of the workspace that may use `unsafe`; every block carries a SAFETY comment.
//! Sockets are created in the network namespace of the calling thread, and the async types need a tokio
//! runtime (with IO enabled) to be current when they are constructed.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::net::{IpAddr, Ipv4Addr};
//!
//! use futures::StreamExt;
//! use halo_sys::{AddressManager, Announcer, Interface, IpFamily, NetEvent, VrrpSocket, VRRP_GROUP_V4};
//!
//! let eth0 = Interface::by_name("eth0")?;
//! let socket = VrrpSocket::open("eth0", IpFamily::V4, true)?;
//! if let Some(primary) = eth0.primary_ipv4() {
//!     let advert = [0x31, 51, 100, 1, 0, 100, 0, 0, 198, 18, 0, 100]; // built by halo-vrrp
//!     socket.send(primary.into(), VRRP_GROUP_V4.into(), &advert).await?;
//! }
//! let received = socket.recv().await?; // engine checks ttl == 255, checksum, ...
//!
//! let addresses = AddressManager::new()?;
//! let vip = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100));
//! addresses.add(eth0.index, vip, 24).await?;
//! Announcer::new(eth0.index, eth0.mac)?.send_garp(Ipv4Addr::new(198, 18, 0, 100))?;
//!
//! let mut events = addresses.watch()?;
//! while let Some(NetEvent::Addr(change)) = events.next().await {
//!     if change.ip == vip && !change.added {
//!         addresses.add(eth0.index, vip, 24).await?; // someone removed our VIP: put it back
//!     }
//! }
//! # let _ = received;
//! # Ok(())
//! # }
//! ```
#![allow(unsafe_code)]

mod address_manager;
mod allocator;
mod announcer;
mod error;
mod interface;
mod ipv4_header;
mod local_time;
mod neighbour_frames;
mod net_events;
mod vrrp_socket;

pub use address_manager::AddressManager;
pub use allocator::{release_free_memory, retain_freed_memory, RETAINED_FREE_MEMORY};
pub use announcer::Announcer;
pub use error::{Result, SysError};
pub use interface::Interface;
pub use local_time::local_utc_offset;
pub use neighbour_frames::{gratuitous_arp_frame, unsolicited_na_frame, NaFlags};
pub use net_events::{AddrEvent, LinkEvent, NetEvent, NetEventStream};
pub use vrrp_socket::{
    IpFamily, Received, VrrpSocket, VRRP_GROUP_V4, VRRP_GROUP_V6, VRRP_PROTOCOL,
};
