//! VRRP advertisement codec: VRRPv2 (RFC 3768 §5.3) and VRRPv3 (RFC 5798 §5.2).
//!
//! The codec sees only the VRRP message (the IP payload); the source and destination addresses are
//! passed beside it because the VRRPv3 checksum covers a pseudo-header built from them. Decoding never
//! panics: every length is checked before it is read, and bytes after the message (Ethernet minimum-frame
//! padding) are ignored.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum;
use crate::config::Version;

/// IP protocol number of VRRP (RFC 5798 §5.1.1.4, IANA).
pub const VRRP_IP_PROTOCOL: u8 = 112;
/// TTL / hop limit every advert is sent with and must be received with (RFC 5798 §5.1.1.3, §7.1).
pub const VRRP_TTL: u8 = 255;
/// IPv4 multicast group of VRRP (RFC 5798 §5.1.1.2).
pub const MULTICAST_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group of VRRP (RFC 5798 §5.1.2.2).
pub const MULTICAST_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// Length of the fixed VRRP header (version/type .. checksum).
pub const HEADER_LEN: usize = 8;
/// Length of the VRRPv2 Authentication Data trailer (RFC 3768 §5.3.10).
pub const V2_AUTH_DATA_LEN: usize = 8;
/// The only VRRP packet type, ADVERTISEMENT (RFC 5798 §5.2.2).
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// Largest VRRPv3 Max Adver Int: 12 bits of centiseconds (RFC 5798 §5.2.7).
pub const V3_MAX_ADVER_INT_CENTIS: u16 = 0x0fff;

/// VRRPv2 authentication (RFC 3768 §5.3.6; RFC 2338 types kept for keepalived compatibility).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authentication {
    /// Auth Type 0: no authentication; Authentication Data is zero on send and ignored on receive.
    None,
    /// Auth Type 1 (RFC 2338 simple text password): the 8 bytes of Authentication Data, zero-padded.
    Password([u8; 8]),
    /// Any other Auth Type (2 = IP AH in RFC 2338), with its Authentication Data as received.
    Other {
        /// The Auth Type byte.
        auth_type: u8,
        /// The Authentication Data trailer.
        data: [u8; 8],
    },
}

impl Authentication {
    /// The Auth Type byte on the wire.
    pub fn auth_type(&self) -> u8 {
        match self {
            Authentication::None => 0,
            Authentication::Password(_) => 1,
            Authentication::Other { auth_type, .. } => *auth_type,
        }
    }

    fn data(&self) -> [u8; 8] {
        match self {
            Authentication::None => [0; 8],
            Authentication::Password(data) | Authentication::Other { data, .. } => *data,
        }
    }
}

/// One VRRP ADVERTISEMENT, either version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advert {
    /// Protocol version (header high nibble).
    pub version: Version,
    /// Virtual Router Identifier.
    pub vrid: u8,
    /// Sender's priority; 0 means the master stops participating (RFC 5798 §5.2.4).
    pub priority: u8,
    /// v2: Adver Int in seconds (8 bits, RFC 3768 §5.3.7). v3: Max Adver Int in centiseconds
    /// (12 bits, RFC 5798 §5.2.7); the 4 reserved bits are sent as zero and ignored on receipt.
    pub adver_int: u16,
    /// v2 authentication; always [`Authentication::None`] for v3, which has none (RFC 5798 §9).
    pub authentication: Authentication,
    /// The virtual addresses, all of the family of the IP packet carrying the advert.
    pub addresses: Vec<IpAddr>,
}

