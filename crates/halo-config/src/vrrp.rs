//! The VRRP side of the configuration model (instances, checks, notify hooks, sync groups, alerts).
//!
//! This is also the native TOML schema of the `[vrrp]` section. Field defaults are halo's
//! (VRRPv3, 100 ms adverts, accept mode on); the keepalived importer fills in keepalived's
//! own defaults explicitly (VRRPv2 unless `vrrp_version 3`, 1 s adverts), so an imported
//! configuration behaves like keepalived whatever the native defaults are.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

/// Everything VRRP: global settings, health checks, instances and sync groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct VrrpConfig {
    /// keepalived's `global_defs` (the VRRP part of it).
    pub global: GlobalDefs,
    /// Health-check scripts (`vrrp_script`), referenced by name from `track_script`.
    #[serde(rename = "script", skip_serializing_if = "Vec::is_empty")]
    pub scripts: Vec<VrrpScript>,
    /// Watched files (`track_file` blocks), referenced by name from an instance's `track_file`.
    #[serde(rename = "track_file", skip_serializing_if = "Vec::is_empty")]
    pub track_files: Vec<TrackFile>,
    /// The virtual routers (`vrrp_instance`).
    #[serde(rename = "instance", skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<VrrpInstance>,
    /// Instances that change state together (`vrrp_sync_group`).
    #[serde(rename = "sync_group", skip_serializing_if = "Vec::is_empty")]
    pub sync_groups: Vec<SyncGroup>,
}

/// The VRRP protocol version. RFC 3768 (v2, IPv4 only, whole-second adverts) or RFC 5798
/// (v3, IPv4 and IPv6, centisecond adverts). Written as the number `2` or `3`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VrrpVersion {
    /// VRRPv2, RFC 3768.
    V2,
    /// VRRPv3, RFC 5798 (halo's default).
    #[default]
    V3,
}

impl VrrpVersion {
    /// The version number on the wire.
    pub fn number(self) -> u8 {
        match self {
            VrrpVersion::V2 => 2,
            VrrpVersion::V3 => 3,
        }
    }
}

impl Serialize for VrrpVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.number())
    }
}

impl<'de> Deserialize<'de> for VrrpVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match i64::deserialize(deserializer)? {
            2 => Ok(VrrpVersion::V2),
            3 => Ok(VrrpVersion::V3),
            other => Err(serde::de::Error::custom(format!(
                "invalid VRRP version {other}, expected 2 or 3"
            ))),
        }
    }
}

/// A user (and optionally group) to run a script as (`user USERNAME [GROUPNAME]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunAs {
    /// User name.
    pub user: String,
    /// Group name; `None` = the user's primary group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// SMTP relay for state-change alerts (`smtp_server HOST [PORT]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpServer {
    /// Host name or IP address; halo resolves names when it sends.
    pub host: String,
    /// TCP port (default 25).
    #[serde(default = "default_smtp_port")]
    pub port: u16,
}

fn default_smtp_port() -> u16 {
    25
}

/// Global VRRP settings (keepalived `global_defs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlobalDefs {
    /// Name of this machine in alerts (default: the host name, filled in at run time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub router_id: Option<String>,
    /// Default protocol version of instances (native default 3; keepalived's is 2).
    pub vrrp_version: VrrpVersion,
    /// Enforce strict RFC conformance (`vrrp_strict`): see `docs/compatibility.md`. Unlike
    /// keepalived, halo never installs firewall rules that make VIPs unreachable.
    pub strict: bool,
    /// Skip re-checking the address list of adverts from the same master.
    pub skip_check_adv_addr: bool,
    /// Delay between gratuitous ARPs sent on one interface (default 0 = no delay).
    #[serde(with = "crate::duration_text")]
    pub garp_interval: Duration,
    /// Delay between unsolicited neighbour advertisements on one interface (default 0).
    #[serde(with = "crate::duration_text")]
    pub gna_interval: Duration,
    /// Default user for scripts and notify hooks (`script_user`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script_user: Option<RunAs>,
    /// Refuse scripts that run as root but are writable by others (`enable_script_security`).
    pub enable_script_security: bool,
    /// Recipients of state-change mails.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notification_email: Vec<String>,
    /// Sender of state-change mails (default `halo@<hostname>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_email_from: Option<String>,
    /// SMTP relay; no mails without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_server: Option<SmtpServer>,
    /// SMTP connect timeout (default 30 s).
    #[serde(with = "crate::duration_text")]
    pub smtp_connect_timeout: Duration,
    /// IPv4 advert group (default 224.0.0.18, RFC 5798 §5.1.1.2).
    pub mcast_group4: Ipv4Addr,
    /// IPv6 advert group (default ff02::12, RFC 5798 §5.1.2.2).
    pub mcast_group6: Ipv6Addr,
}

