//! Tracked checks as keepalived has them: `vrrp_script`, `track_file`, `track_interface`.
//!
//! Each check runs on its own task and publishes its current value on a watch channel; each instance has
//! an aggregator that turns the values of the checks it tracks into a priority adjustment and a FAULT
//! flag (keepalived's rules: `combine` below, with `halo_vrrp::contribution` for up/down checks) and tells
//! the instance when they change.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use halo_config::vrrp::{TrackFile, VrrpConfig, VrrpInstance, VrrpScript};
use halo_vrrp::{contribution, ScriptTracker, TrackerStatus};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::instance_task::Input;
use crate::command_line::{ScriptCommand, ScriptOutcome};

/// How often `track_file` files and `track_interface` links are re-read.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// The current value of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckValue {
    /// A script (before its first result: `Init`) or an interface.
    Status(TrackerStatus),
    /// A tracked file's number.
    Number(i64),
}

fn up_down(up: bool) -> CheckValue {
    CheckValue::Status(if up {
        TrackerStatus::Up
    } else {
        TrackerStatus::Down
    })
}

/// Running checks by name.
#[derive(Default)]
pub struct Checks {
    scripts: HashMap<String, (VrrpScript, watch::Receiver<CheckValue>, JoinHandle<()>)>,
    files: HashMap<String, (TrackFile, watch::Receiver<CheckValue>, JoinHandle<()>)>,
    interfaces: HashMap<String, (watch::Receiver<CheckValue>, JoinHandle<()>)>,
    /// halo's own proxy, when the node runs one: every instance tracks it with weight 0, so a node
    /// whose listeners stopped goes FAULT and gives the VIP away (the seed's `chk_nginx`, built in).
    proxy: Option<watch::Sender<CheckValue>>,
}

impl Drop for Checks {
    fn drop(&mut self) {
        for (_, _, h) in self.scripts.values() {
            h.abort();
        }
        for (_, _, h) in self.files.values() {
            h.abort();
        }
        for (_, h) in self.interfaces.values() {
            h.abort();
        }
    }
}

impl Checks {
    /// Starts (or keeps, when unchanged) the checks the configuration defines and the instances use.
    pub fn sync(&mut self, cfg: &VrrpConfig) {
        let script_user = cfg.global.script_user.clone();
        self.scripts.retain(|name, (def, _, h)| {
            let keep = cfg.scripts.iter().any(|s| &s.name == name && s == def);
            if !keep {
                h.abort();
            }
            keep
        });
        for s in &cfg.scripts {
            if !self.scripts.contains_key(&s.name) {
                let initial = ScriptTracker::new(0, s.rise, s.fall, false, s.init_fail).status();
                let (tx, rx) = watch::channel(CheckValue::Status(initial));
                let user = s.user.clone().or_else(|| script_user.clone());
                let cmd = ScriptCommand::new(
                    &s.script,
                    user.as_ref().map(|u| u.user.as_str()),
                    user.as_ref().and_then(|u| u.group.as_deref()),
                );
                let h = tokio::spawn(run_script(s.clone(), cmd, tx));
                self.scripts.insert(s.name.clone(), (s.clone(), rx, h));
            }
        }
        self.files.retain(|name, (def, _, h)| {
            let keep = cfg.track_files.iter().any(|f| &f.name == name && f == def);
            if !keep {
                h.abort();
            }
            keep
        });
        for f in &cfg.track_files {
            if !self.files.contains_key(&f.name) {
                let (tx, rx) =
                    watch::channel(CheckValue::Number(read_number(&f.file, f.init_file)));
                let h = tokio::spawn(run_file(f.file.clone(), f.init_file, tx));
                self.files.insert(f.name.clone(), (f.clone(), rx, h));
            }
        }
        for inst in &cfg.instances {
            for t in &inst.track_interface {
                if !self.interfaces.contains_key(&t.name) {
                    let (tx, rx) = watch::channel(up_down(link_up(&t.name)));
                    let h = tokio::spawn(run_interface(t.name.clone(), tx));
                    self.interfaces.insert(t.name.clone(), (rx, h));
                }
            }
        }
    }

