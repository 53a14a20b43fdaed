//! The rewrite module at run time: `set`, `if`, `rewrite`, `return` and `break` compiled once,
//! then run in order for each request, at server level before the location is chosen and at
//! location level after (`ngx_http_rewrite_module`, with nginx's order of evaluation).
//!
//! Regexes use the `regex` crate. For what configurations write (anchors, classes, groups,
//! `(?<name>...)`, `(?i)`, `\d`, `\w`) its syntax is PCRE's; it has no look-around and no
//! backreferences, and such a pattern is refused when the configuration is loaded.

use halo_config::http::{Condition, FileTest, RewriteFlag, RewriteOp};
use regex::Regex;

use crate::handler::RequestCtx;
use crate::variables::Template;

/// A compiled operation.
#[derive(Debug)]
pub(crate) enum OpRt {
    Set {
        index: usize,
        value: Template,
    },
    Rewrite {
        regex: Regex,
        /// Named groups of `regex` and their variable indices.
        names: Vec<(String, usize)>,
        replacement: Template,
        flag: RewriteFlag,
        /// The replacement starts with `http://`, `https://` or `$scheme`: a redirect.
        absolute: bool,
    },
    Return {
        code: u16,
        text: Option<Template>,
    },
    Break,
    If {
        cond: CondRt,
        then: Vec<OpRt>,
    },
}

/// A compiled `if` test.
#[derive(Debug)]
pub(crate) enum CondRt {
    Value(Template),
    Equals(Template, Template, bool),
    Regex {
        value: Template,
        regex: Regex,
        names: Vec<(String, usize)>,
        negate: bool,
    },
    File(FileTest, Template, bool),
}

/// The names `set` and named captures define anywhere in `ops` (lower case), for the
/// configuration's table of user variables.
pub(crate) fn collect_names(ops: &[RewriteOp], out: &mut Vec<String>) {
    fn add(out: &mut Vec<String>, name: &str) {
        let name = name.to_ascii_lowercase();
        if !out.contains(&name) {
            out.push(name);
        }
    }
    fn capture_names(out: &mut Vec<String>, pattern: &str) {
        if let Ok(regex) = crate::pcre::compile(pattern) {
            for name in regex.capture_names().flatten() {
                add(out, name);
            }
        }
    }
    for op in ops {
        match op {
            RewriteOp::Set { var, .. } => add(out, var),
            RewriteOp::Rewrite { regex, .. } => capture_names(out, regex),
            RewriteOp::If { condition, then } => {
                if let Condition::Regex { pattern, .. } = condition {
                    capture_names(out, pattern);
                }
                collect_names(then, out);
            }
            RewriteOp::Return { .. } | RewriteOp::Break => {}
        }
    }
}

fn compile_regex(
    pattern: &str,
    case_insensitive: bool,
    user: &[String],
) -> Result<(Regex, Vec<(String, usize)>), String> {
    let text = if case_insensitive {
        format!("(?i){pattern}")
    } else {
        pattern.to_owned()
    };
    let regex = crate::pcre::compile(&text).map_err(|e| format!("regex {pattern:?}: {e}"))?;
    let names = named_groups(&regex, user);
    Ok((regex, names))
}

/// The named groups of `regex` with their indices in the user variable table.
fn named_groups(regex: &Regex, user: &[String]) -> Vec<(String, usize)> {
    regex
        .capture_names()
        .flatten()
        .filter_map(|n| {
            let lower = n.to_ascii_lowercase();
            user.iter().position(|u| *u == lower).map(|i| (lower, i))
        })
        .collect()
}

