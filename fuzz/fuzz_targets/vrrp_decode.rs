//! VRRP decoding never panics, and what decodes re-encodes to a message that decodes the same.
#![no_main]
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use halo_vrrp::Advert;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pairs: [(IpAddr, IpAddr); 2] = [
        (
            Ipv4Addr::new(198, 18, 0, 1).into(),
            Ipv4Addr::new(224, 0, 0, 18).into(),
        ),
        (
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1).into(),
            Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12).into(),
        ),
    ];
    for (src, dst) in pairs {
        if let Ok(advert) = Advert::decode(data, src, dst) {
            if let Ok(bytes) = advert.encode(src, dst) {
                assert_eq!(Advert::decode(&bytes, src, dst).ok(), Some(advert));
            }
        }
    }
});
