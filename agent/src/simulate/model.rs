//! The shared, immutable device model and each simulated CPE's small
//! per-CPE part.
//!
//! One [`Model`] holds the InternetGatewayDevice tree every simulated CPE
//! starts from (seeded from the config like the agent's own tree) and the
//! Inform built from it. A CPE stores only what differs:
//!
//! * values derived from its identity, computed on demand and never
//!   stored: DeviceInfo.SerialNumber, ManagementServer.Username/Password
//!   (`{serial}` replaced) and ManagementServer.ConnectionRequestURL;
//! * an [`Overlay`] once the ACS changed something: the differing values,
//!   or the CPE's whole tree when objects or attributes changed.
//!
//! A session whose ACS sends requests materialises the CPE's tree (shared
//! tree + identity + overlay) in its [`SimHandler`], runs the agent's own
//! [`ParameterHandler`] on it, and folds the result back into an overlay.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use crate::config::AgentConfig;
use crate::datamodel::hooks::Hooks;
use crate::datamodel::store::Store;
use crate::datamodel::Schema;
use crate::rpc::Effects;
use crate::runner::{self, Agent};
use crate::session::{self, Handler, InformArgs, ParameterHandler};
use crate::soap::{Body, Event};
use crate::state::AgentState;

use super::client::Target;
use super::device::{self, Device};
use super::SimulateError;

pub const SERIAL: &str = "InternetGatewayDevice.DeviceInfo.SerialNumber";
const USERNAME: &str = "InternetGatewayDevice.ManagementServer.Username";
const PASSWORD: &str = "InternetGatewayDevice.ManagementServer.Password";
pub const URL: &str = "InternetGatewayDevice.ManagementServer.URL";
pub const CR_URL: &str = "InternetGatewayDevice.ManagementServer.ConnectionRequestURL";
pub const CR_USERNAME: &str = "InternetGatewayDevice.ManagementServer.ConnectionRequestUsername";
pub const CR_PASSWORD: &str = "InternetGatewayDevice.ManagementServer.ConnectionRequestPassword";
const PI_ENABLE: &str = "InternetGatewayDevice.ManagementServer.PeriodicInformEnable";
const PI_INTERVAL: &str = "InternetGatewayDevice.ManagementServer.PeriodicInformInterval";
const PI_TIME: &str = "InternetGatewayDevice.ManagementServer.PeriodicInformTime";

/// Table 35 single events, one bit each in [`Cpe::events`].
pub const EVENT_CODES: [&str; 10] = [
    "0 BOOTSTRAP",
    "1 BOOT",
    "2 PERIODIC",
    "3 SCHEDULED",
    "4 VALUE CHANGE",
    "5 KICKED",
    "6 CONNECTION REQUEST",
    "7 TRANSFER COMPLETE",
    "8 DIAGNOSTICS COMPLETE",
    "9 REQUEST DOWNLOAD",
];
pub const EV_BOOTSTRAP: u16 = 1 << 0;
pub const EV_BOOT: u16 = 1 << 1;
pub const EV_PERIODIC: u16 = 1 << 2;
pub const EV_CONNECTION_REQUEST: u16 = 1 << 6;

pub fn event_bit(code: &str) -> Option<u16> {
    EVENT_CODES.iter().position(|c| *c == code).map(|i| 1 << i)
}

/// What differs from the shared tree besides the identity.
#[derive(Debug, Clone)]
pub enum Overlay {
    /// Differing values, sorted by name.
    Values(Vec<(String, String)>),
    /// Objects, attributes or instance numbers changed: the whole tree.
    Tree(Box<Store>),
}

/// The rarely used part of a CPE, boxed so that an idle CPE stays small.
#[derive(Default)]
pub struct Extra {
    pub overlay: Option<Overlay>,
    /// "M <method>" events (with their CommandKeys), in order.
    pub method_events: Vec<Event>,
    /// The Connection Request decision state, made on the first request.
    pub connreq: Option<crate::connreq::Policy>,
    /// The agent's extensions, once the ACS used one (see [`super::device`]).
    pub device: Option<Box<Device>>,
}

