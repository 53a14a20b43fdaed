//! The command line: `check`, `import`, exit codes and diagnostics (no root needed).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn halo() -> Command {
    Command::new(env!("CARGO_BIN_EXE_halo"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn seed(name: &str) -> String {
    repo()
        .join("examples/seed")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

fn path_map() -> String {
    format!("/etc/nginx={}", seed(""))
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("halo-cli-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn check_accepts_the_seed_files_and_prints_warnings_with_positions() {
    let out = halo()
        .args([
            "check",
            "--nginx",
            &seed("nginx.conf"),
            "--path-map",
            &path_map(),
        ])
        .args(["--keepalived", &seed("keepalived.conf")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("keepalived.conf:12:") && stderr.contains("vrrp_strict"),
        "{stderr}"
    );
    assert!(stderr.contains("xuad.conf:20:"), "{stderr}");
}

#[test]
fn check_fails_with_file_line_and_every_error() {
    let d = scratch("bad");
    let f = d.join("keepalived.conf");
    std::fs::write(
        &f,
        "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 300\n    priority 0\n    \
         advert_int 0.5\n    virtual_ipaddress {\n        198.18.0.100\n    }\n}\n",
    )
    .unwrap();
    let out = halo()
        .args(["check", "--keepalived", f.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for line in [3, 4, 5] {
        assert!(
            stderr.contains(&format!("keepalived.conf:{line}:")),
            "no error at line {line}: {stderr}"
        );
    }
    assert!(
        stderr.contains("vrrp_version 3") || stderr.contains("VRRPv3"),
        "{stderr}"
    );
    // `-t` is accepted as in nginx.
    let out = halo()
        .args(["check", "-t", "--keepalived", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn import_writes_toml_that_checks_and_reimports_identically() {
    let d = scratch("import");
    let out = halo()
        .args([
            "import",
            "--nginx",
            &seed("nginx.conf"),
            "--path-map",
            &path_map(),
        ])
        .args(["--keepalived", &seed("keepalived.conf")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let toml = String::from_utf8(out.stdout).unwrap();
    assert!(
        toml.contains("[[vrrp.instance]]") && toml.contains("ip_hash"),
        "{toml}"
    );
    let f = d.join("halo.toml");
    std::fs::write(&f, &toml).unwrap();
    let out = halo()
        .args(["check", "--config", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again = halo()
        .args(["import", "--config", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(again.stdout).unwrap(), toml);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn no_configuration_is_an_error() {
    let out = halo().args(["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no configuration given"));
}
