//! keepalived.conf tokens and statement tree.
//!
//! Rules (keepalived.conf(5), "DESCRIPTION" and "Quoted strings"): `#` and `!` start a comment
//! anywhere outside quotes; words are separated by whitespace; `"` and `'` quote (the quotes are
//! removed and quoted parts join the word they touch); `\` escapes inside quotes; `{` and `}`
//! are tokens of their own. A statement is one line; a `{` at the end of it (or alone on the
//! next line) opens a block that the matching `}` closes.
//!
//! `include` (and `includer`/`includem`/`includew`/`includeb`/`includea`) splices the tokens of
//! every file its glob matches, resolved relative to the directory of the file that contains it.

use crate::diagnostic::Diagnostic;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Deepest include nesting before an include loop is assumed.
const MAX_INCLUDE_DEPTH: usize = 16;

pub(crate) use crate::diagnostic::Pos;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Word(String),
    Open,
    Close,
    EndOfLine,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) pos: Pos,
}

/// Splits `text` (the contents of `file`) into tokens, with the lexical errors found (an
/// unterminated quote ends at the end of its line, and tokenizing goes on); never panics.
pub(crate) fn tokenize(text: &str, file: &Arc<Path>) -> (Vec<Token>, Vec<Diagnostic>) {
    let mut tokens = Vec::new();
    let mut errors = Vec::new();
    for (line_index, line) in text.split('\n').enumerate() {
        let line_no = u32::try_from(line_index + 1).unwrap_or(u32::MAX);
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        let pos_at = |i: usize| Pos {
            file: file.clone(),
            line: line_no,
            col: u32::try_from(i + 1).unwrap_or(u32::MAX),
        };
        while i < chars.len() {
            let c = chars[i];
            if c.is_whitespace() {
                i += 1;
            } else if c == '#' || c == '!' {
                break;
            } else if c == '{' || c == '}' {
                let kind = if c == '{' {
                    TokenKind::Open
                } else {
                    TokenKind::Close
                };
                tokens.push(Token {
                    kind,
                    pos: pos_at(i),
                });
                i += 1;
            } else {
                let start = i;
                let mut word = String::new();
                while i < chars.len() {
                    let c = chars[i];
                    if c == '"' || c == '\'' {
                        let quote = c;
                        let open = i;
                        i += 1;
                        let mut closed = false;
                        while i < chars.len() {
                            let q = chars[i];
                            if q == quote {
                                closed = true;
                                i += 1;
                                break;
                            }
                            if q == '\\' && i + 1 < chars.len() {
                                word.push(unescape(chars[i + 1]));
                                i += 2;
                                continue;
                            }
                            word.push(q);
                            i += 1;
                        }
                        if !closed {
                            errors.push(
                                pos_at(open)
                                    .error(format!("unterminated {quote}-quoted string"))
                                    .expected(format!("a closing {quote} on the same line")),
                            );
                        }
                    } else if c.is_whitespace() || c == '{' || c == '}' || c == '#' || c == '!' {
                        break;
                    } else {
                        word.push(c);
                        i += 1;
                    }
                }
                tokens.push(Token {
                    kind: TokenKind::Word(word),
                    pos: pos_at(start),
                });
            }
        }
        tokens.push(Token {
            kind: TokenKind::EndOfLine,
            pos: pos_at(chars.len()),
        });
    }
    (tokens, errors)
}

fn unescape(c: char) -> char {
    match c {
        'n' => '\n',
        't' => '\t',
        'r' => '\r',
        'a' => '\u{7}',
        'b' => '\u{8}',
        'f' => '\u{c}',
        'v' => '\u{b}',
        'E' => '\u{1b}',
        other => other,
    }
}

/// Reads a file as text: binary data and invalid UTF-8 are errors with their position.
pub(crate) fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let bytes = std::fs::read(path).map_err(|e| {
        Diagnostic::error(path, 0, 0, format!("cannot read {}: {e}", path.display()))
    })?;
    text_from_bytes(path, bytes)
}

/// Checks that `bytes` are text (UTF-8, no NUL).
pub(crate) fn text_from_bytes(path: &Path, bytes: Vec<u8>) -> Result<String, Diagnostic> {
    if let Some(nul) = bytes.iter().position(|&b| b == 0) {
        let (line, col) = byte_line_col(&bytes, nul);
        return Err(Diagnostic::error(
            path,
            line,
            col,
            "binary data (NUL byte) in a configuration file",
        )
        .expected("a text file"));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let (line, col) = byte_line_col(e.as_bytes(), at);
        Diagnostic::error(path, line, col, "invalid UTF-8 in a configuration file")
            .expected("UTF-8 text")
    })
}

