//! The provisioning directory opened for one command: its layout, its lock, its registry and CA.
//!
//! Opening it for writing takes the exclusive lock and first completes (or discards) whatever an
//! interrupted command left behind (see [`crate::fsutil::recover`]). Opening it for reading takes
//! only the shared lock and writes nothing, so a CA on read-only media can be listed and read.

use std::cell::RefCell;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fsutil::{self, DirLock, Recovered, Transaction};
use crate::layout::Layout;
use crate::pki::Ca;
use crate::registry::Registry;
use crate::registry_files;

/// Largest key or certificate file we read (a PEM key is a few hundred bytes).
pub const PEM_LIMIT: u64 = 64 * 1024;
/// Largest CRL read back (`crl.pem`): room for hundreds of thousands of revoked serials.
pub const CRL_LIMIT: u64 = 16 << 20;

/// What a CA owns, besides the OTA keys: `init --force` moves it all to the backup.
pub const CA_OWNED: &[&str] = &[
    "registry",
    "registry.toml",
    "crl.pem",
    "ca",
    "operator",
    "devices",
    "broker",
];

pub struct Store {
    pub layout: Layout,
    _lock: Option<DirLock>,
    /// Opened for writing: [`Store::registry`] keeps what it loaded, so that
    /// [`Store::stage_registry`] writes back only the registry files that changed.
    writes: bool,
    loaded: RefCell<Option<registry_files::Loaded>>,
}

impl Store {
    /// Opens the existing provisioning directory `dir` for a command that writes: locks it and
    /// recovers an interrupted command. A missing directory is never created here: a command
    /// that fails must not leave an empty one behind.
    pub fn open(dir: &Path) -> Result<Store> {
        check_dir(dir)?;
        if !dir.is_dir() {
            return Err(Error::no_ca(dir));
        }
        let store = Store::create(dir)?;
        store.check_whole()?;
        Ok(store)
    }

    /// Opens `dir` for a command that only reads: the shared lock, nothing written. If an
    /// interrupted command needs completing, that is done first (which needs write access).
    pub fn open_read(dir: &Path) -> Result<Store> {
        check_dir(dir)?;
        if !dir.is_dir() {
            return Err(Error::no_ca(dir));
        }
        let lock = DirLock::acquire_shared(dir)?;
        // Only a journal means files may disagree with the registry; staged files a killed
        // command left behind change nothing a reader sees (the next writer removes them).
        if std::fs::symlink_metadata(dir.join(fsutil::JOURNAL)).is_ok() {
            drop(lock);
            return match Store::open(dir) {
                Ok(s) => Ok(s),
                Err(Error::Io { source, .. })
                    if matches!(
                        source.raw_os_error(),
                        Some(libc::EROFS) | Some(libc::EACCES) | Some(libc::EPERM)
                    ) =>
                {
                    Err(Error::Interrupted(dir.to_path_buf()))
                }
                Err(e) => Err(e),
            };
        }
        let store = Store {
            layout: Layout::new(dir),
            _lock: lock,
            writes: false,
            loaded: RefCell::new(None),
        };
        store.check_whole()?;
        Ok(store)
    }

    /// Opens (and locks) `dir`, creating it if needed (`provision init`), and recovers an
    /// interrupted command.
    pub fn create(dir: &Path) -> Result<Store> {
        check_dir(dir)?;
        let lock = DirLock::acquire(dir)?;
        match fsutil::recover(dir)? {
            Recovered::Clean | Recovered::Discarded => {}
            Recovered::Finished => eprintln!(
                "note: completed a command that was interrupted in {}",
                dir.display()
            ),
            Recovered::Undone => eprintln!(
                "note: undid a command that failed halfway in {}",
                dir.display()
            ),
        }
        // Temporaries a killed run of an older provision left where it wrote.
        for sub in ["", "ca", "operator", "broker", "ota"] {
            fsutil::sweep_stale_temps(&dir.join(sub))?;
        }
        Ok(Store {
            layout: Layout::new(dir),
            _lock: Some(lock),
            writes: true,
            loaded: RefCell::new(None),
        })
    }

    /// A journaled transaction inside this directory.
    pub fn transaction(&self) -> Transaction {
        Transaction::in_store(self.layout.root())
    }

    /// Refuses a directory that lost its registry but kept what the registry describes (what
    /// an `init --force` killed halfway by an older `provision` left).
    fn check_whole(&self) -> Result<()> {
        if registry_files::exists(&self.layout) {
            return Ok(());
        }
        let found: Vec<&str> = CA_OWNED
            .iter()
            .copied()
            .filter(|n| self.layout.root().join(n).exists())
            .collect();
        if found.is_empty() {
            return Ok(());
        }
        Err(Error::HalfMoved {
            dir: self.layout.root().to_path_buf(),
            found: found.join(", "),
        })
    }

    /// Loads the registry, requiring that `provision init` has run.
    pub fn registry(&self) -> Result<Registry> {
        let no_ca = || Error::no_ca(self.layout.root());
        if !self.writes {
            return registry_files::load(&self.layout)?.ok_or_else(no_ca);
        }
        let (registry, loaded) =
            registry_files::load_for_update(&self.layout)?.ok_or_else(no_ca)?;
        *self.loaded.borrow_mut() = Some(loaded);
        Ok(registry)
    }

