//! Operating beneath a directory without ever following a symbolic link:
//! the one mechanism the installer, its recovery and `cpekit package
//! extract` use to touch the tree (and the state directory).
//!
//! A path that was checked and is then used again by name can be changed in
//! between: a local process that swaps `ROOT/etc` for a link to `/etc` right
//! after the check wins the race (issue 10, item 4). So nothing here is
//! resolved twice: an anchor directory (the install root, the state
//! directory, the output directory) is opened once, and every other
//! directory is reached from it by a walk that opens each component
//! relative to the previous one's descriptor with `O_NOFOLLOW|O_DIRECTORY`
//! (or in one `openat2(2)` call with `RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS`
//! where the kernel has it). Every change is then an `*at` system call on
//! the final directory's descriptor and a single name in it
//! (`renameat`, `mkdirat`, `unlinkat`, `symlinkat`; attributes through a
//! descriptor opened with `O_NOFOLLOW`, or `AT_SYMLINK_NOFOLLOW`). Swapping
//! a directory for a link after it was opened changes nothing: the
//! descriptor still names the directory that was checked.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::sync::atomic::{AtomicU8, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

use pkgfmt::command::Timestamp;
use pkgfmt::FileMetadata;

/// Why a walk below an anchor stopped.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("{0} is a symlink; refusing to follow it")]
    Symlink(String),
    #[error("{0} exists and is not a directory")]
    NotADirectory(String),
    /// The operation on `path` (as the caller names it) failed.
    #[error("{path}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl WalkError {
    /// A component (or the final name) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, WalkError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

impl From<WalkError> for io::Error {
    fn from(e: WalkError) -> io::Error {
        let kind = match &e {
            WalkError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

/// The flags every directory of a walk is opened with.
fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

/// openat2(2) works here: 0 not tried yet, 1 yes, 2 no (ENOSYS, or a
/// seccomp filter that says EPERM): the per-component walk is used.
static OPENAT2: AtomicU8 = AtomicU8::new(0);

/// An open directory: the anchor of a walk, or a directory reached by one.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `rel` as the caller shows it: `/rel` below the install root, else `prefix/rel`.
fn shown(prefix: &str, rel: &Path) -> String {
    if prefix.is_empty() {
        format!("/{}", rel.display())
    } else {
        format!("{}/{}", prefix.trim_end_matches('/'), rel.display())
    }
}

impl Dir {
    /// Open an anchor by path (the caller trusts this path: the install
    /// root, the state directory, the output directory). The last component
    /// is not followed if it is a link.
    pub fn open(path: &Path) -> io::Result<Dir> {
        let fd = rustix::fs::open(path, dir_flags(), Mode::empty()).map_err(|e| with_path(e, path))?;
        Ok(Dir { fd })
    }

    /// Walk to the directory `rel` (relative, normal components only)
    /// below this one; every component must be a real directory. Errors
    /// name the path as `/rel` (or `prefix/rel`).
    pub fn walk(&self, rel: &Path, prefix: &str) -> Result<Dir, WalkError> {
        let names = normal_components(rel, prefix)?;
        if names.is_empty() {
            return self.try_clone().map_err(|source| WalkError::Io { path: shown(prefix, rel), source });
        }
        if OPENAT2.load(Ordering::Relaxed) != 2 {
            let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            match rustix::fs::openat2(&self.fd, rel, dir_flags(), Mode::empty(), how) {
                Ok(fd) => {
                    OPENAT2.store(1, Ordering::Relaxed);
                    return Ok(Dir { fd });
                }
                Err(Errno::NOSYS | Errno::PERM) if OPENAT2.load(Ordering::Relaxed) == 0 => OPENAT2.store(2, Ordering::Relaxed),
                // EAGAIN (a concurrent rename somewhere) or a refusal: the
                // walk below retries and says which component is at fault.
                Err(_) => {}
            }
        }
        let mut cur: Option<OwnedFd> = None;
        let mut done = std::path::PathBuf::new();
        for name in names {
            done.push(name);
            let at = cur.as_ref().map_or(self.fd.as_fd(), |f| f.as_fd());
            match rustix::fs::openat(at, name, dir_flags(), Mode::empty()) {
                Ok(fd) => cur = Some(fd),
                Err(e) => return Err(classify(at, name, e, shown(prefix, &done))),
            }
        }
        Ok(Dir { fd: cur.expect("at least one component") })
    }

    /// Like [`walk`](Dir::walk), creating missing directories (mode `mode`,
    /// less the umask) on the way; a link or non-directory is refused.
    pub fn walk_create(&self, rel: &Path, prefix: &str, mode: u32) -> Result<Dir, WalkError> {
        let names = normal_components(rel, prefix)?;
        let mut cur = self.try_clone().map_err(|source| WalkError::Io { path: shown(prefix, rel), source })?;
        let mut done = std::path::PathBuf::new();
        for name in names {
            done.push(name);
            let next = match rustix::fs::openat(&cur.fd, name, dir_flags(), Mode::empty()) {
                Err(Errno::NOENT) => {
                    match rustix::fs::mkdirat(&cur.fd, name, Mode::from_raw_mode(mode)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(WalkError::Io { path: shown(prefix, &done), source: e.into() }),
                    }
                    rustix::fs::openat(&cur.fd, name, dir_flags(), Mode::empty())
                }
                other => other,
            };
            cur = match next {
                Ok(fd) => Dir { fd },
                Err(e) => return Err(classify(cur.fd.as_fd(), name, e, shown(prefix, &done))),
            };
        }
        Ok(cur)
    }

    /// A second descriptor for this directory.
    pub fn try_clone(&self) -> io::Result<Dir> {
        Ok(Dir { fd: self.fd.try_clone()? })
    }

    /// What `name` (a single component) is, without following a link;
    /// `None` if it does not exist.
    pub fn stat(&self, name: &OsStr) -> io::Result<Option<Stat>> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(s) => Ok(Some(s)),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// `name` exists (as anything, links included).
    pub fn exists(&self, name: &OsStr) -> io::Result<bool> {
        self.stat(name).map(|s| s.is_some())
    }

    /// Create the new regular file `name` (never through a link).
    pub fn create_file(&self, name: &OsStr, mode: u32) -> io::Result<File> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        Ok(File::from(rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(mode))?))
    }

    /// Open the regular file `name` for reading (a link is refused).
    pub fn open_file(&self, name: &OsStr) -> io::Result<File> {
        let f = File::from(rustix::fs::openat(&self.fd, name, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty())?);
        if !f.metadata()?.is_file() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{} is not a regular file", name.to_string_lossy())));
        }
        Ok(f)
    }

