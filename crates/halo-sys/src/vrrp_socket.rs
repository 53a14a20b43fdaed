//! The raw IP protocol 112 socket VRRP adverts travel on.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
    SockaddrIn, SockaddrIn6, SockaddrStorage,
};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;

use crate::error::{IoContext, Result, SysError};
use crate::ipv4_header::parse_ipv4_packet;

/// IANA protocol number of VRRP (RFC 5798 §5.1.1.4, §11).
pub const VRRP_PROTOCOL: i32 = 112;
/// The IPv4 multicast group of VRRP (RFC 5798 §5.1.1.2).
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group of VRRP (RFC 5798 §5.1.2.2).
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// TTL / hop limit of every advert (RFC 5798 §5.1.1.3, §5.1.2.3).
const VRRP_TTL: u32 = 255;
/// Type of service / traffic class of adverts: precedence "internetwork control" (RFC 791 §3.1), as
/// keepalived and holo use, so that QoS keeps adverts ahead of bulk traffic.
const TOS_INTERNETWORK_CONTROL: u32 = 0xc0;
/// Largest datagram we accept; a VRRPv3 advert with 255 IPv6 addresses is 4088 bytes plus headers.
const RECV_BUFFER: usize = 65_536;

/// Which IP version a [`VrrpSocket`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpFamily {
    /// IPv4 (VRRPv2 or VRRPv3).
    V4,
    /// IPv6 (VRRPv3).
    V6,
}

/// One received VRRP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// IP source address.
    pub src: IpAddr,
    /// IP destination address (the multicast group or our unicast address).
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit as received; RFC 5798 §7.1 requires the engine to drop anything but 255.
    pub ttl: u8,
    /// Interface the datagram arrived on.
    pub ifindex: u32,
    /// The VRRP message only (no IP header, no Ethernet padding). Its checksum is NOT verified here.
    pub payload: Vec<u8>,
}

/// A raw IP protocol 112 socket bound to one interface.
///
/// TTL, multicast TTL and hop limits are 255, multicast loopback is off (we never hear our own adverts),
/// and with `multicast` it has joined 224.0.0.18 / ff02::12 on the interface. The kernel computes no
/// checksum for VRRP: for IPv6 we leave `IPV6_CHECKSUM` unset (its default for raw sockets of other
/// protocols is off), so the engine's own checksum (RFC 5798 §5.2.8, pseudo-header included) goes out
/// untouched and received checksums are left for the engine to verify.
#[derive(Debug)]
pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    family: IpFamily,
    ifindex: u32,
    ifname: String,
}

