//! nginx.conf tokens and directive tree, following `ngx_conf_read_token`/`ngx_conf_parse`
//! (nginx: src/core/ngx_conf_file.c):
//!
//! - words are separated by whitespace; `;` ends a directive, `{` opens a block, `}` closes one;
//!   `;` and `{` also end a word, `}` does not (`a}` is one word, as in nginx);
//! - `#` starts a comment only at the start of a word;
//! - `"..."` and `'...'` quote a whole word and must be followed by a separator;
//! - `\` escapes the next character; `\"`, `\'`, `\\` lose the backslash, `\t` `\r` `\n`
//!   become control characters, any other `\x` stays as written (nginx keeps it);
//! - `${name}` inside a word: that `{` does not open a block.

use crate::diagnostic::Diagnostic;
use std::path::Path;
use std::sync::Arc;

pub(crate) use crate::diagnostic::Pos;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Word(String),
    Semicolon,
    Open,
    Close,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: Kind,
    pub(crate) pos: Pos,
    /// Position just after the token (for "missing ;" messages).
    pub(crate) end: Pos,
}

/// Splits nginx configuration text into tokens; stops at the first lexical error.
pub(crate) fn tokenize(text: &str, file: &Arc<Path>) -> Result<Vec<Token>, Diagnostic> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let mut line: u32 = 1;
    let mut col: u32 = 1;
    // Advances over chars[i], tracking line and column.
    macro_rules! bump {
        () => {{
            if chars.get(i) == Some(&'\n') {
                line = line.saturating_add(1);
                col = 1;
            } else {
                col = col.saturating_add(1);
            }
            i += 1;
        }};
    }
    let pos = |line: u32, col: u32| Pos {
        file: file.clone(),
        line,
        col,
    };
    while let Some(&c) = chars.get(i) {
        let start = pos(line, col);
        match c {
            ' ' | '\t' | '\r' | '\n' => bump!(),
            '#' => {
                while chars.get(i).is_some_and(|&c| c != '\n') {
                    bump!();
                }
            }
            ';' | '{' | '}' => {
                bump!();
                let kind = match c {
                    ';' => Kind::Semicolon,
                    '{' => Kind::Open,
                    _ => Kind::Close,
                };
                tokens.push(Token {
                    kind,
                    pos: start,
                    end: pos(line, col),
                });
            }
            '"' | '\'' => {
                let quote = c;
                bump!();
                let mut word = String::new();
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(start
                                .error(format!("unexpected end of file in a {quote}-quoted string"))
                                .expected(format!("a closing {quote}")));
                        }
                        Some(&q) if q == quote => {
                            bump!();
                            break;
                        }
                        Some('\\') => {
                            bump!();
                            match chars.get(i) {
                                Some(&e) => {
                                    push_escaped(&mut word, e);
                                    bump!();
                                }
                                None => continue,
                            }
                        }
                        Some(&q) => {
                            word.push(q);
                            bump!();
                        }
                    }
                }
                // nginx: a quoted word must be followed by a separator.
                if let Some(&next) = chars.get(i) {
                    if !matches!(next, ' ' | '\t' | '\r' | '\n' | ';' | '{' | '}' | ')') {
                        return Err(pos(line, col)
                            .error(format!("unexpected \"{next}\" after a quoted string"))
                            .expected("a space, \";\" or \"{\""));
                    }
                }
                tokens.push(Token {
                    kind: Kind::Word(word),
                    pos: start,
                    end: pos(line, col),
                });
            }
            _ => {
                let mut word = String::new();
                let mut previous = '\0';
                while let Some(&w) = chars.get(i) {
                    if matches!(w, ' ' | '\t' | '\r' | '\n' | ';') {
                        break;
                    }
                    if w == '{' {
                        if previous != '$' {
                            break;
                        }
                        // `${name}`: keep the braces as part of the word.
                        word.push('{');
                        bump!();
                        while let Some(&v) = chars.get(i) {
                            word.push(v);
                            bump!();
                            if v == '}' {
                                break;
                            }
                        }
                        previous = '}';
                        continue;
                    }
                    if w == '\\' {
                        bump!();
                        if let Some(&e) = chars.get(i) {
                            push_escaped(&mut word, e);
                            bump!();
                        }
                        previous = '\\';
                        continue;
                    }
                    word.push(w);
                    previous = w;
                    bump!();
                }
                tokens.push(Token {
                    kind: Kind::Word(word),
                    pos: start,
                    end: pos(line, col),
                });
            }
        }
    }
    Ok(tokens)
}

