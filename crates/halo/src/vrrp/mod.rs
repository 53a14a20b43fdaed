//! The VRRP driver: sockets, netlink and hooks around the sans-IO engine of `halo-vrrp`.
//!
//! One raw socket per (interface, address family) is shared by the instances on it; a reader task
//! dispatches datagrams by VRID. Each instance runs on its own task (see [`instance_task`]). A netlink
//! watcher tells instances when their interface goes down or one of their addresses disappears.

pub mod alerts;
pub mod instance_task;
pub mod mapping;
pub mod status;
pub mod tracking;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use futures::StreamExt;
use halo_config::vrrp::{Hook, RunAs, SyncGroup, VrrpConfig, VrrpInstance};
use halo_sys::{AddressManager, Announcer, Interface, IpFamily, NetEvent, VrrpSocket};
use halo_vrrp::{Instance, MemberStatus, State};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::command_line::ScriptCommand;
use crate::notify::{Notifier, NotifyEvent, NotifyHooks, NotifyState, Scope};
use instance_task::{Input, InstanceIo};
use status::StatusBoard;
use tracking::Checks;

type Routes = Arc<Mutex<HashMap<u8, mpsc::Sender<Input>>>>;

/// What the VRRP side calls when this node hands the VIP over (see `InstanceIo::on_handoff`).
pub type HandoffHook = Arc<dyn Fn(std::time::Duration) + Send + Sync>;

/// Instance inputs by interface index, for the netlink watcher.
type IfindexRoutes = Arc<Mutex<Vec<(u32, mpsc::Sender<Input>)>>>;

struct SocketEntry {
    socket: Arc<VrrpSocket>,
    routes: Routes,
    reader: JoinHandle<()>,
}

struct RunningInstance {
    cfg: VrrpInstance,
    /// Global settings that shape this instance's engine config, to detect changes on reload.
    fingerprint: String,
    ifindex: u32,
    tx: mpsc::Sender<Input>,
    task: JoinHandle<()>,
    tracker: JoinHandle<()>,
}

/// Everything VRRP in a running halo.
pub struct VrrpRuntime {
    config: VrrpConfig,
    board: StatusBoard,
    addresses: Arc<AddressManager>,
    sockets: HashMap<(String, IpFamily), SocketEntry>,
    instances: BTreeMap<String, RunningInstance>,
    checks: Checks,
    /// (ifindex, instance sender) for the netlink watcher.
    by_ifindex: IfindexRoutes,
    watcher: JoinHandle<()>,
    groups: Vec<JoinHandle<()>>,
    alerts: Option<alerts::Alerter>,
    on_handoff: Option<HandoffHook>,
}

impl Drop for VrrpRuntime {
    fn drop(&mut self) {
        self.watcher.abort();
        for s in self.sockets.values() {
            s.reader.abort();
        }
        for g in &self.groups {
            g.abort();
        }
    }
}

fn hook_command(h: &Option<Hook>, default_user: &Option<RunAs>) -> Option<ScriptCommand> {
    h.as_ref().map(|h| {
        let user = h.user.clone().or_else(|| default_user.clone());
        ScriptCommand::new(
            &h.command,
            user.as_ref().map(|u| u.user.as_str()),
            user.as_ref().and_then(|u| u.group.as_deref()),
        )
    })
}

/// The notify hooks of an instance or sync group: `notify_master`, `notify_backup`, `notify_fault`,
/// `notify_stop` and `notify`, in that order, run as their own user or the global `script_user`.
fn notify_hooks(
    [master, backup, fault, stop, generic]: [&Option<Hook>; 5],
    user: &Option<RunAs>,
) -> NotifyHooks {
    NotifyHooks {
        master: hook_command(master, user),
        backup: hook_command(backup, user),
        fault: hook_command(fault, user),
        stop: hook_command(stop, user),
        generic: hook_command(generic, user),
    }
}