/// One simulated CPE while idle: ~100 bytes plus its [`Extra`].
#[derive(Default)]
pub struct Cpe {
    /// Pending single events (bits of [`EVENT_CODES`]).
    pub events: u16,
    pub bootstrapped: bool,
    pub in_session: bool,
    /// Waiting in the ready queue for a session slot.
    pub queued: bool,
    pub failures: u16,
    /// Inform RetryCount: consecutive failed attempts (A.3.3.1).
    pub retry_count: u32,
    /// No session before this (the start-up slot; back-off, A.5.3), in
    /// ms since the start of the run.
    pub not_before_ms: u64,
    /// The next periodic Inform (u64::MAX: none).
    pub periodic_ms: u64,
    /// When the pending 2 PERIODIC was due (lateness statistics).
    pub periodic_due_ms: u64,
    /// The wake-up time in the timer heap (u64::MAX: none).
    pub wake_ms: u64,
    /// The first acknowledged Inform (u64::MAX: none yet).
    pub first_ack_ms: u64,
    /// The random part of the Connection Request path.
    pub secret: [u8; 16],
    pub extra: Option<Box<Extra>>,
}

impl Cpe {
    pub fn has_events(&self) -> bool {
        self.events != 0 || self.extra.as_ref().is_some_and(|x| !x.method_events.is_empty())
    }

    /// Move the events the CPE's extensions queued into its own queue.
    pub fn take_device_events(&mut self) {
        let Some(x) = self.extra.as_mut() else { return };
        let Some(d) = x.device.as_mut() else { return };
        let evs: Vec<Event> = d.state.pending_events.drain(..).collect();
        for e in evs {
            self.add_event(&e.code, &e.command_key);
        }
    }

    pub fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Default::default)
    }

    pub fn overlay(&self) -> Option<&Overlay> {
        self.extra.as_ref().and_then(|x| x.overlay.as_ref())
    }

    /// Queue an event (Table 35: single events once, "M" events once per CommandKey).
    pub fn add_event(&mut self, code: &str, command_key: &str) {
        match event_bit(code) {
            Some(b) => self.events |= b,
            None => {
                let m = &mut self.extra().method_events;
                if !m.iter().any(|e| e.code == code && e.command_key == command_key) {
                    m.push(Event { code: code.into(), command_key: command_key.into() });
                }
            }
        }
    }

    /// The pending events, in Table 35 order, "M" events last.
    pub fn pending(&self) -> Vec<Event> {
        let mut v: Vec<Event> =
            (0..EVENT_CODES.len()).filter(|i| self.events & (1 << i) != 0).map(|i| Event { code: EVENT_CODES[i].into(), command_key: String::new() }).collect();
        if let Some(x) = &self.extra {
            v.extend(x.method_events.iter().cloned());
        }
        v
    }

    /// The Inform carrying `sent` was acknowledged: drop those events.
    pub fn delivered(&mut self, sent: &[Event]) {
        for e in sent {
            if let Some(b) = event_bit(&e.code) {
                self.events &= !b;
            }
        }
        if let Some(x) = self.extra.as_mut() {
            x.method_events.retain(|e| !sent.contains(e));
        }
        if sent.iter().any(|e| e.code == "0 BOOTSTRAP") {
            self.bootstrapped = true;
        }
    }
}

/// Periodic Inform settings (Table 32).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periodic {
    pub interval: u32,
    pub aligned_to: Option<SystemTime>,
}

/// The shared part of every simulated CPE.
pub struct Model {
    pub cfg: AgentConfig,
    pub schema: &'static Schema,
    /// The tree every CPE starts from (hooks attached).
    pub base: Store,
    /// The Inform of the shared tree; per session, the identity's values,
    /// events and times are filled in.
    template: Body,
    pub target: Target,
    /// `http://host:port` of the Connection Request listener.
    pub cr_prefix: Option<String>,
    pub periodic: Option<Periodic>,
    /// The serial-number prefix (`[device] serial_number`).
    pub serial_base: String,
    /// Compared against in place of an empty ConnectionRequestPassword:
    /// nothing can authenticate then (as in the agent).
    pub no_password: String,
    pub cr_limit: u32,
    pub cr_window: Duration,
}

