//! The options shared by the commands that keep a RabbitMQ broker in step (`device add`,
//! `device revoke`, `operator add`), and their printing.

use std::path::{Path, PathBuf};

use clap::Args;
use provision::rabbitmq_sync::{self, Change, CtlOptions};
use provision::registry::Registry;
use provision::Error;

#[derive(Args, Clone)]
pub struct SyncArgs {
    /// RabbitMQ: run the rabbitmqctl commands that bring the broker in step (default: print
    /// them)
    #[arg(long)]
    apply: bool,
    /// RabbitMQ: the node rabbitmqctl talks to (default: the first node, e.g.
    /// rabbit-1@localhost); the Erlang cookie comes from $HOME/.erlang.cookie
    #[arg(short = 'n', long = "rabbitmq-node", env = "PROVISION_RABBITMQ_NODE")]
    node: Option<String>,
    /// RabbitMQ: the rabbitmqctl program (default: from PATH, else /usr/sbin/rabbitmqctl)
    #[arg(long, env = "PROVISION_RABBITMQCTL")]
    rabbitmqctl: Option<PathBuf>,
}

impl SyncArgs {
    /// Whether the rabbitmqctl commands are run (`--apply`), not just printed.
    pub fn applies(&self) -> bool {
        self.apply
    }

    pub fn into_options(self) -> CtlOptions {
        CtlOptions {
            rabbitmqctl: self.rabbitmqctl,
            node: self.node,
        }
    }

    /// Before anything is written: `--apply` must be able to run.
    pub fn check(&self, dir: &Path) -> Result<(), Error> {
        if self.apply {
            rabbitmq_sync::check_apply(dir, &self.clone().into_options())?;
        }
        Ok(())
    }

    /// After the command committed: prints what keeps a RabbitMQ broker in step with `change`,
    /// or runs it with `--apply`. Nothing for a Mosquitto broker.
    pub fn finish(&self, dir: &Path, change: Change, say: &dyn Fn(&str)) -> Result<(), Error> {
        self.finish_in(dir, None, change, say)
    }

    /// [`SyncArgs::finish`] with the registry the command wrote (`None`: read it again).
    pub fn finish_in(
        &self,
        dir: &Path,
        registry: Option<&Registry>,
        change: Change,
        say: &dyn Fn(&str),
    ) -> Result<(), Error> {
        let layout = provision::layout::Layout::new(dir);
        // Only a RabbitMQ folder has definitions: a Mosquitto directory does not read the
        // registry again.
        if !self.apply && !layout.broker_file("definitions").is_dir() {
            return Ok(());
        }
        let loaded;
        let registry = match registry {
            Some(r) => r,
            None => match provision::store::read_registry(dir)? {
                Some(r) => {
                    loaded = r;
                    &loaded
                }
                None => return Ok(()),
            },
        };
        let opts = self.clone().into_options();
        let Some(plan) = rabbitmq_sync::plan(dir, registry, &change, &opts)? else {
            return Ok(());
        };
        let crl_note = match change {
            Change::Revoked(_) | Change::Crl => {
                "\nRabbitMQ: every node reads the new CRL at its next handshake (a revoked \
                 certificate is refused)"
            }
            Change::Added(_) => "",
        };
        if let Some(copy) = &plan.copy {
            say(&format!("RabbitMQ: {copy}{crl_note}"));
        } else if !crl_note.is_empty() {
            say(crl_note.trim_start());
        }
        if plan.calls.is_empty() {
            return Ok(());
        }
        if self.apply {
            let done = rabbitmq_sync::apply(&plan, &opts)?;
            for c in done {
                say(&format!("ran: {c}"));
            }
            if let Change::Revoked(id) = &change {
                say(&format!(
                    "deleted RabbitMQ user {id}: an open session of it is closed on every node"
                ));
            }
        } else {
            let why = match &change {
                Change::Revoked(_) => {
                    "delete its user, which closes an open session on every node (or pass --apply)"
                }
                _ => "import the new users on one node of the cluster (or pass --apply)",
            };
            say(&format!("RabbitMQ: {why}:"));
            for c in &plan.calls {
                say(&format!("  {}", c.shown));
            }
        }
        Ok(())
    }
}

/// Whether this directory's broker is RabbitMQ (its folder holds definitions and the registry
/// says so).
pub fn is_rabbitmq(dir: &Path) -> bool {
    let layout = provision::layout::Layout::new(dir);
    layout.broker_file("definitions").is_dir()
        && provision::store::read_registry(dir)
            .ok()
            .flatten()
            .and_then(|r| r.broker)
            .is_some_and(|b| b.engine == provision::registry::Engine::Rabbitmq)
}

/// After a revocation on RabbitMQ: the command that clears the device's retained status on each
/// node (retained messages are kept per node).
pub fn clear_status_hint(
    registry: &Registry,
    dir: &Path,
    id: &str,
    connect: &crate::talk_cli::ConnectArgs,
    say: &dyn Fn(&str),
) {
    let Some(b) = &registry.broker else {
        return;
    };
    let mut text = String::from(
        "Clear its retained status (RabbitMQ keeps retained messages per node: on each node):",
    );
    for (host, port) in b.endpoints() {
        let addr = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        text.push_str(&format!(
            "\n  {}",
            provision::retained_status::clear_status_command(
                dir,
                id,
                &connect.operator,
                Some(&addr)
            )
        ));
    }
    say(&text);
}

/// After the CRL changed without a user changing (a renewal): where the nodes' copy of it must
/// go, when they run from another folder. Nothing for Mosquitto.
pub fn crl_changed(dir: &Path, say: &dyn Fn(&str)) -> Result<(), Error> {
    if !is_rabbitmq(dir) {
        return Ok(());
    }
    let sync = SyncArgs {
        apply: false,
        node: None,
        rabbitmqctl: None,
    };
    sync.finish(dir, Change::Crl, say)
}
