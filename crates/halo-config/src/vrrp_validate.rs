//! Semantic rules of the VRRP model that serde cannot express: ranges, cross references,
//! protocol constraints. Shared by the native loader and the keepalived importer.

use crate::field_path::{FieldPath, Issue};
use crate::vrrp::{InitialState, TrackRef, VrrpConfig, VrrpInstance, VrrpVersion};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

/// Longest VRRPv3 advert interval: the 12-bit centisecond field, 4095 cs (RFC 5798 §5.2.7).
const V3_MAX_ADVERT: Duration = Duration::from_millis(40_950);
/// Longest VRRPv2 advert interval: the 8-bit seconds field (RFC 3768 §5.3.7).
const V2_MAX_ADVERT_SECS: u64 = 255;

/// Every problem of `config`, in model order. `root` is where the VRRP section sits
/// (`vrrp` in the native file).
pub(crate) fn validate(config: &VrrpConfig, root: &FieldPath) -> Vec<Issue> {
    let mut issues = Vec::new();
    global(config, root, &mut issues);
    scripts(config, root, &mut issues);

    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut vrids: HashMap<(&str, u8, bool), &str> = HashMap::new();
    for (i, instance) in config.instances.iter().enumerate() {
        let path = root.key("instance").index(i);
        if let Some(first) = names.insert(&instance.name, i) {
            issues.push(Issue::error(
                path.key("name"),
                format!(
                    "duplicate VRRP instance name \"{}\" (also instance {})",
                    instance.name,
                    first + 1
                ),
            ));
        }
        // Two multicast instances with one VRID on one link and family would answer each
        // other's adverts (RFC 5798 §7.1: the VRID identifies the virtual router on a LAN).
        let family_v6 = instance
            .virtual_ipaddress
            .first()
            .is_some_and(|v| v.addr.is_ipv6());
        if instance.unicast_peer.is_empty() && instance.vrid != 0 {
            if let Some(other) = vrids.insert(
                (&instance.interface, instance.vrid, family_v6),
                &instance.name,
            ) {
                issues.push(Issue::error(
                    path.key("vrid"),
                    format!(
                        "virtual router id {} is already used by instance \"{other}\" on interface {}",
                        instance.vrid, instance.interface
                    ),
                ));
            }
        }
        self::instance(config, instance, &path, &mut issues);
    }

    let mut grouped: HashMap<&str, &str> = HashMap::new();
    for (i, group) in config.sync_groups.iter().enumerate() {
        let path = root.key("sync_group").index(i);
        if group.members.is_empty() {
            issues.push(Issue::error(
                path.key("members"),
                format!("sync group \"{}\" has no members", group.name),
            ));
        }
        for (m, member) in group.members.iter().enumerate() {
            if !names.contains_key(member.as_str()) {
                issues.push(
                    Issue::error(
                        path.key("members").index(m),
                        format!(
                            "sync group \"{}\" names unknown instance \"{member}\"",
                            group.name
                        ),
                    )
                    .expected(one_of(config.instances.iter().map(|i| i.name.as_str()))),
                );
            } else if let Some(other) = grouped.insert(member, &group.name) {
                issues.push(Issue::error(
                    path.key("members").index(m),
                    format!("instance \"{member}\" is already in sync group \"{other}\""),
                ));
            }
        }
    }
    issues
}