impl VrrpSocket {
    /// Opens the socket on `ifname` in the calling thread's network namespace. Needs CAP_NET_RAW and a
    /// current tokio runtime (with IO enabled).
    pub fn open(ifname: &str, family: IpFamily, multicast: bool) -> Result<VrrpSocket> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(SysError::Io {
                context: format!("VRRP socket on {ifname}"),
                source: io::Error::other("no tokio runtime is current"),
            });
        }
        let ifindex = nix::net::if_::if_nametoindex(ifname)
            .map_err(|_| SysError::NoSuchInterface(ifname.to_string()))?;
        let ctx = |what: &str| format!("VRRP socket on {ifname}: {what}");
        let domain = match family {
            IpFamily::V4 => Domain::IPV4,
            IpFamily::V6 => Domain::IPV6,
        };
        let socket = Socket::new(domain, Type::RAW, Some(Protocol::from(VRRP_PROTOCOL)))
            .context(|| ctx("socket"))?;
        socket
            .set_nonblocking(true)
            .context(|| ctx("non-blocking"))?;
        socket
            .bind_device(Some(ifname.as_bytes()))
            .context(|| ctx("SO_BINDTODEVICE"))?;
        match family {
            IpFamily::V4 => {
                socket.set_ttl_v4(VRRP_TTL).context(|| ctx("IP_TTL"))?;
                socket
                    .set_tos_v4(TOS_INTERNETWORK_CONTROL)
                    .context(|| ctx("IP_TOS"))?;
                socket
                    .set_multicast_ttl_v4(VRRP_TTL)
                    .context(|| ctx("IP_MULTICAST_TTL"))?;
                socket
                    .set_multicast_loop_v4(false)
                    .context(|| ctx("IP_MULTICAST_LOOP"))?;
                // Deliver only the groups this socket joined, not every group of the host.
                socket
                    .set_multicast_all_v4(false)
                    .context(|| ctx("IP_MULTICAST_ALL"))?;
                setsockopt(&socket, sockopt::Ipv4PacketInfo, &true)
                    .context(|| ctx("IP_PKTINFO"))?;
                if multicast {
                    socket
                        .join_multicast_v4_n(
                            &VRRP_GROUP_V4,
                            &socket2::InterfaceIndexOrAddress::Index(ifindex),
                        )
                        .context(|| ctx("joining 224.0.0.18"))?;
                }
            }
            IpFamily::V6 => {
                socket
                    .set_unicast_hops_v6(VRRP_TTL)
                    .context(|| ctx("IPV6_UNICAST_HOPS"))?;
                socket
                    .set_tclass_v6(TOS_INTERNETWORK_CONTROL)
                    .context(|| ctx("IPV6_TCLASS"))?;
                socket
                    .set_multicast_hops_v6(VRRP_TTL)
                    .context(|| ctx("IPV6_MULTICAST_HOPS"))?;
                socket
                    .set_multicast_loop_v6(false)
                    .context(|| ctx("IPV6_MULTICAST_LOOP"))?;
                socket
                    .set_multicast_if_v6(ifindex)
                    .context(|| ctx("IPV6_MULTICAST_IF"))?;
                socket
                    .set_multicast_all_v6(false)
                    .context(|| ctx("IPV6_MULTICAST_ALL"))?;
                setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)
                    .context(|| ctx("IPV6_RECVPKTINFO"))?;
                setsockopt(&socket, sockopt::Ipv6RecvHopLimit, &true)
                    .context(|| ctx("IPV6_RECVHOPLIMIT"))?;
                if multicast {
                    socket
                        .join_multicast_v6(&VRRP_GROUP_V6, ifindex)
                        .context(|| ctx("joining ff02::12"))?;
                }
            }
        }
        // SAFETY: `socket` owns an open descriptor; the AsyncFd takes ownership of the Socket, never replaces or
        // closes it, and socket2's `as_raw_fd` always returns that same descriptor.
        let fd = unsafe { AsyncFd::register(socket) }.map_err(|err| SysError::Io {
            context: ctx("registering with tokio"),
            source: err.into(),
        })?;
        Ok(VrrpSocket {
            fd,
            family,
            ifindex,
            ifname: ifname.to_string(),
        })
    }

    /// Also joins `group` on the interface: a VRRP multicast group other than 224.0.0.18 /
    /// ff02::12 (keepalived `vrrp_mcast_group4/6`).
    pub fn join_group(&self, group: IpAddr) -> Result<()> {
        let fd = self.fd.get_ref();
        match group {
            IpAddr::V4(g) => fd
                .join_multicast_v4_n(&g, &socket2::InterfaceIndexOrAddress::Index(self.ifindex))
                .context(|| format!("joining {g} on {}", self.ifname)),
            IpAddr::V6(g) => fd
                .join_multicast_v6(&g, self.ifindex)
                .context(|| format!("joining {g} on {}", self.ifname)),
        }
    }

    /// The IP version of this socket.
    pub fn family(&self) -> IpFamily {
        self.family
    }

    /// Index of the interface the socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Name of the interface the socket is bound to.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Waits for the next VRRP datagram. Datagrams whose IPv4 header is malformed or that were truncated are
    /// skipped (logged at debug level); the VRRP message itself is not validated here.
    ///
    /// Cancel-safe (a datagram is only taken off the socket inside a synchronous `recvmsg`), so it can sit in
    /// a `tokio::select!` next to timers. `recv` and `send` may run concurrently from different tasks.
    pub async fn recv(&self) -> Result<Received> {
        let mut buffer = vec![0u8; RECV_BUFFER];
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .context(|| format!("VRRP recv on {}", self.ifname))?;
            let outcome = guard.try_io(|fd| match self.family {
                IpFamily::V4 => receive_v4(fd.get_ref(), &mut buffer, self.ifindex),
                IpFamily::V6 => receive_v6(fd.get_ref(), &mut buffer, self.ifindex),
            });
            match outcome {
                Err(_would_block) => continue,
                Ok(Ok(Some(received))) => return Ok(received),
                Ok(Ok(None)) => continue,
                Ok(Err(err)) => {
                    return Err(err).context(|| format!("VRRP recvmsg on {}", self.ifname))
                }
            }
        }
    }

    /// Sends `payload` (a complete VRRP message, checksum included) from `src` to `dst` (the group or a
    /// unicast peer) out of the bound interface. `src` must be an address of this host (the primary IPv4
    /// address, or the interface's IPv6 link-local address, RFC 5798 §5.1.1.1 / §5.1.2.1); it is set per
    /// datagram with IP_PKTINFO / IPV6_PKTINFO.
    pub async fn send(&self, src: IpAddr, dst: IpAddr, payload: &[u8]) -> Result<()> {
        if !self.matches_family(src, dst) {
            return Err(SysError::FamilyMismatch(format!(
                "{src} -> {dst} on an {:?} VRRP socket",
                self.family
            )));
        }
        let ifindex = self.ifindex;
        loop {
            let mut guard = self
                .fd
                .writable()
                .await
                .context(|| format!("VRRP send on {}", self.ifname))?;
            let outcome = guard.try_io(|fd| {
                let raw = fd.get_ref().as_raw_fd();
                let iov = [IoSlice::new(payload)];
                match (self.family, src, dst) {
                    (IpFamily::V4, IpAddr::V4(src), IpAddr::V4(dst)) => {
                        let info = libc::in_pktinfo {
                            ipi_ifindex: i32::try_from(ifindex).unwrap_or(0),
                            ipi_spec_dst: libc::in_addr {
                                s_addr: u32::from_ne_bytes(src.octets()),
                            },
                            ipi_addr: libc::in_addr { s_addr: 0 },
                        };
                        let to = SockaddrIn::from(SocketAddrV4::new(dst, 0));
                        sendmsg(
                            raw,
                            &iov,
                            &[ControlMessage::Ipv4PacketInfo(&info)],
                            MsgFlags::empty(),
                            Some(&to),
                        )
                        .map_err(io::Error::from)
                    }
                    (IpFamily::V6, IpAddr::V6(src), IpAddr::V6(dst)) => {
                        let info = libc::in6_pktinfo {
                            ipi6_addr: libc::in6_addr {
                                s6_addr: src.octets(),
                            },
                            ipi6_ifindex: ifindex,
                        };
                        let scope = if needs_scope_id(&dst) { ifindex } else { 0 };
                        let to = SockaddrIn6::from(SocketAddrV6::new(dst, 0, 0, scope));
                        sendmsg(
                            raw,
                            &iov,
                            &[ControlMessage::Ipv6PacketInfo(&info)],
                            MsgFlags::empty(),
                            Some(&to),
                        )
                        .map_err(io::Error::from)
                    }
                    _ => Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "family mismatch",
                    )),
                }
            });
            match outcome {
                Err(_would_block) => continue,
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(err)) => {
                    return Err(err)
                        .context(|| format!("VRRP send {src} -> {dst} on {}", self.ifname))
                }
            }
        }
    }

    fn matches_family(&self, src: IpAddr, dst: IpAddr) -> bool {
        matches!(
            (self.family, src, dst),
            (IpFamily::V4, IpAddr::V4(_), IpAddr::V4(_))
                | (IpFamily::V6, IpAddr::V6(_), IpAddr::V6(_))
        )
    }
}

