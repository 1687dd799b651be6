//! The CPE's main loop (3.2.1, 3.7.1): decide when a session is due, run
//! it over HTTP, persist what it changed, and retry failed sessions with
//! exponential back-off (A.5.3).
//!
//! A session is started when an event is pending: 0 BOOTSTRAP (first start,
//! ACS URL change), 1 BOOT (every later start), 2 PERIODIC
//! (PeriodicInformInterval, aligned to PeriodicInformTime), 4 VALUE CHANGE
//! (an active-notification or Table 33 "inform on change" parameter changed
//! by an external cause), 5 KICKED (a LAN kick, Appendix D), 6 CONNECTION
//! REQUEST (3.2.2), 9 REQUEST DOWNLOAD (a spooled RequestDownload, A.4.2.2).
//! Only one session runs at a time: Connection Requests, kicks and local
//! changes arriving during a session are queued and served after it ends
//! (3.2.1, 3.2.2).
//!
//! Between sessions the [`super::transfer`] extension runs accepted
//! Downloads/Uploads, scheduled Informs, Reboot and FactoryReset; it adds
//! 1 BOOT, 3 SCHEDULED, 7 TRANSFER COMPLETE and the "M <method>" events.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use foundation::backoff;
use foundation::clock::now_rfc3339;
use foundation::random::{self, RandomError};
use tracing::{debug, error, info, warn};

use super::config::AgentConfig;
use super::config::Backend;
use super::connreq::{self, ConnectionRequestServer};
use super::cpe_requests::{self, CpeRequests};
use super::datamodel::hooks::Hooks;
use super::datamodel::linux::{self, Linux, LinuxConfig};
use super::datamodel::provider::Providers;
use super::datamodel::store::Store;
use super::datamodel::Schema;
use super::diagnostics::{self, Diagnostics};
use super::http::{self, AcsConnection, HttpConfig, TransportError};
use super::lan::{self, KickError, KickRequest, LanServer};
use super::options::Options;
use super::session::{self, Handler, InformArgs, ParameterHandler, Session, SessionError, State};
use super::state::{AgentState, LastSession};
use super::transfer::{TransferError, Transfers};

const MS: &str = "InternetGatewayDevice.ManagementServer.";

/// Session reports kept ([`Agent::reports`]): the most recent ones only. A
/// daemon runs for years; keeping every report grew it by about 225 bytes a
/// session (19 MB a day at a 1 s PeriodicInformInterval).
pub const MAX_SESSION_REPORTS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A state file or the state directory cannot be read or written
    /// (the cause is the error's source).
    #[error("agent state {path}")]
    State { path: PathBuf, source: std::io::Error },
    /// The option store (options.json) cannot be read or written.
    #[error(transparent)]
    Options(#[from] super::options::OptionsError),
    #[error("Connection Request server on {addr}: {source}")]
    ConnectionRequest { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("LAN web server on {addr}: {source}")]
    Lan { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("{0}")]
    Config(String),
    #[error("gave up after {0} failed session attempts")]
    GaveUp(u32),
    #[error(transparent)]
    Transfer(#[from] TransferError),
    #[error(transparent)]
    Random(#[from] RandomError),
    /// The session was abandoned on request ([`Agent::abort_handle`]).
    #[error("session abandoned: the agent is stopping")]
    Aborted,
}

impl foundation::Kind for AgentError {
    /// A configuration the agent cannot use is malformed input (exit
    /// status 3, like a config that does not parse); the rest is runtime.
    fn kind(&self) -> foundation::ErrorKind {
        match self {
            AgentError::Config(_) => foundation::ErrorKind::Malformed,
            _ => foundation::ErrorKind::Runtime,
        }
    }
}

/// Something that wakes the main loop.
#[derive(Debug, Clone)]
pub enum Trigger {
    /// An authenticated Connection Request (3.2.2).
    ConnectionRequest,
    /// A local change was spooled (`cpekit agent set`).
    LocalChange,
    /// The CPE was kicked from the LAN (Appendix D): run a session calling
    /// Kicked, then answer the LAN server with the NextURL.
    Kick(KickRequest),
    /// Stop the loop (after the current session), state saved.
    Stop,
    /// Take this configuration (SIGHUP; see [`Agent::reload`]).
    Reload(Box<AgentConfig>),
}

/// What one session did.
#[derive(Debug, Default, Clone)]
pub struct SessionReport {
    pub events: Vec<String>,
    pub acs_requests: usize,
    pub changed: Vec<String>,
    pub challenges: u32,
}

/// One session attempt, as seen by a [`SessionObserver`] (the simulator's
/// statistics).
#[derive(Debug, Clone)]
pub struct SessionOutcome {
    pub ok: bool,
    /// The Inform was acknowledged (its events delivered).
    pub informed: bool,
    pub events: Vec<String>,
    /// When the Inform was acknowledged: the next periodic Inform is due
    /// PeriodicInformInterval after it (without PeriodicInformTime).
    pub acknowledged_at: Option<Instant>,
    /// From the first connection attempt to the end of the session
    /// (persistence included).
    pub elapsed: Duration,
}

/// Called after every session attempt instead of keeping a
/// [`SessionReport`] (long-running simulations keep no history).
pub type SessionObserver = Box<dyn FnMut(&SessionOutcome) + Send>;

/// Next periodic Inform after `now` (A.3.2 / B: PeriodicInformTime aligns
/// the schedule; an unknown time, 0001-01-01, means "any").
pub fn next_periodic(now: SystemTime, last: SystemTime, interval: u32, aligned_to: Option<SystemTime>) -> SystemTime {
    let iv = Duration::from_secs(u64::from(interval.max(1)));
    match aligned_to {
        Some(t0) => {
            let ivs = iv.as_secs() as i128;
            let now_s = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i128).unwrap_or(0);
            let t0_s = match t0.duration_since(SystemTime::UNIX_EPOCH) {
                Ok(d) => d.as_secs() as i128,
                Err(e) => -(e.duration().as_secs() as i128),
            };
            let k = (now_s - t0_s).div_euclid(ivs) + 1;
            let next = t0_s + k * ivs;
            SystemTime::UNIX_EPOCH + Duration::from_secs(next.max(0) as u64)
        }
        None => last + iv,
    }
}

pub(crate) fn parse_datetime(s: &str) -> Option<SystemTime> {
    let t = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    if t.year() <= 1 {
        return None; // 0001-01-01T00:00:00Z: "unknown time"
    }
    let secs = t.unix_timestamp();
    if secs >= 0 {
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64))
    } else {
        Some(SystemTime::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()))
    }
}