fn byte_line_col(bytes: &[u8], at: usize) -> (u32, u32) {
    let before = bytes.get(..at).unwrap_or(bytes);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(before.get(start..).unwrap_or_default())
        .chars()
        .count()
        + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

/// Tokens of `path` with every `include` expanded. All problems are pushed to `diags`.
pub(crate) fn tokenize_file_with_includes(path: &Path, diags: &mut Vec<Diagnostic>) -> Vec<Token> {
    let mut out = Vec::new();
    expand(path, 0, &mut out, diags);
    out
}

fn expand(path: &Path, depth: usize, out: &mut Vec<Token>, diags: &mut Vec<Diagnostic>) {
    let text = match read_text(path) {
        Ok(t) => t,
        Err(d) => {
            diags.push(d);
            return;
        }
    };
    let file: Arc<Path> = Arc::from(path);
    let (tokens, errors) = tokenize(&text, &file);
    diags.extend(errors);
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut iter = tokens.into_iter().peekable();
    let mut at_line_start = true;
    while let Some(token) = iter.next() {
        let is_include = at_line_start
            && matches!(&token.kind, TokenKind::Word(w) if matches!(w.as_str(),
                "include" | "includer" | "includem" | "includew" | "includeb" | "includea"));
        at_line_start = token.kind == TokenKind::EndOfLine;
        if !is_include {
            out.push(token);
            continue;
        }
        let mut args = Vec::new();
        for next in iter.by_ref() {
            if next.kind == TokenKind::EndOfLine {
                at_line_start = true;
                break;
            }
            args.push(next);
        }
        let pattern = match args.as_slice() {
            [Token {
                kind: TokenKind::Word(w),
                ..
            }] => w.clone(),
            _ => {
                diags.push(
                    token
                        .pos
                        .error("include needs exactly one file name or pattern")
                        .expected("include FILENAME"),
                );
                continue;
            }
        };
        if depth >= MAX_INCLUDE_DEPTH {
            diags.push(token.pos.error(format!(
                "include nesting deeper than {MAX_INCLUDE_DEPTH} (include loop?)"
            )));
            continue;
        }
        // keepalived.conf(5): relative paths are relative to the directory of the including file.
        let full: PathBuf = if Path::new(&pattern).is_absolute() {
            PathBuf::from(&pattern)
        } else {
            base.join(&pattern)
        };
        let is_glob = pattern.contains(['*', '?', '[']);
        let matches = match glob::glob(&full.to_string_lossy()) {
            Ok(paths) => {
                let mut m: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
                m.sort();
                m
            }
            Err(e) => {
                diags.push(
                    token
                        .pos
                        .error(format!("invalid include pattern \"{pattern}\": {e}")),
                );
                continue;
            }
        };
        if matches.is_empty() && !is_glob {
            diags.push(
                token
                    .pos
                    .error(format!("include file {} does not exist", full.display()))
                    .expected("an existing file (a pattern with * may match nothing)"),
            );
        }
        for m in matches {
            if m.is_file() {
                expand(&m, depth + 1, out, diags);
                out.push(Token {
                    kind: TokenKind::EndOfLine,
                    pos: token.pos.clone(),
                });
            }
        }
    }
}

/// A statement: its keyword, arguments, and block if it has one.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) pos: Pos,
    pub(crate) args: Vec<(String, Pos)>,
    pub(crate) block: Option<Vec<Node>>,
}

/// Builds the statement tree. Brace errors are reported; parsing continues where it can.
pub(crate) fn parse(tokens: Vec<Token>, diags: &mut Vec<Diagnostic>) -> Vec<Node> {
    let mut cursor = Cursor { tokens, at: 0 };
    parse_block(&mut cursor, None, diags)
}

struct Cursor {
    tokens: Vec<Token>,
    at: usize,
}

impl Cursor {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }
    fn skip_newlines(&mut self) {
        while self.peek().is_some_and(|t| t.kind == TokenKind::EndOfLine) {
            self.at += 1;
        }
    }
}

