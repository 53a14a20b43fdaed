//! Health trackers that adjust an instance's priority or put it in FAULT, with keepalived's rules
//! (`vrrp_script` / `track_script`: keepalived/vrrp/vrrp_scheduler.c `vrrp_script_child_thread`,
//! vrrp_track.c `process_script_update_priority`). Pure: the driver runs the checks and records results.

/// Up/down state of a tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackerStatus {
    /// No result yet (keepalived SCRIPT_INIT_STATE_INIT): one success makes it up, one failure down.
    Init,
    /// Check passing.
    Up,
    /// Check failing.
    Down,
}

/// A keepalived-style tracked check (`vrrp_script` + its `track_script` reference).
///
/// * `rise` consecutive successes bring a down check up, `fall` consecutive failures bring an up check
///   down; the very first result decides at once (keepalived starts the counter at `rise - 1`), unless
///   `init_fail`, which starts it down.
/// * `weight > 0` adds `weight` while up; `weight < 0` adds `weight` (subtracts) while down;
///   `reverse` flips the sign of the adjustment.
/// * `weight == 0`: no priority change; the instance is in FAULT while the check is down (or up, with
///   `reverse`), and also while it has no result yet (keepalived `num_script_init` holds the instance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptTracker {
    /// Priority weight, keepalived range -253..=253.
    weight: i32,
    /// Successes needed to go up (at least 1).
    rise: u32,
    /// Failures needed to go down (at least 1).
    fall: u32,
    /// keepalived `weight N reverse`.
    reverse: bool,
    /// keepalived `result`: 0..rise is down, rise..=rise+fall-1 is up.
    result: u32,
    status: TrackerStatus,
}

impl ScriptTracker {
    /// A tracker with no result yet; `init_fail` (keepalived `init_fail`) starts it down instead.
    /// `rise` and `fall` below 1 are treated as 1.
    pub fn new(weight: i32, rise: u32, fall: u32, reverse: bool, init_fail: bool) -> Self {
        let rise = rise.max(1);
        let fall = fall.max(1);
        ScriptTracker {
            weight,
            rise,
            fall,
            reverse,
            result: if init_fail { 0 } else { rise - 1 },
            status: if init_fail {
                TrackerStatus::Down
            } else {
                TrackerStatus::Init
            },
        }
    }

    /// Priority weight.
    pub fn weight(&self) -> i32 {
        self.weight
    }

    /// Consecutive successes needed to go up.
    pub fn rise(&self) -> u32 {
        self.rise
    }

    /// Consecutive failures needed to go down.
    pub fn fall(&self) -> u32 {
        self.fall
    }

    /// keepalived `reverse`.
    pub fn reverse(&self) -> bool {
        self.reverse
    }

    /// Records one check result; returns true when the status changed (keepalived logs
    /// "VRRP_Script(x) succeeded/failed" exactly then).
    pub fn record(&mut self, success: bool) -> bool {
        let before = self.status;
        let top = self.rise.saturating_add(self.fall - 1);
        if success {
            if self.result + 1 < self.rise {
                self.result += 1;
            } else {
                self.result = top;
                self.status = TrackerStatus::Up;
            }
        } else if self.result > self.rise {
            self.result -= 1;
        } else if self.result == self.rise || self.status == TrackerStatus::Init {
            self.result = 0;
            self.status = TrackerStatus::Down;
        } else {
            self.result = 0;
        }
        self.status != before
    }

    /// Current status.
    pub fn status(&self) -> TrackerStatus {
        self.status
    }

    /// True while up.
    pub fn is_up(&self) -> bool {
        self.status == TrackerStatus::Up
    }

    /// This tracker's contribution to the priority (0 while it has no result, and for weight 0).
    pub fn priority_delta(&self) -> i32 {
        contribution(self.status, self.weight, self.reverse).0
    }

    /// True when this tracker holds the instance in FAULT (weight 0 only).
    pub fn is_fault(&self) -> bool {
        contribution(self.status, self.weight, self.reverse).1
    }
}

