//! Instance configuration and its validation.

use std::net::IpAddr;
use std::time::Duration;

/// VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// VRRPv2, RFC 3768: IPv4 only, whole-second intervals, optional (legacy) authentication.
    V2,
    /// VRRPv3, RFC 5798: IPv4 and IPv6, centisecond intervals, no authentication.
    V3,
}

/// Gratuitous ARP / unsolicited NA schedule, with keepalived's names and defaults (keepalived.conf(5),
/// `garp_*` keywords of `vrrp_instance`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GarpConfig {
    /// `garp_master_delay`: delay of the second burst after becoming master; zero = no second burst.
    /// Default 5 s.
    pub master_delay: Duration,
    /// `garp_master_repeat`: rounds per burst on becoming master. Default 5.
    pub master_repeat: u32,
    /// `garp_master_refresh`: minimum period of refresh rounds while master; zero = off (default).
    /// As in keepalived, the refresh goes out with the first advert after the period has elapsed.
    pub master_refresh: Duration,
    /// `garp_master_refresh_repeat`: rounds per refresh. Default 1.
    pub refresh_repeat: u32,
    /// `garp_lower_prio_delay`: delay of the second burst after a master hears a lower priority advert;
    /// zero = none. Default: `master_delay` (5 s).
    pub lower_prio_delay: Duration,
    /// `garp_lower_prio_repeat`: rounds sent when a master hears a lower priority advert; zero = none.
    /// Default: `master_repeat` (5).
    pub lower_prio_repeat: u32,
    /// `vrrp_garp_interval`: spacing between the rounds of one burst; zero (default) = all at once.
    pub interval: Duration,
}

impl Default for GarpConfig {
    fn default() -> Self {
        GarpConfig {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: Duration::ZERO,
            refresh_repeat: 1,
            lower_prio_delay: Duration::from_secs(5),
            lower_prio_repeat: 5,
            interval: Duration::ZERO,
        }
    }
}

/// Configuration of one VRRP instance (one VRID on one link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    /// Instance name, used in logs and state-change reasons (keepalived `vrrp_instance NAME`).
    pub name: String,
    /// Virtual Router Identifier, 1..=255.
    pub vrid: u8,
    /// Protocol version.
    pub version: Version,
    /// Configured priority 1..=255; 255 = address owner (RFC 5798 §5.2.4). Default 100.
    pub priority: u8,
    /// Advertisement_Interval. v2: whole seconds 1..=255; v3: rounded to centiseconds, 10 ms..=40.95 s.
    pub advert_interval: Duration,
    /// Preempt_Mode (RFC 5798 §6.1); `false` = keepalived `nopreempt`. Owners always preempt.
    pub preempt: bool,
    /// keepalived `preempt_delay`: a backup hearing a lower priority master keeps treating it as master
    /// for this long (from the first such advert) before it stops resetting its down timer, so takeover
    /// happens after `preempt_delay` plus the rest of Master_Down_Interval. At most 1000 s.
    pub preempt_delay: Duration,
    /// keepalived `state MASTER`. In keepalived 2.2.7 it only matters for priority 255: the owner then
    /// becomes master at once; any other instance starts as BACKUP and waits Master_Down_Interval exactly
    /// like `state BACKUP` (verified against keepalived 2.2.7, see tests/fixtures/timeline.txt). As in
    /// keepalived, it clears `nopreempt` and `preempt_delay`. An importer should set it for a priority-255
    /// instance without an explicit `state`, since keepalived derives MASTER from priority 255.
    pub start_as_master: bool,
    /// Our source address: the interface's primary IPv4 address or IPv6 link-local (RFC 5798 §5.1.1.1,
    /// §5.1.2.1). Also the tie-breaker between equal priorities.
    pub primary_address: IpAddr,
    /// Virtual addresses carried in adverts and installed when master; same family as the primary address.
    pub virtual_addresses: Vec<IpAddr>,
    /// VRRPv2 PASS authentication data (first 8 bytes of `auth_pass`, zero-padded); `None` = Auth Type 0.
    pub auth_pass: Option<[u8; 8]>,
    /// keepalived `skip_check_adv_addr`: do not check the address list of adverts from the master we
    /// already follow (only from a new sender).
    pub skip_check_adv_addr: bool,
    /// keepalived `lower_prio_no_advert`. `false` (keepalived default): a master hearing a lower priority
    /// advert answers at once with its own advert. `true`: RFC behaviour, it only discards it.
    pub lower_prio_no_advert: bool,
    /// Gratuitous ARP / NA schedule.
    pub garp: GarpConfig,
    /// Unicast peers (keepalived `unicast_peer`); empty = multicast to `multicast_group`.
    pub unicast_peers: Vec<IpAddr>,
    /// The multicast group adverts go to (keepalived `vrrp_mcast_group4/6`); `None` = the RFC's
    /// 224.0.0.18 / ff02::12.
    pub multicast_group: Option<IpAddr>,
    /// Start as master at once, without waiting Master_Down_Interval. halo sets it when it restarts and
    /// finds its virtual addresses still on the interface: it was master until it crashed, and the
    /// backups have not taken over yet. A higher-priority master, if there is one, takes the addresses
    /// back within one advert interval (its adverts make us step down), so the cost of being wrong is one
    /// interval; the cost of not resuming is a Master_Down_Interval outage (3.6 s with keepalived's
    /// defaults) after every crash-restart. Not in keepalived.
    pub resume_master: bool,
    /// When taking over from a master that is still alive (it sent priority 0, or we preempt it), send
    /// the advert at once but hold the gratuitous ARP / NA back this long. The old master keeps the
    /// addresses meanwhile and lets its in-flight connections finish before clients switch MACs.
    /// Zero (keepalived's behaviour) announces at once; a takeover after silence always does.
    pub handoff_announce_delay: Duration,
}