    /// Reports the health of halo's own proxy (see `proxy`); the first call makes every instance
    /// started afterwards track it.
    pub fn set_proxy_healthy(&mut self, healthy: bool) {
        let v = up_down(healthy);
        match &self.proxy {
            Some(tx) => {
                tx.send_if_modified(|cur| {
                    let changed = *cur != v;
                    *cur = v;
                    changed
                });
            }
            None => self.proxy = Some(watch::channel(v).0),
        }
    }

    /// Starts the aggregator of one instance: it sends `Input::Tracking` now and on every change.
    pub fn track(&self, inst: &VrrpInstance, to: mpsc::Sender<Input>) -> JoinHandle<()> {
        let mut inputs: Vec<(Tracked, watch::Receiver<CheckValue>)> = Vec::new();
        if let Some(tx) = &self.proxy {
            inputs.push((
                Tracked {
                    weight: 0,
                    reverse: false,
                },
                tx.subscribe(),
            ));
        }
        for t in &inst.track_script {
            if let Some((def, rx, _)) = self.scripts.get(&t.name) {
                let weight = t.weight.unwrap_or(def.weight);
                let reverse = t.reverse ^ def.reverse;
                inputs.push((Tracked { weight, reverse }, rx.clone()));
            }
        }
        for t in &inst.track_file {
            if let Some((def, rx, _)) = self.files.get(&t.name) {
                let weight = t.weight.unwrap_or(def.weight);
                let reverse = t.reverse ^ def.reverse;
                inputs.push((Tracked { weight, reverse }, rx.clone()));
            }
        }
        for t in &inst.track_interface {
            if let Some((rx, _)) = self.interfaces.get(&t.name) {
                inputs.push((
                    Tracked {
                        weight: t.weight.unwrap_or(0),
                        reverse: t.reverse,
                    },
                    rx.clone(),
                ));
            }
        }
        tokio::spawn(async move {
            let mut last = None;
            loop {
                let current = combine(inputs.iter().map(|(t, rx)| (*t, *rx.borrow())));
                if last != Some(current) {
                    last = Some(current);
                    let (delta, fault) = current;
                    if to.send(Input::Tracking { delta, fault }).await.is_err() {
                        return;
                    }
                }
                if inputs.is_empty() {
                    return;
                }
                let changes = inputs.iter_mut().map(|(_, rx)| Box::pin(rx.changed()));
                let (res, _, _) = futures::future::select_all(changes).await;
                if res.is_err() {
                    return;
                }
            }
        })
    }
}

/// How an instance uses one check: its weight (0 = FAULT when down) and `reverse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracked {
    pub weight: i32,
    pub reverse: bool,
}

/// keepalived's rules for turning tracked checks into (priority delta, fault) (keepalived.conf(5),
/// `vrrp_script`, `track_file`, `track_interface`):
/// - up/down checks follow `halo_vrrp::contribution` (weight 0: FAULT while down; a positive weight
///   counts while up, a negative one while down; `reverse` turns the adjustment around);
/// - file checks: the number times the weight is added (`reverse` negates it); with weight 0 a non-zero
///   number means FAULT; a file whose contribution is below -253 means FAULT.
pub fn combine(values: impl Iterator<Item = (Tracked, CheckValue)>) -> (i32, bool) {
    let mut delta = 0i64;
    let mut fault = false;
    for (t, v) in values {
        match v {
            CheckValue::Status(status) => {
                let (d, f) = contribution(status, t.weight, t.reverse);
                delta += i64::from(d);
                fault |= f;
            }
            CheckValue::Number(n) => {
                if t.weight == 0 {
                    fault |= n != 0;
                } else {
                    let mut c = n.saturating_mul(i64::from(t.weight));
                    if t.reverse {
                        c = -c;
                    }
                    if c < -253 {
                        fault = true;
                    } else {
                        delta += c.min(253);
                    }
                }
            }
        }
    }
    (delta.clamp(-254, 254) as i32, fault)
}

/// Runs a `vrrp_script` every `interval`; `rise` / `fall` are applied by `halo_vrrp::ScriptTracker`.
async fn run_script(def: VrrpScript, cmd: ScriptCommand, tx: watch::Sender<CheckValue>) {
    let mut tracker = ScriptTracker::new(0, def.rise, def.fall, false, def.init_fail);
    let timeout = def.timeout.unwrap_or(def.interval);
    let mut tick = tokio::time::interval(def.interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let ok = cmd.run(&[], Some(timeout)).await == ScriptOutcome::Success;
        if tracker.record(ok) {
            tracing::info!(
                "VRRP script {} is now {}",
                def.name,
                if tracker.is_up() {
                    "succeeding"
                } else {
                    "failing"
                }
            );
            if tx.send(CheckValue::Status(tracker.status())).is_err() {
                return;
            }
        }
    }
}