    pub fn mkdir(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        Ok(rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(mode))?)
    }

    /// Create the symbolic link `name` -> `target`.
    pub fn symlink(&self, target: &OsStr, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::symlinkat(target, &self.fd, name)?)
    }

    /// rename(2) `name` here to `to_name` in `to` (replacing a file there).
    pub fn rename(&self, name: &OsStr, to: &Dir, to_name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.fd, name, &to.fd, to_name)?)
    }

    /// Remove the file or link `name`.
    pub fn remove_file(&self, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())?)
    }

    /// Remove the empty directory `name`.
    pub fn remove_dir(&self, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)?)
    }

    /// Remove `name` whatever it is, a whole tree below a directory
    /// included (links are removed, never followed); absent is fine.
    pub fn remove_all(&self, name: &OsStr) -> io::Result<()> {
        match self.stat(name)? {
            None => Ok(()),
            Some(s) if FileType::from_raw_mode(s.st_mode) == FileType::Directory => {
                let sub = match rustix::fs::openat(&self.fd, name, dir_flags(), Mode::empty()) {
                    Ok(fd) => Dir { fd },
                    Err(Errno::NOENT) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                sub.clear()?;
                match self.remove_dir(name) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                    r => r,
                }
            }
            Some(_) => match self.remove_file(name) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                r => r,
            },
        }
    }

    /// Remove everything in this directory.
    pub fn clear(&self) -> io::Result<()> {
        for name in self.names()? {
            self.remove_all(OsStr::from_bytes(&name))?;
        }
        Ok(())
    }

    /// The names in this directory (without `.` and `..`).
    pub fn names(&self) -> io::Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for e in rustix::fs::Dir::read_from(&self.fd)? {
            let e = e?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                out.push(n.to_vec());
            }
        }
        Ok(out)
    }

    /// fsync(2) this directory (its entries' creation, rename, removal).
    pub fn sync(&self) -> io::Result<()> {
        Ok(rustix::fs::fsync(&self.fd)?)
    }

    /// syncfs(2): flush the whole filesystem holding this directory.
    pub fn sync_fs(&self) -> io::Result<()> {
        Ok(rustix::fs::syncfs(&self.fd)?)
    }

    /// This directory's own status.
    pub fn fstat(&self) -> io::Result<Stat> {
        Ok(rustix::fs::fstat(&self.fd)?)
    }

    /// Set `m` on `name` without following a link there: owner first
    /// (chown clears set-id bits), then mode (not on a link), then times.
    /// `dir_only`: `name` must be a directory.
    pub fn set_attributes(&self, name: &OsStr, m: &FileMetadata, dir_only: bool) -> io::Result<()> {
        let s = self.stat(name)?.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{} does not exist", name.to_string_lossy())))?;
        let ft = FileType::from_raw_mode(s.st_mode);
        if dir_only && ft != FileType::Directory {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a directory", name.to_string_lossy())));
        }
        let owner = m.uid.map(rustix::fs::Uid::from_raw);
        let group = m.gid.map(rustix::fs::Gid::from_raw);
        let times =
            (m.atime.is_some() || m.mtime.is_some()).then(|| rustix::fs::Timestamps { last_access: timespec(m.atime), last_modification: timespec(m.mtime) });
        if ft == FileType::Symlink {
            if owner.is_some() || group.is_some() {
                rustix::fs::chownat(&self.fd, name, owner, group, AtFlags::SYMLINK_NOFOLLOW)?;
            }
            if let Some(t) = times {
                rustix::fs::utimensat(&self.fd, name, &t, AtFlags::SYMLINK_NOFOLLOW)?;
            }
            return Ok(());
        }
        // A descriptor for the entry itself: a swap after the stat above
        // makes the open fail (O_NOFOLLOW) or the type check below refuse.
        let flags = if ft == FileType::Directory { dir_flags() } else { OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC };
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::empty())?;
        if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) != ft {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} changed while its attributes were set", name.to_string_lossy())));
        }
        if owner.is_some() || group.is_some() {
            rustix::fs::fchown(&fd, owner, group)?;
        }
        if let Some(mode) = m.mode {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o7777))?;
        }
        if let Some(t) = times {
            rustix::fs::futimens(&fd, &t)?;
        }
        Ok(())
    }

    /// Replace `name` with `bytes`, atomically and durably (an
    /// [`AtomicFileAt`]).
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        use std::io::Write;
        let mut f = AtomicFileAt::create(self.try_clone()?, None, OsStr::new(name))?;
        f.file().write_all(bytes)?;
        f.commit()
    }

    /// Read the regular file `name` whole (a link is refused), at most
    /// `limit` bytes.
    pub fn read(&self, name: &str, limit: u64) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let mut out = Vec::new();
        self.open_file(OsStr::new(name))?.take(limit.saturating_add(1)).read_to_end(&mut out)?;
        if out.len() as u64 > limit {
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{name} is larger than {limit} bytes")));
        }
        Ok(out)
    }
}

