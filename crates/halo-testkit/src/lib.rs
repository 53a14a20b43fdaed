//! Network-namespace topologies for halo's tests.
//!
//! Everything here is synchronous, shells out to `ip(8)`, and cleans up after itself on drop (also while a
//! test panics). Namespaces are named `halo-<pid>-<tag>`, so parallel tests in one process must use distinct
//! tags, and leftovers of a killed test run are recognisable (and reaped: see [`reap_stale_namespaces`]).
//!
//! A test that needs these topologies calls [`require_root`] first and returns early when it says `false`.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use halo_testkit::{has_address, require_root, wait_until, Lan};
//!
//! if !require_root("my_test") {
//!     return Ok(());
//! }
//! let lan = Lan::new("mytest", &["master", "backup", "client"])?; // halo-<pid>-mytest-{sw,master,...}
//! lan.add_addr("master", "198.18.0.11/24")?;
//! let halo = lan.host("master").spawn(&["halo", "run", "-c", "halo.toml"], "/tmp/master.log")?;
//! wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
//!     has_address(lan.host("master"), "eth0", "198.18.0.100".parse().unwrap())
//! })?;
//! lan.set_port_up("master", false)?; // pull the master's cable at the switch
//! # drop(halo);
//! # Ok(())
//! # }
//! ```

mod child;
mod inspect;
mod lan;
mod netns;
mod root;
mod wait;

pub use child::SpawnedChild;
pub use inspect::{addresses, has_address, link_mac, neigh_mac};
pub use lan::{Lan, HOST_IFNAME};
pub use netns::{enter_netns, reap_stale_namespaces, spawn_in_netns, Netns};
pub use root::require_root;
pub use wait::wait_until;
