//! Atomic, all-or-nothing file writes.
//!
//! Every command stages its files as hidden temporaries next to their destinations, flushes them
//! to disk, and only then renames them into place, the registry last. A failure at any step leaves
//! the directory exactly as it was: before the renames, the staged temporaries are removed when
//! the [`Transaction`] is dropped; during them, the renames already done are undone from hard-link
//! backups of the files they replaced (the tests cut every single rename).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// Mode of private keys.
pub const SECRET: u32 = 0o600;
/// Mode of certificates, configs, the registry.
pub const PUBLIC: u32 = 0o644;
/// Mode of the broker's private key when a `mosquitto` group exists (the broker drops to that
/// user before it reads its files).
pub const BROKER_SECRET: u32 = 0o640;

struct Staged {
    temp: PathBuf,
    dest: PathBuf,
    /// A hard link to the file `dest` held before, while the commit runs.
    backup: Option<PathBuf>,
}

/// A set of files that appear together or not at all.
#[derive(Default)]
pub struct Transaction {
    staged: Vec<Staged>,
    created_dirs: Vec<PathBuf>,
    committed: bool,
}

impl Transaction {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `bytes` to a temporary next to `dest` with `mode` (set at creation, so a key is
    /// never readable by others, not even for an instant) and optional group.
    pub fn stage(&mut self, dest: &Path, bytes: &[u8], mode: u32) -> Result<()> {
        self.stage_with_group(dest, bytes, mode, None)
    }

    pub fn stage_with_group(
        &mut self,
        dest: &Path,
        bytes: &[u8],
        mode: u32,
        gid: Option<u32>,
    ) -> Result<()> {
        // `app.bin` has an empty parent: make it `./app.bin` so the directory can be flushed.
        let dest = &match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => dest.to_path_buf(),
            _ => Path::new(".").join(dest),
        };
        // Two outputs on one path (`--to-sign X -o X`) would clash on the temporary's name.
        if self.staged.iter().any(|s| s.dest == *dest) {
            return Err(Error::InvalidInput(format!(
                "{} is named twice as an output",
                dest.display()
            )));
        }
        // The rename would replace whatever is there: as root, `-o /dev/null` or `-o /dev/stdout`
        // would swap a system device for a regular file. Outputs are regular files (or new).
        if let Ok(m) = fs::metadata(dest) {
            if !m.is_file() {
                return Err(Error::InvalidInput(format!(
                    "{} exists and is not a regular file (a directory, device or pipe); name a \
                     file to write",
                    dest.display()
                )));
            }
        }
        let dir = dest.parent().expect("joined onto a directory");
        self.create_dir_all(dir)?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp)
            .context(|| format!("creating {}", temp.display()))?;
        self.staged.push(Staged {
            temp: temp.clone(),
            dest: dest.to_path_buf(),
            backup: None,
        });
        // The umask may have narrowed the mode; set it exactly.
        fs::set_permissions(&temp, fs::Permissions::from_mode(mode))
            .context(|| format!("setting permissions of {}", temp.display()))?;
        if let Some(gid) = gid {
            std::os::unix::fs::chown(&temp, None, Some(gid))
                .context(|| format!("giving {} to the broker's group", temp.display()))?;
        }
        file.write_all(bytes)
            .context(|| format!("writing {}", temp.display()))?;
        Ok(())
    }

    /// Creates `dir` and its missing parents (0755), remembering which ones to remove on rollback.
    pub fn create_dir_all(&mut self, dir: &Path) -> Result<()> {
        let mut missing = Vec::new();
        let mut cur = Some(dir);
        while let Some(d) = cur {
            if d.as_os_str().is_empty() || d.exists() {
                break;
            }
            missing.push(d.to_path_buf());
            cur = d.parent();
        }
        for d in missing.into_iter().rev() {
            fs::create_dir(&d).context(|| format!("creating directory {}", d.display()))?;
            fs::set_permissions(&d, fs::Permissions::from_mode(0o755))
                .context(|| format!("setting permissions of {}", d.display()))?;
            self.created_dirs.push(d);
        }
        Ok(())
    }

    /// Flushes every staged file to disk, then renames them into place in staging order.
    /// Stage the registry last: it is the source of truth and must never point at a file
    /// that is not there yet. On any error, every file is as it was before.
    pub fn commit(mut self) -> Result<()> {
        sync_all_staged(&self.staged)?;
        self.keep_backups()?;
        for (i, s) in self.staged.iter().enumerate() {
            if let Err(e) = rename_step(&s.temp, &s.dest) {
                self.undo_renames(i);
                return Err(e).context(|| format!("renaming into {}", s.dest.display()));
            }
        }
        // Make the renames durable: one directory fsync, or one syncfs for many directories.
        let mut dirs: Vec<&Path> = self.staged.iter().filter_map(|s| s.dest.parent()).collect();
        dirs.sort();
        dirs.dedup();
        let synced = match dirs.as_slice() {
            [] => Ok(()),
            [one] => sync_dir(one),
            [first, ..] => syncfs(first),
        };
        if let Err(e) = synced {
            self.undo_renames(self.staged.len());
            return Err(e);
        }
        self.committed = true;
        for s in &self.staged {
            if let Some(b) = &s.backup {
                let _ = fs::remove_file(b);
            }
        }
        Ok(())
    }

    /// Hard-links every file a rename will replace, so the rename can be undone.
    fn keep_backups(&mut self) -> Result<()> {
        for s in &mut self.staged {
            if !s.dest.exists() {
                continue;
            }
            let mut name = s.temp.clone().into_os_string();
            name.push(".old");
            let backup = PathBuf::from(name);
            fs::hard_link(&s.dest, &backup)
                .context(|| format!("keeping a backup of {}", s.dest.display()))?;
            s.backup = Some(backup);
        }
        Ok(())
    }

    /// Puts back what the first `done` renames replaced (their backups), or removes what they
    /// created.
    fn undo_renames(&self, done: usize) {
        for s in self.staged[..done].iter().rev() {
            let _ = match &s.backup {
                Some(b) => fs::rename(b, &s.dest),
                None => fs::remove_file(&s.dest),
            };
        }
    }
}

