//! One task per VRRP instance: feeds the sans-IO engine with packets, timers and tracking changes, and
//! carries out what it asks (adverts, addresses, announcements, hooks).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use halo_sys::{AddressManager, Announcer, Received, VrrpSocket};
use halo_vrrp::{Action, Instance, MemberStatus, State};
use tokio::sync::{mpsc, oneshot};

use super::status::{InstanceStatus, StatusBoard};
use crate::notify::{Notifier, NotifyEvent, NotifyState};

/// Inputs to an instance task.
#[derive(Debug)]
pub enum Input {
    /// A datagram for our VRID.
    Packet(Received),
    /// Tracked checks changed: priority adjustment and whether any says FAULT.
    Tracking { delta: i32, fault: bool },
    /// Our interface went up or down (keepalived tracks the instance's own interface implicitly).
    Link { up: bool },
    /// An address disappeared from our interface (someone ran `ip addr del`, a network manager
    /// flushed it...).
    AddressRemoved(IpAddr),
    /// The instance's sync group forces a state (`halo_vrrp::SyncGroup::reconcile`).
    Sync { target: State, group: String },
    /// Stop: priority-0 advert if master, addresses removed; acknowledged when done.
    Shutdown(oneshot::Sender<()>),
}

/// Everything an instance task needs besides the engine.
pub struct InstanceIo {
    pub interface: String,
    pub ifindex: u32,
    pub primary: IpAddr,
    pub socket: Arc<VrrpSocket>,
    pub addresses: Arc<AddressManager>,
    pub announcer: Option<Announcer>,
    pub notifier: Notifier,
    pub group_events: Option<mpsc::UnboundedSender<(String, MemberStatus)>>,
    pub board: StatusBoard,
    /// Prefix length per virtual address.
    pub prefix_len: BTreeMap<IpAddr, u8>,
    /// Called when this node hands the VIP over to a live new master (it stopped, or a higher priority
    /// preempted it), with how long the handover lasts: the proxy then stops taking new connections
    /// for that long (their SYNs are dropped and retried by the clients, reaching the new master) so
    /// that no connection is in flight here when clients switch MACs.
    pub on_handoff: Option<super::HandoffHook>,
    /// SMTP alerts, when the instance has `smtp_alert`.
    pub alerts: Option<super::alerts::Alerter>,
}

