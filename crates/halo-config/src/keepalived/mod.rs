//! The keepalived.conf importer: keepalived 2.2 syntax -> [`Config`] with keepalived's semantics,
//! plus a warning for each directive halo does not implement (what halo does instead).

mod import;
mod lexer;

pub(crate) use lexer::{read_text, text_from_bytes};

use crate::diagnostic::Diagnostic;
use crate::import_validation::finish_import;
use crate::{Config, LoadResult};
use std::path::Path;

/// Imports a keepalived.conf (and the files it `include`s, relative to the including file's
/// directory as keepalived does). The result has no HTTP side.
pub fn import_keepalived(path: &Path) -> LoadResult {
    let mut raw: Vec<Diagnostic> = Vec::new();
    let tokens = lexer::tokenize_file_with_includes(path, &mut raw);
    let nodes = lexer::parse(tokens, &mut raw);
    let imported = import::import(&nodes, &mut raw);
    let config = Config {
        vrrp: imported.vrrp,
        ..Config::default()
    };
    finish_import(path, raw, &imported.positions, config)
}
