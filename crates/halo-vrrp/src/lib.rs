//! halo-vrrp: a sans-IO VRRP engine, VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798), with keepalived 2.2.7
//! semantics where keepalived differs from the RFCs.
//!
//! No sockets, no clock, no tasks: the driver passes `now` and received packets in, and performs the
//! [`Action`]s that come out (send an advert, add/remove addresses, send gratuitous ARP / NA), calling
//! [`Instance::handle_timeout`] at [`Instance::poll_timeout`]. Same shape as quinn-proto.
//!
//! # Where we follow keepalived 2.2.7 rather than the RFC text
//!
//! * A master hearing a lower priority advert answers with an advert (unless `lower_prio_no_advert`) and
//!   a GARP burst (`garp.lower_prio_repeat`, default 5); RFC 5798 §6.4.3 says discard.
//! * `preempt_delay` (not in the RFCs) and `start_as_master` (`state MASTER`, immediate only for
//!   priority 255) behave as in keepalived 2.2.7; see [`InstanceConfig`].
//! * The address owner does not discard adverts (RFC 5798 §7.1 says it MUST); like keepalived it answers
//!   lower priorities and, on meeting a second owner, lowers itself to 254.
//! * The TTL check is skipped on unicast instances; the address list is checked (RFC "MAY").
//! * Start-up asks the driver to remove leftover virtual addresses.
//! * Timers use keepalived's integer microsecond formulas (see [`timing`]).
//!
//! # Where we are stricter than keepalived
//!
//! * VRRPv2 intervals must be whole seconds (keepalived rounds, issue #2191); v3 with authentication
//!   is refused (keepalived ignores it); v3 adverts with a zero interval are dropped.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use halo_vrrp::{Action, Instance, InstanceConfig, State};
//!
//! let now = Instant::now();
//! let cfg = InstanceConfig::new("VI_1", 51, "198.18.0.1".parse().unwrap(), vec!["198.18.0.242".parse().unwrap()]);
//! let mut vi = Instance::new(cfg, now).unwrap();
//! assert_eq!(vi.state(), State::Backup);
//! // Nobody else on the link: after Master_Down_Interval = 3 * 1 s + (256 - 100) / 256 s we take over.
//! let deadline = vi.poll_timeout().unwrap();
//! assert_eq!(deadline - now, Duration::from_micros(3_609_375));
//! vi.handle_timeout(deadline);
//! assert_eq!(vi.state(), State::Master);
//! while let Some(action) = vi.poll_action() {
//!     if let Action::SendAdvert { dst, packet } = action { assert_eq!(packet.len(), 20); let _ = dst; }
//! }
//! ```

mod action;
mod checksum;
mod config;
mod counters;
mod instance;
pub mod packet;
mod sync_group;
pub mod timing;
mod tracker;

pub use action::{Action, State};
pub use config::{ConfigError, GarpConfig, InstanceConfig, Version};
pub use counters::Counters;
pub use instance::{multicast_group, Instance, PRIORITY_OWNER, PRIORITY_STOP};
pub use packet::{Advert, Authentication, DecodeError, EncodeError};
pub use sync_group::{MemberStatus, SyncCommand, SyncGroup};
pub use tracker::{combine, contribution, ScriptTracker, TrackerStatus};
