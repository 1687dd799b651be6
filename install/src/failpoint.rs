//! Fail points: simulated power loss for the crash-injection tests.

/// Test hook: `CPEKIT_FAILPOINT=N` SIGKILLs the process at the N-th fail
/// point (simulated power loss for the crash-injection tests).
pub struct FailPoints {
    target: Option<u64>,
    hits: u64,
}

impl FailPoints {
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

    pub fn count(&self) -> u64 {
        self.hits
    }
}
