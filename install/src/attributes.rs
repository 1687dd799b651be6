//! File attributes at install: mode, owner and times from the extended file
//! record and the Filesystem Entry (pkgfmt `FileMetadata`), applied to the
//! staged file, link or directory before it is renamed into place, so that
//! they are part of the same transaction.
//!
//! Defaults: a new file is `0644`, a new directory `0755`; a file that
//! replaces one without recorded attributes takes the old file's mode and
//! owner. Owners are applied only when installing as root (as `tar` does);
//! otherwise new entries belong to the installing user. A link's own mode
//! does not exist on POSIX: only its owner (and times) are applied, never
//! following it.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use pkgfmt::command::Timestamp;
use pkgfmt::FileMetadata;

/// Mode of a new file without a recorded one.
pub const DEFAULT_FILE_MODE: u32 = 0o644;
/// Mode of a new directory without a recorded one.
pub const DEFAULT_DIR_MODE: u32 = 0o755;

/// Installing as root: owners can be set.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// What to set on one staged entry: recorded attributes, else those of the
/// entry it replaces (`(st_mode, uid, gid)`), else the default mode.
pub fn resolve(recorded: Option<&FileMetadata>, replaced: Option<(u32, u32, u32)>, default_mode: u32) -> FileMetadata {
    let r = recorded.copied().unwrap_or_default();
    let mode = r.mode.or(replaced.map(|m| m.0 & 0o7777)).unwrap_or(default_mode);
    let (uid, gid) = if is_root() { (r.uid.or(replaced.map(|m| m.1)), r.gid.or(replaced.map(|m| m.2))) } else { (None, None) };
    FileMetadata { mode: Some(mode), uid, gid, ..r }
}

/// Set `m` on `path` without following a symlink there: owner first
/// (chown clears set-id bits), then mode (not on a link), then times.
pub fn apply(path: &Path, m: &FileMetadata) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    let link = meta.file_type().is_symlink();
    if m.uid.is_some() || m.gid.is_some() {
        std::os::unix::fs::lchown(path, m.uid, m.gid)?;
    }
    if let (Some(mode), false) = (m.mode, link) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))?;
    }
    if m.atime.is_some() || m.mtime.is_some() {
        set_times(path, m.atime, m.mtime)?;
    }
    Ok(())
}

fn timespec(t: Option<Timestamp>) -> libc::timespec {
    match t {
        Some(t) => libc::timespec { tv_sec: t.seconds.min(i64::MAX as u64) as libc::time_t, tv_nsec: t.nanoseconds as _ },
        None => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT },
    }
}

/// utimensat(2) with AT_SYMLINK_NOFOLLOW; an absent time is left as it is.
fn set_times(path: &Path, atime: Option<Timestamp>, mtime: Option<Timestamp>) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    let times = [timespec(atime), timespec(mtime)];
    // SAFETY: a valid C string and a two-element array, as utimensat requires.
    if unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The link-target rule has one home with the package-path rules
/// (`cpekit package verify` applies it too).
pub use pkgfmt::path::target_escapes;

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn recorded_then_replaced_then_default() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("old");
        fs::write(&f, b"x").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        let m = fs::metadata(&f).unwrap();
        let old = (m.mode(), m.uid(), m.gid());
        assert_eq!(resolve(None, Some(old), DEFAULT_FILE_MODE).mode, Some(0o600));
        assert_eq!(resolve(None, None, DEFAULT_FILE_MODE).mode, Some(0o644));
        let rec = FileMetadata { mode: Some(0o750), ..FileMetadata::default() };
        assert_eq!(resolve(Some(&rec), Some(old), DEFAULT_FILE_MODE).mode, Some(0o750));
        if is_root() {
            assert_eq!(resolve(None, Some(old), 0).uid, Some(old.1));
        } else {
            assert_eq!(resolve(Some(&FileMetadata { uid: Some(1), ..rec }), None, 0).uid, None, "owners only as root");
        }
        // Applied without following a link; times set.
        let t = Timestamp { seconds: 1_000_000_000, nanoseconds: 5 };
        apply(&f, &FileMetadata { mode: Some(0o640), mtime: Some(t), ..FileMetadata::default() }).unwrap();
        let m = fs::metadata(&f).unwrap();
        assert_eq!((m.mode() & 0o7777, m.mtime(), m.mtime_nsec()), (0o640, 1_000_000_000, 5));
        let l = d.path().join("link");
        std::os::unix::fs::symlink("old", &l).unwrap();
        apply(&l, &FileMetadata { mode: Some(0o777), ..FileMetadata::default() }).unwrap();
        assert_eq!(fs::metadata(&f).unwrap().mode() & 0o7777, 0o640, "the link's target is untouched");
    }
}
