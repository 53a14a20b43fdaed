//! nginx's `gzip*`, `gzip_static` and `expires` directives -> [`Gzip`] and [`Expires`], with
//! nginx's inheritance: each directive separately, an inner level that sets one replaces the
//! outer value.

use super::{Importer, Node};
use crate::gzip::{Expires, Gzip, GzipHttpVersion, GzipProxied, GzipStatic};

/// What one level (http, server, location) set of the gzip directives and `expires`.
#[derive(Clone, Default)]
pub(super) struct GzipScope {
    enable: Option<bool>,
    types: Option<Vec<String>>,
    min_length: Option<u64>,
    comp_level: Option<u32>,
    vary: Option<bool>,
    proxied: Option<Vec<GzipProxied>>,
    http_version: Option<GzipHttpVersion>,
    disable: Option<Vec<String>>,
    static_files: Option<GzipStatic>,
    pub(super) expires: Option<Expires>,
}

impl GzipScope {
    /// This level's settings, falling back to `outer` for what it does not set.
    pub(super) fn over(&self, outer: &GzipScope) -> GzipScope {
        fn pick<T: Clone>(inner: &Option<T>, outer: &Option<T>) -> Option<T> {
            inner.clone().or_else(|| outer.clone())
        }
        GzipScope {
            enable: pick(&self.enable, &outer.enable),
            types: pick(&self.types, &outer.types),
            min_length: pick(&self.min_length, &outer.min_length),
            comp_level: pick(&self.comp_level, &outer.comp_level),
            vary: pick(&self.vary, &outer.vary),
            proxied: pick(&self.proxied, &outer.proxied),
            http_version: pick(&self.http_version, &outer.http_version),
            disable: pick(&self.disable, &outer.disable),
            static_files: pick(&self.static_files, &outer.static_files),
            expires: pick(&self.expires, &outer.expires),
        }
    }

    /// The settings in effect, `None` when no gzip directive was written (nginx's defaults).
    pub(super) fn gzip(&self) -> Option<Gzip> {
        let set = self.enable.is_some()
            || self.types.is_some()
            || self.min_length.is_some()
            || self.comp_level.is_some()
            || self.vary.is_some()
            || self.proxied.is_some()
            || self.http_version.is_some()
            || self.disable.is_some()
            || self.static_files.is_some();
        if !set {
            return None;
        }
        let d = Gzip::default();
        Some(Gzip {
            enable: self.enable.unwrap_or(d.enable),
            types: self.types.clone().unwrap_or(d.types),
            min_length: self.min_length.unwrap_or(d.min_length),
            comp_level: self.comp_level.unwrap_or(d.comp_level),
            vary: self.vary.unwrap_or(d.vary),
            proxied: self.proxied.clone().unwrap_or(d.proxied),
            http_version: self.http_version.unwrap_or(d.http_version),
            disable: self.disable.clone().unwrap_or(d.disable),
            static_files: self.static_files.unwrap_or(d.static_files),
        })
    }
}

