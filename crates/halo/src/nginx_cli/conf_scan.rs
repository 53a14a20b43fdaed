//! A light reading of nginx.conf for what belongs to the process rather than to the proxy: the
//! main-context directives (`pid`, `error_log`, `daemon`, ...) and the list of files the
//! configuration is made of (for `-T`), following `include` at every level.
//!
//! halo-config's importer is the one judge of the configuration: it reports every syntax error.
//! This reader is lenient on purpose: on anything it cannot read it stops quietly, and the
//! importer's errors say what is wrong.

use std::path::{Path, PathBuf};

/// One main-context directive with its arguments (quotes removed) and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub args: Vec<String>,
    /// The file, or `None` for the command line (`-g`).
    pub file: Option<PathBuf>,
    pub line: u32,
}

impl Directive {
    /// nginx's way of naming a position: `in FILE:LINE` or `in command line`.
    pub fn place(&self) -> String {
        match &self.file {
            Some(f) => format!("in {}:{}", f.display(), self.line),
            None => "in command line".to_string(),
        }
    }
}

/// What reading the files found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Main-context simple directives, in order.
    pub main: Vec<Directive>,
    /// Every file read, with its text, in the order nginx reads them.
    pub files: Vec<(PathBuf, String)>,
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String, u32),
    Semicolon,
    Open,
    Close,
}

/// Splits nginx.conf text into words and punctuation. `Err` on an unterminated quote.
fn tokenize(text: &str) -> Result<Vec<Token>, u32> {
    let mut tokens = Vec::new();
    let mut line = 1u32;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                        break;
                    }
                }
            }
            ';' => tokens.push(Token::Semicolon),
            '{' => tokens.push(Token::Open),
            '}' => tokens.push(Token::Close),
            '"' | '\'' => {
                let (quote, start) = (c, line);
                let mut word = String::new();
                loop {
                    match chars.next() {
                        None => return Err(start),
                        Some(c) if c == quote => break,
                        Some('\\') => match chars.next() {
                            Some(n @ ('"' | '\'' | '\\')) => word.push(n),
                            Some('n') => word.push('\n'),
                            Some('t') => word.push('\t'),
                            Some('r') => word.push('\r'),
                            Some(n) => {
                                word.push('\\');
                                word.push(n);
                            }
                            None => return Err(start),
                        },
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            word.push(c);
                        }
                    }
                }
                tokens.push(Token::Word(word, start));
            }
            c => {
                let mut word = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, ';' | '}') {
                        break;
                    }
                    // `{` ends a word except in a `${name}` variable.
                    if n == '{' && !word.ends_with('$') {
                        break;
                    }
                    chars.next();
                    word.push(n);
                    if n == '{' {
                        for v in chars.by_ref() {
                            word.push(v);
                            if v == '}' {
                                break;
                            }
                        }
                    }
                }
                tokens.push(Token::Word(word, line));
            }
        }
    }
    Ok(tokens)
}

/// Main-context directives of `-g` text. `Err` with nginx's message when it is not a list of
/// `name args;` directives.
pub fn scan_globals(text: &str) -> Result<Vec<Directive>, String> {
    let tokens = tokenize(text).map_err(|_| "unexpected end of parameter".to_string())?;
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    for t in tokens {
        match t {
            Token::Word(w, _) => words.push(w),
            Token::Semicolon => {
                let mut it = std::mem::take(&mut words).into_iter();
                match it.next() {
                    Some(name) => out.push(Directive {
                        name,
                        args: it.collect(),
                        file: None,
                        line: 0,
                    }),
                    None => return Err("unexpected \";\"".to_string()),
                }
            }
            Token::Open | Token::Close => {
                return Err("blocks are not allowed in -g directives".to_string())
            }
        }
    }
    if !words.is_empty() {
        return Err("unexpected end of parameter, expecting \";\"".to_string());
    }
    Ok(out)
}

/// Reads `conf` and the files it includes. `Err` (nginx's wording) only when `conf` itself
/// cannot be read.
pub fn scan_files(conf: &Path) -> Result<Scan, String> {
    let conf_dir = conf.parent().unwrap_or(Path::new("/")).to_path_buf();
    let mut scan = Scan::default();
    let text = std::fs::read_to_string(conf).map_err(|e| {
        format!(
            "open() \"{}\" failed ({})",
            conf.display(),
            super::errno_text(&e)
        )
    })?;
    read_file(conf, text, &conf_dir, 0, 0, &mut scan);
    Ok(scan)
}

