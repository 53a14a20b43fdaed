//! Where in the configuration model a semantic problem lies, independent of the file format.
//!
//! Validation reports [`Issue`]s against a [`FieldPath`] (`vrrp.instance[0].vrid`); each loader
//! turns the path into `file:line:col` with what it knows about the source (TOML spans, the
//! positions the keepalived/nginx importers recorded).

use crate::diagnostic::Severity;
use std::fmt;

/// One step into the model: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A path from the root of [`crate::Config`] to a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct FieldPath(pub(crate) Vec<Seg>);

impl FieldPath {
    pub(crate) fn root(key: &str) -> Self {
        Self(vec![Seg::Key(key.to_string())])
    }

    /// This path extended by a key.
    pub(crate) fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_string()));
        Self(segs)
    }

    /// This path extended by an array index.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Self(segs)
    }

    /// The path one step up, if any.
    pub(crate) fn parent(&self) -> Option<Self> {
        if self.0.is_empty() {
            return None;
        }
        let mut segs = self.0.clone();
        segs.pop();
        Some(Self(segs))
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A semantic problem found by validation, before it has a file position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue {
    pub(crate) path: FieldPath,
    pub(crate) severity: Severity,
    pub(crate) message: String,
    pub(crate) expected: Option<String>,
}

impl Issue {
    pub(crate) fn error(path: FieldPath, message: impl Into<String>) -> Self {
        Self {
            path,
            severity: Severity::Error,
            message: message.into(),
            expected: None,
        }
    }

    pub(crate) fn warning(path: FieldPath, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(path, message)
        }
    }

    pub(crate) fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_toml_keys() {
        let p = FieldPath::root("vrrp").key("instance").index(2).key("vrid");
        assert_eq!(p.to_string(), "vrrp.instance[2].vrid");
        assert_eq!(
            p.parent().map(|p| p.to_string()).as_deref(),
            Some("vrrp.instance[2]")
        );
    }
}
