//! The keepalived importer never panics on any bytes (they are written to a scratch file first).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("halo-fuzz-keepalived-{}.conf", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        let _ = halo_config::import_keepalived(&path);
    }
});