fn parse_block(
    cursor: &mut Cursor,
    opened_at: Option<&Pos>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Node> {
    let mut nodes = Vec::new();
    loop {
        cursor.skip_newlines();
        let Some(token) = cursor.next() else {
            if let Some(open) = opened_at {
                diags.push(
                    open.error("unbalanced braces: this { is never closed")
                        .expected("}"),
                );
            }
            return nodes;
        };
        match token.kind {
            TokenKind::Close => {
                if opened_at.is_some() {
                    return nodes;
                }
                diags.push(token.pos.error("unbalanced braces: } without a matching {"));
            }
            TokenKind::Open => {
                diags.push(
                    token
                        .pos
                        .error("{ without a keyword before it")
                        .expected("KEYWORD {"),
                );
                // Parse and drop the anonymous block so its } does not unbalance the rest.
                parse_block(cursor, Some(&token.pos), diags);
            }
            TokenKind::EndOfLine => {}
            TokenKind::Word(name) => {
                let mut args = Vec::new();
                while let Some(t) = cursor.peek() {
                    match &t.kind {
                        TokenKind::Word(w) => {
                            args.push((w.clone(), t.pos.clone()));
                            cursor.at += 1;
                        }
                        _ => break,
                    }
                }
                // A `{` on this line or alone at the start of the next opens a block.
                let save = cursor.at;
                cursor.skip_newlines();
                let block = match cursor.peek() {
                    Some(t) if t.kind == TokenKind::Open => {
                        let open = t.pos.clone();
                        cursor.at += 1;
                        Some(parse_block(cursor, Some(&open), diags))
                    }
                    _ => {
                        cursor.at = save;
                        None
                    }
                };
                nodes.push(Node {
                    name,
                    pos: token.pos,
                    args,
                    block,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let file: Arc<Path> = Arc::from(Path::new("t.conf"));
        tokenize(text, &file)
            .0
            .into_iter()
            .filter_map(|t| match t.kind {
                TokenKind::Word(w) => Some(w),
                TokenKind::Open => Some("{".into()),
                TokenKind::Close => Some("}".into()),
                TokenKind::EndOfLine => None,
            })
            .collect()
    }

    #[test]
    fn quotes_join_and_comments_cut() {
        // keepalived.conf(5) "Quoted strings" examples.
        assert_eq!(
            words("abcd\" efg h jkl \"mnop"),
            vec!["abcd efg h jkl mnop"]
        );
        assert_eq!(
            words("abcd \"efg h jkl\" mnop"),
            vec!["abcd", "efg h jkl", "mnop"]
        );
        assert_eq!(words("a ! b\nc # d"), vec!["a", "c"]);
        assert_eq!(words("x \"a#b\""), vec!["x", "a#b"]);
        assert_eq!(words("g{a}"), vec!["g", "{", "a", "}"]);
    }

    #[test]
    fn every_unterminated_quote_is_reported() {
        let file: Arc<Path> = Arc::from(Path::new("t.conf"));
        let (tokens, errors) = tokenize("a \"x\nb 'y\nc\n", &file);
        let lines: Vec<u32> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 2]);
        assert!(tokens.iter().any(|t| t.kind == TokenKind::Word("c".into())));
    }

    #[test]
    fn blocks_nest_and_one_line_blocks_close() {
        let file: Arc<Path> = Arc::from(Path::new("t.conf"));
        let mut diags = Vec::new();
        let nodes = parse(
            tokenize("a {\n b 1\n c { d }\n}\ne\n{\nf\n}\n", &file).0,
            &mut diags,
        );
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(nodes.len(), 2);
        let a = nodes[0].block.as_ref().unwrap();
        assert_eq!(a[0].name, "b");
        assert_eq!(a[1].block.as_ref().unwrap()[0].name, "d");
        assert_eq!(nodes[1].block.as_ref().unwrap()[0].name, "f");
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes: tokenizing and building the tree never panic (smoltcp-style codec rule).
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let text = String::from_utf8_lossy(&bytes);
            let file: Arc<Path> = Arc::from(Path::new("fuzz.conf"));
            let (tokens, mut diags) = tokenize(&text, &file);
            let nodes = parse(tokens, &mut diags);
            let _ = super::super::import::import(&nodes, &mut diags);
        }

        /// Keepalived-shaped text reaches deeper into the parser and importer.
        #[test]
        fn config_shaped_text_never_panics(parts in proptest::collection::vec(prop_oneof![
            Just("{"), Just("}"), Just("\n"), Just(" "), Just("\""), Just("'"), Just("!"), Just("#"),
            Just("vrrp_instance"), Just("VI_1"), Just("virtual_router_id"), Just("priority"),
            Just("advert_int"), Just("0.5"), Just("300"), Just("virtual_ipaddress"), Just("1.2.3.4/33"),
            Just("track_script"), Just("weight"), Just("-254"), Just("global_defs"), Just("vrrp_strict"),
            Just("authentication"), Just("auth_type"), Just("PASS"), Just("auth_pass"), Just("interface"),
            Just("vrrp_script"), Just("script"), Just("vrrp_sync_group"), Just("group"), Just("\\"),
        ], 0..200)) {
            let text: String = parts.concat();
            let file: Arc<Path> = Arc::from(Path::new("fuzz.conf"));
            let (tokens, mut diags) = tokenize(&text, &file);
            let nodes = parse(tokens, &mut diags);
            let imported = super::super::import::import(&nodes, &mut diags);
            let _ = crate::vrrp_validate::validate(&imported.vrrp, &crate::field_path::FieldPath::root("vrrp"));
        }
    }
}
