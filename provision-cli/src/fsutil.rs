//! All-or-nothing file writes that survive a crash, and bounded reads.
//!
//! Every command stages its files as temporaries, flushes them to disk, and only then moves them
//! into place, the registry last. Inside the provisioning directory ([`Transaction::in_store`])
//! the temporaries live in `<dir>/.staging/`, and before the first rename a journal
//! (`<dir>/.journal`) lists every step of the commit:
//!
//! - a crash (power cut, `kill -9`) before the journal exists leaves only `.staging/`, which the
//!   next run deletes: nothing was changed;
//! - a crash after it leaves the journal, and the next run replays it to the end (every step is
//!   idempotent): everything was changed;
//! - an error during the renames (the disk went read-only) undoes the renames already made, from
//!   hard-link backups of the files they replaced, and says so.
//!
//! Outputs outside it (`-o`, [`Transaction::new`]) are staged as `.<name>.<pid>.provision-tmp`
//! next to their destinations; one left by a run killed before its rename is removed by the next
//! write into that folder, once its writer no longer runs.
//!
//! [`recover`] does the replaying; [`crate::store::Store`] calls it before every command.
//! In debug builds (and with the `fault-injection` feature) `PROVISION_FAULT_AT=N` makes the N-th
//! file-system step of a run abort the process (SIGABRT, no destructors run, like `kill -9`): the
//! crash tests use it to cut a command at every step. A release build ignores it.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// Mode of private keys.
pub const SECRET: u32 = 0o600;
/// Mode of certificates, configs, the registry.
pub const PUBLIC: u32 = 0o644;
/// Mode of the broker's private key when a `mosquitto` group exists (the broker drops to that
/// user before it reads its files).
pub const BROKER_SECRET: u32 = 0o640;
/// Mode of directories we create (backups are [`PRIVATE_DIR`]).
pub const DIR: u32 = 0o755;
/// Mode of `backup-*` folders: they hold the old CA key.
pub const PRIVATE_DIR: u32 = 0o700;

/// Up to this many files (or directories) a commit flushes one by one, beyond it the whole file
/// system at once.
const FEW: usize = 64;

/// The journal of a commit in progress, relative to the provisioning directory.
pub const JOURNAL: &str = ".journal";
/// Where a store transaction stages its files.
pub const STAGING: &str = ".staging";

/// Counts file-system steps and aborts at `PROVISION_FAULT_AT` (the crash tests' power cut).
/// Only in debug builds (the tests run those) and with the `fault-injection` feature: a
/// release build ignores the variable, so a stray one in a user's environment does nothing.
#[cfg(any(test, debug_assertions, feature = "fault-injection"))]
pub fn fault_point() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static AT: OnceLock<Option<u64>> = OnceLock::new();
    static STEP: AtomicU64 = AtomicU64::new(0);
    let at = *AT.get_or_init(|| {
        std::env::var("PROVISION_FAULT_AT")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(at) = at {
        if STEP.fetch_add(1, Ordering::Relaxed) + 1 == at {
            std::process::abort();
        }
    }
}

/// A release build has no fault points.
#[cfg(not(any(test, debug_assertions, feature = "fault-injection")))]
#[inline(always)]
pub fn fault_point() {}

/// Whether the process umask takes bits away from `mode` (then a `chmod` after creation sets it
/// exactly). Read once from /proc; unknown means "assume it does".
fn narrowed(mode: u32) -> bool {
    static UMASK: OnceLock<Option<u32>> = OnceLock::new();
    let umask = UMASK.get_or_init(|| {
        let status = fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("Umask:"))?;
        u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
    });
    umask.is_none_or(|u| mode & u != 0)
}

/// One step of a commit, replayable: each is done only if it has not been done yet.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Op {
    /// Create a directory (missing when the commit was planned).
    Mkdir { path: PathBuf, mode: u32 },
    /// Rename a staged temporary over its destination; `backup` is a hard link to what the
    /// destination held before, if anything.
    Place {
        temp: PathBuf,
        dest: PathBuf,
        backup: Option<PathBuf>,
    },
    /// Move an existing file or directory to a new name that does not exist yet.
    Move { from: PathBuf, to: PathBuf },
}