/// A change made on the device itself (not by the ACS), spooled by
/// `cpekit agent set` into `state_dir/local/`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LocalChange {
    pub name: String,
    pub value: String,
}

/// Spool a local change for the agent (running or not) to apply.
pub fn spool_local_change(state_dir: &std::path::Path, change: &LocalChange) -> std::io::Result<PathBuf> {
    let dir = state_dir.join("local");
    std::fs::create_dir_all(&dir)?;
    let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let path = dir.join(format!("{stamp:032}-{}.json", std::process::id()));
    super::state::write_json_atomic(&path, change)?;
    Ok(path)
}

/// The CPE agent.
pub struct Agent {
    cfg: AgentConfig,
    schema: &'static Schema,
    pub store: Store,
    pub state: AgentState,
    params_path: PathBuf,
    state_path: PathBuf,
    tx: Sender<Trigger>,
    rx: Receiver<Trigger>,
    connreq: Option<ConnectionRequestServer>,
    lan: Option<LanServer>,
    /// Kicks waiting for their session (Appendix D).
    kicks: Vec<KickRequest>,
    cr_credentials: Arc<Mutex<(String, String)>>,
    /// The Connection Request password used while none is configured.
    cr_secret: String,
    http: HttpConfig,
    last_inform: SystemTime,
    next_periodic: Option<SystemTime>,
    failures: u32,
    retry_at: Option<Instant>,
    /// Reports of the most recent sessions, at most [`MAX_SESSION_REPORTS`].
    pub reports: VecDeque<SessionReport>,
    /// The running (or last) transfer, as shown on the LAN pages.
    pub progress: super::progress::Progress,
    /// Download/Upload/Reboot/... (A.3.2.8–A.4.1.6) and their persisted queue.
    pub transfers: Transfers,
    /// Vouchers and Options (A.4.1.3–A.4.1.4, Appendix C).
    pub options: Options,
    /// IPPingDiagnostics (Appendix B).
    pub diagnostics: Diagnostics,
    /// Abandon the running session (see [`Agent::abort_handle`]).
    abort: Arc<AtomicBool>,
    observer: Option<SessionObserver>,
}

