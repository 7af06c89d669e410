//! Atomic, all-or-nothing file writes.
//!
//! Every command stages its files as hidden temporaries next to their destinations, flushes them
//! to disk, and only then renames them into place, the registry last. A failure before the renames
//! leaves the directory exactly as it was; the staged temporaries are removed when the
//! [`Transaction`] is dropped without [`Transaction::commit`].

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
    /// that is not there yet.
    pub fn commit(mut self) -> Result<()> {
        sync_all_staged(&self.staged)?;
        for s in &self.staged {
            fs::rename(&s.temp, &s.dest)
                .context(|| format!("renaming into {}", s.dest.display()))?;
        }
        // Make the renames durable: one directory fsync, or one syncfs for many directories.
        let mut dirs: Vec<&Path> = self.staged.iter().filter_map(|s| s.dest.parent()).collect();
        dirs.sort();
        dirs.dedup();
        match dirs.as_slice() {
            [] => {}
            [one] => sync_dir(one)?,
            [first, ..] => syncfs(first)?,
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for s in &self.staged {
            let _ = fs::remove_file(&s.temp);
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
