//! Durable, atomic replacement of a file's content.
//!
//! After [`write_atomic`] (or [`AtomicFile::commit`]) returns `Ok`, the file
//! holds the new content and survives a power loss; if the process or the
//! machine dies at any point before that, the file holds its old content
//! (or does not exist, if it did not before) — never a mix.
//!
//! The steps, in order:
//!
//! 1. create a temporary file in the target's own directory (so that the
//!    rename below stays on one filesystem and is atomic), exclusively
//!    (`O_EXCL`), named `.<name>.<pid>-<n>.tmp`;
//! 2. write the content;
//! 3. `fsync` the temporary file;
//! 4. `rename(2)` it over the target;
//! 5. `fsync` the directory, so that the rename itself is durable.
//!
//! **Temporary file.** Removed on every error (and when an [`AtomicFile`] is
//! dropped without being committed), and on SIGINT/SIGTERM once the binary
//! called [`crate::interrupt::install_handlers`]. Only a crash between steps 1 and 4
//! leaves one behind: a hidden `.tmp` file next to the target that nothing
//! reads. Its name is unique per writer, so concurrent writers of the same
//! target never write into each other's temporary file (the last rename
//! wins, each content whole).
//!
//! **Mode.** The caller chooses with [`Mode`]: by default ([`Mode::Inherit`])
//! the new file gets the permission bits (`0o777`; not set-id or sticky) of
//! the regular file it replaces, or, when there is none, `0o666` less the
//! umask, as `File::create` would. [`Mode::Exactly`] sets the given bits
//! regardless of the umask. The mode is applied before any content is
//! written. The owner is the writer's: it is not carried over.
//!
//! **Batches.** A writer of many files that can wait for their durability
//! (the simulator's `--state-dir`) writes each with
//! [`AtomicFile::commit_unsynced`] (steps 1, 2 and 4) and makes the whole
//! batch durable with one [`sync_filesystem`] instead of two `fsync`s a
//! file. Each file is still replaced whole as far as readers are concerned;
//! until the sync returns, a crash may leave a target old, new or, on some
//! file systems, empty.
//!
//! **Symlinks.** A symlink at the target path is replaced by the new file
//! (rename replaces the link itself); the file it pointed to is not touched.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The permission bits of the file written (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Those of the regular file replaced; for a new file `0o666` less the
    /// umask.
    #[default]
    Inherit,
    /// Exactly these bits (`& 0o777`), whatever the umask.
    Exactly(u32),
}

/// Replace `path`'s content with `bytes`, atomically and durably
/// ([`Mode::Inherit`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, Mode::Inherit, |f| f.write_all(bytes))
}

/// Replace `path`'s content with what `write` writes into the (temporary)
/// file, atomically and durably. An error from `write` is returned as is,
/// and `path` is left untouched. `write` may read `path` itself (signing a
/// file in place): the old file stays in place until the rename.
pub fn write_atomic_with<E: From<io::Error>>(path: &Path, mode: Mode, write: impl FnOnce(&mut File) -> Result<(), E>) -> Result<(), E> {
    let mut f = AtomicFile::create(path, mode)?;
    write(f.file())?;
    f.commit()?;
    Ok(())
}

