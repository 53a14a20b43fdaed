//! keepalived `vrrp_sync_group`: member instances move between MASTER, BACKUP and FAULT together
//! (keepalived/vrrp/vrrp_sync.c `vrrp_sync_master`, `vrrp_sync_backup`, `vrrp_sync_fault`).
//!
//! Pure: the driver keeps one [`SyncGroup`] per group. After handling any event of a member it calls
//! [`SyncGroup::reconcile`] with every member's [`MemberStatus`] (in a fixed order), applies each
//! returned [`SyncCommand`] with [`crate::Instance::sync_to`], drains the members' actions, and repeats
//! until no command comes back (at most a few rounds).

use crate::action::State;

/// What the group needs to know about one member ([`crate::Instance::sync_status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberStatus {
    /// The member's state.
    pub state: State,
    /// True while the member's own tracking reports a fault (not a fault forced by the group).
    pub own_fault: bool,
}

/// A forced transition for one member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncCommand {
    /// Index of the member in the slice given to [`SyncGroup::reconcile`].
    pub member: usize,
    /// State to force with [`crate::Instance::sync_to`].
    pub target: State,
}

/// State of a sync group and the rule that keeps its members together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    /// Group name (keepalived `vrrp_sync_group NAME`), used in reasons.
    pub name: String,
    state: State,
}

impl SyncGroup {
    /// A group in BACKUP, as keepalived starts every group.
    pub fn new(name: impl Into<String>) -> Self {
        SyncGroup {
            name: name.into(),
            state: State::Backup,
        }
    }

    /// The group's state (Backup, Master or Fault).
    pub fn state(&self) -> State {
        self.state
    }

    /// Decides the forced transitions for the members' current status, in keepalived's precedence:
    ///
    /// 1. A member has a fault of its own (its tracking): the group goes Fault and every other member is
    ///    forced to Fault (`vrrp_sync_fault`). Stopped members are ignored throughout.
    /// 2. No member has its own fault but the group is Fault: the group returns to Backup and the members
    ///    it held in Fault are released to Backup, where they wait Master_Down_Interval
    ///    (keepalived `try_up_instance` once `num_member_fault` reaches 0).
    /// 3. A member became Master while the group was not: the group goes Master and every Backup member
    ///    is forced to Master (`vrrp_sync_master`).
    /// 4. The group is Master and a member dropped to Backup (it heard a higher priority): the group goes
    ///    Backup and every Master member is forced to Backup (`vrrp_sync_backup`).
    ///
    /// Deviation: keepalived lets the first member whose down timer fires become master only when every
    /// other member also "wants" master, holding it in backup otherwise; here the first one to become
    /// master pulls the others up at once (rule 3).
    pub fn reconcile(&mut self, members: &[MemberStatus]) -> Vec<SyncCommand> {
        let active = || {
            members
                .iter()
                .enumerate()
                .filter(|(_, m)| m.state != State::Stopped)
        };
        let force = |target: State, pick: &dyn Fn(State) -> bool| -> Vec<SyncCommand> {
            active()
                .filter(|(_, m)| pick(m.state))
                .map(|(member, _)| SyncCommand { member, target })
                .collect()
        };
        if active().any(|(_, m)| m.own_fault) {
            self.state = State::Fault;
            return force(State::Fault, &|s| s != State::Fault);
        }
        if self.state == State::Fault {
            self.state = State::Backup;
            return force(State::Backup, &|s| s == State::Fault);
        }
        if self.state != State::Master && active().any(|(_, m)| m.state == State::Master) {
            self.state = State::Master;
            return force(State::Master, &|s| s == State::Backup);
        }
        if self.state == State::Master && active().any(|(_, m)| m.state == State::Backup) {
            self.state = State::Backup;
            return force(State::Backup, &|s| s == State::Master);
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use State::{Backup, Fault, Master, Stopped};

    fn m(state: State) -> MemberStatus {
        MemberStatus {
            state,
            own_fault: false,
        }
    }

    fn targets(cmds: &[SyncCommand]) -> Vec<(usize, State)> {
        cmds.iter().map(|c| (c.member, c.target)).collect()
    }

    #[test]
    fn one_master_pulls_the_others_up() {
        // keepalived vrrp_sync_master: all members go MASTER together.
        let mut g = SyncGroup::new("G");
        assert_eq!(
            targets(&g.reconcile(&[m(Master), m(Backup), m(Backup)])),
            vec![(1, Master), (2, Master)]
        );
        assert_eq!(g.state(), Master);
        assert!(g.reconcile(&[m(Master), m(Master), m(Master)]).is_empty());
    }

    #[test]
    fn one_backup_pulls_the_others_down() {
        // keepalived vrrp_sync_backup.
        let mut g = SyncGroup::new("G");
        g.reconcile(&[m(Master), m(Backup)]);
        assert_eq!(
            targets(&g.reconcile(&[m(Master), m(Backup)])),
            vec![(0, Backup)]
        );
        assert_eq!(g.state(), Backup);
    }

    #[test]
    fn fault_wins_and_is_released_only_when_all_healthy() {
        // keepalived vrrp_sync_fault: one member in FAULT forces the group to FAULT.
        let mut g = SyncGroup::new("G");
        g.reconcile(&[m(Master), m(Master)]);
        let faulty = MemberStatus {
            state: Fault,
            own_fault: true,
        };
        assert_eq!(
            targets(&g.reconcile(&[faulty, m(Master)])),
            vec![(1, Fault)]
        );
        assert_eq!(g.state(), Fault);
        assert!(g.reconcile(&[faulty, m(Fault)]).is_empty());
        // The faulty member recovered by itself (now Backup); the held one is released.
        assert_eq!(
            targets(&g.reconcile(&[m(Backup), m(Fault)])),
            vec![(1, Backup)]
        );
        assert_eq!(g.state(), Backup);
        assert!(g.reconcile(&[m(Backup), m(Backup)]).is_empty());
    }

    #[test]
    fn stopped_members_are_ignored() {
        let mut g = SyncGroup::new("G");
        assert_eq!(
            targets(&g.reconcile(&[m(Stopped), m(Master), m(Backup)])),
            vec![(2, Master)]
        );
    }
}