impl Model {
    pub fn new(cfg: &AgentConfig, cr_prefix: Option<String>) -> Result<Model, SimulateError> {
        let schema: &'static Schema = if cfg.vendor_parameters.is_empty() {
            Schema::igd()
        } else {
            Box::leak(Box::new(Schema::igd_with(&cfg.vendor_parameters).map_err(|e| SimulateError::Config(e.to_string()))?))
        };
        let mut base = Store::new(schema);
        base.complete(schema);
        base.attach_hooks(Hooks::new(schema, &cfg.hooks).map_err(|e| SimulateError::Config(e.to_string()))?);
        Agent::seed(cfg, &mut base, &mut AgentState::default(), true);
        // No LAN server, hence no KickURL / DownloadProgressURL.
        let target = Target::parse(&cfg.acs.url).map_err(SimulateError::Acs)?;
        let device = cfg.device_id();
        let args = InformArgs { device, events: vec![], retry_count: 0, current_time: String::new(), max_envelopes: cfg.max_envelopes() };
        // ConnectionRequestURL is per CPE: make sure the template carries it.
        if cr_prefix.is_some() {
            base.values.insert(CR_URL.into(), String::new());
        }
        let template = session::inform_body(schema, &base, args, &[]);
        let mut m = Model {
            cfg: cfg.clone(),
            schema,
            base,
            template,
            target,
            cr_prefix,
            periodic: None,
            serial_base: cfg.device.serial_number.clone(),
            no_password: foundation::random::hex_secret(16)?,
            cr_limit: cfg.agent.connection_request_limit.unwrap_or(10),
            cr_window: Duration::from_secs(cfg.agent.connection_request_window_seconds.unwrap_or(60)),
        };
        m.periodic = m.periodic_of(None);
        Ok(m)
    }

    pub fn serial(&self, id: usize) -> String {
        format!("{}-{id:05}", self.serial_base)
    }

    /// The identity (1-based) a serial number belongs to.
    pub fn identity_of(&self, serial: &str) -> Option<usize> {
        let digits = serial.strip_prefix(self.serial_base.as_str())?.strip_prefix('-')?;
        if digits.len() < 5 || !digits.bytes().all(|b| b.is_ascii_digit()) || (digits.len() > 5 && digits.starts_with('0')) {
            return None;
        }
        digits.parse().ok().filter(|&i| i > 0)
    }

    /// The path of the CPE's ConnectionRequestURL: `/cr/<serial>/<secret>`.
    pub fn cr_path(&self, id: usize, secret: &[u8; 16]) -> String {
        format!("/cr/{}/{}", self.serial(id), hex::encode(secret))
    }

    /// Values that come from the identity.
    fn derived(&self, id: usize, secret: &[u8; 16], name: &str) -> Option<String> {
        match name {
            SERIAL => Some(self.serial(id)),
            USERNAME if self.cfg.acs.username.contains("{serial}") => Some(self.cfg.acs.username.replace("{serial}", &self.serial(id))),
            PASSWORD if self.cfg.acs.password.contains("{serial}") => Some(self.cfg.acs.password.replace("{serial}", &self.serial(id))),
            CR_URL => self.cr_prefix.as_ref().map(|p| format!("{p}{}", self.cr_path(id, secret))),
            _ => None,
        }
    }

    /// The CPE's real value of `name` (passwords included).
    pub fn value<'a>(&'a self, id: usize, cpe: &'a Cpe, name: &str) -> Option<Cow<'a, str>> {
        match cpe.overlay() {
            Some(Overlay::Tree(t)) => return t.raw_get(name).ok().flatten().map(Cow::Owned),
            Some(Overlay::Values(v)) => {
                if let Ok(i) = v.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
                    return Some(Cow::Borrowed(v[i].1.as_str()));
                }
            }
            None => {}
        }
        if let Some(d) = self.derived(id, &cpe.secret, name) {
            return Some(Cow::Owned(d));
        }
        if self.base.hooks().is_some() {
            return self.base.raw_get(name).ok().flatten().map(Cow::Owned);
        }
        self.base.values.get(name).map(|v| Cow::Borrowed(v.as_str()))
    }

    /// The ACS URL, username and password the CPE uses now.
    pub fn acs_credentials(&self, id: usize, cpe: &Cpe) -> (String, String) {
        let get = |n| self.value(id, cpe, n).map(Cow::into_owned).unwrap_or_default();
        (get(USERNAME), get(PASSWORD))
    }

    /// The ACS URL, if the ACS changed it (None: the configured one).
    pub fn changed_acs_url(&self, id: usize, cpe: &Cpe) -> Option<String> {
        cpe.overlay()?;
        self.value(id, cpe, URL).filter(|u| *u != self.cfg.acs.url).map(Cow::into_owned)
    }

    /// The Connection Request credentials (3.2.2).
    pub fn cr_credentials(&self, id: usize, cpe: &Cpe) -> (String, String) {
        let user = self.value(id, cpe, CR_USERNAME).map(Cow::into_owned).unwrap_or_default();
        let pass = self.value(id, cpe, CR_PASSWORD).map(Cow::into_owned).filter(|p| !p.is_empty()).unwrap_or_else(|| self.no_password.clone());
        (user, pass)
    }

    /// The CPE's periodic Inform settings (the shared ones without an overlay).
    pub fn periodic_of(&self, id_cpe: Option<(usize, &Cpe)>) -> Option<Periodic> {
        let get = |n: &str| match id_cpe {
            Some((id, c)) => self.value(id, c, n).map(Cow::into_owned),
            None => self.base.values.get(n).cloned(),
        };
        let enabled = matches!(get(PI_ENABLE).as_deref(), Some("true" | "1"));
        let interval: u32 = get(PI_INTERVAL).and_then(|v| v.parse().ok()).unwrap_or(0);
        (enabled && interval > 0).then(|| Periodic { interval, aligned_to: get(PI_TIME).and_then(|t| runner::parse_datetime(&t)) })
    }

    pub fn cpe_periodic(&self, id: usize, cpe: &Cpe) -> Option<Periodic> {
        if cpe.overlay().is_none() {
            self.periodic
        } else {
            self.periodic_of(Some((id, cpe)))
        }
    }

    /// The Inform for this session (A.3.3.1): the agent's own
    /// [`session::inform_body`] for a CPE with a tree of its own, else the
    /// shared Inform with the identity's values filled in.
    pub fn inform(&self, id: usize, cpe: &Cpe, events: Vec<Event>, current_time: String) -> Body {
        let mut device = self.cfg.device_id();
        device.serial_number = self.serial(id);
        if let Some(Overlay::Tree(t)) = cpe.overlay() {
            let args = InformArgs { device, events, retry_count: cpe.retry_count, current_time, max_envelopes: self.cfg.max_envelopes() };
            return session::inform_body(self.schema, t, args, &[]);
        }
        let mut b = self.template.clone();
        if let Body::Inform { device_id, events: ev, current_time: ct, retry_count, parameters, .. } = &mut b {
            *device_id = device;
            *ev = events;
            *ct = current_time;
            *retry_count = cpe.retry_count;
            for p in parameters.iter_mut() {
                if let Some(v) = self.value(id, cpe, &p.name) {
                    if v != p.value {
                        p.value = v.into_owned();
                    }
                }
            }
        }
        b
    }

    /// The CPE's whole tree: the shared one, its identity and its overlay.
    pub fn materialise(&self, id: usize, secret: &[u8; 16], overlay: Option<&Overlay>) -> Store {
        if let Some(Overlay::Tree(t)) = overlay {
            return (**t).clone();
        }
        let mut s = self.base.clone();
        for n in [SERIAL, USERNAME, PASSWORD, CR_URL] {
            if let Some(v) = self.derived(id, secret, n) {
                s.values.insert(n.to_string(), v);
            }
        }
        if let Some(Overlay::Values(v)) = overlay {
            for (n, val) in v {
                s.values.insert(n.clone(), val.clone());
            }
        }
        s
    }

    /// What of `tree` differs from the shared tree and the identity.
    pub fn overlay_of(&self, id: usize, cpe: &Cpe, tree: Store) -> Option<Overlay> {
        let b = &self.base;
        if tree.objects != b.objects || tree.attributes != b.attributes || tree.next_instance != b.next_instance || tree.values.len() != b.values.len() {
            return Some(Overlay::Tree(Box::new(tree)));
        }
        let mut diff = Vec::new();
        for (n, v) in &tree.values {
            match b.values.get(n) {
                None => return Some(Overlay::Tree(Box::new(tree))),
                Some(bv) if bv == v => {}
                Some(_) if self.derived(id, &cpe.secret, n).as_deref() == Some(v.as_str()) => {}
                Some(_) => diff.push((n.clone(), v.clone())),
            }
        }
        // Derived values the ACS overwrote stay in the overlay; BTreeMap
        // iteration is sorted, as `value` expects.
        (!diff.is_empty()).then_some(Overlay::Values(diff))
    }

    /// The overlay as saved in `parameters.json`.
    pub fn saved_overlay(o: &Overlay) -> SavedParameters {
        match o {
            Overlay::Values(v) => SavedParameters::Overlay(v.iter().cloned().collect()),
            Overlay::Tree(t) => SavedParameters::Tree((**t).clone()),
        }
    }

    pub fn loaded_overlay(&self, saved: SavedParameters) -> Option<Overlay> {
        match saved {
            SavedParameters::Overlay(m) if m.is_empty() => None,
            SavedParameters::Overlay(m) => Some(Overlay::Values(m.into_iter().collect())),
            SavedParameters::Tree(mut t) => {
                t.complete(self.schema);
                if let Ok(h) = Hooks::new(self.schema, &self.cfg.hooks) {
                    t.attach_hooks(h);
                }
                Some(Overlay::Tree(Box::new(t)))
            }
        }
    }
}

