//! The native TOML loader never panics on any text.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = halo_config::load_native_str(text, std::path::Path::new("fuzz.toml"));
    }
});