#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    /// `forward`: replay to the end. `back`: an error stopped the commit; undo what was done.
    direction: Direction,
    ops: Vec<Op>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Direction {
    Forward,
    Back,
}

/// A set of files that appear together or not at all.
#[derive(Default)]
pub struct Transaction {
    /// The provisioning directory, for a journaled commit inside it.
    root: Option<PathBuf>,
    ops: Vec<Op>,
    dests: HashSet<PathBuf>,
    /// Directories known to exist or planned (so each is looked at once).
    dirs: HashSet<PathBuf>,
    /// Directories created eagerly (outputs outside a store), removed again on rollback.
    created_dirs: Vec<PathBuf>,
    /// Directories this commit creates: nothing in them exists yet, so nothing to check or back
    /// up there (a bulk add creates 100,000).
    new_dirs: HashSet<PathBuf>,
    /// Paths a [`Op::Move`] takes away: what was under them will not be there at commit.
    moved: HashSet<PathBuf>,
    /// Output directories already rid of dead runs' temporaries (each is read once).
    swept: HashSet<PathBuf>,
    staging_made: bool,
    committed: bool,
}

impl Transaction {
    /// A transaction for output files (`-o`) outside the provisioning directory: temporaries
    /// next to their destinations.
    pub fn new() -> Self {
        Self::default()
    }

    /// A journaled transaction inside the provisioning directory `root` (which the caller has
    /// locked and recovered).
    pub fn in_store(root: &Path) -> Self {
        let mut tx = Self::default();
        tx.root = Some(root.to_path_buf());
        tx
    }

