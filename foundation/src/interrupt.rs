//! Temporary files removed when the process is interrupted.
//!
//! A destructor does not run when SIGINT or SIGTERM ends a process, so a
//! half-written temporary file (a package being built or signed, up to the
//! size of its payload) would stay behind. [`install_handlers`] makes those
//! two signals first unlink every temporary file still registered with
//! [`Registration::new`], then end the process as the signal would have
//! (default disposition, re-raised: the exit status still says which signal).
//!
//! The handler only does what is async-signal-safe: it reads lock-free
//! atomic slots, calls `unlink(2)`, `signal(2)` and `raise(3)`. Each slot
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
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// A temporary file that SIGINT/SIGTERM unlink while this is alive.
#[derive(Debug)]
pub struct Registration {
    slot: Option<usize>,
}

impl Registration {
    /// Register `path` (until the registration is dropped).
    pub fn new(path: &Path) -> Registration {
        let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
            return Registration { slot: None };
        };
        let raw = c.into_raw();
        for (i, s) in TEMP_FILES.iter().enumerate() {
            if s.compare_exchange(ptr::null_mut(), raw, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                return Registration { slot: Some(i) };
            }
        }
        // SAFETY: `raw` came from `into_raw` just above and was not stored.
        drop(unsafe { CString::from_raw(raw) });
        Registration { slot: None }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            let raw = TEMP_FILES[i].swap(ptr::null_mut(), Ordering::SeqCst);
            if !raw.is_null() {
                // SAFETY: only this registration stored `raw` (from
                // `into_raw`); the slot no longer holds it, so the handler
                // cannot read it any more.
                drop(unsafe { CString::from_raw(raw) });
            }
        }
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
}
