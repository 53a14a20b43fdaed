//! nginx's rewrite-module directives (`set`, `if`, `rewrite`, `break`, and `return` among
//! them) -> [`RewriteOp`]s, kept in configuration order.

use super::{Arg, Importer, Node};
use crate::rewrite::{Condition, FileTest, RewriteFlag, RewriteOp};

/// The directives of the rewrite module this importer turns into operations (`return` is
/// handled by the caller, which knows whether it is the location's whole content).
pub(super) fn is_rewrite_directive(name: &str) -> bool {
    matches!(
        name,
        "set" | "if" | "rewrite" | "break" | "rewrite_log" | "uninitialized_variable_warn"
    )
}

impl Importer<'_> {
    /// One rewrite-module directive as an operation; `None` when it was reported or has no
    /// operation (`rewrite_log`).
    pub(super) fn rewrite_op(&mut self, node: &Node) -> Option<RewriteOp> {
        match node.name.as_str() {
            "set" => {
                if !self.no_block(node) {
                    return None;
                }
                match node.args.as_slice() {
                    [var, value] => match var.text.strip_prefix('$') {
                        Some(name)
                            if !name.is_empty()
                                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
                        {
                            Some(RewriteOp::Set {
                                var: name.to_owned(),
                                value: value.text.clone(),
                            })
                        }
                        _ => {
                            self.err(
                                &var.pos,
                                format!("invalid variable name \"{}\"", var.text),
                                Some("$name"),
                            );
                            None
                        }
                    },
                    _ => {
                        self.err(
                            &node.pos,
                            "invalid number of arguments in \"set\" directive",
                            Some("set $variable value;"),
                        );
                        None
                    }
                }
            }
            "rewrite" => {
                if !self.no_block(node) {
                    return None;
                }
                let (regex, replacement, flag) = match node.args.as_slice() {
                    [r, t] => (r, t, RewriteFlag::None),
                    [r, t, f] => {
                        let flag = match f.text.as_str() {
                            "last" => RewriteFlag::Last,
                            "break" => RewriteFlag::Break,
                            "redirect" => RewriteFlag::Redirect,
                            "permanent" => RewriteFlag::Permanent,
                            other => {
                                self.err(
                                    &f.pos,
                                    format!("invalid parameter \"{other}\""),
                                    Some("last, break, redirect or permanent"),
                                );
                                return None;
                            }
                        };
                        (r, t, flag)
                    }
                    _ => {
                        self.err(
                            &node.pos,
                            "invalid number of arguments in \"rewrite\" directive",
                            Some("rewrite REGEX REPLACEMENT [FLAG];"),
                        );
                        return None;
                    }
                };
                Some(RewriteOp::Rewrite {
                    regex: regex.text.clone(),
                    replacement: replacement.text.clone(),
                    flag,
                })
            }
            "break" => {
                if self.no_block(node) && !node.args.is_empty() {
                    self.err(
                        &node.pos,
                        "invalid number of arguments in \"break\" directive",
                        Some("break;"),
                    );
                    return None;
                }
                Some(RewriteOp::Break)
            }
            "if" => self.if_op(node),
            "rewrite_log" => {
                if self.flag(node) == Some(true) {
                    self.warn(
                        node,
                        "rewrite_log: halo does not log rewrite steps; ignored",
                    );
                }
                None
            }
            "uninitialized_variable_warn" => {
                // halo renders an unset variable as empty, silently, as with this off.
                let _ = self.flag(node);
                None
            }
            _ => None,
        }
    }

    /// `if (CONDITION) { rewrite-module directives }`.
    fn if_op(&mut self, node: &Node) -> Option<RewriteOp> {
        let Some(block) = &node.block else {
            self.err(
                &node.pos,
                "directive \"if\" has no opening \"{\"",
                Some("{"),
            );
            return None;
        };
        let condition = self.condition(node)?;
        let mut then = Vec::new();
        for child in block {
            if child.name == "return" {
                if let Some(crate::http::LocationAction::Return { code, text }) =
                    self.return_action(child)
                {
                    then.push(RewriteOp::Return { code, text });
                }
            } else if child.name == "if" {
                self.err(&child.pos, "\"if\" directive is not allowed here", None);
            } else if is_rewrite_directive(&child.name) {
                then.extend(self.rewrite_op(child));
            } else {
                self.err(
                    &child.pos,
                    format!("\"{}\" inside \"if\" is not supported by halo", child.name),
                    Some("set, rewrite, return or break (put other directives in a location)"),
                );
            }
        }
        Some(RewriteOp::If { condition, then })
    }

    /// The `( ... )` of an `if`: nginx's lexer leaves the parentheses on the first and last
    /// words (or as words of their own).
    fn condition(&mut self, node: &Node) -> Option<Condition> {
        let mut args: Vec<Arg> = node.args.clone();
        let bad = |imp: &mut Self| {
            imp.err(
                &node.pos,
                "invalid condition in \"if\" directive",
                Some("($var), ($var = value), ($var ~ regex), (-f path), ..."),
            );
            None
        };
        match args.first_mut() {
            Some(first) if first.text.starts_with('(') => {
                first.text.remove(0);
            }
            _ => return bad(self),
        }
        match args.last_mut() {
            Some(last) if last.text.ends_with(')') => {
                last.text.pop();
            }
            _ => return bad(self),
        }
        // A parenthesis written as a word of its own leaves an empty word; a quoted empty
        // string (`($a = "")`) stays a value.
        if args.last().is_some_and(|a| a.text.is_empty()) && args.len() > 1 {
            args.pop();
        }
        if args.first().is_some_and(|a| a.text.is_empty()) && args.len() > 1 {
            args.remove(0);
        }
        let text = |a: &Arg| a.text.clone();
        Some(match args.as_slice() {
            [value] => Condition::Value { value: text(value) },
            [op, path] if op.text.trim_start_matches('!').starts_with('-') => {
                let negate = op.text.starts_with('!');
                let test = match op.text.trim_start_matches('!') {
                    "-f" => FileTest::File,
                    "-d" => FileTest::Directory,
                    "-e" => FileTest::Exists,
                    "-x" => FileTest::Executable,
                    other => {
                        self.err(
                            &op.pos,
                            format!("unknown file test \"{other}\""),
                            Some("-f, -d, -e or -x"),
                        );
                        return None;
                    }
                };
                Condition::File {
                    test,
                    path: text(path),
                    negate,
                }
            }
            [value, op, other] => match op.text.as_str() {
                "=" => Condition::Equals {
                    value: text(value),
                    other: text(other),
                    negate: false,
                },
                "!=" => Condition::Equals {
                    value: text(value),
                    other: text(other),
                    negate: true,
                },
                "~" | "~*" | "!~" | "!~*" => Condition::Regex {
                    value: text(value),
                    pattern: text(other),
                    case_insensitive: op.text.ends_with('*'),
                    negate: op.text.starts_with('!'),
                },
                _ => return bad(self),
            },
            _ => return bad(self),
        })
    }
}

