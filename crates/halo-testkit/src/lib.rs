//! halo-testkit
