//! nginx's try_files (the PRECONTENT phase): each entry but the last is a file (or, with a
//! trailing `/`, a directory) tried under the root; the first that exists becomes `$uri` and
//! the location serves it. When none does, the last entry decides: `=CODE` answers with that
//! status, `@name` goes to the named location, anything else is an internal redirect to that
//! URI (whose `?args`, if written, replace the request's; otherwise there are none).

use std::path::{Path, PathBuf};

use crate::variables::{Template, VarSource};

/// A compiled `try_files`.
#[derive(Debug)]
pub(crate) struct TryFiles {
    /// Each entry, and whether it names a directory (written with a trailing `/`, which is
    /// not part of the name: nginx tests `/dir` as a directory and serves `$uri` = `/dir`).
    tries: Vec<(Template, bool)>,
    fallback: Fallback,
}

#[derive(Debug)]
enum Fallback {
    Code(u16),
    Named(String),
    Uri(Template),
}

/// What `try_files` decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Tried {
    /// This entry exists: the location serves it as `$uri`.
    Found(String),
    /// `=CODE`.
    Status(u16),
    /// `@name`.
    Named(String),
    /// An internal redirect to this URI (with `?args` if it has them).
    Redirect(String),
}

impl TryFiles {
    /// `None` for an empty list (no try_files).
    pub fn build(list: &[String], user: &[String]) -> Result<Option<TryFiles>, String> {
        let Some((last, tries)) = list.split_last() else {
            return Ok(None);
        };
        let fallback = if let Some(code) = last.strip_prefix('=') {
            Fallback::Code(
                code.parse()
                    .map_err(|_| format!("try_files: invalid code {last:?}"))?,
            )
        } else if last.starts_with('@') {
            Fallback::Named(last.clone())
        } else {
            Fallback::Uri(Template::parse_with(last, user)?)
        };
        Ok(Some(TryFiles {
            tries: tries
                .iter()
                .map(|t| match t.strip_suffix('/') {
                    Some(dir) => Ok((Template::parse_with(dir, user)?, true)),
                    None => Ok((Template::parse_with(t, user)?, false)),
                })
                .collect::<Result<_, String>>()?,
            fallback,
        }))
    }

    /// Tries the entries under `root`; with an `alias`, an entry that starts with the location's
    /// matched prefix (`prefix` of the URI) maps to the alias instead.
    pub async fn run(
        &self,
        vars: &(impl VarSource + Sync),
        root: &Path,
        alias: Option<(&Path, &str)>,
    ) -> Tried {
        for (entry, want_dir) in &self.tries {
            let name = entry.render(vars);
            if name.is_empty() {
                continue;
            }
            let path = file_for(&name, root, alias);
            if tokio::fs::metadata(&path)
                .await
                .is_ok_and(|m| m.is_dir() == *want_dir)
            {
                return Tried::Found(name);
            }
        }
        match &self.fallback {
            Fallback::Code(code) => Tried::Status(*code),
            Fallback::Named(name) => Tried::Named(name.clone()),
            Fallback::Uri(template) => Tried::Redirect(template.render(vars)),
        }
    }
}

fn file_for(name: &str, root: &Path, alias: Option<(&Path, &str)>) -> PathBuf {
    let mut path = match alias {
        Some((alias, prefix)) if !prefix.is_empty() && name.starts_with(prefix) => {
            let mut p = alias.as_os_str().to_owned();
            p.push(&name[prefix.len()..]);
            return PathBuf::from(p);
        }
        _ => root.as_os_str().to_owned(),
    };
    path.push(name);
    PathBuf::from(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    struct NoVars;
    impl VarSource for NoVars {
        fn write_var(&self, _: &crate::variables::Var, _: &mut String) {}
    }

    #[tokio::test]
    async fn entries_then_fallbacks() {
        let dir = std::env::temp_dir().join(format!("halo-try-files-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("d")).unwrap();
        std::fs::write(dir.join("f.txt"), "x").unwrap();
        let list = |l: &[&str]| {
            TryFiles::build(&l.iter().map(|s| s.to_string()).collect::<Vec<_>>(), &[])
                .unwrap()
                .unwrap()
        };
        let t = list(&["/missing", "/f.txt", "=404"]);
        assert_eq!(
            t.run(&NoVars, &dir, None).await,
            Tried::Found("/f.txt".into())
        );
        // A directory is found only as `name/` (and served as `name`), a file only without
        // the slash.
        let t = list(&["/d", "/f.txt/", "/d/", "@app"]);
        assert_eq!(t.run(&NoVars, &dir, None).await, Tried::Found("/d".into()));
        let t = list(&["/d", "@app"]);
        assert_eq!(
            t.run(&NoVars, &dir, None).await,
            Tried::Named("@app".into())
        );
        let t = list(&["/nothing", "/index.php?q=1"]);
        assert_eq!(
            t.run(&NoVars, &dir, None).await,
            Tried::Redirect("/index.php?q=1".into())
        );
        let t = list(&["/nothing", "=418"]);
        assert_eq!(t.run(&NoVars, &dir, None).await, Tried::Status(418));
        // alias: the location prefix is replaced by the alias directory.
        let t = list(&["/static/f.txt", "=404"]);
        let alias = PathBuf::from(format!("{}/", dir.display()));
        assert_eq!(
            t.run(
                &NoVars,
                Path::new("/nonexistent"),
                Some((&alias, "/static/"))
            )
            .await,
            Tried::Found("/static/f.txt".into())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