fn push_escaped(word: &mut String, c: char) {
    match c {
        '"' | '\'' | '\\' => word.push(c),
        't' => word.push('\t'),
        'r' => word.push('\r'),
        'n' => word.push('\n'),
        other => {
            word.push('\\');
            word.push(other);
        }
    }
}

/// One argument of a directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Arg {
    pub(crate) text: String,
    pub(crate) pos: Pos,
}

/// A directive: `name args... ;` or `name args... { block }`.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) pos: Pos,
    pub(crate) args: Vec<Arg>,
    pub(crate) block: Option<Vec<Node>>,
}

/// Builds the directive tree; every structural error is reported, parsing goes on where it can.
/// `is_directive` tells known directive names (used to spot a missing `;`).
pub(crate) fn parse(
    tokens: &[Token],
    is_directive: &dyn Fn(&str) -> bool,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Node> {
    let mut at = 0;
    parse_block(tokens, &mut at, None, is_directive, diags)
}

fn parse_block(
    tokens: &[Token],
    at: &mut usize,
    opened: Option<&Pos>,
    is_directive: &dyn Fn(&str) -> bool,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Node> {
    let mut nodes = Vec::new();
    let mut words: Vec<&Token> = Vec::new();
    loop {
        let Some(token) = tokens.get(*at) else {
            if let Some(last) = words.last() {
                diags.push(
                    last.end
                        .error(format!(
                            "unexpected end of file after \"{}\"",
                            word_of(last)
                        ))
                        .expected("\";\" or \"}\""),
                );
            } else if let Some(open) = opened {
                diags.push(
                    open.error("unexpected end of file: this \"{\" is never closed")
                        .expected("\"}\""),
                );
            }
            return nodes;
        };
        *at += 1;
        match &token.kind {
            Kind::Word(_) => words.push(token),
            Kind::Semicolon | Kind::Open => {
                if words.is_empty() {
                    let c = if token.kind == Kind::Semicolon {
                        ";"
                    } else {
                        "{"
                    };
                    diags.push(
                        token
                            .pos
                            .error(format!("unexpected \"{c}\""))
                            .expected("a directive name"),
                    );
                    if token.kind == Kind::Open {
                        parse_block(tokens, at, Some(&token.pos), is_directive, diags);
                    }
                    continue;
                }
                let statements = split_missing_semicolons(&words, is_directive, diags);
                words.clear();
                let count = statements.len();
                for (n, statement) in statements.into_iter().enumerate() {
                    let block = if n + 1 == count && token.kind == Kind::Open {
                        Some(parse_block(
                            tokens,
                            at,
                            Some(&token.pos),
                            is_directive,
                            diags,
                        ))
                    } else {
                        None
                    };
                    nodes.extend(make_node(&statement, block));
                }
            }
            Kind::Close => {
                if let Some(last) = words.last() {
                    diags.push(
                        last.end
                            .error(format!("unexpected \"}}\" after \"{}\"", word_of(last)))
                            .expected("\";\""),
                    );
                    words.clear();
                }
                if opened.is_some() {
                    return nodes;
                }
                diags.push(token.pos.error("unexpected \"}\": no block is open"));
            }
        }
    }
}

fn word_of(token: &Token) -> &str {
    match &token.kind {
        Kind::Word(w) => w,
        _ => "",
    }
}

/// `listen 80\n server_name x;` is one directive to nginx ("invalid parameter"); when a later
/// line starts with a known directive name, report the missing `;` there and split.
fn split_missing_semicolons<'t>(
    words: &[&'t Token],
    is_directive: &dyn Fn(&str) -> bool,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Vec<&'t Token>> {
    let mut statements: Vec<Vec<&Token>> = vec![Vec::new()];
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            let prev = words[i - 1];
            let new_line = word.pos.line != prev.pos.line || word.pos.file != prev.pos.file;
            if new_line && is_directive(word_of(word)) {
                diags.push(
                    prev.end
                        .error(format!(
                            "missing \";\" after \"{}\" (the next line starts the directive \"{}\")",
                            word_of(prev),
                            word_of(word)
                        ))
                        .expected("\";\""),
                );
                statements.push(Vec::new());
            }
        }
        if let Some(last) = statements.last_mut() {
            last.push(word);
        }
    }
    statements
}