impl Importer<'_> {
    /// `map SOURCE $VARIABLE { [default V;] [hostnames;] [volatile;] KEY VALUE; ... }`.
    pub(super) fn map(&mut self, node: &Node) -> Option<crate::rewrite::MapConfig> {
        let [source, variable] = node.args.as_slice() else {
            self.err(
                &node.pos,
                "invalid number of arguments in \"map\" directive",
                Some("map SOURCE $VARIABLE { ... }"),
            );
            return None;
        };
        let Some(name) = variable.text.strip_prefix('$').filter(|n| !n.is_empty()) else {
            self.err(
                &variable.pos,
                format!("invalid variable name \"{}\"", variable.text),
                Some("$name"),
            );
            return None;
        };
        let Some(block) = &node.block else {
            self.err(
                &node.pos,
                "directive \"map\" has no opening \"{\"",
                Some("{"),
            );
            return None;
        };
        let mut map = crate::rewrite::MapConfig {
            source: source.text.clone(),
            variable: name.to_owned(),
            default: String::new(),
            hostnames: false,
            entries: Vec::new(),
        };
        for entry in block {
            match (entry.name.as_str(), entry.args.as_slice()) {
                ("hostnames", []) => map.hostnames = true,
                // halo evaluates a map once per request anyway, like nginx without caching.
                ("volatile", []) => {}
                ("default", [value]) => map.default = value.text.clone(),
                ("include", [_]) => {
                    self.err(
                        &entry.pos,
                        "\"include\" inside \"map\" is not supported by halo",
                        Some("the entries written in the block"),
                    );
                }
                (key, [value]) => {
                    // `\\` escapes a key that would be a keyword.
                    let key = key.strip_prefix('\\').unwrap_or(key);
                    map.entries.push(crate::rewrite::MapEntry {
                        key: key.to_owned(),
                        value: value.text.clone(),
                    });
                }
                _ => self.err(
                    &entry.pos,
                    "invalid number of arguments in \"map\" entry",
                    Some("KEY VALUE;"),
                ),
            }
        }
        Some(map)
    }
}