/// Runs the instance until it is shut down or its input channel closes.
pub async fn run(mut engine: Instance, mut io: InstanceIo, mut rx: mpsc::Receiver<Input>) {
    let mut delta = 0i32;
    let mut track_fault = false;
    let mut link_up = true;
    let mut transitions = 0u64;
    let mut last_reason = String::new();
    let mut restored = 0u64;
    let mut send_errors = 0u64;
    let mut last_sync: Option<MemberStatus> = None;
    // Addresses a master that stepped down to backup keeps for HANDOFF_GRACE, so that connections
    // clients open before the new master's gratuitous ARP reaches them still land (see below).
    let mut pending_removal: Option<(tokio::time::Instant, Vec<IpAddr>)> = None;
    let mut last_from_to = (State::Initialize, State::Initialize);
    loop {
        while let Some(action) = engine.poll_action() {
            match &action {
                Action::RemoveAddresses(ips) if last_from_to == (State::Master, State::Backup) => {
                    pending_removal =
                        Some((tokio::time::Instant::now() + HANDOFF_GRACE, ips.clone()));
                    continue;
                }
                Action::AddAddresses(_) => pending_removal = None,
                _ => {}
            }
            if let Action::StateChanged { from, to, reason } = &action {
                last_from_to = (*from, *to);
                transitions += 1;
                last_reason = reason.clone();
                tracing::info!("{} {} -> {}: {}", engine.config().name, from, to, reason);
                let notify_state = match to {
                    State::Master => Some(NotifyState::Master),
                    State::Backup => Some(NotifyState::Backup),
                    State::Fault => Some(NotifyState::Fault),
                    State::Stopped => Some(NotifyState::Stop),
                    State::Initialize => None,
                };
                if let Some(state) = notify_state {
                    io.notifier.send(NotifyEvent {
                        state,
                        priority: engine.effective_priority(),
                    });
                }
                if let Some(a) = &io.alerts {
                    a.transition(&engine.config().name, *to);
                }
            }
            perform(&mut io, &mut send_errors, action).await;
        }
        publish(&io, &engine, transitions, &last_reason, restored);
        if let Some(tx) = &io.group_events {
            let status = engine.sync_status();
            if last_sync != Some(status) {
                last_sync = Some(status);
                let _ = tx.send((engine.config().name.clone(), status));
            }
        }
        if engine.state() == State::Stopped {
            return;
        }
        let deadline = engine.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending::<()>().await,
            }
        };
        let removal = async {
            match &pending_removal {
                Some((at, _)) => tokio::time::sleep_until(*at).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            biased;
            _ = removal => {
                if let Some((_, ips)) = pending_removal.take() {
                    perform(&mut io, &mut send_errors, Action::RemoveAddresses(ips)).await;
                }
            }
            input = rx.recv() => {
                let now = Instant::now();
                match input {
                    None => { engine.shutdown(now); }
                    Some(Input::Packet(r)) => engine.handle_packet(now, r.src, r.dst, r.ttl, &r.payload),
                    Some(Input::Tracking { delta: d, fault }) => {
                        delta = d;
                        track_fault = fault;
                        engine.set_tracking(now, delta, track_fault || !link_up);
                    }
                    Some(Input::Link { up }) => {
                        if up != link_up {
                            tracing::warn!("{}: interface {} is {}", engine.config().name, io.interface, if up { "up" } else { "down" });
                        }
                        link_up = up;
                        engine.set_tracking(now, delta, track_fault || !link_up);
                    }
                    Some(Input::Sync { target, group }) => engine.sync_to(now, target, &group),
                    Some(Input::AddressRemoved(ip)) => {
                        if engine.state() == State::Master && engine.config().virtual_addresses.contains(&ip) {
                            tracing::warn!("{}: virtual address {} was removed from {} by someone else while master; putting it back", engine.config().name, ip, io.interface);
                            restored += 1;
                            perform(&mut io, &mut send_errors, Action::AddAddresses(vec![ip])).await;
                            perform(&mut io, &mut send_errors, Action::Announce(vec![ip])).await;
                        }
                    }
                    Some(Input::Shutdown(ack)) => {
                        let was_master = engine.state() == State::Master;
                        let handoff_wait = handoff_wait(&engine);
                        engine.shutdown(now);
                        let mut deferred = Vec::new();
                        while let Some(action) = engine.poll_action() {
                            match action {
                                Action::StateChanged { from, to, reason } => {
                                    tracing::info!("{} {} -> {}: {}", engine.config().name, from, to, reason);
                                    io.notifier.send(NotifyEvent { state: NotifyState::Stop, priority: 0 });
                                }
                                // A master keeps its addresses until a backup has taken over.
                                Action::RemoveAddresses(ips) if was_master => deferred = ips,
                                other => perform(&mut io, &mut send_errors, other).await,
                            }
                        }
                        if let Some((_, ips)) = pending_removal.take() {
                            perform(&mut io, &mut send_errors, Action::RemoveAddresses(ips)).await;
                        }
                        if !deferred.is_empty() {
                            let took = wait_for_new_master(&mut rx, &engine, io.primary, handoff_wait).await;
                            if let Some(h) = &io.on_handoff {
                                h(HANDOFF_GRACE + HANDOFF_QUIET_MARGIN);
                            }
                            match took {
                                Some(t) => tracing::info!("{}: a new master took over after {:.0?}; releasing the addresses", engine.config().name, t),
                                None => tracing::warn!("{}: no new master within {:.1?}; releasing the addresses anyway", engine.config().name, handoff_wait),
                            }
                            tokio::time::sleep(HANDOFF_GRACE).await;
                            perform(&mut io, &mut send_errors, Action::RemoveAddresses(deferred)).await;
                        }
                        publish(&io, &engine, transitions, &last_reason, restored);
                        let _ = ack.send(());
                        return;
                    }
                }
            }
            _ = sleep => engine.handle_timeout(Instant::now()),
        }
    }
}

async fn perform(io: &mut InstanceIo, send_errors: &mut u64, action: Action) {
    match action {
        Action::SendAdvert { dst, packet } => {
            if let Err(e) = io.socket.send(io.primary, dst, &packet).await {
                *send_errors += 1;
                // Rate-limited: the first error and then every 100th.
                if *send_errors == 1 || *send_errors % 100 == 0 {
                    tracing::warn!(
                        "sending advert on {} to {dst} failed ({} so far): {e}",
                        io.interface,
                        send_errors
                    );
                }
            }
        }
        Action::AddAddresses(ips) => {
            for ip in ips {
                let len = io.prefix_len.get(&ip).copied().unwrap_or(32);
                if let Err(e) = io.addresses.add(io.ifindex, ip, len).await {
                    tracing::error!("adding {ip}/{len} to {} failed: {e}", io.interface);
                }
            }
        }
        Action::RemoveAddresses(ips) => {
            for ip in ips {
                let len = io.prefix_len.get(&ip).copied().unwrap_or(32);
                if let Err(e) = io.addresses.remove(io.ifindex, ip, len).await {
                    tracing::error!("removing {ip}/{len} from {} failed: {e}", io.interface);
                }
            }
        }
        Action::Announce(ips) => {
            if let Some(a) = &io.announcer {
                for ip in ips {
                    let r = match ip {
                        IpAddr::V4(v4) => a.send_garp(v4),
                        IpAddr::V6(v6) => a.send_unsolicited_na(v6),
                    };
                    if let Err(e) = r {
                        tracing::debug!("announcing {ip} on {} failed: {e}", io.interface);
                    }
                }
            }
        }
        Action::StateChanged { .. } => {}
    }
}

