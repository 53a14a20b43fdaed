//! Active health-check bookkeeping: HAProxy-style `rise`/`fall`.

/// A change of health caused by one probe result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthChange {
    /// `rise` consecutive successes while unhealthy.
    BecameHealthy,
    /// `fall` consecutive failures while healthy.
    BecameUnhealthy,
}

/// Health of one peer under active checks.
///
/// Semantics follow HAProxy: a healthy peer turns unhealthy after `fall` consecutive failed
/// probes, an unhealthy one healthy after `rise` consecutive successes; any opposite result
/// restarts the streak. Like HAProxy's default, a peer starts healthy (so a restart does not
/// take every backend out until the first probes complete); use
/// [`ActiveCheckState::starting_unhealthy`] for the opposite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveCheckState {
    rise: u32,
    fall: u32,
    healthy: bool,
    /// Consecutive results that contradict the current state.
    streak: u32,
}

impl ActiveCheckState {
    /// Start healthy. `rise` and `fall` below 1 are treated as 1.
    pub fn new(rise: u32, fall: u32) -> Self {
        Self {
            rise: rise.max(1),
            fall: fall.max(1),
            healthy: true,
            streak: 0,
        }
    }

    /// Start unhealthy: the peer needs `rise` successes before it receives traffic.
    pub fn starting_unhealthy(rise: u32, fall: u32) -> Self {
        Self {
            healthy: false,
            ..Self::new(rise, fall)
        }
    }

    /// Feed one probe result; returns the transition it caused, if any.
    pub fn record(&mut self, success: bool) -> Option<HealthChange> {
        if success == self.healthy {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if self.healthy { self.fall } else { self.rise };
        if self.streak < needed {
            return None;
        }
        self.streak = 0;
        self.healthy = success;
        Some(if success {
            HealthChange::BecameHealthy
        } else {
            HealthChange::BecameUnhealthy
        })
    }

    /// Current health.
    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// Consecutive results against the current state so far.
    pub fn streak(&self) -> u32 {
        self.streak
    }
}