/// `fsync` a directory: makes the creation, rename or removal of its
/// entries durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `syncfs(2)`: flush every file and directory of the file system that
/// holds `dir` (one sync for a batch of [`AtomicFile::commit_unsynced`]).
pub fn sync_filesystem(dir: &Path) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let d = File::open(dir)?;
    // SAFETY: syncfs on a descriptor we own, open for the whole call.
    if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A file being written to replace `target` (the steps of
/// [`write_atomic_with`], one by one). Dropped without
/// [`commit`](AtomicFile::commit), it is removed and `target` stays as it
/// was.
#[derive(Debug)]
pub struct AtomicFile {
    file: File,
    temp: PathBuf,
    target: PathBuf,
    dir: PathBuf,
    /// The temporary file no longer exists under `temp` (renamed).
    renamed: bool,
    /// Unlinks `temp` on SIGINT/SIGTERM until committed or dropped.
    _interrupt: crate::interrupt::Registration,
}

/// Distinguishes the temporary files of one process.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Room left for `.`, `.<pid>-<n>.tmp` within NAME_MAX (255 bytes).
const MAX_NAME_PART: usize = 200;

impl AtomicFile {
    /// Step 1: create the temporary file next to `target`, with `mode`'s
    /// permission bits.
    pub fn create(target: &Path, mode: Mode) -> io::Result<AtomicFile> {
        let name = target.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{}: not a file name", target.display())))?;
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let bits = match mode {
            Mode::Exactly(m) => Some(m & 0o777),
            Mode::Inherit => match fs::symlink_metadata(target) {
                Ok(m) if m.file_type().is_file() => Some(m.permissions().mode() & 0o777),
                _ => None,
            },
        };
        let name = &name.as_bytes()[..name.len().min(MAX_NAME_PART)];
        loop {
            let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
            let mut temp_name = OsString::from(".").into_vec();
            temp_name.extend_from_slice(name);
            temp_name.extend_from_slice(format!(".{}-{n}.tmp", std::process::id()).as_bytes());
            let temp = dir.join(OsString::from_vec(temp_name));
            // A chosen mode is set with fchmod right away (not subject to the
            // umask); until then the file is private.
            let file = match OpenOptions::new().write(true).create_new(true).mode(if bits.is_some() { 0o600 } else { 0o666 }).open(&temp) {
                Ok(f) => f,
                // Left by a crashed process that had our pid: pick another.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            };
            let registration = crate::interrupt::Registration::new(&temp);
            let f = AtomicFile { file, temp, target: target.to_path_buf(), dir, renamed: false, _interrupt: registration };
            if let Some(bits) = bits {
                f.file.set_permissions(fs::Permissions::from_mode(bits))?;
            }
            return Ok(f);
        }
    }

    /// Step 2: the file to write the content into.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Where the temporary file is.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// Step 3: flush the content to the disk. [`commit`](AtomicFile::commit)
    /// does this itself.
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    /// Steps 3 to 5: `fsync`, rename over the target, `fsync` the directory.
    /// On an error before the rename the temporary file is removed and the
    /// target left as it was; an error syncing the directory comes after
    /// the rename (the new content is in place, its durability unknown).
    pub fn commit(mut self) -> io::Result<()> {
        self.sync()?;
        fs::rename(&self.temp, &self.target)?;
        self.renamed = true;
        sync_dir(&self.dir)
    }

    /// Step 4 alone: rename over the target, without the `fsync`s of
    /// [`commit`](AtomicFile::commit); durable after a later
    /// [`sync_filesystem`] (see **Batches** in the module documentation).
    pub fn commit_unsynced(mut self) -> io::Result<()> {
        fs::rename(&self.temp, &self.target)?;
        self.renamed = true;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    fn mode_of(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn replaces_content_and_leaves_no_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("state.json");
        write_atomic(&p, b"one").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one");
        write_atomic(&p, b"two, longer").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two, longer");
        write_atomic(&p, b"").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"");
        assert_eq!(entries(d.path()), ["state.json"]);
    }

    #[test]
    fn a_crash_before_the_rename_leaves_the_old_content() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("journal.json");
        write_atomic(&p, b"old").unwrap();
        // The steps up to the rename, then the process "dies": no
        // destructor, no clean-up runs (mem::forget).
        let mut f = AtomicFile::create(&p, Mode::Inherit).unwrap();
        f.write_all(b"new content").unwrap();
        f.sync().unwrap();
        let temp = f.temp_path().to_path_buf();
        std::mem::forget(f);
        assert_eq!(fs::read(&p).unwrap(), b"old", "the target is untouched until the rename");
        assert_eq!(fs::read(&temp).unwrap(), b"new content", "the crash point is real: the new content was written");
        assert!(temp.parent() == Some(d.path()) && temp.file_name().unwrap().to_string_lossy().starts_with(".journal.json."));
        // After "reboot", the next write works and does not trip over the leftover.
        write_atomic(&p, b"newer").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"newer");
    }

    #[test]
    fn no_temporary_file_survives_an_error() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("out.bin");
        write_atomic(&p, b"old").unwrap();
        // The writer fails halfway.
        let e = write_atomic_with(&p, Mode::Inherit, |f| {
            f.write_all(b"partial")?;
            Err(io::Error::other("source truncated"))
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "source truncated", "the writer's own error comes back");
        assert_eq!(fs::read(&p).unwrap(), b"old");
        assert_eq!(entries(d.path()), ["out.bin"]);
        // The rename fails: the target is a non-empty directory.
        let dir_target = d.path().join("busy");
        fs::create_dir(&dir_target).unwrap();
        fs::write(dir_target.join("x"), b"x").unwrap();
        assert!(write_atomic(&dir_target, b"data").is_err());
        assert_eq!(entries(d.path()), ["busy", "out.bin"]);
        // An uncommitted AtomicFile is removed when dropped.
        let f = AtomicFile::create(&p, Mode::Inherit).unwrap();
        let temp = f.temp_path().to_path_buf();
        assert!(temp.exists());
        drop(f);
        assert!(!temp.exists());
        // No such directory: nothing is created anywhere.
        assert_eq!(write_atomic(&d.path().join("missing/f"), b"x").unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(entries(d.path()), ["busy", "out.bin"]);
    }

    #[test]
    fn mode_is_inherited_or_chosen() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("secret");
        fs::write(&p, b"old").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(mode_of(&p), 0o640, "kept from the file replaced");
        write_atomic_with(&p, Mode::Exactly(0o600), |f| f.write_all(b"x")).unwrap();
        assert_eq!(mode_of(&p), 0o600);
        // Exactly ignores the umask: 0o666 would come out 0o644 under 022.
        let q = d.path().join("shared");
        write_atomic_with(&q, Mode::Exactly(0o666), |f| f.write_all(b"x")).unwrap();
        assert_eq!(mode_of(&q), 0o666);
        // A new file: as File::create would make it (0o666 less the umask).
        let reference = d.path().join("reference");
        File::create(&reference).unwrap();
        let fresh = d.path().join("fresh");
        write_atomic(&fresh, b"x").unwrap();
        assert_eq!(mode_of(&fresh), mode_of(&reference));
    }

    #[test]
    fn a_batch_is_renamed_in_place_then_synced_once() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a.json"), d.path().join("b.json"));
        write_atomic(&a, b"old").unwrap();
        for (p, content) in [(&a, b"new a"), (&b, b"new b")] {
            let mut f = AtomicFile::create(p, Mode::Inherit).unwrap();
            f.write_all(content).unwrap();
            f.commit_unsynced().unwrap();
        }
        sync_filesystem(d.path()).unwrap();
        assert_eq!(fs::read(&a).unwrap(), b"new a");
        assert_eq!(fs::read(&b).unwrap(), b"new b");
        assert_eq!(entries(d.path()), ["a.json", "b.json"], "no temporary file left");
        assert_eq!(sync_filesystem(&d.path().join("missing")).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_symlink_is_replaced_not_written_through() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_file());
        assert_eq!(fs::read(&link).unwrap(), b"new");
    }

    #[test]
    fn long_names_and_paths_without_a_file_name() {
        let d = tempfile::tempdir().unwrap();
        let long = d.path().join("n".repeat(250));
        write_atomic(&long, b"x").unwrap();
        assert_eq!(fs::read(&long).unwrap(), b"x");
        assert_eq!(entries(d.path()).len(), 1);
        assert_eq!(write_atomic(Path::new("/"), b"x").unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn concurrent_writers_never_mix() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("shared.json");
        let threads: Vec<_> = (0..8u8)
            .map(|i| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        write_atomic(&p, &vec![b'a' + i; 4096]).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let content = fs::read(&p).unwrap();
        assert_eq!(content.len(), 4096);
        assert!(content.iter().all(|b| *b == content[0]), "one writer's content, whole");
        assert_eq!(entries(d.path()), ["shared.json"]);
    }
}
