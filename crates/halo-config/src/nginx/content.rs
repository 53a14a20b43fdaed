//! nginx's `types { }`, `default_type` and `autoindex*` directives at http, server and
//! location level, each inherited on its own (an inner level that sets one replaces the
//! outer value, as nginx's merge functions do).

use std::collections::BTreeMap;

use super::{Importer, Node};
use crate::content::{Autoindex, AutoindexFormat, IfModifiedSince};

/// What one level set of the content directives.
#[derive(Clone, Default)]
pub(super) struct ContentScope {
    pub(super) default_type: Option<String>,
    /// Extension (lower case) -> type.
    pub(super) types: Option<BTreeMap<String, String>>,
    autoindex: Option<bool>,
    format: Option<AutoindexFormat>,
    exact_size: Option<bool>,
    localtime: Option<bool>,
    pub(super) if_modified_since: Option<IfModifiedSince>,
}

impl ContentScope {
    /// This level's settings, falling back to `outer` for what it does not set.
    pub(super) fn over(&self, outer: &ContentScope) -> ContentScope {
        fn pick<T: Clone>(inner: &Option<T>, outer: &Option<T>) -> Option<T> {
            inner.clone().or_else(|| outer.clone())
        }
        ContentScope {
            default_type: pick(&self.default_type, &outer.default_type),
            types: pick(&self.types, &outer.types),
            autoindex: pick(&self.autoindex, &outer.autoindex),
            format: pick(&self.format, &outer.format),
            exact_size: pick(&self.exact_size, &outer.exact_size),
            localtime: pick(&self.localtime, &outer.localtime),
            if_modified_since: pick(&self.if_modified_since, &outer.if_modified_since),
        }
    }

    /// `autoindex` in effect (`None` when off).
    pub(super) fn autoindex(&self) -> Option<Autoindex> {
        if self.autoindex != Some(true) {
            return None;
        }
        let d = Autoindex::default();
        Some(Autoindex {
            format: self.format.unwrap_or(d.format),
            exact_size: self.exact_size.unwrap_or(d.exact_size),
            localtime: self.localtime.unwrap_or(d.localtime),
        })
    }
}

/// Whether `name` is one of the directives of this module.
pub(super) fn is_content_directive(name: &str) -> bool {
    matches!(
        name,
        "default_type"
            | "types"
            | "autoindex"
            | "autoindex_format"
            | "autoindex_exact_size"
            | "autoindex_localtime"
            | "if_modified_since"
    )
}

impl Importer<'_> {
    /// One of the content directives; false if `node` is none of them.
    pub(super) fn content_directive(&mut self, node: &Node, scope: &mut ContentScope) -> bool {
        match node.name.as_str() {
            "default_type" => {
                if let Some(a) = self.one(node) {
                    scope.default_type = Some(a.text.clone());
                }
            }
            "types" => {
                let mut table = BTreeMap::new();
                for entry in self.block(node) {
                    for ext in &entry.args {
                        table.insert(ext.text.to_ascii_lowercase(), entry.name.clone());
                    }
                }
                // A second `types` block at one level adds to the first, as in nginx.
                scope.types.get_or_insert_with(BTreeMap::new).extend(table);
            }
            "autoindex" => scope.autoindex = self.flag(node).or(scope.autoindex),
            "autoindex_exact_size" => scope.exact_size = self.flag(node).or(scope.exact_size),
            "autoindex_localtime" => scope.localtime = self.flag(node).or(scope.localtime),
            "if_modified_since" => {
                if let Some(a) = self.one(node).cloned() {
                    scope.if_modified_since = match a.text.as_str() {
                        "off" => Some(IfModifiedSince::Off),
                        "exact" => Some(IfModifiedSince::Exact),
                        "before" => Some(IfModifiedSince::Before),
                        other => {
                            self.err(
                                &a.pos,
                                format!(
                                    "invalid value \"{other}\" in \"if_modified_since\" directive"
                                ),
                                Some("off, exact or before"),
                            );
                            return true;
                        }
                    };
                }
            }
            "autoindex_format" => {
                if let Some(a) = self.one(node).cloned() {
                    let format = match a.text.as_str() {
                        "html" => AutoindexFormat::Html,
                        "json" => AutoindexFormat::Json,
                        "xml" => AutoindexFormat::Xml,
                        "jsonp" => AutoindexFormat::Jsonp,
                        other => {
                            self.err(
                                &a.pos,
                                format!(
                                    "invalid value \"{other}\" in \"autoindex_format\" directive"
                                ),
                                Some("html, xml, json or jsonp"),
                            );
                            return true;
                        }
                    };
                    scope.format = Some(format);
                }
            }
            _ => return false,
        }
        true
    }
}
