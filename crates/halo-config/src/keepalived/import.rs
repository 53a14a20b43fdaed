//! keepalived.conf -> [`VrrpConfig`], with keepalived's defaults (VRRPv2 unless
//! `vrrp_version 3`, 1 s adverts) and a warning for every directive halo does not implement.

use super::lexer::{Node, Pos};
use crate::diagnostic::Diagnostic;
use crate::duration_text;
use crate::field_path::FieldPath;
use crate::vrrp::{
    AuthType, Authentication, GlobalDefs, Hook, InitialState, RunAs, SmtpServer, SyncGroup,
    TrackFile, TrackRef, VirtualAddress, VrrpConfig, VrrpInstance, VrrpScript, VrrpVersion,
    KEEPALIVED_ADVERT_INTERVAL,
};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The imported model plus where each value came from (for positioned validation messages).
pub(crate) struct Imported {
    pub(crate) vrrp: VrrpConfig,
    pub(crate) positions: HashMap<String, Pos>,
}

/// Instance-level GARP defaults that keepalived lets `global_defs` set.
#[derive(Default)]
struct InstanceDefaults {
    garp_master_delay: Option<Duration>,
    garp_master_repeat: Option<u32>,
    garp_master_refresh: Option<Duration>,
    garp_master_refresh_repeat: Option<u32>,
    garp_lower_prio_delay: Option<Duration>,
    garp_lower_prio_repeat: Option<u32>,
    lower_prio_no_advert: Option<bool>,
    smtp_alert: Option<bool>,
}

struct Importer<'d> {
    diags: &'d mut Vec<Diagnostic>,
    positions: HashMap<String, Pos>,
    root: FieldPath,
}

/// Converts the statement tree of a keepalived configuration.
pub(crate) fn import(nodes: &[Node], diags: &mut Vec<Diagnostic>) -> Imported {
    let mut imp = Importer {
        diags,
        positions: HashMap::new(),
        root: FieldPath::root("vrrp"),
    };
    let mut vrrp = VrrpConfig {
        global: GlobalDefs {
            vrrp_version: VrrpVersion::V2,
            ..GlobalDefs::default()
        },
        ..VrrpConfig::default()
    };
    let mut defaults = InstanceDefaults::default();
    // Instance bodies are read after global_defs wherever it appears, since its defaults apply.
    let mut instance_nodes = Vec::new();
    for node in nodes {
        match node.name.as_str() {
            "global_defs" => {
                let block = imp.block(node);
                imp.global_defs(block, &mut vrrp.global, &mut defaults);
            }
            "vrrp_script" => {
                if let Some(script) = imp.script(node, vrrp.scripts.len()) {
                    vrrp.scripts.push(script);
                }
            }
            "track_file" | "vrrp_track_file" => {
                if let Some(file) = imp.track_file(node, vrrp.track_files.len()) {
                    vrrp.track_files.push(file);
                }
            }
            "vrrp_instance" => instance_nodes.push(node),
            "vrrp_sync_group" => {
                if let Some(group) = imp.sync_group(node, vrrp.sync_groups.len()) {
                    vrrp.sync_groups.push(group);
                }
            }
            "virtual_server" | "virtual_server_group" => imp.warn(
                node,
                format!("{} (IPVS/LVS) is not implemented: halo balances at HTTP level; configure upstreams in nginx.conf or [http] instead; ignored", node.name),
            ),
            "static_ipaddress" | "static_routes" | "static_rules" | "virtual_routes"
            | "virtual_rules" => imp.warn(
                node,
                format!("{} is not implemented: configure them with the system's network tools; ignored", node.name),
            ),
            "vrrp_track_process" | "bfd_instance" | "linkbeat_interfaces" | "garp_group"
            | "track_group" | "vrrp_gname" => imp.warn(
                node,
                format!("{} is not implemented by halo; ignored (track a script or file instead)", node.name),
            ),
            other => imp.warn(node, format!("unknown keepalived keyword \"{other}\"; ignored")),
        }
    }
    let explicit_alert = defaults.smtp_alert.is_some()
        || instance_nodes.iter().any(|n| {
            n.block
                .as_ref()
                .is_some_and(|b| b.iter().any(|c| c.name == "smtp_alert"))
        });
    for node in &instance_nodes {
        let index = vrrp.instances.len();
        if let Some(instance) = imp.instance(node, index, &vrrp.global, &defaults) {
            vrrp.instances.push(instance);
        }
    }
    // A configuration that names recipients and a mail server but never says `smtp_alert` sends no
    // mail under keepalived (alerts default to off): plainly not what its author meant. halo sends
    // the alerts, and says so.
    if !explicit_alert
        && !vrrp.global.notification_email.is_empty()
        && vrrp.global.smtp_server.is_some()
        && !vrrp.instances.is_empty()
    {
        for inst in &mut vrrp.instances {
            inst.smtp_alert = true;
        }
        if let Some(node) = nodes.iter().find(|n| n.name == "global_defs") {
            imp.warn(
                node,
                "notification_email and smtp_server are set but no smtp_alert: keepalived would send no mail; \
                 halo sends an alert on every transition (write `smtp_alert off` to stop it)",
            );
        }
    }
    Imported {
        vrrp,
        positions: imp.positions,
    }
}

