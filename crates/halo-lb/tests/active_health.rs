//! Rise/fall bookkeeping of active checks (HAProxy semantics).
#![allow(clippy::unwrap_used)]

use halo_lb::health::{ActiveCheckState, HealthChange};

#[test]
fn starts_healthy_and_falls_after_fall_consecutive_failures() {
    let mut s = ActiveCheckState::new(2, 3);
    assert!(s.is_healthy());
    assert_eq!(s.record(false), None);
    assert_eq!(s.record(false), None);
    assert_eq!(
        s.record(true),
        None,
        "a success restarts the failure streak"
    );
    assert_eq!(s.record(false), None);
    assert_eq!(s.record(false), None);
    assert_eq!(s.record(false), Some(HealthChange::BecameUnhealthy));
    assert!(!s.is_healthy());
}

#[test]
fn rises_after_rise_consecutive_successes() {
    let mut s = ActiveCheckState::starting_unhealthy(2, 3);
    assert!(!s.is_healthy());
    assert_eq!(s.record(true), None);
    assert_eq!(
        s.record(false),
        None,
        "a failure restarts the success streak"
    );
    assert_eq!(s.record(true), None);
    assert_eq!(s.record(true), Some(HealthChange::BecameHealthy));
    assert_eq!(s.record(true), None);
}

#[test]
fn zero_rise_or_fall_behave_as_one() {
    let mut s = ActiveCheckState::new(0, 0);
    assert_eq!(s.record(false), Some(HealthChange::BecameUnhealthy));
    assert_eq!(s.record(true), Some(HealthChange::BecameHealthy));
}
