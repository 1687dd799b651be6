//! Crash safety: the plan is journaled (and fsynced) before the first
//! change to the tree; every change is undoable from what is on disk.
//!
//! Replaced and removed paths are renamed into the transaction's backup
//! directory (same filesystem as the root) rather than deleted, so until
//! the commit marker is durable the old tree can always be restored. Each
//! operation's undo first decides, from its own unique artifacts (its
//! staged file, its backup), whether it happened, so a crash at any point —
//! including halfway through an operation, or during recovery itself —
//! rolls back to exactly the old tree; after the commit marker, recovery
//! only finishes the clean-up, giving exactly the new tree.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use foundation::durable::sync_dir;
use serde::{Deserialize, Serialize};

use crate::failpoint::FailPoints;

/// One journaled change. Paths are relative to the root; `stage` and
/// `backup` are names inside the transaction directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Create a directory by renaming an empty staged one into place (so
    /// whether it happened is known from the staged one's absence).
    Mkdir {
        path: String,
        stage: String,
    },
    Write {
        path: String,
        stage: String,
        backup: Option<String>,
    },
    Remove {
        path: String,
        backup: String,
    },
    Rename {
        from: String,
        to: String,
        backup: Option<String>,
    },
    /// Set an existing directory's mode and owner (a Filesystem Entry);
    /// `old` (mode, uid, gid) restores them on undo. `None`: the directory
    /// was created by this transaction, whose Mkdir undo removes it.
    Attributes {
        path: String,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        old: Option<(u32, u32, u32)>,
    },
}

/// Set a directory's attributes; it must be a directory (never a link).
fn set_dir_attributes(p: &Path, mode: Option<u32>, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    let m = fs::symlink_metadata(p)?;
    if !m.is_dir() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a directory", p.display())));
    }
    let attrs = pkgfmt::FileMetadata { mode, uid, gid, ..Default::default() };
    crate::attributes::apply(p, &attrs)
}

/// The journal document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    pub format: u32,
    pub root: PathBuf,
    /// The device was marked unsafe (Unsafe flag or Format in the package).
    pub unsafe_install: bool,
    pub ops: Vec<Op>,
}

/// Files of the state directory.
pub struct StateDir {
    pub dir: PathBuf,
}

impl StateDir {
    pub fn journal(&self) -> PathBuf {
        self.dir.join("journal.json")
    }
    pub fn committed(&self) -> PathBuf {
        self.dir.join("committed")
    }
    pub fn unsafe_marker(&self) -> PathBuf {
        self.dir.join("UNSAFE")
    }
    pub fn txn(&self) -> PathBuf {
        self.dir.join("txn")
    }
    pub fn stage(&self) -> PathBuf {
        self.txn().join("stage")
    }
    pub fn backup(&self) -> PathBuf {
        self.txn().join("backup")
    }
}

