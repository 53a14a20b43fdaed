//! The keepalived.conf importer: keepalived 2.2 syntax -> [`Config`] with keepalived's semantics,
//! plus a warning for each directive halo does not implement (what halo does instead).

mod import;
mod lexer;

pub(crate) use lexer::{read_text, text_from_bytes};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::native::{semantic_issues, to_diagnostic};
use crate::{Config, LoadResult};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Imports a keepalived.conf (and the files it `include`s, relative to the including file's
/// directory as keepalived does). The result has no HTTP side.
pub fn import_keepalived(path: &Path) -> LoadResult {
    let mut raw: Vec<Diagnostic> = Vec::new();
    let tokens = lexer::tokenize_file_with_includes(path, &mut raw);
    let nodes = lexer::parse(tokens, &mut raw);
    let imported = import::import(&nodes, &mut raw);
    // A problem the importer already reported on a line is not reported again by validation.
    let reported: HashSet<(PathBuf, u32)> = raw
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.file.clone(), d.line))
        .collect();
    let mut diags = Diagnostics::default();
    diags.extend(raw);
    let config = Config {
        vrrp: imported.vrrp,
        ..Config::default()
    };
    for issue in semantic_issues(&config) {
        let mut at = Some(issue.path.clone());
        let mut pos = None;
        while let Some(p) = at {
            if let Some(found) = imported.positions.get(&p.to_string()) {
                pos = Some(found.clone());
                break;
            }
            at = p.parent();
        }
        let diagnostic = match pos {
            Some(pos) => to_diagnostic(&pos.file, pos.line, pos.col, issue),
            None => to_diagnostic(path, 0, 0, issue),
        };
        if !(diagnostic.is_error()
            && reported.contains(&(diagnostic.file.clone(), diagnostic.line)))
        {
            diags.push(diagnostic);
        }
    }
    diags.finish(Some(config))
}
