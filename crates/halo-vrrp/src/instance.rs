//! The per-VRID state machine (RFC 5798 §6.4, RFC 3768 §6.4), sans-IO: packets and timeouts in, actions out.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::action::{Action, State};
use crate::config::{ConfigError, InstanceConfig, Version};
use crate::counters::Counters;
use crate::packet::{
    Advert, Authentication, DecodeError, MULTICAST_GROUP_V4, MULTICAST_GROUP_V6, VRRP_TTL,
};
use crate::timing::{master_down_interval, skew_time};

/// Priority of the address owner (RFC 5798 §5.2.4).
pub const PRIORITY_OWNER: u8 = 255;
/// Priority announcing that the master stops (RFC 5798 §5.2.4).
pub const PRIORITY_STOP: u8 = 0;

/// Why the Master_Down_Timer of a backup is running; used to word the takeover reason.
#[derive(Debug, Clone, Copy)]
enum DownCause {
    /// No (accepted) advert since `since`.
    Silence { since: Instant },
    /// The master sent priority 0 (RFC 5798 §6.4.2): the timer was set to Skew_Time.
    MasterStopped { from: IpAddr },
    /// A lower-priority master is being preempted: its adverts are discarded (RFC 5798 §6.4.2).
    Preempting {
        from: IpAddr,
        priority: u8,
        since: Instant,
    },
}

/// One VRRP instance: a virtual router (VRID) on one link, as seen by this router.
///
/// Feed it with [`Instance::handle_packet`] and [`Instance::handle_timeout`], call it back at
/// [`Instance::poll_timeout`], and carry out every [`Action`] from [`Instance::poll_action`].
#[derive(Debug)]
pub struct Instance {
    cfg: InstanceConfig,
    state: State,
    /// Configured priority; keepalived lowers an owner to 254 on an owner conflict.
    base_priority: u8,
    effective_priority: u8,
    tracking_delta: i32,
    tracking_fault: bool,
    sync_fault: bool,
    /// Master_Adver_Interval (RFC 5798 §6.1): our interval, or the master's as learned by a v3 backup.
    master_adver_int: Duration,
    /// Adver_Timer in Master, Master_Down_Timer in Backup, none otherwise.
    timer: Option<Instant>,
    /// keepalived `preempt_time`: until when a lower-priority master is still followed.
    preempt_until: Option<Instant>,
    /// Source of the last advert a backup accepted (keepalived `master_saddr`).
    master_address: Option<IpAddr>,
    down_cause: DownCause,
    /// Pending single announce rounds (second bursts, spaced rounds).
    announce_at: Vec<Instant>,
    /// Next GARP refresh (keepalived `garp_refresh_timer`), checked when an advert goes out.
    refresh_at: Option<Instant>,
    actions: VecDeque<Action>,
    counters: Counters,
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

impl Instance {
    /// Validates `cfg` and starts the instance at `now` (RFC 5798 §6.4.1 Startup).
    ///
    /// A priority-255 instance with `start_as_master` becomes master at once. Every other instance enters
    /// Backup, asks the driver to remove any leftover virtual addresses (keepalived "removing VIPs" at
    /// start-up) and waits Master_Down_Interval; keepalived 2.2.7 does the same for `state MASTER`.
    pub fn new(cfg: InstanceConfig, now: Instant) -> Result<Self, ConfigError> {
        let cfg = cfg.validated()?;
        let mut instance = Instance {
            base_priority: cfg.priority,
            effective_priority: cfg.priority,
            tracking_delta: 0,
            tracking_fault: false,
            sync_fault: false,
            master_adver_int: cfg.advert_interval,
            timer: None,
            preempt_until: None,
            master_address: None,
            down_cause: DownCause::Silence { since: now },
            announce_at: Vec::new(),
            refresh_at: None,
            actions: VecDeque::new(),
            counters: Counters::default(),
            state: State::Initialize,
            cfg,
        };
        if instance.cfg.resume_master {
            instance.become_master(
                now,
                "resuming as master: the virtual addresses were still held after a restart"
                    .to_owned(),
            );
        } else if instance.cfg.priority == PRIORITY_OWNER && instance.cfg.start_as_master {
            // RFC 5798 §6.4.1: the owner sends an ADVERTISEMENT, announces and becomes Master.
            instance.become_master(
                now,
                "address owner (priority 255) with initial state MASTER".to_owned(),
            );
        } else {
            let down = instance.master_down_interval();
            instance.transition(
                State::Backup,
                format!("startup, waiting {} for a master", secs(down)),
            );
            if !instance.cfg.virtual_addresses.is_empty() {
                instance.actions.push_back(Action::RemoveAddresses(
                    instance.cfg.virtual_addresses.clone(),
                ));
            }
            instance.timer = Some(now + down);
        }
        Ok(instance)
    }

