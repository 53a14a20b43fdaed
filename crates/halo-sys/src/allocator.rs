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

#[cfg(test)]
mod tests {
    #[test]
    fn glibc_accepts_the_trim_threshold() {
        assert!(super::retain_freed_memory());
    }
}
