//! File transfers (TR-069 Appendix A), as a
//! [`session::Extension`](crate::session::Extension):
//!
//! * Download (A.3.2.8: "cause the CPE to download a specified file from the
//!   designated location"): accepted into the persisted [`queue`] and
//!   answered with Status 1; started after the session ends (DelaySeconds
//!   later, never in the same session when DelaySeconds > 0) on a worker
//!   thread, one transfer at a time, while later sessions (Connection
//!   Requests, periodic Informs) go on. FileType 1 and 2 are Annex E signed
//!   packages, streamed straight into the installer engine ([`install`]),
//!   whose progress reports feed the LAN progress page: the 150 KB prefix is
//!   verified against `[trust] packages` before the payload is read (E.5),
//!   preconditions (E.4.10) use DeviceInfo.SoftwareVersion, the E.4.7
//!   timeouts run during the rest of the download, every payload hash is
//!   checked before anything in the install root changes. FileType 3 (and
//!   "X <OUI> ..." vendor types) go to `[agent] vendor_config_command`.
//! * Upload (A.4.1.5: "cause the CPE to upload a specified file to the
//!   designated location"): HTTP PUT (or POST) of the configuration (a JSON
//!   dump of the parameter tree, or a configured file) or of a configured
//!   log file.
//! * TransferComplete (A.3.3.2: "informs the server of the completion
//!   (either successful or unsuccessful) of a file transfer"): sent "in any
//!   subsequent session" with the events "7 TRANSFER COMPLETE" and
//!   "M Download"/"M Upload" (Table 35); the transfer stays queued until the
//!   ACS acknowledges it, across restarts and power loss.
//! * GetQueuedTransfers (A.4.1.1: "the status of previously requested
//!   downloads or uploads"): the queue's transfers and their states.
//!
//! The extension also answers the [device actions](crate::device_actions)
//! (Reboot A.3.2.9, FactoryReset A.4.1.6, ScheduleInform A.4.1.2) and
//! carries them out between sessions: they are persisted with the queue,
//! a Reboot or FactoryReset waits for the running transfer to end, and a
//! FactoryReset empties the queue.

pub mod http;
pub mod queue;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::{info, warn};
use x509_cert::Certificate;

use crate::config::AgentConfig;
use crate::datamodel::store::{self, Store};
use crate::datamodel::Schema;
use crate::device_actions;
use crate::device_command::run_command;
use crate::progress::{Phase, Progress};
use crate::rpc::Effects;
use crate::session::Extension;
use crate::soap::{Body, DownloadArgs, Fault, UploadArgs};
use crate::state::AgentState;
use foundation::clock::now_rfc3339;
use foundation::error_kind::chain;
use install::{self, IgnoreVendor, InstallError, InstallOptions, SystemClock};

use self::http::{Client, FetchError};
use self::queue::{Direction, InstalledVersion, Job, Queue, Status, UNKNOWN_TIME};

/// DeviceInfo.SoftwareVersion: the device's version for E.4.10.
pub const SOFTWARE_VERSION: &str = "InternetGatewayDevice.DeviceInfo.SoftwareVersion";

/// The methods this extension adds (A.3.2.1 GetRPCMethods): the transfer
/// methods and the [`device_actions::METHODS`].
pub const METHODS: &[&str] = &["Download", "Reboot", "GetQueuedTransfers", "ScheduleInform", "Upload", "FactoryReset"];

/// Table 38: FaultString is string(256).
const MAX_FAULT_STRING: usize = 256;

/// How often the main loop looks for a finished transfer.
const WORKER_POLL: Duration = Duration::from_millis(50);

/// Largest file uploaded (read into memory once per attempt).
const MAX_UPLOAD_BYTES: u64 = 32 << 20;

/// Largest vendor configuration file (FileType 3 / vendor types) spooled
/// before its handler runs: a server cannot fill the state directory.
pub const MAX_VENDOR_FILE_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("[trust] packages {path}: {message}")]
    Trust { path: PathBuf, message: String },
    #[error("transfer CA file: {0}")]
    Tls(String),
    #[error("transfer queue {path}: {source}")]
    Queue { path: PathBuf, source: std::io::Error },
    #[error("agent state {path}: {source}")]
    State { path: PathBuf, source: std::io::Error },
}

/// What the transfer code needs from the config.
#[derive(Clone)]
pub struct Settings {
    pub state_dir: PathBuf,
    pub install_root: Option<PathBuf>,
    /// `[trust] packages` anchors (E.5).
    pub trust: Vec<Certificate>,
    pub reboot_command: Option<Vec<String>>,
    pub factory_reset_command: Option<Vec<String>>,
    pub vendor_config_command: Option<Vec<String>>,
    pub upload_config_file: Option<PathBuf>,
    pub upload_log_file: Option<PathBuf>,
    /// HTTP method of Uploads (`[agent] upload_method`).
    pub upload_method: crate::config::UploadMethod,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Give a transfer up after this long without data.
    pub stall: Duration,
    /// `[device] software_version` of the config.
    pub config_software_version: String,
    /// A.5.3 back-off for TransferCompletes the ACS did not acknowledge
    /// (the agent's `retry_base_seconds` / `retry_max_seconds`).
    pub retry_base: Duration,
    pub retry_max: Duration,
}