fn fingerprint(cfg: &VrrpConfig, inst: &VrrpInstance) -> String {
    let g = &cfg.global;
    let scripts: Vec<_> = cfg
        .scripts
        .iter()
        .filter(|s| inst.track_script.iter().any(|t| t.name == s.name))
        .collect();
    format!(
        "{:?}|{}|{}|{:?}|{:?}|{:?}|{:?}|{:?}",
        g.vrrp_version,
        g.strict,
        g.skip_check_adv_addr,
        g.garp_interval,
        g.gna_interval,
        g.script_user,
        scripts,
        cfg.sync_groups
            .iter()
            .filter(|s| s.members.contains(&inst.name))
            .collect::<Vec<_>>()
    )
}

impl VrrpRuntime {
    /// Starts every instance of `config`. Needs a tokio runtime and CAP_NET_RAW + CAP_NET_ADMIN.
    /// `proxy_healthy` is `Some` when this node also runs the proxy: every instance then tracks it;
    /// `on_handoff` pauses the proxy's accepting when an instance hands its VIP over.
    pub async fn start(
        config: VrrpConfig,
        board: StatusBoard,
        proxy_healthy: Option<bool>,
        on_handoff: Option<HandoffHook>,
    ) -> anyhow::Result<VrrpRuntime> {
        let addresses = Arc::new(AddressManager::new().context("opening rtnetlink")?);
        let by_ifindex: IfindexRoutes = Arc::default();
        let watcher = spawn_watcher(by_ifindex.clone())?;
        let mut rt = VrrpRuntime {
            config: VrrpConfig::default(),
            board,
            addresses,
            sockets: HashMap::new(),
            instances: BTreeMap::new(),
            checks: Checks::default(),
            by_ifindex,
            watcher,
            groups: Vec::new(),
            alerts: None,
            on_handoff,
        };
        if let Some(h) = proxy_healthy {
            rt.checks.set_proxy_healthy(h);
        }
        rt.apply(config).await?;
        Ok(rt)
    }

    /// Applies a new configuration: unchanged instances keep running untouched (no transition);
    /// changed ones are restarted; removed ones stop; new ones start.
    pub async fn apply(&mut self, config: VrrpConfig) -> anyhow::Result<()> {
        // Stop what is gone or changed first, so that a changed instance can take its VRID back.
        let mut to_stop = Vec::new();
        for (name, run) in &self.instances {
            let same = config
                .instances
                .iter()
                .find(|i| &i.name == name)
                .is_some_and(|i| *i == run.cfg && fingerprint(&config, i) == run.fingerprint);
            if !same {
                to_stop.push(name.clone());
            }
        }
        for name in to_stop {
            if let Some(run) = self.instances.remove(&name) {
                stop_instance(run).await;
                self.board.remove(&name);
                tracing::info!("{name}: stopped (removed or changed by the new configuration)");
            }
        }
        self.checks.sync(&config);
        if config.global != self.config.global || self.alerts.is_none() {
            self.alerts = alerts::Alerter::spawn(&config.global);
        }
        for g in self.groups.drain(..) {
            g.abort();
        }
        // A sync group's members are restarted together with it (see `fingerprint`), so new group
        // channels only ever serve freshly started members.
        let mut group_channels = Vec::new();
        let mut group_senders = Vec::new();
        for g in &config.sync_groups {
            let (tx, rx) = mpsc::unbounded_channel();
            group_channels.push((g.clone(), rx));
            group_senders.push((g.clone(), tx));
        }
        for inst in &config.instances {
            if self.instances.contains_key(&inst.name) {
                continue;
            }
            let group_tx = group_senders
                .iter()
                .find(|(g, _)| g.members.contains(&inst.name))
                .map(|(_, tx)| tx.clone());
            let run = self
                .start_instance(&config, inst, group_tx)
                .await
                .with_context(|| format!("starting VRRP instance {}", inst.name))?;
            self.instances.insert(inst.name.clone(), run);
        }
        drop(group_senders);
        self.start_groups(&config, group_channels);
        self.rebuild_ifindex_routes();
        self.config = config;
        Ok(())
    }

