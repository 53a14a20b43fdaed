//! Per-instance statistics (compare keepalived's `vrrp_stats` and the RFC 6527 VRRPv3 MIB counters).

/// Counters of one instance. Every received packet increments exactly one of `rx_adverts` or a `drop_*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Adverts that passed validation (RFC 5798 §7.1) and reached the state machine.
    pub rx_adverts: u64,
    /// Advert packets sent (one per unicast peer).
    pub tx_adverts: u64,
    /// Transitions into Master.
    pub became_master: u64,
    /// Transitions out of Master (to Backup, Fault or Stopped).
    pub released_master: u64,
    /// TTL / hop limit other than 255 on a multicast advert (RFC 5798 §7.1).
    pub drop_ttl: u64,
    /// Version other than ours, or not 2/3 at all.
    pub drop_version: u64,
    /// Type other than ADVERTISEMENT.
    pub drop_type: u64,
    /// VRID other than ours.
    pub drop_vrid: u64,
    /// Shorter than the header or than the addresses the header announces.
    pub drop_length: u64,
    /// Checksum does not verify.
    pub drop_checksum: u64,
    /// v2 authentication type or password mismatch (RFC 3768 §7.1).
    pub drop_auth: u64,
    /// v2 Adver Int differs from ours (RFC 3768 §7.1), or a v3 interval of zero.
    pub drop_interval: u64,
    /// Address count or list differs from ours (RFC 5798 §7.1 MAY; keepalived checks it).
    pub drop_addr_list: u64,
    /// Carrier family differs from ours, or v2 over IPv6.
    pub drop_family: u64,
    /// Multicast advert on a unicast instance or vice versa (keepalived "Expected unicast packet").
    pub drop_destination: u64,
    /// Our own advert looped back (source is our primary address).
    pub drop_own_address: u64,
    /// Valid adverts with priority 0 received.
    pub rx_priority_zero: u64,
    /// Adverts with priority 0 sent (shutdown, fault).
    pub tx_priority_zero: u64,
    /// Adverts with a lower priority heard while master (keepalived MASTER_RX_LOWER_PRI events).
    pub rx_lower_priority_as_master: u64,
}
