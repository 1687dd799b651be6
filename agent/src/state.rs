//! What the agent keeps across restarts and power loss besides the
//! parameter tree: events not yet delivered (with their CommandKeys), the
//! bootstrap flag, the ACS URL last used, the retry counter and the
//! notification baseline. Written atomically (temp file, fsync, rename,
//! fsync directory) after every change that matters.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::datamodel::notify::Notifier;
use super::soap::Event;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AgentState {
    /// A session carrying "0 BOOTSTRAP" has completed (A.3.3.1 Table 35).
    pub bootstrapped: bool,
    /// `[acs] url` of the config the tree was seeded from: editing it in
    /// the config re-seeds ManagementServer.URL.
    pub config_acs_url: String,
    /// The ACS URL of the last successful session: a change means 0 BOOTSTRAP (3.2.1).
    pub acs_url: String,
    /// Events not yet acknowledged by an InformResponse, in order.
    pub pending_events: Vec<Event>,
    /// Consecutive failed session attempts (Inform RetryCount, A.3.3.1).
    pub retry_count: u32,
    /// Last reported values of notified parameters.
    #[serde(default)]
    pub notifier: Notifier,
}

impl AgentState {
    pub fn load(path: &Path) -> std::io::Result<Option<AgentState>> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        write_json_atomic(path, self)
    }

    /// Queue an event. Table 35: single-instance events ("0 BOOTSTRAP",
    /// "1 BOOT", "2 PERIODIC", "4 VALUE CHANGE", "6 CONNECTION REQUEST"...)
    /// appear at most once; "M <method>" events once per CommandKey.
    pub fn add_event(&mut self, code: &str, command_key: &str) {
        let multi = code.starts_with("M ");
        if self.pending_events.iter().any(|e| e.code == code && (!multi || e.command_key == command_key)) {
            return;
        }
        self.pending_events.push(Event { code: code.into(), command_key: command_key.into() });
    }

    pub fn has_event(&self, code: &str) -> bool {
        self.pending_events.iter().any(|e| e.code == code)
    }

    /// The Inform carrying `delivered` was acknowledged: drop those events
    /// (events queued meanwhile stay).
    pub fn delivered(&mut self, delivered: &[Event]) {
        self.pending_events.retain(|e| !delivered.contains(e));
        if delivered.iter().any(|e| e.code == "0 BOOTSTRAP") {
            self.bootstrapped = true;
        }
    }
}

/// Write `value` as JSON, atomically and durably
/// ([`foundation::durable::write_atomic`]).
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    foundation::durable::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_deduplicate_per_table35() {
        let mut s = AgentState::default();
        s.add_event("1 BOOT", "");
        s.add_event("1 BOOT", "");
        s.add_event("M Download", "a");
        s.add_event("M Download", "b");
        s.add_event("M Download", "a");
        assert_eq!(s.pending_events.len(), 3);
        let sent = s.pending_events.clone();
        s.add_event("6 CONNECTION REQUEST", "");
        s.delivered(&sent);
        assert_eq!(s.pending_events, vec![Event { code: "6 CONNECTION REQUEST".into(), command_key: String::new() }]);
        assert!(!s.bootstrapped);
        s.add_event("0 BOOTSTRAP", "");
        let sent = s.pending_events.clone();
        s.delivered(&sent);
        assert!(s.bootstrapped);
    }

    #[test]
    fn persists_atomically() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("agent.json");
        assert!(AgentState::load(&p).unwrap().is_none());
        let mut s = AgentState::default();
        s.add_event("M Reboot", "k1");
        s.retry_count = 3;
        s.save(&p).unwrap();
        let back = AgentState::load(&p).unwrap().unwrap();
        assert_eq!(back.pending_events, s.pending_events);
        assert_eq!(back.retry_count, 3);
        assert!(!p.with_extension("tmp").exists());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1, "no temporary file left");
    }
}