    fn rebuild_ifindex_routes(&self) {
        if let Ok(mut v) = self.by_ifindex.lock() {
            *v = self
                .instances
                .values()
                .map(|r| (r.ifindex, r.tx.clone()))
                .collect();
        }
    }

    /// Starts the sync groups' tasks once their members run.
    fn start_groups(
        &mut self,
        config: &VrrpConfig,
        channels: Vec<(SyncGroup, mpsc::UnboundedReceiver<(String, MemberStatus)>)>,
    ) {
        for (g, rx) in channels {
            let hooks = notify_hooks(
                [
                    &g.notify_master,
                    &g.notify_backup,
                    &g.notify_fault,
                    &g.notify_stop,
                    &g.notify,
                ],
                &config.global.script_user,
            );
            let notifier = Notifier::spawn(Scope::Group, g.name.clone(), hooks);
            let members: Vec<(String, Option<mpsc::Sender<Input>>)> = g
                .members
                .iter()
                .map(|m| (m.clone(), self.instances.get(m).map(|r| r.tx.clone())))
                .collect();
            self.groups.push(tokio::spawn(run_sync_group(
                g.name.clone(),
                members,
                notifier,
                rx,
            )));
        }
    }

    async fn start_instance(
        &mut self,
        config: &VrrpConfig,
        inst: &VrrpInstance,
        group_tx: Option<mpsc::UnboundedSender<(String, MemberStatus)>>,
    ) -> anyhow::Result<RunningInstance> {
        let iface = Interface::by_name(&inst.interface)
            .with_context(|| format!("interface {}", inst.interface))?;
        let family = match inst.virtual_ipaddress.first().map(|v| v.addr) {
            Some(IpAddr::V6(_)) => IpFamily::V6,
            _ => IpFamily::V4,
        };
        let primary: IpAddr = match (inst.unicast_src_ip, family) {
            (Some(ip), _) => ip,
            // The first IPv4 address that is not one of our virtual addresses (a VIP left behind by
            // a crashed run must never become the advert source).
            (None, IpFamily::V4) => match iface.ipv4_addresses().iter().find(|a| {
                !inst
                    .virtual_ipaddress
                    .iter()
                    .any(|v| v.addr == IpAddr::V4(**a))
            }) {
                Some(a) => IpAddr::V4(*a),
                None => bail!(
                    "interface {} has no IPv4 address to advertise from",
                    inst.interface
                ),
            },
            (None, IpFamily::V6) => match iface.link_local_ipv6() {
                Some(a) => a.into(),
                None => bail!(
                    "interface {} has no IPv6 link-local address",
                    inst.interface
                ),
            },
        };
        // Virtual addresses still on the interface mean a previous run of ours was master when it
        // died (a crash, a SIGKILL, a supervisor restart): resume as master at once rather than
        // leaving the VIP dark for Master_Down_Interval (see `InstanceConfig::resume_master`).
        let resume = inst.virtual_ipaddress.iter().any(|v| {
            iface
                .ipv4_addresses()
                .iter()
                .any(|a| IpAddr::V4(*a) == v.addr)
                || iface
                    .ipv6_addresses()
                    .iter()
                    .any(|a| IpAddr::V6(*a) == v.addr)
        });
        if resume {
            tracing::info!(
                "{}: virtual addresses still on {}: resuming as master",
                inst.name,
                inst.interface
            );
        }
        let mut engine_cfg = mapping::engine_config(&config.global, inst, primary);
        engine_cfg.resume_master = resume;
        let engine = Instance::new(engine_cfg, std::time::Instant::now())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let key = (inst.interface.clone(), family);
        if !self.sockets.contains_key(&key) {
            let multicast = config
                .instances
                .iter()
                .any(|i| i.interface == inst.interface && i.unicast_peer.is_empty());
            let socket = Arc::new(
                VrrpSocket::open(&inst.interface, family, multicast)
                    .with_context(|| format!("opening the VRRP socket on {}", inst.interface))?,
            );
            // A group other than the RFC's (keepalived `vrrp_mcast_group4/6`) is joined too.
            let group = match family {
                IpFamily::V4 => IpAddr::V4(config.global.mcast_group4),
                IpFamily::V6 => IpAddr::V6(config.global.mcast_group6),
            };
            if multicast && group != halo_vrrp::multicast_group(group) {
                socket
                    .join_group(group)
                    .with_context(|| format!("joining {group} on {}", inst.interface))?;
            }
            let routes: Routes = Arc::default();
            let reader = tokio::spawn(read_loop(
                socket.clone(),
                routes.clone(),
                self.board.clone(),
                inst.interface.clone(),
            ));
            self.sockets.insert(
                key.clone(),
                SocketEntry {
                    socket,
                    routes,
                    reader,
                },
            );
        }
        let Some(entry) = self.sockets.get(&key) else {
            bail!("socket table inconsistent");
        };
        let (tx, rx) = mpsc::channel::<Input>(1024);
        if let Ok(mut r) = entry.routes.lock() {
            r.insert(inst.vrid, tx.clone());
        }
        let hooks = notify_hooks(
            [
                &inst.notify_master,
                &inst.notify_backup,
                &inst.notify_fault,
                &inst.notify_stop,
                &inst.notify,
            ],
            &config.global.script_user,
        );
        let announcer = match Announcer::new(iface.index, iface.mac) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!("{}: gratuitous ARP/NA unavailable: {e}", inst.name);
                None
            }
        };
        let prefix_len = inst
            .virtual_ipaddress
            .iter()
            .map(|v| (v.addr, v.prefix_len))
            .collect();
        let io = InstanceIo {
            interface: inst.interface.clone(),
            ifindex: iface.index,
            primary,
            socket: entry.socket.clone(),
            addresses: self.addresses.clone(),
            announcer,
            notifier: Notifier::spawn(Scope::Instance, inst.name.clone(), hooks),
            group_events: group_tx,
            board: self.board.clone(),
            prefix_len,
            on_handoff: self.on_handoff.clone(),
            alerts: if inst.smtp_alert {
                self.alerts.clone()
            } else {
                None
            },
        };
        if !iface.is_up() {
            let _ = tx.send(Input::Link { up: false }).await;
        }
        let task = tokio::spawn(instance_task::run(engine, io, rx));
        let tracker = self.checks.track(inst, tx.clone());
        Ok(RunningInstance {
            cfg: inst.clone(),
            fingerprint: fingerprint(config, inst),
            ifindex: iface.index,
            tx,
            task,
            tracker,
        })
    }

    /// Reports whether halo's own proxy serves (its listeners run). Instances track it like a
    /// `vrrp_script` of weight 0: a node whose proxy stopped goes FAULT and hands the VIP over.
    pub fn set_proxy_healthy(&mut self, healthy: bool) {
        self.checks.set_proxy_healthy(healthy);
    }

    /// Stops every instance: masters send a priority-0 advert and remove their addresses.
    pub async fn shutdown(&mut self) {
        let names: Vec<String> = self.instances.keys().cloned().collect();
        let mut stops = Vec::new();
        for name in names {
            if let Some(run) = self.instances.remove(&name) {
                stops.push(stop_instance(run));
            }
        }
        futures::future::join_all(stops).await;
    }
}