/// Distinguishes the temporary files of one process.
static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A file being written to replace `name` in a directory: the steps of
/// [`foundation::durable::AtomicFile`] (exclusive temporary file
/// `.<name>.<pid>-<n>.tmp` beside the target, write, fsync, rename over the
/// target, fsync the directory), relative to the directory's descriptor.
/// Dropped without [`commit`](AtomicFileAt::commit), the temporary file is
/// removed (and on SIGINT/SIGTERM, when created with the directory's path).
#[derive(Debug)]
pub struct AtomicFileAt {
    dir: Dir,
    temp: std::ffi::OsString,
    name: std::ffi::OsString,
    file: File,
    renamed: bool,
    _interrupt: Option<foundation::interrupt::Registration>,
}

impl AtomicFileAt {
    /// Create the temporary file (mode 0600) in `dir`; `dir_path`, if
    /// given, is where it is, for the interrupt handler.
    pub fn create(dir: Dir, dir_path: Option<&Path>, name: &OsStr) -> io::Result<AtomicFileAt> {
        let short = &name.as_bytes()[..name.len().min(200)];
        loop {
            let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
            let mut temp = std::ffi::OsString::from(".");
            temp.push(OsStr::from_bytes(short));
            temp.push(format!(".{}-{n}.tmp", std::process::id()));
            let file = match dir.create_file(&temp, 0o600) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            let _interrupt = dir_path.map(|p| foundation::interrupt::Registration::new(&p.join(&temp)));
            return Ok(AtomicFileAt { dir, temp, name: name.to_os_string(), file, renamed: false, _interrupt });
        }
    }

    /// The file to write the content into.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Set attributes on the temporary file (before [`commit`](AtomicFileAt::commit)).
    pub fn set_attributes(&self, m: &FileMetadata) -> io::Result<()> {
        self.dir.set_attributes(&self.temp, m, false)
    }