/// Why a buffer is not a valid VRRP advertisement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than the fixed header.
    #[error("{len} bytes is shorter than the {HEADER_LEN}-byte VRRP header")]
    TooShort {
        /// Bytes received.
        len: usize,
    },
    /// Version nibble other than 2 or 3.
    #[error("unsupported VRRP version {0}")]
    Version(u8),
    /// Type nibble other than ADVERTISEMENT.
    #[error("VRRP packet type {0} is not ADVERTISEMENT (1)")]
    Type(u8),
    /// Source and destination of different families, or VRRPv2 over IPv6 (RFC 3768 is IPv4 only).
    #[error("VRRPv{version} cannot be carried between {src} and {dst}")]
    Family {
        /// Version nibble.
        version: u8,
        /// IP source.
        src: IpAddr,
        /// IP destination.
        dst: IpAddr,
    },
    /// The buffer ends before the addresses (and v2 authentication data) the header announces.
    #[error(
        "{len} bytes is shorter than the {expected} bytes the header announces ({count} addresses)"
    )]
    Truncated {
        /// Bytes received.
        len: usize,
        /// Bytes the header requires.
        expected: usize,
        /// Count IPvX Addrs field.
        count: u8,
    },
    /// Checksum does not verify (RFC 5798 §7.1 / RFC 3768 §7.1).
    #[error("checksum {found:#06x} does not verify (expected {expected:#06x})")]
    Checksum {
        /// Checksum field of the packet.
        found: u16,
        /// Checksum computed over the packet.
        expected: u16,
    },
}

/// Why an [`Advert`] cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// More than 255 addresses do not fit the Count field.
    #[error("{0} addresses do not fit the 8-bit count field")]
    TooManyAddresses(usize),
    /// An address, the source or the destination differs in family, or v2 with IPv6.
    #[error("address {0} does not match the family of the advert")]
    Family(IpAddr),
    /// v2 interval above 255 s or v3 interval above 4095 cs.
    #[error("advert interval {0} does not fit the field")]
    Interval(u16),
}

/// The VRID of a received message without validating anything else, for a driver that dispatches
/// packets to instances by VRID (`None` when the buffer is shorter than two bytes).
pub fn peek_vrid(bytes: &[u8]) -> Option<u8> {
    bytes.get(1).copied()
}

fn address_len(addr: IpAddr) -> usize {
    match addr {
        IpAddr::V4(_) => 4,
        IpAddr::V6(_) => 16,
    }
}

impl Advert {
    /// Length of the message this advert encodes to, for a carrier of `src`'s family.
    pub fn encoded_len(&self, src: IpAddr) -> usize {
        let trailer = match self.version {
            Version::V2 => V2_AUTH_DATA_LEN,
            Version::V3 => 0,
        };
        HEADER_LEN + self.addresses.len() * address_len(src) + trailer
    }

