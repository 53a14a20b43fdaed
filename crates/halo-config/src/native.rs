//! The native TOML file: load (syntax, schema, semantics, all with `line:col`) and write.

use crate::diagnostic::{line_col, Diagnostic, Diagnostics};
use crate::field_path::{FieldPath, Issue, Seg};
use crate::{Config, LoadResult};
use std::path::Path;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Loads a native `halo.toml`.
///
/// Reports every TOML syntax error at once; else every schema error (unknown key, wrong type;
/// the first of each section and of each list element such as one `[[vrrp.instance]]`); else
/// every semantic error (ranges, references, protocol rules). All with `line:col`.
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
            // serde stops at the first error; look at each section and list element on its
            // own to report all of them.
            let mut errors = schema_errors(&doc);
            if errors.is_empty() {
                errors.push(e);
            }
            let mut seen = std::collections::HashSet::new();
            for e in errors {
                if seen.insert((e.span().map(|s| s.start), e.message().to_string())) {
                    diags.push(toml_error(text, path, &e));
                }
            }
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
        let errors = http.validate();
        let valid = errors.is_empty();
        for e in errors {
            issues.push(Issue::error(http_path(&e.at), e.message));
        }
        if let (true, Some(check)) = (valid, crate::FILE_CHECKER.get()) {
            for (e, severity) in check(http) {
                issues.push(match severity {
                    crate::Severity::Error => Issue::error(http_path(&e.at), e.message),
                    crate::Severity::Warning => Issue::warning(http_path(&e.at), e.message),
                });
            }
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

/// Byte offset of the value at `path` (a scalar's own text, else its key), or of the deepest
/// ancestor found.
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
                    let scalar = !matches!(v.get_ref(), DeValue::Table(_) | DeValue::Array(_));
                    best = Some(if scalar {
                        v.span().start
                    } else {
                        key.span().start
                    });
                    v
                }),
            (Seg::Index(i), _, Some(DeValue::Array(a))) => a.get(*i).inspect(|v| {
                best = Some(v.span().start);
            }),
            _ => None,
        };
        let Some(next) = next else { break };
        current_table = next.get_ref().as_table();
        current = Some(next);
    }
    best
}

/// Schema errors of every section and every element of the main arrays, each deserialized
/// alone (with the spans of the whole document).
fn schema_errors(doc: &Spanned<DeTable<'_>>) -> Vec<toml::de::Error> {
    use crate::http::{HttpConfig, ServerBlock, UpstreamConfig};
    use crate::vrrp::{SyncGroup, TrackFile, VrrpConfig, VrrpInstance, VrrpScript};
    let mut errors = Vec::new();
    let root = Spanned::new(doc.span(), DeValue::Table(doc.get_ref().clone()));
    check::<Config>(&without(&root, &["vrrp", "http", "admin"]), &mut errors);
    let table = doc.get_ref();
    if let Some(vrrp) = get(table, "vrrp") {
        let arrays = ["instance", "script", "track_file", "sync_group"];
        check::<VrrpConfig>(&without(vrrp, &arrays), &mut errors);
        if let Some(t) = vrrp.get_ref().as_table() {
            each::<VrrpInstance>(get(t, "instance"), &mut errors);
            each::<VrrpScript>(get(t, "script"), &mut errors);
            each::<TrackFile>(get(t, "track_file"), &mut errors);
            each::<SyncGroup>(get(t, "sync_group"), &mut errors);
        }
    }
    if let Some(http) = get(table, "http") {
        check::<HttpConfig>(&without(http, &["upstreams", "servers"]), &mut errors);
        if let Some(t) = http.get_ref().as_table() {
            each::<UpstreamConfig>(get(t, "upstreams"), &mut errors);
            each::<ServerBlock>(get(t, "servers"), &mut errors);
        }
    }
    if let Some(admin) = get(table, "admin") {
        check::<crate::AdminConfig>(admin, &mut errors);
    }
    errors.sort_by_key(|e| e.span().map_or(0, |s| s.start));
    errors
}

fn get<'a, 'i>(table: &'a DeTable<'i>, key: &str) -> Option<&'a Spanned<DeValue<'i>>> {
    table
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == key)
        .map(|(_, v)| v)
}

/// `value` with the array-valued `keys` removed (they are checked element by element).
fn without<'i>(value: &Spanned<DeValue<'i>>, keys: &[&str]) -> Spanned<DeValue<'i>> {
    let Some(table) = value.get_ref().as_table() else {
        return value.clone();
    };
    let mut kept = DeTable::new();
    for (k, v) in table.iter() {
        let is_array = matches!(v.get_ref(), DeValue::Array(_));
        if !(is_array && keys.contains(&k.get_ref().as_ref())) {
            kept.insert(k.clone(), v.clone());
        }
    }
    Spanned::new(value.span(), DeValue::Table(kept))
}

fn check<T: serde::de::DeserializeOwned>(
    value: &Spanned<DeValue<'_>>,
    errors: &mut Vec<toml::de::Error>,
) {
    if let Err(e) = T::deserialize(toml::de::ValueDeserializer::from(value.clone())) {
        errors.push(e);
    }
}

fn each<T: serde::de::DeserializeOwned>(
    value: Option<&Spanned<DeValue<'_>>>,
    errors: &mut Vec<toml::de::Error>,
) {
    if let Some(DeValue::Array(items)) = value.map(Spanned::get_ref) {
        for item in items.iter() {
            check::<T>(item, errors);
        }
    }
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
        assert_eq!((e.line, e.col), (4, 8), "{e}");
    }

    #[test]
    fn schema_errors_of_every_instance_at_once() {
        let text = "[[vrrp.instance]]\nname = \"A\"\ninterface = \"eth0\"\nvrid = 300\n\n[[vrrp.instance]]\nname = \"B\"\ninterface = \"eth0\"\nvrid = 2\nadvert_interval = \"soon\"\n\n[admin]\nsockett = \"x\"\n";
        let errors = load_native_str(text, Path::new("h.toml")).unwrap_err();
        let lines: Vec<u32> = errors.iter().map(|d| d.line).collect();
        assert_eq!(lines, vec![4, 10, 13], "{errors:#?}");
    }

    #[test]
    fn all_syntax_errors_at_once() {
        let text = "a = \nb = [\n[x\n";
        let errors = load_native_str(text, Path::new("h.toml")).unwrap_err();
        assert!(errors.len() >= 2, "{errors:?}");
        assert!(errors.iter().all(|d| d.line > 0));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text: the native loader returns diagnostics, never panics.
        #[test]
        fn random_text_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = load_native_str(&text, Path::new("fuzz.toml"));
        }
    }
}
