//! The seed's files (examples/seed/, extracted verbatim from the seed document) import to the
//! configuration the document describes (seed README sections 3 and 4), and survive
//! import -> TOML -> load unchanged.
#![allow(clippy::unwrap_used)]

use halo_config::http::{
    BalanceMethod, LocationAction, MatchKind, NextUpstreamWhen, ProxyRedirect, RedirectMode,
};
use halo_config::vrrp::{AuthType, InitialState, VrrpVersion};
use halo_config::{
    import_keepalived, import_nginx_with, load_native, load_native_str, to_toml, Config,
    Diagnostic, NginxImportOptions, Severity,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn seed() -> PathBuf {
    examples().join("seed")
}

/// The container layout of the seed: /etc/nginx is the host's /data/docker/nginx/conf, which
/// is examples/seed here.
fn nginx_options() -> NginxImportOptions {
    NginxImportOptions {
        prefix: PathBuf::from("/etc/nginx"),
        conf_dir: None,
        path_map: vec![(PathBuf::from("/etc/nginx"), seed())],
        resolve_names: false,
    }
}

fn ok(result: Result<(Config, Vec<Diagnostic>), Vec<Diagnostic>>) -> (Config, Vec<Diagnostic>) {
    match result {
        Ok(r) => r,
        Err(errors) => panic!(
            "import failed:\n{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

fn warning_on(warnings: &[Diagnostic], line: u32, text: &str) -> bool {
    warnings
        .iter()
        .any(|w| w.severity == Severity::Warning && w.line == line && w.message.contains(text))
}

#[test]
fn seed_keepalived_master_imports_with_keepalived_semantics() {
    let (config, warnings) = ok(import_keepalived(&seed().join("keepalived.conf")));
    let g = &config.vrrp.global;
    assert_eq!(g.router_id.as_deref(), Some("LVS_DEVEL"));
    assert_eq!(g.notification_email, vec!["xuad@xuad.com"]);
    assert_eq!(g.notification_email_from.as_deref(), Some("root@xuad.com"));
    let smtp = g.smtp_server.as_ref().unwrap();
    assert_eq!((smtp.host.as_str(), smtp.port), ("mail.xuad.com", 25));
    assert_eq!(g.smtp_connect_timeout, Duration::from_secs(30));
    assert!(g.skip_check_adv_addr);
    assert!(g.strict);
    assert_eq!(g.garp_interval, Duration::ZERO);
    assert_eq!(g.gna_interval, Duration::ZERO);
    // keepalived's default, not halo's native one.
    assert_eq!(g.vrrp_version, VrrpVersion::V2);

    assert_eq!(config.vrrp.scripts.len(), 1);
    let script = &config.vrrp.scripts[0];
    assert_eq!(script.name, "chk_nginx");
    assert_eq!(script.script, "/etc/keepalived/nginx_pid.sh");
    assert_eq!(script.interval, Duration::from_secs(2));
    assert_eq!(script.weight, 3);
    assert_eq!((script.rise, script.fall), (1, 1));

    assert_eq!(config.vrrp.instances.len(), 1);
    let vi = &config.vrrp.instances[0];
    assert_eq!(vi.name, "VI_1");
    assert_eq!(vi.state, InitialState::Master);
    assert_eq!(vi.interface, "ens32");
    assert_eq!(vi.vrid, 51);
    assert_eq!(vi.priority, 100);
    assert_eq!(vi.advert_interval, Duration::from_secs(1));
    assert_eq!(vi.effective_version(g), VrrpVersion::V2);
    let auth = vi.authentication.as_ref().unwrap();
    assert_eq!(
        (auth.auth_type, auth.password.as_str()),
        (AuthType::Pass, "1111")
    );
    assert_eq!(vi.virtual_ipaddress.len(), 1);
    assert_eq!(
        vi.virtual_ipaddress[0].addr,
        IpAddr::V4(Ipv4Addr::new(192, 168, 2, 242))
    );
    assert_eq!(vi.virtual_ipaddress[0].prefix_len, 32);
    assert_eq!(vi.track_script.len(), 1);
    assert_eq!(vi.track_script[0].name, "chk_nginx");
    assert_eq!(vi.track_script[0].weight, None);
    assert!(
        !vi.nopreempt,
        "the seed relies on preemption (README section 4)"
    );
    // vrrp_strict: RFC behaviour on lower-priority adverts, but the VIP stays reachable.
    assert!(vi.lower_prio_no_advert);
    assert!(vi.accept);
    assert_eq!(vi.garp_master_delay, Duration::from_secs(5));
    assert_eq!(vi.garp_master_repeat, 5);

    assert!(config.http.is_none());
    // Where halo departs from keepalived, it says so at the line.
    assert!(
        warning_on(&warnings, 12, "does not install the firewall rule"),
        "{warnings:#?}"
    );
    assert!(warning_on(&warnings, 13, "no delay"), "{warnings:#?}");
    assert!(warning_on(&warnings, 14, "no delay"), "{warnings:#?}");
    assert!(warning_on(&warnings, 8, "host name"), "{warnings:#?}");
    assert!(warning_on(&warnings, 29, "keeps it"), "{warnings:#?}");
    // Recipients and a server but no smtp_alert: keepalived would send nothing; halo alerts.
    assert!(vi.smtp_alert);
    assert!(
        warning_on(&warnings, 3, "keepalived would send no mail"),
        "{warnings:#?}"
    );
    for w in &warnings {
        assert!(w.file.ends_with("keepalived.conf"), "{w}");
    }
}

#[test]
fn seed_keepalived_backup_differs_only_in_state_and_priority() {
    let (master, _) = ok(import_keepalived(&seed().join("keepalived.conf")));
    let (backup, _) = ok(import_keepalived(&seed().join("keepalived-backup.conf")));
    let b = &backup.vrrp.instances[0];
    assert_eq!(b.state, InitialState::Backup);
    assert_eq!(b.priority, 90);
    let mut expected = master.clone();
    expected.vrrp.instances[0].state = InitialState::Backup;
    expected.vrrp.instances[0].priority = 90;
    assert_eq!(backup, expected);
    let d = halo_config::diff(&master, &backup);
    assert_eq!(d.vrrp_changed, vec!["VI_1"]);
    assert!(!d.http_changed);
}

#[test]
fn seed_nginx_imports_with_nginx_semantics() {
    let (config, warnings) = ok(import_nginx_with(
        &seed().join("nginx.conf"),
        &nginx_options(),
    ));
    let http = config.http.as_ref().unwrap();
    assert_eq!(http.worker_threads, Some(4));
    // nginx's worker_connections is per worker: 4 x 65535.
    assert_eq!(http.worker_connections, 4 * 65535);
    assert!(http.sendfile);
    assert_eq!(http.keepalive_timeout, Duration::from_secs(120));
    assert_eq!(http.default_type, "application/octet-stream");
    assert_eq!(
        http.log_formats["main"],
        "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\" \"$http_x_forwarded_for\""
    );
    assert_eq!(http.access_log.len(), 1);
    assert_eq!(http.access_log[0].path, "/var/log/nginx/access.log");
    assert_eq!(http.access_log[0].format, "main");
    assert!(
        http.mime_types.is_empty(),
        "mime.types is not in the seed: built-in table"
    );
    assert_eq!(http.limit_conn_zones.len(), 1);
    assert_eq!(http.limit_conn_zones[0].name, "perip");
    assert_eq!(http.limit_conn_zones[0].key, "$binary_remote_addr");
    assert_eq!(http.limit_conn_zones[0].size, 10 * 1024 * 1024);

    assert_eq!(http.upstreams.len(), 1);
    let up = &http.upstreams[0];
    assert_eq!(up.name, "xuad");
    assert_eq!(up.method, BalanceMethod::IpHash);
    let addresses: Vec<_> = up.servers.iter().map(|s| s.address.as_str()).collect();
    assert_eq!(addresses, vec!["192.168.2.226:80", "192.168.2.227:80"]);
    for s in &up.servers {
        assert_eq!(
            (s.max_fails, s.fail_timeout, s.weight),
            (1, Duration::from_secs(60), 1)
        );
        assert!(!s.backup && !s.down);
    }

    assert_eq!(http.servers.len(), 1);
    let server = &http.servers[0];
    assert_eq!(server.listen.len(), 1);
    assert_eq!(server.listen[0].addr, SocketAddr::from(([0, 0, 0, 0], 80)));
    assert_eq!(server.server_name, vec!["localhost"]);
    assert_eq!(
        server.access_log,
        Some(vec![]),
        "access_log off at server level"
    );
    assert_eq!(server.limit_conn.len(), 1);
    assert_eq!(
        (
            server.limit_conn[0].zone.as_str(),
            server.limit_conn[0].limit
        ),
        ("perip", 200)
    );
    let pages: Vec<_> = server
        .error_page
        .iter()
        .map(|p| (p.codes.clone(), p.uri.as_str()))
        .collect();
    assert_eq!(
        pages,
        vec![
            (vec![404], "/404.html"),
            (vec![500, 502, 503, 504], "/404.html")
        ]
    );
    // `root html` is relative to the prefix (/etc/nginx), mapped like every /etc/nginx path.
    assert_eq!(Path::new(&server.root), seed().join("html"));

    assert_eq!(server.locations.len(), 3);
    let root = &server.locations[0];
    assert_eq!(
        (root.match_kind, root.path.as_str()),
        (MatchKind::Prefix, "/")
    );
    assert_eq!(
        root.action,
        LocationAction::Proxy {
            pass: "http://xuad".into()
        }
    );
    assert_eq!(root.proxy_redirect, ProxyRedirect::Mode(RedirectMode::Off));
    assert_eq!(root.proxy_set_header.len(), 3);
    assert_eq!(root.proxy_set_header["Host"], "$host");
    assert_eq!(root.proxy_set_header["X-Real-IP"], "$remote_addr");
    assert_eq!(
        root.proxy_set_header["X-Forwarded-For"],
        "$proxy_add_x_forwarded_for"
    );
    assert_eq!(
        root.proxy_next_upstream,
        vec![NextUpstreamWhen::Error, NextUpstreamWhen::Timeout]
    );
    assert_eq!(root.limit_conn, None, "inherits the server's limit_conn");

    let status = &server.locations[1];
    assert_eq!(status.path, "/NginxStatus");
    assert_eq!(status.action, LocationAction::StubStatus);
    assert_eq!(status.access_log, Some(vec![]));
    let auth = status.auth_basic.as_ref().unwrap();
    assert_eq!(
        (auth.realm.as_str(), auth.user_file.as_ref()),
        ("NginxStatus", None)
    );

    let page = &server.locations[2];
    assert_eq!(
        (page.match_kind, page.path.as_str()),
        (MatchKind::Exact, "/404.html")
    );
    match &page.action {
        LocationAction::Static {
            root: Some(r),
            alias: None,
            ..
        } => {
            assert_eq!(Path::new(r), seed().join("html"));
        }
        other => panic!("expected a static location, got {other:?}"),
    }

    // nginx would not authenticate without a user file; halo does the same and says so.
    let auth_warning = warnings
        .iter()
        .find(|w| w.message.contains("auth_basic_user_file"))
        .unwrap();
    assert!(auth_warning.file.ends_with("conf.d/xuad.conf"));
    assert_eq!(auth_warning.line, 20);
    assert!(warnings
        .iter()
        .any(|w| w.message.contains("built-in MIME") && w.line == 13));
    assert!(config.vrrp.instances.is_empty());
}

#[test]
fn seed_round_trips_through_native_toml() {
    let (vrrp, _) = ok(import_keepalived(&seed().join("keepalived.conf")));
    let (http, _) = ok(import_nginx_with(
        &seed().join("nginx.conf"),
        &nginx_options(),
    ));
    let config = vrrp.merge_http(http);
    let text = to_toml(&config);
    let (again, warnings) = ok(load_native_str(&text, Path::new("roundtrip.toml")));
    assert_eq!(again, config, "TOML was:\n{text}");
    // The strict-mode notes come back from the native file too (they are about the model).
    assert!(warnings.iter().all(|w| w.severity == Severity::Warning));
    assert_eq!(to_toml(&again), text);
}

#[test]
fn examples_halo_toml_is_the_same_system_natively() {
    let (config, warnings) = ok(load_native(&examples().join("halo.toml")));
    assert!(warnings.is_empty(), "{warnings:#?}");
    let vi = &config.vrrp.instances[0];
    assert_eq!((vi.name.as_str(), vi.vrid, vi.priority), ("VI_1", 51, 100));
    assert_eq!(vi.effective_version(&config.vrrp.global), VrrpVersion::V3);
    assert_eq!(vi.advert_interval, Duration::from_millis(100));
    assert_eq!(
        vi.virtual_ipaddress[0].addr,
        IpAddr::V4(Ipv4Addr::new(192, 168, 2, 242))
    );
    assert_eq!(config.vrrp.scripts[0].weight, 3);
    let http = config.http.as_ref().unwrap();
    assert_eq!(http.upstreams[0].method, BalanceMethod::IpHash);
    assert_eq!(http.upstreams[0].servers.len(), 2);
    assert_eq!(http.servers[0].limit_conn[0].limit, 200);
    assert_eq!(
        http.servers[0].locations[1].action,
        LocationAction::StubStatus
    );
    assert_eq!(
        config.admin.status_listen,
        Some(SocketAddr::from(([127, 0, 0, 1], 8081)))
    );
    let (again, _) = ok(load_native_str(&to_toml(&config), Path::new("again.toml")));
    assert_eq!(again, config);
}

#[test]
fn native_defaults_differ_from_keepalived_defaults() {
    let text = "[[vrrp.instance]]\nname = \"VI\"\ninterface = \"eth0\"\nvrid = 7\nvirtual_ipaddress = [{ addr = \"198.18.0.10\", prefix_len = 32 }]\n";
    let (config, warnings) = ok(load_native_str(text, Path::new("n.toml")));
    assert!(warnings.is_empty(), "{warnings:#?}");
    let vi = &config.vrrp.instances[0];
    assert_eq!(vi.effective_version(&config.vrrp.global), VrrpVersion::V3);
    assert_eq!(vi.advert_interval, Duration::from_millis(100));
    assert!(vi.accept);
    assert_eq!(vi.priority, 100);
    assert_eq!(vi.state, InitialState::Backup);
}
