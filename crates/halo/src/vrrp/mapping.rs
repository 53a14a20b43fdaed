//! From the configuration model (`halo_config::vrrp`) to the engine's `InstanceConfig`.

use std::net::IpAddr;

use halo_config::vrrp::{GlobalDefs, VrrpInstance, VrrpVersion};
use halo_vrrp::{GarpConfig, InstanceConfig, Version};

/// Builds the engine configuration of one instance. `primary` is the source address the instance
/// advertises from (the interface's primary IPv4 address, its IPv6 link-local, or `unicast_src_ip`).
pub fn engine_config(global: &GlobalDefs, inst: &VrrpInstance, primary: IpAddr) -> InstanceConfig {
    let version = match inst.effective_version(global) {
        VrrpVersion::V2 => Version::V2,
        VrrpVersion::V3 => Version::V3,
    };
    let mut cfg = InstanceConfig::new(
        inst.name.clone(),
        inst.vrid,
        primary,
        inst.virtual_ipaddress.iter().map(|v| v.addr).collect(),
    );
    cfg.version = version;
    cfg.priority = inst.priority;
    cfg.advert_interval = inst.advert_interval;
    cfg.preempt = !inst.nopreempt;
    cfg.preempt_delay = inst.preempt_delay;
    cfg.start_as_master = matches!(inst.state, halo_config::vrrp::InitialState::Master);
    cfg.auth_pass = inst
        .authentication
        .as_ref()
        .map(|a| pass_bytes(&a.password));
    cfg.skip_check_adv_addr = global.skip_check_adv_addr;
    // vrrp_strict forces the RFC's behaviour for a master hearing a lower priority (keepalived man page).
    cfg.lower_prio_no_advert = inst.lower_prio_no_advert || global.strict;
    cfg.unicast_peers = inst.unicast_peer.clone();
    cfg.multicast_group = Some(if primary.is_ipv4() {
        IpAddr::V4(global.mcast_group4)
    } else {
        IpAddr::V6(global.mcast_group6)
    });
    cfg.handoff_announce_delay = super::instance_task::HANDOFF_ANNOUNCE_DELAY;
    let interval = if primary.is_ipv4() {
        global.garp_interval
    } else {
        global.gna_interval
    };
    cfg.garp = GarpConfig {
        master_delay: inst.garp_master_delay,
        master_repeat: inst.garp_master_repeat,
        master_refresh: inst.garp_master_refresh,
        refresh_repeat: inst.garp_master_refresh_repeat,
        lower_prio_delay: inst.garp_lower_prio_delay.unwrap_or(inst.garp_master_delay),
        lower_prio_repeat: inst
            .garp_lower_prio_repeat
            .unwrap_or(inst.garp_master_repeat),
        interval,
    };
    cfg
}

/// keepalived uses the first 8 bytes of `auth_pass`, zero padded (RFC 2338 §5.3.10 / RFC 3768 §5.3.10).
pub fn pass_bytes(password: &str) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (o, b) in out.iter_mut().zip(password.as_bytes()) {
        *o = *b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_is_truncated_and_padded_like_keepalived() {
        assert_eq!(&pass_bytes("1111"), b"1111\0\0\0\0");
        assert_eq!(&pass_bytes("0123456789"), b"01234567");
    }
}
