//! Ethernet frames that tell a LAN where a virtual address now lives: gratuitous ARP (IPv4) and
//! unsolicited neighbour advertisements (IPv6). Pure byte building, no I/O.

use std::net::{Ipv4Addr, Ipv6Addr};

const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// ff02::1, all nodes (RFC 4291 §2.7.1).
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// Ethernet frames shorter than this (without FCS) are padded (IEEE 802.3).
const ETH_MIN_FRAME: usize = 60;
const ICMPV6_NEIGHBOR_ADVERTISEMENT: u8 = 136;
const ICMPV6_NEXT_HEADER: u8 = 58;
/// Target link-layer address option (RFC 4861 §4.6.1).
const ND_OPT_TARGET_LINK_LAYER: u8 = 2;
/// ICMPv6 NA (24 bytes) + one 8-byte target link-layer address option.
const NA_LEN: usize = 32;

/// A gratuitous ARP request as RFC 5798 §6.4.1 (IPv4) asks of a new master and RFC 5227 §3 describes: an ARP
/// request broadcast with sender and target protocol address both `ip`, sender hardware address `mac` and a
/// zero target hardware address, padded to the Ethernet minimum.
pub fn gratuitous_arp_frame(mac: [u8; 6], ip: Ipv4Addr) -> [u8; ETH_MIN_FRAME] {
    let mut frame = [0u8; ETH_MIN_FRAME];
    frame[0..6].copy_from_slice(&BROADCAST_MAC);
    frame[6..12].copy_from_slice(&mac);
    frame[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    let arp = &mut frame[14..42];
    arp[0..2].copy_from_slice(&1u16.to_be_bytes()); // hardware type: Ethernet
    arp[2..4].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    arp[4] = 6; // hardware address length
    arp[5] = 4; // protocol address length
    arp[6..8].copy_from_slice(&1u16.to_be_bytes()); // operation: request
    arp[8..14].copy_from_slice(&mac);
    arp[14..18].copy_from_slice(&ip.octets());
    // arp[18..24]: target hardware address, zero.
    arp[24..28].copy_from_slice(&ip.octets());
    frame
}

/// Flags of a neighbour advertisement (RFC 4861 §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NaFlags {
    /// R: the sender is a router. RFC 5798 §6.4.1 has a VRRP master set it, but halo is a load balancer, not a
    /// router, so the default is off (keepalived likewise sets it only when the interface forwards).
    pub router: bool,
}

/// An unsolicited neighbour advertisement for `target` (RFC 4861 §4.4, §7.2.6): from `target` itself to
/// ff02::1 (Ethernet 33:33:00:00:00:01), hop limit 255, Solicited=0, Override=1 so that caches switch to
/// `mac` at once, Router per `flags`, with a target link-layer address option carrying `mac`.
pub fn unsolicited_na_frame(mac: [u8; 6], target: Ipv6Addr, flags: NaFlags) -> Vec<u8> {
    let mut frame = Vec::with_capacity(14 + 40 + NA_LEN);
    frame.extend_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    frame.extend_from_slice(&mac);
    frame.extend_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
    // IPv6 header (RFC 8200 §3).
    frame.extend_from_slice(&[0x60, 0, 0, 0]);
    frame.extend_from_slice(&(NA_LEN as u16).to_be_bytes());
    frame.push(ICMPV6_NEXT_HEADER);
    frame.push(255); // hop limit: receivers drop ND messages with any other (RFC 4861 §7.1.2)
    frame.extend_from_slice(&target.octets());
    frame.extend_from_slice(&ALL_NODES.octets());
    // ICMPv6 neighbour advertisement.
    let mut na = [0u8; NA_LEN];
    na[0] = ICMPV6_NEIGHBOR_ADVERTISEMENT;
    na[4] = if flags.router { 0x80 } else { 0 } | 0x20; // R, S=0, O=1
    na[8..24].copy_from_slice(&target.octets());
    na[24] = ND_OPT_TARGET_LINK_LAYER;
    na[25] = 1; // length in units of 8 bytes
    na[26..32].copy_from_slice(&mac);
    let checksum = icmpv6_checksum(target, ALL_NODES, &na);
    na[2..4].copy_from_slice(&checksum.to_be_bytes());
    frame.extend_from_slice(&na);
    frame
}

/// ICMPv6 checksum over the IPv6 pseudo-header and the message (RFC 4443 §2.3, RFC 8200 §8.1).
fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let word = u16::from_be_bytes([pair[0], pair.get(1).copied().unwrap_or(0)]);
            sum += u32::from(word);
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(message.len() as u32).to_be_bytes());
    add(&[0, 0, 0, ICMPV6_NEXT_HEADER]);
    add(message);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0x5e, 0, 1, 51];

    #[test]
    fn garp_is_a_broadcast_request_with_sender_equal_to_target() {
        let vip = Ipv4Addr::new(198, 18, 0, 100);
        let frame = gratuitous_arp_frame(MAC, vip);
        assert_eq!(&frame[0..6], &[0xff; 6]);
        assert_eq!(&frame[6..12], &MAC);
        assert_eq!(&frame[12..14], &[0x08, 0x06]);
        assert_eq!(&frame[14..22], &[0, 1, 0x08, 0, 6, 4, 0, 1]);
        assert_eq!(&frame[22..28], &MAC); // sender hardware address
        assert_eq!(&frame[28..32], &vip.octets()); // sender protocol address
        assert_eq!(&frame[32..38], &[0; 6]); // target hardware address
        assert_eq!(&frame[38..42], &vip.octets()); // target protocol address
        assert!(frame[42..].iter().all(|&b| b == 0));
    }

    #[test]
    fn unsolicited_na_has_override_set_solicited_clear_and_a_valid_checksum() {
        let vip: Ipv6Addr = "fd00:198:18::100".parse().unwrap();
        let frame = unsolicited_na_frame(MAC, vip, NaFlags::default());
        assert_eq!(frame.len(), 14 + 40 + 32);
        assert_eq!(&frame[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(&frame[12..14], &[0x86, 0xdd]);
        let ip = &frame[14..54];
        assert_eq!(ip[6], 58);
        assert_eq!(ip[7], 255);
        assert_eq!(&ip[8..24], &vip.octets());
        assert_eq!(&ip[24..40], &ALL_NODES.octets());
        let na = &frame[54..];
        assert_eq!(na[0], 136);
        assert_eq!(na[4], 0x20, "R=0 S=0 O=1");
        assert_eq!(&na[8..24], &vip.octets());
        assert_eq!(&na[24..32], &[2, 1, 0x02, 0, 0x5e, 0, 1, 51]);
        // Summing a message that contains its own correct checksum gives zero (one's complement).
        assert_eq!(icmpv6_checksum(vip, ALL_NODES, na), 0);

        let router = unsolicited_na_frame(MAC, vip, NaFlags { router: true });
        assert_eq!(router[54 + 4], 0xa0, "R=1 S=0 O=1");
        assert_eq!(icmpv6_checksum(vip, ALL_NODES, &router[54..]), 0);
    }

    #[test]
    fn checksum_matches_a_hand_computed_value() {
        // Pseudo-header of :: -> :: with a 2-byte message 0x0001: words sum to len(2) + nh(58) + 1 = 61.
        assert_eq!(
            icmpv6_checksum(Ipv6Addr::UNSPECIFIED, Ipv6Addr::UNSPECIFIED, &[0, 1]),
            !61u16
        );
    }
}
