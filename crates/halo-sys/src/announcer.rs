//! Sending gratuitous ARP and unsolicited NA frames out of one interface (AF_PACKET).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use socket2::{Domain, Socket, Type};

use crate::error::{IoContext, Result};
use crate::neighbour_frames::{gratuitous_arp_frame, unsolicited_na_frame, NaFlags};

/// Tells the LAN that virtual addresses now live at our MAC, by writing whole Ethernet frames on a packet
/// socket. Works whether or not the address is configured yet, and needs no IPv6 DAD.
#[derive(Debug)]
pub struct Announcer {
    socket: Socket,
    ifindex: u32,
    mac: [u8; 6],
    na_flags: NaFlags,
}

impl Announcer {
    /// Opens a send-only packet socket (protocol 0: it receives nothing) for interface `ifindex`, whose MAC
    /// is `mac`. Needs CAP_NET_RAW.
    pub fn new(ifindex: u32, mac: [u8; 6]) -> Result<Announcer> {
        let socket = Socket::new(Domain::PACKET, Type::RAW, None)
            .context(|| "AF_PACKET socket".to_string())?;
        Ok(Announcer {
            socket,
            ifindex,
            mac,
            na_flags: NaFlags::default(),
        })
    }

    /// Sets the Router flag of future neighbour advertisements (default off; see [`NaFlags::router`]).
    pub fn set_router_flag(&mut self, router: bool) {
        self.na_flags.router = router;
    }

    /// Broadcasts one gratuitous ARP request for `ip` (RFC 5798 §6.4.1, RFC 5227 §3).
    pub fn send_garp(&self, ip: Ipv4Addr) -> Result<()> {
        self.send_frame(&gratuitous_arp_frame(self.mac, ip), [0xff; 6], 0x0806)
            .context(|| format!("gratuitous ARP for {ip}"))
    }

    /// Sends one unsolicited neighbour advertisement for `ip` to ff02::1 (RFC 5798 §6.4.1, RFC 4861 §7.2.6):
    /// S=0, O=1, R per [`Announcer::set_router_flag`], hop limit 255.
    pub fn send_unsolicited_na(&self, ip: Ipv6Addr) -> Result<()> {
        self.send_frame(
            &unsolicited_na_frame(self.mac, ip, self.na_flags),
            [0x33, 0x33, 0, 0, 0, 1],
            0x86dd,
        )
        .context(|| format!("unsolicited NA for {ip}"))
    }

    fn send_frame(&self, frame: &[u8], dst_mac: [u8; 6], ethertype: u16) -> std::io::Result<()> {
        let mut addr_bytes = [0u8; 8];
        addr_bytes[..6].copy_from_slice(&dst_mac);
        let address = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: ethertype.to_be(),
            sll_ifindex: i32::try_from(self.ifindex).map_err(std::io::Error::other)?,
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 6,
            sll_addr: addr_bytes,
        };
        // SAFETY: the fd is an open packet socket owned by `self.socket`; `frame` is a valid buffer of
        // `frame.len()` bytes for the duration of the call; `address` is a fully initialised sockaddr_ll and
        // the length passed is exactly its size.
        let sent = unsafe {
            libc::sendto(
                self.socket.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                std::ptr::from_ref(&address).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if sent < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}
