//! Variables defined by the http block's lookup modules besides `map`: `geo` (the client's
//! network) and `split_clients` (a hash of a text split into percentages).

use serde::{Deserialize, Serialize};

/// `geo [$SOURCE] $VARIABLE { default V; CIDR V; delete CIDR; }` (nginx's geo module): the
/// variable's value is that of the most specific network holding the client's address (or the
/// address in `$SOURCE`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoConfig {
    /// The variable whose value is the address looked up, without `$`; `None`: the client's
    /// address (after realip).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The variable defined, without `$`.
    pub variable: String,
    /// The networks and their values, each network once (`default` is `0.0.0.0/0` and `::/0`).
    /// An address in none of them gives "".
    #[serde(default)]
    pub networks: Vec<GeoNetwork>,
}

/// One network of a `geo` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoNetwork {
    /// `ADDRESS/LENGTH` with the host bits clear (`192.0.2.0/24`, `2001:db8::/32`).
    pub network: String,
    /// The value, as written (no variables).
    pub value: String,
}

/// `split_clients STRING $VARIABLE { P% V; ...; * V; }` (nginx's split_clients module): the
/// MurmurHash2 of the string picks the bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitClientsConfig {
    /// The text hashed, with variables.
    pub source: String,
    /// The variable defined, without `$`.
    pub variable: String,
    /// The buckets in order.
    #[serde(default)]
    pub buckets: Vec<SplitBucket>,
}

/// One bucket of `split_clients`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitBucket {
    /// Its share in hundredths of a percent (`12.5%` is 1250); `None` for `*` (the rest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u32>,
    /// The value, as written (no variables).
    pub value: String,
}
