//! Temporary files removed when the process is interrupted.
//!
//! A destructor does not run when SIGINT or SIGTERM ends a process, so a
//! half-written temporary file (a package being built or signed, up to the
//! size of its payload) would stay behind. [`install_handlers`] makes those
//! two signals first unlink every temporary file still registered with
//! [`Registration::new`], then end the process as the signal would have
//! (default disposition, re-raised: the exit status still says which signal).
//!
//! A temporary *directory* of plain files (a staging directory: `package
//! extract` stages every payload file there before any is renamed into
//! place) is registered with [`Registration::new_dir`]: the handler removes
//! the files in it, then the directory.
//!
//! The handler only does what is async-signal-safe: it reads lock-free
//! atomic slots, calls `unlink(2)`, `signal(2)` and `raise(3)` (and for a
//! directory `open(2)`, `getdents64(2)` into a buffer on its stack,
//! `unlinkat(2)`, `close(2)`, `rmdir(2)`). Each slot
//! holds a leaked NUL-terminated path; a registration's drop empties its slot
//! before freeing the path, and a slot's path is freed only by its owner, so
//! the handler never sees freed memory. [`SLOTS`] files can be registered at
//! once; beyond that a file is simply not covered (an ordinary error path and
//! drop still remove it).

use std::ffi::{c_char, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

/// How many temporary files can be registered at once.
pub const SLOTS: usize = 32;

#[allow(clippy::declare_interior_mutable_const)] // only used to initialise the array
const EMPTY: AtomicPtr<c_char> = AtomicPtr::new(ptr::null_mut());
static TEMP_FILES: [AtomicPtr<c_char>; SLOTS] = [EMPTY; SLOTS];
/// How many temporary directories can be registered at once.
pub const DIR_SLOTS: usize = 4;
static TEMP_DIRS: [AtomicPtr<c_char>; DIR_SLOTS] = [EMPTY; DIR_SLOTS];
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// A temporary file that SIGINT/SIGTERM unlink while this is alive.
#[derive(Debug)]
pub struct Registration {
    slot: Option<usize>,
    slots: &'static [AtomicPtr<c_char>],
}

impl Registration {
    /// Register `path` (until the registration is dropped).
    pub fn new(path: &Path) -> Registration {
        Self::register(path, &TEMP_FILES)
    }

    /// Register the directory `path`, holding plain files only (until the
    /// registration is dropped): on SIGINT/SIGTERM its files and then the
    /// directory are removed.
    pub fn new_dir(path: &Path) -> Registration {
        Self::register(path, &TEMP_DIRS)
    }

    fn register(path: &Path, slots: &'static [AtomicPtr<c_char>]) -> Registration {
        let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
            return Registration { slot: None, slots };
        };
        let raw = c.into_raw();
        for (i, s) in slots.iter().enumerate() {
            if s.compare_exchange(ptr::null_mut(), raw, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                return Registration { slot: Some(i), slots };
            }
        }
        // SAFETY: `raw` came from `into_raw` just above and was not stored.
        drop(unsafe { CString::from_raw(raw) });
        Registration { slot: None, slots }
    }

    /// The registration holds a slot (the path is covered).
    pub fn is_covered(&self) -> bool {
        self.slot.is_some()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            let raw = self.slots[i].swap(ptr::null_mut(), Ordering::SeqCst);
            if !raw.is_null() {
                // SAFETY: only this registration stored `raw` (from
                // `into_raw`); the slot no longer holds it, so the handler
                // cannot read it any more.
                drop(unsafe { CString::from_raw(raw) });
            }
        }
    }
}