    /// Writes `bytes` to a temporary for `dest` with `mode` (set at creation, so a key is never
    /// readable by others, not even for an instant).
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
        let dest = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => dest.to_path_buf(),
            _ => Path::new(".").join(dest),
        };
        // Two outputs on one path (`--to-sign X -o X`) would clash.
        if !self.dests.insert(dest.clone()) {
            return Err(Error::InvalidInput(format!(
                "{} is named twice as an output",
                dest.display()
            )));
        }
        let dir = dest
            .parent()
            .expect("joined onto a directory")
            .to_path_buf();
        if let Some(root) = self.root.clone() {
            self.plan_dirs(root, &dir)?;
        }
        // The rename would replace whatever is there: as root, `-o /dev/null` or `-o /dev/stdout`
        // would swap a system device for a regular file. Outputs are regular files (or new);
        // inside the provisioning directory a link is refused too (it is not written through).
        let in_new_dir = dest.parent().is_some_and(|p| self.new_dirs.contains(p));
        let existing = match self.root {
            _ if in_new_dir => Err(std::io::ErrorKind::NotFound.into()),
            Some(_) => fs::symlink_metadata(&dest),
            None => fs::metadata(&dest),
        };
        if existing.is_ok_and(|m| !m.is_file()) {
            return Err(Error::InvalidInput(format!(
                "{} exists and is not a regular file (a directory, device, pipe or link); name a \
                 file to write",
                dest.display()
            )));
        }
        let temp = match self.root.clone() {
            Some(root) => {
                let staging = root.join(STAGING);
                if !self.staging_made {
                    fault_point();
                    fs::create_dir(&staging)
                        .context(|| format!("creating {}", staging.display()))?;
                    self.staging_made = true;
                }
                staging.join(format!("{}.tmp", self.ops.len()))
            }
            None => {
                self.create_dir_all(&dir)?;
                // A run killed between staging and renaming left its temporary here: the
                // first write into the folder removes those whose writer is gone.
                if self.swept.insert(dir.clone()) {
                    sweep_dead_output_temps(&dir)?;
                }
                let name = dest
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                dir.join(format!(".{name}.{}.{OUTPUT_TEMP}", std::process::id()))
            }
        };
        fault_point();
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)
            .context(|| format!("creating {}", temp.display()))?;
        self.ops.push(Op::Place {
            temp: temp.clone(),
            dest,
            backup: None,
        });
        // The umask may have narrowed the mode; set it exactly.
        if narrowed(mode) {
            fault_point();
            file.set_permissions(fs::Permissions::from_mode(mode))
                .context(|| format!("setting permissions of {}", temp.display()))?;
        }
        if let Some(gid) = gid {
            fault_point();
            std::os::unix::fs::fchown(&file, None, Some(gid))
                .context(|| format!("giving {} to the broker's group", temp.display()))?;
        }
        fault_point();
        file.write_all(bytes)
            .context(|| format!("writing {}", temp.display()))?;
        Ok(())
    }

    /// Moves `from` (a file or directory) to `to`, which must not exist, as one step of the
    /// commit (`init --force` moves the old CA to its backup this way).
    pub fn move_path(&mut self, from: &Path, to: &Path) -> Result<()> {
        if let Some(root) = self.root.clone() {
            if let Some(parent) = to.parent() {
                self.plan_dirs(root, parent)?;
            }
        }
        self.ops.push(Op::Move {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
        });
        self.dirs.remove(from);
        self.moved.insert(from.to_path_buf());
        Ok(())
    }

    /// True when an earlier [`Transaction::move_path`] of this transaction takes `path` (or a
    /// folder holding it) away.
    pub fn moves_away(&self, path: &Path) -> bool {
        path.ancestors().any(|a| self.moved.contains(a))
    }

    /// Creates directory `dir` with `mode` as a step of the commit (must not exist).
    pub fn mkdir(&mut self, dir: &Path, mode: u32) -> Result<()> {
        if let Some(root) = self.root.clone() {
            if let Some(parent) = dir.parent() {
                self.plan_dirs(root, parent)?;
            }
            self.dirs.insert(dir.to_path_buf());
            self.new_dirs.insert(dir.to_path_buf());
            self.ops.push(Op::Mkdir {
                path: dir.to_path_buf(),
                mode,
            });
            Ok(())
        } else {
            fault_point();
            std::fs::DirBuilder::new()
                .mode(mode)
                .create(dir)
                .context(|| format!("creating directory {}", dir.display()))?;
            fault_point();
            fs::set_permissions(dir, fs::Permissions::from_mode(mode))
                .context(|| format!("setting permissions of {}", dir.display()))?;
            self.created_dirs.push(dir.to_path_buf());
            Ok(())
        }
    }

    /// Inside a store: plans `dir` and its missing parents as commit steps, and refuses a
    /// symbolic link or a non-directory on the way (nothing is written through a link to a
    /// place outside the provisioning directory). Each directory is looked at once.
    fn plan_dirs(&mut self, root: PathBuf, dir: &Path) -> Result<()> {
        if self.dirs.contains(dir) {
            return Ok(());
        }
        let rel = dir.strip_prefix(&root).map_err(|_| {
            Error::InvalidInput(format!(
                "{} is outside the provisioning directory {}",
                dir.display(),
                root.display()
            ))
        })?;
        let mut cur = root;
        for c in rel.components() {
            let Component::Normal(name) = c else {
                return Err(Error::InvalidInput(format!(
                    "{} is not a plain path inside the provisioning directory",
                    dir.display()
                )));
            };
            cur.push(name);
            if self.dirs.contains(&cur) {
                continue;
            }
            let meta = if self.moved.contains(&cur) {
                Err(std::io::ErrorKind::NotFound.into())
            } else {
                fs::symlink_metadata(&cur)
            };
            match meta {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(Error::UnsafePath {
                        path: cur,
                        reason:
                            "is a symbolic link; provision does not write through links inside \
                             its directory (replace it with a real directory)"
                                .into(),
                    })
                }
                Ok(_) => {
                    return Err(Error::UnsafePath {
                        path: cur,
                        reason: "is not a directory".into(),
                    })
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.ops.push(Op::Mkdir {
                        path: cur.clone(),
                        mode: DIR,
                    });
                    self.new_dirs.insert(cur.clone());
                }
                Err(e) => return Err(e).context(|| format!("inspecting {}", cur.display())),
            }
            self.dirs.insert(cur.clone());
        }
        Ok(())
    }

    /// Creates `dir` and its missing parents (0755) now, remembering which ones to remove on
    /// rollback. Inside a store the directories are planned as commit steps instead.
    pub fn create_dir_all(&mut self, dir: &Path) -> Result<()> {
        if let Some(root) = self.root.clone() {
            return self.plan_dirs(root, dir);
        }
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
            fault_point();
            fs::create_dir(&d).context(|| format!("creating directory {}", d.display()))?;
            fault_point();
            fs::set_permissions(&d, fs::Permissions::from_mode(DIR))
                .context(|| format!("setting permissions of {}", d.display()))?;
            self.created_dirs.push(d);
        }
        Ok(())
    }

    /// Flushes every staged file to disk, then moves them into place in staging order. Stage
    /// the registry last: it is the source of truth and must never point at a file that is
    /// not there yet. On an error every file is as it was before; after a crash, the next
    /// [`recover`] finishes the commit.
    pub fn commit(mut self) -> Result<()> {
        self.sync_staged()?;
        self.keep_backups()?;
        let journal = self.root.as_ref().map(|r| r.join(JOURNAL));
        if let Some(j) = &journal {
            write_journal(j, Direction::Forward, &self.ops)?;
        }
        for i in 0..self.ops.len() {
            if let Err(e) = apply(&self.ops[i], Direction::Forward, true) {
                let undone = match &journal {
                    Some(j) => write_journal(j, Direction::Back, &self.ops).and_then(|()| {
                        replay(&self.ops[..i], Direction::Back)?;
                        remove_journal(j)
                    }),
                    None => replay(&self.ops[..i], Direction::Back),
                };
                self.committed = undone.is_err(); // keep what recovery needs
                return match undone {
                    Ok(()) => Err(e),
                    Err(u) => Err(Error::Io {
                        context: format!(
                            "{e}; undoing the steps already made failed too ({u}); the next \
                             provision run finishes the undo"
                        ),
                        source: std::io::Error::other("interrupted commit"),
                    }),
                };
            }
        }
        self.sync_dests()?;
        self.committed = true;
        if let Some(j) = &journal {
            remove_journal(j)?;
        }
        self.cleanup();
        Ok(())
    }

    /// Flushes every staged file: one `fsync` each for a few, one `syncfs` for many (a bulk
    /// `device add` of 100,000 devices stages 200,000 files, and as many fsyncs would dominate
    /// its run time; but `syncfs` also waits for every other dirty file on the file system, which
    /// on a busy machine makes a one-device change wait for other programs' writes).
    fn sync_staged(&self) -> Result<()> {
        let temps: Vec<&Path> = self
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Place { temp, .. } => Some(temp.as_path()),
                _ => None,
            })
            .collect();
        fault_point();
        if temps.len() > FEW {
            return syncfs(temps[0]);
        }
        temps.iter().try_for_each(|t| {
            File::open(t)
                .and_then(|f| f.sync_all())
                .context(|| format!("flushing {}", t.display()))
        })
    }

    /// Makes the renames durable: an fsync of each directory written, or one syncfs for many.
    fn sync_dests(&self) -> Result<()> {
        let mut dirs: Vec<&Path> = self
            .ops
            .iter()
            .filter_map(|op| match op {
                Op::Place { dest, .. } => dest.parent(),
                Op::Move { to, .. } => to.parent(),
                Op::Mkdir { path, .. } => path.parent(),
            })
            .collect();
        // A move takes its source away from its directory too.
        dirs.extend(self.ops.iter().filter_map(|op| match op {
            Op::Move { from, .. } => from.parent(),
            _ => None,
        }));
        dirs.sort();
        dirs.dedup();
        fault_point();
        if dirs.len() > FEW {
            return syncfs(dirs[0]);
        }
        dirs.iter().try_for_each(|d| sync_dir(d))
    }

    /// Hard-links every file a rename will replace, so the rename can be undone.
    fn keep_backups(&mut self) -> Result<()> {
        for op in &mut self.ops {
            let Op::Place { temp, dest, backup } = op else {
                continue;
            };
            // A file under a path moved away earlier in the commit is not replaced by it.
            if dest.parent().is_some_and(|p| self.new_dirs.contains(p))
                || !dest.exists()
                || dest.ancestors().any(|a| self.moved.contains(a))
            {
                continue;
            }
            let mut name = temp.clone().into_os_string();
            name.push(".old");
            let b = PathBuf::from(name);
            fault_point();
            fs::hard_link(&*dest, &b)
                .context(|| format!("keeping a backup of {}", dest.display()))?;
            *backup = Some(b);
        }
        Ok(())
    }

    /// Removes the backups and the staging directory after a finished commit.
    fn cleanup(&mut self) {
        match &self.root {
            Some(root) => {
                if self.staging_made {
                    fault_point();
                    let _ = fs::remove_dir_all(root.join(STAGING));
                }
            }
            None => {
                for op in &self.ops {
                    if let Op::Place {
                        backup: Some(b), ..
                    } = op
                    {
                        fault_point();
                        let _ = fs::remove_file(b);
                    }
                }
            }
        }
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for op in &self.ops {
            if let Op::Place { temp, backup, .. } = op {
                let _ = fs::remove_file(temp);
                if let Some(b) = backup {
                    let _ = fs::remove_file(b);
                }
            }
        }
        if let (Some(root), true) = (&self.root, self.staging_made) {
            let _ = fs::remove_dir_all(root.join(STAGING));
        }
        for d in self.created_dirs.iter().rev() {
            let _ = fs::remove_dir(d);
        }
    }
}