fn global(config: &VrrpConfig, root: &FieldPath, issues: &mut Vec<Issue>) {
    let path = root.key("global");
    let g = &config.global;
    // Only 224.0.0.0/24 is never IGMP-snooped; other groups silently break (keepalived PR #1663).
    let o = g.mcast_group4.octets();
    if !(o[0] == 224 && o[1] == 0 && o[2] == 0) {
        issues.push(
            Issue::warning(
                path.key("mcast_group4"),
                format!(
                    "multicast group {} is outside 224.0.0.0/24; switches may snoop it and drop adverts",
                    g.mcast_group4
                ),
            )
            .expected("an address in 224.0.0.0/24 such as 224.0.0.18"),
        );
    }
    if !g.mcast_group4.is_multicast() {
        issues.push(Issue::error(
            path.key("mcast_group4"),
            format!("{} is not a multicast address", g.mcast_group4),
        ));
    }
    let seg = g.mcast_group6.segments();
    if seg[0] & 0xff0f != 0xff02 {
        issues.push(
            Issue::error(
                path.key("mcast_group6"),
                format!("{} is not a link-local multicast group", g.mcast_group6),
            )
            .expected("an address in ffX2::/16 such as ff02::12"),
        );
    }
    if let Some(smtp) = &g.smtp_server {
        if smtp.host.is_empty() || smtp.port == 0 {
            issues.push(Issue::error(
                path.key("smtp_server"),
                format!("invalid SMTP server \"{}:{}\"", smtp.host, smtp.port),
            ));
        }
    }
}

fn scripts(config: &VrrpConfig, root: &FieldPath, issues: &mut Vec<Issue>) {
    let mut seen = HashSet::new();
    for (i, script) in config.scripts.iter().enumerate() {
        let path = root.key("script").index(i);
        if !seen.insert(script.name.as_str()) {
            issues.push(Issue::error(
                path.key("name"),
                format!("duplicate script name \"{}\"", script.name),
            ));
        }
        if script.script.trim().is_empty() {
            issues.push(Issue::error(path.key("script"), "empty script command"));
        }
        if script.interval.is_zero() {
            issues.push(
                Issue::error(path.key("interval"), "script interval 0").expected("at least 1s"),
            );
        }
        weight_in(script.weight, 253, &path.key("weight"), issues);
        if script.rise == 0 || script.fall == 0 {
            let key = if script.rise == 0 { "rise" } else { "fall" };
            issues.push(Issue::error(path.key(key), format!("{key} 0")).expected("at least 1"));
        }
    }
    let mut seen = HashSet::new();
    for (i, file) in config.track_files.iter().enumerate() {
        let path = root.key("track_file").index(i);
        if !seen.insert(file.name.as_str()) {
            issues.push(Issue::error(
                path.key("name"),
                format!("duplicate track file name \"{}\"", file.name),
            ));
        }
    }
}

fn weight_in(weight: i32, bound: i32, path: &FieldPath, issues: &mut Vec<Issue>) {
    if !(-bound..=bound).contains(&weight) {
        issues.push(
            Issue::error(path.clone(), format!("weight {weight} out of range"))
                .expected(format!("-{bound}..={bound}")),
        );
    }
}

fn one_of<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<_> = names.collect();
    if names.is_empty() {
        "a defined name (none are defined)".to_string()
    } else {
        format!("one of {}", names.join(", "))
    }
}

