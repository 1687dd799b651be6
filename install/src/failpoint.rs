//! Fail points: simulated power loss for the crash-injection tests.
//!
//! The installer calls [`FailPoints::hit`] between the steps a power loss
//! could separate (each payload read, the journal write, every applied
//! operation, the commit, the clean-up, each undo of a recovery). With the
//! `failpoints` cargo feature, `CPEKIT_FAILPOINT=N` SIGKILLs the process at
//! the N-th of them; the workspace's tests enable the feature for the
//! `cpekit` binary they run. Without it (every release build) a fail point
//! is nothing: no variable is read and the name is not in the binary.

/// Counts fail points and kills the process at the chosen one.
#[cfg(feature = "failpoints")]
pub struct FailPoints {
    target: Option<u64>,
    hits: u64,
}

#[cfg(feature = "failpoints")]
impl FailPoints {
    /// `CPEKIT_FAILPOINT=N`: kill at the N-th fail point.
    pub fn from_env() -> Self {
        FailPoints { target: std::env::var("CPEKIT_FAILPOINT").ok().and_then(|v| v.parse().ok()), hits: 0 }
    }

    pub fn none() -> Self {
        FailPoints { target: None, hits: 0 }
    }

    pub fn hit(&mut self) {
        self.hits += 1;
        if self.target == Some(self.hits) {
            // SAFETY: kill(2) on our own pid; nothing after it runs.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}

/// Without the `failpoints` feature: fail points do nothing.
#[cfg(not(feature = "failpoints"))]
pub struct FailPoints;

#[cfg(not(feature = "failpoints"))]
impl FailPoints {
    pub fn from_env() -> Self {
        FailPoints
    }

    pub fn none() -> Self {
        FailPoints
    }

    #[inline(always)]
    pub fn hit(&mut self) {}
}
