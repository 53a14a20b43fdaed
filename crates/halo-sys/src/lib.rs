//! halo-sys
