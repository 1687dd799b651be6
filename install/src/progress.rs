//! Progress of an install, for whoever shows it (the agent's
//! DownloadProgressURL page, TR-069 Appendix D): the installer's phase and
//! how much of the package it has taken in.
//!
//! The phases come in this order (E.5: the prefix is verified before any
//! payload is processed):
//!
//! 1. [`Phase::VerifyingPrefix`], once: the header, command list and
//!    signature block have been read; the signatures, preconditions and the
//!    plan are being checked.
//! 2. [`Phase::StreamingPayload`]: the payload streams through the hash
//!    check into staging; reported when it starts and after every chunk.
//! 3. [`Phase::Committing`], once: every byte is in and verified; the plan
//!    is journaled and applied. A dry run stops before it.
//!
//! An install that fails stops reporting where it fails; the error says why.

use serde::Serialize;

/// Where the installer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    VerifyingPrefix,
    StreamingPayload,
    Committing,
}

/// One progress report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub phase: Phase,
    /// Package bytes taken in so far (prefix and payload); never decreases.
    pub done: u64,
    /// The package's length: its prefix plus the payload length its header
    /// declares.
    pub total: u64,
}

/// Receives progress reports. Called on the installing thread between
/// reads, so it must return quickly. Closures `Fn(Progress)` are observers.
pub trait Observer: Send + Sync {
    fn progress(&self, p: Progress);
}

impl<F: Fn(Progress) + Send + Sync> Observer for F {
    fn progress(&self, p: Progress) {
        self(p)
    }
}
