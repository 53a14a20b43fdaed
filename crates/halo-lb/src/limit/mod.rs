//! Client limits: `limit_conn` ([`ConnLimiter`]) and `limit_req` ([`RequestLimiter`]).

mod conn;
mod request;

pub use conn::{ConnGuardToken, ConnLimiter, ConnPermit};
pub use request::{
    Rate, RequestDelay, RequestLimitError, RequestLimitSpec, RequestLimiter, Verdict,
};

/// Number of independently locked shards of a limiter.
pub(crate) const SHARDS: usize = 64;
