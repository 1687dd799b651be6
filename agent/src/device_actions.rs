//! The after-session device actions (TR-069 Appendix A): Reboot (A.3.2.9),
//! FactoryReset (A.4.1.6) and ScheduleInform (A.4.1.2). Each is accepted in
//! a session and carried out after the session ends:
//!
//! * Reboot (A.3.2.9): "The CPE MUST send the method response prior to
//!   rebooting." Then `[agent] reboot_command` runs; "1 BOOT" is queued and
//!   persisted first, and the CommandKey comes back with "M Reboot" (Table
//!   35) in the next Inform, whether the process survives the reboot or
//!   starts again. A package that needs a reboot (E.4.8) reboots the same
//!   way: A.3.2.9 note, the CPE "is responsible for initiating that reboot
//!   on its own after the termination of the session".
//! * FactoryReset (A.4.1.6): "resets the CPE to its factory default state":
//!   `[agent] factory_reset_command` runs, the persisted parameter tree,
//!   agent state and transfer queue are wiped, and the agent starts over
//!   (0 BOOTSTRAP). The installed software and its version stay.
//! * ScheduleInform (A.4.1.2): "a one-time Inform method call (separate from
//!   its periodic Inform method calls)": DelaySeconds later the events
//!   "3 SCHEDULED" and "M ScheduleInform" (with the CommandKey) are queued.
//!
//! What was accepted ([`DeviceActions`]) is persisted before the response
//! goes out, in `transfers.json` beside the transfer queue: a Reboot or
//! FactoryReset waits for a running transfer to end, and a FactoryReset
//! empties the queue, so [`Transfers`](crate::transfer::Transfers) carries
//! these actions out between sessions, in that order.

use std::path::Path;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::device_command::run_command;
use crate::soap::{Body, Fault};
use crate::state::AgentState;

/// The methods of the device actions (A.3.2.1 GetRPCMethods).
pub const METHODS: &[&str] = &["Reboot", "ScheduleInform", "FactoryReset"];

/// A one-time Inform requested by ScheduleInform (A.4.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledInform {
    /// Unix milliseconds.
    pub due_ms: u64,
    pub command_key: String,
}

/// The device actions accepted and not yet carried out (persisted).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceActions {
    #[serde(default)]
    pub scheduled_informs: Vec<ScheduledInform>,
    /// A.3.2.9: Reboot accepted (its CommandKey); done after the session.
    #[serde(default)]
    pub reboot: Option<String>,
    /// A.4.1.6: FactoryReset accepted; done after the session.
    #[serde(default)]
    pub factory_reset: bool,
}

/// An accepted request.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The response, to send once the acceptance is persisted.
    pub response: Body,
    /// What was accepted, for the 9002 fault when it cannot be persisted.
    pub what: &'static str,
}

impl DeviceActions {
    /// Accept `req` if it is one of [`METHODS`] (None: it is not). Sans-IO:
    /// the caller persists `self` before sending the response, and restores
    /// the previous value when it cannot.
    pub fn accept(&mut self, req: &Body, now_ms: u64) -> Option<Result<Accepted, Fault>> {
        Some(match req {
            Body::ScheduleInform { delay_seconds, command_key } => {
                // Table 42: "This argument must be greater than zero."
                if *delay_seconds == 0 {
                    Err(Fault::new(9003, "DelaySeconds must be greater than zero"))
                } else if command_key.chars().count() > 32 {
                    Err(Fault::new(9003, "CommandKey is longer than 32 characters"))
                } else {
                    self.scheduled_informs.push(ScheduledInform { due_ms: now_ms + 1000 * u64::from(*delay_seconds), command_key: command_key.clone() });
                    Ok(Accepted { response: Body::ScheduleInformResponse, what: "the scheduled Inform" })
                }
            }
            // A.3.2.9: respond first; the reboot follows the session.
            Body::Reboot { command_key } => {
                self.reboot = Some(command_key.clone());
                Ok(Accepted { response: Body::RebootResponse, what: "the reboot" })
            }
            Body::FactoryReset => {
                self.factory_reset = true;
                Ok(Accepted { response: Body::FactoryResetResponse, what: "the factory reset" })
            }
            _ => return None,
        })
    }

    /// At agent start: a Reboot accepted before the agent stopped means this
    /// start is that reboot: "M Reboot" with its CommandKey ("1 BOOT" is
    /// queued by the runner).
    pub fn on_start(&mut self, state: &mut AgentState) {
        if let Some(key) = self.reboot.take() {
            state.add_event("M Reboot", &key);
        }
    }

