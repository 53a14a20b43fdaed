//! Property tests of the codec: decoding never panics, encode/decode round-trips, corruption is caught.
#![allow(clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use halo_vrrp::{Advert, Authentication, DecodeError, Version};
use proptest::prelude::*;

fn any_v4() -> impl Strategy<Value = IpAddr> {
    any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o)))
}

fn any_v6() -> impl Strategy<Value = IpAddr> {
    any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o)))
}

fn any_pair() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        (any_v4(), any_v4()),
        (any_v6(), any_v6()),
        (any_v4(), any_v6())
    ]
}

fn any_auth() -> impl Strategy<Value = Authentication> {
    prop_oneof![
        Just(Authentication::None),
        any::<[u8; 8]>().prop_map(Authentication::Password),
        (2u8.., any::<[u8; 8]>())
            .prop_map(|(auth_type, data)| Authentication::Other { auth_type, data }),
    ]
}

/// A valid VRRPv3 advert (no authentication) whose addresses and carrier addresses all come from `address`,
/// with fewer than `max_addresses` protected addresses.
fn any_v3_advert<S: Strategy<Value = IpAddr>>(
    address: fn() -> S,
    max_addresses: usize,
) -> impl Strategy<Value = (Advert, IpAddr, IpAddr)> {
    (
        any::<u8>(),
        any::<u8>(),
        0u16..=0x0fff,
        prop::collection::vec(address(), 0..max_addresses),
        address(),
        address(),
    )
        .prop_map(|(vrid, priority, adver_int, addresses, src, dst)| {
            (
                Advert {
                    version: Version::V3,
                    vrid,
                    priority,
                    adver_int,
                    authentication: Authentication::None,
                    addresses,
                },
                src,
                dst,
            )
        })
}

/// A valid advert with its carrier addresses.
fn any_advert() -> impl Strategy<Value = (Advert, IpAddr, IpAddr)> {
    let v2 = (
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        any_auth(),
        prop::collection::vec(any_v4(), 0..20),
        any_v4(),
        any_v4(),
    )
        .prop_map(
            |(vrid, priority, secs, authentication, addresses, src, dst)| {
                (
                    Advert {
                        version: Version::V2,
                        vrid,
                        priority,
                        adver_int: u16::from(secs),
                        authentication,
                        addresses,
                    },
                    src,
                    dst,
                )
            },
        );
    let v3_4 = any_v3_advert(any_v4, 20);
    let v3_6 = any_v3_advert(any_v6, 8);
    prop_oneof![v2, v3_4, v3_6]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, max_global_rejects: 100_000, failure_persistence: None, ..ProptestConfig::default() })]

    /// smoltcp-style robustness: any bytes, any carrier, no panic.
    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600), (src, dst) in any_pair()) {
        let _ = Advert::decode(&bytes, src, dst);
    }

    /// Bytes that start like a VRRP header (so decoding goes deeper) never panic either.
    #[test]
    fn decode_header_like_never_panics(
        first in prop_oneof![Just(0x21u8), Just(0x31u8)],
        rest in prop::collection::vec(any::<u8>(), 0..600),
        (src, dst) in any_pair(),
    ) {
        let mut bytes = vec![first];
        bytes.extend(rest);
        let _ = Advert::decode(&bytes, src, dst);
    }

    #[test]
    fn encode_decode_round_trip((advert, src, dst) in any_advert(), padding in 0usize..40) {
        let mut bytes = advert.encode(src, dst).unwrap();
        prop_assert_eq!(bytes.len(), advert.encoded_len(src));
        // Ethernet padding after the message is ignored.
        bytes.extend(std::iter::repeat_n(0u8, padding));
        prop_assert_eq!(Advert::decode(&bytes, src, dst).unwrap(), advert);
    }

    /// Any single flipped bit outside the count byte is rejected (RFC 5798 §7.1 checksum, or an earlier
    /// header check); a flip in the count byte at least never panics.
    #[test]
    fn single_bit_corruption_is_rejected((advert, src, dst) in any_advert(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = advert.encode(src, dst).unwrap();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let decoded = Advert::decode(&bytes, src, dst);
        if i != 3 {
            // v3 reserved bits are covered by the checksum too.
            prop_assert!(decoded.is_err(), "flip at byte {} bit {} accepted", i, bit);
        }
    }

    /// Truncation anywhere is a length error, never a panic.
    #[test]
    fn truncation_is_a_length_error((advert, src, dst) in any_advert(), cut in any::<prop::sample::Index>()) {
        let bytes = advert.encode(src, dst).unwrap();
        let len = cut.index(bytes.len());
        let err = Advert::decode(&bytes[..len], src, dst).unwrap_err();
        let is_length_error = matches!(err, DecodeError::TooShort { .. } | DecodeError::Truncated { .. });
        prop_assert!(is_length_error, "{:?}", err);
    }

    /// The v3 checksum covers the pseudo-header: a destination one bit away breaks it (arbitrary other
    /// addresses may collide in a one's-complement sum, e.g. swapped 16-bit halves).
    #[test]
    fn v3_checksum_binds_the_addresses((advert, src, dst) in any_advert(), bit in 0u32..32) {
        prop_assume!(advert.version == Version::V3 && src.is_ipv4());
        let IpAddr::V4(d) = dst else { unreachable!() };
        let other = IpAddr::V4(Ipv4Addr::from(u32::from(d) ^ (1 << bit)));
        let bytes = advert.encode(src, dst).unwrap();
        let is_checksum_error = matches!(Advert::decode(&bytes, src, other), Err(DecodeError::Checksum { .. }));
        prop_assert!(is_checksum_error);
    }
}

#[test]
fn v2_over_ipv6_is_a_family_error() {
    let advert = Advert {
        version: Version::V2,
        vrid: 1,
        priority: 100,
        adver_int: 1,
        authentication: Authentication::None,
        addresses: vec![],
    };
    let bytes = advert
        .encode(IpAddr::from([198, 18, 0, 1]), IpAddr::from([224, 0, 0, 18]))
        .unwrap();
    let v6: IpAddr = "fe80::1".parse().unwrap();
    assert!(matches!(
        Advert::decode(&bytes, v6, "ff02::12".parse().unwrap()),
        Err(DecodeError::Family { .. })
    ));
    assert!(advert.encode(v6, "ff02::12".parse().unwrap()).is_err());
}
