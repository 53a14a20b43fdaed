//! The native TOML file: load (syntax, schema, semantics, all with `line:col`) and write.

use crate::diagnostic::{line_col, Diagnostic, Diagnostics};
use crate::field_path::{FieldPath, Issue, Seg};
use crate::{Config, LoadResult};
use std::path::Path;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Loads a native `halo.toml`.
///
/// Reports every TOML syntax error at once; then the first schema error (unknown key, wrong
/// type) with its position; then every semantic error (ranges, references, protocol rules).
pub fn load_native(path: &Path) -> LoadResult {
    let bytes = std::fs::read(path).map_err(|e| {
        vec![Diagnostic::error(
            path,
            0,
            0,
            format!("cannot read {}: {e}", path.display()),
        )]
    })?;
    let text = crate::keepalived::text_from_bytes(path, bytes).map_err(|d| vec![d])?;
    load_native_str(&text, path)
}

/// [`load_native`] on text already in memory; `path` names it in diagnostics.
pub fn load_native_str(text: &str, path: &Path) -> LoadResult {
    let mut diags = Diagnostics::default();
    let (doc, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for e in syntax_errors {
            diags.push(toml_error(text, path, &e));
        }
        return diags.finish(None);
    }
    let config: Config = match toml::from_str(text) {
        Ok(c) => c,
        Err(e) => {
            diags.push(toml_error(text, path, &e));
            return diags.finish(None);
        }
    };
    let locate = |p: &FieldPath| -> (u32, u32) {
        let start = span_of(doc.get_ref(), &p.0).unwrap_or(0);
        line_col(text, start)
    };
    for issue in semantic_issues(&config) {
        let (line, col) = locate(&issue.path);
        diags.push(to_diagnostic(path, line, col, issue));
    }
    diags.finish(Some(config))
}

pub(crate) fn to_diagnostic(path: &Path, line: u32, col: u32, issue: Issue) -> Diagnostic {
    Diagnostic {
        file: path.to_path_buf(),
        line,
        col,
        severity: issue.severity,
        message: issue.message,
        expected: issue.expected,
    }
}

/// Validation of a whole [`Config`], format independent.
pub(crate) fn semantic_issues(config: &Config) -> Vec<Issue> {
    let mut issues = crate::vrrp_validate::validate(&config.vrrp, &FieldPath::root("vrrp"));
    if let Some(http) = &config.http {
        for e in http.validate() {
            issues.push(Issue::error(http_path(&e.at), e.message));
        }
    }
    issues
}

/// Turns the HTTP validator's `servers[0].locations[1].action.pass` into a [`FieldPath`]
/// under `http`.
pub(crate) fn http_path(at: &str) -> FieldPath {
    let mut path = FieldPath::root("http");
    for part in at.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            path = path.key(&rest[..open]);
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                if let Ok(i) = stripped[..close].parse() {
                    path = path.index(i);
                }
                rest = &stripped[close + 1..];
            }
        } else if !rest.is_empty() {
            path = path.key(rest);
        }
    }
    path
}

/// Byte offset where the value at `path` starts (or the deepest ancestor found).
fn span_of(table: &DeTable<'_>, path: &[Seg]) -> Option<usize> {
    let mut best = None;
    let mut current: Option<&Spanned<DeValue<'_>>> = None;
    let mut current_table = Some(table);
    for seg in path {
        let next = match (seg, current_table, current.map(Spanned::get_ref)) {
            (Seg::Key(k), Some(t), _) => t
                .iter()
                .find(|(key, _)| key.get_ref().as_ref() == k.as_str())
                .map(|(key, v)| {
                    best = Some(key.span().start);
                    v
                }),
            (Seg::Index(i), _, Some(DeValue::Array(a))) => a.get(*i),
            _ => None,
        };
        let Some(next) = next else { break };
        if !matches!(seg, Seg::Key(_)) || best.is_none() {
            best = Some(next.span().start);
        }
        current_table = next.get_ref().as_table();
        current = Some(next);
    }
    best
}

fn toml_error(text: &str, path: &Path, e: &toml::de::Error) -> Diagnostic {
    let (line, col) = e.span().map_or((0, 0), |s| line_col(text, s.start));
    let message = e.message().trim().to_string();
    // The toml crate phrases expectations as "..., expected X"; keep them in their own field.
    match message.split_once(", expected ") {
        Some((what, expected)) => Diagnostic::error(path, line, col, what).expected(expected),
        None => Diagnostic::error(path, line, col, message),
    }
}

/// Writes `config` as native TOML that [`load_native`] reads back to an equal [`Config`].
pub fn to_toml(config: &Config) -> String {
    match toml::to_string_pretty(config) {
        Ok(text) => text,
        // Every model type serializes; this only guards against a future model bug.
        Err(e) => format!("# halo could not serialize this configuration: {e}\n"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn http_validator_paths_become_field_paths() {
        assert_eq!(
            http_path("servers[0].locations[1].action.pass").to_string(),
            "http.servers[0].locations[1].action.pass"
        );
        assert_eq!(http_path("upstreams[2]").to_string(), "http.upstreams[2]");
    }

    #[test]
    fn semantic_errors_point_at_the_key() {
        let text = "[[vrrp.instance]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvrid = 0\n";
        let errors = load_native_str(text, Path::new("h.toml")).unwrap_err();
        let e = errors
            .iter()
            .find(|d| d.message.contains("virtual router id 0"))
            .unwrap();
        assert_eq!((e.line, e.col), (4, 1), "{e}");
    }

    #[test]
    fn all_syntax_errors_at_once() {
        let text = "a = \nb = [\n[x\n";
        let errors = load_native_str(text, Path::new("h.toml")).unwrap_err();
        assert!(errors.len() >= 2, "{errors:?}");
        assert!(errors.iter().all(|d| d.line > 0));
    }
}
