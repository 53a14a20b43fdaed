//! halo-proxy
