//! The user-facing docs (README and docs/) speak to users: no references to the project's issue
//! tracker ("issue 11", "issue #4"), which a reader of a release cannot follow.

use std::path::PathBuf;

fn user_docs() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = vec![root.join("README.md")];
    for e in std::fs::read_dir(root.join("docs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "md") {
            files.push(p);
        }
    }
    assert!(files.len() > 5, "docs/ not found");
    files
}

/// `issue` followed by a number or `#`, as in "issue 4", "Issue #12", "issues 8 and 9".
fn issue_reference(line: &str) -> bool {
    let lower = line.to_lowercase();
    lower.match_indices("issue").any(|(i, _)| {
        let rest = lower[i + "issue".len()..].trim_start_matches('s');
        let rest = rest.trim_start();
        rest.starts_with('#') || rest.starts_with(|c: char| c.is_ascii_digit())
    })
}

#[test]
fn no_doc_points_at_the_issue_tracker() {
    assert!(issue_reference("Issue 4 sets the budget"));
    assert!(issue_reference("see issues #8"));
    assert!(!issue_reference("the UnknownIssuer error"));
    let mut found = Vec::new();
    for file in user_docs() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if issue_reference(line) {
                found.push(format!("{}:{}: {line}", file.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "docs refer to issue numbers:\n{}",
        found.join("\n")
    );
}

/// The exit-code list from "Exit codes:" to the end of its sentence, backticks and line breaks
/// dropped.
fn exit_code_list(text: &str) -> String {
    let start = text.find("Exit codes:").expect("an exit code list");
    let rest = &text[start..];
    let end = [rest.find(".\n"), rest.find(". ")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(rest.len());
    rest[..end]
        .replace('`', "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_readme_lists_the_exit_codes_provision_help_does() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_provision"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let listed = exit_code_list(&help);
    assert!(listed.contains(" 10 "), "{listed}");
    assert_eq!(exit_code_list(&readme), listed);
}