impl Default for GlobalDefs {
    fn default() -> Self {
        Self {
            router_id: None,
            vrrp_version: VrrpVersion::V3,
            strict: false,
            skip_check_adv_addr: false,
            garp_interval: Duration::ZERO,
            gna_interval: Duration::ZERO,
            script_user: None,
            enable_script_security: false,
            notification_email: Vec::new(),
            notification_email_from: None,
            smtp_server: None,
            smtp_connect_timeout: Duration::from_secs(30),
            mcast_group4: Ipv4Addr::new(224, 0, 0, 18),
            mcast_group6: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12),
        }
    }
}

/// A periodic health check (`vrrp_script`). Exit status 0 = OK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpScript {
    /// Name referenced by `track_script`.
    pub name: String,
    /// Command line (split on unquoted spaces, no shell).
    pub script: String,
    /// Time between runs (default 1 s).
    #[serde(default = "one_second", with = "crate::duration_text")]
    pub interval: Duration,
    /// Run time after which the check counts as failed (default: the interval).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::duration_text::option"
    )]
    pub timeout: Option<Duration>,
    /// Priority change, -253..=253 (default 0 = FAULT after `fall` failures). Positive: added
    /// while OK; negative: subtracted while failed.
    #[serde(default)]
    pub weight: i32,
    /// Invert the direction of the weight.
    #[serde(default)]
    pub reverse: bool,
    /// Consecutive successes to become OK (default 1).
    #[serde(default = "one")]
    pub rise: u32,
    /// Consecutive failures to become failed (default 1).
    #[serde(default = "one")]
    pub fall: u32,
    /// Run as this user instead of the global `script_user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<RunAs>,
    /// Start in the failed state.
    #[serde(default)]
    pub init_fail: bool,
}

impl VrrpScript {
    /// A script with keepalived's defaults for everything but its name and command line
    /// (the same defaults a native file gets for omitted keys).
    pub fn new(name: impl Into<String>, script: impl Into<String>) -> Self {
        VrrpScript {
            name: name.into(),
            script: script.into(),
            interval: one_second(),
            timeout: None,
            weight: 0,
            reverse: false,
            rise: one(),
            fall: one(),
            user: None,
            init_fail: false,
        }
    }
}

fn one_second() -> Duration {
    Duration::from_secs(1)
}

fn one() -> u32 {
    1
}

/// A file whose integer content, times `weight`, adjusts priority (`track_file` block).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackFile {
    /// Name referenced by an instance's `track_file`.
    pub name: String,
    /// The watched file.
    pub file: PathBuf,
    /// Multiplier (default 1; 0 = any non-zero value means FAULT).
    #[serde(default = "one_i32")]
    pub weight: i32,
    /// Invert the direction of the weight.
    #[serde(default)]
    pub reverse: bool,
    /// Write this value at start if the file does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_file: Option<i64>,
}

fn one_i32() -> i32 {
    1
}

/// The state an instance starts in; only a hint, priority decides (RFC 5798 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum InitialState {
    /// Start as master (immediately only with priority 255).
    Master,
    /// Start as backup (default).
    #[default]
    Backup,
}

/// Advert authentication (VRRPv2 only; removed by RFC 3768 but kept for interoperability).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Authentication {
    /// The kind; only simple password (`PASS`) is supported.
    #[serde(rename = "type")]
    pub auth_type: AuthType,
    /// The password, at most 8 bytes (keepalived uses only the first 8).
    pub password: String,
}

