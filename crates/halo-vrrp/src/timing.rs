//! Skew_Time and Master_Down_Interval (RFC 3768 §6.1, RFC 5798 §6.1), in keepalived's integer
//! microsecond arithmetic (`VRRP_TIMER_SKEW_CALC` in keepalived/include/vrrp.h) so that our timers land on
//! the same microsecond as keepalived's.

use std::time::Duration;

use crate::config::Version;

/// Number of missed adverts before a backup declares the master down (RFC 5798 §6.1; keepalived
/// `down_timer_adverts` default).
pub const DOWN_TIMER_ADVERTS: u32 = 3;

/// Skew_Time for `priority`.
///
/// v2 (RFC 3768 §6.1): `(256 - Priority) / 256` seconds, independent of the interval.
/// v3 (RFC 5798 §6.1): `((256 - Priority) * Master_Adver_Interval) / 256`, the interval in centiseconds;
/// computed as `(256 - p) * centis * 625 / 16` µs like keepalived.
pub fn skew_time(version: Version, priority: u8, master_adver_int: Duration) -> Duration {
    let weight = 256 - u64::from(priority);
    let micros = match version {
        Version::V2 => weight * 1_000_000 / 256,
        Version::V3 => {
            let centis = u64::try_from(master_adver_int.as_micros() / 10_000).unwrap_or(u64::MAX);
            weight.saturating_mul(centis).saturating_mul(625) / 16
        }
    };
    Duration::from_micros(micros)
}

/// Master_Down_Interval = `3 * Master_Adver_Interval + Skew_Time` (RFC 3768 §6.1, RFC 5798 §6.1).
pub fn master_down_interval(
    version: Version,
    priority: u8,
    master_adver_int: Duration,
) -> Duration {
    master_adver_int * DOWN_TIMER_ADVERTS + skew_time(version, priority, master_adver_int)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_prio_100_one_second_is_3_609375_s() {
        // RFC 3768 §6.1 with Priority 100, Advertisement_Interval 1 s; Cisco reports "3.609 sec".
        assert_eq!(
            skew_time(Version::V2, 100, Duration::from_secs(1)),
            Duration::from_micros(609_375)
        );
        assert_eq!(
            master_down_interval(Version::V2, 100, Duration::from_secs(1)),
            Duration::from_micros(3_609_375)
        );
        // v2 skew does not scale with the interval.
        assert_eq!(
            skew_time(Version::V2, 100, Duration::from_secs(5)),
            Duration::from_micros(609_375)
        );
    }

    #[test]
    fn v3_skew_scales_with_interval() {
        // RFC 5798 §6.1: ((256-150) * 50 cs) / 256 = 20.703125 cs.
        assert_eq!(
            skew_time(Version::V3, 150, Duration::from_millis(500)),
            Duration::from_micros(207_031)
        );
        // keepalived 2.2.7 fixture timeline: VRID 52 (prio 150, 0.5 s) became master at ~1.708 s.
        assert_eq!(
            master_down_interval(Version::V3, 150, Duration::from_millis(500)),
            Duration::from_micros(1_707_031)
        );
        assert_eq!(
            skew_time(Version::V3, 100, Duration::from_millis(100)),
            Duration::from_micros(60_937)
        );
    }

    #[test]
    fn owner_skew_is_smallest() {
        assert_eq!(
            skew_time(Version::V2, 255, Duration::from_secs(1)),
            Duration::from_micros(3_906)
        );
    }
}
