//! nginx compiles its regexes with PCRE; halo with the `regex` crate, whose syntax is PCRE's for
//! what configurations write. One PCRE form configurations do use is translated here:
//! `\Q...\E`, a literal run (quoted for the `regex` crate instead). Look-around and
//! backreferences stay errors at load.

use std::borrow::Cow;

use regex::Regex;

/// `pattern` with each `\Q...\E` run replaced by its escaped text.
pub(crate) fn translate(pattern: &str) -> Cow<'_, str> {
    if !pattern.contains("\\Q") {
        return Cow::Borrowed(pattern);
    }
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut rest = pattern;
    while let Some(start) = rest.find("\\Q") {
        // An escaped backslash before `\Q` (`\\Q`) is not a quote.
        let backslashes = rest[..start]
            .chars()
            .rev()
            .take_while(|&c| c == '\\')
            .count();
        if backslashes % 2 == 1 {
            out.push_str(&rest[..start + 2]);
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let quoted = &rest[start + 2..];
        let (literal, after) = match quoted.find("\\E") {
            Some(end) => (&quoted[..end], &quoted[end + 2..]),
            None => (quoted, ""),
        };
        out.push_str(&regex::escape(literal));
        rest = after;
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Compiles a configuration's regex.
pub(crate) fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&translate(pattern))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quoted_runs_become_literals() {
        assert_eq!(translate("^a.b$"), "^a.b$");
        let re = compile(r"^(?P<name>.+)\Q.example.com\E$").unwrap();
        assert!(re.is_match("www.example.com"));
        assert!(!re.is_match("www.exampleXcom"));
        assert_eq!(translate(r"\Qa+b"), r"a\+b");
        assert_eq!(translate(r"x\\Qy"), r"x\\Qy");
    }
}
