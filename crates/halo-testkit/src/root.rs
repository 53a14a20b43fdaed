//! Deciding whether a namespace test can run here.

/// Returns `true` when the process runs as root and may create network namespaces.
///
/// When it is not root: if the environment has `HALO_REQUIRE_NETNS=1` (CI), this panics with
/// "netns test needs root", so that a skip can never pass unnoticed; otherwise it prints why `test_name` is
/// skipped and returns `false`.
pub fn require_root(test_name: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("HALO_REQUIRE_NETNS").is_ok_and(|v| v == "1") {
        panic!("netns test needs root: {test_name} (HALO_REQUIRE_NETNS=1 forbids skipping)");
    }
    eprintln!("skipping {test_name}: netns test needs root (set HALO_REQUIRE_NETNS=1 to make this a failure)");
    false
}