fn read_number(path: &PathBuf, init: Option<i64>) -> i64 {
    match std::fs::read_to_string(path) {
        Ok(s) => s
            .split_whitespace()
            .next()
            .and_then(|w| w.parse().ok())
            .unwrap_or(0),
        Err(_) => init.unwrap_or(0),
    }
}

async fn run_file(path: PathBuf, init: Option<i64>, tx: watch::Sender<CheckValue>) {
    loop {
        tokio::time::sleep(POLL_EVERY).await;
        let v = CheckValue::Number(read_number(&path, init));
        tx.send_if_modified(|cur| {
            let changed = *cur != v;
            *cur = v;
            changed
        });
        if tx.is_closed() {
            return;
        }
    }
}

fn link_up(name: &str) -> bool {
    halo_sys::Interface::by_name(name).is_ok_and(|i| i.is_up())
}

async fn run_interface(name: String, tx: watch::Sender<CheckValue>) {
    loop {
        tokio::time::sleep(POLL_EVERY).await;
        let v = up_down(link_up(&name));
        tx.send_if_modified(|cur| {
            let changed = *cur != v;
            *cur = v;
            changed
        });
        if tx.is_closed() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(weight: i32) -> Tracked {
        Tracked {
            weight,
            reverse: false,
        }
    }

    #[test]
    fn weights_follow_keepalived_rules() {
        // Seed: `vrrp_script chk_nginx { weight 3 }`: +3 while the script succeeds.
        assert_eq!(combine([(t(3), up_down(true))].into_iter()), (3, false));
        assert_eq!(combine([(t(3), up_down(false))].into_iter()), (0, false));
        // Negative weight subtracts while failing.
        assert_eq!(
            combine([(t(-20), up_down(false))].into_iter()),
            (-20, false)
        );
        assert_eq!(combine([(t(-20), up_down(true))].into_iter()), (0, false));
        // Weight 0: FAULT while failing.
        assert_eq!(combine([(t(0), up_down(false))].into_iter()), (0, true));
        // reverse swaps.
        // reverse turns the adjustment around.
        let r = Tracked {
            weight: 5,
            reverse: true,
        };
        assert_eq!(combine([(r, up_down(true))].into_iter()), (-5, false));
        // Weight 0 before the first result: FAULT.
        let init = CheckValue::Status(TrackerStatus::Init);
        assert_eq!(combine([(t(0), init)].into_iter()), (0, true));
    }

    #[test]
    fn files_multiply_and_fault_below_minus_253() {
        assert_eq!(
            combine([(t(2), CheckValue::Number(10))].into_iter()),
            (20, false)
        );
        assert_eq!(
            combine([(t(0), CheckValue::Number(1))].into_iter()),
            (0, true)
        );
        assert_eq!(
            combine([(t(0), CheckValue::Number(0))].into_iter()),
            (0, false)
        );
        assert!(combine([(t(1), CheckValue::Number(-254))].into_iter()).1);
    }

    /// The built-in proxy check: an instance goes FAULT while halo's own proxy does not serve.
    #[tokio::test]
    async fn proxy_health_is_tracked_with_weight_zero() {
        let mut checks = Checks::default();
        checks.set_proxy_healthy(true);
        let inst = VrrpInstance::new("VI_1", "eth0", 51);
        let (tx, mut rx) = mpsc::channel(8);
        let _h = checks.track(&inst, tx);
        async fn next(rx: &mut mpsc::Receiver<Input>) -> Option<(i32, bool)> {
            match tokio::time::timeout(Duration::from_secs(2), rx.recv()).await {
                Ok(Some(Input::Tracking { delta, fault })) => Some((delta, fault)),
                _ => None,
            }
        }
        assert_eq!(next(&mut rx).await, Some((0, false)));
        checks.set_proxy_healthy(false);
        assert_eq!(next(&mut rx).await, Some((0, true)));
        checks.set_proxy_healthy(true);
        assert_eq!(next(&mut rx).await, Some((0, false)));
    }
}
