//! Shell integration: completion scripts that bash itself runs, man pages groff renders, and typo
//! suggestions that never steer to a destructive command.

use std::path::Path;
use std::process::Command as Process;

use assert_cmd::Command;
use predicates::prelude::*;

fn provision() -> Command {
    let mut cmd = Command::cargo_bin("provision").unwrap();
    cmd.env_remove("PROVISION_DIR");
    cmd
}

fn stdout(args: &[&str]) -> String {
    let out = provision().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// What bash's own completion machinery offers after `words` with the generated script loaded.
fn bash_completes(script: &Path, words: &[&str]) -> Vec<String> {
    // As `complete -F` calls it: the command, the word being completed, the word before it.
    let line = format!(
        "source {}; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}; \
         _provision provision {} {}; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words.join(" "),
        words.len() - 1,
        words.join(" "),
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = Process::new("bash").args(["-c", &line]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_runs_the_completion_script() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("provision.bash");
    std::fs::write(&script, stdout(&["completions", "bash"])).unwrap();
    let syntax = Process::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(syntax.success());
    let top = bash_completes(&script, &["provision", "st"]);
    assert_eq!(top, ["status"]);
    let mut device = bash_completes(&script, &["provision", "device", "re"]);
    device.sort();
    assert_eq!(device, ["renew", "revoke"]);
    let export = bash_completes(&script, &["provision", "device", "export", "--f"]);
    assert!(export.contains(&"--format".to_string()), "{export:?}");
    // The other shells' scripts carry the same commands (no zsh or fish here to run them).
    for shell in ["zsh", "fish"] {
        let text = stdout(&["completions", shell]);
        for word in ["renew", "export", "status", "completions"] {
            assert!(text.contains(word), "{shell} script lacks {word}");
        }
    }
    provision().args(["completions", "tcsh"]).assert().code(2);
}

#[test]
fn man_pages_render_with_groff() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let said = stdout(&["man", "--out-dir", out.to_str().unwrap()]);
    assert!(said.contains("man1"), "{said}");
    for page in [
        "provision.1",
        "provision-status.1",
        "provision-device-renew.1",
        "provision-device-export.1",
        "provision-broker-renew.1",
    ] {
        assert!(out.join(page).is_file(), "{page} missing");
    }
    let rendered = Process::new("groff")
        .args(["-man", "-Tutf8", "-ww"])
        .arg(out.join("provision-device-renew.1"))
        .output()
        .expect("groff renders man pages (CI installs groff-base)");
    assert!(rendered.status.success(), "{rendered:?}");
    assert!(
        rendered.stderr.is_empty(),
        "groff warnings: {}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(text.contains("keep"), "{text}");
    // Without --out-dir: the top page on stdout.
    assert!(stdout(&["man"]).contains(".TH provision 1"));
}

#[test]
fn man_pages_never_land_in_the_provisioning_directorys_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = tmp.path().join("pki");
    let ok = provision()
        .args(["--dir", pki.to_str().unwrap(), "init"])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    let before: Vec<_> = std::fs::read_dir(pki.join("ca")).unwrap().collect();
    let out = provision()
        .args(["--dir", pki.to_str().unwrap(), "man", "--out-dir"])
        .arg(pki.join("ca"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("one of provision's own files"), "{err}");
    let after: Vec<_> = std::fs::read_dir(pki.join("ca")).unwrap().collect();
    assert_eq!(before.len(), after.len(), "nothing written into ca/");
}

/// Every single-letter deletion, adjacent swap and substitution (by a neighbouring vowel or
/// consonant) of `word`.
fn typos(word: &str) -> Vec<String> {
    let chars: Vec<char> = word.chars().collect();
    let mut out = Vec::new();
    for i in 0..chars.len() {
        let mut c = chars.clone();
        c.remove(i);
        out.push(c.iter().collect());
        if i + 1 < chars.len() {
            let mut c = chars.clone();
            c.swap(i, i + 1);
            out.push(c.iter().collect());
        }
        for sub in ['e', 'o', 'k', 'v'] {
            let mut c = chars.clone();
            c[i] = sub;
            out.push(c.iter().collect());
        }
    }
    out.retain(|t: &String| t != word && !t.is_empty());
    out
}

#[test]
fn typos_of_safe_commands_never_suggest_a_destructive_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    provision()
        .arg("--dir")
        .arg(d)
        .arg("init")
        .assert()
        .success();
    provision()
        .arg("--dir")
        .arg(d)
        .args(["device", "add", "x"])
        .assert()
        .success();
    let before = std::fs::read(d.join("registry/registry.json")).unwrap();
    let safe = ["renew", "show", "list", "add", "config", "export"];
    let mut checked = 0;
    for word in safe {
        for typo in typos(word) {
            if ["revoke", "add", "show", "list", "renew", "config", "export"]
                .contains(&typo.as_str())
            {
                continue;
            }
            let out = provision()
                .arg("--dir")
                .arg(d)
                .args(["device", &typo, "x"])
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2), "device {typo}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !err.contains("'revoke'"),
                "device {typo} suggests revoke:\n{err}"
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} typos tried");
    // The case that used to do it, and the safe suggestion it gets now.
    provision()
        .args(["device", "renwe", "x"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("'renew'").and(predicate::str::contains("revoke").not()));
    // Nothing ran.
    assert_eq!(
        std::fs::read(d.join("registry/registry.json")).unwrap(),
        before
    );
}