impl InstanceConfig {
    /// A configuration with keepalived's defaults: version per family (v2 for IPv4, v3 for IPv6),
    /// priority 100, 1 s adverts, preempt on, no delay, multicast, default GARP schedule.
    pub fn new(
        name: impl Into<String>,
        vrid: u8,
        primary_address: IpAddr,
        virtual_addresses: Vec<IpAddr>,
    ) -> Self {
        InstanceConfig {
            name: name.into(),
            vrid,
            version: if primary_address.is_ipv6() {
                Version::V3
            } else {
                Version::V2
            },
            priority: 100,
            advert_interval: Duration::from_secs(1),
            preempt: true,
            preempt_delay: Duration::ZERO,
            start_as_master: false,
            primary_address,
            virtual_addresses,
            auth_pass: None,
            skip_check_adv_addr: false,
            lower_prio_no_advert: false,
            garp: GarpConfig::default(),
            unicast_peers: Vec::new(),
            multicast_group: None,
            resume_master: false,
            handoff_announce_delay: Duration::ZERO,
        }
    }

    /// True when adverts go to unicast peers instead of the multicast group.
    pub fn is_unicast(&self) -> bool {
        !self.unicast_peers.is_empty()
    }

    /// Checks the configuration and returns it normalised (v3 interval rounded to centiseconds,
    /// keepalived's silent resets applied). Every rule names its source.
    pub(crate) fn validated(mut self) -> Result<Self, ConfigError> {
        if self.vrid == 0 {
            // RFC 5798 §5.2.3: VRID is 1..255.
            return Err(ConfigError::Vrid);
        }
        if self.priority == 0 {
            // RFC 5798 §5.2.4: 0 is reserved for "master stops"; configured priorities are 1..=255.
            return Err(ConfigError::Priority);
        }
        let v4 = self.primary_address.is_ipv4();
        if self.version == Version::V2 && !v4 {
            // RFC 3768 is IPv4 only; keepalived: "IPv6 addresses not allowed in VRRP version 2".
            return Err(ConfigError::V2WithIpv6);
        }
        if let Some(bad) = self
            .virtual_addresses
            .iter()
            .chain(self.unicast_peers.iter())
            .chain(self.multicast_group.iter())
            .find(|a| a.is_ipv4() != v4)
        {
            // keepalived: all virtual_ipaddress entries of one instance share one family.
            return Err(ConfigError::MixedFamilies(*bad));
        }
        if let Some(group) = self.multicast_group.filter(|g| !g.is_multicast()) {
            return Err(ConfigError::NotMulticast(group));
        }
        if self.virtual_addresses.len() > 255 {
            return Err(ConfigError::TooManyAddresses(self.virtual_addresses.len()));
        }
        if self.version == Version::V3 && self.virtual_addresses.is_empty() {
            // RFC 5798 §5.2.5 / keepalived: "No VIP specified; at least one is required" for v3.
            return Err(ConfigError::NoVirtualAddress);
        }
        match self.version {
            Version::V2 => {
                // RFC 3768 §5.3.7: Adver Int is whole seconds in 8 bits. keepalived silently rounds
                // (0.4 s becomes 0 s, issue #2191); we refuse instead.
                let secs = self.advert_interval.as_secs();
                if self.advert_interval.subsec_nanos() != 0 || !(1..=255).contains(&secs) {
                    return Err(ConfigError::V2Interval(self.advert_interval));
                }
            }
            Version::V3 => {
                // RFC 5798 §5.2.7: 12-bit centiseconds, 1..=4095 (0 would mean no adverts).
                let centis = (self.advert_interval.as_micros() + 5_000) / 10_000;
                if !(1..=u128::from(crate::packet::V3_MAX_ADVER_INT_CENTIS)).contains(&centis) {
                    return Err(ConfigError::V3Interval(self.advert_interval));
                }
                self.advert_interval =
                    Duration::from_millis(u64::try_from(centis * 10).unwrap_or(u64::MAX));
                if self.auth_pass.is_some() {
                    // RFC 5798 §9 removed authentication; keepalived ignores it with a warning.
                    return Err(ConfigError::V3Authentication);
                }
            }
        }
        if self.preempt_delay > Duration::from_secs(1000) {
            // keepalived.conf(5): preempt_delay range 0..1000 s.
            return Err(ConfigError::PreemptDelay(self.preempt_delay));
        }
        if self.priority == 255 && !self.preempt {
            // keepalived: "nopreempt is incompatible with priority 255 - resetting nopreempt";
            // RFC 5798 §6.1: the owner always preempts.
            tracing::warn!(instance = %self.name, "nopreempt ignored for the address owner (priority 255)");
            self.preempt = true;
        }
        if self.start_as_master && (!self.preempt || !self.preempt_delay.is_zero()) {
            // keepalived vrrp.c: "nopreempt will not work with initial state MASTER - clearing",
            // "preempt delay will not work with initial state MASTER - clearing".
            tracing::warn!(instance = %self.name, "initial state MASTER clears nopreempt and preempt_delay");
            self.preempt = true;
            self.preempt_delay = Duration::ZERO;
        }
        if !self.preempt && !self.preempt_delay.is_zero() {
            // keepalived: "preempt_delay is incompatible with nopreempt mode - resetting".
            tracing::warn!(instance = %self.name, "preempt_delay ignored with nopreempt");
            self.preempt_delay = Duration::ZERO;
        }
        Ok(self)
    }
}

