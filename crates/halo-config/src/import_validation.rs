//! The last step shared by the keepalived and nginx importers: validate the imported [`Config`]
//! and report each issue at the position of the directive it came from.

use crate::diagnostic::{Diagnostic, Diagnostics, Pos};
use crate::native::{semantic_issues, to_diagnostic};
use crate::{Config, LoadResult};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Adds the validation issues of `config` to the importer's own diagnostics `raw` and returns the
/// result. An issue is placed at the recorded position of its field path or, failing that, of the
/// nearest recorded parent; with none, at `path` line 0. An error on a line the importer already
/// reported an error for is not reported again.
pub(crate) fn finish_import(
    path: &Path,
    raw: Vec<Diagnostic>,
    positions: &HashMap<String, Pos>,
    config: Config,
) -> LoadResult {
    let reported: HashSet<(PathBuf, u32)> = raw
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.file.clone(), d.line))
        .collect();
    let mut diags = Diagnostics::default();
    diags.extend(raw);
    for issue in semantic_issues(&config) {
        let mut at = Some(issue.path.clone());
        let mut pos = None;
        while let Some(p) = at {
            if let Some(found) = positions.get(&p.to_string()) {
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
