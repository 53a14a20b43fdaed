//! Reading nginx configuration files and expanding `include`.
//!
//! nginx resolves a relative `include` path against its configuration prefix, which is the
//! directory of the main configuration file (`ngx_process_options`: conf_prefix = dirname of
//! `-c FILE`), not the directory of the including file. Globs that match nothing are fine;
//! a plain path that does not exist is an error ("open() failed"), except `mime.types`, for
//! which halo warns and uses its built-in table.

use super::lexer::{self, Node, Pos};
use crate::diagnostic::Diagnostic;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAX_INCLUDE_DEPTH: usize = 16;

/// How paths in the configuration are found on this machine.
pub(crate) struct PathRules<'a> {
    /// nginx's conf prefix: relative includes resolve here.
    pub(crate) conf_dir: PathBuf,
    /// Absolute path prefixes read from elsewhere (`/etc/nginx` -> `./examples/seed`).
    pub(crate) path_map: &'a [(PathBuf, PathBuf)],
}

impl PathRules<'_> {
    /// Where `written` (as it appears in the configuration) is on this machine.
    pub(crate) fn locate(&self, written: &str, relative_to: &Path) -> PathBuf {
        let path = Path::new(written);
        let full = if path.is_absolute() {
            path.to_path_buf()
        } else {
            relative_to.join(path)
        };
        for (from, to) in self.path_map {
            if let Ok(rest) = full.strip_prefix(from) {
                return to.join(rest);
            }
        }
        full
    }
}

/// Reads, tokenizes and parses `path`, expanding includes. Problems go to `diags`.
pub(crate) fn read_tree(
    path: &Path,
    rules: &PathRules<'_>,
    is_directive: &dyn Fn(&str) -> bool,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Node>> {
    let nodes = parse_file(path, is_directive, diags)?;
    Some(expand(nodes, rules, is_directive, 0, diags))
}

fn parse_file(
    path: &Path,
    is_directive: &dyn Fn(&str) -> bool,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Node>> {
    let text = match crate::keepalived::read_text(path) {
        Ok(t) => t,
        Err(d) => {
            diags.push(d);
            return None;
        }
    };
    let file: Arc<Path> = Arc::from(path);
    match lexer::tokenize(&text, &file) {
        Ok(tokens) => Some(lexer::parse(&tokens, is_directive, diags)),
        Err(d) => {
            diags.push(d);
            None
        }
    }
}

fn expand(
    nodes: Vec<Node>,
    rules: &PathRules<'_>,
    is_directive: &dyn Fn(&str) -> bool,
    depth: usize,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Node> {
    let mut out = Vec::new();
    for mut node in nodes {
        if node.name != "include" {
            if let Some(block) = node.block.take() {
                node.block = Some(expand(block, rules, is_directive, depth, diags));
            }
            out.push(node);
            continue;
        }
        let [pattern] = node.args.as_slice() else {
            diags.push(
                node.pos
                    .error(format!(
                        "invalid number of arguments in \"include\" directive ({})",
                        node.args.len()
                    ))
                    .expected("include FILE;"),
            );
            continue;
        };
        if node.block.is_some() {
            diags.push(
                node.pos
                    .error("\"include\" takes no block")
                    .expected("include FILE;"),
            );
            continue;
        }
        if depth >= MAX_INCLUDE_DEPTH {
            diags.push(node.pos.error(format!(
                "include nesting deeper than {MAX_INCLUDE_DEPTH} (include loop?)"
            )));
            continue;
        }
        let full = rules.locate(&pattern.text, &rules.conf_dir);
        out.extend(include_one(
            &node.pos,
            &pattern.text,
            &full,
            rules,
            is_directive,
            depth,
            diags,
        ));
    }
    out
}

fn include_one(
    at: &Pos,
    written: &str,
    full: &Path,
    rules: &PathRules<'_>,
    is_directive: &dyn Fn(&str) -> bool,
    depth: usize,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Node> {
    let is_glob = written.contains(['*', '?', '[']);
    let files: Vec<PathBuf> = if is_glob {
        match glob::glob(&full.to_string_lossy()) {
            Ok(paths) => {
                let mut m: Vec<PathBuf> = paths
                    .filter_map(Result::ok)
                    .filter(|p| p.is_file())
                    .collect();
                m.sort();
                m
            }
            Err(e) => {
                diags.push(at.error(format!("invalid include pattern \"{written}\": {e}")));
                return Vec::new();
            }
        }
    } else if full.is_file() {
        vec![full.to_path_buf()]
    } else if full.file_name().is_some_and(|n| n == "mime.types") {
        diags.push(at.warning(format!(
            "include {}: file not found; halo uses its built-in MIME type table",
            full.display()
        )));
        return Vec::new();
    } else {
        diags.push(
            at.error(format!("open() \"{}\" failed (No such file or directory)", full.display()))
                .expected("an existing file (relative paths are relative to the directory of the main configuration file)"),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for file in files {
        if let Some(nodes) = parse_file(&file, is_directive, diags) {
            out.extend(expand(nodes, rules, is_directive, depth + 1, diags));
        }
    }
    out
}
