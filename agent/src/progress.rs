//! Progress of the running transfer, shared between the transfer code
//! (writer) and the LAN pages (reader, `DownloadProgressURL`, Appendix D).
//! Bytes come from the download as it arrives; for a signed package the
//! phase comes from the installer's own reports
//! ([`install::progress::Observer`]).

use std::sync::{Arc, Mutex};

/// Where a transfer is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Nothing has run since the agent started.
    Idle,
    /// Receiving the file (for a package: its payload streams into the
    /// installer).
    Downloading,
    /// The installer checks the package prefix (E.5: signatures,
    /// preconditions and the plan, before any payload is processed).
    Verifying,
    /// Applying: the installer commits, or the vendor handler runs.
    Installing,
    /// Finished: FaultCode 0.
    Done,
    /// Finished with a fault (TransferComplete FaultCode/FaultString).
    Failed { code: u32, message: String },
}

/// One snapshot of the running (or last) transfer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    pub command_key: String,
    pub url: String,
    pub file_type: String,
    /// Bytes received so far.
    pub bytes: u64,
    /// Expected size (FileSize argument or Content-Length), 0 if unknown.
    pub total: u64,
    pub phase: Phase,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot { command_key: String::new(), url: String::new(), file_type: String::new(), bytes: 0, total: 0, phase: Phase::Idle }
    }
}

impl Snapshot {
    /// Percentage done, when the size is known.
    pub fn percent(&self) -> Option<u8> {
        (self.total > 0).then(|| (self.bytes.min(self.total).saturating_mul(100) / self.total) as u8)
    }
}

/// A cheap, cloneable handle: the transfer updates it, the LAN server reads it.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<Mutex<Snapshot>>);

impl Progress {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn snapshot(&self) -> Snapshot {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Change the snapshot in place.
    pub fn update(&self, f: impl FnOnce(&mut Snapshot)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_shared_updates() {
        let p = Progress::new();
        let reader = p.clone();
        assert_eq!(reader.snapshot().phase, Phase::Idle);
        assert_eq!(reader.snapshot().percent(), None);
        p.update(|s| {
            s.phase = Phase::Downloading;
            s.total = 200;
            s.bytes = 50;
        });
        assert_eq!(reader.snapshot().percent(), Some(25));
        p.update(|s| s.bytes = 500); // more than announced: capped
        assert_eq!(reader.snapshot().percent(), Some(100));
    }
}