/// Include nesting beyond which files are not followed (an include loop).
const MAX_INCLUDE_DEPTH: usize = 16;

fn read_file(
    path: &Path,
    text: String,
    conf_dir: &Path,
    block_depth: usize,
    include_depth: usize,
    scan: &mut Scan,
) {
    let tokens = tokenize(&text).unwrap_or_default();
    scan.files.push((path.to_path_buf(), text));
    let mut depth = block_depth;
    let mut words: Vec<(String, u32)> = Vec::new();
    for t in tokens {
        match t {
            Token::Word(w, line) => words.push((w, line)),
            Token::Open => {
                words.clear();
                depth += 1;
            }
            Token::Close => {
                words.clear();
                if depth == block_depth {
                    return;
                }
                depth -= 1;
            }
            Token::Semicolon => {
                let mut it = std::mem::take(&mut words).into_iter();
                let Some((name, line)) = it.next() else {
                    continue;
                };
                let args: Vec<String> = it.map(|(w, _)| w).collect();
                if name == "include" {
                    if let [pattern] = args.as_slice() {
                        if include_depth < MAX_INCLUDE_DEPTH {
                            for file in expand_include(pattern, conf_dir) {
                                if let Ok(text) = std::fs::read_to_string(&file) {
                                    read_file(
                                        &file,
                                        text,
                                        conf_dir,
                                        depth,
                                        include_depth + 1,
                                        scan,
                                    );
                                }
                            }
                        }
                    }
                } else if depth == 0 {
                    scan.main.push(Directive {
                        name,
                        args,
                        file: Some(path.to_path_buf()),
                        line,
                    });
                }
            }
        }
    }
}

/// The files an `include` names: relative to the configuration directory; a `*` or `?` in the
/// last path component matches names in that directory, in sorted order (nginx's glob).
fn expand_include(pattern: &str, conf_dir: &Path) -> Vec<PathBuf> {
    let full = conf_dir.join(pattern);
    let name = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return vec![full];
    }
    let dir = full.parent().unwrap_or(Path::new("/"));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            !n.starts_with('.') && glob_match(name.as_bytes(), n.as_bytes())
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// `*` and `?` matching of one file name.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|skip| glob_match(rest, &name[skip..])),
        Some((b'?', rest)) => !name.is_empty() && glob_match(rest, &name[1..]),
        Some((c, rest)) => name.first() == Some(c) && glob_match(rest, &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn main_context_directives_are_found_through_includes() {
        let d = std::env::temp_dir().join(format!("halo-conf-scan-{}", std::process::id()));
        std::fs::create_dir_all(d.join("mods")).unwrap();
        std::fs::write(
            d.join("nginx.conf"),
            "# comment { ;\npid \"/run/x.pid\";\ninclude mods/*.conf;\nevents { }\n\
             http {\n  error_log inner.log;\n  include http.inc;\n  return 200 \"${a} }\";\n}\n\
             error_log logs/e.log debug;\n",
        )
        .unwrap();
        std::fs::write(d.join("mods/a.conf"), "daemon off;\n").unwrap();
        std::fs::write(d.join("mods/b.txt"), "daemon on;\n").unwrap();
        std::fs::write(d.join("http.inc"), "server { listen 80; }\n").unwrap();
        let scan = scan_files(&d.join("nginx.conf")).unwrap();
        let names: Vec<(&str, Vec<&str>, u32)> = scan
            .main
            .iter()
            .map(|x| {
                (
                    x.name.as_str(),
                    x.args.iter().map(String::as_str).collect(),
                    x.line,
                )
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("pid", vec!["/run/x.pid"], 2),
                ("daemon", vec!["off"], 1),
                ("error_log", vec!["logs/e.log", "debug"], 10),
            ]
        );
        let files: Vec<String> = scan
            .files
            .iter()
            .map(|(p, _)| p.strip_prefix(&d).unwrap().display().to_string())
            .collect();
        assert_eq!(files, ["nginx.conf", "mods/a.conf", "http.inc"]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn globals_are_directives_ending_in_semicolons() {
        let g = scan_globals("pid /t/nginx.pid; error_log /t/error.log debug;").unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g[1].args, ["/t/error.log", "debug"]);
        assert_eq!(g[1].place(), "in command line");
        assert_eq!(
            scan_globals("daemon off").unwrap_err(),
            "unexpected end of parameter, expecting \";\""
        );
        assert!(scan_globals("events { }").is_err());
    }
}