    /// fsync, rename over the target (a link there is replaced, never
    /// followed), fsync the directory.
    pub fn commit(mut self) -> io::Result<()> {
        self.file.sync_all()?;
        self.dir.rename(&self.temp, &self.dir, &self.name)?;
        self.renamed = true;
        self.dir.sync()
    }
}

impl Drop for AtomicFileAt {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = self.dir.remove_file(&self.temp);
        }
    }
}

fn timespec(t: Option<Timestamp>) -> rustix::fs::Timespec {
    match t {
        Some(t) => rustix::fs::Timespec { tv_sec: t.seconds.min(i64::MAX as u64) as _, tv_nsec: t.nanoseconds as _ },
        None => rustix::fs::Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_OMIT },
    }
}

fn with_path(e: Errno, p: &Path) -> io::Error {
    let e = io::Error::from(e);
    io::Error::new(e.kind(), format!("{}: {e}", p.display()))
}

/// The names of `rel`, which must be relative and without `..`.
fn normal_components<'a>(rel: &'a Path, prefix: &str) -> Result<Vec<&'a OsStr>, WalkError> {
    let mut out = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => {
                return Err(WalkError::Io {
                    path: shown(prefix, rel),
                    source: io::Error::new(io::ErrorKind::InvalidInput, "not a path below the anchor (absolute or with `..`)"),
                })
            }
        }
    }
    Ok(out)
}

/// Say why opening `name` in `at` as a directory failed.
fn classify(at: BorrowedFd<'_>, name: &OsStr, e: Errno, shown: String) -> WalkError {
    match e {
        Errno::LOOP | Errno::NOTDIR | Errno::XDEV => match rustix::fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(s) if FileType::from_raw_mode(s.st_mode) == FileType::Symlink => WalkError::Symlink(shown),
            Ok(s) if FileType::from_raw_mode(s.st_mode) != FileType::Directory => WalkError::NotADirectory(shown),
            _ => WalkError::Io { path: shown, source: e.into() },
        },
        _ => WalkError::Io { path: shown, source: e.into() },
    }
}

/// Split a relative path into its parent (possibly empty) and final name.
pub fn split(rel: &Path) -> (&Path, &OsStr) {
    (rel.parent().unwrap_or(Path::new("")), rel.file_name().unwrap_or(OsStr::new("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_refuse_links_and_files() {
        walks_refuse_links_and_files_with_openat2_state(0);
        // Without openat2 (older kernels, seccomp): the per-component walk alone.
        walks_refuse_links_and_files_with_openat2_state(2);
        OPENAT2.store(0, Ordering::Relaxed);
    }

    fn walks_refuse_links_and_files_with_openat2_state(state: u8) {
        OPENAT2.store(state, Ordering::Relaxed);
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/f"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("a/l")).unwrap();
        let root = Dir::open(d.path()).unwrap();
        assert!(root.walk(Path::new("a/b"), "").is_ok());
        assert_eq!(root.walk(Path::new("a/l/x"), "").unwrap_err().to_string(), "/a/l is a symlink; refusing to follow it");
        assert_eq!(root.walk(Path::new("a/f/x"), "").unwrap_err().to_string(), "/a/f exists and is not a directory");
        assert!(root.walk(Path::new("a/missing/x"), "").unwrap_err().is_not_found());
        assert!(root.walk(Path::new("../x"), "").is_err());
        assert!(matches!(root.walk_create(Path::new("a/l/new"), "OUT", 0o755), Err(WalkError::Symlink(p)) if p == "OUT/a/l"));
        let made = root.walk_create(Path::new("a/n/m"), "", 0o755).unwrap();
        made.create_file(OsStr::new("f"), 0o644).unwrap();
        assert!(d.path().join("a/n/m/f").is_file());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
        // A link at the final name is never written through.
        assert!(root.walk(Path::new("a"), "").unwrap().create_file(OsStr::new("l"), 0o644).is_err());
        root.remove_all(OsStr::new("a")).unwrap();
        assert!(!d.path().join("a").exists() && outside.path().exists());
    }

    #[test]
    fn atomic_write_and_bounded_read() {
        let d = tempfile::tempdir().unwrap();
        let dir = Dir::open(d.path()).unwrap();
        dir.write_atomic("j.json", b"one").unwrap();
        dir.write_atomic("j.json", b"two").unwrap();
        assert_eq!(dir.read("j.json", 3).unwrap(), b"two");
        assert!(dir.read("j.json", 2).is_err());
        assert_eq!(dir.names().unwrap(), vec![b"j.json".to_vec()]);
    }
}