impl Settings {
    pub fn from_config(cfg: &AgentConfig) -> Result<Settings, TransferError> {
        let mut trust = Vec::new();
        for p in &cfg.trust.packages {
            let pem = std::fs::read(p).map_err(|e| TransferError::Trust { path: p.clone(), message: e.to_string() })?;
            let certs = pkgfmt::signature::load_certs_pem(&pem).map_err(|e| TransferError::Trust { path: p.clone(), message: e.to_string() })?;
            if certs.is_empty() {
                return Err(TransferError::Trust { path: p.clone(), message: "no certificates".into() });
            }
            trust.extend(certs);
        }
        let a = &cfg.agent;
        let ca = a.transfer_ca_file.as_ref().or(cfg.acs.ca_file.as_ref());
        let tls = match ca {
            Some(f) => Some(crate::http::tls_config(f).map_err(|e| TransferError::Tls(e.to_string()))?),
            None => None,
        };
        Ok(Settings {
            state_dir: a.state_dir.clone(),
            install_root: a.install_root.clone(),
            trust,
            reboot_command: a.reboot_command.clone().filter(|c| !c.is_empty()),
            factory_reset_command: a.factory_reset_command.clone().filter(|c| !c.is_empty()),
            vendor_config_command: a.vendor_config_command.clone().filter(|c| !c.is_empty()),
            upload_config_file: a.upload_config_file.clone(),
            upload_log_file: a.upload_log_file.clone(),
            upload_method: a.upload_method.unwrap_or_default(),
            tls,
            stall: Duration::from_secs_f64(a.transfer_stall_timeout_seconds.unwrap_or(300.0).max(0.1)),
            config_software_version: cfg.device.software_version.clone(),
            retry_base: cfg.retry_base(),
            retry_max: cfg.retry_max(),
        })
    }

    /// Installer state (journal, staging, backups): under the agent's state dir.
    pub fn install_state_dir(&self) -> PathBuf {
        self.state_dir.join("install")
    }

    fn spool_dir(&self) -> PathBuf {
        self.state_dir.join("transfers")
    }
}

/// What a Download's FileType asks for (A.3.2.8 Table 27).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadKind {
    /// "1 Firmware Upgrade Image", "2 Web Content": Annex E signed packages.
    Package,
    /// "3 Vendor Configuration File" or "X <OUI> <id>": the vendor handler.
    VendorFile,
}

fn fault(code: u32, s: impl Into<String>) -> Fault {
    Fault::new(code, truncate(s.into()))
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_FAULT_STRING {
        let mut cut = MAX_FAULT_STRING - 3;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// Table 27 / Table 49: "X <OUI> <Vendor-specific identifier>".
fn is_vendor_file_type(t: &str) -> bool {
    let mut parts = t.splitn(3, ' ');
    parts.next() == Some("X")
        && parts.next().is_some_and(|oui| oui.len() == 6 && oui.chars().all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c)))
        && parts.next().is_some_and(|id| !id.is_empty())
}

/// A.3.2.8 Table 27 FileType of a Download (None: not one we know).
pub fn classify(file_type: &str) -> Option<DownloadKind> {
    match file_type {
        "1 Firmware Upgrade Image" | "2 Web Content" => Some(DownloadKind::Package),
        "3 Vendor Configuration File" => Some(DownloadKind::VendorFile),
        t if is_vendor_file_type(t) => Some(DownloadKind::VendorFile),
        _ => None,
    }
}

/// A.3.2.8: check a Download before accepting it (sans-IO: `free` is the
/// free space of the state directory, if known). Faults are those Table 28
/// allows: 9001 (not accepted here), 9003, 9010 (cannot succeed), 9013.
pub fn check_download(a: &DownloadArgs, s: &Settings, free: Option<u64>, queue_full: bool) -> Result<DownloadKind, Fault> {
    if a.command_key.chars().count() > 32 {
        return Err(fault(9003, "CommandKey is longer than 32 characters"));
    }
    http::check_url(&a.url).map_err(|e| fault(9013, e.to_string()))?;
    let Some(kind) = classify(&a.file_type) else {
        return Err(fault(9003, format!("unknown FileType {:?}", a.file_type)));
    };
    match kind {
        DownloadKind::Package if s.install_root.is_none() => {
            return Err(fault(9001, format!("{} not accepted: no [agent] install_root configured", a.file_type)));
        }
        DownloadKind::Package if s.trust.is_empty() => {
            return Err(fault(9001, format!("{} not accepted: no [trust] packages anchors to verify signed packages with (E.5)", a.file_type)));
        }
        DownloadKind::VendorFile if s.vendor_config_command.is_none() => {
            return Err(fault(9001, format!("{} not accepted: no [agent] vendor_config_command configured", a.file_type)));
        }
        _ => {}
    }
    // A.3.2.8 TargetFileName: a name, never a path out of where we put it.
    // For packages the package names its files, and this argument is ignored.
    let t = &a.target_file_name;
    if kind == DownloadKind::VendorFile && (t.contains('/') || t.contains('\\') || t == ".." || t == "." || t.contains('\0')) {
        return Err(fault(9003, format!("TargetFileName {t:?} must be a plain file name")));
    }
    // A.3.2.8 FileSize: refuse early when it cannot fit.
    if let Some(free) = free {
        if u64::from(a.file_size) > free {
            return Err(fault(9010, format!("not enough storage: FileSize is {} bytes but only {free} bytes are free", a.file_size)));
        }
    }
    if queue_full {
        return Err(fault(9001, format!("{} transfers are already queued (A.4.1.1 limit)", queue::MAX_TRANSFERS)));
    }
    Ok(kind)
}