/// What one tracked check in `status` adds to an instance, under keepalived's rules: the priority
/// adjustment, and whether it puts the instance in FAULT. A positive weight counts while the check is
/// up, a negative one while it is down; weight 0 means FAULT while down (and before the first result);
/// `reverse` turns the adjustment around (keepalived.conf(5), `track_script ... weight N reverse`).
pub fn contribution(status: TrackerStatus, weight: i32, reverse: bool) -> (i32, bool) {
    let sign = if reverse { -1 } else { 1 };
    let delta = match status {
        TrackerStatus::Init => 0,
        TrackerStatus::Up => weight.max(0).saturating_mul(sign),
        TrackerStatus::Down => weight.min(0).saturating_mul(sign),
    };
    let fault = weight == 0
        && match status {
            TrackerStatus::Init => true,
            TrackerStatus::Up => reverse,
            TrackerStatus::Down => !reverse,
        };
    (delta, fault)
}

/// Sum of the trackers' priority deltas and whether any holds the instance in FAULT; feed the result to
/// [`crate::Instance::set_tracking`].
pub fn combine<'a>(trackers: impl IntoIterator<Item = &'a ScriptTracker>) -> (i32, bool) {
    trackers
        .into_iter()
        .fold((0i32, false), |(delta, fault), t| {
            (
                delta.saturating_add(t.priority_delta()),
                fault || t.is_fault(),
            )
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn first_result_decides_then_rise_and_fall_apply() {
        // keepalived vrrp_scheduler.c: init result = rise - 1, "one success is enough".
        let mut t = ScriptTracker::new(3, 2, 3, false, false);
        assert_eq!(t.priority_delta(), 0);
        assert!(t.record(true));
        assert!(t.is_up());
        assert_eq!(t.priority_delta(), 3);
        // fall = 3: two failures keep it up, the third brings it down.
        assert!(!t.record(false));
        assert!(!t.record(false));
        assert!(t.record(false));
        assert_eq!(t.priority_delta(), 0);
        // rise = 2: one success is not enough, a failure resets the count.
        assert!(!t.record(true));
        assert!(!t.record(false));
        assert!(!t.record(true));
        assert!(t.record(true));
        assert!(t.is_up());
    }

    #[test]
    fn init_failure_goes_down_at_once() {
        let mut t = ScriptTracker::new(-10, 2, 2, false, false);
        assert!(t.record(false));
        assert_eq!(t.priority_delta(), -10);
    }

    #[test]
    fn init_fail_starts_down_and_needs_rise() {
        // keepalived `init_fail`: result 0, so `rise` successes are needed.
        let mut t = ScriptTracker::new(5, 2, 1, false, true);
        assert_eq!(t.status(), TrackerStatus::Down);
        assert!(!t.record(true));
        assert!(t.record(true));
        assert_eq!(t.priority_delta(), 5);
    }

    #[test]
    fn weights_and_reverse() {
        // keepalived.conf(5): weight > 0 adds when OK, weight < 0 subtracts when KO, reverse flips.
        let mut up = ScriptTracker::new(3, 1, 1, false, false);
        up.record(true);
        let mut down_neg = ScriptTracker::new(-20, 1, 1, false, false);
        down_neg.record(false);
        let mut up_neg = ScriptTracker::new(-20, 1, 1, false, false);
        up_neg.record(true);
        let mut up_rev = ScriptTracker::new(3, 1, 1, true, false);
        up_rev.record(true);
        assert_eq!(up.priority_delta(), 3);
        assert_eq!(down_neg.priority_delta(), -20);
        assert_eq!(up_neg.priority_delta(), 0);
        assert_eq!(up_rev.priority_delta(), -3);
        assert_eq!(combine([&up, &down_neg, &up_neg, &up_rev]), (-20, false));
    }

    #[test]
    fn weight_zero_is_fault_while_down_or_pending() {
        let mut t = ScriptTracker::new(0, 1, 2, false, false);
        assert!(
            t.is_fault(),
            "no result yet holds the instance (keepalived num_script_init)"
        );
        t.record(true);
        assert!(!t.is_fault());
        t.record(false);
        assert!(!t.is_fault(), "fall = 2");
        t.record(false);
        assert!(t.is_fault());
        assert_eq!(combine([&t]), (0, true));
        let mut rev = ScriptTracker::new(0, 1, 1, true, false);
        rev.record(true);
        assert!(
            rev.is_fault(),
            "weight 0 reverse: down when the check is up"
        );
    }
}
