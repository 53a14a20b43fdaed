//! Tuning of the C allocator (glibc malloc) that Rust's global allocator uses.

/// Freed memory up to this much stays with the process instead of being returned to the kernel.
///
/// A proxy streams bodies through buffers of tens of KiB that are freed as soon as the client took
/// the bytes. With glibc's default (128 KiB, adjusted upwards only for mmap-sized blocks) the top
/// of the heap is handed back to the kernel after almost every large response and faulted in again,
/// page by page, on the next `recv`: in `bench/run` 5% of the proxy core went to page faults and
/// 64 KiB responses ran 25% slower.
pub const RETAINED_FREE_MEMORY: usize = 32 * 1024 * 1024;

/// Keeps up to [`RETAINED_FREE_MEMORY`] of freed heap memory for reuse (`mallopt(M_TRIM_THRESHOLD)`).
/// Returns false where the C library refused or has no such knob.
pub fn retain_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let bytes = libc::c_int::try_from(RETAINED_FREE_MEMORY).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only changes a tuning parameter of the allocator; it takes plain
        // integers and is safe to call at any time, from any thread.
        unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, bytes) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Returns the allocator's free memory to the kernel (`malloc_trim(0)`), including free pages in
/// the middle of the heap. Costs a walk over the heap: call it after a burst of frees, not
/// routinely. Returns whether any memory was released.
pub fn release_free_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes a plain integer and only gives free pages back to the kernel;
        // it locks the allocator's arenas itself and is safe to call from any thread.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn glibc_accepts_the_trim_threshold() {
        assert!(super::retain_freed_memory());
    }

    #[test]
    fn freed_memory_goes_back_to_the_kernel() {
        fn rss_kib() -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0)
        }
        super::retain_freed_memory();
        // Many small blocks, written to, then all but every 64th freed: the freed ones sit in
        // the middle of the heap where no automatic trim reaches.
        let mut blocks: Vec<Vec<u8>> = (0..40_000).map(|i| vec![i as u8; 1000]).collect();
        let mut kept = Vec::new();
        for (i, b) in blocks.drain(..).enumerate() {
            if i % 64 == 0 {
                kept.push(b);
            }
        }
        let before = rss_kib();
        assert!(super::release_free_memory());
        let after = rss_kib();
        assert!(after + 10_000 < before, "RSS {before} KiB -> {after} KiB");
        assert_eq!(kept.len(), 625);
    }
}