/// A.4.1.5: check an Upload before accepting it.
pub fn check_upload(a: &UploadArgs, s: &Settings, queue_full: bool) -> Result<(), Fault> {
    if a.command_key.chars().count() > 32 {
        return Err(fault(9003, "CommandKey is longer than 32 characters"));
    }
    http::check_url(&a.url).map_err(|e| fault(9013, e.to_string()))?;
    match a.file_type.as_str() {
        "1 Vendor Configuration File" => {}
        "2 Vendor Log File" if s.upload_log_file.is_none() => {
            return Err(fault(9001, "2 Vendor Log File not available: no [agent] upload_log_file configured"));
        }
        "2 Vendor Log File" => {}
        t => return Err(fault(9003, format!("unsupported FileType {t:?} for Upload"))),
    }
    if queue_full {
        return Err(fault(9001, format!("{} transfers are already queued (A.4.1.1 limit)", queue::MAX_TRANSFERS)));
    }
    Ok(())
}

/// The TransferComplete FaultString for an installer failure (all 9010,
/// download failure): says why, in words an operator can act on.
pub fn install_fault(e: &InstallError) -> String {
    let s = match e {
        InstallError::Untrusted(m) => format!("package signature not trusted: {m}"),
        InstallError::Rejected { index, reason } => format!("package refused (command #{index}): {reason}"),
        InstallError::Package(pkgfmt::Error::HashMismatch { index, path, .. }) => {
            format!("payload hash mismatch in file {path} (command #{index}); nothing was installed")
        }
        InstallError::Package(pkgfmt::Error::Io(io)) => format!("download failed: {io}"),
        InstallError::Package(pkgfmt::Error::PayloadTruncated { expected, actual }) => {
            format!("download failed: package payload truncated ({actual} of {expected} bytes)")
        }
        InstallError::Package(p) => format!("malformed package: {p}"),
        InstallError::Timeout(t) => format!("download aborted: {t}"),
        InstallError::Io(e @ install::IoError::ReadPayload(_)) => format!("download failed: {}", chain(e)),
        other => format!("install failed: {}", chain(other)),
    };
    truncate(s)
}

/// Unix time in milliseconds (queue due times).
fn unix_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// What [`Transfers::poll`] did that the runner must follow up on.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PollOutcome {
    /// The parameter tree changed (e.g. SoftwareVersion): persist it.
    pub changed: bool,
    /// A.4.1.6: the persisted tree and state were wiped; re-initialise.
    pub factory_reset: bool,
}

/// How one transfer ended (A.3.3.2 FaultStruct) and what follows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    code: u32,
    message: String,
    reboot: bool,
    version: Option<String>,
}

impl Outcome {
    fn ok(message: String) -> Outcome {
        Outcome { code: 0, message, reboot: false, version: None }
    }
    fn fail(code: u32, message: String) -> Outcome {
        Outcome { code, message: truncate(message), reboot: false, version: None }
    }
}

/// The transfer extension and its persisted queue.
pub struct Transfers {
    settings: Settings,
    queue: Queue,
    progress: Progress,
    state_path: PathBuf,
    /// Sessions that carried unacknowledged TransferCompletes (A.5.3 back-off).
    tc_attempts: u32,
    tc_retry_at: Option<Instant>,
    worker: Option<Worker>,
}

