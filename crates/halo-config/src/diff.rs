//! What changed between two configurations, so that a reload touches only what it must:
//! unchanged VRRP instances keep their state (no election, no advert gap), and the proxy is
//! swapped only when its side changed.

use crate::vrrp::{GlobalDefs, VrrpConfig, VrrpInstance};
use crate::Config;

/// The differences between an old and a new [`Config`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigDiff {
    /// Instances (by name) only in the new configuration: start them.
    pub vrrp_added: Vec<String>,
    /// Instances only in the old configuration: stop them (priority-0 advert if MASTER).
    pub vrrp_removed: Vec<String>,
    /// Instances in both whose effective settings differ: their own fields, a script or track
    /// file they reference, their sync group, or a protocol-relevant global (version, groups,
    /// strict mode, GARP/NA spacing). Restart or reconfigure them.
    pub vrrp_changed: Vec<String>,
    /// Global settings that affect no instance's protocol changed (alerts, script user, ...).
    pub vrrp_global_changed: bool,
    /// The HTTP side changed (including being added or removed).
    pub http_changed: bool,
    /// The admin interface changed.
    pub admin_changed: bool,
}

impl ConfigDiff {
    /// Whether nothing changed at all.
    pub fn is_empty(&self) -> bool {
        self.vrrp_added.is_empty()
            && self.vrrp_removed.is_empty()
            && self.vrrp_changed.is_empty()
            && !self.vrrp_global_changed
            && !self.http_changed
            && !self.admin_changed
    }
}

/// Compares `old` with `new`; instance lists keep the order of the configuration they come from.
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let protocol_globals_changed =
        protocol_globals(&old.vrrp.global) != protocol_globals(&new.vrrp.global);
    let mut result = ConfigDiff {
        vrrp_global_changed: old.vrrp.global != new.vrrp.global,
        http_changed: old.http != new.http,
        admin_changed: old.admin != new.admin,
        ..ConfigDiff::default()
    };
    for inst in &new.vrrp.instances {
        match old.vrrp.instances.iter().find(|o| o.name == inst.name) {
            None => result.vrrp_added.push(inst.name.clone()),
            Some(before) => {
                if protocol_globals_changed || view(&old.vrrp, before) != view(&new.vrrp, inst) {
                    result.vrrp_changed.push(inst.name.clone());
                }
            }
        }
    }
    for inst in &old.vrrp.instances {
        if !new.vrrp.instances.iter().any(|n| n.name == inst.name) {
            result.vrrp_removed.push(inst.name.clone());
        }
    }
    result
}

/// The global settings that change how every instance speaks VRRP.
fn protocol_globals(g: &GlobalDefs) -> impl PartialEq + '_ {
    (
        g.vrrp_version,
        g.strict,
        g.skip_check_adv_addr,
        g.garp_interval,
        g.gna_interval,
        g.mcast_group4,
        g.mcast_group6,
    )
}

/// Everything one instance depends on, in comparable form.
fn view<'a>(config: &'a VrrpConfig, inst: &'a VrrpInstance) -> impl PartialEq + 'a {
    let scripts: Vec<_> = inst
        .track_script
        .iter()
        .map(|t| config.scripts.iter().find(|s| s.name == t.name))
        .collect();
    let files: Vec<_> = inst
        .track_file
        .iter()
        .map(|t| config.track_files.iter().find(|f| f.name == t.name))
        .collect();
    let group = config
        .sync_groups
        .iter()
        .find(|g| g.members.contains(&inst.name));
    (inst, scripts, files, group)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::{VrrpInstance, VrrpScript};
    use std::time::Duration;

    fn config(instances: Vec<VrrpInstance>) -> Config {
        let mut c = Config::default();
        c.vrrp.instances = instances;
        c
    }

    #[test]
    fn names_added_removed_and_changed_instances() {
        let old = config(vec![
            VrrpInstance::new("A", "eth0", 1),
            VrrpInstance::new("B", "eth0", 2),
        ]);
        let mut b = VrrpInstance::new("B", "eth0", 2);
        b.priority = 200;
        let new = config(vec![b, VrrpInstance::new("C", "eth0", 3)]);
        let d = diff(&old, &new);
        assert_eq!(d.vrrp_added, vec!["C"]);
        assert_eq!(d.vrrp_removed, vec!["A"]);
        assert_eq!(d.vrrp_changed, vec!["B"]);
        assert!(!d.http_changed);
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn a_changed_script_changes_the_instances_that_track_it() {
        let mut a = VrrpInstance::new("A", "eth0", 1);
        a.track_script.push(crate::vrrp::TrackRef::named("chk"));
        let b = VrrpInstance::new("B", "eth0", 2);
        let script = VrrpScript::new("chk", "/bin/true");
        let mut old = config(vec![a.clone(), b.clone()]);
        old.vrrp.scripts.push(script.clone());
        let mut new = old.clone();
        new.vrrp.scripts[0].interval = Duration::from_secs(2);
        let d = diff(&old, &new);
        assert_eq!(d.vrrp_changed, vec!["A"]);
        assert!(!d.vrrp_global_changed);
    }

    #[test]
    fn protocol_globals_change_every_instance_but_alerts_do_not() {
        let old = config(vec![VrrpInstance::new("A", "eth0", 1)]);
        let mut alerts = old.clone();
        alerts
            .vrrp
            .global
            .notification_email
            .push("ops@example.com".into());
        let d = diff(&old, &alerts);
        assert!(d.vrrp_global_changed);
        assert!(d.vrrp_changed.is_empty());
        let mut version = old.clone();
        version.vrrp.global.vrrp_version = crate::vrrp::VrrpVersion::V2;
        assert_eq!(diff(&old, &version).vrrp_changed, vec!["A"]);
        let mut http = old.clone();
        http.http = Some(crate::http::HttpConfig::default());
        assert!(diff(&old, &http).http_changed);
    }
}
