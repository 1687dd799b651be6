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

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use rustix::fs::FileType;
use serde::{Deserialize, Serialize};

use crate::beneath::{Dir, WalkError};
use crate::failpoint::FailPoints;
use crate::path::{self, RelPath};

/// The largest journal recovery reads: far above what a package within
/// `pkgfmt::DEFAULT_PREFIX_LIMIT` journals (a few hundred bytes per
/// operation), and a bound on what a tampered file can make it allocate.
pub const JOURNAL_LIMIT: u64 = 64 << 20;

/// A name inside the transaction's `stage` or `backup` directory: one
/// component (not `.` or `..`, no `/`, no NUL, at most 255 bytes), so a
/// journal can name nothing else (validated when it is read back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TxnName(String);

/// A [`TxnName`] that is not one name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a name inside the transaction directory")]
pub struct BadTxnName(String);

impl TryFrom<String> for TxnName {
    type Error = BadTxnName;
    fn try_from(s: String) -> Result<TxnName, BadTxnName> {
        if s.is_empty() || s.len() > 255 || s == "." || s == ".." || s.contains('/') || s.contains('\0') {
            return Err(BadTxnName(s));
        }
        Ok(TxnName(s))
    }
}

impl From<TxnName> for String {
    fn from(n: TxnName) -> String {
        n.0
    }
}

impl TxnName {
    /// A name the installer makes (`1`, `d3`, `l7`).
    pub fn new(s: String) -> TxnName {
        TxnName::try_from(s).expect("the installer's own transaction names are single components")
    }
    fn os(&self) -> &OsStr {
        OsStr::new(&self.0)
    }
}

/// One journaled change. Paths are relative to the root; `stage` and
/// `backup` are names inside the transaction directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Create a directory by renaming an empty staged one into place (so
    /// whether it happened is known from the staged one's absence).
    Mkdir {
        path: RelPath,
        stage: TxnName,
    },
    Write {
        path: RelPath,
        stage: TxnName,
        backup: Option<TxnName>,
    },
    Remove {
        path: RelPath,
        backup: TxnName,
    },
    Rename {
        from: RelPath,
        to: RelPath,
        backup: Option<TxnName>,
    },
    /// Set an existing directory's mode and owner (a Filesystem Entry);
    /// `old` (mode, uid, gid) restores them on undo. `None`: the directory
    /// was created by this transaction, whose Mkdir undo removes it.
    Attributes {
        path: RelPath,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        old: Option<(u32, u32, u32)>,
    },
}

/// Why recovery refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The journal does not parse, or names a path outside the root or a
    /// file outside the transaction directory: nothing was changed.
    #[error("journal {path} is malformed; refusing to recover from it (nothing was changed)")]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("journal {path} has format {format}; this cpekit writes and reads format {JOURNAL_FORMAT}")]
    Format { path: PathBuf, format: u32 },
    #[error("journal {path} is for root {journal_root}, not {root}")]
    OtherRoot { path: PathBuf, journal_root: PathBuf, root: PathBuf },
    #[error("recovery")]
    Io(#[from] io::Error),
}

/// The journal format this code writes.
pub const JOURNAL_FORMAT: u32 = 1;

/// The journal document.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    pub format: u32,
    pub root: PathBuf,
    /// The device was marked unsafe (Unsafe flag or Format in the package).
    pub unsafe_install: bool,
    pub ops: Vec<Op>,
}

/// The state directory, opened once; everything in it is reached from its
/// descriptor.
pub struct StateDir {
    pub dir: PathBuf,
    pub fd: Dir,
}

/// The transaction's staging and backup directories.
pub struct Txn {
    pub stage: Dir,
    pub backup: Dir,
}

impl StateDir {
    pub const JOURNAL: &'static str = "journal.json";
    pub const COMMITTED: &'static str = "committed";
    pub const UNSAFE: &'static str = "UNSAFE";
    pub const TXN: &'static str = "txn";

