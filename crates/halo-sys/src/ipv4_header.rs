//! The fields of a received IPv4 header that VRRP needs (raw IPv4 sockets hand us the header).

use std::net::Ipv4Addr;

/// What [`parse_ipv4_packet`] extracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ipv4Packet<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    /// The bytes after the header, up to the IP total length (Ethernet padding cut off).
    pub payload: &'a [u8],
}

/// Why a received IPv4 packet was unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ipv4ParseError {
    TooShort(usize),
    NotVersion4(u8),
    BadHeaderLength(usize),
    /// Total length smaller than the header or larger than what arrived.
    BadTotalLength {
        total: usize,
        received: usize,
    },
}

/// Parses an IPv4 packet as a raw socket delivers it (RFC 791 §3.1). Never panics.
pub(crate) fn parse_ipv4_packet(packet: &[u8]) -> Result<Ipv4Packet<'_>, Ipv4ParseError> {
    if packet.len() < 20 {
        return Err(Ipv4ParseError::TooShort(packet.len()));
    }
    let version = packet[0] >> 4;
    if version != 4 {
        return Err(Ipv4ParseError::NotVersion4(version));
    }
    let header_len = usize::from(packet[0] & 0x0f) * 4;
    if header_len < 20 || header_len > packet.len() {
        return Err(Ipv4ParseError::BadHeaderLength(header_len));
    }
    let total = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
    if total < header_len || total > packet.len() {
        return Err(Ipv4ParseError::BadTotalLength {
            total,
            received: packet.len(),
        });
    }
    Ok(Ipv4Packet {
        src: Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]),
        dst: Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]),
        ttl: packet[8],
        payload: &packet[header_len..total],
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn header(total: u16, ihl: u8) -> Vec<u8> {
        let mut h = vec![0u8; (usize::from(ihl) * 4).max(20)];
        h[0] = 0x40 | ihl;
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[8] = 255;
        h[9] = 112;
        h[12..16].copy_from_slice(&[198, 18, 0, 11]);
        h[16..20].copy_from_slice(&[224, 0, 0, 18]);
        h
    }

    #[test]
    fn cuts_ethernet_padding_at_total_length() {
        let mut packet = header(28, 5);
        packet.extend_from_slice(&[0x31, 1, 2, 3, 4, 5, 6, 7]);
        packet.extend_from_slice(&[0; 18]); // padding up to the 60-byte Ethernet minimum
        let parsed = parse_ipv4_packet(&packet).unwrap();
        assert_eq!(parsed.payload, &[0x31, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(parsed.ttl, 255);
        assert_eq!(parsed.src, Ipv4Addr::new(198, 18, 0, 11));
        assert_eq!(parsed.dst, Ipv4Addr::new(224, 0, 0, 18));
    }

    #[test]
    fn honours_header_options() {
        let mut packet = header(32, 6);
        packet.extend_from_slice(&[9; 8]);
        assert_eq!(parse_ipv4_packet(&packet).unwrap().payload, &[9; 8]);
    }

    #[test]
    fn rejects_malformed_headers_without_panicking() {
        assert_eq!(
            parse_ipv4_packet(&[0x45; 10]),
            Err(Ipv4ParseError::TooShort(10))
        );
        let mut v6 = header(20, 5);
        v6[0] = 0x65;
        assert_eq!(parse_ipv4_packet(&v6), Err(Ipv4ParseError::NotVersion4(6)));
        assert_eq!(
            parse_ipv4_packet(&header(20, 4)),
            Err(Ipv4ParseError::BadHeaderLength(16))
        );
        assert_eq!(
            parse_ipv4_packet(&header(40, 5)),
            Err(Ipv4ParseError::BadTotalLength {
                total: 40,
                received: 20
            })
        );
        assert_eq!(
            parse_ipv4_packet(&header(10, 5)),
            Err(Ipv4ParseError::BadTotalLength {
                total: 10,
                received: 20
            })
        );
        for len in 0..64 {
            let _ = parse_ipv4_packet(&vec![0x4f; len]);
        }
    }
}