/// Does one step in `direction`, unless it is done already (so a replay can repeat it).
fn apply(op: &Op, direction: Direction, first_time: bool) -> Result<()> {
    let exists = |p: &Path| fs::symlink_metadata(p).is_ok();
    match (op, direction) {
        (Op::Mkdir { path, mode }, Direction::Forward) => {
            if first_time || !exists(path) {
                fault_point();
                std::fs::DirBuilder::new()
                    .mode(*mode)
                    .create(path)
                    .context(|| format!("creating directory {}", path.display()))?;
                if narrowed(*mode) {
                    fault_point();
                    fs::set_permissions(path, fs::Permissions::from_mode(*mode))
                        .context(|| format!("setting permissions of {}", path.display()))?;
                }
            }
        }
        (Op::Mkdir { path, .. }, Direction::Back) => {
            // Only if empty: whatever else is in it was not ours to remove.
            fault_point();
            let _ = fs::remove_dir(path);
        }
        (Op::Place { temp, dest, .. }, Direction::Forward) => {
            if first_time || exists(temp) {
                fault_point();
                rename_step(temp, dest).context(|| format!("renaming into {}", dest.display()))?;
            }
        }
        (Op::Place { temp, dest, backup }, Direction::Back) => {
            if exists(temp) {
                // Never renamed: the destination is untouched.
                fault_point();
                fs::remove_file(temp).context(|| format!("removing {}", temp.display()))?;
            } else {
                match backup {
                    Some(b) if exists(b) => {
                        fault_point();
                        fs::rename(b, dest).context(|| format!("restoring {}", dest.display()))?;
                    }
                    Some(_) => {} // restored already
                    None => {
                        fault_point();
                        match fs::remove_file(dest) {
                            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                                return Err(e).context(|| format!("removing {}", dest.display()))
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
        (Op::Move { from, to }, Direction::Forward) => {
            if first_time || (exists(from) && !exists(to)) {
                fault_point();
                rename_step(from, to)
                    .context(|| format!("moving {} to {}", from.display(), to.display()))?;
            }
        }
        (Op::Move { from, to }, Direction::Back) => {
            if exists(to) && !exists(from) {
                fault_point();
                fs::rename(to, from)
                    .context(|| format!("moving {} back to {}", to.display(), from.display()))?;
            }
        }
    }
    Ok(())
}

fn replay(ops: &[Op], direction: Direction) -> Result<()> {
    match direction {
        Direction::Forward => ops.iter().try_for_each(|op| apply(op, direction, false)),
        Direction::Back => ops
            .iter()
            .rev()
            .try_for_each(|op| apply(op, direction, false)),
    }
}

/// `fs::rename`, with a failure point for the tests that fail a commit at every rename.
fn rename_step(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(test)]
    if tests::cut_this_rename() {
        return Err(std::io::Error::other("power cut (test)"));
    }
    fs::rename(from, to)
}

/// Writes the journal atomically (temporary, flush, rename, directory flush).
fn write_journal(path: &Path, direction: Direction, ops: &[Op]) -> Result<()> {
    let dir = path.parent().expect("inside the store");
    let text = serde_json::to_vec(&Journal {
        direction,
        ops: ops.to_vec(),
    })
    .expect("journal serializes");
    let temp = dir.join(".journal.tmp");
    fault_point();
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PUBLIC)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temp)
        .context(|| format!("creating {}", temp.display()))?;
    let written = (|| {
        fault_point();
        f.write_all(&text)
            .context(|| format!("writing {}", temp.display()))?;
        fault_point();
        f.sync_all()
            .context(|| format!("flushing {}", temp.display()))?;
        fault_point();
        fs::rename(&temp, path).context(|| format!("writing {}", path.display()))
    })();
    if written.is_err() {
        // A full disk: the half-written journal goes (nothing was renamed yet).
        let _ = fs::remove_file(&temp);
    }
    written?;
    fault_point();
    sync_dir(dir)
}

fn remove_journal(path: &Path) -> Result<()> {
    fault_point();
    fs::remove_file(path).context(|| format!("removing {}", path.display()))?;
    fault_point();
    sync_dir(path.parent().expect("inside the store"))
}

/// What [`recover`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Recovered {
    /// Nothing was interrupted.
    Clean,
    /// Staged files of a command killed before its commit were removed; nothing had changed.
    Discarded,
    /// A commit killed halfway was finished.
    Finished,
    /// A commit stopped by an error was undone.
    Undone,
}

/// True when a command was interrupted in `root` (a journal or staged files are left).
pub fn needs_recovery(root: &Path) -> bool {
    fs::symlink_metadata(root.join(JOURNAL)).is_ok()
        || fs::symlink_metadata(root.join(STAGING)).is_ok()
        || fs::symlink_metadata(root.join(".journal.tmp")).is_ok()
}

/// Finishes (or undoes) a commit that a crash interrupted, and removes the temporaries of a
/// command killed before its commit. Call it with the directory's write lock held.
pub fn recover(root: &Path) -> Result<Recovered> {
    let journal = root.join(JOURNAL);
    let mut result = Recovered::Clean;
    match read_bounded(&journal, 1 << 30, "journal") {
        Ok(bytes) => {
            let j: Journal = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                path: journal.clone(),
                reason: format!(
                    "the journal of an interrupted command does not parse ({e}); restore the \
                     directory from a backup"
                ),
            })?;
            for op in &j.ops {
                let paths: Vec<&Path> = match op {
                    Op::Mkdir { path, .. } => vec![path],
                    Op::Place { temp, dest, backup } => {
                        let mut v = vec![temp.as_path(), dest.as_path()];
                        v.extend(backup.as_deref());
                        v
                    }
                    Op::Move { from, to } => vec![from, to],
                };
                // A journal is ours only if it speaks of this directory.
                if let Some(p) = paths.iter().find(|p| !p.starts_with(root)) {
                    return Err(Error::Corrupt {
                        path: journal.clone(),
                        reason: format!("it names {} outside the directory", p.display()),
                    });
                }
            }
            replay(&j.ops, j.direction)?;
            fault_point();
            syncfs(root)?;
            remove_journal(&journal)?;
            result = match j.direction {
                Direction::Forward => Recovered::Finished,
                Direction::Back => Recovered::Undone,
            };
        }
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    for leftover in [root.join(STAGING), root.join(".journal.tmp")] {
        match fs::symlink_metadata(&leftover) {
            Ok(m) => {
                fault_point();
                if m.is_dir() {
                    fs::remove_dir_all(&leftover)
                } else {
                    fs::remove_file(&leftover)
                }
                .context(|| format!("removing {}", leftover.display()))?;
                if result == Recovered::Clean {
                    result = Recovered::Discarded;
                }
            }
            Err(_) => continue,
        }
    }
    Ok(result)
}