/// Kind of advert authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AuthType {
    /// Clear-text password in the 8-byte authentication field (RFC 2338 type 1).
    Pass,
}

/// A virtual address (`virtual_ipaddress` entry): `ADDR[/LEN] [dev IF] [label L] [brd B] [scope S]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualAddress {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length (default 32 for IPv4, 128 for IPv6).
    pub prefix_len: u8,
    /// Interface to add it to (default: the instance's interface).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// Address label (`eth0:1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// IPv4 broadcast address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brd: Option<Ipv4Addr>,
    /// Address scope (`global`, `site`, `link`, `host`, `nowhere`; default global).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Do not leave MASTER if the address is deleted behind halo's back.
    #[serde(default)]
    pub no_track: bool,
}

impl VirtualAddress {
    /// A host address (/32 or /128) with no options.
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            prefix_len: if addr.is_ipv4() { 32 } else { 128 },
            dev: None,
            label: None,
            brd: None,
            scope: None,
            no_track: false,
        }
    }
}

/// A reference to a script, file or interface with an optional weight override.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackRef {
    /// The script, track file or interface name.
    pub name: String,
    /// Overrides the tracked object's own weight (interfaces: `None` = FAULT when down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i32>,
    /// Invert the direction of the weight.
    #[serde(default)]
    pub reverse: bool,
}

impl TrackRef {
    /// A reference without weight override.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            weight: None,
            reverse: false,
        }
    }
}

/// A command run on a state change (`notify_master "/path arg" [user [group]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    /// Command line (split on unquoted spaces, no shell).
    pub command: String,
    /// Run as this user instead of the global `script_user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<RunAs>,
}

/// One virtual router (`vrrp_instance`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpInstance {
    /// Instance name (`VI_1`), used in logs, hooks and reload diffs.
    pub name: String,
    /// Initial state hint (default BACKUP).
    #[serde(default)]
    pub state: InitialState,
    /// Interface adverts are sent and received on.
    pub interface: String,
    /// Virtual router id, 1..=255.
    pub vrid: u8,
    /// Priority, 1..=255 (255 = address owner); default 100.
    #[serde(default = "default_priority")]
    pub priority: u8,
    /// Advertisement interval (native default 100 ms; VRRPv2 needs whole seconds).
    #[serde(default = "default_advert_interval", with = "crate::duration_text")]
    pub advert_interval: Duration,
    /// Protocol version; `None` = the global `vrrp_version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<VrrpVersion>,
    /// Simple-password authentication (VRRPv2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
    /// The virtual addresses carried in adverts (one family per instance).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_ipaddress: Vec<VirtualAddress>,
    /// Addresses added with the VIPs but not carried in adverts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_ipaddress_excluded: Vec<VirtualAddress>,
    /// Source address of adverts (default: the interface's primary address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unicast_src_ip: Option<IpAddr>,
    /// Send adverts by unicast to these peers instead of multicast.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unicast_peer: Vec<IpAddr>,
    /// Do not take over from a lower-priority master.
    #[serde(default)]
    pub nopreempt: bool,
    /// Extra wait before preempting (0..=1000 s, default 0).
    #[serde(default, with = "crate::duration_text")]
    pub preempt_delay: Duration,
    /// Health-check scripts that adjust priority or force FAULT.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_script: Vec<TrackRef>,
    /// Interfaces whose link state adjusts priority or forces FAULT.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_interface: Vec<TrackRef>,
    /// Track files (by name) whose value adjusts priority.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub track_file: Vec<TrackRef>,
    /// Run on becoming MASTER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_master: Option<Hook>,
    /// Run on becoming BACKUP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_backup: Option<Hook>,
    /// Run on entering FAULT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_fault: Option<Hook>,
    /// Run when the instance stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_stop: Option<Hook>,
    /// Run on every change, after the specific hook, with `INSTANCE name STATE priority` appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Hook>,
    /// Mail state changes through the global SMTP settings.
    #[serde(default)]
    pub smtp_alert: bool,
    /// Delay of the second gratuitous ARP burst after becoming MASTER (default 5 s; 0 = none).
    #[serde(default = "five_seconds", with = "crate::duration_text")]
    pub garp_master_delay: Duration,
    /// Gratuitous ARPs per burst (default 5).
    #[serde(default = "five")]
    pub garp_master_repeat: u32,
    /// Period of gratuitous ARP refresh while MASTER (default 0 = none).
    #[serde(default, with = "crate::duration_text")]
    pub garp_master_refresh: Duration,
    /// Gratuitous ARPs per refresh (default 1).
    #[serde(default = "one")]
    pub garp_master_refresh_repeat: u32,
    /// Delay of the second burst after hearing a lower-priority advert as MASTER
    /// (default: `garp_master_delay`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::duration_text::option"
    )]
    pub garp_lower_prio_delay: Option<Duration>,
    /// Gratuitous ARPs per burst after hearing a lower-priority advert (default:
    /// `garp_master_repeat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub garp_lower_prio_repeat: Option<u32>,
    /// As MASTER, do not answer a lower-priority advert with an advert (RFC behaviour;
    /// keepalived's default is to answer).
    #[serde(default)]
    pub lower_prio_no_advert: bool,
    /// Accept packets addressed to the VIPs when not the address owner (RFC 5798 §6.1
    /// Accept_Mode; default on, since the VIP is where the proxy listens).
    #[serde(default = "yes")]
    pub accept: bool,
}

