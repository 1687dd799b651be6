//! The installer engine: applies an Annex E signed package to a target
//! filesystem (E.4.1–E.4.13, E.5). Library API first; `cpekit install` is
//! a thin CLI over [`install`] and [`recover`].
//!
//! Order of work, so that a rejected package changes nothing:
//! 1. read header, command list and signature block (E.5 prefix) and
//!    verify the signatures against the caller's trust anchors;
//! 2. check every precondition (E.4.10, E.4.12, E.4.13) and Reboot-last
//!    (E.4.8); plan every command against the current tree, confining
//!    every path to the root;
//! 3. stream the payload once, hashing every file and staging the ones to
//!    install in the state directory (same filesystem as the root), under
//!    the E.4.7 timeouts; a hash mismatch stops here;
//! 4. fsync, journal the plan, apply it (replaced/removed files moved
//!    aside), fsync, commit; [`recover`] finishes or rolls back an
//!    interrupted install.
//!
//! An [`Observer`](progress::Observer) in [`InstallOptions`] hears of the
//! steps as they happen (see [`progress`]).

pub mod attributes;
pub mod beneath;
pub mod failpoint;
pub mod journal;
pub mod path;
pub mod plan;
pub mod precondition;
pub mod progress;
pub mod timeout;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pkgfmt::signature::VerifyOptions;
use pkgfmt::{Command, PayloadVerifier, Prefix, DEFAULT_PREFIX_LIMIT};
use serde::Serialize;
use x509_cert::Certificate;

pub use journal::{JournalError, Recovery};
pub use plan::{Action, Plan};
pub use precondition::DeviceConfig;
pub use timeout::{Clock, DownloadTimer, SystemClock, TimeoutExpired, Timeouts};

use beneath::Dir;
use failpoint::FailPoints;
use journal::{Journal, Op, StateDir, Txn, TxnName};