fn instance(config: &VrrpConfig, inst: &VrrpInstance, path: &FieldPath, issues: &mut Vec<Issue>) {
    let strict = config.global.strict;
    if inst.interface.is_empty() {
        issues.push(Issue::error(path.key("interface"), "empty interface name"));
    }
    if inst.vrid == 0 {
        issues.push(
            Issue::error(path.key("vrid"), "virtual router id 0 out of range").expected("1..=255"),
        );
    }
    if inst.priority == 0 {
        // Priority 0 is reserved for "master is leaving" adverts (RFC 5798 §5.2.4).
        issues.push(
            Issue::error(
                path.key("priority"),
                "priority 0 out of range (0 is reserved for the shutdown advert)",
            )
            .expected("1..=255"),
        );
    }

    let version = inst.effective_version(&config.global);
    let any_v6 = inst.virtual_ipaddress.iter().any(|v| v.addr.is_ipv6());
    if any_v6 && inst.version == Some(VrrpVersion::V2) {
        issues.push(
            Issue::error(
                path.key("version"),
                "VRRPv2 cannot carry IPv6 addresses (RFC 3768 is IPv4 only)",
            )
            .expected("version 3"),
        );
    }
    advert_interval(
        inst.advert_interval,
        version,
        &path.key("advert_interval"),
        issues,
    );

    if let Some(auth) = &inst.authentication {
        if auth.password.is_empty() || auth.password.len() > 8 {
            issues.push(
                Issue::error(
                    path.key("authentication").key("password"),
                    format!("password of {} bytes", auth.password.len()),
                )
                .expected("1 to 8 bytes"),
            );
        }
        if version == VrrpVersion::V3 {
            issues.push(
                Issue::error(
                    path.key("authentication"),
                    "authentication exists only in VRRPv2 (RFC 5798 has no authentication field)",
                )
                .expected("version 2, or no authentication"),
            );
        }
    }

    addresses(inst, path, issues);

    if let Some(src) = inst.unicast_src_ip {
        if let Some(peer) = inst
            .unicast_peer
            .iter()
            .find(|p| p.is_ipv4() != src.is_ipv4())
        {
            issues.push(Issue::error(
                path.key("unicast_peer"),
                format!("unicast peer {peer} and unicast_src_ip {src} are of different address families"),
            ));
        }
    }
    if inst.preempt_delay > Duration::from_secs(1000) {
        issues.push(
            Issue::error(path.key("preempt_delay"), "preempt_delay over 1000 s")
                .expected("0s..=1000s"),
        );
    }
    if inst.nopreempt && inst.state == InitialState::Master {
        issues.push(Issue::warning(
            path.key("state"),
            "initial state MASTER with nopreempt: the instance would preempt at start; halo starts it as BACKUP",
        ));
    }

    let scripts: Vec<&str> = config.scripts.iter().map(|s| s.name.as_str()).collect();
    track_refs(
        &inst.track_script,
        "track_script",
        &scripts,
        253,
        path,
        issues,
    );
    let files: Vec<&str> = config.track_files.iter().map(|f| f.name.as_str()).collect();
    track_refs(&inst.track_file, "track_file", &files, 254, path, issues);
    for (t, track) in inst.track_interface.iter().enumerate() {
        if let Some(w) = track.weight {
            weight_in(
                w,
                253,
                &path.key("track_interface").index(t).key("weight"),
                issues,
            );
        }
    }

    if strict {
        strict_rules(inst, version, path, issues);
    }
}

/// Checks an instance's `list` (`track_script` or `track_file`): each reference must name one of
/// `defined`, and an explicit weight must lie within -`bound`..=`bound`.
fn track_refs(
    tracks: &[TrackRef],
    list: &str,
    defined: &[&str],
    bound: i32,
    path: &FieldPath,
    issues: &mut Vec<Issue>,
) {
    for (t, track) in tracks.iter().enumerate() {
        let tpath = path.key(list).index(t);
        if !defined.contains(&track.name.as_str()) {
            issues.push(
                Issue::error(
                    tpath.key("name"),
                    format!("unknown {list} \"{}\"", track.name),
                )
                .expected(one_of(defined.iter().copied())),
            );
        }
        if let Some(w) = track.weight {
            weight_in(w, bound, &tpath.key("weight"), issues);
        }
    }
}

/// `vrrp_strict` (keepalived man page, global_defs): the protocol rules halo enforces.
fn strict_rules(
    inst: &VrrpInstance,
    version: VrrpVersion,
    path: &FieldPath,
    issues: &mut Vec<Issue>,
) {
    if inst.virtual_ipaddress.is_empty() {
        issues.push(Issue::error(
            path.key("virtual_ipaddress"),
            "strict mode: an instance needs at least one virtual address",
        ));
    }
    if !inst.unicast_peer.is_empty() {
        issues.push(Issue::error(
            path.key("unicast_peer"),
            "strict mode: unicast peers are not allowed (RFC VRRP is multicast)",
        ));
    }
    if !inst.preempt_delay.is_zero() {
        issues.push(Issue::error(
            path.key("preempt_delay"),
            "strict mode: preempt_delay is not part of the RFC",
        ));
    }
    if let Some(first) = inst.virtual_ipaddress.first() {
        if let IpAddr::V6(v6) = first.addr {
            if v6.segments()[0] & 0xffc0 != 0xfe80 {
                issues.push(Issue::error(
                    path.key("virtual_ipaddress").index(0),
                    format!("strict mode: the first IPv6 virtual address {v6} must be link-local (RFC 5798 §5.2.9)"),
                ));
            }
        }
    }
    if inst.state == InitialState::Master && inst.priority != 255 {
        issues.push(Issue::warning(
            path.key("state"),
            format!(
                "strict mode: initial state MASTER needs priority 255 (have {}); the instance waits for the master-down timer like a BACKUP",
                inst.priority
            ),
        ));
    }
    if inst.authentication.is_some() && version == VrrpVersion::V2 {
        issues.push(Issue::warning(
            path.key("authentication"),
            "strict mode: keepalived drops PASS authentication here; halo keeps it so that peers still accept the adverts",
        ));
    }
}