async fn stop_instance(run: RunningInstance) {
    run.tracker.abort();
    let (ack_tx, ack_rx) = oneshot::channel();
    if run.tx.send(Input::Shutdown(ack_tx)).await.is_ok() {
        let wait = instance_task::shutdown_wait(run.cfg.advert_interval);
        let _ = tokio::time::timeout(wait, ack_rx).await;
    }
    run.task.abort();
}

/// Reads datagrams from one socket and hands each to the instance with its VRID.
async fn read_loop(socket: Arc<VrrpSocket>, routes: Routes, board: StatusBoard, ifname: String) {
    let mut errors = 0u64;
    loop {
        match socket.recv().await {
            Ok(r) => {
                let vrid = r.payload.get(1).copied();
                let tx = vrid.and_then(|v| routes.lock().ok().and_then(|m| m.get(&v).cloned()));
                match tx {
                    Some(tx) => {
                        // A full queue means the instance is far behind: dropping is what a busy
                        // kernel would do too.
                        let _ = tx.try_send(Input::Packet(r));
                    }
                    None => board.count_unknown_vrid(&ifname),
                }
            }
            Err(e) => {
                errors += 1;
                if errors == 1 || errors % 1000 == 0 {
                    tracing::warn!("receiving on {ifname} failed ({errors} so far): {e}");
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// Watches netlink: tells instances when their link changes or an address leaves their interface.
fn spawn_watcher(by_ifindex: IfindexRoutes) -> anyhow::Result<JoinHandle<()>> {
    let mut stream = halo_sys::NetEventStream::subscribe().context("subscribing to netlink")?;
    Ok(tokio::spawn(async move {
        while let Some(ev) = stream.next().await {
            let (ifindex, input) = match ev {
                NetEvent::Addr(a) if !a.added => (a.ifindex, Some(a.ip)),
                NetEvent::Link(l) => (l.ifindex, None),
                _ => continue,
            };
            let targets: Vec<mpsc::Sender<Input>> = by_ifindex
                .lock()
                .map(|v| {
                    v.iter()
                        .filter(|(i, _)| *i == ifindex)
                        .map(|(_, t)| t.clone())
                        .collect()
                })
                .unwrap_or_default();
            for t in targets {
                let msg = match (input, ev) {
                    (Some(ip), _) => Input::AddressRemoved(ip),
                    (None, NetEvent::Link(l)) => Input::Link { up: l.up },
                    _ => continue,
                };
                let _ = t.try_send(msg);
            }
        }
    }))
}

/// A sync group (keepalived `vrrp_sync_group`): members move between MASTER, BACKUP and FAULT
/// together (`halo_vrrp::SyncGroup` decides, this task relays); the group's own hooks run when the
/// group as a whole changes state.
async fn run_sync_group(
    name: String,
    members: Vec<(String, Option<mpsc::Sender<Input>>)>,
    notifier: Notifier,
    mut rx: mpsc::UnboundedReceiver<(String, MemberStatus)>,
) {
    let mut group = halo_vrrp::SyncGroup::new(name.clone());
    let mut statuses: Vec<Option<MemberStatus>> = vec![None; members.len()];
    while let Some((member, status)) = rx.recv().await {
        if let Some(i) = members.iter().position(|(m, _)| *m == member) {
            statuses[i] = Some(status);
        }
        // Decide only once every member has reported.
        let Some(all): Option<Vec<MemberStatus>> = statuses.iter().copied().collect() else {
            continue;
        };
        let before = group.state();
        for cmd in group.reconcile(&all) {
            if let Some((_, Some(tx))) = members.get(cmd.member) {
                let _ = tx
                    .send(Input::Sync {
                        target: cmd.target,
                        group: name.clone(),
                    })
                    .await;
            }
        }
        let after = group.state();
        if after != before {
            tracing::info!("sync group {name}: {before} -> {after}");
            let state = match after {
                State::Master => NotifyState::Master,
                State::Fault => NotifyState::Fault,
                _ => NotifyState::Backup,
            };
            notifier.send(NotifyEvent { state, priority: 0 });
        }
    }
}