impl Importer<'_> {
    /// One of the gzip directives or `expires`; false if `node` is none of them.
    pub(super) fn gzip_directive(&mut self, node: &Node, scope: &mut GzipScope) -> bool {
        match node.name.as_str() {
            "gzip" => scope.enable = self.flag(node).or(scope.enable),
            "gzip_vary" => scope.vary = self.flag(node).or(scope.vary),
            "gzip_types" => {
                if self.no_block(node) {
                    if node.args.is_empty() {
                        self.err(
                            &node.pos,
                            "invalid number of arguments in \"gzip_types\" directive",
                            Some("gzip_types MIME-TYPE...;"),
                        );
                    }
                    let types = scope.types.get_or_insert_with(Vec::new);
                    types.extend(node.args.iter().map(|a| a.text.to_ascii_lowercase()));
                }
            }
            "gzip_min_length" => {
                if let Some(a) = self.one(node).cloned() {
                    scope.min_length = self.size(node, &a).or(scope.min_length);
                }
            }
            "gzip_comp_level" => {
                if let Some(a) = self.one(node).cloned() {
                    match a.text.parse::<u32>() {
                        Ok(level @ 1..=9) => scope.comp_level = Some(level),
                        _ => self.err(
                            &a.pos,
                            format!("invalid value \"{}\" in \"gzip_comp_level\"", a.text),
                            Some("a level from 1 to 9"),
                        ),
                    }
                }
            }
            "gzip_http_version" => {
                if let Some(a) = self.one(node).cloned() {
                    match a.text.as_str() {
                        "1.0" => scope.http_version = Some(GzipHttpVersion::Http10),
                        "1.1" => scope.http_version = Some(GzipHttpVersion::Http11),
                        other => self.err(
                            &a.pos,
                            format!("invalid value \"{other}\" in \"gzip_http_version\""),
                            Some("1.0 or 1.1"),
                        ),
                    }
                }
            }
            "gzip_proxied" => {
                if self.no_block(node) {
                    let mut list = Vec::new();
                    for a in &node.args {
                        match GzipProxied::parse(&a.text) {
                            Some(p) => list.push(p),
                            None => self.err(
                                &a.pos,
                                format!("invalid value \"{}\" in \"gzip_proxied\"", a.text),
                                Some("off, expired, no-cache, no-store, private, no_last_modified, no_etag, auth or any"),
                            ),
                        }
                    }
                    if node.args.is_empty() {
                        self.err(
                            &node.pos,
                            "invalid number of arguments in \"gzip_proxied\" directive",
                            Some("gzip_proxied off | any | ...;"),
                        );
                    }
                    scope.proxied = Some(list);
                }
            }
            "gzip_disable" => {
                if self.no_block(node) {
                    // Regexes are compiled (and refused with their text) when the proxy is
                    // built, as the location regexes are.
                    let list = scope.disable.get_or_insert_with(Vec::new);
                    list.extend(node.args.iter().map(|a| a.text.clone()));
                }
            }
            "gzip_buffers" => {
                // Accepted: halo compresses each chunk as it comes, its buffers are its own.
                if self.no_block(node) {
                    match node.args.as_slice() {
                        [n, size] => {
                            let (n, size) = (n.clone(), size.clone());
                            let _ = self.number::<u32>(node, &n);
                            let _ = self.size(node, &size);
                        }
                        _ => self.err(
                            &node.pos,
                            "invalid number of arguments in \"gzip_buffers\" directive",
                            Some("gzip_buffers NUMBER SIZE;"),
                        ),
                    }
                }
            }
            "gzip_static" => {
                if let Some(a) = self.one(node).cloned() {
                    match a.text.as_str() {
                        "off" => scope.static_files = Some(GzipStatic::Off),
                        "on" => scope.static_files = Some(GzipStatic::On),
                        "always" => scope.static_files = Some(GzipStatic::Always),
                        other => self.err(
                            &a.pos,
                            format!("invalid value \"{other}\" in \"gzip_static\""),
                            Some("on, off or always"),
                        ),
                    }
                }
            }
            "expires" => {
                if self.no_block(node) {
                    let args: Vec<&str> = node.args.iter().map(|a| a.text.as_str()).collect();
                    if args.iter().any(|a| a.contains('$')) {
                        self.err(
                            &node.pos,
                            "\"expires\" with variables is not supported by halo",
                            Some("a time, epoch, max or off"),
                        );
                    } else {
                        match Expires::parse(&args) {
                            Ok(expires) => scope.expires = Some(expires),
                            Err(e) => self.err(
                                &node.pos,
                                format!("{e} in \"expires\" directive"),
                                Some("[modified] TIME | epoch | max | off"),
                            ),
                        }
                    }
                }
            }
            _ => return false,
        }
        true
    }
}

/// Whether `name` is one of the directives [`Importer::gzip_directive`] takes.
pub(super) fn is_gzip_directive(name: &str) -> bool {
    matches!(
        name,
        "gzip"
            | "gzip_vary"
            | "gzip_types"
            | "gzip_min_length"
            | "gzip_comp_level"
            | "gzip_http_version"
            | "gzip_proxied"
            | "gzip_disable"
            | "gzip_buffers"
            | "gzip_static"
            | "expires"
    )
}