/// RFC 3768 §5.3.7: v2 carries whole seconds (1..=255). RFC 5798 §5.2.7: v3 carries
/// centiseconds in 12 bits (10 ms..=40.95 s).
fn advert_interval(
    interval: Duration,
    version: VrrpVersion,
    path: &FieldPath,
    issues: &mut Vec<Issue>,
) {
    let shown = crate::duration_text::format(interval);
    match version {
        VrrpVersion::V2 => {
            if interval.subsec_nanos() != 0 || interval.is_zero() {
                issues.push(
                    Issue::error(
                        path.clone(),
                        format!(
                            "advert interval {shown} is not a whole number of seconds, which VRRPv2 needs (needs vrrp_version 3)"
                        ),
                    )
                    .expected("whole seconds 1..=255 with VRRPv2"),
                );
            } else if interval.as_secs() > V2_MAX_ADVERT_SECS {
                issues.push(
                    Issue::error(path.clone(), format!("advert interval {shown} too long"))
                        .expected("1s..=255s"),
                );
            }
        }
        VrrpVersion::V3 => {
            if interval < Duration::from_millis(10) || interval > V3_MAX_ADVERT {
                issues.push(
                    Issue::error(
                        path.clone(),
                        format!("advert interval {shown} out of range"),
                    )
                    .expected("10ms..=40.95s with VRRPv3"),
                );
            } else if interval.as_micros() % 10_000 != 0 {
                issues.push(
                    Issue::error(
                        path.clone(),
                        format!("advert interval {shown} is not a whole number of centiseconds"),
                    )
                    .expected("a multiple of 10ms"),
                );
            }
        }
    }
}

fn addresses(inst: &VrrpInstance, path: &FieldPath, issues: &mut Vec<Issue>) {
    for (key, list) in [
        ("virtual_ipaddress", &inst.virtual_ipaddress),
        (
            "virtual_ipaddress_excluded",
            &inst.virtual_ipaddress_excluded,
        ),
    ] {
        let mut seen = HashSet::new();
        for (i, vip) in list.iter().enumerate() {
            let vpath = path.key(key).index(i);
            let max = if vip.addr.is_ipv4() { 32 } else { 128 };
            if vip.prefix_len > max {
                issues.push(
                    Issue::error(
                        vpath.key("prefix_len"),
                        format!(
                            "prefix length /{} too long for {}",
                            vip.prefix_len, vip.addr
                        ),
                    )
                    .expected(format!("0..={max}")),
                );
            }
            if vip.addr.is_unspecified() || vip.addr.is_multicast() {
                issues.push(Issue::error(
                    vpath.key("addr"),
                    format!("{} cannot be a virtual address", vip.addr),
                ));
            }
            if !seen.insert(vip.addr) {
                issues.push(Issue::error(
                    vpath.key("addr"),
                    format!("virtual address {} listed twice", vip.addr),
                ));
            }
        }
    }
    if let Some(first) = inst.virtual_ipaddress.first() {
        if let Some((i, other)) = inst
            .virtual_ipaddress
            .iter()
            .enumerate()
            .find(|(_, v)| v.addr.is_ipv4() != first.addr.is_ipv4())
        {
            issues.push(
                Issue::error(
                    path.key("virtual_ipaddress").index(i),
                    format!(
                        "{} and {} are of different address families in one instance",
                        first.addr, other.addr
                    ),
                )
                .expected("one family per instance; put the others in virtual_ipaddress_excluded"),
            );
        }
    }
}