/// Why an install did not happen. In every case the root is unchanged
/// (after [`IoError::RollbackFailed`]: once [`recover`] has run).
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("command #{index} rejected: {reason}")]
    Rejected { index: usize, reason: String },
    #[error("package not trusted: {0}")]
    Untrusted(String),
    #[error(transparent)]
    Package(#[from] pkgfmt::Error),
    #[error("unsafe path: {0}")]
    Unsafe(UnsafePath),
    #[error("download aborted: {0}")]
    Timeout(#[from] TimeoutExpired),
    #[error("a previous install into this root was interrupted; run `cpekit install --recover` first")]
    Interrupted,
    /// Recovery refused the journal or failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Io(#[from] IoError),
    /// Applying the plan failed (the source); the old tree was restored.
    #[error("install failed while applying and was rolled back")]
    RolledBack(#[source] Box<InstallError>),
}

/// A path the installer refuses to touch: it would leave the root.
#[derive(Debug, thiserror::Error)]
pub enum UnsafePath {
    #[error("{0} is a symlink; refusing to follow it")]
    Symlink(String),
    #[error("{0} exists and is not a directory")]
    NotADirectory(String),
    /// E.g. `/etc/l/file` after this package made `/etc/l` a link.
    #[error("command #{index}: {path} is a symbolic link this package creates; a later command never follows it")]
    PackageLink { index: usize, path: String },
    #[error("command #{index}: link {path} -> {target} points outside the install root")]
    LinkEscapes { index: usize, path: String, target: String },
    #[error(transparent)]
    Invalid(#[from] path::PathError),
}

/// The system failed, or the root and state directory cannot take the
/// install.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// An I/O operation failed: `context` says which.
    #[error("{context}")]
    Op {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Reading the package after its prefix failed (the download broke).
    #[error("reading the payload")]
    ReadPayload(#[source] std::io::Error),
    #[error("install root {0} is not a directory")]
    RootNotADirectory(PathBuf),
    #[error("state directory {state} must be outside the install root {root} (and not contain it)")]
    StateDirOverlapsRoot { state: PathBuf, root: PathBuf },
    #[error("state directory {state} must be on the same filesystem as {root} (atomic renames)")]
    StateDirOtherFilesystem { state: PathBuf, root: PathBuf },
    #[error("staged size overflows")]
    StagedSizeOverflow,
    #[error("staging needs {needed} bytes but {free} are free")]
    NoSpace { needed: u64, free: u64 },
    #[error("encoding the journal")]
    Journal(#[source] serde_json::Error),
    /// Applying the plan failed (the source), and so did restoring the old
    /// tree: run [`recover`].
    #[error("install failed while applying, and rolling back failed: {rollback} (run --recover)")]
    RollbackFailed {
        #[source]
        apply: Box<InstallError>,
        rollback: std::io::Error,
    },
}

impl From<UnsafePath> for InstallError {
    fn from(e: UnsafePath) -> Self {
        InstallError::Unsafe(e)
    }
}

impl foundation::Kind for InstallError {
    /// Refused by policy: Rejected; not trusted or not matching its hashes:
    /// VerifyFailed; not a package: Malformed; the environment: Runtime.
    fn kind(&self) -> foundation::ErrorKind {
        use foundation::ErrorKind as K;
        use InstallError as I;
        match self {
            I::Rejected { .. } | I::Unsafe(_) | I::Interrupted => K::Rejected,
            I::Journal(JournalError::Malformed { .. } | JournalError::Format { .. }) => K::Malformed,
            I::Journal(JournalError::OtherRoot { .. }) => K::Rejected,
            I::Journal(JournalError::Io(_)) => K::Runtime,
            I::Untrusted(_) => K::VerifyFailed,
            I::Package(p) => p.kind(),
            I::Timeout(_) | I::Io(_) | I::RolledBack(_) => K::Runtime,
        }
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> InstallError {
    let context = context.into();
    move |source| IoError::Op { context, source }.into()
}

/// What a [`VendorHandler`] reports when a vendor command fails.
pub type VendorError = Box<dyn std::error::Error + Send + Sync>;

/// Vendor-specific commands (1000–9999) are handed to this after the file
/// changes commit, in list order.
pub trait VendorHandler {
    fn handle(&mut self, index: usize, kind: u32, value: &[u8]) -> Result<(), VendorError>;
}

/// The default vendor handler: ignore vendor commands.
pub struct IgnoreVendor;

impl VendorHandler for IgnoreVendor {
    fn handle(&mut self, _: usize, _: u32, _: &[u8]) -> Result<(), VendorError> {
        Ok(())
    }
}

/// Where and how to install.
#[derive(Clone)]
pub struct InstallOptions {
    /// The target tree; package paths are relative to it.
    pub root: PathBuf,
    /// Journal, staging and backups; must be on the root's filesystem and
    /// outside the root. `None`: `<parent>/.<root name>.cpekit-state`.
    pub state_dir: Option<PathBuf>,
    /// Trust anchors (E.5); the package must have a signer chaining to one.
    pub trust: Vec<Certificate>,
    /// Install a package without signers (never one whose signers fail).
    pub allow_unsigned: bool,
    pub verify: VerifyOptions,
    pub device: DeviceConfig,
    /// Plan and verify only; change nothing.
    pub dry_run: bool,
    /// Told of the install's phases and bytes as it goes.
    pub observer: Option<Arc<dyn progress::Observer>>,
}

impl std::fmt::Debug for InstallOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallOptions")
            .field("root", &self.root)
            .field("state_dir", &self.state_dir)
            .field("trust", &self.trust)
            .field("allow_unsigned", &self.allow_unsigned)
            .field("verify", &self.verify)
            .field("device", &self.device)
            .field("dry_run", &self.dry_run)
            .field("observer", &self.observer.as_ref().map(|_| "..."))
            .finish()
    }
}

/// Reports to the [`InstallOptions::observer`], if any.
struct Reporter<'a> {
    observer: Option<&'a dyn progress::Observer>,
    /// Bytes of the prefix, and of the whole package.
    prefix_len: u64,
    total: u64,
}

impl Reporter<'_> {
    fn report(&self, phase: progress::Phase, done: u64) {
        if let Some(o) = self.observer {
            o.progress(progress::Progress { phase, done, total: self.total });
        }
    }
}

/// The outcome of a successful install (or dry run).
#[derive(Debug, Clone, Serialize)]
pub struct InstallReport {
    pub ok: bool,
    pub dry_run: bool,
    pub version: Option<String>,
    pub description: Option<String>,
    pub role: Option<String>,
    pub reboot_required: bool,
    pub unsafe_install: bool,
    pub signer: Option<String>,
    pub actions: Vec<Action>,
    pub files_staged: usize,
    pub bytes_staged: u64,
    pub vendor_errors: Vec<String>,
}

/// The default state directory for `root`.
pub fn default_state_dir(root: &Path) -> PathBuf {
    let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "root".into());
    root.parent().unwrap_or(Path::new("/")).join(format!(".{name}.cpekit-state"))
}

/// `p` made absolute with its existing part resolved, without creating
/// anything: the existing ancestor is canonicalized, the missing rest
/// appended (it must be plain names).
fn resolve_lexically(p: &Path) -> Result<PathBuf, InstallError> {
    let abs = std::path::absolute(p).map_err(io(format!("state directory {}", p.display())))?;
    let mut existing = abs.as_path();
    let mut rest = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(c) => {
                let mut out = c;
                for n in rest.iter().rev() {
                    out.push(n);
                }
                return Ok(out);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match (existing.file_name(), existing.parent()) {
                (Some(n), Some(parent)) if !matches!(n.to_str(), Some("." | "..")) => {
                    rest.push(n.to_os_string());
                    existing = parent;
                }
                _ => return Err(io(format!("state directory {}", p.display()))(e)),
            },
            Err(e) => return Err(io(format!("state directory {}", p.display()))(e)),
        }
    }
}

/// Open the root and the state directory (created if missing, but only
/// once it is known to be outside the root: a refused install creates
/// nothing in the root).
fn prepare_dirs(root: &Path, state: Option<&Path>) -> Result<(PathBuf, Dir, StateDir), InstallError> {
    let root = root.canonicalize().map_err(io(format!("install root {}", root.display())))?;
    if !root.is_dir() {
        return Err(IoError::RootNotADirectory(root).into());
    }
    let root_fd = Dir::open(&root).map_err(io(format!("install root {}", root.display())))?;
    let state = state.map(Path::to_path_buf).unwrap_or_else(|| default_state_dir(&root));
    let overlaps = |state: &Path| state.starts_with(&root) || root.starts_with(state);
    let planned = resolve_lexically(&state)?;
    if overlaps(&planned) {
        return Err(IoError::StateDirOverlapsRoot { state: planned, root }.into());
    }
    fs::create_dir_all(&state).map_err(io(format!("state directory {}", state.display())))?;
    let state = state.canonicalize().map_err(io("state directory"))?;
    if overlaps(&state) {
        return Err(IoError::StateDirOverlapsRoot { state, root }.into());
    }
    let fd = Dir::open(&state).map_err(io(format!("state directory {}", state.display())))?;
    let dev = |d: &Dir| d.fstat().map(|m| m.st_dev).map_err(io("stat"));
    if dev(&root_fd)? != dev(&fd)? {
        return Err(IoError::StateDirOtherFilesystem { state, root }.into());
    }
    Ok((root, root_fd, StateDir { dir: state, fd }))
}

/// Bring an interrupted install to the complete old or new tree. A journal
/// that does not parse, or names anything outside the root or the
/// transaction directory, is refused ([`JournalError::Malformed`]).
pub fn recover(root: &Path, state_dir: Option<&Path>) -> Result<Recovery, InstallError> {
    let (root, root_fd, st) = prepare_dirs(root, state_dir)?;
    Ok(journal::recover(&st, &root, &root_fd, &mut FailPoints::from_env())?)
}

/// Install the package read from `pkg` (a file or a download in progress).
pub fn install<R: Read>(pkg: &mut R, opts: &InstallOptions, vendor: &mut dyn VendorHandler, clock: &dyn Clock) -> Result<InstallReport, InstallError> {
    let started = clock.now();
    let (root, root_fd, st) = prepare_dirs(&opts.root, opts.state_dir.as_deref())?;
    if st.has_journal().map_err(io("the state directory"))? {
        return Err(InstallError::Interrupted);
    }
    // Leftovers of a crash during staging never touched the root.
    journal::cleanup(&st).map_err(io("cleaning the state directory"))?;

    // 1. Prefix and signatures (E.5: validate before processing commands).
    // A vendor-dialect package is refused as such (issue 12).
    let prefix = Prefix::read_conformant(pkg, DEFAULT_PREFIX_LIMIT)?;
    let prefix_len = prefix.payload_offset();
    let reporter = Reporter { observer: opts.observer.as_deref(), prefix_len, total: prefix_len + prefix.header.payload_length as u64 };
    reporter.report(progress::Phase::VerifyingPrefix, prefix_len);
    let signer = check_trust(&prefix, opts)?;

    // 2. Preconditions and plan.
    precondition::check(&prefix.commands, &opts.device, &root)?;
    let plan = plan::plan(&prefix.commands, &root_fd)?;
    let mut report = InstallReport {
        ok: true,
        dry_run: opts.dry_run,
        version: None,
        description: None,
        role: None,
        reboot_required: plan.reboot_required,
        unsafe_install: plan.has_unsafe,
        signer,
        actions: plan.actions.clone(),
        files_staged: 0,
        bytes_staged: 0,
        vendor_errors: Vec::new(),
    };
    for c in prefix.commands.commands.iter() {
        match c {
            Command::Version(v) => report.version = Some(v.clone()),
            Command::Description(d) => report.description = Some(d.clone()),
            Command::Role(r) => report.role = Some(r.name().to_string()),
            _ => {}
        }
    }

    // 3. Stream the payload: hash everything, stage what will be written.
    let to_stage: Vec<usize> = plan.actions.iter().filter_map(|a| if let Action::Write { index, .. } = a { Some(*index) } else { None }).collect();
    let staged_bytes = to_stage.iter().try_fold(0u64, |acc, i| acc.checked_add(prefix.commands.commands[*i].file().map_or(0, |f| f.file_length as u64)));
    let staged_bytes = staged_bytes.ok_or(IoError::StagedSizeOverflow)?;
    if !opts.dry_run {
        let free = precondition::free_space(&st.dir).map_err(io("statvfs of the state directory"))?;
        if staged_bytes > free {
            return Err(IoError::NoSpace { needed: staged_bytes, free }.into());
        }
    }
    let txn = if opts.dry_run { None } else { Some(st.create_txn().map_err(io("creating the staging directory"))?) };
    let mut fp = FailPoints::from_env();
    let staged = stream_payload(pkg, &prefix, &st, txn.as_ref(), &to_stage, clock, started, &mut fp, &reporter);
    if let Err(e) = staged {
        let _ = journal::cleanup(&st);
        return Err(e);
    }
    report.files_staged = to_stage.len();
    report.bytes_staged = staged_bytes;
    let Some(txn) = txn else {
        return Ok(report);
    };

    // 4. Journal, apply, commit.
    reporter.report(progress::Phase::Committing, reporter.total);
    let result = apply_plan(&plan, &prefix.commands, &root, &root_fd, &st, &txn, &mut fp);
    if let Err(e) = result {
        drop(txn);
        return match journal::recover(&st, &root, &root_fd, &mut FailPoints::none()) {
            Ok(_) => Err(InstallError::RolledBack(Box::new(e))),
            Err(rollback) => {
                let rollback = match rollback {
                    JournalError::Io(e) => e,
                    other => std::io::Error::other(other),
                };
                Err(IoError::RollbackFailed { apply: Box::new(e), rollback }.into())
            }
        };
    }
    for c in prefix.commands.commands.iter().enumerate() {
        if let (index, Command::Vendor { kind, value }) = c {
            if let Err(e) = vendor.handle(index, *kind, value) {
                report.vendor_errors.push(format!("command #{index} (vendor {kind}): {}", foundation::error_kind::chain(&*e)));
            }
        }
    }
    Ok(report)
}

fn check_trust(prefix: &Prefix, opts: &InstallOptions) -> Result<Option<String>, InstallError> {
    let signers = prefix.signatures.signers();
    if signers.is_empty() && opts.allow_unsigned {
        return Ok(None);
    }
    if opts.trust.is_empty() {
        return Err(InstallError::Untrusted("no trust anchors configured (give --trust CA.pem, or --allow-unsigned for unsigned packages)".into()));
    }
    let report = prefix.verify_signatures(&opts.trust, &opts.verify);
    match report.trusted() {
        Some(s) => Ok(Some(s.summary.subject.clone())),
        None => Err(InstallError::Untrusted(report.explain())),
    }
}

/// Stream the payload once through the hash verifier, writing the files
/// in `stage` to the staging directory (`txn`; none on a dry run), under
/// the E.4.7 timeouts.
#[allow(clippy::too_many_arguments)] // the package, where to, the clock, and two hooks
fn stream_payload<R: Read>(
    r: &mut R,
    prefix: &Prefix,
    st: &StateDir,
    txn: Option<&Txn>,
    stage: &[usize],
    clock: &dyn Clock,
    started: std::time::Instant,
    fp: &mut FailPoints,
    reporter: &Reporter<'_>,
) -> Result<(), InstallError> {
    let total = prefix.header.payload_length as u64;
    let mut files: HashMap<usize, fs::File> = HashMap::new();
    if let Some(txn) = txn {
        for i in stage {
            let f = txn.stage.create_file(OsStr::new(&i.to_string()), 0o600).map_err(io("creating a staged file"))?;
            files.insert(*i, f);
        }
    }
    let mut timer = DownloadTimer::new(Timeouts::from_commands(&prefix.commands), started);
    let mut processed = 0usize;
    let mut v = PayloadVerifier::new(&prefix.commands, total);
    let mut buf = vec![0u8; pkgfmt::payload::STREAM_CHUNK];
    reporter.report(progress::Phase::StreamingPayload, reporter.prefix_len);
    loop {
        timer.check(clock.now())?;
        let want = (total - v.position()).min(buf.len() as u64) as usize;
        if want == 0 {
            break;
        }
        let n = match r.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(IoError::ReadPayload(e).into()),
        };
        timer.on_data(clock.now());
        fp.hit();
        v.update_with(&buf[..n], |index, bytes| match files.get_mut(&index) {
            Some(f) => f.write_all(bytes),
            None => Ok(()),
        })?;
        reporter.report(progress::Phase::StreamingPayload, reporter.prefix_len + v.position());
        // Figure 9: commands count as processed, in order, once their
        // payload file (if any) has fully arrived.
        let done: std::collections::HashSet<usize> = v.completed().iter().map(|d| d.index).collect();
        while let Some(c) = prefix.commands.commands.get(processed) {
            if c.file().is_some() && !done.contains(&processed) {
                break;
            }
            timer.on_command(c);
            processed += 1;
        }
    }
    v.finish()?;
    // A download reader ticks with `Interrupted` while it waits: that is
    // not the end of the stream.
    let mut one = [0u8; 1];
    let extra = loop {
        match r.read(&mut one) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => timer.check(clock.now())?,
            other => break other,
        }
    };
    if matches!(extra, Ok(n) if n > 0) {
        return Err(pkgfmt::Error::PayloadTooLong { expected: total }.into());
    }
    let staged_any = !files.is_empty();
    drop(files);
    if staged_any {
        // Staged data is durable before anything is renamed into place.
        st.fd.sync_fs().map_err(io("syncing staged files"))?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)] // the plan, the tree (path and descriptor), the state and a hook
