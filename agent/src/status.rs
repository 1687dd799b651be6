//! `cpekit agent status`: what the agent's state directory says — identity,
//! versions, the last session and its outcome, the next periodic Inform,
//! queued events, pending transfers, enabled options. Read from the files
//! the agent persists (`parameters.json`, `agent.json`, `transfers.json`),
//! so it works whether the agent runs or not: they are replaced atomically.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::AgentConfig;
use crate::datamodel::store::Store;
use crate::state::{AgentState, LastSession};
use crate::transfer::queue::{Queue, Status as JobStatus};

const DI: &str = "InternetGatewayDevice.DeviceInfo.";
const MS: &str = "InternetGatewayDevice.ManagementServer.";

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("{path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
}

/// The agent's status (serialized as is for `--json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub state_dir: PathBuf,
    /// The agent has run here (its tree exists).
    pub started: bool,
    pub manufacturer: String,
    pub oui: String,
    pub product_class: String,
    pub serial_number: String,
    pub software_version: String,
    pub hardware_version: String,
    pub acs_url: String,
    pub connection_request_url: String,
    /// A session carrying "0 BOOTSTRAP" was acknowledged.
    pub bootstrapped: bool,
    pub last_session: Option<LastSession>,
    pub periodic_inform_enabled: bool,
    pub periodic_inform_interval: u32,
    pub next_periodic_inform: Option<String>,
    /// Consecutive failed sessions (the next Inform's RetryCount).
    pub retry_count: u32,
    pub queued_events: Vec<QueuedEvent>,
    pub pending_transfers: Vec<PendingTransfer>,
    /// DeviceInfo.EnabledOptions (Appendix C).
    pub enabled_options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueuedEvent {
    pub code: String,
    pub command_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingTransfer {
    /// "download" or "upload".
    pub direction: String,
    pub command_key: String,
    pub file_type: String,
    /// The URL without any user information.
    pub url: String,
    /// "queued", "in_progress", or "completed" (TransferComplete not yet
    /// acknowledged), A.4.1.1 Table 41.
    pub state: String,
    /// The fault code of a completed transfer (0 = success).
    pub fault_code: Option<u32>,
}

fn read<T>(path: PathBuf, load: impl FnOnce(&std::path::Path) -> std::io::Result<T>) -> Result<T, StatusError> {
    load(&path).map_err(|source| StatusError::Read { path, source })
}

/// The status of the agent configured by `cfg`.
pub fn status(cfg: &AgentConfig) -> Result<Status, StatusError> {
    let dir = &cfg.agent.state_dir;
    let store = read(dir.join("parameters.json"), Store::load)?;
    let state = read(dir.join("agent.json"), AgentState::load)?.unwrap_or_default();
    let queue = read(dir.join("transfers.json"), Queue::load)?;
    let started = store.is_some();
    let store = store.unwrap_or_default();
    let v = |p: String| store.values.get(&p).cloned().unwrap_or_default();
    let list = |s: String| s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_string).collect::<Vec<_>>();
    let d = &cfg.device;
    Ok(Status {
        state_dir: dir.clone(),
        started,
        manufacturer: d.manufacturer.clone(),
        oui: d.oui.clone(),
        product_class: d.product_class.clone(),
        serial_number: d.serial_number.clone(),
        software_version: v(format!("{DI}SoftwareVersion")),
        hardware_version: v(format!("{DI}HardwareVersion")),
        acs_url: v(format!("{MS}URL")),
        connection_request_url: v(format!("{MS}ConnectionRequestURL")),
        bootstrapped: state.bootstrapped,
        last_session: state.last_session.clone(),
        periodic_inform_enabled: matches!(v(format!("{MS}PeriodicInformEnable")).as_str(), "true" | "1"),
        periodic_inform_interval: v(format!("{MS}PeriodicInformInterval")).parse().unwrap_or(0),
        next_periodic_inform: state.next_periodic_inform.clone(),
        retry_count: state.retry_count,
        queued_events: state.pending_events.iter().map(|e| QueuedEvent { code: e.code.clone(), command_key: e.command_key.clone() }).collect(),
        pending_transfers: queue
            .data
            .jobs
            .iter()
            .map(|j| {
                let (state, fault_code) = match &j.status {
                    JobStatus::Queued => ("queued", None),
                    JobStatus::InProgress { .. } => ("in_progress", None),
                    JobStatus::Completed { code, .. } => ("completed", Some(*code)),
                };
                PendingTransfer {
                    direction: format!("{:?}", j.direction).to_lowercase(),
                    command_key: j.command_key.clone(),
                    file_type: j.file_type.clone(),
                    url: without_userinfo(&j.url),
                    state: state.into(),
                    fault_code,
                }
            })
            .collect(),
        enabled_options: list(v(format!("{DI}EnabledOptions"))),
    })
}

/// `scheme://user:pass@host/...` → `scheme://host/...`.
fn without_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find('/').unwrap_or(rest.len());
            match rest[..end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

impl Status {
    /// Lines for a terminal.
    pub fn text(&self) -> String {
        let none = || "none".to_string();
        let mut out = Vec::new();
        let mut line = |k: &str, v: String| out.push(format!("{k:<16}{v}"));
        line("device", format!("{} {}-{}-{} (state in {})", self.manufacturer, self.oui, self.product_class, self.serial_number, self.state_dir.display()));
        line("software", format!("{} (hardware {})", self.software_version, self.hardware_version));
        line("ACS", if self.acs_url.is_empty() { none() } else { self.acs_url.clone() });
        if !self.connection_request_url.is_empty() {
            line("conn. request", self.connection_request_url.clone());
        }
        line(
            "last session",
            match &self.last_session {
                None if !self.started => "never (the agent has not run with this state directory)".into(),
                None => none(),
                Some(s) => {
                    let outcome = match (&s.error, s.ok) {
                        (_, true) => format!("ok, {} ACS requests", s.acs_requests),
                        (Some(e), false) => format!("failed: {e}"),
                        (None, false) => "failed".into(),
                    };
                    format!("{} .. {}: {outcome}; events {}", s.started, s.ended, if s.events.is_empty() { none() } else { s.events.join(", ") })
                }
            },
        );
        line(
            "periodic inform",
            match (&self.next_periodic_inform, self.periodic_inform_enabled) {
                (Some(t), true) => format!("every {} s, next {t}", self.periodic_inform_interval),
                _ => "disabled".into(),
            },
        );
        if self.retry_count > 0 {
            line("retry count", self.retry_count.to_string());
        }
        line(
            "queued events",
            if self.queued_events.is_empty() {
                none()
            } else {
                self.queued_events
                    .iter()
                    .map(|e| if e.command_key.is_empty() { e.code.clone() } else { format!("{} ({})", e.code, e.command_key) })
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        );
        if self.pending_transfers.is_empty() {
            line("transfers", none());
        }
        for t in &self.pending_transfers {
            let fault = t.fault_code.map(|c| format!(", fault {c}")).unwrap_or_default();
            line("transfer", format!("{} {:?} {} key {:?}: {}{fault}", t.direction, t.file_type, t.url, t.command_key, t.state));
        }
        line("options", if self.enabled_options.is_empty() { none() } else { self.enabled_options.join(", ") });
        out.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(without_userinfo("http://u:p@files.example/a@b"), "http://files.example/a@b");
        assert_eq!(without_userinfo("https://files.example/x"), "https://files.example/x");
        assert_eq!(without_userinfo("nonsense"), "nonsense");
    }
}
