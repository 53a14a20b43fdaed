//! Every file in tests/malformed/{keepalived,nginx,native}/ must be refused with the message
//! its `expect:` comment names, at the right `file:line:col`, without panicking.
//!
//! Expectation syntax (in a comment of the file, or in `NAME.expect` beside a binary file):
//! `expect: [FILE:]LINE:COL error: TEXT`, where FILE is relative to the case's directory
//! (default: the case itself) and TEXT must occur in the message or its "expected" part.
#![allow(clippy::unwrap_used)]

use halo_config::{
    import_keepalived, import_nginx_with, load_native, Diagnostic, NginxImportOptions, Severity,
};
use std::path::{Path, PathBuf};

#[derive(Debug)]
struct Expectation {
    file: PathBuf,
    line: u32,
    col: u32,
    severity: Severity,
    text: String,
}

fn parse_expectation(spec: &str, case: &Path) -> Expectation {
    let spec = spec.trim();
    let (position, rest) = spec.split_once(' ').unwrap();
    let mut parts: Vec<&str> = position.trim_end_matches(':').split(':').collect();
    let col = parts.pop().unwrap().parse().unwrap();
    let line = parts.pop().unwrap().parse().unwrap();
    let file = match parts.as_slice() {
        [] => case.to_path_buf(),
        [f] => case.parent().unwrap().join(f),
        _ => panic!("bad expectation {spec}"),
    };
    let (severity, text) = rest.split_once(':').unwrap();
    let severity = match severity.trim() {
        "error" => Severity::Error,
        "warning" => Severity::Warning,
        other => panic!("bad severity {other}"),
    };
    Expectation {
        file,
        line,
        col,
        severity,
        text: text.trim().to_string(),
    }
}

fn expectations(case: &Path) -> Vec<Expectation> {
    let sidecar = PathBuf::from(format!("{}.expect", case.display()));
    let text = if sidecar.exists() {
        std::fs::read_to_string(&sidecar).unwrap()
    } else {
        let text = String::from_utf8_lossy(&std::fs::read(case).unwrap()).into_owned();
        text.lines()
            .filter_map(|l| l.split_once("expect: ").map(|(_, e)| e.to_string()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| parse_expectation(l, case))
        .collect()
}

fn cases(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/malformed")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e != "expect"))
        .collect();
    files.sort();
    files
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn run(kind: &str, load: fn(&Path) -> Result<Vec<Diagnostic>, Vec<Diagnostic>>) -> usize {
    let mut failures = Vec::new();
    let all = cases(kind);
    for case in &all {
        let wanted = expectations(case);
        assert!(!wanted.is_empty(), "{} has no expectation", case.display());
        let outcome = std::panic::catch_unwind(|| load(case));
        let diagnostics = match outcome {
            Err(_) => {
                failures.push(format!("{}: PANICKED", case.display()));
                continue;
            }
            Ok(Ok(warnings)) => {
                failures.push(format!(
                    "{}: accepted (warnings: {warnings:?})",
                    case.display()
                ));
                continue;
            }
            Ok(Err(diagnostics)) => diagnostics,
        };
        for want in &wanted {
            let found = diagnostics.iter().any(|d| {
                d.severity == want.severity
                    && d.line == want.line
                    && d.col == want.col
                    && same_file(&d.file, &want.file)
                    && (d.message.contains(&want.text)
                        || d.expected
                            .as_deref()
                            .is_some_and(|e| e.contains(&want.text)))
            });
            if !found {
                failures.push(format!(
                    "{}: wanted {want:?}\n  got:\n    {}",
                    case.display(),
                    diagnostics
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n    ")
                ));
            }
        }
        // Whatever else is reported, the first message is an error and has a position.
        assert!(
            diagnostics[0].is_error(),
            "{}: {:?}",
            case.display(),
            diagnostics[0]
        );
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    all.len()
}

fn only_warnings<T>(
    r: Result<(T, Vec<Diagnostic>), Vec<Diagnostic>>,
) -> Result<Vec<Diagnostic>, Vec<Diagnostic>> {
    r.map(|(_, w)| w)
}

#[test]
fn malformed_keepalived_files_are_refused_with_positions() {
    let n = run("keepalived", |p| only_warnings(import_keepalived(p)));
    assert!(n >= 20, "only {n} keepalived cases");
}

#[test]
fn malformed_nginx_files_are_refused_with_positions() {
    // Offline: a name that is no upstream is not looked up in DNS.
    let n = run("nginx", |p| {
        let options = NginxImportOptions {
            prefix: p.parent().unwrap().to_path_buf(),
            ..NginxImportOptions::default()
        };
        only_warnings(import_nginx_with(p, &options))
    });
    assert!(n >= 20, "only {n} nginx cases");
}

#[test]
fn malformed_native_files_are_refused_with_positions() {
    let n = run("native", |p| only_warnings(load_native(p)));
    assert!(n >= 8, "only {n} native cases");
}

#[test]
fn all_errors_of_a_file_come_out_at_once() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/malformed/keepalived");
    // priority_0 also lacks virtual addresses under no strict mode: only the priority error.
    let errors = import_keepalived(&dir.join("duplicate_vrid.conf")).unwrap_err();
    assert_eq!(
        errors.iter().filter(|d| d.is_error()).count(),
        1,
        "{errors:?}"
    );
    let text = "vrrp_instance A {\n interface eth0\n virtual_router_id 300\n priority 0\n advert_int x\n virtual_ipaddress { 1.2.3.999 }\n}\n";
    let tmp = std::env::temp_dir().join(format!("config-malformed-{}.conf", std::process::id()));
    std::fs::write(&tmp, text).unwrap();
    let errors = import_keepalived(&tmp).unwrap_err();
    std::fs::remove_file(&tmp).unwrap();
    let lines: Vec<u32> = errors
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.line)
        .collect();
    assert_eq!(lines, vec![3, 4, 5, 6], "{errors:#?}");
}