impl Transfers {
    /// Load the queue from `state_dir/transfers.json`. `state_path` is the
    /// agent's persisted [`AgentState`]: events are saved there before a
    /// reboot command runs.
    pub fn new(cfg: &AgentConfig, progress: Progress, state_path: PathBuf) -> Result<Transfers, TransferError> {
        let settings = Settings::from_config(cfg)?;
        let path = settings.state_dir.join("transfers.json");
        let queue = Queue::load(&path).map_err(|source| TransferError::Queue { path: path.clone(), source })?;
        Ok(Transfers { settings, queue, progress, state_path, tc_attempts: 0, tc_retry_at: None, worker: None })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    fn save_queue(&self) -> Result<(), TransferError> {
        self.queue.save().map_err(|source| TransferError::Queue { path: self.queue.path().to_path_buf(), source })
    }

    fn save_state(&self, state: &AgentState) -> Result<(), TransferError> {
        state.save(&self.state_path).map_err(|source| TransferError::State { path: self.state_path.clone(), source })
    }

    /// At agent start: finish what a crash or power loss interrupted, queue
    /// the events of unreported transfers, restore an installed version.
    pub fn on_start(&mut self, state: &mut AgentState, store: &mut Store) -> Result<(), TransferError> {
        self.queue.data.actions.on_start(state);
        // An install cut short by a crash: back to the complete old (or new)
        // tree. What the installer's state directory held tells how far it got.
        let mut recovered = None;
        let mut staging = false;
        if let Some(root) = &self.settings.install_root {
            let st = self.settings.install_state_dir();
            if st.exists() {
                staging = st.join("txn").exists() && !st.join("journal.json").exists() && !st.join("committed").exists();
                // Also removes staging leftovers of a download cut short.
                let r = install::recover(root, Some(&st));
                if !matches!(r, Ok(install::Recovery::Clean)) {
                    warn!(?r, "interrupted install recovered");
                }
                recovered = Some(r);
            }
        }
        let why = "the agent stopped (crash or power loss) during the transfer";
        let mut install_why = String::new();
        match &recovered {
            Some(Ok(install::Recovery::Completed)) => install_why.push_str("; the install had committed and was completed"),
            Some(Ok(install::Recovery::RolledBack)) => install_why.push_str("; the partly applied install was rolled back"),
            Some(Ok(_)) if staging => install_why.push_str("; nothing was installed"),
            // No installer state at all: it stopped before the install
            // began, or after it had finished and cleaned up.
            Some(Ok(_)) | None => install_why.push_str("; the install root is consistent (unchanged, unless the install had just finished)"),
            Some(Err(e)) => install_why.push_str(&format!("; recovering the install root failed: {}", chain(e))),
        }
        let ids = self.queue.interrupted(&now_rfc3339(), |j| match classify(&j.file_type) {
            Some(DownloadKind::Package) if j.direction == Direction::Download => format!("{why}{install_why}"),
            _ => why.to_string(),
        });
        if matches!(recovered, Some(Ok(install::Recovery::Completed))) {
            // The package's changes had committed: the download succeeded.
            let package = |j: &Job| j.direction == Direction::Download && classify(&j.file_type) == Some(DownloadKind::Package);
            for j in self.queue.data.jobs.iter_mut().filter(|j| ids.contains(&j.id) && package(j)) {
                if let Status::Completed { code, .. } = &mut j.status {
                    *code = 0;
                }
            }
        }
        if !ids.is_empty() {
            warn!(?ids, "transfers interrupted by a restart are reported as failed");
        }
        self.save_queue()?;
        self.queue_transfer_events(state);
        self.apply_installed_version(store);
        Ok(())
    }

    /// The version a package installed wins over the config's
    /// `software_version` until the config is edited.
    pub fn apply_installed_version(&self, store: &mut Store) {
        if let Some(v) = &self.queue.data.installed_version {
            if v.config_version == self.settings.config_software_version && store.values.contains_key(SOFTWARE_VERSION) {
                store.set(SOFTWARE_VERSION, &v.version);
            }
        }
    }

    /// Table 35: "7 TRANSFER COMPLETE" and "M Download"/"M Upload" (with
    /// the CommandKey) for every completed, unacknowledged transfer.
    fn queue_transfer_events(&self, state: &mut AgentState) {
        let mut any = false;
        for j in self.queue.unreported() {
            state.add_event(j.direction.event(), &j.command_key);
            any = true;
        }
        if any {
            state.add_event("7 TRANSFER COMPLETE", "");
        }
    }

    /// The CPE requests for the next session: every unacknowledged
    /// TransferComplete (A.3.3.2: "in any subsequent session").
    pub fn requests(&mut self) -> Vec<Body> {
        let r = self.queue.transfer_complete_requests();
        if !r.is_empty() {
            // If they are still unacknowledged after this session, the
            // next attempt waits (A.5.3 exponential back-off).
            self.tc_attempts += 1;
            let wait = foundation::backoff::backoff(self.settings.retry_base, self.settings.retry_max, self.tc_attempts, 0.0);
            self.tc_retry_at = Some(Instant::now() + wait);
        }
        r
    }

    /// Whether anything is pending (`--once` keeps running until not).
    pub fn busy(&self) -> bool {
        self.queue.busy() || self.worker.is_some()
    }

    /// How long the main loop may sleep before [`Transfers::poll`] has work.
    pub fn next_wakeup(&self) -> Option<Duration> {
        let mut w = self.queue.next_wakeup().map(|due| Duration::from_millis(due.saturating_sub(unix_ms())));
        if self.queue.data.actions.reboot.is_some() || self.queue.data.actions.factory_reset {
            w = Some(Duration::ZERO);
        }
        if self.worker.is_some() {
            // Look for the worker's result soon.
            w = Some(w.map_or(WORKER_POLL, |w| w.min(WORKER_POLL)));
        }
        if self.queue.unreported().next().is_some() {
            let t = self.tc_retry_at.map(|t| t.saturating_duration_since(Instant::now())).unwrap_or_default();
            w = Some(w.map_or(t, |w| w.min(t)));
        }
        w
    }

    /// Between sessions: fire due scheduled Informs; record a transfer the
    /// worker has finished; once no transfer runs, perform an accepted
    /// FactoryReset or Reboot, else start the next due transfer; re-queue
    /// the events of TransferCompletes the ACS has not acknowledged.
    pub fn poll(&mut self, store: &mut Store, state: &mut AgentState) -> Result<PollOutcome, TransferError> {
        let mut out = PollOutcome::default();
        let now = unix_ms();

        // A.4.1.2: "3 SCHEDULED" with "M ScheduleInform" and its CommandKey.
        let due = self.queue.data.actions.take_due_informs(now);
        if !due.is_empty() {
            device_actions::queue_scheduled_inform_events(state, &due);
            // Events first: a crash in between repeats them, never loses them.
            self.save_state(state)?;
            self.save_queue()?;
        }

        // A transfer finished on its worker thread.
        let mut rebooted = false;
        if let Some((id, outcome)) = self.worker_result() {
            let (changed, r) = self.finish_job(id, outcome, store, state)?;
            out.changed |= changed;
            rebooted = r;
        }

        // Reboot and FactoryReset wait for a running transfer to end.
        if self.worker.is_none() {
            // A.4.1.6.
            if self.queue.data.actions.factory_reset {
                self.factory_reset()?;
                out.factory_reset = true;
                return Ok(out);
            }
            // A.3.2.9: the response went out in a session that has ended.
            if let Some(key) = self.queue.data.actions.reboot.clone() {
                state.add_event("M Reboot", &key);
                if !rebooted {
                    self.reboot(state, "Reboot method")?;
                    rebooted = true;
                }
                self.save_state(state)?;
                self.queue.data.actions.reboot = None;
                self.save_queue()?;
            }
            // The next due transfer (not right after a reboot: that is the
            // device going down; the queue survives it).
            if !rebooted {
                if let Some(id) = self.queue.next_due(unix_ms()) {
                    self.start_job(id, store)?;
                }
            }
        }

        let retry_due = self.tc_retry_at.is_none_or(|t| Instant::now() >= t);
        if retry_due && self.queue.unreported().next().is_some() && !state.has_event("7 TRANSFER COMPLETE") {
            self.queue_transfer_events(state);
        }
        Ok(out)
    }

    /// Start the next due transfer on a worker thread (one at a time;
    /// sessions go on meanwhile: GetQueuedTransfers shows it as state 2).
    fn start_job(&mut self, id: u64, store: &Store) -> Result<(), TransferError> {
        let Some(job) = self.queue.job(id).cloned() else { return Ok(()) };
        let start_time = now_rfc3339();
        // Persisted first: a crash from here on is reported (see on_start).
        self.queue.set_status(id, Status::InProgress { start_time });
        self.save_queue()?;
        info!(command_key = %job.command_key, url = %job.url, file_type = %job.file_type, direction = ?job.direction, "transfer start");
        self.progress.update(|s| {
            s.command_key = job.command_key.clone();
            s.url = job.url.clone();
            s.file_type = job.file_type.clone();
            s.bytes = 0;
            s.total = u64::from(job.file_size);
            s.phase = Phase::Downloading;
        });
        // What the worker needs from the tree, taken now.
        let current_version = store.get(SOFTWARE_VERSION).unwrap_or_default();
        let dump = (job.direction == Direction::Upload && job.file_type == "1 Vendor Configuration File" && self.settings.upload_config_file.is_none())
            .then(|| config_dump(store));
        let exec = Exec { settings: self.settings.clone(), progress: self.progress.clone() };
        let (tx, rx) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new().name(format!("transfer-{id}")).spawn(move || {
            let outcome = match job.direction {
                Direction::Download => exec.download(&job, &current_version),
                Direction::Upload => exec.upload(&job, dump.as_deref()),
            };
            let _ = tx.send(outcome);
        });
        if let Err(e) = spawned {
            // Reported like any failure (Table 38 allows 9002), never left "in progress".
            let (tx, rx2) = std::sync::mpsc::channel();
            let _ = tx.send(Outcome::fail(9002, format!("internal error: cannot start the transfer: {e}")));
            self.worker = Some(Worker { id, rx: rx2 });
            return Ok(());
        }
        self.worker = Some(Worker { id, rx });
        Ok(())
    }

    /// The worker's result, if it has finished.
    fn worker_result(&mut self) -> Option<(u64, Outcome)> {
        let w = self.worker.as_ref()?;
        let outcome = match w.rx.try_recv() {
            Ok(o) => o,
            Err(std::sync::mpsc::TryRecvError::Empty) => return None,
            // The worker panicked: A.3.3.2 Table 38 allows 9002.
            Err(std::sync::mpsc::TryRecvError::Disconnected) => Outcome::fail(9002, "internal error: the transfer worker stopped".into()),
        };
        let id = w.id;
        self.worker = None;
        Some((id, outcome))
    }

    /// Record a finished transfer: persisted as completed (state 3), its
    /// events queued; SoftwareVersion updated; reboot if the package asks.
    /// Returns (tree changed, rebooted).
    fn finish_job(&mut self, id: u64, outcome: Outcome, store: &mut Store, state: &mut AgentState) -> Result<(bool, bool), TransferError> {
        let Some(job) = self.queue.job(id).cloned() else { return Ok((false, false)) };
        let start_time = match &job.status {
            Status::InProgress { start_time } => start_time.clone(),
            _ => now_rfc3339(),
        };
        let complete_time = now_rfc3339();
        let mut changed = false;
        if let Some(v) = &outcome.version {
            if store.values.contains_key(SOFTWARE_VERSION) {
                store.set(SOFTWARE_VERSION, v);
                changed = true;
            }
            self.queue.data.installed_version = Some(InstalledVersion { config_version: self.settings.config_software_version.clone(), version: v.clone() });
        }
        if outcome.code == 0 {
            info!(command_key = %job.command_key, "{}", outcome.message);
        } else {
            warn!(command_key = %job.command_key, code = outcome.code, "transfer failed: {}", outcome.message);
        }
        self.progress.update(|s| {
            s.phase = if outcome.code == 0 { Phase::Done } else { Phase::Failed { code: outcome.code, message: outcome.message.clone() } };
        });
        self.queue.set_status(id, Status::Completed { code: outcome.code, message: outcome.message.clone(), start_time, complete_time });
        self.save_queue()?;
        self.tc_attempts = 0;
        self.tc_retry_at = None;
        self.queue_transfer_events(state);
        self.save_state(state)?;
        if outcome.reboot {
            // E.4.8 / installer: the package needs a reboot; A.3.2.9 note:
            // the CPE reboots on its own, between sessions.
            self.reboot(state, "package requires a reboot")?;
        }
        Ok((changed, outcome.reboot))
    }

    /// Reboot with `[agent] reboot_command` (see [`device_actions::reboot`]).
    fn reboot(&self, state: &mut AgentState, why: &str) -> Result<(), TransferError> {
        device_actions::reboot(self.settings.reboot_command.as_deref(), state, why, |s| self.save_state(s))
    }

    /// A.4.1.6: run the hook, wipe the persisted tree, state and queue. The
    /// runner then re-initialises (0 BOOTSTRAP).
    fn factory_reset(&mut self) -> Result<(), TransferError> {
        device_actions::factory_reset(self.settings.factory_reset_command.as_deref(), &self.settings.state_dir, &[&self.settings.spool_dir()]);
        // The installed software stays installed: its version survives.
        let installed = self.queue.data.installed_version.take();
        self.queue.data = queue::QueueData { installed_version: installed, ..Default::default() };
        self.tc_attempts = 0;
        self.tc_retry_at = None;
        self.save_queue()
    }

    fn accept(&mut self, job: Job) -> Result<(), Fault> {
        let id = self.queue.push(job);
        if let Err(e) = self.save_queue() {
            // Never promise a TransferComplete we could lose.
            self.queue.data.jobs.retain(|j| j.id != id);
            return Err(fault(9002, format!("cannot persist the transfer: {e}")));
        }
        Ok(())
    }
}

/// A running transfer's view of the settings (moved to its worker thread).
struct Exec {
    settings: Settings,
    progress: Progress,
}

/// The worker thread running the current transfer.
struct Worker {
    id: u64,
    rx: std::sync::mpsc::Receiver<Outcome>,
}

impl Exec {
    fn client(&self, job: &Job) -> Client {
        Client { username: job.username.clone(), password: job.password.clone(), tls: self.settings.tls.clone(), stall: self.settings.stall }
    }

