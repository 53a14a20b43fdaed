//! halo-lb
