//! Keeping a running RabbitMQ broker in step after `provision` changed its users or its CRL:
//! the exact `rabbitmqctl` commands, printed for the user or run (`--apply`).
//!
//! The broker folder is already written when these run (every command commits first), so a
//! failure here leaves the provisioning directory consistent: the error names what did not
//! happen and the command that finishes it.
//!
//! - Users added (`device add`, `operator add`): `rabbitmqctl import_definitions` of what
//!   changed (an import adds and updates, never removes). The users have no password: they log
//!   in with their certificates.
//! - A device revoked: the CRL in the hash dir refuses its new handshakes on every node that
//!   reads the new file; `rabbitmqctl delete_user <id>` closes its open session cluster-wide
//!   (RabbitMQ 3.10's `close_connection` does not close MQTT connections).
//!
//! `rabbitmqctl` needs to reach the node: its name (`-n`, default the first node of the
//! registry), the Erlang cookie (`$HOME/.erlang.cookie`) and, where set, `ERL_EPMD_PORT` and the
//! `RABBITMQ_*` variables, which are passed on from the environment.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::rabbitmq_conf;
use crate::registry::{BrokerRecord, Engine, Registry};

/// How to reach a node with `rabbitmqctl`.
#[derive(Debug, Clone, Default)]
pub struct CtlOptions {
    /// The `rabbitmqctl` to run (default: `rabbitmqctl` from PATH, else Debian's
    /// `/usr/sbin/rabbitmqctl`).
    pub rabbitmqctl: Option<PathBuf>,
    /// The Erlang node name (`rabbit-1@mq1`); default: the registry's first node.
    pub node: Option<String>,
}

/// What changed in the broker folder.
#[derive(Debug, Clone)]
pub enum Change {
    /// These users (devices or operators) were added or issued again.
    Added(Vec<String>),
    /// This device was revoked: its user goes, the CRL changed.
    Revoked(String),
    /// Only the CRL changed (a renewal, a previous certificate revoked).
    Crl,
}

/// One `rabbitmqctl` call.
#[derive(Debug, Clone)]
pub struct CtlCall {
    pub args: Vec<String>,
    /// Fed to its standard input (definitions to import).
    pub stdin: Option<String>,
    /// The command as the user runs it by hand.
    pub shown: String,
}

/// What keeps the broker in step after `change`.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The node `rabbitmqctl` talks to.
    pub node: String,
    /// Where the files must be copied first, when the nodes read them elsewhere (None: the
    /// nodes run from this folder).
    pub copy: Option<String>,
    pub calls: Vec<CtlCall>,
}

/// The broker of `registry` when it is RabbitMQ and this directory has its folder.
pub fn rabbitmq_broker<'a>(registry: &'a Registry, dir: &Path) -> Option<&'a BrokerRecord> {
    registry.broker.as_ref().filter(|b| {
        b.engine == Engine::Rabbitmq && crate::layout::Layout::new(dir).broker_dir().is_dir()
    })
}

/// The plan for `change`, or None when the broker is not RabbitMQ.
pub fn plan(
    dir: &Path,
    registry: &Registry,
    change: &Change,
    opts: &CtlOptions,
) -> Result<Option<Plan>> {
    let Some(b) = rabbitmq_broker(registry, dir) else {
        return Ok(None);
    };
    let node = match &opts.node {
        Some(n) => n.clone(),
        None => rabbitmq_conf::erlang_node_name(rabbitmq_conf::naming(&b.nodes)?, &b.nodes[0]),
    };
    let ctl = opts
        .rabbitmqctl
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "rabbitmqctl".into());
    let sw = |s: &str| crate::shell_word(s);
    let folder = crate::error::absolute(&crate::layout::Layout::new(dir).broker_dir());
    let install = b.install_dir.display().to_string();
    let shown = |args: &[&str]| {
        let mut words = vec![sw(&ctl), "-n".into(), sw(&node)];
        words.extend(args.iter().map(|a| sw(a)));
        words.join(" ")
    };
    let defs_dir = format!(
        "{}/{}",
        install.trim_end_matches('/'),
        rabbitmq_conf::DEFINITIONS_DIR
    );
    let (files, calls) = match change {
        Change::Added(users) => {
            let operators: Vec<&str> = registry.operator_names().collect();
            let mut files: Vec<String> = users
                .iter()
                .map(|u| {
                    if operators.contains(&u.as_str()) {
                        rabbitmq_conf::OPERATORS_FILE.to_string()
                    } else {
                        rabbitmq_conf::device_file(u)
                    }
                })
                .collect();
            files.sort();
            files.dedup();
            // By hand: import the files that hold the new users (all of them after a big batch).
            let by_hand = if files.len() <= 4 {
                files
                    .iter()
                    .map(|f| shown(&["import_definitions", &format!("{defs_dir}/{f}")]))
                    .collect::<Vec<_>>()
                    .join("\n  ")
            } else {
                format!(
                    "for f in {}/*.json; do {} import_definitions \"$f\"; done",
                    sw(&defs_dir),
                    shown(&[])
                )
            };
            let users: Vec<&str> = users.iter().map(String::as_str).collect();
            (
                "definitions/",
                vec![CtlCall {
                    // No file argument: rabbitmqctl reads standard input (3.10 takes `-`
                    // for a file name).
                    args: vec!["import_definitions".into()],
                    stdin: Some(rabbitmq_conf::render_definitions_for(registry, &users)),
                    shown: by_hand,
                }],
            )
        }
        Change::Revoked(id) => {
            let defs = format!("{defs_dir}/{}", rabbitmq_conf::OPERATORS_FILE);
            // The operators' topic permissions now let them clear the revoked device's retained
            // status (its own Last Will is gone with its user): import them first.
            let operators: Vec<&str> = registry.operator_names().collect();
            (
                "crl/ and definitions/",
                vec![
                    CtlCall {
                        args: vec!["import_definitions".into()],
                        stdin: Some(rabbitmq_conf::render_definitions_for(registry, &operators)),
                        shown: shown(&["import_definitions", &defs]),
                    },
                    CtlCall {
                        args: vec!["delete_user".into(), id.clone()],
                        stdin: None,
                        shown: shown(&["delete_user", id]),
                    },
                ],
            )
        }
        Change::Crl => ("crl/", Vec::new()),
    };
    // Nodes that all run on this machine from this folder read the new files where they are.
    let local = folder == b.install_dir
        && rabbitmq_conf::naming(&b.nodes).ok() == Some(rabbitmq_conf::Naming::Local);
    let copy = (!local).then(|| {
        let mut hosts_unique: Vec<String> = Vec::new();
        for n in &b.nodes {
            if !hosts_unique.contains(&n.host) {
                hosts_unique.push(n.host.clone());
            }
        }
        format!(
            "copy {files} of {} to {} on every node's host ({}), e.g.\n  \
             rsync -a --delete {}/definitions {}/crl HOST:{}/",
            sw(&folder.display().to_string()),
            sw(&install),
            hosts_unique.join(", "),
            sw(&folder.display().to_string()),
            sw(&folder.display().to_string()),
            sw(&install),
        )
    });
    Ok(Some(Plan { node, copy, calls }))
}

