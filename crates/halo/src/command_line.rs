//! Running keepalived-style script strings: `"/path/script arg1 'arg 2'" [user [group]]`.
//!
//! keepalived splits a script string into words itself (quotes group words, no shell expansion) and
//! executes the first word directly; halo does the same, so a script that works under keepalived works
//! here unchanged.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// A parsed script invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptCommand {
    pub argv: Vec<String>,
    /// Run as this user id / group id (keepalived's `script_user`, or the per-script user).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// How a script run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptOutcome {
    /// Exit status 0.
    Success,
    /// Non-zero exit, killed by a signal, or could not be started.
    Failure,
    /// Still running at the timeout: it was killed.
    TimedOut,
}

/// Splits a script string into words as keepalived does: whitespace separates, single and double
/// quotes group (and are removed), a backslash escapes the next character.
pub fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// Looks up a user (and its primary group) by name through the system's passwd database.
pub fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let user = nix::unistd::User::from_name(name).ok()??;
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

/// Looks up a group id by name.
pub fn lookup_group(name: &str) -> Option<u32> {
    Some(nix::unistd::Group::from_name(name).ok()??.gid.as_raw())
}

impl ScriptCommand {
    /// Builds a command from a script string and optional user and group names.
    pub fn new(script: &str, user: Option<&str>, group: Option<&str>) -> Self {
        let (mut uid, mut gid) = (None, None);
        if let Some((u, g)) = user.and_then(lookup_user) {
            uid = Some(u);
            gid = Some(g);
        }
        if let Some(g) = group.and_then(lookup_group) {
            gid = Some(g);
        }
        ScriptCommand {
            argv: split_words(script),
            uid,
            gid,
        }
    }

    /// Runs the command with extra arguments appended, waits at most `timeout` (then kills it).
    pub async fn run(&self, extra_args: &[String], timeout: Option<Duration>) -> ScriptOutcome {
        let Some((program, args)) = self.argv.split_first() else {
            return ScriptOutcome::Failure;
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(uid) = self.uid {
            cmd.uid(uid);
        }
        if let Some(gid) = self.gid {
            cmd.gid(gid);
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(program = %program, error = %e, "cannot start script");
                return ScriptOutcome::Failure;
            }
        };
        let status = match timeout {
            Some(t) => match tokio::time::timeout(t, child.wait()).await {
                Ok(s) => s,
                Err(_) => {
                    let _ = child.kill().await;
                    return ScriptOutcome::TimedOut;
                }
            },
            None => child.wait().await,
        };
        match status {
            Ok(s) if s.success() => ScriptOutcome::Success,
            _ => ScriptOutcome::Failure,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn words_split_like_keepalived() {
        assert_eq!(
            split_words(r#"/bin/echo a "b c" 'd e'  f\ g"#),
            vec!["/bin/echo", "a", "b c", "d e", "f g"]
        );
        assert_eq!(split_words("  "), Vec::<String>::new());
        assert_eq!(split_words(r#""""#), vec![""]);
    }

    #[tokio::test]
    async fn outcomes_follow_exit_status_and_timeout() {
        let ok = ScriptCommand::new("/bin/true", None, None);
        assert_eq!(ok.run(&[], None).await, ScriptOutcome::Success);
        let bad = ScriptCommand::new("/bin/sh -c 'exit 3'", None, None);
        assert_eq!(bad.run(&[], None).await, ScriptOutcome::Failure);
        let missing = ScriptCommand::new("/nonexistent/script", None, None);
        assert_eq!(missing.run(&[], None).await, ScriptOutcome::Failure);
        let slow = ScriptCommand::new("/bin/sleep 5", None, None);
        let t0 = std::time::Instant::now();
        assert_eq!(
            slow.run(&[], Some(Duration::from_millis(100))).await,
            ScriptOutcome::TimedOut
        );
        assert!(t0.elapsed() < Duration::from_secs(4));
    }

    #[tokio::test]
    async fn extra_args_are_appended() {
        let dir = std::env::temp_dir().join(format!("halo-args-{}", std::process::id()));
        let out = dir.with_extension("out");
        let cmd = ScriptCommand::new(
            &format!("/bin/sh -c 'echo \"$@\" > {}' sh first", out.display()),
            None,
            None,
        );
        let r = cmd
            .run(&["INSTANCE".into(), "VI_1".into(), "MASTER".into()], None)
            .await;
        assert_eq!(r, ScriptOutcome::Success);
        let text = std::fs::read_to_string(&out).unwrap();
        let _ = std::fs::remove_file(&out);
        assert_eq!(text.trim(), "first INSTANCE VI_1 MASTER");
    }
}
