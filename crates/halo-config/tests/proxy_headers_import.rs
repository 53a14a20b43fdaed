//! nginx's proxy_hide_header, proxy_pass_header, proxy_ignore_headers, proxy_method,
//! proxy_set_body, proxy_cookie_domain and proxy_cookie_path imported with nginx's
//! inheritance (each directive on its own; a level that writes a list directive replaces the
//! outer list), and the errors nginx gives for them.
#![allow(clippy::unwrap_used)]

use halo_config::import_nginx;
use halo_config::proxy_headers::{CookieRewrite, IgnoreHeader};
use std::path::Path;

fn import(tag: &str, text: &str) -> Result<halo_config::Config, String> {
    let dir = std::env::temp_dir().join(format!("halo-ph-import-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, text).unwrap();
    let result = import_nginx(&conf, Path::new("/srv"));
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|(c, _)| c).map_err(|e| {
        e.iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

const INHERIT: &str = r#"
events {}
http {
    proxy_hide_header X-Powered-By;
    proxy_hide_header X-Runtime;
    proxy_cookie_domain backend.local example.com;
    proxy_method POST;
    server {
        listen 127.0.0.1:8080;
        proxy_pass_header Server;
        proxy_ignore_headers X-Accel-Redirect vary;
        location / {
            proxy_pass http://127.0.0.1:9000;
        }
        location /own/ {
            proxy_hide_header X-Debug;
            proxy_cookie_domain off;
            proxy_cookie_path ~*^/app(.*)$ $1;
            proxy_set_body "a=$arg_a";
            proxy_pass http://127.0.0.1:9000;
            location /own/inner/ {
                proxy_pass_header Date;
                proxy_method $arg_m;
                proxy_pass http://127.0.0.1:9000;
            }
        }
    }
}
"#;

#[test]
fn each_directive_is_inherited_on_its_own_and_a_list_written_here_replaces_the_outer_one() {
    let config = import("inherit", INHERIT).unwrap();
    let server = &config.http.unwrap().servers[0];
    let root = &server.locations[0].proxy_headers;
    assert_eq!(root.hide_header, ["X-Powered-By", "X-Runtime"]);
    assert_eq!(root.pass_header, ["Server"]);
    assert_eq!(
        root.ignore_headers,
        [IgnoreHeader::XAccelRedirect, IgnoreHeader::Vary]
    );
    assert_eq!(root.method.as_deref(), Some("POST"));
    assert_eq!(root.set_body, None);
    assert_eq!(
        root.cookie_domain,
        [CookieRewrite {
            from: "backend.local".into(),
            to: "example.com".into()
        }]
    );
    let own = &server.locations[1].proxy_headers;
    assert_eq!(own.hide_header, ["X-Debug"]);
    assert_eq!(own.pass_header, ["Server"]);
    assert!(own.cookie_domain.is_empty(), "off");
    assert_eq!(own.cookie_path[0].from, "~*^/app(.*)$");
    assert_eq!(own.set_body.as_deref(), Some("a=$arg_a"));
    let inner = &server.locations[1].locations[0].proxy_headers;
    assert_eq!(inner.hide_header, ["X-Debug"]);
    assert_eq!(inner.pass_header, ["Date"]);
    assert_eq!(inner.method.as_deref(), Some("$arg_m"));
    assert_eq!(inner.set_body.as_deref(), Some("a=$arg_a"));
    assert_eq!(inner.cookie_path, own.cookie_path);
}

fn wrap(directives: &str) -> String {
    format!(
        "events {{}}\nhttp {{ server {{ listen 127.0.0.1:8080; location / {{ {directives} proxy_pass http://127.0.0.1:9000; }} }} }}\n"
    )
}

#[test]
fn errors_are_the_ones_nginx_gives() {
    let cases = [
        (
            "ignore",
            "proxy_ignore_headers X-Foo;",
            "invalid value \"X-Foo\"",
        ),
        (
            "method",
            "proxy_method GET; proxy_method PUT;",
            "\"proxy_method\" directive is duplicate",
        ),
        (
            "cookieoff",
            "proxy_cookie_domain off; proxy_cookie_domain a b;",
            "\"proxy_cookie_domain\" directive is duplicate",
        ),
        (
            "cookieargs",
            "proxy_cookie_path a;",
            "invalid number of arguments in \"proxy_cookie_path\"",
        ),
        (
            "hideargs",
            "proxy_hide_header;",
            "invalid number of arguments",
        ),
        (
            "flags",
            "proxy_cookie_flags one secure;",
            "proxy_cookie_flags",
        ),
    ];
    for (tag, directives, wanted) in cases {
        let errors = import(tag, &wrap(directives)).unwrap_err();
        assert!(errors.contains(wanted), "{directives}: {errors}");
    }
}

#[test]
fn the_model_round_trips_through_native_toml() {
    let config = import("toml", INHERIT).unwrap();
    let text = halo_config::to_toml(&config);
    assert!(
        text.contains("[http.servers.locations.proxy_headers]"),
        "{text}"
    );
    let (back, _) = halo_config::load_native_str(&text, Path::new("/srv")).unwrap();
    assert_eq!(back.http, config.http);
}
