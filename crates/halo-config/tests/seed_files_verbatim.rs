//! examples/seed/ holds the seed document's files byte for byte (lines 112-141, 147-151,
//! 157-186, 231-269 and 275-285 of 000_4c457900553523ee.txt; keepalived-backup.conf with the
//! document's two changes). Editors that strip trailing spaces or re-encode would silently
//! change them; this test notices.

use std::path::Path;

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[test]
fn seed_files_are_unchanged() {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/seed");
    let expected: [(&str, usize, u64); 6] = [
        ("nginx.conf", 962, 0xf50d_3beb_488f_ac7d),
        ("conf.d/myhost.conf", 152, 0x92ca_6d78_f2b6_005c),
        ("conf.d/xuad.conf", 883, 0xb4a1_26df_b841_bf71),
        ("keepalived.conf", 874, 0xb910_fe83_43c5_11e7),
        ("keepalived-backup.conf", 873, 0xc8ad_d62f_004f_2043),
        ("nginx_pid.sh", 243, 0x9a64_bf1b_7b02_014b),
    ];
    for (name, len, hash) in expected {
        let bytes = std::fs::read(seed.join(name)).unwrap_or_default();
        assert_eq!((bytes.len(), fnv1a(&bytes)), (len, hash), "{name} changed");
    }
}

#[test]
fn backup_differs_from_master_in_state_and_priority_lines_only() {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/seed");
    let master = std::fs::read_to_string(seed.join("keepalived.conf")).unwrap_or_default();
    let backup = std::fs::read_to_string(seed.join("keepalived-backup.conf")).unwrap_or_default();
    let changed: Vec<(&str, &str)> = master
        .lines()
        .zip(backup.lines())
        .filter(|(m, b)| m != b)
        .collect();
    assert_eq!(
        changed,
        vec![
            (
                "    state MASTER     #备份服务器上将MASTER改为BACKUP",
                "    state BACKUP     #备份服务器上将MASTER改为BACKUP"
            ),
            (
                "    priority 100       #备份服务上将100改为小于100，可配置成90",
                "    priority 90       #备份服务上将100改为小于100，可配置成90"
            ),
        ]
    );
}
