//! halo-lb: load-balancing policy with nginx-exact semantics.
//!
//! Everything here is pure: no sockets, no threads, no clock reading. Callers pass `now`
//! (a [`std::time::Instant`]) into every time-dependent operation, which makes the
//! passive-health timeline and the rate limiters testable to the millisecond.
//!
//! - [`Upstream`]: one `upstream {}` block. [`Upstream::pick`] chooses a peer with the
//!   configured [`Method`] (smooth weighted round robin, `ip_hash`, `hash`, `hash consistent`,
//!   `least_conn`, `random`, `random two`), and [`Upstream::release`] feeds the outcome back
//!   (nginx `max_fails`/`fail_timeout` passive health).
//! - [`limit::ConnLimiter`] (`limit_conn`) and [`limit::RequestLimiter`] (`limit_req`).
//! - [`health::ActiveCheckState`]: rise/fall bookkeeping for active health checks.
//!
//! ## Where halo differs from nginx, on purpose
//!
//! - State is global: nginx keeps balancer state per worker process unless a `zone` is
//!   configured; an [`Upstream`] is shared by all threads, so `least_conn` sees every request.
//! - Time: nginx compares `max_fails`/`fail_timeout` times in whole seconds (`ngx_time()`);
//!   halo uses the caller's [`std::time::Instant`] with full precision. The rules
//!   (`now - checked <= fail_timeout`, `accessed < checked`) are the same.
//! - `random` draws come from the caller's [`PickKey::Random`] value (SplitMix64 for further
//!   draws in the same pick) instead of `ngx_random()`.
//! - Active health checks ([`Upstream::set_active_health`]) are an addition; an unhealthy peer
//!   is skipped exactly like a `down` one.
//!
//! Sequences for round robin, least_conn, ip_hash, hash, hash consistent and a
//! max_fails/fail_timeout timeline are checked against a recording of nginx 1.22.1
//! (`tests/nginx_golden`).

mod consistent_hash;
mod error;
mod hash;
pub mod health;
mod ip_hash;
mod least_conn;
pub mod limit;
mod peer;
mod random;
mod round_robin;
mod server;
mod tried;
mod upstream;

pub use error::{LbError, NoLiveUpstreams};
pub use peer::{PeerId, PeerStatus};
pub use server::ServerSpec;
pub use tried::Tried;
pub use upstream::{Method, Outcome, PickKey, Upstream};
