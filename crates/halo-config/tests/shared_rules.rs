//! Rules the importers and validators apply in more than one place (the keepalived and nginx
//! importers, `server` and `location` blocks, both kinds of limit zone, both kinds of tracked
//! object): each place applies them, with the same message and position.
#![allow(clippy::unwrap_used)]

use halo_config::{import_keepalived, import_nginx_with, load_native_str, NginxImportOptions};
use std::path::{Path, PathBuf};

/// A configuration file written for one test and removed when dropped.
struct TempConf(PathBuf);

impl TempConf {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("halo-config-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempConf(path)
    }
}

impl Drop for TempConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn server_and_location_warn_alike_about_directives_halo_ignores_there() {
    let conf = TempConf::new(
        "ignored.conf",
        "events {}
http {
    server {
        listen 198.18.0.1:8080;
        charset utf-8;
        client_body_timeout 10s;
        location / {
            source_charset koi8-r;
            send_timeout 5s;
        }
    }
}
",
    );
    let options = NginxImportOptions {
        prefix: PathBuf::from("/srv/prefix"),
        ..NginxImportOptions::default()
    };
    let (_, warnings) = import_nginx_with(&conf.0, &options).unwrap();
    let got: Vec<(u32, &str)> = warnings
        .iter()
        .map(|w| (w.line, w.message.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (5, "charset: halo does not convert or label charsets; ignored"),
            (
                6,
                "client_body_timeout: halo applies this per http block only; set it in http { }; ignored here"
            ),
            (
                8,
                "source_charset: halo does not convert or label charsets; ignored"
            ),
            (
                9,
                "send_timeout: halo applies this per http block only; set it in http { }; ignored here"
            ),
        ]
    );
}

#[test]
fn both_kinds_of_limit_zone_need_a_unique_name() {
    let text = r#"
[http]
limit_conn_zones = [
  { name = "a", key = "$uri" },
  { name = "a", key = "$remote_addr" },
]
limit_req_zones = [
  { name = "r", key = "$binary_remote_addr", rate = "1r/s" },
  { name = "r", key = "$host", rate = "1r/s" },
]
"#;
    let errors = load_native_str(text, Path::new("z.toml")).unwrap_err();
    // Keys are any text with variables (nginx's complex values): $uri and $host are fine.
    // Positions show each message names the right list, entry and field.
    let got: Vec<(u32, u32, &str)> = errors
        .iter()
        .filter(|d| d.message != "no server blocks")
        .map(|d| (d.line, d.col, d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (5, 12, "duplicate zone \"a\""),
            (9, 12, "duplicate zone \"r\""),
        ],
        "{errors:#?}"
    );
}

#[test]
fn tracked_scripts_and_files_must_exist_and_weigh_within_their_bounds() {
    // Scripts: -253..=253; track files: -254..=254 (keepalived.conf(5) track_script, track_file).
    let conf = TempConf::new(
        "tracks.conf",
        "vrrp_script chk {
    script \"/bin/true\"
}
vrrp_track_file tf {
    file \"/tmp/halo-config-no-such-file\"
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        198.18.0.10
    }
    track_script {
        chk weight 254
        no_script
    }
    track_file {
        tf weight 254
        no_file
    }
}
",
    );
    let errors = import_keepalived(&conf.0).unwrap_err();
    let got: Vec<(u32, u32, &str, Option<&str>)> = errors
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.line, d.col, d.message.as_str(), d.expected.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (14, 9, "weight 254 out of range", Some("-253..=253")),
            (
                15,
                9,
                "unknown track_script \"no_script\"",
                Some("one of chk")
            ),
            (19, 9, "unknown track_file \"no_file\"", Some("one of tf")),
        ],
        "{errors:#?}"
    );
}

#[test]
fn named_blocks_need_a_name() {
    let conf = TempConf::new(
        "unnamed.conf",
        "vrrp_script {\n    script \"/bin/true\"\n}\n",
    );
    let errors = import_keepalived(&conf.0).unwrap_err();
    assert_eq!(
        (errors[0].line, errors[0].message.as_str()),
        (1, "vrrp_script needs a name"),
        "{errors:#?}"
    );
}
