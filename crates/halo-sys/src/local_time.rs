//! The local time zone's offset from UTC, from the C library (TZ, /etc/localtime), for the
//! `$time_local` of access logs.

extern "C" {
    /// POSIX `tzset(3)` (not bound by the libc crate): reads TZ or /etc/localtime.
    fn tzset();
}

/// Seconds east of UTC of the local time zone at `unix_seconds` (daylight saving included), or
/// None where the C library cannot say.
pub fn local_utc_offset(unix_seconds: i64) -> Option<i32> {
    let t = libc::time_t::try_from(unix_seconds).ok()?;
    // SAFETY: tzset only (re)reads the time zone settings into libc's globals; localtime_r is the
    // reentrant form that writes only into `tm`, which is a plain C struct we own and zeroed.
    unsafe {
        tzset();
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return None;
        }
        i32::try_from(tm.tm_gmtoff).ok()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_and_fixed_zones_give_their_offsets() {
        // The process environment is shared by the test threads: only this test touches TZ.
        std::env::set_var("TZ", "UTC0");
        assert_eq!(super::local_utc_offset(971_186_136), Some(0));
        // POSIX TZ strings: "CET-1CEST,M3.5.0,M10.5.0/3" is UTC+1, UTC+2 in summer.
        std::env::set_var("TZ", "CET-1CEST,M3.5.0,M10.5.0/3");
        assert_eq!(super::local_utc_offset(1_768_000_000), Some(3600)); // January 2026
        assert_eq!(super::local_utc_offset(1_783_000_000), Some(7200)); // July 2026
        std::env::remove_var("TZ");
    }
}