/// Compiles `ops` against the configuration's user variable table.
pub(crate) fn compile(ops: &[RewriteOp], user: &[String]) -> Result<Vec<OpRt>, String> {
    let template = |text: &str| Template::parse_with(text, user);
    ops.iter()
        .map(|op| {
            Ok(match op {
                RewriteOp::Set { var, value } => OpRt::Set {
                    index: user
                        .iter()
                        .position(|u| *u == var.to_ascii_lowercase())
                        .ok_or_else(|| format!("set ${var}: not in the variable table"))?,
                    value: template(value)?,
                },
                RewriteOp::Rewrite {
                    regex,
                    replacement,
                    flag,
                } => {
                    let (compiled, names) = compile_regex(regex, false, user)?;
                    OpRt::Rewrite {
                        regex: compiled,
                        names,
                        replacement: template(replacement)?,
                        flag: *flag,
                        absolute: replacement.starts_with("http://")
                            || replacement.starts_with("https://")
                            || replacement.starts_with("$scheme"),
                    }
                }
                RewriteOp::Return { code, text } => OpRt::Return {
                    code: *code,
                    text: text.as_deref().map(template).transpose()?,
                },
                RewriteOp::Break => OpRt::Break,
                RewriteOp::If { condition, then } => OpRt::If {
                    cond: match condition {
                        Condition::Value { value } => CondRt::Value(template(value)?),
                        Condition::Equals {
                            value,
                            other,
                            negate,
                        } => CondRt::Equals(template(value)?, template(other)?, *negate),
                        Condition::Regex {
                            value,
                            pattern,
                            case_insensitive,
                            negate,
                        } => {
                            let (regex, names) = compile_regex(pattern, *case_insensitive, user)?;
                            CondRt::Regex {
                                value: template(value)?,
                                regex,
                                names,
                                negate: *negate,
                            }
                        }
                        Condition::File { test, path, negate } => {
                            CondRt::File(*test, template(path)?, *negate)
                        }
                    },
                    then: compile(then, user)?,
                },
            })
        })
        .collect()
}

/// What a request's rewrite steps have made so far.
#[derive(Debug, Default, Clone)]
pub(crate) struct RewriteState {
    /// `set` variables and named captures, by index.
    pub vars: Vec<Option<String>>,
    /// `$0`..`$9` of the last regex that matched.
    pub captures: Vec<Option<String>>,
    /// The URI, once a rewrite changed it (`$uri`).
    pub uri: Option<String>,
    /// The arguments, once a rewrite changed them (`$args`).
    pub args: Option<String>,
    /// A rewrite in the location that serves the request changed the URI: proxy_pass then
    /// sends the changed URI whole (nginx ignores proxy_pass's URI part then).
    pub changed_in_location: bool,
}

impl RewriteState {
    pub(crate) fn set(&mut self, index: usize, value: String) {
        if self.vars.len() <= index {
            self.vars.resize(index + 1, None);
        }
        self.vars[index] = Some(value);
    }

    /// Remembers the captures of a match (and its named groups as variables).
    fn capture(&mut self, caps: &regex::Captures<'_>, names: &[(String, usize)]) {
        self.captures = (0..caps.len().min(10))
            .map(|i| caps.get(i).map(|m| m.as_str().to_owned()))
            .collect();
        for (name, index) in names {
            if let Some(m) = caps.name(name) {
                self.set(*index, m.as_str().to_owned());
            }
        }
    }

    /// Takes the captures of a regex location's match.
    pub fn capture_location(&mut self, regex: &Regex, uri: &str, user: &[String]) {
        if let Some(caps) = regex.captures(uri) {
            self.capture(&caps, &named_groups(regex, user));
        }
    }
}

/// How a run of operations ended.
#[derive(Debug)]
pub(crate) enum Flow {
    /// All ran (or `break`): serve the (possibly new) URI here.
    Done,
    /// `rewrite ... last`: find the location of the new URI.
    Last,
    /// `return`, or a redirecting rewrite: answer now.
    Return { code: u16, text: Option<String> },
}

/// Runs `ops` for the request described by `base`; `state.uri`/`state.args` carry the URI.
pub(crate) fn run(
    ops: &[OpRt],
    base: &RequestCtx<'_>,
    state: &mut RewriteState,
    in_location: bool,
) -> Flow {
    match run_ops(ops, base, state, in_location) {
        Step::Go | Step::Stop => Flow::Done,
        Step::Last => Flow::Last,
        Step::Return(code, text) => Flow::Return { code, text },
    }
}

enum Step {
    Go,
    /// `break` or `rewrite ... break`: nothing more of the rewrite module here.
    Stop,
    Last,
    Return(u16, Option<String>),
}

