//! The Internet checksum (RFC 1071) used by VRRP, with the pseudo-headers VRRPv3 adds.

use std::net::IpAddr;

use crate::packet::VRRP_IP_PROTOCOL;

/// Adds `data` to a running one's-complement sum (RFC 1071 §4.1), 16 bits at a time, big-endian.
/// An odd final byte is padded with a zero byte, which is only correct at the very end of the data.
fn add_bytes(mut sum: u32, data: &[u8]) -> u32 {
    let mut words = data.chunks_exact(2);
    for word in &mut words {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([word[0], word[1]])));
        sum = (sum & 0xffff) + (sum >> 16);
    }
    if let [last] = words.remainder() {
        sum = sum.wrapping_add(u32::from(*last) << 8);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

/// Folds the running sum and complements it.
fn finish(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Adds the pseudo-header VRRPv3 prepends (RFC 5798 §5.2.8).
///
/// IPv4: `{src, dst, 0, 112, length(16)}`, as keepalived builds it (`ipv4_phdr_t` in vrrp.c).
/// IPv6: `{src, dst, length(32), 0, 0, 0, 112}` (RFC 2460 §8.1), which is what the Linux kernel computes
/// for keepalived via `IPV6_CHECKSUM`. Mixed families add nothing (callers reject them earlier).
fn add_pseudo_header(sum: u32, src: IpAddr, dst: IpAddr, message_len: usize) -> u32 {
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let len = u16::try_from(message_len).unwrap_or(u16::MAX).to_be_bytes();
            let mut header = [0u8; 12];
            header[0..4].copy_from_slice(&src.octets());
            header[4..8].copy_from_slice(&dst.octets());
            header[9] = VRRP_IP_PROTOCOL;
            header[10..12].copy_from_slice(&len);
            add_bytes(sum, &header)
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let len = u32::try_from(message_len).unwrap_or(u32::MAX).to_be_bytes();
            let mut header = [0u8; 40];
            header[0..16].copy_from_slice(&src.octets());
            header[16..32].copy_from_slice(&dst.octets());
            header[32..36].copy_from_slice(&len);
            header[39] = VRRP_IP_PROTOCOL;
            add_bytes(sum, &header)
        }
        _ => sum,
    }
}

/// Checksum of a VRRPv2 message: the message alone (RFC 3768 §5.3.8).
/// `message` must have its checksum field zeroed when computing, or intact when verifying (result 0).
pub(crate) fn v2(message: &[u8]) -> u16 {
    finish(add_bytes(0, message))
}

/// Checksum of a VRRPv3 message: pseudo-header plus message (RFC 5798 §5.2.8).
pub(crate) fn v3(message: &[u8], src: IpAddr, dst: IpAddr) -> u16 {
    finish(add_bytes(
        add_pseudo_header(0, src, dst, message.len()),
        message,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example_sum() {
        // RFC 1071 §3 numerical example: 0001 f203 f4f5 f6f7 sums to ddf2 (complement 220d).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(v2(&data), !0xddf2);
    }

    #[test]
    fn odd_length_pads_last_byte() {
        assert_eq!(v2(&[0x12]), !0x1200);
    }
}