/// The `rabbitmqctl` to run: the one named, else PATH's, else Debian's.
fn program(opts: &CtlOptions) -> Result<PathBuf> {
    let search = |name: &Path| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    };
    if let Some(p) = &opts.rabbitmqctl {
        let found = if p.components().count() > 1 {
            Some(p.clone()).filter(|p| p.is_file())
        } else {
            search(p)
        };
        return found.ok_or_else(|| {
            Error::InvalidInput(format!("--rabbitmqctl {}: no such program", p.display()))
        });
    }
    search(Path::new("rabbitmqctl"))
        .or_else(|| Some(PathBuf::from("/usr/sbin/rabbitmqctl")).filter(|p| p.is_file()))
        .ok_or_else(|| {
            Error::InvalidInput(
                "--apply runs rabbitmqctl, which is not installed here (apt-get install \
                 rabbitmq-server) or not in PATH: name it with --rabbitmqctl, or run the printed \
                 commands where it is"
                    .into(),
            )
        })
}

/// Refuses `--apply` before anything is written when it cannot work: no RabbitMQ broker in this
/// directory, or no `rabbitmqctl`.
pub fn check_apply(dir: &Path, opts: &CtlOptions) -> Result<()> {
    let registry = crate::store::read_registry(dir)?.ok_or_else(|| Error::no_ca(dir))?;
    if rabbitmq_broker(&registry, dir).is_none() {
        return Err(Error::InvalidInput(
            "--apply keeps a RabbitMQ broker in step, and this directory has none (`provision \
             broker --engine rabbitmq`); a Mosquitto broker reloads with --reload-pid or \
             --reload-cmd"
                .into(),
        ));
    }
    program(opts)?;
    Ok(())
}

/// Runs the plan's calls in order; the first failure is an [`Error::Reload`] that says what did
/// not happen and the commands that remain.
pub fn apply(plan: &Plan, opts: &CtlOptions) -> Result<Vec<String>> {
    let ctl = program(opts)?;
    let mut done = Vec::new();
    for (i, call) in plan.calls.iter().enumerate() {
        let remaining = || {
            plan.calls[i..]
                .iter()
                .map(|c| format!("  {}", c.shown))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let mut cmd = Command::new(&ctl);
        cmd.arg("-n")
            .arg(&plan.node)
            .args(&call.args)
            .stdin(if call.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            Error::Reload(format!(
                "cannot run {}: {e}. The files are written; run:\n{}",
                ctl.display(),
                remaining()
            ))
        })?;
        if let Some(input) = &call.stdin {
            // A node that refuses before reading closes the pipe: its exit status says why.
            let _ = child
                .stdin
                .take()
                .expect("piped")
                .write_all(input.as_bytes());
        }
        let out = child
            .wait_with_output()
            .map_err(|e| Error::Reload(format!("waiting for {}: {e}", ctl.display())))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // A user already gone is what delete_user wanted.
        let gone = call.args.first().is_some_and(|a| a == "delete_user")
            && text.contains("does not exist");
        if !out.status.success() && !gone {
            return Err(Error::Reload(format!(
                "`{}` failed ({}): {}\nThe files are written; once the node is reachable \
                 (node name, Erlang cookie in $HOME/.erlang.cookie, ERL_EPMD_PORT), run:\n{}",
                call.shown,
                out.status,
                text.trim(),
                remaining()
            )));
        }
        done.push(call.shown.clone());
    }
    Ok(done)
}