fn render(template: &Template, base: &RequestCtx<'_>, state: &RewriteState) -> String {
    let uri = state.uri.as_deref().unwrap_or(base.uri);
    let ctx = RequestCtx {
        uri,
        rw: Some(state),
        ..*base
    };
    template.render(&ctx)
}

fn run_ops(
    ops: &[OpRt],
    base: &RequestCtx<'_>,
    state: &mut RewriteState,
    in_location: bool,
) -> Step {
    for op in ops {
        match op {
            OpRt::Set { index, value } => {
                let v = render(value, base, state);
                state.set(*index, v);
            }
            OpRt::Return { code, text } => {
                let text = text.as_ref().map(|t| render(t, base, state));
                return Step::Return(*code, text);
            }
            OpRt::Break => return Step::Stop,
            OpRt::If { cond, then } => {
                if test(cond, base, state) {
                    match run_ops(then, base, state, in_location) {
                        Step::Go => {}
                        other => return other,
                    }
                }
            }
            OpRt::Rewrite {
                regex,
                names,
                replacement,
                flag,
                absolute,
            } => {
                let uri = state.uri.clone().unwrap_or_else(|| base.uri.to_owned());
                let Some(caps) = regex.captures(&uri) else {
                    continue;
                };
                state.capture(&caps, names);
                let target = render(replacement, base, state);
                let redirect = match flag {
                    RewriteFlag::Redirect => Some(302),
                    RewriteFlag::Permanent => Some(301),
                    _ if *absolute => Some(302),
                    _ => None,
                };
                if let Some(code) = redirect {
                    // The request's arguments follow (after `&` when the replacement has
                    // arguments of its own) unless the replacement ends with `?`.
                    let mut location = target;
                    if let Some(kept) = location.strip_suffix('?') {
                        location = kept.to_owned();
                    } else if let Some(args) = current_args(base, state).filter(|a| !a.is_empty()) {
                        location.push(if location.contains('?') { '&' } else { '?' });
                        location.push_str(&args);
                    }
                    return Step::Return(code, Some(location));
                }
                let (path, args) = match target.split_once('?') {
                    Some((path, new_args)) => {
                        // `?` at the end drops the old arguments; new ones come first.
                        let mut args = new_args.to_owned();
                        if !target.ends_with('?') {
                            if let Some(old) = current_args(base, state).filter(|a| !a.is_empty()) {
                                if !args.is_empty() {
                                    args.push('&');
                                }
                                args.push_str(&old);
                            }
                        }
                        (path.to_owned(), Some(args))
                    }
                    None => (target, None),
                };
                state.uri = Some(path);
                if args.is_some() {
                    state.args = args;
                }
                if in_location {
                    state.changed_in_location = true;
                }
                match flag {
                    RewriteFlag::Last => return Step::Last,
                    RewriteFlag::Break => return Step::Stop,
                    _ => {}
                }
            }
        }
    }
    Step::Go
}

fn current_args(base: &RequestCtx<'_>, state: &RewriteState) -> Option<String> {
    state
        .args
        .clone()
        .or_else(|| base.parts.uri.query().map(str::to_owned))
}

fn test(cond: &CondRt, base: &RequestCtx<'_>, state: &mut RewriteState) -> bool {
    match cond {
        CondRt::Value(value) => {
            let v = render(value, base, state);
            !(v.is_empty() || v == "0")
        }
        CondRt::Equals(a, b, negate) => {
            (render(a, base, state) == render(b, base, state)) != *negate
        }
        CondRt::Regex {
            value,
            regex,
            names,
            negate,
        } => {
            let v = render(value, base, state);
            match regex.captures(&v) {
                Some(caps) => {
                    if !negate {
                        state.capture(&caps, names);
                    }
                    !negate
                }
                None => *negate,
            }
        }
        CondRt::File(kind, path, negate) => {
            let path = render(path, base, state);
            let meta = std::fs::metadata(&path);
            let holds = match kind {
                FileTest::File => meta.as_ref().is_ok_and(|m| m.is_file()),
                FileTest::Directory => meta.as_ref().is_ok_and(|m| m.is_dir()),
                FileTest::Exists => meta.is_ok() || std::fs::symlink_metadata(&path).is_ok(),
                FileTest::Executable => {
                    use std::os::unix::fs::PermissionsExt;
                    meta.as_ref()
                        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                }
            };
            holds != *negate
        }
    }
}

