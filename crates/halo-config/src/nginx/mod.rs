//! The nginx.conf importer: nginx 1.22 syntax -> [`Config`] with nginx's semantics (inheritance,
//! defaults, relative paths), plus a warning for each directive halo ignores and an error for
//! each it refuses.
//!
//! Paths: a relative `include` (and `auth_basic_user_file`) is relative to the directory of the
//! main configuration file (nginx's conf prefix); a relative `root`, `alias` or `access_log`
//! path is relative to the prefix (nginx `-p`). Absolute paths can be redirected with
//! [`NginxImportOptions::path_map`] (for a configuration written for a container).

mod directives;
mod import;
mod include;
mod lexer;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::import_validation::finish_import;
use crate::{Config, LoadResult};
use std::path::{Path, PathBuf};

/// How [`import_nginx_with`] finds files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NginxImportOptions {
    /// nginx's prefix (`-p`), against which relative `root`, `alias` and log paths resolve.
    pub prefix: PathBuf,
    /// nginx's conf prefix, against which relative `include` paths resolve; `None` = the
    /// directory of the main configuration file (what nginx does with `-c FILE`).
    pub conf_dir: Option<PathBuf>,
    /// Absolute path prefixes read from elsewhere, first match wins: `("/etc/nginx",
    /// "examples/seed")` reads `/etc/nginx/conf.d/x.conf` from `examples/seed/conf.d/x.conf`.
    /// Paths written into the [`Config`] (roots, logs) are mapped the same way.
    pub path_map: Vec<(PathBuf, PathBuf)>,
    /// Resolve host names of `listen` and `proxy_pass` while importing, as nginx does when it
    /// starts ([`import_nginx`] does). When false, a name that is no upstream is an error
    /// (useful offline and in tests).
    pub resolve_names: bool,
}

/// Imports an nginx.conf with `prefix` as nginx's `-p` prefix. The result has no VRRP side.
pub fn import_nginx(path: &Path, prefix: &Path) -> LoadResult {
    import_nginx_with(
        path,
        &NginxImportOptions {
            prefix: prefix.to_path_buf(),
            resolve_names: true,
            ..NginxImportOptions::default()
        },
    )
}

/// [`import_nginx`] with every path option.
pub fn import_nginx_with(path: &Path, options: &NginxImportOptions) -> LoadResult {
    let conf_dir = options
        .conf_dir
        .clone()
        .or_else(|| path.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let rules = include::PathRules {
        conf_dir: conf_dir.clone(),
        path_map: &options.path_map,
    };
    let mut raw: Vec<Diagnostic> = Vec::new();
    let Some(nodes) = include::read_tree(path, &rules, &directives::is_known, &mut raw) else {
        let mut diags = Diagnostics::default();
        diags.extend(raw);
        return diags.finish(None);
    };
    let imported = import::import(
        &nodes,
        import::Paths {
            prefix: options.prefix.clone(),
            conf_dir,
            rules: &rules,
            resolve_names: options.resolve_names,
        },
    );
    raw.extend(imported.diags);
    if imported.http.is_none() {
        raw.push(Diagnostic::warning(
            path,
            0,
            0,
            "no http block: nothing to proxy",
        ));
    }
    let config = Config {
        http: imported.http,
        ..Config::default()
    };
    finish_import(path, raw, &imported.positions, config)
}
