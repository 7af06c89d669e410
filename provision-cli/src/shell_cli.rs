//! Shell integration: completion scripts (clap_complete), man pages (clap_mangen), and typo
//! suggestions that never point at a destructive command.

use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::Args;
use clap_complete::Shell;
use provision::Error;

/// Subcommands that destroy or revoke: a typo of another command must not be steered to them
/// (`device renwe` once suggested `revoke` before `renew`).
pub const DESTRUCTIVE: &[&str] = &["revoke"];

/// Drops destructive commands from clap's "a similar subcommand exists" tip.
pub fn safe_suggestions(e: clap::Error, cmd: &clap::Command) -> clap::Error {
    if e.kind() != ErrorKind::InvalidSubcommand {
        return e;
    }
    let Some(ContextValue::Strings(suggested)) = e.get(ContextKind::SuggestedSubcommand) else {
        return e;
    };
    let kept: Vec<String> = suggested
        .iter()
        .filter(|s| !DESTRUCTIVE.contains(&s.as_str()))
        .cloned()
        .collect();
    let mut safe = clap::Error::new(ErrorKind::InvalidSubcommand).with_cmd(cmd);
    for (kind, value) in e.context() {
        if kind != ContextKind::SuggestedSubcommand {
            safe.insert(kind, value.clone());
        }
    }
    if !kept.is_empty() {
        safe.insert(
            ContextKind::SuggestedSubcommand,
            ContextValue::Strings(kept),
        );
    }
    safe
}

#[derive(Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell
    shell: Shell,
}

impl CompletionsArgs {
    pub fn run(self, mut cmd: clap::Command) -> Result<(), Error> {
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut cmd, "provision", &mut script);
        print_bytes(&script)
    }
}

#[derive(Args)]
pub struct ManArgs {
    /// Write provision.1 and one page per subcommand (provision-device-renew.1, ...) here;
    /// without it, print provision.1
    #[arg(long)]
    out_dir: Option<PathBuf>,
}

impl ManArgs {
    /// `dir` is the provisioning directory: the pages may not land in its folders (`ca/`,
    /// `devices/`, ...), the same rule as every `-o`.
    pub fn run(self, cmd: clap::Command, dir: &Path) -> Result<(), Error> {
        match self.out_dir {
            None => {
                let mut page = Vec::new();
                clap_mangen::Man::new(cmd)
                    .render(&mut page)
                    .map_err(|e| io_error(e, Path::new("memory")))?;
                print_bytes(&page)
            }
            Some(out) => {
                provision::store::check_output_outside(dir, &out.join("provision.1"))?;
                std::fs::create_dir_all(&out).map_err(|e| io_error(e, &out))?;
                clap_mangen::generate_to(cmd, &out).map_err(|e| io_error(e, &out))?;
                println!("wrote the man pages to {}", out.display());
                Ok(())
            }
        }
    }
}

fn io_error(source: std::io::Error, path: &Path) -> Error {
    Error::Io {
        context: format!("writing to {}", path.display()),
        source,
    }
}

/// Writes `bytes` to stdout; a reader that stopped early (`| head`) is not an error.
fn print_bytes(bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(io_error(e, Path::new("stdout")))
        }
        _ => Ok(()),
    }
}
