//! `provision broker --platform`: the files it writes work where the docs put them. Debian's
//! case runs a real Mosquitto from Debian's stock `mosquitto.conf` (paths moved into a temp
//! folder) with our drop-in next to someone else's password listener.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use broker_testkit::{free_port, mosquitto_client_args, Broker, MosquittoSub, Pki};

/// Debian 12's /etc/mosquitto/mosquitto.conf (mosquitto 2.0.11-1.2+deb12u2), verbatim but for
/// the `@RUN@` folder that replaces /run/mosquitto, /var/lib/mosquitto, /var/log/mosquitto and
/// /etc/mosquitto.
const DEBIAN_STOCK_CONF: &str = "\
# Place your local configuration in /etc/mosquitto/conf.d/
#
# A full description of the configuration file is at
# /usr/share/doc/mosquitto/examples/mosquitto.conf.example

pid_file @RUN@/mosquitto.pid

persistence true
persistence_location @RUN@/lib/

log_dest file @RUN@/mosquitto.log

include_dir @RUN@/conf.d
";

fn provision(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("provision").unwrap();
    cmd.arg("--dir").arg(dir);
    cmd
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A Debian-style /etc/mosquitto in a temp folder: the stock main config and conf.d/ holding
/// a Zigbee2MQTT-style password listener on `other_port`.
struct DebianEtc {
    run: tempfile::TempDir,
}

impl DebianEtc {
    fn new(other_port: u16, other_listener: &str) -> DebianEtc {
        let run = tempfile::tempdir().unwrap();
        // Started as root, Mosquitto writes its log, pid and database as user `mosquitto`.
        fs::set_permissions(run.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let r = run.path().display().to_string();
        fs::create_dir(run.path().join("lib")).unwrap();
        fs::set_permissions(run.path().join("lib"), fs::Permissions::from_mode(0o777)).unwrap();
        fs::create_dir(run.path().join("conf.d")).unwrap();
        fs::write(
            run.path().join("mosquitto.conf"),
            DEBIAN_STOCK_CONF.replace("@RUN@", &r),
        )
        .unwrap();
        let log = run.path().join("mosquitto.log");
        fs::write(&log, "").unwrap();
        fs::set_permissions(&log, fs::Permissions::from_mode(0o666)).unwrap();
        ok(Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(run.path().join("passwd"))
            .args(["z2m", "zigbee-secret"])
            .output()
            .expect("mosquitto_passwd"));
        fs::set_permissions(run.path().join("passwd"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(
            run.path().join("conf.d/zigbee.conf"),
            other_listener
                .replace("@PORT@", &other_port.to_string())
                .replace("@RUN@", &r),
        )
        .unwrap();
        DebianEtc { run }
    }

    fn main_conf(&self) -> std::path::PathBuf {
        self.run.path().join("mosquitto.conf")
    }

    fn log(&self) -> std::path::PathBuf {
        self.run.path().join("mosquitto.log")
    }
}

/// The way Zigbee2MQTT's and Home Assistant's guides write a password listener.
const PASSWORD_LISTENER: &str = "\
listener @PORT@ 127.0.0.1
allow_anonymous false
password_file @RUN@/passwd
";

fn password_pub(port: u16, user: &str, pass: &str, topic: &str, msg: &str) -> Output {
    Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(["-u", user, "-P", pass, "-t", topic, "-m", msg])
        .output()
        .expect("mosquitto_pub")
}

#[test]
fn debian_drop_in_coexists_with_a_password_listener() {
    let pki = Pki::new(&["dev-a"]);
    let other_port = free_port();
    let etc = DebianEtc::new(other_port, PASSWORD_LISTENER);
    let port = free_port();
    let out = ok(provision(pki.path())
        .args(["broker", "--platform", "debian", "--host", "localhost"])
        .args(["--ip", "127.0.0.1", "--bind", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .arg("--install-dir")
        .arg(pki.path().join("broker"))
        .arg("--existing-config")
        .arg(etc.main_conf())
        .output()
        .unwrap());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // It says what the drop-in does to the other listener, and how to install it.
    assert!(
        stderr.contains("zigbee.conf:1: `listener") && stderr.contains("has no acl_file"),
        "{stderr}"
    );
    assert!(stderr.contains("limits are global"), "{stderr}");
    assert!(
        stdout.contains("/etc/mosquitto/conf.d/00-provision.conf")
            && stdout.contains("systemctl reload mosquitto")
            && stdout.contains("/var/log/mosquitto/mosquitto.log"),
        "{stdout}"
    );

    fs::copy(
        pki.path().join("broker/mosquitto.conf"),
        etc.run.path().join("conf.d/00-provision.conf"),
    )
    .unwrap();
    let broker = Broker::start_config(etc.main_conf(), port, etc.log())
        .unwrap_or_else(|log| panic!("mosquitto did not start:\n{log}"));

    // Our devices: the certificate listener with our ACL.
    let mut op_args = mosquitto_client_args(&pki, &broker, Some(&pki.operator()));
    op_args.extend(["-t".into(), "devices/+/telemetry".into()]);
    let op = MosquittoSub::start(&op_args, || broker.log());
    let dev = pki.device("dev-a");
    let publish_as_dev = |topic: &str, msg: &str| {
        Command::new("mosquitto_pub")
            .args(mosquitto_client_args(&pki, &broker, Some(&dev)))
            .args(["-q", "1", "-t", topic, "-m", msg])
            .output()
            .unwrap()
    };
    ok(publish_as_dev("devices/dev-a/telemetry", "t=1"));
    // Still confined to its own subtree.
    ok(publish_as_dev("devices/dev-b/telemetry", "forged"));
    assert_eq!(
        op.messages(Duration::from_secs(2)),
        vec!["devices/dev-a/telemetry t=1"]
    );

    // Their clients: the password listener, with its own topics and no ACL of ours.
    let z2m_sub = MosquittoSub::start(
        &[
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            other_port.to_string(),
            "-u".into(),
            "z2m".into(),
            "-P".into(),
            "zigbee-secret".into(),
            "-t".into(),
            "zigbee2mqtt/#".into(),
        ],
        || broker.log(),
    );
    ok(password_pub(
        other_port,
        "z2m",
        "zigbee-secret",
        "zigbee2mqtt/bridge/state",
        "online",
    ));
    assert_eq!(
        z2m_sub.messages(Duration::from_secs(2)),
        vec!["zigbee2mqtt/bridge/state online"]
    );
    // Their authentication still holds.
    assert!(
        !password_pub(other_port, "z2m", "wrong", "zigbee2mqtt/x", "y")
            .status
            .success()
    );
    assert!(!Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &other_port.to_string()])
        .args(["-t", "zigbee2mqtt/x", "-m", "anon"])
        .output()
        .unwrap()
        .status
        .success());
    // A password (and no certificate) gets nowhere on our listener.
    assert!(!Command::new("mosquitto_pub")
        .args(mosquitto_client_args(&pki, &broker, None))
        .args([
            "-u",
            "z2m",
            "-P",
            "zigbee-secret",
            "-t",
            "devices/dev-a/cmd/x",
            "-m",
            "x"
        ])
        .output()
        .unwrap()
        .status
        .success());
}

#[test]
fn debian_check_names_settings_that_would_land_on_our_listener_or_stop_the_broker() {
    let pki = Pki::new(&[]);
    // Security settings above the file's `listener` line: read after our drop-in they would
    // apply to our listener.
    let etc = DebianEtc::new(
        free_port(),
        "allow_anonymous true\npassword_file @RUN@/passwd\nlistener @PORT@\n",
    );
    // And a security setting in the main file before include_dir stops Mosquitto from starting.
    let main = fs::read_to_string(etc.main_conf()).unwrap();
    fs::write(
        etc.main_conf(),
        main.replace("include_dir", "allow_anonymous false\ninclude_dir"),
    )
    .unwrap();
    let out = provision(pki.path())
        .args(["broker", "--platform", "debian", "--host", "localhost"])
        .arg("--existing-config")
        .arg(etc.main_conf())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("zigbee.conf:1: `allow_anonymous` comes before any `listener` line")
            && stderr.contains("zigbee.conf:2: `password_file` comes before"),
        "{stderr}"
    );
    assert!(
        stderr.contains("mosquitto.conf:13: `allow_anonymous` is read before our drop-in")
            && stderr.contains("refuse to start"),
        "{stderr}"
    );
}

#[test]
fn openwrt_config_logs_to_syslog_and_the_hints_use_sighup() {
    let pki = Pki::new(&["dev-a"]);
    let out = ok(provision(pki.path())
        .args(["broker", "--platform", "openwrt", "--host", "router.lan"])
        .args(["--ip", "192.168.1.1", "--bind", "192.168.1.1"])
        .output()
        .unwrap());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let conf = fs::read_to_string(pki.path().join("broker/mosquitto.conf")).unwrap();
    assert!(conf.contains("\nlog_dest syslog\n"), "{conf}");
    assert!(
        conf.contains("acl_file /etc/mosquitto/provision/acl\n"),
        "{conf}"
    );
    for step in [
        "opkg install mosquitto-ssl mosquitto-client-ssl",
        "scp -O ",
        "cp /etc/mosquitto/provision/mosquitto.conf /etc/mosquitto/mosquitto.conf",
        "echo /etc/mosquitto/provision/ >> /etc/sysupgrade.conf",
        "uci set firewall.@rule[-1].src=lan",
        "uci set firewall.@rule[-1].dest_port=8883",
        "logread -e mosquitto",
        "kill -HUP $(pidof mosquitto)",
    ] {
        assert!(stdout.contains(step), "missing {step:?} in\n{stdout}");
    }
    assert!(!stdout.contains("init.d/mosquitto reload"), "{stdout}");

    // revoke's printed hint: SIGHUP, never procd's reload (which ignores crl.pem and acl).
    let out = ok(provision(pki.path())
        .args(["device", "revoke", "dev-a"])
        .output()
        .unwrap());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("kill -HUP $(pidof mosquitto)"), "{stdout}");
    assert!(
        stdout.contains("`/etc/init.d/mosquitto reload` does nothing"),
        "{stdout}"
    );

    // The config itself is valid for Mosquitto: started with the paths moved to the temp PKI.
    let port = free_port();
    let local = conf
        .replace(
            "/etc/mosquitto/provision",
            &pki.path().join("broker").display().to_string(),
        )
        .replace(
            "listener 8883 192.168.1.1",
            &format!("listener {port} 127.0.0.1"),
        )
        .replace("log_dest syslog", "log_dest stderr");
    let local_conf = pki.path().join("openwrt-local.conf");
    fs::write(&local_conf, local).unwrap();
    let broker = Broker::start_config(local_conf, port, pki.path().join("openwrt.log"))
        .unwrap_or_else(|log| panic!("mosquitto did not start:\n{log}"));
    assert!(broker.log().contains(" running"));
}

#[test]
fn an_existing_config_that_is_not_a_file_is_refused_at_once() {
    let pki = Pki::new(&[]);
    let fifo = pki.path().join("fifo.conf");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for bad in [fifo.as_path(), Path::new("/dev/zero"), pki.path()] {
        provision(pki.path())
            .args(["broker", "--platform", "debian", "--host", "localhost"])
            .arg("--existing-config")
            .arg(bad)
            .timeout(Duration::from_secs(10))
            .assert()
            .code(3)
            .stderr(predicates::str::contains("is not a regular file"));
    }
    assert!(!pki.path().join("broker").exists(), "nothing is written");
}