    pub fn journal(&self) -> PathBuf {
        self.dir.join(Self::JOURNAL)
    }
    pub fn has_journal(&self) -> io::Result<bool> {
        self.fd.exists(OsStr::new(Self::JOURNAL))
    }
    /// Create `txn/stage` and `txn/backup` (private to the installer).
    pub fn create_txn(&self) -> io::Result<Txn> {
        let txn = self.fd.walk_create(Path::new(Self::TXN), &self.dir.display().to_string(), 0o700)?;
        let sub = |n: &str| txn.walk_create(Path::new(n), "", 0o700).map_err(io::Error::from);
        Ok(Txn { stage: sub("stage")?, backup: sub("backup")? })
    }
    /// The transaction directories, if they exist.
    fn open_txn(&self) -> io::Result<Option<Txn>> {
        let open = |n: &str| match self.fd.walk(&Path::new(Self::TXN).join(n), "") {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(io::Error::from(e)),
        };
        Ok(match (open("stage")?, open("backup")?) {
            (Some(stage), Some(backup)) => Some(Txn { stage, backup }),
            _ => None,
        })
    }
}

/// `p`'s directory (walked from the root, no link followed) and its name.
fn at<'p>(root: &Dir, p: &'p RelPath) -> io::Result<(Dir, &'p OsStr)> {
    Ok((path::parent_dir(root, p)?, p.name()))
}

/// `p` exists below the root (a link at `p` counts; one above it is an error).
fn exists(root: &Dir, p: &RelPath) -> io::Result<bool> {
    Ok(path::stat(root, p)?.is_some())
}

fn is_dir(s: &rustix::fs::Stat) -> bool {
    FileType::from_raw_mode(s.st_mode) == FileType::Directory
}

/// Set a directory's attributes; it must be a directory (never a link).
fn set_dir_attributes(d: &Dir, name: &OsStr, mode: Option<u32>, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    d.set_attributes(name, &pkgfmt::FileMetadata { mode, uid, gid, ..Default::default() }, true)
}

/// Perform one operation, with fail points between its system calls.
pub fn apply(op: &Op, root: &Dir, txn: &Txn, fp: &mut FailPoints) -> io::Result<()> {
    match op {
        Op::Mkdir { path, stage } => {
            let (d, name) = at(root, path)?;
            txn.stage.rename(stage.os(), &d, name)?
        }
        Op::Write { path, stage, backup } => {
            let (d, name) = at(root, path)?;
            if let Some(b) = backup {
                d.rename(name, &txn.backup, b.os())?;
                fp.hit();
            }
            txn.stage.rename(stage.os(), &d, name)?;
        }
        Op::Remove { path, backup } => {
            let (d, name) = at(root, path)?;
            d.rename(name, &txn.backup, backup.os())?
        }
        Op::Rename { from, to, backup } => {
            let (fd, fname) = at(root, from)?;
            let (td, tname) = at(root, to)?;
            if let Some(b) = backup {
                td.rename(tname, &txn.backup, b.os())?;
                fp.hit();
            }
            fd.rename(fname, &td, tname)?;
        }
        Op::Attributes { path, mode, uid, gid, .. } => {
            let (d, name) = at(root, path)?;
            set_dir_attributes(&d, name, *mode, *uid, *gid)?
        }
    }
    fp.hit();
    Ok(())
}