    fn download(&self, job: &Job, current_version: &str) -> Outcome {
        let kind = classify(&job.file_type).unwrap_or(DownloadKind::VendorFile);
        let body = match self.client(job).get(&job.url, self.progress.clone()) {
            Ok(b) => b,
            Err(e) => return Outcome::fail(e.fault_code(), download_fetch_message(&e)),
        };
        match kind {
            DownloadKind::Package => self.install_package(body, current_version),
            DownloadKind::VendorFile => self.vendor_file(job, body),
        }
    }

    /// E.5 / E.4: stream the package into the installer engine.
    fn install_package(&self, mut body: http::BodyReader, current_version: &str) -> Outcome {
        let Some(root) = self.settings.install_root.clone() else {
            return Outcome::fail(9010, "no [agent] install_root configured".into());
        };
        let opts = InstallOptions {
            root,
            state_dir: Some(self.settings.install_state_dir()),
            trust: self.settings.trust.clone(),
            allow_unsigned: false,
            verify: Default::default(),
            device: install::DeviceConfig { current_version: current_version.parse().ok(), ..Default::default() },
            dry_run: false,
            observer: Some(install_observer(self.progress.clone())),
        };
        match install::install(&mut body, &opts, &mut IgnoreVendor, &SystemClock) {
            Ok(report) => {
                for e in &report.vendor_errors {
                    warn!("package vendor command: {e}");
                }
                let mut o = Outcome::ok(match &report.version {
                    Some(v) => format!("installed version {v} ({} files)", report.files_staged),
                    None => format!("installed ({} files)", report.files_staged),
                });
                o.reboot = report.reboot_required;
                o.version = report.version;
                o
            }
            Err(e) => Outcome::fail(9010, install_fault(&e)),
        }
    }