fn apply_plan(
    plan: &Plan,
    commands: &pkgfmt::CommandList,
    root_path: &Path,
    root: &Dir,
    st: &StateDir,
    txn: &Txn,
    fp: &mut FailPoints,
) -> Result<(), InstallError> {
    use attributes::{resolve, DEFAULT_DIR_MODE, DEFAULT_FILE_MODE};
    let mut backups = 0usize;
    let mut next_backup = || {
        backups += 1;
        TxnName::new(backups.to_string())
    };
    let rel = |p: &str| path::RelPath::parse(p).map_err(UnsafePath::from);
    let mut ops = Vec::new();
    let mut dirs = 0usize;
    // A directory to create: an empty staged one with its attributes,
    // renamed into place by its Mkdir.
    let mut mkdir = |ops: &mut Vec<Op>, path: &str, attrs: &pkgfmt::FileMetadata| -> Result<(), InstallError> {
        dirs += 1;
        let stage = TxnName::new(format!("d{dirs}"));
        let name = OsStr::new(String::from(stage.clone()).as_str()).to_os_string();
        txn.stage.mkdir(&name, 0o700).map_err(io("staging a directory"))?;
        txn.stage.set_attributes(&name, attrs, true).map_err(io(format!("staging the attributes of /{path}")))?;
        ops.push(Op::Mkdir { path: rel(path)?, stage });
        Ok(())
    };
    let default_dir = resolve(None, None, DEFAULT_DIR_MODE);
    // Attributes recorded by a command (extended file record, Filesystem Entry).
    let recorded = |index: usize| match &commands.commands[index] {
        Command::FilesystemEntry(e) => Some(e.metadata),
        c => c.file().and_then(|f| f.metadata),
    };
    // What is at `path` now (never following a link on the way).
    let current = |path: &str| -> Result<Option<rustix::fs::Stat>, InstallError> { Ok(path::stat(root, &rel(path)?)?) };
    let is_type = |s: &rustix::fs::Stat, t: rustix::fs::FileType| rustix::fs::FileType::from_raw_mode(s.st_mode) == t;
    for a in &plan.actions {
        match a {
            Action::Write { index, path, replaces, mkdirs: m } => {
                for d in m {
                    mkdir(&mut ops, d, &default_dir)?;
                }
                // The entry a write replaces, if it is a regular file (its mode and owner are kept).
                let old = if *replaces { current(path)?.filter(|s| is_type(s, rustix::fs::FileType::RegularFile)) } else { None };
                let attrs = resolve(recorded(*index).as_ref(), old.map(|s| (s.st_mode, s.st_uid, s.st_gid)), DEFAULT_FILE_MODE);
                txn.stage.set_attributes(OsStr::new(&index.to_string()), &attrs, false).map_err(io(format!("staging the attributes of /{path}")))?;
                ops.push(Op::Write { path: rel(path)?, stage: TxnName::new(index.to_string()), backup: replaces.then(&mut next_backup) })
            }
            Action::Remove { path, .. } => ops.push(Op::Remove { path: rel(path)?, backup: next_backup() }),
            Action::Rename { from, to, replaces, mkdirs: m, .. } => {
                for d in m {
                    mkdir(&mut ops, d, &default_dir)?;
                }
                ops.push(Op::Rename { from: rel(from)?, to: rel(to)?, backup: replaces.then(&mut next_backup) })
            }
            Action::Symlink { index, path, target, replaces, mkdirs: m } => {
                for d in m {
                    mkdir(&mut ops, d, &default_dir)?;
                }
                let stage = format!("l{index}");
                txn.stage.symlink(OsStr::new(target), OsStr::new(&stage)).map_err(io(format!("staging the link /{path}")))?;
                let attrs = resolve(recorded(*index).as_ref(), None, 0);
                txn.stage
                    .set_attributes(OsStr::new(&stage), &pkgfmt::FileMetadata { mode: None, ..attrs }, false)
                    .map_err(io(format!("staging the owner of /{path}")))?;
                ops.push(Op::Write { path: rel(path)?, stage: TxnName::new(stage), backup: replaces.then(&mut next_backup) })
            }
            Action::Directory { index, path, exists: false, mkdirs: m } => {
                for d in m {
                    mkdir(&mut ops, d, &default_dir)?;
                }
                mkdir(&mut ops, path, &resolve(recorded(*index).as_ref(), None, DEFAULT_DIR_MODE))?;
            }
            Action::Directory { index, path, exists: true, .. } => {
                let r = recorded(*index).unwrap_or_default();
                let (uid, gid) = if attributes::is_root() { (r.uid, r.gid) } else { (None, None) };
                if r.mode.is_some() || uid.is_some() || gid.is_some() {
                    // A directory of the old tree keeps what it had on undo; one
                    // created earlier by this package is removed by its Mkdir's undo.
                    let old = current(path)?.filter(|s| is_type(s, rustix::fs::FileType::Directory)).map(|s| (s.st_mode & 0o7777, s.st_uid, s.st_gid));
                    ops.push(Op::Attributes { path: rel(path)?, mode: r.mode, uid, gid, old });
                }
            }
            _ => {}
        }
    }
    if dirs > 0 {
        st.fd.sync_fs().map_err(io("syncing staged directories"))?;
    }
    let j = Journal { format: journal::JOURNAL_FORMAT, root: root_path.to_path_buf(), unsafe_install: plan.has_unsafe, ops };
    let text = serde_json::to_vec_pretty(&j).map_err(IoError::Journal)?;
    st.fd.write_atomic(StateDir::JOURNAL, &text).map_err(io("writing the journal"))?;
    fp.hit();
    if plan.has_unsafe {
        // E.4.3 Unsafe flag: the device is unsafe until commit or rollback.
        st.fd.write_atomic(StateDir::UNSAFE, b"install in progress\n").map_err(io("writing the unsafe marker"))?;
    }
    for op in &j.ops {
        // Every operation walks from the root's descriptor again: the tree
        // may have changed since planning, and no checked path is re-resolved.
        journal::apply(op, root, txn, fp).map_err(io(format!("{op:?}")))?;
    }
    root.sync_fs().map_err(io("syncing the root"))?;
    fp.hit();
    st.fd.write_atomic(StateDir::COMMITTED, b"committed\n").map_err(io("committing"))?;
    fp.hit();
    journal::cleanup(st).map_err(io("cleaning up after commit"))?;
    fp.hit();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use foundation::{ErrorKind as K, Kind};

    #[test]
    fn error_kinds() {
        let err = || std::io::Error::other("disk on fire");
        let cases: Vec<(InstallError, K)> = vec![
            (InstallError::Rejected { index: 1, reason: "too old".into() }, K::Rejected),
            (UnsafePath::Symlink("/a".into()).into(), K::Rejected),
            (UnsafePath::from(path::RelPath::parse("..").unwrap_err()).into(), K::Rejected),
            (InstallError::Interrupted, K::Rejected),
            (JournalError::Malformed { path: "j".into(), source: serde_json::from_str::<u8>("x").unwrap_err() }.into(), K::Malformed),
            (JournalError::Format { path: "j".into(), format: 9 }.into(), K::Malformed),
            (JournalError::OtherRoot { path: "j".into(), journal_root: "/a".into(), root: "/b".into() }.into(), K::Rejected),
            (JournalError::Io(err()).into(), K::Runtime),
            (InstallError::Untrusted("no anchor".into()), K::VerifyFailed),
            (pkgfmt::Error::Build("bad".into()).into(), K::Malformed),
            (pkgfmt::Error::HashMismatch { index: 0, path: "/a".into(), expected: "0".into(), actual: "1".into() }.into(), K::VerifyFailed),
            (pkgfmt::Error::PayloadTooLong { expected: 1 }.into(), K::VerifyFailed),
            (pkgfmt::Error::Io(err()).into(), K::Runtime),
            (TimeoutExpired { which: "Initial", limit: std::time::Duration::from_secs(1), state: timeout::DownloadState::Initial }.into(), K::Runtime),
            (IoError::NoSpace { needed: 2, free: 1 }.into(), K::Runtime),
            (IoError::ReadPayload(err()).into(), K::Runtime),
            (InstallError::RolledBack(Box::new(io("writing the journal")(err()))), K::Runtime),
        ];
        for (e, kind) in cases {
            assert_eq!(e.kind(), kind, "{e}");
        }
    }

    #[test]
    fn causes_are_sources_not_text() {
        let e = InstallError::RolledBack(Box::new(io("writing the journal")(std::io::Error::other("disk full"))));
        assert_eq!(e.to_string(), "install failed while applying and was rolled back");
        assert_eq!(foundation::error_kind::chain(&e), "install failed while applying and was rolled back: writing the journal: disk full");
        let e: InstallError =
            IoError::RollbackFailed { apply: Box::new(IoError::ReadPayload(std::io::Error::other("reset")).into()), rollback: std::io::Error::other("EIO") }
                .into();
        assert_eq!(
            foundation::error_kind::chain(&e),
            "install failed while applying, and rolling back failed: EIO (run --recover): reading the payload: reset"
        );
        let e: InstallError = UnsafePath::Symlink("/etc".into()).into();
        assert_eq!(foundation::error_kind::chain(&e), "unsafe path: /etc is a symlink; refusing to follow it", "the reason is said once");
    }
}