/// Removes the temporaries a write outside the journal left in `dir` when it was killed
/// (`.<name>.<pid>.tmp` and their `.old` backups: what `provision` before the journal, or an
/// interrupted `-o` output, leaves). Returns how many it removed; a missing `dir` is fine.
pub fn sweep_stale_temps(dir: &Path) -> Result<usize> {
    // Only a real directory: a link (or a file) in its place is refused later, by the write.
    if !fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(0);
    }
    let entries = fs::read_dir(dir).context(|| format!("reading {}", dir.display()))?;
    let mut removed = 0;
    for entry in entries {
        let entry = entry.context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_stale_temp_name(name) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        fault_point();
        fs::remove_file(entry.path()).context(|| format!("removing {}", entry.path().display()))?;
        removed += 1;
    }
    Ok(removed)
}

/// Suffix of an output's temporary, `.<name>.<pid>.provision-tmp` next to the output (and of its
/// backup, which adds `.old`).
const OUTPUT_TEMP: &str = "provision-tmp";

/// The writer's pid in the name of an output's temporary or its backup.
fn output_temp_pid(name: &str) -> Option<libc::pid_t> {
    let name = name.strip_suffix(".old").unwrap_or(name);
    let rest = name
        .strip_prefix('.')?
        .strip_suffix(OUTPUT_TEMP)?
        .strip_suffix('.')?;
    let (base, pid) = rest.rsplit_once('.')?;
    if base.is_empty() || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok().filter(|&p| p > 0)
}