    /// Loads the CA key, refusing one that others can read or that does not belong to `ca.crt`.
    pub fn ca(&self, registry: &Registry) -> Result<Ca> {
        let path = self.layout.ca_key();
        let file = match fsutil::open_regular(&path, "CA key") {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::no_ca(self.layout.root()))
            }
            r => r?,
        };
        let mode = file.metadata().map(|m| m.permissions().mode()).unwrap_or(0);
        drop(file);
        if mode & 0o077 != 0 {
            return Err(Error::UnsafePath {
                reason: format!(
                    "is readable by group or others (mode {:04o}): anyone who can read it can \
                     issue certificates your broker accepts. Run `chmod 600 {}` (and consider \
                     whether it was copied)",
                    mode & 0o7777,
                    path.display()
                ),
                path,
            });
        }
        let pem = fsutil::read_text_bounded(&path, PEM_LIMIT, "CA key")?;
        let ca = Ca::load(&registry.ca, &pem).map_err(|e| Error::Corrupt {
            path: path.clone(),
            reason: format!("the CA key does not load ({e})"),
        })?;
        let cert_path = self.layout.ca_cert();
        let cert_pem = fsutil::read_bounded(&cert_path, PEM_LIMIT, "CA certificate")?;
        let matches = x509_parser::pem::parse_x509_pem(&cert_pem)
            .ok()
            .and_then(|(_, pem)| {
                let (_, cert) = x509_parser::parse_x509_certificate(&pem.contents).ok()?;
                Some(cert.public_key().subject_public_key.data.as_ref() == ca.public_key_raw())
            });
        match matches {
            Some(true) => Ok(ca.with_cert_pem(cert_pem)),
            Some(false) => Err(Error::Corrupt {
                path,
                reason: format!(
                    "the CA key does not match {} (a different key pair): certificates signed \
                     with it would not chain, and a CRL signed with it would lock every device \
                     out. Put back the key that belongs to the certificate",
                    cert_path.display()
                ),
            }),
            None => Err(Error::Corrupt {
                path: cert_path,
                reason: "is not a PEM certificate".into(),
            }),
        }
    }

    /// Stages the registry; call it last, so it lands after every file it describes.
    /// Only the files that differ from what [`Store::registry`] loaded are written (all of them
    /// for a registry that was not loaded, or one converted from an old `registry.toml`).
    pub fn stage_registry(&self, tx: &mut Transaction, registry: &Registry) -> Result<()> {
        registry_files::stage(tx, &self.layout, registry, self.loaded.borrow().as_ref())
    }

    /// Refuses an output path (`-o`) that names a file inside this provisioning directory.
    pub fn check_output(&self, output: &Path) -> Result<()> {
        check_output_outside(self.layout.root(), output)
    }
}

/// The registry of `dir` read under the shared lock (after completing an interrupted command),
/// for a command that needs nothing else from the directory; `Ok(None)` when there is none.
pub fn read_registry(dir: &Path) -> Result<Option<Registry>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let store = Store::open_read(dir)?;
    registry_files::load(&store.layout)
}

/// `--dir` must be a directory (or not exist yet).
fn check_dir(dir: &Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Err(Error::InvalidInput(format!(
            "--dir {} is a file, not a directory: name the provisioning directory (default \
             ./certs)",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// Refuses `output` when it would replace one of provision's own files in `root`: the registry,
/// the CRL, its hidden files, or anything in a folder inside it (`ca/`, `devices/`, `broker/`,
/// `operator/`, `ota/`, `backup-*/`). `-o` pointed at the CA key would otherwise overwrite it
/// with no backup. A new file at the top of the directory (`certs/kitchen.bin`) is allowed.
pub fn check_output_outside(root: &Path, output: &Path) -> Result<()> {
    let Ok(root) = std::fs::canonicalize(root) else {
        return Ok(()); // no directory, nothing to protect
    };
    // The output may not exist yet: resolve its directory (links included), then add the name.
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(parent) = std::fs::canonicalize(parent) else {
        return Ok(()); // the write fails later with a clear message
    };
    let resolved = match std::fs::canonicalize(output) {
        Ok(p) => p,
        Err(_) => parent.join(output.file_name().unwrap_or_default()),
    };
    let owned = |p: &Path| match p.strip_prefix(&root) {
        Ok(rel) => {
            let mut parts = rel.components();
            match (parts.next(), parts.next()) {
                (None, _) => true,          // the directory itself
                (Some(_), Some(_)) => true, // inside one of its folders
                (Some(name), None) => {
                    let name = name.as_os_str().to_string_lossy();
                    name.starts_with('.') || ["registry.toml", "crl.pem"].contains(&&*name)
                }
            }
        }
        Err(_) => false,
    };
    if owned(&resolved) || owned(&parent.join(output.file_name().unwrap_or_default())) {
        return Err(Error::InvalidInput(format!(
            "-o {} is one of provision's own files in {} (keys, registry, CRL, broker folder): \
             writing it would replace them. Write it somewhere else",
            output.display(),
            root.display()
        )));
    }
    Ok(())
}