    /// FileType 3 / vendor types: spool, then hand to the vendor handler.
    fn vendor_file(&self, job: &Job, mut body: http::BodyReader) -> Outcome {
        let dir = self.settings.spool_dir();
        let path = dir.join(format!("{}.download", job.id));
        let r = (|| -> Result<(), String> {
            std::fs::create_dir_all(&dir).map_err(|e| format!("spool directory {}: {e}", dir.display()))?;
            let mut f = std::fs::File::create(&path).map_err(|e| format!("spool file {}: {e}", path.display()))?;
            // A.3.2.8: FileSize, when given, is the file's size; never more
            // than MAX_VENDOR_FILE_BYTES either way.
            let limit = vendor_file_limit(job.file_size);
            let n = copy_interruptible(&mut std::io::Read::take(&mut body, limit + 1), &mut f).map_err(|e| format!("download failed: {e}"))?;
            if n > limit {
                return Err(if job.file_size > 0 && limit == u64::from(job.file_size) {
                    format!("the server sent more than the {limit} bytes announced in FileSize")
                } else {
                    format!("the file is larger than the {limit}-byte limit for vendor configuration files")
                });
            }
            f.sync_all().map_err(|e| format!("spool file: {e}"))?;
            Ok(())
        })();
        if let Err(m) = r {
            let _ = std::fs::remove_file(&path);
            return Outcome::fail(9010, m);
        }
        self.progress.update(|s| s.phase = Phase::Installing);
        let Some(cmd) = self.settings.vendor_config_command.clone() else {
            let _ = std::fs::remove_file(&path);
            return Outcome::fail(9010, "no [agent] vendor_config_command configured".into());
        };
        // A.3.2.8: TargetFileName, else the last segment of the URL.
        let target = if job.target_file_name.is_empty() {
            job.url.split(['?', '#']).next().unwrap_or("").rsplit('/').next().unwrap_or("").to_string()
        } else {
            job.target_file_name.clone()
        };
        let envs = [("CPEKIT_FILE_TYPE", job.file_type.clone()), ("CPEKIT_TARGET_FILE_NAME", target), ("CPEKIT_COMMAND_KEY", job.command_key.clone())];
        let r = run_command(&cmd, &[path.as_os_str()], &envs);
        let _ = std::fs::remove_file(&path);
        match r {
            Ok(()) => Outcome::ok(format!("{} applied", job.file_type)),
            Err(e) => Outcome::fail(9010, format!("vendor configuration handler failed: {e}")),
        }
    }