/// Whether process `pid` exists (one of another user counts).
fn process_alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    alive || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Removes from the output folder `dir` the temporaries (and backups) of outputs whose writer
/// no longer runs: a `-o` write killed before its rename. Only regular files of ours are
/// removed (a link or another user's file by that name is left alone); a live run's are kept.
fn sweep_dead_output_temps(dir: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(output_temp_pid) else {
            continue;
        };
        if process_alive(pid) {
            continue;
        }
        let path = entry.path();
        let ours = fs::symlink_metadata(&path)
            .is_ok_and(|m| m.is_file() && std::os::unix::fs::MetadataExt::uid(&m) == me);
        if ours {
            fault_point();
            match fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).context(|| format!("removing {}", path.display()))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// `.<name>.<digits>.tmp`, optionally followed by `.old`.
fn is_stale_temp_name(name: &str) -> bool {
    let name = name.strip_suffix(".old").unwrap_or(name);
    let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    match rest.rsplit_once('.') {
        Some((base, pid)) => {
            !base.is_empty() && !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// Reads a whole regular file of at most `limit` bytes. A device (`/dev/zero`), a FIFO or a
/// directory is refused at once, without blocking or reading it.
pub fn read_bounded(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>> {
    let file = open_regular(path, what)?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(Error::InvalidInput(format!(
            "{} is larger than {limit} bytes, too large for the {what}",
            path.display()
        )));
    }
    Ok(bytes)
}

/// [`read_bounded`] as UTF-8 text.
pub fn read_text_bounded(path: &Path, limit: u64, what: &str) -> Result<String> {
    String::from_utf8(read_bounded(path, limit, what)?)
        .map_err(|_| Error::InvalidInput(format!("{} is not UTF-8 text ({what})", path.display())))
}

/// Opens `path` for reading if it is a regular file. Opening does not block on a FIFO
/// (O_NONBLOCK), and the type is checked on the open descriptor.
pub fn open_regular(path: &Path, what: &str) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .context(|| format!("reading {what} {}", path.display()))?;
    let meta = file
        .metadata()
        .context(|| format!("reading {}", path.display()))?;
    if !meta.is_file() {
        return Err(Error::InvalidInput(format!(
            "{} is not a regular file (it is a directory, device or pipe); name a file as the {what}",
            path.display()
        )));
    }
    Ok(file)
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

/// A lock on the provisioning directory: exclusive for a command that writes, shared for one
/// that only reads, so a reader never sees a commit halfway.
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// The write lock; creates `dir` (0755) if it is missing.
    pub fn acquire(dir: &Path) -> Result<Self> {
        if !dir.exists() {
            fault_point();
            fs::create_dir_all(dir).context(|| format!("creating directory {}", dir.display()))?;
        }
        let path = dir.join(".lock");
        fault_point();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(PUBLIC)
            // A link planted as `.lock` is not followed (it could name any file to create).
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| lock_error(&path, e))?;
        file.lock()
            .context(|| format!("locking {}", path.display()))?;
        Ok(DirLock { _file: file })
    }

    /// The read lock, if the directory has a lock file (a read-only copy may have none).
    pub fn acquire_shared(dir: &Path) -> Result<Option<Self>> {
        let path = dir.join(".lock");
        match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(file) => {
                if !file.metadata().is_ok_and(|m| m.is_file()) {
                    return Err(Error::UnsafePath {
                        path,
                        reason: "is not a regular file".into(),
                    });
                }
                file.lock_shared()
                    .context(|| format!("locking {}", path.display()))?;
                Ok(Some(DirLock { _file: file }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(lock_error(&path, e)),
        }
    }
}

fn lock_error(path: &Path, e: std::io::Error) -> Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return Error::UnsafePath {
            path: path.to_path_buf(),
            reason: "is a symbolic link; remove it (provision recreates its lock file)".into(),
        };
    }
    Error::Io {
        context: format!("opening lock file {}", path.display()),
        source: e,
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

    /// The same inside a store: the journal is switched to "undo", the renames are undone, and
    /// neither the journal nor the staging area is left.
    #[test]
    fn a_store_commit_cut_at_any_rename_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("crl.pem"), b"old crl").unwrap();
        fs::write(d.join("registry.toml"), b"old registry").unwrap();
        let stage_all = |tx: &mut Transaction| {
            tx.stage(&d.join("devices/x/device.key"), b"new key", SECRET)
                .unwrap();
            tx.stage(&d.join("crl.pem"), b"new crl", PUBLIC).unwrap();
            tx.stage(&d.join("registry.toml"), b"new registry", PUBLIC)
                .unwrap();
        };
        let before = snapshot(d);
        for cut in 0..3 {
            let mut tx = Transaction::in_store(d);
            stage_all(&mut tx);
            RENAMES_BEFORE_CUT.with(|c| c.set(Some(cut)));
            let err = tx.commit().unwrap_err();
            RENAMES_BEFORE_CUT.with(|c| c.set(None));
            assert!(err.to_string().contains("power cut"), "{err}");
            assert_eq!(snapshot(d), before, "cut before rename {cut}");
            assert_eq!(recover(d).unwrap(), Recovered::Clean);
        }
        let mut tx = Transaction::in_store(d);
        stage_all(&mut tx);
        tx.commit().unwrap();
        assert_eq!(fs::read(d.join("registry.toml")).unwrap(), b"new registry");
        assert!(!needs_recovery(d));
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

    /// An output's temporary whose writer is gone (killed before its rename) is removed by the
    /// next write into that folder; a live writer's, a link and a look-alike are kept.
    #[test]
    fn a_dead_runs_output_temporary_is_removed_by_the_next_write() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = d.join(format!(".blob.bin.{dead}.provision-tmp"));
        let stale_backup = d.join(format!(".other.bin.{dead}.provision-tmp.old"));
        let live = d.join(format!(".blob.bin.{}.provision-tmp", std::process::id()));
        let link = d.join(format!(".link.bin.{dead}.provision-tmp"));
        let mine = d.join("notes.1.tmp");
        for f in [&stale, &stale_backup, &live, &mine] {
            fs::write(f, b"x").unwrap();
        }
        std::os::unix::fs::symlink(&mine, &link).unwrap();
        let mut tx = Transaction::new();
        tx.stage(&d.join("new.bin"), b"new", PUBLIC).unwrap();
        assert!(!stale.exists() && !stale_backup.exists());
        assert!(live.exists() && mine.exists());
        assert!(fs::symlink_metadata(&link).is_ok());
        tx.commit().unwrap();
        assert_eq!(fs::read(d.join("new.bin")).unwrap(), b"new");
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