/// `parameters.json` of a simulated CPE with `--state-dir`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SavedParameters {
    /// Values that differ from the shared tree.
    Overlay(BTreeMap<String, String>),
    /// The CPE's whole tree (objects or attributes changed).
    Tree(Store),
}

/// The session handler of a simulated CPE: the agent's [`ParameterHandler`]
/// on the CPE's tree, materialised on the ACS's first request, with the
/// agent's extensions once the ACS uses one (see [`super::device`]).
pub struct SimHandler {
    model: Rc<Model>,
    id: usize,
    secret: [u8; 16],
    /// A copy of the CPE's overlay (most CPEs have none).
    overlay: Option<Overlay>,
    /// The CPE's tree, once the ACS sent a request.
    pub tree: Option<Store>,
    pub effects: Effects,
    /// Moved in from the CPE for the session (or made by it).
    pub device: Option<Box<Device>>,
}

impl SimHandler {
    pub fn new(model: Rc<Model>, id: usize, cpe: &Cpe, device: Option<Box<Device>>) -> SimHandler {
        SimHandler { model, id, secret: cpe.secret, overlay: cpe.overlay().cloned(), tree: None, effects: Effects::default(), device }
    }

    /// The ACS changed the tree (persist it, recompute the overlay).
    pub fn changed(&self) -> bool {
        self.effects.dirty || !self.effects.changed.is_empty() || !self.effects.side_changes.is_empty() || !self.effects.notification_set.is_empty()
    }
}