    /// Encodes the advert as sent from `src` to `dst`, checksum included.
    ///
    /// v2: checksum over the message (RFC 3768 §5.3.8). v3: checksum over the pseudo-header of
    /// `src`/`dst` and the message (RFC 5798 §5.2.8); `dst` is the multicast group or the unicast peer.
    pub fn encode(&self, src: IpAddr, dst: IpAddr) -> Result<Vec<u8>, EncodeError> {
        let count = u8::try_from(self.addresses.len())
            .map_err(|_| EncodeError::TooManyAddresses(self.addresses.len()))?;
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(EncodeError::Family(dst));
        }
        if self.version == Version::V2 && src.is_ipv6() {
            return Err(EncodeError::Family(src));
        }
        if let Some(bad) = self.addresses.iter().find(|a| a.is_ipv4() != src.is_ipv4()) {
            return Err(EncodeError::Family(*bad));
        }
        let mut out = Vec::with_capacity(self.encoded_len(src));
        let (version_nibble, interval_bytes) = match self.version {
            Version::V2 => {
                let secs = u8::try_from(self.adver_int)
                    .map_err(|_| EncodeError::Interval(self.adver_int))?;
                (2u8, [self.authentication.auth_type(), secs])
            }
            Version::V3 => {
                if self.adver_int > V3_MAX_ADVER_INT_CENTIS {
                    return Err(EncodeError::Interval(self.adver_int));
                }
                (3u8, self.adver_int.to_be_bytes())
            }
        };
        out.push(version_nibble << 4 | TYPE_ADVERTISEMENT);
        out.push(self.vrid);
        out.push(self.priority);
        out.push(count);
        out.extend_from_slice(&interval_bytes);
        out.extend_from_slice(&[0, 0]);
        for addr in &self.addresses {
            match addr {
                IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
            }
        }
        let sum = match self.version {
            Version::V2 => {
                out.extend_from_slice(&self.authentication.data());
                checksum::v2(&out)
            }
            Version::V3 => checksum::v3(&out, src, dst),
        };
        out[6..8].copy_from_slice(&sum.to_be_bytes());
        Ok(out)
    }

    /// Decodes and verifies a VRRP message received from `src` to `dst`.
    ///
    /// Checks, in order: header length, version (2 or 3), type (ADVERTISEMENT), family, complete length
    /// (RFC 5798 §7.1 "MUST verify that the received packet contains the complete VRRP packet"), checksum.
    /// Bytes after the message are ignored (Ethernet padding). Instance-level checks (VRID, interval,
    /// authentication, address list) are [`crate::Instance::handle_packet`]'s job.
    pub fn decode(bytes: &[u8], src: IpAddr, dst: IpAddr) -> Result<Advert, DecodeError> {
        let header: &[u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(DecodeError::TooShort { len: bytes.len() })?;
        let version_nibble = header[0] >> 4;
        let version = match version_nibble {
            2 => Version::V2,
            3 => Version::V3,
            other => return Err(DecodeError::Version(other)),
        };
        let packet_type = header[0] & 0x0f;
        if packet_type != TYPE_ADVERTISEMENT {
            return Err(DecodeError::Type(packet_type));
        }
        if src.is_ipv4() != dst.is_ipv4() || (version == Version::V2 && src.is_ipv6()) {
            return Err(DecodeError::Family {
                version: version_nibble,
                src,
                dst,
            });
        }
        let count = header[3];
        let addr_len = address_len(src);
        let trailer = if version == Version::V2 {
            V2_AUTH_DATA_LEN
        } else {
            0
        };
        let expected = HEADER_LEN + usize::from(count) * addr_len + trailer;
        let message = bytes.get(..expected).ok_or(DecodeError::Truncated {
            len: bytes.len(),
            expected,
            count,
        })?;

        let found = u16::from_be_bytes([header[6], header[7]]);
        let residue = match version {
            Version::V2 => checksum::v2(message),
            Version::V3 => checksum::v3(message, src, dst),
        };
        if residue != 0 {
            // Recompute with the field zeroed to report what it should have been.
            let mut zeroed = message.to_vec();
            zeroed[6] = 0;
            zeroed[7] = 0;
            let expected = match version {
                Version::V2 => checksum::v2(&zeroed),
                Version::V3 => checksum::v3(&zeroed, src, dst),
            };
            return Err(DecodeError::Checksum { found, expected });
        }

        let address_bytes = &message[HEADER_LEN..HEADER_LEN + usize::from(count) * addr_len];
        let addresses = address_bytes
            .chunks_exact(addr_len)
            .map(|chunk| match <[u8; 16]>::try_from(chunk) {
                Ok(v6) => IpAddr::from(v6),
                Err(_) => {
                    let mut v4 = [0u8; 4];
                    v4.copy_from_slice(&chunk[..4]);
                    IpAddr::from(v4)
                }
            })
            .collect();

        let (adver_int, authentication) = match version {
            Version::V2 => {
                let mut data = [0u8; 8];
                data.copy_from_slice(&message[expected - V2_AUTH_DATA_LEN..expected]);
                let auth = match header[4] {
                    0 => Authentication::None,
                    1 => Authentication::Password(data),
                    auth_type => Authentication::Other { auth_type, data },
                };
                (u16::from(header[5]), auth)
            }
            Version::V3 => (
                u16::from_be_bytes([header[4], header[5]]) & V3_MAX_ADVER_INT_CENTIS,
                Authentication::None,
            ),
        };
        Ok(Advert {
            version,
            vrid: header[1],
            priority: header[2],
            adver_int,
            authentication,
            addresses,
        })
    }
}
