//! nginx's rewrite module (`ngx_http_rewrite_module`): `set`, `if`, `rewrite`, `return` and
//! `break`, as a list of operations run in configuration order — at server level before the
//! location is chosen, at location level after.
//!
//! TOML: `rewrite = [{ op = "set", var = "foo", value = "$host" }, { op = "rewrite", regex =
//! "^/old/(.*)$", replacement = "/new/$1", flag = "last" }, { op = "if", condition = { regex =
//! { var = "$http_user_agent", pattern = "curl", case_insensitive = true } }, then = [{ op =
//! "return", code = 403 }] }]`.

use serde::{Deserialize, Serialize};

/// One rewrite-module directive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum RewriteOp {
    /// `set $var VALUE`: `var` without the `$`.
    Set {
        /// Variable name.
        var: String,
        /// Value with variables.
        value: String,
    },
    /// `rewrite REGEX REPLACEMENT [FLAG]`.
    Rewrite {
        /// Matched against the current URI (`$uri`).
        regex: String,
        /// The new URI, with `$1`.. captures and variables; `http://`, `https://` or `$scheme`
        /// at its start make a redirect; a `?` keeps the request's arguments out unless more
        /// follow it.
        replacement: String,
        /// What happens after a match.
        #[serde(default)]
        flag: RewriteFlag,
    },
    /// `return CODE [TEXT]` / `return URL` inside the rewrite phase.
    Return {
        /// Status code (301, 302, 303, 307, 308: `text` is the Location).
        code: u16,
        /// Body text or URL, with variables.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// `break`: stop running the rewrite operations of this level.
    Break,
    /// `if (CONDITION) { ... }` holding rewrite-module operations only.
    If {
        /// The test.
        condition: Condition,
        /// Operations run when the test holds.
        then: Vec<RewriteOp>,
    },
}

/// The flag of a `rewrite`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewriteFlag {
    /// No flag: go on with the next operation, with the new URI.
    #[default]
    None,
    /// `last`: stop, and look for the location of the new URI (at most 10 times).
    Last,
    /// `break`: stop rewriting and serve the new URI in this location.
    Break,
    /// `redirect`: 302 to the new URI.
    Redirect,
    /// `permanent`: 301 to the new URI.
    Permanent,
}

/// The test of an `if`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// `if ($var)`: true unless the value is empty or "0".
    Value {
        /// A text with variables (usually one variable).
        value: String,
    },
    /// `if ($var = text)` / `if ($var != text)`.
    Equals {
        /// Left side, with variables.
        value: String,
        /// Right side, with variables.
        other: String,
        /// `!=`.
        #[serde(default)]
        negate: bool,
    },
    /// `if ($var ~ regex)`, `~*`, `!~`, `!~*`; captures are usable afterwards.
    Regex {
        /// The text matched, with variables.
        value: String,
        /// The regular expression.
        pattern: String,
        /// `~*` / `!~*`.
        #[serde(default)]
        case_insensitive: bool,
        /// `!~` / `!~*`.
        #[serde(default)]
        negate: bool,
    },
    /// `if (-f path)`, `-d`, `-e`, `-x`, and negated with `!`.
    File {
        /// Which test.
        test: FileTest,
        /// The path, with variables.
        path: String,
        /// `!-f` and friends.
        #[serde(default)]
        negate: bool,
    },
}

/// The file tests of `if`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileTest {
    /// `-f`: a regular file.
    File,
    /// `-d`: a directory.
    Directory,
    /// `-e`: exists (file, directory or link).
    Exists,
    /// `-x`: an executable file.
    Executable,
}

/// `map SOURCE $VARIABLE { ... }` (nginx's map module): the variable's value is looked up from
/// the source's, when a request first uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapConfig {
    /// The text looked up, with variables (e.g. `$http_upgrade`).
    pub source: String,
    /// The variable defined, without `$`.
    pub variable: String,
    /// Value when nothing matches (`default`; empty when absent).
    #[serde(default)]
    pub default: String,
    /// `hostnames`: keys may be `*.example.com`, `.example.com` or `www.example.*`.
    #[serde(default)]
    pub hostnames: bool,
    /// Entries in configuration order: exact keys win over regexes, regexes are tried in order.
    #[serde(default)]
    pub entries: Vec<MapEntry>,
}

/// One `KEY VALUE;` of a map. A key starting with `~` is a regex (`~*`: case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapEntry {
    /// The key as written.
    pub key: String,
    /// The value, with variables.
    pub value: String,
}