    /// Scheduled Informs due at `now` (removed).
    pub fn take_due_informs(&mut self, now: u64) -> Vec<ScheduledInform> {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.scheduled_informs).into_iter().partition(|s| s.due_ms <= now);
        self.scheduled_informs = later;
        due
    }

    /// When the next scheduled Inform is due (Unix milliseconds).
    pub fn next_inform_due(&self) -> Option<u64> {
        self.scheduled_informs.iter().map(|s| s.due_ms).min()
    }

    /// Anything accepted and not yet done.
    pub fn pending(&self) -> bool {
        !self.scheduled_informs.is_empty() || self.reboot.is_some() || self.factory_reset
    }
}

/// A.4.1.2: the events of scheduled Informs that have come due, "3 SCHEDULED"
/// and "M ScheduleInform" with the CommandKey (Table 35).
pub fn queue_scheduled_inform_events(state: &mut AgentState, due: &[ScheduledInform]) {
    for s in due {
        info!(command_key = %s.command_key, "scheduled Inform due");
        state.add_event("3 SCHEDULED", "");
        state.add_event("M ScheduleInform", &s.command_key);
    }
}

/// Reboot the device: run `command` (absent: log only). "1 BOOT" is queued
/// and persisted (`save`) first: the next Inform reports it whether the
/// process survives the reboot or starts again.
pub fn reboot<E>(command: Option<&[String]>, state: &mut AgentState, why: &str, save: impl FnOnce(&AgentState) -> Result<(), E>) -> Result<(), E> {
    state.add_event("1 BOOT", "");
    save(state)?;
    match command {
        Some(cmd) => {
            info!(?cmd, "rebooting: {why}");
            if let Err(e) = run_command(cmd, &[], &[]) {
                warn!("reboot command failed: {e}");
            }
        }
        None => info!("reboot requested ({why}) but no [agent] reboot_command is configured"),
    }
    Ok(())
}

/// A.4.1.6: run the hook, then remove the persisted parameter tree and
/// agent state from `state_dir`, and the directories in `wipe` (the caller
/// empties its own persisted queue).
pub fn factory_reset(hook: Option<&[String]>, state_dir: &Path, wipe: &[&Path]) {
    if let Some(cmd) = hook {
        info!(?cmd, "factory reset: running the hook");
        if let Err(e) = run_command(cmd, &[], &[]) {
            warn!("factory reset command failed: {e}");
        }
    } else {
        info!("factory reset");
    }
    for f in ["parameters.json", "agent.json"] {
        match std::fs::remove_file(state_dir.join(f)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => warn!("factory reset: removing {f}: {e}"),
        }
    }
    let _ = std::fs::remove_dir_all(state_dir.join("local"));
    for d in wipe {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_its_methods_and_checks_table_42() {
        let mut a = DeviceActions::default();
        let code = |r: Option<Result<Accepted, Fault>>| r.expect("ours").map(|_| 0).unwrap_or_else(|f| f.code);
        assert_eq!(code(a.accept(&Body::ScheduleInform { delay_seconds: 0, command_key: "s".into() }, 1000)), 9003, "Table 42: DelaySeconds > 0");
        assert_eq!(code(a.accept(&Body::ScheduleInform { delay_seconds: 5, command_key: "k".repeat(33) }, 1000)), 9003, "CommandKey string(32)");
        assert!(!a.pending(), "a refused request changes nothing");
        let ok = a.accept(&Body::ScheduleInform { delay_seconds: 5, command_key: "s".into() }, 1000).unwrap().unwrap();
        assert_eq!(ok.response, Body::ScheduleInformResponse);
        assert_eq!(a.scheduled_informs, vec![ScheduledInform { due_ms: 6000, command_key: "s".into() }]);
        assert_eq!(a.next_inform_due(), Some(6000));
        assert_eq!(a.accept(&Body::Reboot { command_key: "r".into() }, 0).unwrap().unwrap().response, Body::RebootResponse);
        assert_eq!(a.reboot.as_deref(), Some("r"));
        assert_eq!(a.accept(&Body::FactoryReset, 0).unwrap().unwrap().response, Body::FactoryResetResponse);
        assert!(a.factory_reset);
        assert!(a.accept(&Body::GetQueuedTransfers, 0).is_none(), "not a device action");
    }

    #[test]
    fn due_informs_are_taken_once() {
        let mut a = DeviceActions {
            scheduled_informs: vec![ScheduledInform { due_ms: 10, command_key: "x".into() }, ScheduledInform { due_ms: 20, command_key: "y".into() }],
            ..Default::default()
        };
        assert_eq!(a.take_due_informs(15).len(), 1);
        assert_eq!(a.take_due_informs(15).len(), 0);
        assert_eq!(a.scheduled_informs[0].command_key, "y");
    }
}
