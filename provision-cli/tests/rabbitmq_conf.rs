//! `provision broker --engine rabbitmq` from the command line: the folder it writes, and the bad
//! input it refuses before anything is written.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use broker_testkit::Pki;

fn provision(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("provision").unwrap();
    cmd.arg("--dir").arg(dir);
    cmd
}

fn run(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = provision(dir).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every file under `dir` with its bytes, to prove a refused command changed nothing.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.display().to_string(), fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

/// Every user name in the definitions folder, sorted.
fn definitions_users(broker: &Path) -> Vec<String> {
    let mut users = Vec::new();
    for e in fs::read_dir(broker.join("definitions")).unwrap().flatten() {
        let defs: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(e.path()).unwrap()).unwrap();
        for u in defs["users"].as_array().unwrap() {
            users.push(u["name"].as_str().unwrap().to_string());
        }
    }
    users.sort();
    users
}

/// (name, modification time) of every definitions file.
fn definitions_mtimes(broker: &Path) -> Vec<(String, std::time::SystemTime)> {
    let mut files: Vec<_> = fs::read_dir(broker.join("definitions"))
        .unwrap()
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().modified().unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_one_device_change_rewrites_its_own_definitions_file_only() {
    let pki = Pki::new(&["dev-a", "dev-b", "dev-c"]);
    assert!(
        run(
            pki.path(),
            &[
                "broker",
                "--engine",
                "rabbitmq",
                "--node",
                "rabbit-1=127.0.0.1:41001"
            ],
        )
        .0
    );
    let b = pki.path().join("broker");
    // By name: a file the command created has no "before" (comparing the sorted lists pairwise
    // would set it against its neighbour).
    let changed = |before: &[(String, std::time::SystemTime)]| -> Vec<String> {
        let before: std::collections::BTreeMap<_, _> = before.iter().cloned().collect();
        definitions_mtimes(&b)
            .into_iter()
            .filter(|(name, now)| before.get(name) != Some(now))
            .map(|(name, _)| name)
            .collect()
    };
    let before = definitions_mtimes(&b);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(run(pki.path(), &["device", "add", "dev-d"]).0);
    assert_eq!(
        changed(&before),
        [provision::rabbitmq_conf::device_file("dev-d")]
    );
    let before = definitions_mtimes(&b);
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(run(pki.path(), &["device", "revoke", "dev-b"]).0);
    let mut expected = vec![
        provision::rabbitmq_conf::device_file("dev-b"),
        "operators.json".to_string(),
    ];
    expected.sort();
    assert_eq!(changed(&before), expected);
    // A damaged file is written again by the next command.
    let victim = b
        .join("definitions")
        .join(provision::rabbitmq_conf::device_file("dev-a"));
    fs::write(&victim, "{}").unwrap();
    assert!(run(pki.path(), &["device", "add", "dev-e"]).0);
    assert_eq!(
        definitions_users(&b),
        ["_operator", "dev-a", "dev-c", "dev-d", "dev-e"]
    );
}

#[test]
fn writes_every_nodes_folder_and_the_shared_files() {
    let pki = Pki::new(&["dev-a", "dev-b"]);
    let (ok, stdout, stderr) = run(
        pki.path(),
        &[
            "broker",
            "--engine",
            "rabbitmq",
            "--host",
            "localhost",
            "--node",
            "rabbit-1=127.0.0.1:41001",
            "--node",
            "rabbit-2=127.0.0.1:41002",
            "--node",
            "rabbit-3=127.0.0.1:41003",
        ],
    );
    assert!(ok, "{stderr}");
    let b = pki.path().join("broker");
    for f in [
        "ca.crt",
        "server.crt",
        "server.key",
        "crl.pem",
        "definitions/operators.json",
        "INSTALL",
    ] {
        assert!(b.join(f).is_file(), "{f}");
    }
    // The operators' file and one file per device file name in use.
    let mut defs: Vec<String> = fs::read_dir(b.join("definitions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    defs.sort();
    let mut expected = vec!["operators.json".to_string()];
    for id in ["dev-a", "dev-b"] {
        expected.push(provision::rabbitmq_conf::device_file(id));
    }
    expected.sort();
    expected.dedup();
    assert_eq!(defs, expected);
    for n in ["rabbit-1", "rabbit-2", "rabbit-3"] {
        for f in [
            "rabbitmq.conf",
            "advanced.config",
            "enabled_plugins",
            "rabbitmq-env.conf",
        ] {
            assert!(b.join("nodes").join(n).join(f).is_file(), "{n}/{f}");
        }
    }
    assert_eq!(
        fs::metadata(b.join("server.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // The CRL in hash-dir form, named as openssl names it.
    let hash = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-hash", "-in"])
        .arg(pki.ca_cert())
        .output()
        .expect("openssl");
    let hash = String::from_utf8(hash.stdout).unwrap().trim().to_string();
    assert_eq!(
        fs::read(b.join("crl").join(format!("{hash}.r0"))).unwrap(),
        fs::read(pki.path().join("crl.pem")).unwrap()
    );
    // One certificate for every node's host.
    let san = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(b.join("server.crt"))
        .output()
        .unwrap();
    let san = String::from_utf8_lossy(&san.stdout);
    assert!(
        san.contains("DNS:localhost") && san.contains("IP Address:127.0.0.1"),
        "{san}"
    );
    // The install steps are printed and kept.
    assert!(
        stdout.contains("join_cluster rabbit-1@localhost"),
        "{stdout}"
    );
    assert_eq!(
        fs::read_to_string(b.join("INSTALL")).unwrap().trim(),
        stdout[stdout.find("RabbitMQ 3.10").unwrap()..].trim()
    );
    // The registry records the engine and the nodes.
    let reg = fs::read_to_string(pki.path().join("registry/registry.json")).unwrap();
    let reg: serde_json::Value = serde_json::from_str(&reg).unwrap();
    assert_eq!(reg["broker"]["engine"], "rabbitmq", "{reg}");
    assert_eq!(reg["broker"]["nodes"].as_array().unwrap().len(), 3);
}

#[test]
fn nodes_n_on_one_host_take_consecutive_ports() {
    let pki = Pki::new(&[]);
    let (ok, _, stderr) = run(
        pki.path(),
        &[
            "broker", "--engine", "rabbitmq", "--nodes", "3", "--host", "mq.lan", "--port", "9000",
        ],
    );
    assert!(ok, "{stderr}");
    let conf = |n: &str| {
        fs::read_to_string(
            pki.path()
                .join("broker/nodes")
                .join(n)
                .join("rabbitmq.conf"),
        )
        .unwrap()
    };
    assert!(conf("rabbit-1").contains("mqtt.listeners.ssl.default = 9000\n"));
    assert!(conf("rabbit-3").contains("mqtt.listeners.ssl.default = 9002\n"));
    // One host per node: each at --port.
    let pki = Pki::new(&[]);
    let (ok, _, stderr) = run(
        pki.path(),
        &[
            "broker", "--engine", "rabbitmq", "--nodes", "2", "--host", "mq1.lan", "--host",
            "mq2.lan",
        ],
    );
    assert!(ok, "{stderr}");
    let env =
        fs::read_to_string(pki.path().join("broker/nodes/rabbit-2/rabbitmq-env.conf")).unwrap();
    assert!(env.contains("NODENAME=rabbit-2@mq2.lan\n"), "{env}");
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let pki = Pki::new(&["dev-a"]);
    // A Mosquitto broker is there first: a refused RabbitMQ configuration leaves it alone.
    let (ok, _, stderr) = run(pki.path(), &["broker", "--host", "localhost"]);
    assert!(ok, "{stderr}");
    let before = snapshot(pki.path());
    let cases: &[(&[&str], &str)] = &[
        (&["--node", "rabbit-1"], "no `=`"),
        (&["--node", "rabbit-1=127.0.0.1"], "no `:PORT`"),
        (&["--node", "rabbit-1=127.0.0.1:0"], "port 0"),
        (&["--node", "rabbit-1=127.0.0.1:70000"], "not a port number"),
        (&["--node", "Rabbit@x=127.0.0.1:1"], "node name"),
        (&["--node=-r=127.0.0.1:1"], "node name"),
        (&["--node", "r=bad_host!:1"], "not a DNS name"),
        (&["--node", "r=::1:8883"], "in brackets"),
        (&["--node", "r=[fd00::1]:8883"], "IPv6 address"),
        (
            &["--node", "a=127.0.0.1:1", "--node", "a=127.0.0.1:2"],
            "node name a is given twice",
        ),
        (
            &["--node", "a=127.0.0.1:1", "--node", "b=127.0.0.1:1"],
            "127.0.0.1:1 is given to two nodes",
        ),
        (&["--nodes", "0", "--host", "mq"], "--nodes 0"),
        (&["--nodes", "17", "--host", "mq"], "at most 16"),
        (
            &["--nodes", "2", "--host", "mq", "--port", "65535"],
            "past port 65535",
        ),
        (
            &["--nodes", "3", "--host", "a.lan", "--host", "b.lan"],
            "one --host per node",
        ),
        (&["--host", "mq"], "needs its nodes"),
        (
            &["--node", "a=mq1:1", "--node", "b=mq2.example.org:1"],
            "single-label",
        ),
        (
            &["--node", "a=127.0.0.1:1", "--platform", "debian"],
            "--platform debian is for Mosquitto",
        ),
        (
            &["--node", "a=127.0.0.1:1", "--max-packet-size", "4096"],
            "no packet size",
        ),
        (
            &[
                "--node",
                "a=127.0.0.1:1",
                "--install-dir",
                "/home/me/My PKI",
            ],
            "cannot carry",
        ),
        (
            &["--node", "a=127.0.0.1:1", "--install-dir", "rel"],
            "absolute",
        ),
        (
            &["--node", "a=127.0.0.1:1", "--bind", "mq.lan"],
            "IP address",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["broker", "--engine", "rabbitmq"];
        all.extend_from_slice(args);
        let (ok, _, stderr) = run(pki.path(), &all);
        assert!(!ok, "{args:?} was accepted");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(
            snapshot(pki.path()) == before,
            "{args:?} changed the directory"
        );
    }
    // Mosquitto does not take nodes.
    let (ok, _, stderr) = run(
        pki.path(),
        &["broker", "--host", "mq", "--node", "a=127.0.0.1:1"],
    );
    assert!(!ok && stderr.contains("--engine rabbitmq"), "{stderr}");
    let (ok, _, stderr) = run(
        pki.path(),
        &["broker", "--engine", "rabbitmq", "--nodes", "2"],
    );
    assert!(!ok && stderr.contains("--host"), "{stderr}");
}

#[test]
fn a_link_in_the_broker_folder_is_not_written_through() {
    let pki = Pki::new(&[]);
    let outside = tempfile::tempdir().unwrap();
    fs::create_dir_all(pki.path().join("broker")).unwrap();
    std::os::unix::fs::symlink(outside.path(), pki.path().join("broker/nodes")).unwrap();
    let (ok, _, stderr) = run(
        pki.path(),
        &[
            "broker",
            "--engine",
            "rabbitmq",
            "--node",
            "rabbit-1=127.0.0.1:41001",
        ],
    );
    assert!(!ok && stderr.contains("symbolic link"), "{stderr}");
    assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0);
    assert!(!pki.path().join("broker/server.crt").exists());
}

#[test]
fn switching_engines_names_the_files_left_behind() {
    let pki = Pki::new(&[]);
    assert!(run(pki.path(), &["broker", "--host", "localhost"]).0);
    let (ok, _, stderr) = run(
        pki.path(),
        &[
            "broker",
            "--engine",
            "rabbitmq",
            "--node",
            "rabbit-1=127.0.0.1:41001",
        ],
    );
    assert!(ok, "{stderr}");
    assert!(stderr.contains("acl, mosquitto.conf"), "{stderr}");
    let (ok, _, stderr) = run(
        pki.path(),
        &[
            "broker",
            "--engine",
            "rabbitmq",
            "--node",
            "rabbit-2=127.0.0.1:41001",
        ],
    );
    assert!(ok, "{stderr}");
    assert!(stderr.contains("nodes/rabbit-1"), "{stderr}");
}

#[test]
fn adds_revocations_and_operators_keep_definitions_and_the_crl_in_step() {
    let pki = Pki::new(&["dev-a"]);
    assert!(
        run(
            pki.path(),
            &[
                "broker",
                "--engine",
                "rabbitmq",
                "--node",
                "rabbit-1=127.0.0.1:41001"
            ],
        )
        .0
    );
    let b = pki.path().join("broker");
    let users = || -> Vec<String> { definitions_users(&b) };
    assert_eq!(users(), ["_operator", "dev-a"]);
    let (ok, _, stderr) = run(pki.path(), &["device", "add", "dev-b"]);
    assert!(ok, "{stderr}");
    assert_eq!(users(), ["_operator", "dev-a", "dev-b"]);
    let (ok, _, stderr) = run(pki.path(), &["operator", "add", "_ops"]);
    assert!(ok, "{stderr}");
    assert_eq!(users(), ["_operator", "_ops", "dev-a", "dev-b"]);
    let crl_file = fs::read_dir(b.join("crl"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let (ok, _, stderr) = run(pki.path(), &["device", "revoke", "dev-a"]);
    assert!(ok, "{stderr}");
    assert_eq!(users(), ["_operator", "_ops", "dev-b"]);
    assert_eq!(
        fs::read(&crl_file).unwrap(),
        fs::read(pki.path().join("crl.pem")).unwrap()
    );
    assert_eq!(fs::read_dir(b.join("crl")).unwrap().count(), 1);
    // A renewal revokes the previous certificate: the hash-dir CRL follows.
    let (ok, _, stderr) = run(pki.path(), &["device", "renew", "dev-b"]);
    assert!(ok, "{stderr}");
    assert_eq!(
        fs::read(&crl_file).unwrap(),
        fs::read(pki.path().join("crl.pem")).unwrap()
    );
    let (ok, _, stderr) = run(pki.path(), &["device", "add", "--replace", "dev-a"]);
    assert!(ok, "{stderr}");
    assert_eq!(users(), ["_operator", "_ops", "dev-a", "dev-b"]);
    // A new broker certificate: the old one goes on the CRL, the key stays owner-only.
    let (ok, stdout, stderr) = run(pki.path(), &["broker", "renew"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("restart the nodes one at a time"),
        "{stdout}"
    );
    assert_eq!(
        fs::read(&crl_file).unwrap(),
        fs::read(pki.path().join("crl.pem")).unwrap()
    );
    assert_eq!(
        fs::metadata(b.join("server.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(b.join("nodes/rabbit-1/rabbitmq.conf").is_file());
}

#[test]
fn without_apply_the_exact_commands_are_printed() {
    let pki = Pki::new(&["dev-a"]);
    assert!(
        run(
            pki.path(),
            &[
                "broker",
                "--engine",
                "rabbitmq",
                "--node",
                "rabbit-1=127.0.0.1:41001",
                "--node",
                "rabbit-2=127.0.0.1:41002"
            ],
        )
        .0
    );
    let (ok, stdout, stderr) = run(pki.path(), &["device", "add", "dev-b"]);
    assert!(ok, "{stderr}");
    let defs = pki
        .path()
        .join("broker/definitions")
        .join(provision::rabbitmq_conf::device_file("dev-b"));
    let defs = std::path::absolute(defs).unwrap();
    assert!(
        stdout.contains(&format!(
            "  rabbitmqctl -n rabbit-1@localhost import_definitions {}",
            defs.display()
        )),
        "{stdout}"
    );
    let (ok, stdout, stderr) = run(
        pki.path(),
        &["device", "revoke", "dev-b", "-n", "rabbit-2@localhost"],
    );
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("  rabbitmqctl -n rabbit-2@localhost delete_user dev-b"),
        "{stdout}"
    );
    assert!(stdout.contains("devices/dev-b/status"), "{stdout}");
    assert!(!stdout.contains("kill -HUP"), "{stdout}");
    let (ok, stdout, stderr) = run(pki.path(), &["operator", "add", "_ops", "--json"]);
    assert!(ok, "{stderr}");
    assert!(stdout.trim_start().starts_with('{'), "{stdout}");
    assert!(stderr.contains("import_definitions"), "{stderr}");
}

#[test]
fn another_install_folder_says_what_to_copy_where() {
    let pki = Pki::new(&["dev-a"]);
    assert!(
        run(
            pki.path(),
            &[
                "broker",
                "--engine",
                "rabbitmq",
                "--install-dir",
                "/etc/rabbitmq/provision",
                "--node",
                "rabbit-1=mq1.example.org:8883",
                "--node",
                "rabbit-2=mq2.example.org:8883"
            ],
        )
        .0
    );
    let (ok, stdout, stderr) = run(pki.path(), &["device", "revoke", "dev-a"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("/etc/rabbitmq/provision on every node's host"),
        "{stdout}"
    );
    assert!(
        stdout.contains("mq1.example.org, mq2.example.org"),
        "{stdout}"
    );
    assert!(stdout.contains("rabbitmqctl -n rabbit-1@mq1.example.org delete_user dev-a"));
    // Nodes on other hosts read their own copy even when it sits at this folder's path.
    let pki = Pki::new(&["dev-a"]);
    assert!(
        run(
            pki.path(),
            &[
                "broker",
                "--engine",
                "rabbitmq",
                "--node",
                "rabbit-1=mq1.example.org:8883"
            ],
        )
        .0
    );
    let (ok, stdout, stderr) = run(pki.path(), &["device", "revoke", "dev-a"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("on every node's host (mq1.example.org)"),
        "{stdout}"
    );
}

#[test]
fn apply_and_reload_options_that_cannot_work_are_refused_before_anything_is_written() {
    // --apply on a Mosquitto directory.
    let pki = Pki::new(&["dev-a"]);
    assert!(run(pki.path(), &["broker", "--host", "localhost"]).0);
    let before = snapshot(pki.path());
    let (ok, _, stderr) = run(pki.path(), &["device", "revoke", "dev-a", "--apply"]);
    assert!(!ok && stderr.contains("--reload-pid"), "{stderr}");
    let (ok, _, stderr) = run(pki.path(), &["device", "add", "dev-b", "--apply"]);
    assert!(!ok && stderr.contains("RabbitMQ"), "{stderr}");
    assert!(snapshot(pki.path()) == before);
    // --reload-pid on a RabbitMQ directory; --apply without rabbitmqctl.
    let pki = Pki::new(&["dev-a"]);
    assert!(
        run(
            pki.path(),
            &[
                "broker",
                "--engine",
                "rabbitmq",
                "--node",
                "rabbit-1=127.0.0.1:41001"
            ],
        )
        .0
    );
    let before = snapshot(pki.path());
    let (ok, _, stderr) = run(
        pki.path(),
        &["device", "revoke", "dev-a", "--reload-pid", "1"],
    );
    assert!(!ok && stderr.contains("RabbitMQ"), "{stderr}");
    let (ok, _, stderr) = run(
        pki.path(),
        &[
            "device",
            "revoke",
            "dev-a",
            "--apply",
            "--rabbitmqctl",
            "/nonexistent/rabbitmqctl",
        ],
    );
    assert!(!ok && stderr.contains("no such program"), "{stderr}");
    assert!(snapshot(pki.path()) == before);
    let out = provision(pki.path())
        .args(["device", "add", "dev-b", "--apply"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Debian's /usr/sbin/rabbitmqctl is the fallback when PATH has none.
    if !Path::new("/usr/sbin/rabbitmqctl").exists() {
        assert!(
            !out.status.success() && stderr.contains("not installed"),
            "{stderr}"
        );
        assert!(snapshot(pki.path()) == before);
    }
}
