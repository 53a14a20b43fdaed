//! nginx's `resolver`, `resolver_timeout` and `proxy_pass` with variables, imported with
//! nginx's inheritance.
#![allow(clippy::unwrap_used)]

use halo_config::http::LocationAction;
use halo_config::import_nginx;
use std::path::Path;
use std::time::Duration;

fn import(name: &str, text: &str) -> Result<(halo_config::Config, Vec<String>), Vec<String>> {
    let dir = std::env::temp_dir().join(format!(
        "halo-resolver-import-{}-{name}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, text).unwrap();
    let strings = |d: &[halo_config::Diagnostic]| d.iter().map(|d| d.to_string()).collect();
    import_nginx(&conf, Path::new("/srv"))
        .map(|(c, w)| (c, strings(&w)))
        .map_err(|e| strings(&e))
}

#[test]
fn resolver_and_timeout_inherit_separately_and_proxy_pass_keeps_its_variables() {
    let (config, warnings) = import(
        "inherit",
        "events {}\nhttp {\n\
         resolver 127.0.0.1 [::1]:5353 valid=10s ipv6=off;\n\
         resolver_timeout 5s;\n\
         upstream app { server 127.0.0.1:8080; }\n\
         server { listen 127.0.0.1:8000;\n\
           location /a/ { proxy_pass http://$http_x_to$request_uri; }\n\
           location /b/ { resolver 127.0.0.2:54; proxy_pass $scheme://app$uri; }\n\
           location /c/ { resolver_timeout 1s; proxy_pass http://app; }\n\
         }\n}\n",
    )
    .unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let http = config.http.unwrap();
    let locs = &http.servers[0].locations;
    let a = locs[0].resolver.as_ref().unwrap();
    assert_eq!(
        a.servers,
        vec![
            "127.0.0.1:53".parse().unwrap(),
            "[::1]:5353".parse().unwrap()
        ]
    );
    assert_eq!(
        (a.valid, a.ipv6, a.timeout),
        (Some(Duration::from_secs(10)), false, Duration::from_secs(5))
    );
    assert_eq!(
        locs[0].action,
        LocationAction::Proxy {
            pass: "http://$http_x_to$request_uri".into()
        }
    );
    // A level's own `resolver` replaces the servers, parameters and all; the timeout stays.
    let b = locs[1].resolver.as_ref().unwrap();
    assert_eq!(b.servers, vec!["127.0.0.2:54".parse().unwrap()]);
    assert_eq!(
        (b.valid, b.ipv6, b.timeout),
        (None, true, Duration::from_secs(5))
    );
    let c = locs[2].resolver.as_ref().unwrap();
    assert_eq!(c.timeout, Duration::from_secs(1));
    assert_eq!(c.servers.len(), 2);
}

#[test]
fn no_resolver_directive_means_none() {
    let (config, _) = import(
        "none",
        "events {}\nhttp { server { listen 127.0.0.1:8000; location / { proxy_pass http://$host:8080; } } }\n",
    )
    .unwrap();
    assert_eq!(config.http.unwrap().servers[0].locations[0].resolver, None);
}

#[test]
fn bad_resolver_lines_are_errors_at_their_line() {
    let errors = import(
        "bad",
        "events {}\nhttp {\n\
         resolver dns.example;\n\
         resolver 127.0.0.1 ipv6=maybe;\n\
         resolver valid=5s;\n\
         resolver_timeout soon;\n\
         }\n",
    )
    .unwrap_err();
    let text = errors.join("\n");
    assert!(
        text.contains(":3:") && text.contains("dns.example"),
        "{text}"
    );
    assert!(
        text.contains(":4:") && text.contains("ipv6=maybe"),
        "{text}"
    );
    assert!(
        text.contains(":5:") && text.contains("\"resolver\""),
        "{text}"
    );
    assert!(text.contains(":6:") && text.contains("soon"), "{text}");
}