    /// The validated configuration (v3 interval rounded to centiseconds, keepalived's resets applied).
    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Priority sent in adverts and used in elections.
    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }

    /// Statistics.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// This instance as a sync group member sees it.
    pub fn sync_status(&self) -> crate::MemberStatus {
        crate::MemberStatus {
            state: self.state,
            own_fault: self.tracking_fault,
        }
    }

    /// Master_Adver_Interval currently in use (a v3 backup learns it from the master).
    pub fn master_adver_interval(&self) -> Duration {
        self.master_adver_int
    }

    /// Next action for the driver, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Instance::handle_timeout`] must next be called; `None` when nothing is scheduled.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let announce = self.announce_at.iter().min().copied();
        match (self.timer, announce) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(deadline) = self.timer.filter(|t| *t <= now) {
            match self.state {
                State::Backup => {
                    // RFC 5798 §6.4.2: Master_Down_Timer fires => send ADVERT, announce, become Master.
                    let late = now.saturating_duration_since(deadline);
                    let reason = self.takeover_reason(now, late);
                    let handoff = matches!(
                        self.down_cause,
                        DownCause::MasterStopped { .. } | DownCause::Preempting { .. }
                    );
                    let delay = if handoff {
                        self.cfg.handoff_announce_delay
                    } else {
                        Duration::ZERO
                    };
                    self.become_master_announcing_after(now, reason, delay);
                }
                State::Master => {
                    // RFC 5798 §6.4.3: Adver_Timer fires => send ADVERT, reset the timer.
                    self.send_advert(self.effective_priority);
                    self.timer = Some(now + self.cfg.advert_interval);
                    self.refresh_if_due(now);
                }
                State::Initialize | State::Fault | State::Stopped => self.timer = None,
            }
        }
        let before = self.announce_at.len();
        self.announce_at.retain(|at| *at > now);
        for _ in self.announce_at.len()..before {
            self.announce_round();
        }
    }

    /// Handles one received VRRP message. `src`/`dst`/`ttl` come from the IP header; `vrrp` is the IP
    /// payload (trailing Ethernet padding is tolerated).
    ///
    /// Validation follows RFC 5798 §7.1 / RFC 3768 §7.1; each discarded packet increments one `drop_*`
    /// counter. Deviation kept from keepalived: the TTL check is skipped on unicast instances.
    pub fn handle_packet(&mut self, now: Instant, src: IpAddr, dst: IpAddr, ttl: u8, vrrp: &[u8]) {
        if self.state == State::Stopped {
            return;
        }
        let Some(advert) = self.validate(src, dst, ttl, vrrp) else {
            return;
        };
        self.counters.rx_adverts += 1;
        if advert.priority == PRIORITY_STOP {
            self.counters.rx_priority_zero += 1;
        }
        match self.state {
            State::Backup => self.backup_receive(now, src, &advert),
            State::Master => self.master_receive(now, src, &advert),
            State::Initialize | State::Fault | State::Stopped => {}
        }
    }

    /// Applies the result of tracking (scripts, interfaces): priority `base + delta` clamped to 1..=254
    /// (an owner stays 255, keepalived `vrrp_set_effective_priority`), and FAULT while `fault` is true.
    ///
    /// A new priority goes out with the next advert. Leaving FAULT enters Backup and waits
    /// Master_Down_Interval (keepalived `try_up_instance`); an owner with `start_as_master` becomes
    /// master at once. Entering FAULT as master sends a priority-0 advert and removes the addresses.
    pub fn set_tracking(&mut self, now: Instant, priority_delta: i32, fault: bool) {
        self.tracking_delta = priority_delta;
        self.recompute_priority();
        self.tracking_fault = fault;
        match (fault, self.state) {
            (_, State::Stopped | State::Initialize) => {}
            (true, State::Fault) => {}
            (true, _) => self.enter_fault(now, "tracking reports a fault".to_owned()),
            (false, State::Fault) if !self.sync_fault => {
                self.leave_fault(now, "tracking recovered")
            }
            (false, _) => {}
        }
    }

    /// Forces the state a sync group decided (see [`crate::SyncGroup`]): `Master`, `Backup` or `Fault`.
    /// `group` names the sync group in the reason. A forced Fault lasts until a forced Backup or Master;
    /// an instance whose own tracking reports a fault stays in Fault.
    pub fn sync_to(&mut self, now: Instant, target: State, group: &str) {
        match target {
            State::Fault => {
                self.sync_fault = true;
                if !matches!(self.state, State::Fault | State::Stopped) {
                    self.enter_fault(now, format!("sync group {group} is in FAULT"));
                }
            }
            State::Backup => {
                self.sync_fault = false;
                match self.state {
                    State::Master => {
                        self.leave_master_to_backup(now, format!("sync group {group} went BACKUP"))
                    }
                    State::Fault if !self.tracking_fault => {
                        let down = self.master_down_interval_for(self.cfg.advert_interval);
                        self.master_adver_int = self.cfg.advert_interval;
                        self.enter_backup(now, down, format!("sync group {group} left FAULT"));
                    }
                    _ => {}
                }
            }
            State::Master => {
                self.sync_fault = false;
                if matches!(self.state, State::Backup)
                    || (self.state == State::Fault && !self.tracking_fault)
                {
                    self.become_master(now, format!("sync group {group} went MASTER"));
                }
            }
            State::Initialize | State::Stopped => {}
        }
    }

    /// Stops the instance (RFC 5798 §6.4.3 Shutdown): a master sends an advert with priority 0 so backups
    /// take over after Skew_Time, and removes its addresses. The instance then ignores all input.
    pub fn shutdown(&mut self, now: Instant) {
        let _ = now;
        match self.state {
            State::Stopped => {}
            State::Master => {
                self.transition(State::Stopped, "shutdown".to_owned());
                self.counters.released_master += 1;
                self.send_advert(PRIORITY_STOP);
                self.remove_addresses();
            }
            _ => self.transition(State::Stopped, "shutdown".to_owned()),
        }
        self.timer = None;
        self.announce_at.clear();
        self.refresh_at = None;
    }

    // ----- receive path -----

    /// RFC 5798 §7.1 / RFC 3768 §7.1 checks; returns the advert when it must be processed.
    fn validate(&mut self, src: IpAddr, dst: IpAddr, ttl: u8, vrrp: &[u8]) -> Option<Advert> {
        let c = &mut self.counters;
        // §7.1: MUST verify that the IP TTL/Hop Limit is 255 (keepalived skips it for unicast).
        if !self.cfg.is_unicast() && ttl != VRRP_TTL {
            c.drop_ttl += 1;
            return None;
        }
        let advert = match Advert::decode(vrrp, src, dst) {
            Ok(advert) => advert,
            Err(err) => {
                match err {
                    DecodeError::TooShort { .. } | DecodeError::Truncated { .. } => {
                        c.drop_length += 1
                    }
                    DecodeError::Version(_) => c.drop_version += 1,
                    DecodeError::Type(_) => c.drop_type += 1,
                    DecodeError::Family { .. } => c.drop_family += 1,
                    DecodeError::Checksum { .. } => c.drop_checksum += 1,
                }
                tracing::debug!(instance = %self.cfg.name, %src, error = %err, "discarding VRRP packet");
                return None;
            }
        };
        // §7.1: MUST verify the VRRP version.
        if advert.version != self.cfg.version {
            c.drop_version += 1;
            return None;
        }
        // §7.1: MUST verify that the VRID is configured on the receiving interface.
        if advert.vrid != self.cfg.vrid {
            c.drop_vrid += 1;
            return None;
        }
        if src.is_ipv4() != self.cfg.primary_address.is_ipv4() {
            c.drop_family += 1;
            return None;
        }
        if src == self.cfg.primary_address {
            c.drop_own_address += 1;
            return None;
        }
        if self.cfg.version == Version::V2 {
            // RFC 3768 §7.1: MUST perform the authentication specified by Auth Type.
            let expected = self
                .cfg
                .auth_pass
                .map_or(Authentication::None, Authentication::Password);
            if advert.authentication != expected {
                c.drop_auth += 1;
                tracing::debug!(instance = %self.cfg.name, %src, "authentication mismatch");
                return None;
            }
            // RFC 3768 §7.1: MUST verify that the Adver Interval matches the local one.
            if u64::from(advert.adver_int) != self.cfg.advert_interval.as_secs() {
                c.drop_interval += 1;
                tracing::debug!(instance = %self.cfg.name, %src, received = advert.adver_int, "advert interval mismatch");
                return None;
            }
        } else if advert.adver_int == 0 {
            // A zero Max Adver Int would make Master_Down_Interval zero; refuse to learn it.
            c.drop_interval += 1;
            return None;
        }
        // keepalived: multicast packets on a unicast instance (and vice versa) are discarded.
        if dst.is_multicast() == self.cfg.is_unicast() {
            c.drop_destination += 1;
            return None;
        }
        // RFC 5798 §7.1 MAY verify the address list; keepalived does, except with skip_check_adv_addr for
        // adverts from the master it already follows.
        let known_master = self.state == State::Backup && self.master_address == Some(src);
        if !(self.cfg.skip_check_adv_addr && known_master) {
            let ours = &self.cfg.virtual_addresses;
            if advert.addresses.len() != ours.len()
                || !ours.iter().all(|a| advert.addresses.contains(a))
            {
                c.drop_addr_list += 1;
                // Rate-limited: the 1st, 2nd, 4th, 8th... occurrence (a misconfigured peer repeats it
                // every advert interval).
                if c.drop_addr_list.is_power_of_two() {
                    tracing::warn!(
                        instance = %self.cfg.name,
                        %src,
                        count = c.drop_addr_list,
                        "advert dropped: its address list differs from ours (another cluster on this VRID?)"
                    );
                }
                return None;
            }
        }
        Some(advert)
    }

    /// RFC 5798 §6.4.2 "If an ADVERTISEMENT is received" in Backup, with keepalived's preempt_delay.
    fn backup_receive(&mut self, now: Instant, src: IpAddr, advert: &Advert) {
        if advert.priority == PRIORITY_STOP {
            // Priority 0: the master is leaving; take over after Skew_Time only.
            let skew = skew_time(
                self.cfg.version,
                self.effective_priority,
                self.master_adver_int,
            );
            self.timer = Some(now + skew);
            self.down_cause = DownCause::MasterStopped { from: src };
            return;
        }
        let still_following_lower =
            !self.cfg.preempt_delay.is_zero() && self.preempt_until.is_none_or(|t| t > now);
        if !self.cfg.preempt || advert.priority >= self.effective_priority || still_following_lower
        {
            if self.cfg.version == Version::V3 {
                // RFC 5798 §6.4.2: set Master_Adver_Interval to the advert's interval.
                self.master_adver_int = Duration::from_millis(u64::from(advert.adver_int) * 10);
            }
            self.timer = Some(now + self.master_down_interval());
            self.master_address = Some(src);
            self.down_cause = DownCause::Silence { since: now };
            if !self.cfg.preempt_delay.is_zero() {
                if advert.priority >= self.effective_priority {
                    self.preempt_until = None;
                } else if self.preempt_until.is_none() {
                    self.preempt_until = Some(now + self.cfg.preempt_delay);
                    tracing::info!(instance = %self.cfg.name, %src, delay = ?self.cfg.preempt_delay, "start preempt delay");
                }
            }
        } else {
            // Lower priority and we preempt: discard, the Master_Down_Timer keeps running.
            let since = match self.down_cause {
                DownCause::Silence { since } | DownCause::Preempting { since, .. } => since,
                DownCause::MasterStopped { .. } => now,
            };
            self.down_cause = DownCause::Preempting {
                from: src,
                priority: advert.priority,
                since,
            };
            tracing::debug!(instance = %self.cfg.name, %src, priority = advert.priority, "received lower priority advert - discarding");
        }
    }

    /// RFC 5798 §6.4.3 "If an ADVERTISEMENT is received" in Master, with keepalived's re-announce.
    fn master_receive(&mut self, now: Instant, src: IpAddr, advert: &Advert) {
        if advert.priority == PRIORITY_STOP {
            // Another master is leaving: send an advert at once and reset the Adver_Timer.
            self.send_advert(self.effective_priority);
            self.timer = Some(now + self.cfg.advert_interval);
            return;
        }
        if advert.priority == PRIORITY_OWNER && self.effective_priority == PRIORITY_OWNER {
            // keepalived: two address owners is a configuration error; lower ourselves to 254.
            tracing::error!(instance = %self.cfg.name, %src, "another router claims to be the address owner; lowering our priority to 254");
            self.base_priority = PRIORITY_OWNER - 1;
            self.recompute_priority();
        }
        let ours = self.effective_priority;
        let higher_ip = src > self.cfg.primary_address;
        if advert.priority > ours || (advert.priority == ours && higher_ip) {
            if self.cfg.version == Version::V3 {
                self.master_adver_int = Duration::from_millis(u64::from(advert.adver_int) * 10);
            }
            self.master_address = Some(src);
            let reason = if advert.priority > ours {
                format!(
                    "higher priority advert from {src} (priority {} > ours {ours})",
                    advert.priority
                )
            } else {
                format!("advert from {src} with equal priority {ours} and higher address")
            };
            self.leave_master_to_backup(now, reason);
            return;
        }
        // Lower priority (or equal with a lower address): RFC says discard. keepalived re-asserts by
        // default: advert unless lower_prio_no_advert, plus a GARP burst per garp_lower_prio_*.
        self.counters.rx_lower_priority_as_master += 1;
        tracing::info!(instance = %self.cfg.name, %src, priority = advert.priority, ours, "master received lower priority advert");
        if !self.cfg.lower_prio_no_advert {
            self.send_advert(ours);
            self.timer = Some(now + self.cfg.advert_interval);
        }
        let repeat = self.cfg.garp.lower_prio_repeat;
        if repeat > 0 {
            self.announce_burst(now, now, repeat);
            if !self.cfg.garp.lower_prio_delay.is_zero() {
                self.announce_burst(now, now + self.cfg.garp.lower_prio_delay, repeat);
            }
        }
    }

    // ----- transitions -----

    fn transition(&mut self, to: State, reason: String) {
        let from = self.state;
        self.state = to;
        self.actions
            .push_back(Action::StateChanged { from, to, reason });
    }

    /// RFC 5798 §6.4.1/§6.4.2: send an ADVERT, install and announce the addresses, start the Adver_Timer.
    fn become_master(&mut self, now: Instant, reason: String) {
        self.become_master_announcing_after(now, reason, Duration::ZERO);
    }

    /// [`Instance::become_master`] with the first announcement burst `announce_delay` later.
    fn become_master_announcing_after(
        &mut self,
        now: Instant,
        reason: String,
        announce_delay: Duration,
    ) {
        self.transition(State::Master, reason);
        self.counters.became_master += 1;
        // keepalived vrrp_state_become_master: a v3 master uses its own interval again.
        self.master_adver_int = self.cfg.advert_interval;
        // Advert first so the old master drops the addresses before our GARPs (keepalived master_tx).
        self.send_advert(self.effective_priority);
        if !self.cfg.virtual_addresses.is_empty() {
            self.actions
                .push_back(Action::AddAddresses(self.cfg.virtual_addresses.clone()));
        }
        let garp = self.cfg.garp.clone();
        self.announce_burst(now, now + announce_delay, garp.master_repeat);
        if !garp.master_delay.is_zero() {
            self.announce_burst(now, now + garp.master_delay, garp.master_repeat);
        }
        self.refresh_at = (!garp.master_refresh.is_zero()).then(|| now + garp.master_refresh);
        self.timer = Some(now + self.cfg.advert_interval);
        self.preempt_until = None;
    }

    fn enter_backup(&mut self, now: Instant, down: Duration, reason: String) {
        self.transition(State::Backup, reason);
        self.timer = Some(now + down);
        self.down_cause = DownCause::Silence { since: now };
        self.preempt_until = None;
    }

    /// RFC 5798 §6.4.3: cancel the Adver_Timer, set the Master_Down_Timer, go Backup.
    fn leave_master_to_backup(&mut self, now: Instant, reason: String) {
        self.counters.released_master += 1;
        let down = self.master_down_interval();
        self.enter_backup(now, down, reason);
        self.remove_addresses();
    }

    fn enter_fault(&mut self, now: Instant, reason: String) {
        let _ = now;
        let was_master = self.state == State::Master;
        self.transition(State::Fault, reason);
        if was_master {
            // keepalived vrrp_state_leave_master with wantstate FAULT: priority-0 advert, addresses off.
            self.counters.released_master += 1;
            self.send_advert(PRIORITY_STOP);
            self.remove_addresses();
        }
        self.timer = None;
    }

    fn leave_fault(&mut self, now: Instant, reason: &str) {
        self.master_adver_int = self.cfg.advert_interval;
        if self.cfg.start_as_master && self.base_priority == PRIORITY_OWNER {
            self.become_master(
                now,
                format!("{reason}; address owner with initial state MASTER"),
            );
        } else {
            let down = self.master_down_interval();
            self.enter_backup(
                now,
                down,
                format!("{reason}, waiting {} for a master", secs(down)),
            );
        }
    }

    fn remove_addresses(&mut self) {
        self.announce_at.clear();
        self.refresh_at = None;
        if !self.cfg.virtual_addresses.is_empty() {
            self.actions
                .push_back(Action::RemoveAddresses(self.cfg.virtual_addresses.clone()));
        }
    }

    fn takeover_reason(&self, now: Instant, late: Duration) -> String {
        let mut reason = match self.down_cause {
            DownCause::Silence { since } => {
                format!("master down timer expired (no advert for {})", secs(now.saturating_duration_since(since)))
            }
            DownCause::MasterStopped { from } => {
                format!("master {from} sent priority 0 (stopping); skew time expired")
            }
            DownCause::Preempting { from, priority, since } => format!(
                "preempting lower priority master {from} (priority {priority} < ours {}; no accepted advert for {})",
                self.effective_priority,
                secs(now.saturating_duration_since(since))
            ),
        };
        if late > Duration::from_millis(100) {
            reason.push_str(&format!(" [timer ran {} late]", secs(late)));
        }
        reason
    }

    // ----- sending -----

    fn destinations(&self) -> Vec<IpAddr> {
        if self.cfg.is_unicast() {
            self.cfg.unicast_peers.clone()
        } else if let Some(group) = self.cfg.multicast_group {
            vec![group]
        } else if self.cfg.primary_address.is_ipv4() {
            vec![IpAddr::V4(MULTICAST_GROUP_V4)]
        } else {
            vec![IpAddr::V6(MULTICAST_GROUP_V6)]
        }
    }

    /// Builds this instance's advert with `priority` (RFC 5798 §5.2 / RFC 3768 §5.3 field values).
    pub fn advert(&self, priority: u8) -> Advert {
        let (adver_int, authentication) = match self.cfg.version {
            Version::V2 => (
                u16::try_from(self.cfg.advert_interval.as_secs()).unwrap_or(u16::MAX),
                self.cfg
                    .auth_pass
                    .map_or(Authentication::None, Authentication::Password),
            ),
            Version::V3 => (
                u16::try_from(self.cfg.advert_interval.as_millis() / 10).unwrap_or(u16::MAX),
                Authentication::None,
            ),
        };
        Advert {
            version: self.cfg.version,
            vrid: self.cfg.vrid,
            priority,
            adver_int,
            authentication,
            addresses: self.cfg.virtual_addresses.clone(),
        }
    }

    fn send_advert(&mut self, priority: u8) {
        let advert = self.advert(priority);
        for dst in self.destinations() {
            match advert.encode(self.cfg.primary_address, dst) {
                Ok(packet) => {
                    self.counters.tx_adverts += 1;
                    if priority == PRIORITY_STOP {
                        self.counters.tx_priority_zero += 1;
                    }
                    self.actions.push_back(Action::SendAdvert { dst, packet });
                }
                Err(err) => {
                    // Unreachable with a validated configuration; never panic on the send path.
                    tracing::error!(instance = %self.cfg.name, %dst, error = %err, "cannot encode advert");
                }
            }
        }
    }

    // ----- announcements (gratuitous ARP / unsolicited NA) -----

    fn announce_round(&mut self) {
        if self.state == State::Master && !self.cfg.virtual_addresses.is_empty() {
            self.actions
                .push_back(Action::Announce(self.cfg.virtual_addresses.clone()));
        }
    }

    /// `rounds` announce rounds starting at `start`, spaced by `garp.interval`; due ones go out now.
    fn announce_burst(&mut self, now: Instant, start: Instant, rounds: u32) {
        if self.cfg.virtual_addresses.is_empty() {
            return;
        }
        for k in 0..rounds {
            let at = start + self.cfg.garp.interval * k;
            if at <= now {
                self.announce_round();
            } else {
                self.announce_at.push(at);
            }
        }
    }

    /// keepalived vrrp_state_master_tx: with `garp_master_refresh`, the first advert after the refresh
    /// period also sends `garp_master_refresh_repeat` rounds.
    fn refresh_if_due(&mut self, now: Instant) {
        if let Some(at) = self.refresh_at.filter(|at| *at <= now) {
            let _ = at;
            let repeat = self.cfg.garp.refresh_repeat;
            self.announce_burst(now, now, repeat);
            self.refresh_at = Some(now + self.cfg.garp.master_refresh);
        }
    }

    // ----- priorities and timers -----

    fn recompute_priority(&mut self) {
        self.effective_priority = if self.base_priority == PRIORITY_OWNER {
            PRIORITY_OWNER
        } else {
            let total = i64::from(self.base_priority) + i64::from(self.tracking_delta);
            u8::try_from(total.clamp(1, 254)).unwrap_or(1)
        };
    }

    fn master_down_interval(&self) -> Duration {
        self.master_down_interval_for(self.master_adver_int)
    }

    fn master_down_interval_for(&self, interval: Duration) -> Duration {
        master_down_interval(self.cfg.version, self.effective_priority, interval)
    }
}

/// The multicast group adverts of a family go to (RFC 5798 §5.1.1.2, §5.1.2.2).
pub fn multicast_group(family_of: IpAddr) -> IpAddr {
    match family_of {
        IpAddr::V4(_) => IpAddr::V4(MULTICAST_GROUP_V4),
        IpAddr::V6(_) => IpAddr::V6(MULTICAST_GROUP_V6),
    }
}
