//! halo: VRRP failover and an HTTP reverse proxy in one binary.

fn main() {
    println!("halo {}", env!("CARGO_PKG_VERSION"));
}