impl Importer<'_> {
    fn warn(&mut self, node: &Node, message: impl Into<String>) {
        self.diags.push(node.pos.warning(message));
    }

    fn error_at(&mut self, pos: &Pos, message: impl Into<String>, expected: Option<&str>) {
        let mut d = pos.error(message);
        if let Some(e) = expected {
            d = d.expected(e);
        }
        self.diags.push(d);
    }

    fn record(&mut self, path: &FieldPath, pos: &Pos) {
        self.positions.insert(path.to_string(), pos.clone());
    }

    fn block<'n>(&mut self, node: &'n Node) -> &'n [Node] {
        match &node.block {
            Some(b) => b,
            None => {
                self.error_at(
                    &node.pos,
                    format!("{} needs a {{ }} block", node.name),
                    Some("{"),
                );
                &[]
            }
        }
    }

    /// The single argument of `node`, or an error.
    fn one_arg<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n (String, Pos)> {
        match node.args.as_slice() {
            [a] => Some(a),
            [] => {
                self.error_at(
                    &node.pos,
                    format!("{} needs a value", node.name),
                    Some(what),
                );
                None
            }
            [_, extra, ..] => {
                let extra = extra.clone();
                self.error_at(
                    &extra.1,
                    format!("unexpected extra argument \"{}\" to {}", extra.0, node.name),
                    Some(what),
                );
                None
            }
        }
    }

    fn name_arg(&mut self, node: &Node) -> Option<(String, Pos)> {
        match node.args.first() {
            Some(a) => Some(a.clone()),
            None => {
                self.error_at(
                    &node.pos,
                    format!("{} needs a name", node.name),
                    Some("a name"),
                );
                None
            }
        }
    }

    /// The name of a named block (`vrrp_script NAME { ... }`) and the field path of entry `index`
    /// of the `list` it becomes; the block and its name are recorded at that path.
    fn named_entry(
        &mut self,
        node: &Node,
        list: &str,
        index: usize,
    ) -> Option<(String, FieldPath)> {
        let (name, name_pos) = self.name_arg(node)?;
        let path = self.root.key(list).index(index);
        self.record(&path, &node.pos);
        self.record(&path.key("name"), &name_pos);
        Some((name, path))
    }

    /// `<BOOL>`: on|off|true|false|yes|no; no argument = true (keepalived.conf(5) PARAMETER SYNTAX).
    fn flag(&mut self, node: &Node) -> Option<bool> {
        match node.args.first() {
            None => Some(true),
            Some((v, pos)) => match v.to_ascii_lowercase().as_str() {
                "on" | "true" | "yes" => Some(true),
                "off" | "false" | "no" => Some(false),
                _ => {
                    self.error_at(
                        pos,
                        format!("invalid boolean \"{v}\" for {}", node.name),
                        Some("on, off, true, false, yes or no"),
                    );
                    None
                }
            },
        }
    }

    fn integer(&mut self, node: &Node, min: i64, max: i64) -> Option<i64> {
        let (text, pos) = self
            .one_arg(node, &format!("an integer {min}..={max}"))?
            .clone();
        match text.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            Ok(n) => {
                self.error_at(
                    &pos,
                    format!("{} {n} out of range", node.name),
                    Some(&format!("{min}..={max}")),
                );
                None
            }
            Err(_) => {
                self.error_at(
                    &pos,
                    format!("invalid number \"{text}\" for {}", node.name),
                    Some(&format!("an integer {min}..={max}")),
                );
                None
            }
        }
    }

    fn unsigned(&mut self, node: &Node) -> Option<u32> {
        self.integer(node, 0, i64::from(u32::MAX))
            .and_then(|n| u32::try_from(n).ok())
    }

    /// `<TIMER>`: seconds with an optional fraction (resolution 1 µs).
    fn timer(&mut self, node: &Node) -> Option<Duration> {
        let (text, pos) = self.one_arg(node, "seconds, e.g. 1 or 0.5")?.clone();
        let parsed = duration_text::parse_seconds(&text);
        if parsed.is_none() {
            self.error_at(
                &pos,
                format!("invalid time \"{text}\" for {}", node.name),
                Some("seconds, e.g. 1 or 0.5"),
            );
        }
        parsed
    }

    fn string(&mut self, node: &Node) -> Option<String> {
        self.one_arg(node, "a value").map(|a| a.0.clone())
    }

    /// `CMD [username [groupname]]`.
    fn hook(&mut self, node: &Node) -> Option<Hook> {
        let mut args = node.args.iter();
        let Some((command, _)) = args.next() else {
            self.error_at(
                &node.pos,
                format!("{} needs a command", node.name),
                Some("a script path"),
            );
            return None;
        };
        let user = args.next().map(|(u, _)| RunAs {
            user: u.clone(),
            group: args.next().map(|(g, _)| g.clone()),
        });
        if let Some((extra, pos)) = args.next() {
            self.error_at(
                pos,
                format!("unexpected argument \"{extra}\" after user and group"),
                Some("CMD [USER [GROUP]] with CMD quoted if it has arguments"),
            );
        }
        Some(Hook {
            command: command.clone(),
            user,
        })
    }

    fn global_defs(&mut self, nodes: &[Node], g: &mut GlobalDefs, d: &mut InstanceDefaults) {
        let path = self.root.key("global");
        for node in nodes {
            let key = node.name.as_str();
            match key {
                "notification_email" => {
                    let block = self.block(node);
                    for email in block {
                        g.notification_email.push(email.name.clone());
                        for (extra, _) in &email.args {
                            g.notification_email.push(extra.clone());
                        }
                    }
                }
                "notification_email_from" => g.notification_email_from = self.string(node),
                "smtp_server" => {
                    let mut args = node.args.iter();
                    match args.next() {
                        None => self.error_at(
                            &node.pos,
                            "smtp_server needs a host",
                            Some("HOST [PORT]"),
                        ),
                        Some((host, _)) => {
                            let port = match args.next() {
                                None => Some(25),
                                Some((p, pos)) => match p.parse::<u16>() {
                                    Ok(p) if p != 0 => Some(p),
                                    _ => {
                                        self.error_at(
                                            pos,
                                            format!("invalid SMTP port \"{p}\""),
                                            Some("1..=65535"),
                                        );
                                        None
                                    }
                                },
                            };
                            if host.parse::<IpAddr>().is_err() {
                                self.warn(node, format!(
                                    "smtp_server {host} is a host name: keepalived 2.2 refuses it (IP address only); halo resolves it when sending"
                                ));
                            }
                            if let Some(port) = port {
                                self.record(&path.key("smtp_server"), &node.pos);
                                g.smtp_server = Some(SmtpServer {
                                    host: host.clone(),
                                    port,
                                });
                            }
                        }
                    }
                }
                "smtp_connect_timeout" => {
                    if let Some(n) = self.integer(node, 1, 86_400) {
                        g.smtp_connect_timeout = Duration::from_secs(n.unsigned_abs());
                    }
                }
                "router_id" => g.router_id = self.string(node),
                "vrrp_skip_check_adv_addr" => {
                    if let Some(b) = self.flag(node) {
                        g.skip_check_adv_addr = b;
                    }
                }
                "vrrp_strict" => {
                    g.strict = true;
                    self.warn(
                        node,
                        "vrrp_strict: halo applies the strict protocol rules but does not install the firewall rule keepalived adds to drop traffic to the VIPs (the VIP stays reachable), and keeps PASS authentication",
                    );
                }
                "vrrp_garp_interval" | "vrrp_gna_interval" => {
                    let zero = node.args.first().is_some_and(|(v, _)| {
                        duration_text::parse_seconds(v) == Some(Duration::ZERO)
                    });
                    if let Some(t) = self.timer(node) {
                        if zero {
                            self.warn(node, format!(
                                "{key} 0: keepalived 2.2 rejects 0 (its minimum is 0.000001); halo reads it as no delay between messages"
                            ));
                        }
                        if key == "vrrp_garp_interval" {
                            g.garp_interval = t;
                        } else {
                            g.gna_interval = t;
                        }
                        self.record(&path.key(key.trim_start_matches("vrrp_")), &node.pos);
                    }
                }
                "vrrp_version" => {
                    if let Some(v) = self.integer(node, 2, 3) {
                        g.vrrp_version = if v == 2 {
                            VrrpVersion::V2
                        } else {
                            VrrpVersion::V3
                        };
                    }
                }
                "script_user" => match node.args.as_slice() {
                    [] => self.error_at(
                        &node.pos,
                        "script_user needs a user name",
                        Some("USER [GROUP]"),
                    ),
                    [u, rest @ ..] => {
                        g.script_user = Some(RunAs {
                            user: u.0.clone(),
                            group: rest.first().map(|g| g.0.clone()),
                        });
                    }
                },
                "enable_script_security" => {
                    if let Some(b) = self.flag(node) {
                        g.enable_script_security = b;
                    }
                }
                "vrrp_mcast_group4" => {
                    if let Some((v, pos)) = self.one_arg(node, "an IPv4 multicast address").cloned()
                    {
                        match v.parse() {
                            Ok(a) => {
                                g.mcast_group4 = a;
                                self.record(&path.key("mcast_group4"), &pos);
                            }
                            Err(_) => self.error_at(
                                &pos,
                                format!("invalid IPv4 address \"{v}\""),
                                Some("e.g. 224.0.0.18"),
                            ),
                        }
                    }
                }
                "vrrp_mcast_group6" => {
                    if let Some((v, pos)) = self.one_arg(node, "an IPv6 multicast address").cloned()
                    {
                        match v.parse() {
                            Ok(a) => {
                                g.mcast_group6 = a;
                                self.record(&path.key("mcast_group6"), &pos);
                            }
                            Err(_) => self.error_at(
                                &pos,
                                format!("invalid IPv6 address \"{v}\""),
                                Some("e.g. ff02::12"),
                            ),
                        }
                    }
                }
                "vrrp_garp_master_delay" => d.garp_master_delay = self.timer(node),
                "vrrp_garp_master_repeat" => d.garp_master_repeat = self.unsigned(node),
                "vrrp_garp_master_refresh" => d.garp_master_refresh = self.timer(node),
                "vrrp_garp_master_refresh_repeat" => {
                    d.garp_master_refresh_repeat = self.unsigned(node)
                }
                "vrrp_garp_lower_prio_delay" => d.garp_lower_prio_delay = self.timer(node),
                "vrrp_garp_lower_prio_repeat" => d.garp_lower_prio_repeat = self.unsigned(node),
                "vrrp_lower_prio_no_advert" => d.lower_prio_no_advert = self.flag(node),
                "vrrp_min_garp" => {
                    if self.flag(node) == Some(true) {
                        d.garp_master_repeat = Some(1);
                        d.garp_master_delay = Some(Duration::ZERO);
                    }
                }
                "smtp_alert" | "smtp_alert_vrrp" => d.smtp_alert = self.flag(node),
                _ => self.warn(
                    node,
                    format!("global_defs {key} is not implemented by halo; ignored"),
                ),
            }
        }
    }

    fn script(&mut self, node: &Node, index: usize) -> Option<VrrpScript> {
        let (name, path) = self.named_entry(node, "script", index)?;
        let mut script = VrrpScript::new(name, String::new());
        let mut have_script = false;
        for child in self.block(node) {
            self.record(&path.key(&child.name), &child.pos);
            match child.name.as_str() {
                "script" => {
                    // Unquoted words form the command line: `script /bin/check arg`.
                    if child.args.is_empty() {
                        self.error_at(&child.pos, "script needs a command", Some("a path"));
                    } else {
                        have_script = true;
                        script.script = child
                            .args
                            .iter()
                            .map(|a| a.0.as_str())
                            .collect::<Vec<_>>()
                            .join(" ");
                    }
                }
                // keepalived: interval and timeout are whole seconds (maintainers refuse finer, #2546),
                // but fractions parse; halo keeps them.
                "interval" => {
                    if let Some(t) = self.timer(child) {
                        script.interval = t;
                    }
                }
                "timeout" => script.timeout = self.timer(child),
                "weight" => match child.args.as_slice() {
                    [] => self.error_at(
                        &child.pos,
                        "weight needs a value",
                        Some("-253..=253 [reverse]"),
                    ),
                    [(w, pos), rest @ ..] => {
                        match w.parse::<i32>() {
                            Ok(w) => script.weight = w,
                            Err(_) => self.error_at(
                                pos,
                                format!("invalid weight \"{w}\""),
                                Some("-253..=253"),
                            ),
                        }
                        script.reverse = rest.first().is_some_and(|r| r.0 == "reverse");
                    }
                },
                "rise" => {
                    if let Some(n) = self.integer(child, 1, 1_000_000) {
                        script.rise = u32::try_from(n).unwrap_or(1);
                    }
                }
                "fall" => {
                    if let Some(n) = self.integer(child, 1, 1_000_000) {
                        script.fall = u32::try_from(n).unwrap_or(1);
                    }
                }
                "user" => {
                    script.user = child.args.first().map(|u| RunAs {
                        user: u.0.clone(),
                        group: child.args.get(1).map(|g| g.0.clone()),
                    });
                }
                "init_fail" => script.init_fail = true,
                other => self.warn(
                    child,
                    format!("vrrp_script {other} is not implemented by halo; ignored"),
                ),
            }
        }
        if !have_script {
            self.error_at(
                &node.pos,
                format!("vrrp_script {} has no script", script.name),
                Some("script \"/path/to/check\""),
            );
            return None;
        }
        Some(script)
    }

    fn track_file(&mut self, node: &Node, index: usize) -> Option<TrackFile> {
        let (name, _) = self.named_entry(node, "track_file", index)?;
        let mut file = TrackFile {
            name,
            file: PathBuf::new(),
            weight: 1,
            reverse: false,
            init_file: None,
        };
        for child in self.block(node) {
            match child.name.as_str() {
                "file" => {
                    if let Some(f) = self.string(child) {
                        file.file = PathBuf::from(f);
                    }
                }
                "weight" => {
                    if let Some(n) = child.args.first() {
                        match n.0.parse() {
                            Ok(w) => file.weight = w,
                            Err(_) => self.error_at(
                                &n.1,
                                format!("invalid weight \"{}\"", n.0),
                                Some("an integer"),
                            ),
                        }
                        file.reverse = child.args.get(1).is_some_and(|r| r.0 == "reverse");
                    }
                }
                "init_file" => {
                    let value = child
                        .args
                        .first()
                        .and_then(|v| v.0.parse().ok())
                        .unwrap_or(0);
                    file.init_file = Some(value);
                }
                other => self.warn(
                    child,
                    format!("track_file {other} is not implemented by halo; ignored"),
                ),
            }
        }
        if file.file.as_os_str().is_empty() {
            self.error_at(
                &node.pos,
                format!("track_file {} has no file", file.name),
                Some("file \"/path\""),
            );
            return None;
        }
        Some(file)
    }

    fn sync_group(&mut self, node: &Node, index: usize) -> Option<SyncGroup> {
        let (name, path) = self.named_entry(node, "sync_group", index)?;
        let mut group = SyncGroup {
            name,
            members: Vec::new(),
            notify_master: None,
            notify_backup: None,
            notify_fault: None,
            notify_stop: None,
            notify: None,
            smtp_alert: false,
        };
        for child in self.block(node) {
            match child.name.as_str() {
                "group" => {
                    for member in self.block(child) {
                        let i = group.members.len();
                        self.record(&path.key("members").index(i), &member.pos);
                        group.members.push(member.name.clone());
                        for (extra, pos) in &member.args {
                            let i = group.members.len();
                            self.record(&path.key("members").index(i), pos);
                            group.members.push(extra.clone());
                        }
                    }
                    self.record(&path.key("members"), &child.pos);
                }
                "notify_master" => group.notify_master = self.hook(child),
                "notify_backup" => group.notify_backup = self.hook(child),
                "notify_fault" => group.notify_fault = self.hook(child),
                "notify_stop" => group.notify_stop = self.hook(child),
                "notify" => group.notify = self.hook(child),
                "smtp_alert" => group.smtp_alert = self.flag(child).unwrap_or(false),
                other => self.warn(
                    child,
                    format!("vrrp_sync_group {other} is not implemented by halo; ignored"),
                ),
            }
        }
        Some(group)
    }

    fn instance(
        &mut self,
        node: &Node,
        index: usize,
        global: &GlobalDefs,
        d: &InstanceDefaults,
    ) -> Option<VrrpInstance> {
        let (name, path) = self.named_entry(node, "instance", index)?;
        let mut inst = VrrpInstance::new(name, "", 0);
        // keepalived defaults, not halo's native ones.
        inst.advert_interval = KEEPALIVED_ADVERT_INTERVAL;
        inst.garp_master_delay = d.garp_master_delay.unwrap_or(Duration::from_secs(5));
        inst.garp_master_repeat = d.garp_master_repeat.unwrap_or(5);
        inst.garp_master_refresh = d.garp_master_refresh.unwrap_or(Duration::ZERO);
        inst.garp_master_refresh_repeat = d.garp_master_refresh_repeat.unwrap_or(1);
        inst.garp_lower_prio_delay = d.garp_lower_prio_delay;
        inst.garp_lower_prio_repeat = d.garp_lower_prio_repeat;
        // vrrp_strict forces RFC behaviour: no advert in answer to a lower priority one.
        inst.lower_prio_no_advert = d.lower_prio_no_advert.unwrap_or(false) || global.strict;
        inst.smtp_alert = d.smtp_alert.unwrap_or(false);
        let mut have_interface = false;
        let mut have_vrid = false;
        let mut explicit_accept = false;

        for child in self.block(node) {
            let key = child.name.as_str();
            match key {
                "state" => {
                    if let Some((v, pos)) = self.one_arg(child, "MASTER or BACKUP").cloned() {
                        self.record(&path.key("state"), &pos);
                        match v.as_str() {
                            "MASTER" => inst.state = InitialState::Master,
                            "BACKUP" => inst.state = InitialState::Backup,
                            _ => self.error_at(&pos, format!("invalid state \"{v}\""), Some("MASTER or BACKUP")),
                        }
                    }
                }
                "interface" => {
                    if let Some(i) = self.string(child) {
                        have_interface = true;
                        inst.interface = i;
                        self.record(&path.key("interface"), &child.pos);
                    }
                }
                "virtual_router_id" => {
                    have_vrid = true;
                    if let Some(v) = self.integer(child, 1, 255) {
                        inst.vrid = u8::try_from(v).unwrap_or(0);
                    } else {
                        inst.vrid = 1; // already reported; avoid a second "must be set" error
                    }
                    self.record(&path.key("vrid"), &child.pos);
                }
                "priority" => {
                    if let Some(v) = self.integer(child, 1, 255) {
                        inst.priority = u8::try_from(v).unwrap_or(100);
                    }
                    self.record(&path.key("priority"), &child.pos);
                }
                "advert_int" => {
                    if let Some(t) = self.timer(child) {
                        inst.advert_interval = t;
                    }
                    self.record(&path.key("advert_interval"), &child.pos);
                }
                "version" => {
                    if let Some(v) = self.integer(child, 2, 3) {
                        inst.version = Some(if v == 2 { VrrpVersion::V2 } else { VrrpVersion::V3 });
                    }
                    self.record(&path.key("version"), &child.pos);
                }
                "authentication" => {
                    self.record(&path.key("authentication"), &child.pos);
                    inst.authentication = self.authentication(child, &path);
                }
                "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                    let list_path = path.key(key);
                    self.record(&list_path, &child.pos);
                    let mut list = Vec::new();
                    for entry in self.block(child) {
                        let vpath = list_path.index(list.len());
                        self.record(&vpath, &entry.pos);
                        self.record(&vpath.key("addr"), &entry.pos);
                        self.record(&vpath.key("prefix_len"), &entry.pos);
                        if let Some(v) = self.virtual_address(entry) {
                            list.push(v);
                        }
                    }
                    if key == "virtual_ipaddress" {
                        inst.virtual_ipaddress = list;
                    } else {
                        inst.virtual_ipaddress_excluded = list;
                    }
                }
                "unicast_src_ip" | "mcast_src_ip" => {
                    if let Some((v, pos)) = self.one_arg(child, "an IP address").cloned() {
                        match v.parse() {
                            Ok(a) => inst.unicast_src_ip = Some(a),
                            Err(_) => self.error_at(&pos, format!("invalid IP address \"{v}\""), Some("an IPv4 or IPv6 address")),
                        }
                    }
                    self.record(&path.key("unicast_src_ip"), &child.pos);
                }
                "unicast_peer" => {
                    self.record(&path.key("unicast_peer"), &child.pos);
                    for entry in self.block(child) {
                        match entry.name.parse() {
                            Ok(a) => inst.unicast_peer.push(a),
                            Err(_) => self.error_at(&entry.pos, format!("invalid IP address \"{}\" in unicast_peer", entry.name), Some("an IPv4 or IPv6 address")),
                        }
                        if !entry.args.is_empty() {
                            self.warn(entry, "unicast_peer min_ttl/max_ttl are not implemented by halo (it checks TTL 255 as RFC 5798 §7.1 requires); ignored");
                        }
                    }
                }
                "nopreempt" => inst.nopreempt = true,
                "preempt" => inst.nopreempt = false,
                "preempt_delay" => {
                    if let Some(t) = self.timer(child) {
                        inst.preempt_delay = t;
                    }
                    self.record(&path.key("preempt_delay"), &child.pos);
                }
                "track_script" | "track_interface" | "track_file" => {
                    let list_path = path.key(key);
                    self.record(&list_path, &child.pos);
                    let mut list = Vec::new();
                    for entry in self.block(child) {
                        let tpath = list_path.index(list.len());
                        self.record(&tpath, &entry.pos);
                        self.record(&tpath.key("name"), &entry.pos);
                        self.record(&tpath.key("weight"), &entry.pos);
                        list.push(self.track_ref(entry));
                    }
                    match key {
                        "track_script" => inst.track_script = list,
                        "track_interface" => inst.track_interface = list,
                        _ => inst.track_file = list,
                    }
                }
                "notify_master" => inst.notify_master = self.hook(child),
                "notify_backup" => inst.notify_backup = self.hook(child),
                "notify_fault" => inst.notify_fault = self.hook(child),
                "notify_stop" => inst.notify_stop = self.hook(child),
                "notify" => inst.notify = self.hook(child),
                "smtp_alert" => inst.smtp_alert = self.flag(child).unwrap_or(false),
                "garp_master_delay" => {
                    if let Some(t) = self.timer(child) {
                        inst.garp_master_delay = t;
                    }
                }
                "garp_master_repeat" => {
                    if let Some(n) = self.unsigned(child) {
                        inst.garp_master_repeat = n;
                    }
                }
                "garp_master_refresh" => {
                    if let Some(t) = self.timer(child) {
                        inst.garp_master_refresh = t;
                    }
                }
                "garp_master_refresh_repeat" => {
                    if let Some(n) = self.unsigned(child) {
                        inst.garp_master_refresh_repeat = n;
                    }
                }
                "garp_lower_prio_delay" => inst.garp_lower_prio_delay = self.timer(child),
                "garp_lower_prio_repeat" => inst.garp_lower_prio_repeat = self.unsigned(child),
                "lower_prio_no_advert" => {
                    if let Some(b) = self.flag(child) {
                        inst.lower_prio_no_advert = b;
                    }
                }
                "accept" => {
                    inst.accept = true;
                    explicit_accept = true;
                }
                "no_accept" => {
                    inst.accept = false;
                    explicit_accept = true;
                    self.warn(child, "no_accept: halo records it but installs no firewall rule; filter traffic to the VIPs yourself if you need it");
                }
                "dont_track_primary" | "use_vmac" | "vmac_xmit_base" | "use_ipvlan" | "native_ipv6"
                | "track_src_ip" | "check_unicast_src" | "unicast_fault_no_peer" | "unicast_ttl"
                | "old_unicast_checksum" | "down_timer_adverts" | "higher_prio_send_advert"
                | "skip_check_adv_addr" | "strict_mode" | "debug" | "notify_master_rx_lower_pri"
                | "notify_priority_changes" | "notify_deleted" | "kernel_rx_buf_size"
                | "linkbeat_use_polling" | "promote_secondaries" | "mcast_dst_ip" | "garp_extra_if"
                | "virtual_routes" | "virtual_rules" | "track_process" | "track_bfd" | "vrf" => self.warn(
                    child,
                    format!("vrrp_instance {key} is not implemented by halo; ignored (see docs/compatibility.md)"),
                ),
                other => self.warn(child, format!("unknown vrrp_instance keyword \"{other}\"; ignored")),
            }
        }
        if global.strict && !explicit_accept {
            // keepalived: strict without accept/no_accept => no_accept unless priority 255, and
            // a firewall DROP rule for the VIPs (keepalived issues #474, #1142, #2339). halo keeps
            // accept mode so the proxy on the VIP is reachable (warned at vrrp_strict).
            inst.accept = true;
        }
        if !have_interface {
            self.error_at(
                &node.pos,
                format!("vrrp_instance {} has no interface", inst.name),
                Some("interface IFNAME"),
            );
        }
        if !have_vrid {
            self.error_at(
                &node.pos,
                format!("vrrp_instance {} has no virtual_router_id", inst.name),
                Some("virtual_router_id 1..=255"),
            );
            inst.vrid = 1;
        }
        Some(inst)
    }

    fn authentication(&mut self, node: &Node, path: &FieldPath) -> Option<Authentication> {
        let mut auth_type = None;
        let mut password = None;
        for child in self.block(node) {
            match child.name.as_str() {
                "auth_type" => {
                    if let Some((t, pos)) = self.one_arg(child, "PASS").cloned() {
                        match t.as_str() {
                            "PASS" => auth_type = Some(AuthType::Pass),
                            "AH" => self.error_at(
                                &pos,
                                "auth_type AH (IPsec AH) is not supported by halo",
                                Some("PASS, or no authentication block"),
                            ),
                            _ => self.error_at(
                                &pos,
                                format!("invalid auth_type \"{t}\""),
                                Some("PASS"),
                            ),
                        }
                    }
                }
                "auth_pass" => {
                    if let Some((p, pos)) = self
                        .one_arg(child, "a password of up to 8 characters")
                        .cloned()
                    {
                        self.record(&path.key("authentication").key("password"), &pos);
                        let mut p = p;
                        if p.len() > 8 {
                            let mut cut = 8;
                            while !p.is_char_boundary(cut) {
                                cut -= 1;
                            }
                            p.truncate(cut);
                            self.diags.push(pos.warning(format!(
                                "auth_pass longer than 8 bytes: only \"{p}\" is used (as keepalived does)"
                            )));
                        }
                        password = Some(p);
                    }
                }
                other => self.warn(child, format!("authentication {other} is unknown; ignored")),
            }
        }
        match (auth_type, password) {
            (Some(auth_type), Some(password)) => Some(Authentication {
                auth_type,
                password,
            }),
            (Some(_), None) => {
                self.error_at(
                    &node.pos,
                    "authentication without auth_pass",
                    Some("auth_pass PASSWORD"),
                );
                None
            }
            (None, _) => None,
        }
    }

    /// `<IPADDR>[/<MASK>] [brd <IPADDR>] [dev <STRING>] [scope <SCOPE>] [label <LABEL>] ...`.
    fn virtual_address(&mut self, entry: &Node) -> Option<VirtualAddress> {
        let text = &entry.name;
        let (addr_text, len_text) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text.as_str(), None),
        };
        let addr: IpAddr = match addr_text.parse() {
            Ok(a) => a,
            Err(_) => {
                self.error_at(
                    &entry.pos,
                    format!("invalid IP address \"{text}\""),
                    Some("an IPv4 or IPv6 address, optionally /prefix"),
                );
                return None;
            }
        };
        let mut vip = VirtualAddress::host(addr);
        if let Some(len) = len_text {
            match len.parse::<u8>() {
                Ok(l) => vip.prefix_len = l,
                Err(_) => {
                    self.error_at(
                        &entry.pos,
                        format!("invalid prefix length \"/{len}\""),
                        Some(if addr.is_ipv4() {
                            "/0../32"
                        } else {
                            "/0../128"
                        }),
                    );
                    return None;
                }
            }
        }
        let mut args = entry.args.iter();
        while let Some((opt, pos)) = args.next() {
            let mut value = |this: &mut Self| -> Option<String> {
                match args.next() {
                    Some((v, _)) => Some(v.clone()),
                    None => {
                        this.error_at(pos, format!("{opt} needs a value"), None);
                        None
                    }
                }
            };
            match opt.as_str() {
                "dev" => vip.dev = value(self),
                "label" => vip.label = value(self),
                "scope" => vip.scope = value(self),
                "brd" => {
                    if let Some(b) = value(self) {
                        match b.parse() {
                            Ok(b) => vip.brd = Some(b),
                            Err(_) => self.error_at(
                                pos,
                                format!("invalid broadcast address \"{b}\""),
                                Some("an IPv4 address"),
                            ),
                        }
                    }
                }
                "no_track" => vip.no_track = true,
                "peer" | "preferred_lft" => {
                    let _ = value(self);
                    self.diags.push(pos.warning(format!(
                        "virtual address option {opt} is not implemented by halo; ignored"
                    )));
                }
                "home" | "-nodad" | "mngtmpaddr" | "noprefixroute" | "autojoin" | "use_vmac" => {
                    self.diags.push(pos.warning(format!(
                        "virtual address option {opt} is not implemented by halo; ignored"
                    )));
                }
                other => {
                    self.error_at(
                        pos,
                        format!("unknown virtual address option \"{other}\""),
                        Some("dev, label, scope, brd, no_track"),
                    );
                }
            }
        }
        Some(vip)
    }

    /// `NAME [weight N [reverse|noreverse|no_reverse]]`.
    fn track_ref(&mut self, entry: &Node) -> TrackRef {
        let mut track = TrackRef::named(entry.name.clone());
        let mut args = entry.args.iter();
        while let Some((opt, pos)) = args.next() {
            match opt.as_str() {
                "weight" => match args.next() {
                    Some((w, wpos)) => match w.parse::<i32>() {
                        Ok(w) => track.weight = Some(w),
                        Err(_) => self.error_at(
                            wpos,
                            format!("invalid weight \"{w}\""),
                            Some("an integer -253..=253"),
                        ),
                    },
                    None => {
                        self.error_at(pos, "weight needs a value", Some("an integer -253..=253"))
                    }
                },
                "reverse" => track.reverse = true,
                "noreverse" | "no_reverse" => track.reverse = false,
                other => self.error_at(
                    pos,
                    format!("unexpected \"{other}\" after {}", entry.name),
                    Some("weight N [reverse]"),
                ),
            }
        }
        track
    }
}
