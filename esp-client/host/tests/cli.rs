//! `esp-client-host` with bad input: every mistake is refused with a clear error and an exit
//! code, and a file that holds no device config is left exactly as it was.

use std::path::Path;
use std::process::{Command, Output};

fn host(args: &[&str], flash: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_esp-client-host"));
    if let Some(f) = flash {
        c.arg("--flash").arg(f);
    }
    c.args(args).output().expect("run esp-client-host")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_arguments_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let flash = dir.path().join("dev.flash");
    std::fs::write(&flash, b"").unwrap();
    let o = host(&[], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--flash <FILE>"), "{}", stderr(&o));
    for (args, names) in [
        (&["--timeout-ms", "0"][..], "--timeout-ms"),
        // Over ten minutes is a typo, not a timeout.
        (&["--timeout-ms", "600001"], "--timeout-ms"),
        // A zero cap would reconnect in a tight loop.
        (&["--max-backoff-ms", "0"], "--max-backoff-ms"),
        (&["--max-backoff-ms", "999"], "--max-backoff-ms"),
        (&["--keep-alive", "4"], "--keep-alive"),
        (&["--adc-channels", "9"], "--adc-channels"),
    ] {
        let o = host(args, Some(&flash));
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(names), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn a_file_without_a_config_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    // E.g. the CA certificate given by mistake: refused, and not padded with erased bytes.
    let wrong = dir.path().join("ca cert.pem");
    let text = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    std::fs::write(&wrong, text).unwrap();
    let o = host(&[], Some(&wrong));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the device config is unusable: config blob has magic"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&wrong).unwrap(), text);

    let o = host(&[], Some(&dir.path().join("missing.flash")));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("opening flash image"), "{}", stderr(&o));
    assert!(stderr(&o).contains("No such file"), "{}", stderr(&o));

    // Not regular files: refused at once, not read forever (/dev/zero) or waited on (a FIFO).
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for special in [Path::new("/dev/zero"), &fifo] {
        // Under timeout(1): a regression fails with 124 instead of hanging the test run.
        let o = Command::new("timeout")
            .arg("20")
            .arg(env!("CARGO_BIN_EXE_esp-client-host"))
            .arg("--flash")
            .arg(special)
            .output()
            .expect("run esp-client-host under timeout");
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("is not a regular file"),
            "{}",
            stderr(&o)
        );
    }

    let big = dir.path().join("big.flash");
    std::fs::write(&big, vec![0xFF; (2 << 20) + 1]).unwrap();
    let o = host(&[], Some(&big));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("at most 2097152"), "{}", stderr(&o));
}
