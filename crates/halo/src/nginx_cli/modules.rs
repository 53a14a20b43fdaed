//! What `halo nginx -v` and `-V` print: the version line and, for `-V`, "configure arguments"
//! naming the nginx modules halo implements, in nginx's own `--with-*` / `--without-*` words.
//!
//! Tools decide what to expect from an nginx binary by reading this output (nginx's test
//! harness greps it to skip the tests of modules that are not built in), so it must say what halo
//! really does: one row per nginx module in [`MODULES`]. When halo gains a module, flip its row.

/// The nginx release whose configuration language halo follows (the importer's syntax).
pub const NGINX_COMPAT_VERSION: &str = "1.22.1";

/// Paths as Debian's nginx package is built with them (`nginx -V` on Debian 12).
pub const DEFAULT_PREFIX: &str = "/usr/share/nginx/";
pub const DEFAULT_CONF: &str = "/etc/nginx/nginx.conf";
pub const DEFAULT_PID: &str = "/run/nginx.pid";
/// Debian builds nginx with `--error-log-path=stderr`.
pub const DEFAULT_ERROR_LOG: &str = "stderr";

/// One nginx module: its `configure` name, whether nginx builds it unless told otherwise, and
/// whether halo implements it.
pub struct Module {
    /// The name in `--with-NAME` / `--without-NAME`, e.g. `http_stub_status_module`.
    pub name: &'static str,
    /// nginx builds it by default (so only its absence is spelled out, with `--without-`).
    pub nginx_default: bool,
    /// halo implements it (directives accepted and acted on, not just ignored).
    pub halo: bool,
}

const fn m(name: &'static str, nginx_default: bool, halo: bool) -> Module {
    Module {
        name,
        nginx_default,
        halo,
    }
}

/// Every nginx HTTP module halo is asked about. `halo: true` only for modules whose directives
/// halo carries out; a module whose directives are refused or merely ignored is `false`.
pub const MODULES: &[Module] = &[
    // Built by default in nginx.
    m("http_proxy_module", true, true),
    m("http_auth_basic_module", true, true),
    m("http_map_module", true, true),
    m("http_limit_conn_module", true, true),
    m("http_limit_req_module", true, true),
    m("http_upstream_hash_module", true, true),
    m("http_upstream_ip_hash_module", true, true),
    m("http_upstream_least_conn_module", true, true),
    m("http_upstream_random_module", true, true),
    m("http_upstream_keepalive_module", true, true),
    // `zone` is accepted: upstream state is shared by all threads without it.
    m("http_upstream_zone_module", true, true),
    m("http_rewrite_module", true, true),
    m("http_access_module", true, true),
    m("http_charset_module", true, false),
    m("http_gzip_module", true, true),
    m("http_ssi_module", true, false),
    m("http_userid_module", true, false),
    m("http_mirror_module", true, false),
    m("http_autoindex_module", true, true),
    m("http_geo_module", true, true),
    m("http_split_clients_module", true, true),
    m("http_referer_module", true, false),
    m("http_fastcgi_module", true, false),
    m("http_uwsgi_module", true, false),
    m("http_scgi_module", true, false),
    m("http_grpc_module", true, false),
    m("http_memcached_module", true, false),
    m("http_empty_gif_module", true, false),
    m("http_browser_module", true, false),
    m("http-cache", true, false),
    // Built only when asked for.
    m("http_stub_status_module", false, true),
    m("http_ssl_module", false, true),
    m("http_v2_module", false, true),
    m("http_realip_module", false, true),
    m("http_auth_request_module", false, true),
    m("http_sub_module", false, false),
    m("http_dav_module", false, false),
    m("http_slice_module", false, false),
    m("http_addition_module", false, false),
    m("http_gunzip_module", false, false),
    m("http_gzip_static_module", false, true),
    m("http_secure_link_module", false, false),
];

/// Feature lines nginx prints between the version and the configure arguments (e.g. `TLS SNI
/// support enabled`, which the test harness reads as the `sni` feature). Add a line when halo
/// has the feature.
pub const FEATURE_LINES: &[&str] = &["TLS SNI support enabled"];

/// The version line, as nginx prints it (tools parse `nginx version: nginx/X.Y.Z`).
pub fn version_line() -> String {
    format!(
        "nginx version: nginx/{NGINX_COMPAT_VERSION} (halo/{})",
        env!("CARGO_PKG_VERSION")
    )
}

/// The `configure arguments:` line: the default paths, then the modules.
pub fn configure_arguments() -> String {
    let mut s = format!(
        "configure arguments: --prefix={} --conf-path={DEFAULT_CONF} \
         --error-log-path={DEFAULT_ERROR_LOG} --pid-path={DEFAULT_PID}",
        DEFAULT_PREFIX.trim_end_matches('/')
    );
    for module in MODULES {
        match (module.nginx_default, module.halo) {
            (true, false) => s += &format!(" --without-{}", module.name),
            (false, true) => s += &format!(" --with-{}", module.name),
            _ => {}
        }
    }
    s
}

/// The usage text of `-h`.
pub fn usage(prog: &str) -> String {
    format!(
        "Usage: {prog} [-?hvVtTq] [-s signal] [-p prefix]\n             \
         [-e filename] [-c filename] [-g directives]\n\n\
         Options:\n  \
         -?,-h         : this help\n  \
         -v            : show version and exit\n  \
         -V            : show version and configure options then exit\n  \
         -t            : test configuration and exit\n  \
         -T            : test configuration, dump it and exit\n  \
         -q            : suppress non-error messages during configuration testing\n  \
         -s signal     : send signal to a master process: stop, quit, reopen, reload\n  \
         -p prefix     : set prefix path (default: {DEFAULT_PREFIX})\n  \
         -e filename   : set error log file (default: {DEFAULT_ERROR_LOG})\n  \
         -c filename   : set configuration file (default: {DEFAULT_CONF})\n  \
         -g directives : set global directives out of configuration file\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configure_arguments_name_what_halo_has_and_lacks() {
        let s = configure_arguments();
        assert!(s.contains(" --with-http_stub_status_module"));
        assert!(s.contains(" --with-http_realip_module"));
        assert!(s.contains(" --without-http_ssi_module"));
        assert!(!s.contains("http_access_module"));
        // Built by default and implemented: not mentioned, as in nginx's own output.
        assert!(!s.contains("http_proxy_module"));
        assert!(!s.contains("upstream_least_conn"));
        // Neither built by default nor implemented: not mentioned either.
        assert!(
            !s.contains("http_ssl_module")
                || MODULES
                    .iter()
                    .any(|m| m.name == "http_ssl_module" && m.halo)
        );
    }

    #[test]
    fn version_line_parses_as_nginx_test_harness_expects() {
        let v = version_line();
        assert!(v.starts_with(&format!("nginx version: nginx/{NGINX_COMPAT_VERSION}")));
    }
}