impl Handler for SimHandler {
    fn request(&mut self, req: &Body) -> Body {
        if let Body::GetRPCMethods = req {
            // A.3.2.1: what the agent (with its extensions) supports.
            return Body::GetRPCMethodsResponse { methods: device::all_methods() };
        }
        let SimHandler { model, id, secret, overlay, tree, effects, device } = self;
        let tree = tree.get_or_insert_with(|| model.materialise(*id, secret, overlay.as_ref()));
        if device.is_none() && device::is_extension_method(req.method()) {
            match Device::open(model, *id, tree) {
                Ok(d) => *device = Some(Box::new(d)),
                Err(e) => {
                    tracing::warn!(serial = %model.serial(*id), error = %e, "simulated CPE: cannot set up transfers/vouchers");
                    return Body::Fault(crate::soap::Fault::new(9002, "Internal error"));
                }
            }
        }
        let mut h = ParameterHandler::new(model.schema, tree);
        if let Some(d) = device.as_mut() {
            let d = &mut **d;
            h = h.with(&mut d.transfers).with(&mut d.options);
        }
        let resp = h.request(req);
        let fx = h.effects;
        effects.changed.extend(fx.changed);
        effects.side_changes.extend(fx.side_changes);
        effects.notification_set.extend(fx.notification_set);
        effects.dirty |= fx.dirty;
        resp
    }

    fn response(&mut self, request: &Body, resp: &Body) {
        let SimHandler { model, id, secret, overlay, tree, device, .. } = self;
        if let Some(d) = device.as_mut() {
            let tree = tree.get_or_insert_with(|| model.materialise(*id, secret, overlay.as_ref()));
            let d = &mut **d;
            ParameterHandler::new(model.schema, tree).with(&mut d.transfers).with(&mut d.options).response(request, resp);
        }
    }
}
