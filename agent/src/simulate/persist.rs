//! `--state-dir`: the simulated CPEs' state on disk, written in batches by
//! a writer thread with one `syncfs` per batch instead of an fsync per
//! file ([`foundation::durable`]'s batches: each file replaced whole by
//! rename, the batch made durable by [`durable::sync_filesystem`]; the
//! simulator's state is in memory by default). The event loop
//! never waits for the disk: while a batch is being written, changed CPEs
//! accumulate (each once) for the next one.
//!
//! Layout: `<dir>/sim/<serial>/agent.json` ([`SavedCpe`]) and, when the
//! ACS changed the CPE's parameters, `<dir>/sim/<serial>/parameters.json`
//! ([`super::model::SavedParameters`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use foundation::durable::{self, AtomicFile, Mode};
use serde::{Deserialize, Serialize};

use crate::soap::Event;

/// A simulated CPE's persisted state (the counterpart of the agent's
/// `agent.json`).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SavedCpe {
    pub bootstrapped: bool,
    /// The ACS URL of the last acknowledged Inform: a change means 0 BOOTSTRAP.
    #[serde(default)]
    pub acs_url: String,
    pub pending_events: Vec<Event>,
    pub retry_count: u32,
    /// The random part of the ConnectionRequestURL (the ACS knows it).
    pub cr_secret: String,
}

pub fn cpe_dir(root: &Path, serial: &str) -> PathBuf {
    root.join("sim").join(serial)
}

pub fn load(root: &Path, serial: &str) -> std::io::Result<(Option<SavedCpe>, Option<super::model::SavedParameters>)> {
    let dir = cpe_dir(root, serial);
    let read = |name: &str| match std::fs::read(dir.join(name)) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    };
    let bad = |e: serde_json::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let cpe = read("agent.json")?.map(|b| serde_json::from_slice(&b)).transpose().map_err(bad)?;
    let params = read("parameters.json")?.map(|b| serde_json::from_slice(&b)).transpose().map_err(bad)?;
    Ok((cpe, params))
}

/// Files to write: (path, contents).
pub type Batch = Vec<(PathBuf, Vec<u8>)>;

/// The writer thread.
pub struct Writer {
    tx: Option<SyncSender<Batch>>,
    /// A batch is being written: the event loop keeps collecting instead
    /// of waiting (it never blocks on the disk).
    busy: Arc<AtomicBool>,
    thread: Option<JoinHandle<std::io::Result<u64>>>,
}

impl Writer {
    pub fn start(root: PathBuf) -> std::io::Result<Writer> {
        std::fs::create_dir_all(root.join("sim"))?;
        let (tx, rx) = mpsc::sync_channel::<Batch>(1);
        let busy = Arc::new(AtomicBool::new(false));
        let b = busy.clone();
        let thread = std::thread::Builder::new().name("sim-persist".into()).spawn(move || write_loop(&root, rx, &b))?;
        Ok(Writer { tx: Some(tx), busy, thread: Some(thread) })
    }

    /// Whether the previous batch is done (else keep the changes for later).
    pub fn ready(&self) -> bool {
        !self.busy.load(Ordering::Acquire)
    }

    pub fn send(&self, batch: Batch) {
        if batch.is_empty() {
            return;
        }
        if let Some(tx) = &self.tx {
            self.busy.store(true, Ordering::Release);
            let _ = tx.send(batch);
        }
    }

    /// Write what is queued and wait: the number of files written.
    pub fn finish(mut self) -> std::io::Result<u64> {
        drop(self.tx.take());
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(std::io::Error::other("state writer panicked")),
            None => Ok(0),
        }
    }
}

fn write_loop(root: &Path, rx: Receiver<Batch>, busy: &AtomicBool) -> std::io::Result<u64> {
    let mut written = 0u64;
    let mut first_error: Option<std::io::Error> = None;
    for batch in rx {
        for (path, bytes) in batch {
            let r = (|| {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut f = AtomicFile::create(&path, Mode::Inherit)?;
                f.write_all(&bytes)?;
                f.commit_unsynced()
            })();
            match r {
                Ok(()) => written += 1,
                Err(e) => {
                    if first_error.is_none() {
                        tracing::warn!(path = %path.display(), error = %foundation::error_kind::chain(&e), "cannot save simulated CPE state");
                        first_error = Some(e);
                    }
                }
            }
        }
        // One flush of the file system per batch (the batched fsync).
        if let Err(e) = durable::sync_filesystem(root) {
            first_error.get_or_insert(e);
        }
        busy.store(false, Ordering::Release);
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(written),
    }
}