/// Link-local unicast and link-scope multicast destinations need the interface as scope id.
fn needs_scope_id(dst: &Ipv6Addr) -> bool {
    dst.is_unicast_link_local() || (dst.is_multicast() && dst.segments()[0] & 0x000f <= 2)
}

/// One `recvmsg` on an IPv4 raw socket: the datagram starts with the IP header.
fn receive_v4(
    socket: &Socket,
    buffer: &mut [u8],
    bound_ifindex: u32,
) -> io::Result<Option<Received>> {
    let mut cmsg = nix::cmsg_space!(libc::in_pktinfo);
    let (len, truncated, ifindex) = {
        let mut iov = [IoSliceMut::new(buffer)];
        let msg = recvmsg::<SockaddrStorage>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .map_err(io::Error::from)?;
        let mut ifindex = bound_ifindex;
        for c in msg.cmsgs().map_err(io::Error::from)? {
            if let ControlMessageOwned::Ipv4PacketInfo(info) = c {
                ifindex = u32::try_from(info.ipi_ifindex).unwrap_or(bound_ifindex);
            }
        }
        (msg.bytes, msg.flags.contains(MsgFlags::MSG_TRUNC), ifindex)
    };
    if truncated {
        tracing::debug!(len, "dropping truncated VRRP datagram");
        return Ok(None);
    }
    match parse_ipv4_packet(&buffer[..len]) {
        Ok(packet) => Ok(Some(Received {
            src: IpAddr::V4(packet.src),
            dst: IpAddr::V4(packet.dst),
            ttl: packet.ttl,
            ifindex,
            payload: packet.payload.to_vec(),
        })),
        Err(err) => {
            tracing::debug!(?err, "dropping VRRP datagram with a malformed IPv4 header");
            Ok(None)
        }
    }
}

/// One `recvmsg` on an IPv6 raw socket: no IP header; hop limit and destination come as control messages.
fn receive_v6(
    socket: &Socket,
    buffer: &mut [u8],
    bound_ifindex: u32,
) -> io::Result<Option<Received>> {
    let mut cmsg = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
    let mut iov = [IoSliceMut::new(buffer)];
    let msg = recvmsg::<SockaddrStorage>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .map_err(io::Error::from)?;
    let mut hop_limit = None;
    let mut dst = None;
    let mut ifindex = bound_ifindex;
    for c in msg.cmsgs().map_err(io::Error::from)? {
        match c {
            ControlMessageOwned::Ipv6HopLimit(limit) => hop_limit = u8::try_from(limit).ok(),
            ControlMessageOwned::Ipv6PacketInfo(info) => {
                dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                ifindex = info.ipi6_ifindex;
            }
            _ => {}
        }
    }
    let src = msg
        .address
        .as_ref()
        .and_then(|a| a.as_sockaddr_in6())
        .map(|a| a.ip());
    let (len, truncated) = (msg.bytes, msg.flags.contains(MsgFlags::MSG_TRUNC));
    let (Some(src), Some(dst), Some(ttl)) = (src, dst, hop_limit) else {
        tracing::debug!("dropping IPv6 VRRP datagram without source, pktinfo or hop limit");
        return Ok(None);
    };
    if truncated {
        tracing::debug!(len, "dropping truncated VRRP datagram");
        return Ok(None);
    }
    Ok(Some(Received {
        src: IpAddr::V6(src),
        dst: IpAddr::V6(dst),
        ttl,
        ifindex,
        payload: buffer[..len].to_vec(),
    }))
}
