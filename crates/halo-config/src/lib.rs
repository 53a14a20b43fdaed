//! halo-config