/// A configuration the engine cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// VRID 0.
    #[error("virtual_router_id must be 1..=255, found 0")]
    Vrid,
    /// Priority 0.
    #[error("priority must be 1..=255, found 0 (0 is reserved for a stopping master)")]
    Priority,
    /// VRRPv2 with IPv6 addresses.
    #[error("VRRP version 2 cannot carry IPv6 (RFC 3768 is IPv4 only); use version 3")]
    V2WithIpv6,
    /// Addresses of different families in one instance.
    #[error("address {0} is not of the same family as the primary address")]
    MixedFamilies(IpAddr),
    /// The configured advert group is not a multicast address.
    #[error("{0} is not a multicast address")]
    NotMulticast(IpAddr),
    /// More than 255 virtual addresses.
    #[error("{0} virtual addresses do not fit one advert (at most 255)")]
    TooManyAddresses(usize),
    /// VRRPv3 without virtual addresses.
    #[error("VRRP version 3 needs at least one virtual address")]
    NoVirtualAddress,
    /// VRRPv2 interval not whole seconds in 1..=255.
    #[error("VRRP version 2 advert interval must be whole seconds 1..=255, found {0:?}")]
    V2Interval(Duration),
    /// VRRPv3 interval outside 10 ms..=40.95 s.
    #[error("VRRP version 3 advert interval must be 0.01..=40.95 s, found {0:?}")]
    V3Interval(Duration),
    /// Authentication with VRRPv3.
    #[error("VRRP version 3 has no authentication (RFC 5798 §9); remove auth_pass")]
    V3Authentication,
    /// preempt_delay above 1000 s.
    #[error("preempt_delay must be at most 1000 s, found {0:?}")]
    PreemptDelay(Duration),
}