/// `fs::rename`, with a failure point for the tests that cut a commit at every rename.
fn rename_step(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(test)]
    if tests::cut_this_rename() {
        return Err(std::io::Error::other("power cut (test)"));
    }
    fs::rename(from, to)
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for s in &self.staged {
            let _ = fs::remove_file(&s.temp);
            if let Some(b) = &s.backup {
                let _ = fs::remove_file(b);
            }
        }
        for d in self.created_dirs.iter().rev() {
            let _ = fs::remove_dir(d);
        }
    }
}

/// One `syncfs` flushes every staged file at once: a bulk `device add` of 1,000 devices stages
/// 2,000 files, and 2,000 separate fsyncs would dominate its run time.
fn sync_all_staged(staged: &[Staged]) -> Result<()> {
    let Some(first) = staged.first() else {
        return Ok(());
    };
    if staged.len() == 1 {
        return File::open(&first.temp)
            .and_then(|f| f.sync_all())
            .context(|| format!("flushing {}", first.temp.display()));
    }
    syncfs(&first.temp)
}

/// Flushes the whole filesystem that holds `path`.
fn syncfs(path: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let file = File::open(path).context(|| format!("opening {}", path.display()))?;
    // SAFETY: syncfs only reads the descriptor, which `file` keeps open for the call.
    let rc = unsafe { libc::syncfs(file.as_raw_fd()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .context(|| format!("flushing the filesystem of {}", path.display()));
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .context(|| format!("flushing directory {}", dir.display()))
}

/// Group id of `mosquitto`, if the group exists on this machine.
pub fn mosquitto_gid() -> Option<u32> {
    let groups = fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == "mosquitto")
            .then(|| fields.nth(1)?.parse().ok())
            .flatten()
    })
}

