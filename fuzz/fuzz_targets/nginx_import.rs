//! The nginx importer never panics on any bytes (they are written to a scratch file first).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("halo-fuzz-nginx-{}.conf", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        // No name resolution: a fuzzer must not send DNS queries.
        let options = halo_config::NginxImportOptions {
            prefix: std::env::temp_dir(),
            resolve_names: false,
            ..Default::default()
        };
        let _ = halo_config::import_nginx_with(&path, &options);
    }
});
