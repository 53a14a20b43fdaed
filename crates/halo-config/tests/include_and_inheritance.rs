//! Relative include rules of both importers, nginx's http -> server -> location inheritance,
//! and the examples in docs/configuration.md.
#![allow(clippy::unwrap_used)]

use halo_config::http::{LocationAction, MatchKind};
use halo_config::{import_keepalived, import_nginx, load_native_str};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn keepalived_includes_are_relative_to_the_including_file() {
    // keepalived.conf(5): "relative paths included from a file are relative to the directory
    // of the including file itself".
    let (config, warnings) = import_keepalived(&fixtures().join("ka_include/main.conf")).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let vi = &config.vrrp.instances[0];
    assert_eq!(vi.name, "VI_INC");
    assert_eq!(vi.track_script[0].weight, Some(-20));
    assert_eq!(config.vrrp.scripts[0].name, "chk");
}

#[test]
fn nginx_includes_are_relative_to_the_conf_prefix_and_levels_inherit() {
    let dir = fixtures().join("ngx_include");
    let (config, warnings) =
        import_nginx(&dir.join("nginx.conf"), Path::new("/srv/prefix")).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let http = config.http.unwrap();
    // nginx: worker_connections x workers (auto = CPUs here).
    assert!(http.worker_connections >= 1024);
    let server = &http.servers[0];
    assert!(server.listen[0].default_server);
    // http-level error_page and limit_conn are inherited by a server that sets none.
    assert_eq!(server.error_page[0].codes, vec![502]);
    assert_eq!(server.limit_conn[0].limit, 10);
    // `root html` default and `root static` resolve against the prefix (-p).
    assert_eq!(server.root, "/srv/prefix/html");

    let root = &server.locations[0];
    assert_eq!(
        root.proxy_set_header.get("X-Level").map(String::as_str),
        Some("http")
    );
    assert_eq!(root.limit_conn, None);

    let api = &server.locations[1];
    // A level that sets proxy_set_header replaces the inherited set entirely (nginx merge).
    assert_eq!(api.proxy_set_header.len(), 1, "{:?}", api.proxy_set_header);
    assert_eq!(api.proxy_set_header["X-From"], "snippets");
    assert_eq!(
        api.action,
        LocationAction::Proxy {
            pass: "http://198.18.0.30:9000/v1/".into()
        }
    );
    assert_eq!(api.limit_conn.as_ref().unwrap()[0].limit, 2);

    let images = &server.locations[2];
    assert_eq!(images.match_kind, MatchKind::RegexCaseInsensitive);
    assert_eq!(images.path, "\\.(png|jpg)$");
    match &images.action {
        LocationAction::Static { root, .. } => {
            assert_eq!(root.as_deref(), Some("/srv/prefix/static"))
        }
        other => panic!("{other:?}"),
    }
    let up = &http.upstreams[0];
    assert_eq!(up.servers[0].weight, 2);
    assert!(up.servers[1].backup);
}

#[test]
fn toml_examples_in_the_configuration_reference_load() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md"),
    )
    .unwrap();
    let mut blocks = 0;
    for (i, block) in doc.split("```toml").skip(1).enumerate() {
        let text = block.split("```").next().unwrap();
        if let Err(errors) = load_native_str(text, Path::new(&format!("configuration.md#toml{i}")))
        {
            panic!(
                "example {i} does not load:\n{}",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        blocks += 1;
    }
    assert!(blocks >= 1);
}

#[test]
fn proxy_pass_to_a_name_that_is_no_upstream_is_a_host_as_in_nginx() {
    // `localhost` resolves from /etc/hosts, without the network.
    let dir = std::env::temp_dir().join(format!("config-pp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        "http {\n server {\n  location / { proxy_pass http://localhost; }\n  location /b { proxy_pass http://127.0.0.1:8081/x; }\n }\n}\n",
    )
    .unwrap();
    let result = import_nginx(&conf, &dir);
    std::fs::remove_dir_all(&dir).unwrap();
    let (config, _) = result.unwrap();
    let server = &config.http.unwrap().servers[0];
    assert_eq!(
        server.locations[0].action,
        LocationAction::Proxy {
            pass: "http://localhost:80".into()
        }
    );
    assert_eq!(
        server.locations[1].action,
        LocationAction::Proxy {
            pass: "http://127.0.0.1:8081/x".into()
        }
    );
}