    /// A.4.1.5: send the file (PUT, or POST with `upload_method = "POST"`).
    fn upload(&self, job: &Job, config_dump: Option<&[u8]>) -> Outcome {
        let (bytes, content_type) = match upload_body(job, &self.settings, config_dump) {
            Ok(b) => b,
            Err(m) => return Outcome::fail(9011, m),
        };
        self.progress.update(|s| s.total = bytes.len() as u64);
        match self.client(job).send(self.settings.upload_method.as_str(), &job.url, content_type, &bytes) {
            Ok(status) => {
                self.progress.update(|s| s.bytes = bytes.len() as u64);
                Outcome::ok(format!("uploaded {} bytes (HTTP {status})", bytes.len()))
            }
            Err(e) => {
                let code = match e.fault_code() {
                    9010 => 9011,
                    c => c,
                };
                Outcome::fail(code, format!("upload failed: {e}"))
            }
        }
    }
}

fn download_fetch_message(e: &FetchError) -> String {
    format!("download failed: {e}")
}

/// A.4.1.5 Table 49 FileType → the bytes to upload and their type.
fn upload_body(job: &Job, s: &Settings, config_dump: Option<&[u8]>) -> Result<(Vec<u8>, &'static str), String> {
    let read = |p: &Path| -> Result<Vec<u8>, String> {
        let len = std::fs::metadata(p).map_err(|e| format!("{}: {e}", p.display()))?.len();
        if len > MAX_UPLOAD_BYTES {
            return Err(format!("{} is {len} bytes, more than the {MAX_UPLOAD_BYTES}-byte upload limit", p.display()));
        }
        std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))
    };
    match job.file_type.as_str() {
        "1 Vendor Configuration File" => match &s.upload_config_file {
            Some(p) => Ok((read(p)?, "application/octet-stream")),
            None => Ok((config_dump.map(<[u8]>::to_vec).unwrap_or_default(), "application/json")),
        },
        "2 Vendor Log File" => match &s.upload_log_file {
            Some(p) => Ok((read(p)?, "text/plain")),
            None => Err("no [agent] upload_log_file configured".into()),
        },
        t => Err(format!("unsupported FileType {t:?}")),
    }
}