fn default_priority() -> u8 {
    100
}

/// halo's native advert interval: 100 ms (VRRPv3 centisecond field = 10).
pub const NATIVE_ADVERT_INTERVAL: Duration = Duration::from_millis(100);

/// keepalived's advert interval default: 1 s.
pub const KEEPALIVED_ADVERT_INTERVAL: Duration = Duration::from_secs(1);

fn default_advert_interval() -> Duration {
    NATIVE_ADVERT_INTERVAL
}

fn five_seconds() -> Duration {
    Duration::from_secs(5)
}

fn five() -> u32 {
    5
}

fn yes() -> bool {
    true
}

impl VrrpInstance {
    /// An instance with native defaults and no addresses.
    pub fn new(name: impl Into<String>, interface: impl Into<String>, vrid: u8) -> Self {
        Self {
            name: name.into(),
            state: InitialState::Backup,
            interface: interface.into(),
            vrid,
            priority: default_priority(),
            advert_interval: NATIVE_ADVERT_INTERVAL,
            version: None,
            authentication: None,
            virtual_ipaddress: Vec::new(),
            virtual_ipaddress_excluded: Vec::new(),
            unicast_src_ip: None,
            unicast_peer: Vec::new(),
            nopreempt: false,
            preempt_delay: Duration::ZERO,
            track_script: Vec::new(),
            track_interface: Vec::new(),
            track_file: Vec::new(),
            notify_master: None,
            notify_backup: None,
            notify_fault: None,
            notify_stop: None,
            notify: None,
            smtp_alert: false,
            garp_master_delay: five_seconds(),
            garp_master_repeat: five(),
            garp_master_refresh: Duration::ZERO,
            garp_master_refresh_repeat: one(),
            garp_lower_prio_delay: None,
            garp_lower_prio_repeat: None,
            lower_prio_no_advert: false,
            accept: true,
        }
    }

    /// The version this instance runs: its own, else the global default. IPv6 instances
    /// always run VRRPv3 (RFC 3768 is IPv4 only).
    pub fn effective_version(&self, global: &GlobalDefs) -> VrrpVersion {
        if self
            .virtual_ipaddress
            .first()
            .is_some_and(|v| v.addr.is_ipv6())
        {
            return VrrpVersion::V3;
        }
        self.version.unwrap_or(global.vrrp_version)
    }
}

/// Instances that move between states together (`vrrp_sync_group`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncGroup {
    /// Group name.
    pub name: String,
    /// Names of member instances.
    pub members: Vec<String>,
    /// Run when the group becomes MASTER.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_master: Option<Hook>,
    /// Run when the group becomes BACKUP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_backup: Option<Hook>,
    /// Run when the group enters FAULT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_fault: Option<Hook>,
    /// Run when the group stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_stop: Option<Hook>,
    /// Run on every change with `GROUP name STATE priority` appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Hook>,
    /// Mail state changes.
    #[serde(default)]
    pub smtp_alert: bool,
}