fn publish(io: &InstanceIo, engine: &Instance, transitions: u64, reason: &str, restored: u64) {
    let cfg = engine.config();
    io.board.set(InstanceStatus {
        name: cfg.name.clone(),
        interface: io.interface.clone(),
        vrid: cfg.vrid,
        state: engine.state().to_string(),
        priority: cfg.priority,
        effective_priority: engine.effective_priority(),
        virtual_addresses: cfg
            .virtual_addresses
            .iter()
            .map(|a| a.to_string())
            .collect(),
        transitions,
        last_reason: reason.to_string(),
        addresses_restored: restored,
        counters: counters_map(engine.counters()),
    });
}

/// How long a former master keeps the virtual addresses after the new master announced itself.
///
/// Clients switch to the new master when its gratuitous ARP / NA reaches them; a connection opened a
/// moment before that still goes to the old master's MAC. keepalived removes the addresses at once and
/// such connections are reset; halo keeps serving them for this long (the RFC's rule that a backup
/// must not accept packets for the addresses matters for routers forwarding traffic, not for a proxy
/// that completes its own connections).
pub const HANDOFF_GRACE: Duration = Duration::from_millis(300);

/// The new master holds its gratuitous ARP back this long after a handover (see
/// `InstanceConfig::handoff_announce_delay`): the old master's in-flight requests finish first.
pub const HANDOFF_ANNOUNCE_DELAY: Duration = Duration::from_millis(100);

/// The old master stops taking new connections for a little longer than it keeps the VIP.
const HANDOFF_QUIET_MARGIN: Duration = Duration::from_millis(50);

/// How long a stopping master waits for a backup to take over: the backups' Skew_Time after our
/// priority-0 advert (at most 1 s with VRRPv2), with room for a lost advert.
fn handoff_wait(engine: &Instance) -> Duration {
    let interval = engine.master_adver_interval();
    (interval * 3).max(Duration::from_millis(1200))
}

/// Waits for an advert of our VRID with a non-zero priority from another router: the new master.
/// Returns how long it took, or `None` at the timeout (or when the input channel closes).
async fn wait_for_new_master(
    rx: &mut mpsc::Receiver<Input>,
    engine: &Instance,
    primary: IpAddr,
    timeout: Duration,
) -> Option<Duration> {
    let start = tokio::time::Instant::now();
    let deadline = start + timeout;
    loop {
        let input = tokio::time::timeout_at(deadline, rx.recv()).await.ok()??;
        if let Input::Packet(r) = input {
            if r.src == primary {
                continue;
            }
            if let Ok(advert) = halo_vrrp::Advert::decode(&r.payload, r.src, r.dst) {
                if advert.vrid == engine.config().vrid && advert.priority > 0 {
                    return Some(start.elapsed());
                }
            }
        }
    }
}

/// Longest a shutdown of one instance may take: its handoff wait plus the grace and some slack.
pub fn shutdown_wait(advert_interval: Duration) -> Duration {
    (advert_interval * 3).max(Duration::from_millis(1200)) + HANDOFF_GRACE + Duration::from_secs(1)
}

/// The engine's counters by name, for the status file.
fn counters_map(c: &halo_vrrp::Counters) -> BTreeMap<String, u64> {
    [
        ("rx_adverts", c.rx_adverts),
        ("tx_adverts", c.tx_adverts),
        ("became_master", c.became_master),
        ("released_master", c.released_master),
        ("drop_ttl", c.drop_ttl),
        ("drop_version", c.drop_version),
        ("drop_type", c.drop_type),
        ("drop_vrid", c.drop_vrid),
        ("drop_length", c.drop_length),
        ("drop_checksum", c.drop_checksum),
        ("drop_auth", c.drop_auth),
        ("drop_interval", c.drop_interval),
        ("drop_addr_list", c.drop_addr_list),
        ("drop_family", c.drop_family),
        ("drop_destination", c.drop_destination),
        ("drop_own_address", c.drop_own_address),
        ("rx_priority_zero", c.rx_priority_zero),
        ("tx_priority_zero", c.tx_priority_zero),
        ("rx_lower_priority_as_master", c.rx_lower_priority_as_master),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