/// "1 Vendor Configuration File" without a configured file: the parameter
/// tree as JSON (name → value, as GetParameterValues reports it: through
/// the value hooks, passwords empty).
pub fn config_dump(store: &Store) -> Vec<u8> {
    let map: std::collections::BTreeMap<&str, String> = store
        .values
        .keys()
        .map(|k| (k.as_str(), store.get(k).unwrap_or_default()))
        .map(|(k, v)| (k, if store::is_password(k) { String::new() } else { v }))
        .collect();
    serde_json::to_vec_pretty(&map).unwrap_or_default()
}

/// Copy a [`http::BodyReader`] (which ticks with `Interrupted`) to `w`.
/// Bytes a vendor file may have: FileSize when announced (A.3.2.8), capped.
fn vendor_file_limit(file_size: u32) -> u64 {
    if file_size > 0 {
        u64::from(file_size).min(MAX_VENDOR_FILE_BYTES)
    } else {
        MAX_VENDOR_FILE_BYTES
    }
}

fn copy_interruptible<R: std::io::Read, W: std::io::Write>(r: &mut R, w: &mut W) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(k) => {
                w.write_all(&buf[..k])?;
                n += k as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The installer's progress on the transfer's [`Progress`] (the LAN
/// DownloadProgressURL page): Verifying while it checks the package prefix
/// (E.5: signatures and preconditions before any payload), Downloading
/// while the payload streams, Installing once it commits. The package's own
/// length fills in the total when neither FileSize nor Content-Length did.
fn install_observer(progress: Progress) -> Arc<dyn install::progress::Observer> {
    use install::progress::Phase as I;
    Arc::new(move |p: install::progress::Progress| {
        progress.update(|s| {
            s.phase = match p.phase {
                I::VerifyingPrefix => Phase::Verifying,
                I::StreamingPayload => Phase::Downloading,
                I::Committing => Phase::Installing,
            };
            if s.total == 0 {
                s.total = p.total;
            }
        })
    })
}

impl Extension for Transfers {
    fn methods(&self) -> &'static [&'static str] {
        METHODS
    }

    fn request(&mut self, _schema: &Schema, _store: &mut Store, req: &Body, _fx: &mut Effects) -> Option<Body> {
        let resp = match req {
            Body::Download(a) => {
                let free = install::precondition::free_space(&self.settings.state_dir).ok();
                match check_download(a, &self.settings, free, self.queue.is_full()) {
                    Err(f) => Body::Fault(f),
                    Ok(_) => {
                        // A.3.2.8: DelaySeconds 0 runs right after this
                        // session; > 0 never in it (the queue runs between
                        // sessions only).
                        let job = Job::download(a, unix_ms());
                        match self.accept(job) {
                            // Table 28 Status 1: TransferComplete follows.
                            Ok(()) => Body::DownloadResponse { status: 1, start_time: UNKNOWN_TIME.into(), complete_time: UNKNOWN_TIME.into() },
                            Err(f) => Body::Fault(f),
                        }
                    }
                }
            }
            Body::Upload(a) => match check_upload(a, &self.settings, self.queue.is_full()) {
                Err(f) => Body::Fault(f),
                Ok(()) => {
                    let job = Job::upload(a, unix_ms());
                    match self.accept(job) {
                        Ok(()) => Body::UploadResponse { status: 1, start_time: UNKNOWN_TIME.into(), complete_time: UNKNOWN_TIME.into() },
                        Err(f) => Body::Fault(f),
                    }
                }
            },
            Body::GetQueuedTransfers => Body::GetQueuedTransfersResponse { transfers: self.queue.queued_transfers() },
            // Reboot, FactoryReset, ScheduleInform: persisted before the answer.
            other => {
                let before = self.queue.data.actions.clone();
                match self.queue.data.actions.accept(other, unix_ms())? {
                    Err(f) => Body::Fault(f),
                    Ok(accepted) => match self.save_queue() {
                        Ok(()) => accepted.response,
                        Err(e) => {
                            self.queue.data.actions = before;
                            Body::Fault(fault(9002, format!("cannot persist {}: {e}", accepted.what)))
                        }
                    },
                }
            }
        };
        Some(resp)
    }

    fn response(&mut self, request: &Body, resp: &Body) {
        if !matches!(request, Body::TransferComplete { .. }) {
            return;
        }
        match resp {
            Body::TransferCompleteResponse => {
                if self.queue.acknowledge(request) {
                    if let Err(e) = self.save_queue() {
                        warn!("persisting the acknowledged TransferComplete: {e}");
                    }
                }
                if self.queue.unreported().next().is_none() {
                    self.tc_attempts = 0;
                    self.tc_retry_at = None;
                }
            }
            // A.5.3: retried in a later session, with back-off.
            other => warn!("ACS answered TransferComplete with {other:?}; retrying later"),
        }
    }
}

#[cfg(test)]
mod tests;