/// Flush everything on the filesystem holding `p` (syncfs(2)).
pub fn sync_fs(p: &Path) -> io::Result<()> {
    let f = fs::File::open(p)?;
    use std::os::fd::AsRawFd;
    // SAFETY: valid open descriptor.
    if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn exists(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok()
}

fn rm_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Perform one operation, with fail points between its system calls.
pub fn apply(op: &Op, root: &Path, st: &StateDir, fp: &mut FailPoints) -> io::Result<()> {
    match op {
        Op::Mkdir { path, stage } => fs::rename(st.stage().join(stage), root.join(path))?,
        Op::Write { path, stage, backup } => {
            if let Some(b) = backup {
                fs::rename(root.join(path), st.backup().join(b))?;
                fp.hit();
            }
            fs::rename(st.stage().join(stage), root.join(path))?;
        }
        Op::Remove { path, backup } => fs::rename(root.join(path), st.backup().join(backup))?,
        Op::Rename { from, to, backup } => {
            if let Some(b) = backup {
                fs::rename(root.join(to), st.backup().join(b))?;
                fp.hit();
            }
            fs::rename(root.join(from), root.join(to))?;
        }
        Op::Attributes { path, mode, uid, gid, .. } => set_dir_attributes(&root.join(path), *mode, *uid, *gid)?,
    }
    fp.hit();
    Ok(())
}

/// Undo one operation, whether or not (or how far) it happened. Undo runs
/// in reverse order, so the tree is then as it was right after (or right
/// before) this operation; each test below tells those two apart.
pub fn undo(op: &Op, root: &Path, st: &StateDir) -> io::Result<()> {
    match op {
        Op::Mkdir { path, stage } => {
            if !exists(&st.stage().join(stage)) && exists(&root.join(path)) {
                fs::remove_dir(root.join(path)).map_err(|e| io::Error::new(e.kind(), format!("removing directory /{path}: {e}")))?;
            }
        }
        Op::Write { path, stage, backup } => match backup {
            // The old file was moved aside: put it back (over the new one).
            Some(b) if exists(&st.backup().join(b)) => fs::rename(st.backup().join(b), root.join(path))?,
            Some(_) => {}
            // Nothing was there before: remove what we installed, if we did.
            None if !exists(&st.stage().join(stage)) => rm_any(&root.join(path))?,
            None => {}
        },
        Op::Remove { path, backup } => {
            if exists(&st.backup().join(backup)) {
                fs::rename(st.backup().join(backup), root.join(path))?;
            }
        }
        Op::Rename { from, to, backup } => {
            if !exists(&root.join(from)) && exists(&root.join(to)) {
                fs::rename(root.join(to), root.join(from))?;
            }
            if let Some(b) = backup {
                if exists(&st.backup().join(b)) {
                    fs::rename(st.backup().join(b), root.join(to))?;
                }
            }
        }
        // Setting the old attributes again is right whether or not the new
        // ones were set.
        Op::Attributes { path, old: Some((mode, uid, gid)), .. } => {
            if fs::symlink_metadata(root.join(path)).is_ok_and(|m| m.is_dir()) {
                let owner = crate::attributes::is_root();
                set_dir_attributes(&root.join(path), Some(*mode), owner.then_some(*uid), owner.then_some(*gid))?;
            }
        }
        Op::Attributes { old: None, .. } => {}
    }
    Ok(())
}

/// What recovery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Recovery {
    /// No interrupted install.
    Clean,
    /// Interrupted before commit: the old tree was restored.
    RolledBack,
    /// Interrupted after commit: clean-up finished, the new tree stands.
    Completed,
}

/// Remove the transaction's leftovers; the journal goes first so that a
/// crash here never leads a later recovery to undo a committed install.
pub fn cleanup(st: &StateDir) -> io::Result<()> {
    cleanup_with(st, &mut FailPoints::none())
}

fn cleanup_with(st: &StateDir, fp: &mut FailPoints) -> io::Result<()> {
    rm_any(&st.journal())?;
    sync_dir(&st.dir)?;
    fp.hit();
    rm_any(&st.committed())?;
    rm_any(&st.txn())?;
    rm_any(&st.unsafe_marker())?;
    sync_dir(&st.dir)
}

/// Bring the tree to the complete old or complete new state.
pub fn recover(st: &StateDir, root: &Path, fp: &mut FailPoints) -> io::Result<Recovery> {
    let text = match fs::read(st.journal()) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A crash after the journal was removed but before the rest of
            // the clean-up, or during staging: the tree is already final.
            let committed = exists(&st.committed());
            cleanup_with(st, fp)?;
            return Ok(if committed { Recovery::Completed } else { Recovery::Clean });
        }
        Err(e) => return Err(e),
    };
    let j: Journal =
        serde_json::from_slice(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("journal {}: {e}", st.journal().display())))?;
    if j.root != root {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("journal is for root {}, not {}", j.root.display(), root.display())));
    }
    let outcome = if exists(&st.committed()) {
        Recovery::Completed
    } else {
        for op in j.ops.iter().rev() {
            undo(op, root, st)?;
            fp.hit();
        }
        sync_fs(root)?;
        Recovery::RolledBack
    };
    cleanup_with(st, fp)?;
    Ok(outcome)
}