/// A compiled `map`.
#[derive(Debug)]
pub(crate) struct MapRt {
    source: Template,
    exact: std::collections::HashMap<String, Template>,
    /// `hostnames` keys: (suffix like `.example.com` or prefix like `www.example.`, is a
    /// suffix, value), longest first.
    wildcards: Vec<(String, bool, Template)>,
    regexes: Vec<(Regex, Template)>,
    default: Template,
    /// `hostnames`: the value is looked up lower-cased and without a trailing dot.
    hostnames: bool,
}

impl MapRt {
    pub fn compile(map: &halo_config::http::MapConfig, user: &[String]) -> Result<MapRt, String> {
        let template = |text: &str| Template::parse_with(text, user);
        let mut compiled = MapRt {
            source: template(&map.source)?,
            exact: std::collections::HashMap::new(),
            wildcards: Vec::new(),
            regexes: Vec::new(),
            default: template(&map.default)?,
            hostnames: map.hostnames,
        };
        for entry in &map.entries {
            let value = template(&entry.value)?;
            if let Some(pattern) = entry.key.strip_prefix('~') {
                let (pattern, insensitive) = match pattern.strip_prefix('*') {
                    Some(p) => (p, true),
                    None => (pattern, false),
                };
                let (regex, _) = compile_regex(pattern, insensitive, user)
                    .map_err(|e| format!("map ${}: {e}", map.variable))?;
                compiled.regexes.push((regex, value));
            } else if map.hostnames && (entry.key.starts_with("*.") || entry.key.starts_with('.')) {
                let suffix = entry.key.trim_start_matches('*').to_ascii_lowercase();
                if entry.key.starts_with('.') {
                    compiled
                        .exact
                        .entry(suffix[1..].to_owned())
                        .or_insert_with(|| value.clone());
                }
                compiled.wildcards.push((suffix, true, value));
            } else if map.hostnames && entry.key.ends_with(".*") {
                let prefix = entry.key.trim_end_matches('*').to_ascii_lowercase();
                compiled.wildcards.push((prefix, false, value));
            } else {
                let key = if map.hostnames {
                    entry.key.to_ascii_lowercase()
                } else {
                    entry.key.clone()
                };
                compiled.exact.entry(key).or_insert(value);
            }
        }
        compiled
            .wildcards
            .sort_by_key(|(s, _, _)| std::cmp::Reverse(s.len()));
        Ok(compiled)
    }

    /// Appends the value for the request `ctx` describes: an exact key, then (with
    /// `hostnames`) the longest wildcard, then the first matching regex, else the default.
    pub fn write(&self, ctx: &RequestCtx<'_>, out: &mut String) {
        thread_local! {
            static DEPTH: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
        }
        // Maps whose values name each other must not recurse forever.
        if DEPTH.with(|d| d.get()) > 8 {
            return;
        }
        DEPTH.with(|d| d.set(d.get() + 1));
        let key = self.source.render(ctx);
        let lookup = if self.hostnames {
            let name = key.strip_suffix('.').unwrap_or(&key);
            name.to_ascii_lowercase()
        } else {
            key.clone()
        };
        let value = self
            .exact
            .get(&lookup)
            .or_else(|| {
                self.wildcards
                    .iter()
                    .find(|(part, suffix, _)| {
                        lookup.len() > part.len()
                            && if *suffix {
                                lookup.ends_with(part.as_str())
                            } else {
                                lookup.starts_with(part.as_str())
                            }
                    })
                    .map(|(_, _, v)| v)
            })
            .or_else(|| {
                self.regexes
                    .iter()
                    .find(|(regex, _)| regex.is_match(&key))
                    .map(|(_, v)| v)
            })
            .unwrap_or(&self.default);
        value.render_into(ctx, out);
        DEPTH.with(|d| d.set(d.get() - 1));
    }
}