impl Agent {
    /// Load (or create) the persisted tree and state, seed the device's
    /// identity from the config, queue 0 BOOTSTRAP or 1 BOOT, and start
    /// the Connection Request server.
    pub fn new(cfg: AgentConfig) -> Result<Agent, AgentError> {
        let schema: &'static Schema = if cfg.vendor_parameters.is_empty() {
            Schema::igd()
        } else {
            // One schema for the process lifetime.
            Box::leak(Box::new(Schema::igd_with(&cfg.vendor_parameters).map_err(|e| AgentError::Config(e.to_string()))?))
        };
        let dir = cfg.agent.state_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| AgentError::State { path: dir.clone(), source })?;
        let params_path = dir.join("parameters.json");
        let state_path = dir.join("agent.json");
        // An unreadable or corrupt file stops the start, naming the file:
        // nothing is overwritten with defaults.
        let store = Store::load(&params_path).map_err(|source| AgentError::State { path: params_path.clone(), source })?;
        let state = AgentState::load(&state_path).map_err(|source| AgentError::State { path: state_path.clone(), source })?;
        let first_start = store.is_none();
        match (&store, &state) {
            (None, None) => info!(dir = %dir.display(), "first start: no saved parameter tree or agent state; the tree starts from the defaults (0 BOOTSTRAP)"),
            (None, Some(_)) => warn!(
                file = %params_path.display(),
                "the saved parameter tree is missing: rebuilt from the defaults and the config; the ACS is told with 0 BOOTSTRAP"
            ),
            (Some(_), None) => warn!(
                file = %state_path.display(),
                "the saved agent state is missing: undelivered events and the notification baseline are lost; the ACS is told with 0 BOOTSTRAP"
            ),
            (Some(_), Some(_)) => {}
        }
        let had_state = state.is_some();
        let mut store = store.unwrap_or_else(|| Store::new(schema));
        // Objects and parameters added to the model since the tree was saved
        // (e.g. new vendor parameters) get their defaults.
        store.complete(schema);
        let hooks = Hooks::new(schema, &cfg.hooks).map_err(|e| AgentError::Config(e.to_string()))?;
        store.attach_hooks(hooks);
        // Provider processes start now; their instances are listed below.
        let providers = Agent::start_providers(schema, &cfg)?;
        store.attach_providers(schema, providers.clone());
        let mut state = state.unwrap_or_default();
        Agent::seed(&cfg, &mut store, &mut state, first_start);
        if first_start && had_state {
            // A restart whose tree was lost: a boot as well as a bootstrap.
            state.add_event("1 BOOT", "");
        }
        let progress = super::progress::Progress::new();
        let mut transfers = Transfers::new(&cfg, progress.clone(), state_path.clone())?;
        transfers.on_start(&mut state, &mut store)?;

        let tls = match &cfg.acs.ca_file {
            Some(f) => Some(http::tls_config(f)?),
            None => None,
        };
        let http = HttpConfig {
            url: Agent::acs_url_of(&store),
            username: store.values.get(&format!("{MS}Username")).cloned().unwrap_or_default(),
            password: store.values.get(&format!("{MS}Password")).cloned().unwrap_or_default(),
            tls,
            timeout: cfg.response_timeout(),
            session_timeout: cfg.session_timeout(),
        };
        // Vouchers (Appendix C): the option store beside the tree.
        let d = &cfg.device;
        let mut helper = vouchers::Helper::locate(cfg.trust.voucher_helper.as_deref());
        if let Some((uid, gid)) = cfg.trust.voucher_helper_identity().map_err(|e| AgentError::Config(e.to_string()))? {
            // SAFETY: geteuid has no preconditions.
            let me = unsafe { libc::geteuid() };
            if me != 0 && me != uid {
                warn!(
                    uid,
                    agent_uid = me,
                    "[trust] voucher_helper_user: the agent is not root and cannot run the voucher helper as another user; SetVouchers will answer 9002"
                );
            }
            helper = helper.run_as(uid, gid);
        }
        let mut options = Options::open(&dir, &d.oui, &d.product_class, &d.serial_number, cfg.trust.vouchers.clone())?.with_verifier(Box::new(helper));
        options.refresh(&mut store, time::OffsetDateTime::now_utc())?;
        // The Connection Request password while none is configured: never
        // told to anyone, so nothing can authenticate (3.2.2).
        let cr_secret = random::hex_secret(16)?;
        let (tx, rx) = mpsc::channel();
        Agent::wake_on_push(&providers, &tx);
        let wake = tx.clone();
        let diagnostics = Diagnostics::new(Arc::new(move || {
            let _ = wake.send(Trigger::LocalChange);
        }));
        let mut agent = Agent {
            schema,
            store,
            state,
            params_path,
            state_path,
            tx,
            rx,
            connreq: None,
            lan: None,
            kicks: Vec::new(),
            cr_credentials: Arc::new(Mutex::new((String::new(), cr_secret.clone()))),
            cr_secret,
            http,
            last_inform: SystemTime::now(),
            next_periodic: None,
            failures: 0,
            retry_at: None,
            reports: VecDeque::new(),
            progress,
            transfers,
            options,
            diagnostics,
            abort: Arc::new(AtomicBool::new(false)),
            observer: None,
            cfg,
        };
        agent.sync_connection_request_credentials();
        agent.start_connection_request_server()?;
        agent.start_lan_server()?;
        agent.reschedule_periodic();
        agent.store.refresh_instances(schema, true);
        agent.persist()?;
        Ok(agent)
    }

    /// The `[[providers]]` processes and the `backend = "linux"` provider.
    fn start_providers(schema: &'static Schema, cfg: &AgentConfig) -> Result<Arc<Providers>, AgentError> {
        let mut providers = Providers::start(schema, &cfg.providers).map_err(|e| AgentError::Config(format!("[[providers]] {e}")))?;
        if cfg.device.backend == Backend::Linux {
            let d = &cfg.device;
            let linux =
                Linux::new(LinuxConfig { lan_interfaces: d.lan_interfaces.clone(), wan_interface: d.wan_interface.clone(), device_log: d.device_log.clone() });
            providers.add(&linux.subtrees(), Arc::new(linux)).map_err(|e| AgentError::Config(format!("[device] backend = \"linux\": {e}")))?;
            for i in d.lan_interfaces.iter().chain(&d.wan_interface) {
                if !std::path::Path::new("/sys/class/net").join(i).exists() {
                    warn!(interface = %i, "no such network interface (yet): its values stay the stored ones");
                }
            }
        }
        Ok(Arc::new(providers))
    }

    /// The config's truth on every start (identity; the ACS URL on first
    /// start or when edited) and the start's events (Table 35).
    pub(crate) fn seed(cfg: &AgentConfig, store: &mut Store, state: &mut AgentState, first_start: bool) {
        // The device's identity is the config's truth on every start
        // (SpecVersion is the built-in hook's "1.0", B.2.3).
        let d = &cfg.device;
        // backend = "linux": versions not configured are the machine's.
        let from_machine = |configured: &String, machine: fn() -> Option<String>| match d.backend {
            Backend::Linux if configured.is_empty() => machine().unwrap_or_default(),
            _ => configured.clone(),
        };
        let (hw, sw) = (from_machine(&d.hardware_version, linux::hardware_version), from_machine(&d.software_version, linux::software_version));
        for (p, v) in [
            ("DeviceInfo.Manufacturer", &d.manufacturer),
            ("DeviceInfo.ManufacturerOUI", &d.oui),
            ("DeviceInfo.ProductClass", &d.product_class),
            ("DeviceInfo.SerialNumber", &d.serial_number),
            ("DeviceInfo.HardwareVersion", &hw),
            ("DeviceInfo.SoftwareVersion", &sw),
        ] {
            let name = format!("InternetGatewayDevice.{p}");
            if store.values.contains_key(&name) {
                store.set(&name, v);
            }
        }
        // 3.1: the configured ACS URL and credentials seed ManagementServer
        // on first start, and again when the config's URL is edited.
        if first_start || state.config_acs_url != cfg.acs.url {
            store.set(&format!("{MS}URL"), &cfg.acs.url);
            store.set(&format!("{MS}Username"), &cfg.acs.username);
            store.set(&format!("{MS}Password"), &cfg.acs.password);
            if let Some(iv) = cfg.agent.periodic_inform_interval {
                store.set(&format!("{MS}PeriodicInformInterval"), &iv.max(1).to_string());
                store.set(&format!("{MS}PeriodicInformEnable"), "true");
            }
            state.config_acs_url = cfg.acs.url.clone();
        }
        // Table 35: first contact (or a new ACS) is a bootstrap; otherwise a
        // boot. A tree built from the defaults is a first installation to the
        // ACS, whatever the agent state says.
        if first_start || !state.bootstrapped || state.acs_url != Agent::acs_url_of(store) {
            state.add_event("0 BOOTSTRAP", "");
        }
        if !first_start {
            state.add_event("1 BOOT", "");
        }
    }

    fn acs_url_of(store: &Store) -> String {
        store.values.get(&format!("{MS}URL")).cloned().unwrap_or_default()
    }

    fn wake_on_push(providers: &Providers, tx: &Sender<Trigger>) {
        let wake = tx.clone();
        providers.set_wake(Arc::new(move || {
            let _ = wake.send(Trigger::LocalChange);
        }));
    }

    /// Set it to abandon a running session at its next exchange (the
    /// events stay queued; a second SIGTERM). [`Trigger::Stop`] waits for
    /// the session to end.
    pub fn abort_handle(&self) -> Arc<AtomicBool> {
        self.abort.clone()
    }

    /// SIGHUP: take `new` without a restart (no 1 BOOT). Applied at once:
    /// `[acs]` (a new URL reseeds ManagementServer like an edit before a
    /// restart: 0 BOOTSTRAP, 3.2.1; ca_file), `[[hooks]]`, `[[providers]]`
    /// and the Linux backend's mapping (providers are restarted), and the
    /// `[agent]` timings read per use (retries, response and session
    /// timeouts, poll interval, max_envelopes, kicks). What needs a
    /// restart keeps its running value and is named in a warning:
    /// `[device]` identity, `[[vendor_parameters]]`, `[trust]`, and the
    /// `[agent]` directories, listen addresses, commands and transfer
    /// settings.
    pub fn reload(&mut self, new: AgentConfig) -> Result<(), AgentError> {
        let old = self.cfg.clone();
        let mut cfg = new;
        let mut later = Vec::new();
        macro_rules! keep {
            ($($section:ident . $field:ident),* $(,)?) => {$(
                if format!("{:?}", cfg.$section.$field) != format!("{:?}", old.$section.$field) {
                    later.push(concat!("[", stringify!($section), "] ", stringify!($field)));
                    cfg.$section.$field = old.$section.$field.clone();
                }
            )*};
        }
        keep!(
            device.manufacturer,
            device.oui,
            device.product_class,
            device.serial_number,
            device.hardware_version,
            device.software_version,
            agent.state_dir,
            agent.install_root,
            agent.connection_request,
            agent.connection_request_host,
            agent.connection_request_limit,
            agent.connection_request_window_seconds,
            agent.lan_address,
            agent.lan_host,
            agent.reboot_command,
            agent.factory_reset_command,
            agent.vendor_config_command,
            agent.upload_config_file,
            agent.upload_log_file,
            agent.transfer_ca_file,
            agent.transfer_stall_timeout_seconds,
            agent.upload_method,
            agent.periodic_inform_interval,
        );
        if cfg.vendor_parameters != old.vendor_parameters {
            later.push("[[vendor_parameters]]");
            cfg.vendor_parameters = old.vendor_parameters.clone();
        }
        if format!("{:?}", cfg.trust) != format!("{:?}", old.trust) {
            later.push("[trust]");
            cfg.trust = old.trust.clone();
        }
        let tls = match &cfg.acs.ca_file {
            Some(f) => Some(http::tls_config(f)?),
            None => None,
        };
        self.store.attach_hooks(Hooks::new(self.schema, &cfg.hooks).map_err(|e| AgentError::Config(format!("[[hooks]] {e}")))?);
        let d = (&cfg.device, &old.device);
        let mapping_changed = d.0.backend != d.1.backend
            || d.0.lan_interfaces != d.1.lan_interfaces
            || d.0.wan_interface != d.1.wan_interface
            || d.0.device_log != d.1.device_log;
        if cfg.providers != old.providers || mapping_changed {
            // The old processes stop when the tree lets go of them.
            let providers = Agent::start_providers(self.schema, &cfg)?;
            Agent::wake_on_push(&providers, &self.tx);
            self.store.attach_providers(self.schema, providers);
            self.store.refresh_instances(self.schema, true);
        }
        if cfg.acs.url != self.state.config_acs_url {
            self.store.set(&format!("{MS}URL"), &cfg.acs.url);
            self.store.set(&format!("{MS}Username"), &cfg.acs.username);
            self.store.set(&format!("{MS}Password"), &cfg.acs.password);
            self.state.config_acs_url = cfg.acs.url.clone();
            if self.state.acs_url != cfg.acs.url {
                self.state.add_event("0 BOOTSTRAP", "");
            }
        }
        self.http = HttpConfig {
            url: Agent::acs_url_of(&self.store),
            username: self.store.values.get(&format!("{MS}Username")).cloned().unwrap_or_default(),
            password: self.store.values.get(&format!("{MS}Password")).cloned().unwrap_or_default(),
            tls,
            timeout: cfg.response_timeout(),
            session_timeout: cfg.session_timeout(),
        };
        self.cfg = cfg;
        self.retry_at = self.retry_at.map(|t| t.min(Instant::now() + self.cfg.retry_max()));
        self.reschedule_periodic();
        self.persist()?;
        info!("configuration reloaded");
        for key in later {
            warn!(key, "changed in the configuration: takes effect at the next restart");
        }
        Ok(())
    }

    /// A sender to wake the loop (Connection Requests, local changes, stop).
    pub fn trigger_sender(&self) -> Sender<Trigger> {
        self.tx.clone()
    }

    /// The Connection Request URL (3.2.2), if the server runs.
    pub fn connection_request_url(&self) -> Option<String> {
        self.store.values.get(&format!("{MS}ConnectionRequestURL")).cloned().filter(|u| !u.is_empty())
    }

    fn start_connection_request_server(&mut self) -> Result<(), AgentError> {
        let Some(addr) = self.cfg.agent.connection_request else { return Ok(()) };
        // Keep the random path across restarts: the ACS knows the URL.
        let url_param = format!("{MS}ConnectionRequestURL");
        let old = self.store.values.get(&url_param).cloned().unwrap_or_default();
        let path = Some(super::digest::request_uri(&old)).filter(|p| p.len() > 4).map_or_else(connreq::random_path, Ok)?;
        let tx = self.tx.clone();
        let server = ConnectionRequestServer::start(
            connreq::Config {
                listen: addr,
                path,
                username: String::new(),
                password: String::new(),
                max_per_window: self.cfg.agent.connection_request_limit.unwrap_or(10),
                window: Duration::from_secs(self.cfg.agent.connection_request_window_seconds.unwrap_or(60)),
            },
            self.cr_credentials.clone(),
            move || {
                let _ = tx.send(Trigger::ConnectionRequest);
            },
        )
        .map_err(|source| AgentError::ConnectionRequest { addr, source })?;
        let host = self.cfg.agent.connection_request_host.clone().unwrap_or_else(|| server.local_addr().ip().to_string());
        let url = server.url(&host);
        info!(%url, "Connection Request server listening");
        if url != old {
            // Table 33: ConnectionRequestURL is "inform on change"; the
            // notifier sees the new value on its next poll.
            self.store.set(&url_param, &url);
        }
        self.connreq = Some(server);
        Ok(())
    }

    /// The LAN web server (Appendix D); ManagementServer.KickURL and
    /// DownloadProgressURL advertise it (B), and are empty without it.
    fn start_lan_server(&mut self) -> Result<(), AgentError> {
        let (mut kick_url, mut progress_url) = (String::new(), String::new());
        if let Some(addr) = self.cfg.agent.lan_address {
            let tx = self.tx.clone();
            let server = LanServer::start(
                lan::Config {
                    listen: addr,
                    host: self.cfg.agent.lan_host.clone(),
                    kicks_per_hour: self.cfg.kick_limit_per_hour(),
                    kick_timeout: self.cfg.kick_timeout(),
                },
                self.progress.clone(),
                move |k| tx.send(Trigger::Kick(k)).is_ok(),
            )
            .map_err(|source| AgentError::Lan { addr, source })?;
            (kick_url, progress_url) = (server.kick_url(), server.progress_url());
            info!(%kick_url, %progress_url, "LAN web server listening");
            self.lan = Some(server);
        }
        for (p, v) in [("KickURL", kick_url), ("DownloadProgressURL", progress_url)] {
            let name = format!("{MS}{p}");
            if self.store.values.get(&name).is_some_and(|old| *old != v) {
                self.store.set(&name, &v);
            }
        }
        Ok(())
    }

    /// The KickURL (Appendix D), if the LAN server runs.
    pub fn kick_url(&self) -> Option<String> {
        self.lan.as_ref().map(LanServer::kick_url)
    }

    /// The DownloadProgressURL, if the LAN server runs.
    pub fn progress_url(&self) -> Option<String> {
        self.lan.as_ref().map(LanServer::progress_url)
    }

    /// 3.2.2: the shared secret is ConnectionRequestUsername/Password; with
    /// no password set, nothing can authenticate.
    fn sync_connection_request_credentials(&mut self) {
        let user = self.store.values.get(&format!("{MS}ConnectionRequestUsername")).cloned().unwrap_or_default();
        let pass = self.store.values.get(&format!("{MS}ConnectionRequestPassword")).cloned().unwrap_or_default();
        let pass = if pass.is_empty() { self.cr_secret.clone() } else { pass };
        *self.cr_credentials.lock().unwrap_or_else(|e| e.into_inner()) = (user, pass);
    }

    fn reschedule_periodic(&mut self) {
        let get = |p: &str| self.store.values.get(&format!("{MS}{p}")).cloned().unwrap_or_default();
        let enabled = matches!(get("PeriodicInformEnable").as_str(), "true" | "1");
        let interval: u32 = get("PeriodicInformInterval").parse().unwrap_or(0);
        self.next_periodic = if enabled && interval > 0 {
            Some(next_periodic(SystemTime::now(), self.last_inform, interval, parse_datetime(&get("PeriodicInformTime"))))
        } else {
            None
        };
        debug!(next = ?self.next_periodic, "periodic inform scheduled");
        self.state.next_periodic_inform = self.next_periodic.map(|t| foundation::clock::format_date_time(time::OffsetDateTime::from(t)));
    }

    /// Save the tree and the agent state (each even if the other fails); a
    /// failure is logged, naming the file, and the first one returned.
    fn persist(&mut self) -> Result<(), AgentError> {
        let saved = [(&self.params_path, self.store.save(&self.params_path)), (&self.state_path, self.state.save(&self.state_path))];
        let mut first = None;
        for (path, r) in saved {
            if let Err(source) = r {
                error!(file = %path.display(), error = %source, "cannot save the agent's state");
                first.get_or_insert(AgentError::State { path: path.clone(), source });
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Apply spooled local changes (external causes: they may notify).
    pub fn apply_local_changes(&mut self) -> Result<usize, AgentError> {
        let dir = self.cfg.agent.state_dir.join("local");
        let Ok(rd) = std::fs::read_dir(&dir) else { return Ok(0) };
        let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
        files.sort();
        let mut n = 0;
        for f in files {
            let change: Option<LocalChange> = std::fs::read(&f).ok().and_then(|b| serde_json::from_slice(&b).ok());
            match change {
                Some(c) => match self.schema.param(&c.name).filter(|_| self.store.values.contains_key(&c.name)) {
                    Some(def) => match def.validate(&c.value) {
                        Ok(()) => {
                            info!(name = %c.name, "local change applied");
                            self.store.set(&c.name, &c.value);
                            n += 1;
                        }
                        Err(e) => warn!(name = %c.name, "local change refused: {}", e.reason),
                    },
                    None => warn!(name = %c.name, "local change refused: no such parameter"),
                },
                None => warn!(file = %f.display(), "unreadable local change dropped"),
            }
            let _ = std::fs::remove_file(&f);
        }
        if n > 0 {
            self.persist()?;
        }
        Ok(n)
    }

    /// Report every session attempt to `f` (and keep no [`SessionReport`]s).
    pub fn set_session_observer(&mut self, f: SessionObserver) {
        self.observer = Some(f);
    }

    /// Option expiry, future StartDates and a ProvisioningCode change take
    /// effect without a restart (C.2): EnabledOptions is brought up to date.
    pub fn refresh_options(&mut self) -> Result<(), AgentError> {
        let changed = self.options.refresh(&mut self.store, time::OffsetDateTime::now_utc())?;
        if changed {
            self.persist()?;
        }
        Ok(())
    }

    /// Look for externally changed notified parameters (A.3.2.4 / 3.2.1).
    pub fn poll_notifications(&mut self) {
        let changes = self.state.notifier.poll(&self.store);
        if !changes.active.is_empty() {
            info!(parameters = ?changes.active, "active notification");
        }
        if !changes.passive.is_empty() {
            debug!(parameters = ?changes.passive, "passive notification: reported with the next Inform");
        }
        // Also after a restart with an unreported active change.
        if self.state.notifier.needs_session() {
            self.state.add_event("4 VALUE CHANGE", "");
        }
    }

    /// Whether a session is due now.
    pub fn session_due(&self) -> bool {
        (!self.state.pending_events.is_empty() || !self.kicks.is_empty()) && self.retry_at.is_none_or(|t| Instant::now() >= t)
    }

    /// A.4.2.2: a spooled RequestDownload (`cpekit agent request-download`)
    /// needs a session; kicks whose browser stopped waiting are dropped.
    fn queue_cpe_requests(&mut self) {
        if cpe_requests::has_spooled_request_downloads(&self.cfg.agent.state_dir) {
            self.state.add_event(cpe_requests::REQUEST_DOWNLOAD_EVENT, "");
        }
        self.kicks.retain(|k| !k.reply.abandoned());
    }

    /// Run one session with the ACS. On failure the events stay queued
    /// and a retry is scheduled with back-off.
    pub fn run_session(&mut self) -> Result<SessionReport, AgentError> {
        let started_at = now_rfc3339();
        self.http.url = Agent::acs_url_of(&self.store);
        // The ACS sees the providers' instances as they are now.
        self.store.refresh_instances(self.schema, true);
        let extra = self.state.notifier.pending_inform_parameters();
        if !extra.is_empty() {
            // A.3.3.1: any notified change is reported with 4 VALUE CHANGE.
            self.state.add_event("4 VALUE CHANGE", "");
        }
        let events = self.state.pending_events.clone();
        let mut cpe = CpeRequests::new(std::mem::take(&mut self.kicks), cpe_requests::spooled_request_downloads(&self.cfg.agent.state_dir));
        let mut inform_events = events.clone();
        if cpe.has_kicks() {
            // Table 35: "5 KICKED", for this session only (a failed kick is
            // answered with the error page, never retried).
            inform_events.push(crate::soap::Event { code: cpe_requests::KICKED_EVENT.into(), command_key: String::new() });
        }
        let args = InformArgs {
            device: self.cfg.device_id(),
            events: inform_events.clone(),
            retry_count: self.state.retry_count,
            current_time: now_rfc3339(),
            max_envelopes: self.cfg.max_envelopes(),
        };
        let inform = session::inform_body(self.schema, &self.store, args, &extra);
        info!(url = %self.http.url, events = ?inform_events.iter().map(|e| e.code.as_str()).collect::<Vec<_>>(), "session start");
        let started = Instant::now();
        let mut conn = AcsConnection::new(&self.http);
        let schema = self.schema;
        let result = {
            // Kicked / RequestDownload first (a browser may be waiting), then
            // A.3.3.2: unacknowledged TransferCompletes go out in every session.
            let mut requests = cpe.requests();
            requests.extend(self.transfers.requests());
            // Every change the ACS makes is saved before it is acknowledged.
            let handler = ParameterHandler::new(schema, &mut self.store)
                .persisting_to(&self.params_path)
                .with(&mut cpe)
                .with(&mut self.transfers)
                .with(&mut self.options);
            let mut s = Session::new(inform, requests, handler);
            let r = drive(&mut s, &mut conn, &self.abort);
            let acknowledged = s.inform_acknowledged();
            let h = s.into_handler();
            (r, acknowledged, h.effects, conn.challenges)
        };
        drop(conn); // 3.4.2: close the connection, discard the cookies.
        let (r, acknowledged, effects, challenges) = result;
        cpe.finish(r.as_ref().err().map(ToString::to_string));
        let acknowledged_at = acknowledged.then(Instant::now);
        if acknowledged {
            // The events were delivered even if the session broke later.
            self.state.delivered(&events);
            self.state.notifier.reported(&extra);
            self.state.acs_url = self.http.url.clone();
            self.last_inform = SystemTime::now();
        }
        self.state.notifier.acs_changed(&self.store, effects.acs_changed());
        self.diagnostics.acs_changed(&effects.changed);
        self.after_acs_changes(&effects.changed);
        let outcome = match r {
            Ok(acs_requests) => {
                self.failures = 0;
                self.retry_at = None;
                self.state.retry_count = 0;
                info!(acs_requests, "session end");
                Ok(SessionReport { events: inform_events.iter().map(|e| e.code.clone()).collect(), acs_requests, changed: effects.changed.clone(), challenges })
            }
            Err(e) => {
                self.failures += 1;
                self.state.retry_count = self.state.retry_count.saturating_add(1);
                let (base, max) = (self.cfg.retry_base(), self.cfg.retry_max());
                // The jitter only spreads CPEs apart: without randomness,
                // wait the window's minimum.
                let wait = backoff::random_wait(base, max, self.failures).unwrap_or_else(|e| {
                    warn!(error = %foundation::error_kind::chain(&e), "no retry jitter");
                    backoff::window(base, max, self.failures).0
                });
                self.retry_at = Some(Instant::now() + wait);
                warn!(error = %foundation::error_kind::chain(&e), retry_in = ?wait, "session failed");
                Err(e)
            }
        };
        self.state.last_session = Some(LastSession {
            started: started_at,
            ended: now_rfc3339(),
            ok: outcome.is_ok(),
            informed: acknowledged,
            events: inform_events.iter().map(|e| e.code.clone()).collect(),
            acs_requests: outcome.as_ref().map(|r| r.acs_requests).unwrap_or(0),
            error: outcome.as_ref().err().map(|e| foundation::error_kind::chain(e)),
        });
        self.reschedule_periodic();
        self.persist()?;
        if let Some(f) = self.observer.as_mut() {
            f(&SessionOutcome {
                ok: outcome.is_ok(),
                informed: acknowledged,
                events: events.iter().map(|e| e.code.clone()).collect(),
                acknowledged_at,
                elapsed: started.elapsed(),
            });
        } else if let Ok(rep) = &outcome {
            if self.reports.len() >= MAX_SESSION_REPORTS {
                self.reports.pop_front();
            }
            self.reports.push_back(rep.clone());
        }
        outcome
    }

    /// Follow-ups of ACS-made changes: a new ACS URL means 0 BOOTSTRAP
    /// (3.2.1), new credentials and schedules take effect now.
    fn after_acs_changes(&mut self, changed: &[String]) {
        let touched = |p: &str| changed.iter().any(|c| c == &format!("{MS}{p}"));
        if touched("URL") && Agent::acs_url_of(&self.store) != self.state.acs_url {
            info!(url = %Agent::acs_url_of(&self.store), "ACS URL changed: bootstrap");
            self.state.add_event("0 BOOTSTRAP", "");
        }
        if touched("Username") || touched("Password") {
            self.http.username = self.store.values.get(&format!("{MS}Username")).cloned().unwrap_or_default();
            self.http.password = self.store.values.get(&format!("{MS}Password")).cloned().unwrap_or_default();
        }
        if touched("ConnectionRequestUsername") || touched("ConnectionRequestPassword") {
            self.sync_connection_request_credentials();
        }
    }

    /// Between sessions: transfers, scheduled Informs, Reboot and
    /// FactoryReset accepted in earlier sessions (see [`Transfers::poll`]).
    pub fn poll_transfers(&mut self) -> Result<(), AgentError> {
        let out = self.transfers.poll(&mut self.store, &mut self.state)?;
        if out.factory_reset {
            self.factory_reset_in_place()?;
        } else if out.changed {
            self.persist()?;
        }
        Ok(())
    }

    /// What providers pushed: instances to list again (the tree follows),
    /// a diagnostic they ran is complete ("8 DIAGNOSTICS COMPLETE").
    pub fn poll_providers(&mut self) -> Result<(), AgentError> {
        let mut dirty = self.store.refresh_instances(self.schema, false);
        if self.store.providers().is_some_and(|p| p.take_diagnostics_complete()) {
            self.state.add_event(diagnostics::DIAGNOSTICS_COMPLETE, "");
            dirty = true;
        }
        if dirty {
            self.persist()?;
        }
        Ok(())
    }

    /// Between sessions (B: "after completion of the communication
    /// session"): start a requested IPPingDiagnostics test; when one ends,
    /// "8 DIAGNOSTICS COMPLETE" is due.
    pub fn poll_diagnostics(&mut self) -> Result<(), AgentError> {
        if self.diagnostics.poll(&mut self.store).completed {
            self.state.add_event(diagnostics::DIAGNOSTICS_COMPLETE, "");
            self.persist()?;
        }
        Ok(())
    }

    /// A.4.1.6: the persisted tree and state are gone; start over as on a
    /// first start (0 BOOTSTRAP), keeping the running Connection Request
    /// server and its URL.
    fn factory_reset_in_place(&mut self) -> Result<(), AgentError> {
        let cr_url = self.connection_request_url();
        let mut store = Store::new(self.schema);
        store.complete(self.schema);
        let hooks = Hooks::new(self.schema, &self.cfg.hooks).map_err(|e| AgentError::Config(e.to_string()))?;
        store.attach_hooks(hooks);
        // The same provider processes serve the new tree.
        if let Some(p) = self.store.providers() {
            store.attach_providers(self.schema, p.clone());
            store.refresh_instances(self.schema, true);
        }
        let mut state = AgentState::default();
        Agent::seed(&self.cfg, &mut store, &mut state, true);
        if let Some(url) = cr_url {
            store.set(&format!("{MS}ConnectionRequestURL"), &url);
        }
        self.store = store;
        self.state = state;
        self.http.url = Agent::acs_url_of(&self.store);
        self.http.username = self.store.values.get(&format!("{MS}Username")).cloned().unwrap_or_default();
        self.http.password = self.store.values.get(&format!("{MS}Password")).cloned().unwrap_or_default();
        self.transfers.apply_installed_version(&mut self.store);
        self.sync_connection_request_credentials();
        self.last_inform = SystemTime::now();
        self.reschedule_periodic();
        self.persist()
    }

    /// The main loop. With `once`, return when nothing is pending (or after
    /// `max_failures` consecutive failed attempts).
    pub fn run(&mut self, once: bool, max_failures: u32) -> Result<(), AgentError> {
        loop {
            // What arrived meanwhile (e.g. during a session): a Stop is
            // honoured before another session starts.
            while let Ok(t) = self.rx.try_recv() {
                if self.on_trigger(t)? {
                    return Ok(());
                }
            }
            self.apply_local_changes()?;
            self.queue_cpe_requests();
            self.poll_transfers()?;
            self.poll_diagnostics()?;
            self.poll_providers()?;
            self.refresh_options()?;
            self.poll_notifications();
            if self.next_periodic.is_some_and(|t| SystemTime::now() >= t) {
                self.state.add_event("2 PERIODIC", "");
                self.last_inform = SystemTime::now();
                self.reschedule_periodic();
            }
            if self.session_due() {
                if self.run_session().is_err() && once && self.failures >= max_failures {
                    return Err(AgentError::GaveUp(self.failures));
                }
                continue;
            }
            if once && self.state.pending_events.is_empty() && !self.transfers.busy() && !self.diagnostics.busy() {
                return Ok(());
            }
            // Sleep until the next reason to act.
            let mut wait = self.cfg.poll_interval();
            if let Some(t) = self.retry_at {
                wait = wait.min(t.saturating_duration_since(Instant::now()));
            }
            if let Some(t) = self.next_periodic {
                wait = wait.min(t.duration_since(SystemTime::now()).unwrap_or_default());
            }
            if let Some(t) = self.transfers.next_wakeup() {
                wait = wait.min(t);
            }
            match self.rx.recv_timeout(wait) {
                Ok(t) => {
                    if self.on_trigger(t)? {
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return self.on_trigger(Trigger::Stop).map(|_| ()),
            }
        }
    }

    /// Act on a trigger; true: stop the loop.
    fn on_trigger(&mut self, t: Trigger) -> Result<bool, AgentError> {
        match t {
            Trigger::ConnectionRequest => {
                info!("Connection Request");
                self.state.add_event("6 CONNECTION REQUEST", "");
                // 3.2.2: a Connection Request is answered at once, not after back-off.
                self.retry_at = None;
            }
            Trigger::Kick(k) => {
                info!(command = %k.args.command, "kicked");
                // Like a Connection Request: served now, not after back-off.
                self.kicks.push(k);
                self.retry_at = None;
            }
            Trigger::LocalChange => {}
            Trigger::Reload(cfg) => {
                if let Err(e) = self.reload(*cfg) {
                    error!(error = %foundation::error_kind::chain(&e), "configuration reload failed; the running configuration stays");
                }
            }
            Trigger::Stop => {
                // Connection Requests already accepted stay queued for the
                // next start (their HTTP answer said they would be served).
                while let Ok(t) = self.rx.try_recv() {
                    match t {
                        Trigger::ConnectionRequest => self.state.add_event("6 CONNECTION REQUEST", ""),
                        Trigger::Kick(k) => self.kicks.push(k),
                        _ => {}
                    }
                }
                for k in self.kicks.drain(..) {
                    k.reply.reply(Err(KickError::AgentGone));
                }
                self.persist()?;
                info!(queued_events = self.state.pending_events.len(), "agent stopped, state saved");
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// Drive one session over one connection; returns the number of HTTP
/// exchanges after the Inform.
fn drive<H: Handler>(s: &mut Session<H>, conn: &mut AcsConnection, abort: &AtomicBool) -> Result<usize, AgentError> {
    let mut exchanges: usize = 0;
    while let Some(post) = s.next_post() {
        if abort.load(Ordering::SeqCst) {
            return Err(AgentError::Aborted);
        }
        let resp = conn.post(&post)?;
        s.on_response(&resp)?;
        if *s.state() != State::SendInform {
            exchanges += 1;
        }
    }
    Ok(exchanges.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_alignment() {
        let t = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        // Aligned: PeriodicInformTime 1000, interval 60, now 1130 → 1180.
        assert_eq!(next_periodic(t(1130), t(0), 60, Some(t(1000))), t(1180));
        // Exactly on a boundary: the next one.
        assert_eq!(next_periodic(t(1180), t(0), 60, Some(t(1000))), t(1240));
        // Reference time in the future still aligns.
        assert_eq!(next_periodic(t(1130), t(0), 60, Some(t(5000))), t(1160));
        // Unknown time: interval after the last Inform.
        assert_eq!(next_periodic(t(1130), t(1100), 60, None), t(1160));
    }

    #[test]
    fn unknown_time_is_none() {
        assert!(parse_datetime("0001-01-01T00:00:00Z").is_none());
        assert!(parse_datetime("2026-11-24T12:00:00Z").is_some());
        assert!(parse_datetime("garbage").is_none());
    }
}
