//! Simulated CPEs the ACS asked for more than parameters: the agent's own
//! extensions — [`Transfers`] (Download, Upload, Reboot, FactoryReset,
//! ScheduleInform, GetQueuedTransfers, TransferComplete) and [`Options`]
//! (SetVouchers, GetOptions) — on the CPE's own tree, with the state
//! directory of [`super::identity_config`] (`<state_dir>/sim/<serial>/`
//! of the config). A CPE gets one on the first such request and keeps it:
//! its tree is then its own ([`super::model::Overlay::Tree`]), and the
//! event loop polls its transfers between sessions as the agent's main
//! loop does. Downloads run on the transfer worker thread of the agent's
//! code; reboots run `[agent] reboot_command` if configured and queue
//! 1 BOOT + M Reboot as on a device.

use std::path::Path;

use crate::datamodel::store::Store;
use crate::options::Options;
use crate::progress::Progress;
use crate::state::AgentState;
use crate::transfer::{self, Transfers};

use super::model::Model;

/// Methods of [`Options`] (Table 9 footnote 5: both or neither).
const OPTION_METHODS: &[&str] = &["SetVouchers", "GetOptions"];

pub fn is_extension_method(m: &str) -> bool {
    transfer::METHODS.contains(&m) || OPTION_METHODS.contains(&m)
}

/// What a CPE with the extensions answers to GetRPCMethods (as the agent).
pub fn all_methods() -> Vec<String> {
    crate::rpc::CPE_METHODS.iter().chain(transfer::METHODS).chain(OPTION_METHODS).map(|s| s.to_string()).fold(Vec::new(), |mut v, m| {
        if !v.contains(&m) {
            v.push(m);
        }
        v
    })
}

pub struct Device {
    pub transfers: Transfers,
    pub options: Options,
    /// Events the extensions queue (moved into the CPE's own queue).
    pub state: AgentState,
}

impl Device {
    pub fn open(model: &Model, id: usize, tree: &mut Store) -> Result<Device, String> {
        let cfg = super::identity_config(&model.cfg, id).map_err(|e| e.to_string())?;
        let dir = cfg.agent.state_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut state = AgentState { bootstrapped: true, ..AgentState::default() };
        // Not agent.json: that name is the simulator's own (--state-dir).
        let mut transfers = Transfers::new(&cfg, Progress::new(), dir.join("device-state.json")).map_err(|e| e.to_string())?;
        transfers.on_start(&mut state, tree).map_err(|e| e.to_string())?;
        let d = &cfg.device;
        let mut options = Options::open(Path::new(&dir), &d.oui, &d.product_class, &d.serial_number, cfg.trust.vouchers.clone()).map_err(|e| e.to_string())?;
        options.refresh(tree, time::OffsetDateTime::now_utc()).map_err(|e| e.to_string())?;
        Ok(Device { transfers, options, state })
    }
}