/// An exclusive lock on the provisioning directory, so two `provision` runs never interleave
/// their read-modify-write of the registry.
pub struct DirLock {
    _file: File,
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<Self> {
        let mut tx = Transaction::new();
        tx.create_dir_all(dir)?;
        tx.committed = true; // keep the directory
        let path = dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(PUBLIC)
            .open(&path)
            .context(|| format!("opening lock file {}", path.display()))?;
        file.lock()
            .context(|| format!("locking {}", path.display()))?;
        Ok(DirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Renames left before the injected failure (`None`: never fail).
        static RENAMES_BEFORE_CUT: Cell<Option<usize>> = const { Cell::new(None) };
    }

    pub(super) fn cut_this_rename() -> bool {
        RENAMES_BEFORE_CUT.with(|c| match c.get() {
            Some(0) => true,
            Some(n) => {
                c.set(Some(n - 1));
                false
            }
            None => false,
        })
    }

    fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, u32)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let m = fs::metadata(&p).unwrap();
                if m.is_dir() {
                    out.push((p.clone(), Vec::new(), m.permissions().mode()));
                    stack.push(p);
                } else {
                    out.push((p.clone(), fs::read(&p).unwrap(), m.permissions().mode()));
                }
            }
        }
        out.sort();
        out
    }

    /// The MCUboot-simulator idea applied to the provisioning directory: cut the commit at every
    /// single rename and check that nothing changed.
    #[test]
    fn a_commit_cut_at_any_rename_leaves_everything_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("crl.pem"), b"old crl").unwrap();
        fs::write(d.join("registry.toml"), b"old registry").unwrap();
        let stage_all = |tx: &mut Transaction| {
            tx.stage(&d.join("devices/x/device.key"), b"new key", SECRET)
                .unwrap();
            tx.stage(&d.join("crl.pem"), b"new crl", PUBLIC).unwrap();
            tx.stage(&d.join("devices/x/device.crt"), b"new crt", PUBLIC)
                .unwrap();
            tx.stage(&d.join("registry.toml"), b"new registry", PUBLIC)
                .unwrap();
        };
        let before = snapshot(d);
        for cut in 0..4 {
            let mut tx = Transaction::new();
            stage_all(&mut tx);
            RENAMES_BEFORE_CUT.with(|c| c.set(Some(cut)));
            let err = tx.commit().unwrap_err();
            RENAMES_BEFORE_CUT.with(|c| c.set(None));
            assert!(err.to_string().contains("power cut"), "{err}");
            assert_eq!(snapshot(d), before, "cut before rename {cut}");
        }
        let mut tx = Transaction::new();
        stage_all(&mut tx);
        tx.commit().unwrap();
        assert_eq!(fs::read(d.join("registry.toml")).unwrap(), b"new registry");
        assert_eq!(fs::read(d.join("crl.pem")).unwrap(), b"new crl");
        assert_eq!(
            fs::read(d.join("devices/x/device.key")).unwrap(),
            b"new key"
        );
        // No backups or temporaries are left behind.
        let names: Vec<_> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn commit_writes_with_exact_modes() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("a/b/secret.key");
        let pub_ = dir.path().join("a/pub.crt");
        let mut tx = Transaction::new();
        tx.stage(&key, b"k", SECRET).unwrap();
        tx.stage(&pub_, b"p", PUBLIC).unwrap();
        tx.commit().unwrap();
        assert_eq!(fs::read(&key).unwrap(), b"k");
        let mode = fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mode = fs::metadata(&pub_).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }

    #[test]
    fn the_same_destination_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.bin");
        let mut tx = Transaction::new();
        tx.stage(&out, b"a", PUBLIC).unwrap();
        assert!(matches!(
            tx.stage(&out, b"b", PUBLIC),
            Err(Error::InvalidInput(m)) if m.contains("named twice")
        ));
    }

    #[test]
    fn dropping_without_commit_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let existing = dir.path().join("existing.crt");
        fs::write(&existing, b"old").unwrap();
        {
            let mut tx = Transaction::new();
            tx.stage(&existing, b"new", PUBLIC).unwrap();
            tx.stage(&dir.path().join("new/dir/x.key"), b"x", SECRET)
                .unwrap();
        }
        assert_eq!(fs::read(&existing).unwrap(), b"old");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("existing.crt")]);
    }
}
