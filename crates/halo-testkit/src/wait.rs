//! Bounded polling.

use std::time::{Duration, Instant};

/// Polls `condition` every `poll_every` until it returns `true` or `timeout` has passed.
///
/// Returns the time it took on success, and an error naming the timeout otherwise. The condition is always
/// evaluated at least once, and once more at the deadline, so a short timeout cannot miss a true condition.
pub fn wait_until(
    timeout: Duration,
    poll_every: Duration,
    mut condition: impl FnMut() -> bool,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let deadline = start + timeout;
    loop {
        if condition() {
            return Ok(start.elapsed());
        }
        let now = Instant::now();
        if now >= deadline {
            anyhow::bail!("condition not met within {timeout:?}");
        }
        std::thread::sleep(poll_every.min(deadline - now));
    }
}
