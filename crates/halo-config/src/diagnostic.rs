//! Positioned configuration messages: every loader reports errors and warnings as [`Diagnostic`]s
//! that name `file:line:column`, what was found and what was expected.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How bad a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The configuration is unusable; loading fails.
    Error,
    /// The configuration loads, but something is ignored or done differently than written.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Severity::Error => f.write_str("error"),
            Severity::Warning => f.write_str("warning"),
        }
    }
}

/// One message about a configuration file, with its position.
///
/// Displays as `file:line:col: error: message (expected ...)`. Lines and columns count from 1;
/// 0 means "the whole file" (for example a file that cannot be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the message is about.
    pub file: PathBuf,
    /// 1-based line, 0 if unknown.
    pub line: u32,
    /// 1-based column (in characters), 0 if unknown.
    pub col: u32,
    /// Error or warning.
    pub severity: Severity,
    /// What was found / what is wrong.
    pub message: String,
    /// What would have been accepted, if that can be said.
    pub expected: Option<String>,
}

impl Diagnostic {
    /// An error at `file:line:col`.
    pub fn error(file: &Path, line: u32, col: u32, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line,
            col,
            severity: Severity::Error,
            message: message.into(),
            expected: None,
        }
    }

    /// A warning at `file:line:col`.
    pub fn warning(file: &Path, line: u32, col: u32, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(file, line, col, message)
        }
    }

    /// Adds what would have been accepted.
    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.severity,
            self.message
        )?;
        if let Some(expected) = &self.expected {
            write!(f, " (expected {expected})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// Collects diagnostics while a loader runs, then splits them into the loader's result.
#[derive(Debug, Default)]
pub(crate) struct Diagnostics {
    list: Vec<Diagnostic>,
}

impl Diagnostics {
    pub(crate) fn push(&mut self, diagnostic: Diagnostic) {
        self.list.push(diagnostic);
    }

    pub(crate) fn extend(&mut self, more: impl IntoIterator<Item = Diagnostic>) {
        self.list.extend(more);
    }

    /// `Ok(value, warnings)` when there is no error, else `Err(errors then warnings)`.
    pub(crate) fn finish<T>(
        self,
        value: Option<T>,
    ) -> Result<(T, Vec<Diagnostic>), Vec<Diagnostic>> {
        let mut list = self.list;
        match value {
            Some(value) if !list.iter().any(Diagnostic::is_error) => Ok((value, list)),
            _ => {
                // Errors first, each group in file order.
                list.sort_by_key(|d| d.severity);
                Err(list)
            }
        }
    }
}

/// Where a token of a configuration file starts (shared by the keepalived and nginx lexers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pos {
    pub(crate) file: Arc<Path>,
    pub(crate) line: u32,
    pub(crate) col: u32,
}

impl Pos {
    pub(crate) fn error(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(&self.file, self.line, self.col, message)
    }

    pub(crate) fn warning(&self, message: impl Into<String>) -> Diagnostic {
        Diagnostic::warning(&self.file, self.line, self.col, message)
    }
}

/// Line and column (1-based, columns in characters) of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (clamp_u32(line), clamp_u32(col))
}

fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_line_col_and_expectation() {
        let d = Diagnostic::error(
            Path::new("k.conf"),
            3,
            5,
            "virtual_router_id 300 out of range",
        )
        .expected("1..=255");
        assert_eq!(
            d.to_string(),
            "k.conf:3:5: error: virtual_router_id 300 out of range (expected 1..=255)"
        );
        let w = Diagnostic::warning(Path::new("n.conf"), 1, 1, "x");
        assert_eq!(w.to_string(), "n.conf:1:1: warning: x");
    }

    #[test]
    fn line_col_counts_characters_not_bytes() {
        let text = "ab\n\u{4e2d}x";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 1));
        assert_eq!(line_col(text, 6), (2, 2));
        assert_eq!(line_col(text, 999), (2, 3));
    }
}