/// Undo one operation, whether or not (or how far) it happened. Undo runs
/// in reverse order, so the tree is then as it was right after (or right
/// before) this operation; each test below tells those two apart.
pub fn undo(op: &Op, root: &Dir, txn: &Txn) -> io::Result<()> {
    match op {
        Op::Mkdir { path, stage } => {
            if !txn.stage.exists(stage.os())? && exists(root, path)? {
                let (d, name) = at(root, path)?;
                d.remove_dir(name).map_err(|e| io::Error::new(e.kind(), format!("removing directory {}: {e}", path.display())))?;
            }
        }
        Op::Write { path, stage, backup } => match backup {
            // The old file was moved aside: put it back (over the new one).
            Some(b) if txn.backup.exists(b.os())? => {
                let (d, name) = at(root, path)?;
                txn.backup.rename(b.os(), &d, name)?
            }
            Some(_) => {}
            // Nothing was there before: remove what we installed, if we did.
            None if !txn.stage.exists(stage.os())? => match at(root, path) {
                Ok((d, name)) => d.remove_all(name)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            },
            None => {}
        },
        Op::Remove { path, backup } => {
            if txn.backup.exists(backup.os())? {
                let (d, name) = at(root, path)?;
                txn.backup.rename(backup.os(), &d, name)?;
            }
        }
        Op::Rename { from, to, backup } => {
            if !exists(root, from)? && exists(root, to)? {
                let (fd, fname) = at(root, from)?;
                let (td, tname) = at(root, to)?;
                td.rename(tname, &fd, fname)?;
            }
            if let Some(b) = backup {
                if txn.backup.exists(b.os())? {
                    let (td, tname) = at(root, to)?;
                    txn.backup.rename(b.os(), &td, tname)?;
                }
            }
        }
        // Setting the old attributes again is right whether or not the new
        // ones were set.
        Op::Attributes { path, old: Some((mode, uid, gid)), .. } => {
            if path::stat(root, path)?.is_some_and(|s| is_dir(&s)) {
                let owner = crate::attributes::is_root();
                let (d, name) = at(root, path)?;
                set_dir_attributes(&d, name, Some(*mode), owner.then_some(*uid), owner.then_some(*gid))?;
            }
        }
        Op::Attributes { old: None, .. } => {}
    }
    Ok(())
}

impl From<crate::beneath::WalkError> for JournalError {
    fn from(e: WalkError) -> Self {
        JournalError::Io(e.into())
    }
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
    st.fd.remove_all(OsStr::new(StateDir::JOURNAL))?;
    st.fd.sync()?;
    fp.hit();
    st.fd.remove_all(OsStr::new(StateDir::COMMITTED))?;
    st.fd.remove_all(OsStr::new(StateDir::TXN))?;
    st.fd.remove_all(OsStr::new(StateDir::UNSAFE))?;
    st.fd.sync()
}

/// Read and validate the journal: every path confined to the root, every
/// transaction name one component, the format and root this install's.
pub fn read(st: &StateDir, root: &Path) -> Result<Option<Journal>, JournalError> {
    let text = match st.fd.read(StateDir::JOURNAL, JOURNAL_LIMIT) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io::Error::new(e.kind(), format!("reading the journal {}: {e}", st.journal().display())).into()),
    };
    let j: Journal = serde_json::from_slice(&text).map_err(|source| JournalError::Malformed { path: st.journal(), source })?;
    if j.format != JOURNAL_FORMAT {
        return Err(JournalError::Format { path: st.journal(), format: j.format });
    }
    if j.root != root {
        return Err(JournalError::OtherRoot { path: st.journal(), journal_root: j.root, root: root.to_path_buf() });
    }
    Ok(Some(j))
}

/// Bring the tree to the complete old or complete new state.
pub fn recover(st: &StateDir, root_path: &Path, root: &Dir, fp: &mut FailPoints) -> Result<Recovery, JournalError> {
    let Some(j) = read(st, root_path)? else {
        // A crash after the journal was removed but before the rest of
        // the clean-up, or during staging: the tree is already final.
        let committed = st.fd.exists(OsStr::new(StateDir::COMMITTED))?;
        cleanup_with(st, fp)?;
        return Ok(if committed { Recovery::Completed } else { Recovery::Clean });
    };
    let outcome = if st.fd.exists(OsStr::new(StateDir::COMMITTED))? {
        Recovery::Completed
    } else {
        // The journal is written after the transaction directories exist.
        let txn = st.open_txn()?.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{}/txn is missing", st.dir.display())))?;
        for op in j.ops.iter().rev() {
            undo(op, root, &txn)?;
            fp.hit();
        }
        root.sync_fs()?;
        Recovery::RolledBack
    };
    cleanup_with(st, fp)?;
    Ok(outcome)
}