fn make_node(words: &[&Token], block: Option<Vec<Node>>) -> Option<Node> {
    let (first, rest) = words.split_first()?;
    Some(Node {
        name: word_of(first).to_string(),
        pos: first.pos.clone(),
        args: rest
            .iter()
            .map(|t| Arg {
                text: word_of(t).to_string(),
                pos: t.pos.clone(),
            })
            .collect(),
        block,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn words(text: &str) -> Vec<String> {
        let file: Arc<Path> = Arc::from(Path::new("n.conf"));
        tokenize(text, &file)
            .unwrap()
            .into_iter()
            .map(|t| match t.kind {
                Kind::Word(w) => w,
                Kind::Semicolon => ";".into(),
                Kind::Open => "{".into(),
                Kind::Close => "}".into(),
            })
            .collect()
    }

    #[test]
    fn nginx_token_rules() {
        assert_eq!(words("a b;c{d}"), vec!["a", "b", ";", "c", "{", "d}"]);
        assert_eq!(words("a#b # c\nd;"), vec!["a#b", "d", ";"]);
        assert_eq!(words("x \"a b\\\"c\" 'd';"), vec!["x", "a b\"c", "d", ";"]);
        assert_eq!(words("x ${host}y;"), vec!["x", "${host}y", ";"]);
        // nginx keeps the backslash of an escape it does not know, but the space stays in the word.
        assert_eq!(words("x a\\ b \\d;"), vec!["x", "a\\ b", "\\d", ";"]);
    }

    #[test]
    fn quoted_word_needs_a_separator() {
        let file: Arc<Path> = Arc::from(Path::new("n.conf"));
        let e = tokenize("x \"a\"b;", &file).unwrap_err();
        assert_eq!((e.line, e.col), (1, 6));
    }

    #[test]
    fn missing_semicolon_is_found_on_the_next_directive() {
        let file: Arc<Path> = Arc::from(Path::new("n.conf"));
        let tokens = tokenize("server {\n listen 80\n server_name a;\n}\n", &file).unwrap();
        let mut diags = Vec::new();
        let nodes = parse(&tokens, &|w| w == "server_name", &mut diags);
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!((diags[0].line, diags[0].col), (2, 11));
        let block = nodes[0].block.as_ref().unwrap();
        assert_eq!(block.len(), 2);
        assert_eq!(block[1].name, "server_name");
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    fn known(name: &str) -> bool {
        super::super::directives::is_known(name)
    }

    proptest! {
        /// Any bytes: tokenizing and building the tree never panic.
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let text = String::from_utf8_lossy(&bytes);
            let file: Arc<Path> = Arc::from(Path::new("fuzz.conf"));
            if let Ok(tokens) = tokenize(&text, &file) {
                let mut diags = Vec::new();
                let _ = parse(&tokens, &known, &mut diags);
            }
        }

        /// nginx-shaped text through the tokenizer, the tree and the importer.
        #[test]
        fn config_shaped_text_never_panics(parts in proptest::collection::vec(prop_oneof![
            Just("{"), Just("}"), Just(";"), Just("\n"), Just(" "), Just("\""), Just("'"), Just("#"),
            Just("\\"), Just("$"), Just("${"), Just("http"), Just("server"), Just("location"), Just("="),
            Just("~*"), Just("/"), Just("upstream"), Just("u"), Just("listen"), Just("80x"), Just("[::1]:"),
            Just("proxy_pass"), Just("http://u"), Just("http://1.2.3.4:8080/x"), Just("limit_conn"),
            Just("limit_conn_zone"), Just("zone=z:10m"), Just("error_page"), Just("404"), Just("=200"),
            Just("return"), Just("301"), Just("add_header"), Just("access_log"), Just("off"),
            Just("ip_hash"), Just("weight=0"), Just("max_fails=x"), Just("auth_basic"), Just("events"),
            Just("worker_connections"), Just("map"), Just("if"),
        ], 0..200)) {
            let text: String = parts.concat();
            let file: Arc<Path> = Arc::from(Path::new("/nonexistent/fuzz.conf"));
            if let Ok(tokens) = tokenize(&text, &file) {
                let mut diags = Vec::new();
                let nodes = parse(&tokens, &known, &mut diags);
                let rules = super::super::include::PathRules { conf_dir: "/nonexistent".into(), path_map: &[] };
                let imported = super::super::import::import(&nodes, super::super::import::Paths {
                    prefix: "/nonexistent".into(),
                    conf_dir: "/nonexistent".into(),
                    rules: &rules,
                    resolve_names: false,
                });
                if let Some(http) = imported.http {
                    let _ = http.validate();
                }
            }
        }
    }
}