/// Remove the plain files in directory `dir`, then the directory; only
/// async-signal-safe system calls, the listing in a buffer on the stack.
///
/// # Safety
/// `dir` is a valid NUL-terminated path.
unsafe fn remove_flat_dir(dir: *const c_char) {
    // SAFETY (whole body): system calls on a path the caller vouches for and
    // on a descriptor this function opened; the buffer outlives each call
    // and every record read from it lies within the length the kernel gave.
    unsafe {
        let fd = libc::open(dir, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC);
        if fd < 0 {
            return;
        }
        #[repr(C, align(8))]
        struct Buf([u8; 4096]);
        let mut buf = Buf([0; 4096]);
        // Removing while listing may skip names: list again until a pass
        // removes nothing (bounded, should the directory keep changing).
        for _ in 0..64 {
            let mut removed = 0;
            libc::lseek(fd, 0, libc::SEEK_SET);
            loop {
                let n = libc::syscall(libc::SYS_getdents64, fd, buf.0.as_mut_ptr(), buf.0.len());
                if n <= 0 {
                    break;
                }
                let mut at = 0usize;
                while at + 19 < n as usize {
                    let reclen = u16::from_ne_bytes([buf.0[at + 16], buf.0[at + 17]]) as usize;
                    if reclen == 0 {
                        break;
                    }
                    let name = buf.0.as_ptr().add(at + 19) as *const c_char;
                    let dot = *name == b'.' as c_char && (*name.add(1) == 0 || (*name.add(1) == b'.' as c_char && *name.add(2) == 0));
                    if !dot && libc::unlinkat(fd, name, 0) == 0 {
                        removed += 1;
                    }
                    at += reclen;
                }
            }
            if removed == 0 {
                break;
            }
        }
        libc::close(fd);
        libc::rmdir(dir);
    }
}

extern "C" fn on_signal(sig: libc::c_int) {
    for s in &TEMP_FILES {
        let p = s.load(Ordering::SeqCst);
        if !p.is_null() {
            // SAFETY: a NUL-terminated path owned by a live registration.
            unsafe { libc::unlink(p) };
        }
    }
    for s in &TEMP_DIRS {
        let p = s.load(Ordering::SeqCst);
        if !p.is_null() {
            // SAFETY: a NUL-terminated path owned by a live registration.
            unsafe { remove_flat_dir(p) };
        }
    }
    // SAFETY: async-signal-safe calls; the default action then ends the process.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Make SIGINT and SIGTERM remove the registered temporary files before
/// they end the process. Idempotent.
pub fn install_handlers() {
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: installing a handler that only makes async-signal-safe calls.
        unsafe {
            libc::signal(sig, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_take_and_free_slots() {
        let d = tempfile::tempdir().unwrap();
        let regs: Vec<Registration> = (0..SLOTS + 2).map(|i| Registration::new(&d.path().join(i.to_string()))).collect();
        // Other tests may hold slots at the same time; at most SLOTS are covered.
        assert!(regs.iter().filter(|r| r.slot.is_some()).count() <= SLOTS);
        assert!(regs.iter().any(|r| r.slot.is_none()));
        let first = regs.iter().find_map(|r| r.slot).expect("a slot");
        let held = TEMP_FILES[first].load(Ordering::SeqCst);
        // SAFETY: the registration holding it is alive.
        assert_eq!(unsafe { std::ffi::CStr::from_ptr(held) }.to_bytes(), d.path().join("0").as_os_str().as_bytes());
        drop(regs);
        // Dropped registrations free their slots for the next ones.
        assert!(Registration::new(Path::new("/tmp/x")).slot.is_some());
    }

    #[test]
    fn a_registered_directory_is_emptied_and_removed() {
        let d = tempfile::tempdir().unwrap();
        let stage = d.path().join("stage");
        std::fs::create_dir(&stage).unwrap();
        // More names than one getdents64 buffer holds.
        for i in 0..300 {
            std::fs::write(stage.join(format!("{i}-{}", "n".repeat(40))), b"x").unwrap();
        }
        let r = Registration::new_dir(&stage);
        assert!(r.is_covered());
        let raw = TEMP_DIRS[r.slot.unwrap()].load(Ordering::SeqCst);
        // SAFETY: the registration holding the path is alive.
        unsafe { remove_flat_dir(raw) };
        assert!(!stage.exists());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }
}
