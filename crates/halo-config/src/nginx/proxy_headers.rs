//! nginx's `proxy_hide_header`, `proxy_pass_header`, `proxy_ignore_headers`, `proxy_method`,
//! `proxy_set_body`, `proxy_cookie_domain` and `proxy_cookie_path` -> [`ProxyHeaders`], with
//! nginx's inheritance: each directive separately, and a level that writes one of the list
//! directives replaces the outer list.

use super::{Importer, Node};
use crate::proxy_headers::{CookieRewrite, IgnoreHeader, ProxyHeaders};

/// What one level (http, server, location) set.
#[derive(Clone, Default)]
pub(super) struct ProxyHeadersScope {
    hide_header: Option<Vec<String>>,
    pass_header: Option<Vec<String>>,
    ignore_headers: Option<Vec<IgnoreHeader>>,
    method: Option<String>,
    set_body: Option<String>,
    /// `Some(vec![])` = `off`.
    cookie_domain: Option<Vec<CookieRewrite>>,
    cookie_path: Option<Vec<CookieRewrite>>,
}

impl ProxyHeadersScope {
    /// This level's settings, falling back to `outer` for what it does not set.
    pub(super) fn over(&self, outer: &ProxyHeadersScope) -> ProxyHeadersScope {
        fn pick<T: Clone>(inner: &Option<T>, outer: &Option<T>) -> Option<T> {
            inner.clone().or_else(|| outer.clone())
        }
        ProxyHeadersScope {
            hide_header: pick(&self.hide_header, &outer.hide_header),
            pass_header: pick(&self.pass_header, &outer.pass_header),
            ignore_headers: pick(&self.ignore_headers, &outer.ignore_headers),
            method: pick(&self.method, &outer.method),
            set_body: pick(&self.set_body, &outer.set_body),
            cookie_domain: pick(&self.cookie_domain, &outer.cookie_domain),
            cookie_path: pick(&self.cookie_path, &outer.cookie_path),
        }
    }

    /// The settings in effect at a location.
    pub(super) fn model(&self) -> ProxyHeaders {
        ProxyHeaders {
            hide_header: self.hide_header.clone().unwrap_or_default(),
            pass_header: self.pass_header.clone().unwrap_or_default(),
            ignore_headers: self.ignore_headers.clone().unwrap_or_default(),
            method: self.method.clone(),
            set_body: self.set_body.clone(),
            cookie_domain: self.cookie_domain.clone().unwrap_or_default(),
            cookie_path: self.cookie_path.clone().unwrap_or_default(),
        }
    }
}

/// Whether `name` is one of these directives.
pub(super) fn is_proxy_headers_directive(name: &str) -> bool {
    matches!(
        name,
        "proxy_hide_header"
            | "proxy_pass_header"
            | "proxy_ignore_headers"
            | "proxy_method"
            | "proxy_set_body"
            | "proxy_cookie_domain"
            | "proxy_cookie_path"
    )
}

impl Importer<'_> {
    /// Handles one of these directives; `false` when `node` is none of them.
    pub(super) fn proxy_headers_directive(
        &mut self,
        node: &Node,
        scope: &mut ProxyHeadersScope,
    ) -> bool {
        let name = node.name.as_str();
        match name {
            "proxy_hide_header" | "proxy_pass_header" => {
                if let Some(a) = self.one(node) {
                    let list = if name == "proxy_hide_header" {
                        &mut scope.hide_header
                    } else {
                        &mut scope.pass_header
                    };
                    list.get_or_insert_with(Vec::new).push(a.text.clone());
                }
            }
            "proxy_ignore_headers" => {
                if !self.no_block(node) {
                    return true;
                }
                if node.args.is_empty() {
                    self.err(
                        &node.pos,
                        "invalid number of arguments in \"proxy_ignore_headers\" directive",
                        Some("proxy_ignore_headers FIELD...;"),
                    );
                }
                let mut list = Vec::new();
                for a in &node.args {
                    match IgnoreHeader::parse(&a.text) {
                        Some(h) => list.push(h),
                        None => self.err(
                            &a.pos,
                            format!("invalid value \"{}\" in \"proxy_ignore_headers\"", a.text),
                            Some(
                                "X-Accel-Redirect, X-Accel-Expires, X-Accel-Limit-Rate, \
                                 X-Accel-Buffering, X-Accel-Charset, Expires, Cache-Control, \
                                 Set-Cookie or Vary",
                            ),
                        ),
                    }
                }
                // nginx: each directive replaces the level's mask.
                scope.ignore_headers = Some(list);
            }
            "proxy_method" | "proxy_set_body" => {
                if let Some(a) = self.one(node).cloned() {
                    let slot = if name == "proxy_method" {
                        &mut scope.method
                    } else {
                        &mut scope.set_body
                    };
                    if slot.is_some() {
                        self.err(
                            &node.pos,
                            format!("\"{name}\" directive is duplicate"),
                            None,
                        );
                    } else {
                        *slot = Some(a.text);
                    }
                }
            }
            "proxy_cookie_domain" | "proxy_cookie_path" => {
                if !self.no_block(node) {
                    return true;
                }
                let slot = if name == "proxy_cookie_domain" {
                    &mut scope.cookie_domain
                } else {
                    &mut scope.cookie_path
                };
                match node.args.as_slice() {
                    [off] if off.text == "off" => {
                        if slot.is_some() {
                            self.err(
                                &node.pos,
                                format!("\"{name}\" directive is duplicate"),
                                None,
                            );
                        } else {
                            *slot = Some(Vec::new());
                        }
                    }
                    [from, to] => {
                        if slot.as_ref().is_some_and(Vec::is_empty) {
                            self.err(
                                &node.pos,
                                format!("\"{name}\" directive is duplicate"),
                                None,
                            );
                        } else {
                            slot.get_or_insert_with(Vec::new).push(CookieRewrite {
                                from: from.text.clone(),
                                to: to.text.clone(),
                            });
                        }
                    }
                    _ => self.err(
                        &node.pos,
                        format!("invalid number of arguments in \"{name}\" directive"),
                        Some("off, or FROM TO"),
                    ),
                }
            }
            _ => return false,
        }
        true
    }
}
