//! Loading the configuration a command line names, and printing what the loaders said.

use std::path::{Path, PathBuf};

use anyhow::bail;
use halo_config::{Config, Diagnostic, NginxImportOptions};

use crate::cli::ConfigSource;

/// A loaded configuration and the warnings that came with it.
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// Loads what `source` names: native TOML, or nginx.conf and/or keepalived.conf.
/// On errors returns every diagnostic (errors first).
pub fn load(source: &ConfigSource) -> Result<Loaded, Vec<Diagnostic>> {
    if let Some(path) = &source.config {
        let (config, warnings) = halo_config::load_native(path)?;
        return Ok(Loaded { config, warnings });
    }
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let mut config = Config::default();
    if let Some(path) = &source.keepalived {
        match halo_config::import_keepalived(path) {
            Ok((c, w)) => {
                config = c;
                warnings.extend(w);
            }
            Err(e) => errors.extend(e),
        }
    }
    if let Some(path) = &source.nginx {
        match halo_config::import_nginx_with(path, &nginx_options(source, path)) {
            Ok((c, w)) => {
                config = config.merge_http(c);
                warnings.extend(w);
            }
            Err(e) => errors.extend(e),
        }
    }
    if source.keepalived.is_none() && source.nginx.is_none() {
        errors.push(Diagnostic::error(
            Path::new("<command line>"),
            0,
            0,
            "no configuration given: use --config FILE, --nginx FILE and/or --keepalived FILE",
        ));
    }
    if errors.is_empty() {
        Ok(Loaded { config, warnings })
    } else {
        errors.sort_by_key(|d| !d.is_error());
        errors.extend(warnings);
        Err(errors)
    }
}

/// nginx's prefix and path map from the command line.
pub fn nginx_options(source: &ConfigSource, nginx_conf: &Path) -> NginxImportOptions {
    let prefix = source.prefix.clone().unwrap_or_else(|| {
        nginx_conf
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    });
    let path_map = source
        .path_map
        .iter()
        .filter_map(|m| {
            let (from, to) = m.split_once('=')?;
            Some((PathBuf::from(from), PathBuf::from(to)))
        })
        .collect();
    NginxImportOptions {
        prefix,
        conf_dir: None,
        path_map,
        resolve_names: true,
    }
}

/// Prints diagnostics to stderr, one per line, as `file:line:col: severity: message`.
pub fn print_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("{d}");
    }
}

/// Loads or fails with every diagnostic printed.
pub fn load_or_report(source: &ConfigSource) -> anyhow::Result<Loaded> {
    match load(source) {
        Ok(l) => {
            print_diagnostics(&l.warnings);
            Ok(l)
        }
        Err(diags) => {
            print_diagnostics(&diags);
            let n = diags.iter().filter(|d| d.is_error()).count();
            bail!("configuration has {n} error(s)")
        }
    }
}
