//! halo-vrrp
