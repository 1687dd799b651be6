//! Simulator mode (`cpekit agent simulate`): N CPE identities in one
//! process against one ACS, for ACS load tests.
//!
//! Event-driven: one thread runs every CPE of the process through one
//! `mio` poll (non-blocking sockets; the device agent itself,
//! [`crate::runner::Agent`],
//! is not involved and stays as it is). Each session is still the real
//! thing: the agent's sans-IO [`crate::session::Session`] (3.7), its SOAP
//! codec, its Inform ([`crate::session::inform_body`]), its parameter RPCs
//! ([`crate::session::ParameterHandler`]) and its HTTP Digest/Basic code
//! ([`crate::digest`]) over a small non-blocking HTTP/1.1 client
//! ([`client`]) with the rules of [`crate::http::AcsConnection`].
//!
//! * Identity i (1-based) has the serial number `<serial_number>-NNNNN`
//!   (five digits at least; Table 34 string(64) is checked); `{serial}` in
//!   `[acs] username` / `password` is replaced by it (3.4.4 suggests
//!   OUI-SERIAL user names).
//! * Memory: one shared, immutable InternetGatewayDevice tree (seeded from
//!   the config as the agent's) and per CPE ~100 bytes plus what the ACS
//!   changed (see [`model`]). A session whose ACS sends requests works on
//!   a materialised copy of the CPE's tree, folded back into its overlay.
//! * State is in memory by default; with `state_dir` (`--state-dir`) each
//!   CPE's events, bootstrap flag, retry count and overlay are written to
//!   `<dir>/sim/<serial>/` in batches with one `syncfs` per second
//!   ([`persist`]), and a later run resumes from them (1 BOOT, not
//!   0 BOOTSTRAP).
//! * Connection Requests (3.2.2): with `[agent] connection_request`, one
//!   listener for the whole process. Each CPE's ConnectionRequestURL is
//!   `http://<host>:<port>/cr/<serial>/<32 hex random>`; requests are
//!   routed by path and decided by the agent's [`crate::connreq::Policy`]
//!   (Digest against the CPE's ConnectionRequestUsername/Password, rate
//!   limits). An accepted one queues 6 CONNECTION REQUEST and a session.
//! * Start-up is spread over `ramp` (default: the periodic interval, so
//!   periodic Informs end up evenly spread over it; 10 s without one):
//!   identity k of the shard informs first at `ramp * k / N` plus a random
//!   part of one slot. Failed sessions retry with the agent's back-off
//!   ([`foundation::backoff`], A.5.3, with jitter).
//! * Sharding: `shard` I/N takes the I-th of N disjoint, contiguous ranges
//!   of identities 1..=count; each shard's JSON [`Summary`] carries its
//!   range and a latency histogram, and [`merge`] adds them up.
//!
//! * The ACS requests that need the agent's extensions (Download, Upload,
//!   Reboot, FactoryReset, ScheduleInform, GetQueuedTransfers,
//!   SetVouchers, GetOptions) give the CPE the agent's own [`Transfers`]
//!   and [`Options`] on a tree of its own, in the config's
//!   `<state_dir>/sim/<serial>/` (see [`device`]); the loop polls them
//!   between sessions like the agent's main loop.
//!
//! Not simulated: HTTPS to the ACS, the LAN server (kicks), local changes
//! and notifications of external changes.
//!
//! [`Transfers`]: crate::transfer::Transfers
//! [`Options`]: crate::options::Options

mod client;
mod device;
mod engine;
mod model;
mod persist;
mod summary;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

pub use summary::{merge, Histogram, MergeError, Summary};

use super::config::AgentConfig;

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("--count must be at least 1")]
    NoIdentities,
    #[error("serial number {0:?} is longer than 64 characters (Table 34)")]
    SerialTooLong(String),
    #[error("shard {0}: fewer identities than shards")]
    EmptyShard(Shard),
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Acs(crate::http::TransportError),
    #[error("Connection Request listener on {addr}: {source}")]
    Listen { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("state directory {path}: {source}")]
    State { path: PathBuf, source: std::io::Error },
    #[error("event loop: {0}")]
    Poll(std::io::Error),
    #[error(transparent)]
    Random(#[from] foundation::random::RandomError),
}

impl foundation::Kind for SimulateError {
    /// Options that cannot go together are a usage error (exit status 2), a
    /// configuration the simulator cannot use is malformed input (3), like
    /// the agent's; the rest is runtime.
    fn kind(&self) -> foundation::ErrorKind {
        match self {
            SimulateError::NoIdentities | SimulateError::EmptyShard(_) => foundation::ErrorKind::Usage,
            SimulateError::SerialTooLong(_) | SimulateError::Config(_) => foundation::ErrorKind::Malformed,
            _ => foundation::ErrorKind::Runtime,
        }
    }
}

/// `--shard I/N`: the I-th (1-based) of N disjoint ranges of identities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub of: usize,
}

impl Default for Shard {
    fn default() -> Shard {
        Shard { index: 1, of: 1 }
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.of)
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("{s:?}: expected I/N with 1 <= I <= N");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, of): (usize, usize) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        if index == 0 || index > of {
            return Err(bad());
        }
        Ok(Shard { index, of })
    }
}

impl Shard {
    /// Identities (1-based, inclusive) of this shard out of `count`.
    pub fn range(&self, count: usize) -> Option<(usize, usize)> {
        let lo = count * (self.index - 1) / self.of + 1;
        let hi = count * self.index / self.of;
        (lo <= hi).then_some((lo, hi))
    }
}

/// How to run the simulation.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Identities in all shards together.
    pub count: usize,
    /// Stop after this long (None: until `stop` is set).
    pub duration: Option<Duration>,
    /// Spread the start-up over this long (None: see the module docs).
    pub ramp: Option<Duration>,
    /// Period of the progress line.
    pub report_every: Duration,
    /// Persist the CPEs' state under this directory (None: in memory).
    pub state_dir: Option<PathBuf>,
    pub shard: Shard,
    /// Most sessions in flight at once (each holds one socket).
    pub max_sessions: usize,
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions { count: 1, duration: None, ramp: None, report_every: Duration::from_secs(10), state_dir: None, shard: Shard::default(), max_sessions: 1024 }
    }
}

/// The configuration of identity `i` (1-based): its serial number and
/// credentials, and `<state_dir>/sim/<serial>/` as its state directory.
pub fn identity_config(base: &AgentConfig, i: usize) -> Result<AgentConfig, SimulateError> {
    let mut cfg = base.clone();
    let serial = format!("{}-{i:05}", base.device.serial_number);
    if serial.chars().count() > 64 {
        return Err(SimulateError::SerialTooLong(serial));
    }
    cfg.acs.username = cfg.acs.username.replace("{serial}", &serial);
    cfg.acs.password = cfg.acs.password.replace("{serial}", &serial);
    cfg.agent.state_dir = base.agent.state_dir.join("sim").join(&serial);
    cfg.device.serial_number = serial;
    Ok(cfg)
}

/// The per-identity state directory root under `dir` (for tests and cleanup).
pub fn sim_dir(dir: &std::path::Path) -> PathBuf {
    dir.join("sim")
}

/// Run the simulation until `opts.duration` elapses or `stop` is set;
/// `progress` receives a summary of the last period every
/// `opts.report_every`.
pub fn run(base: &AgentConfig, opts: &SimOptions, stop: Arc<AtomicBool>, mut progress: impl FnMut(&Summary)) -> Result<Summary, SimulateError> {
    if opts.count == 0 {
        return Err(SimulateError::NoIdentities);
    }
    let (first, last) = opts.shard.range(opts.count).ok_or(SimulateError::EmptyShard(opts.shard))?;
    // The longest serial number decides.
    identity_config(base, last)?;
    let listener = match base.agent.connection_request {
        // mio listens with a backlog of 1024 (std: 128): one listener serves every CPE.
        Some(addr) => Some(mio::net::TcpListener::bind(addr).map_err(|source| SimulateError::Listen { addr, source })?),
        None => None,
    };
    let cr_prefix = match &listener {
        Some(l) => {
            let local = l.local_addr().map_err(|source| SimulateError::Listen { addr: base.agent.connection_request.expect("configured"), source })?;
            let host = base.agent.connection_request_host.clone().unwrap_or_else(|| local.ip().to_string());
            let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host };
            Some(format!("http://{host}:{}", local.port()))
        }
        None => None,
    };
    let model = model::Model::new(base, cr_prefix)?;
    let interval = model.periodic.map(|p| p.interval);
    let ramp = opts.ramp.unwrap_or_else(|| interval.map(|s| Duration::from_secs(u64::from(s))).unwrap_or(Duration::from_secs(10)));
    let rss_model_kib = engine::rss_kib();
    let mut eng = engine::Engine::new(model, opts, first, last, listener)?;
    eng.populate(ramp)?;
    if let Some(a) = eng.listener_addr() {
        tracing::info!(addr = %a, "Connection Request listener (one for all simulated CPEs)");
    }
    eng.run(&stop, &mut progress, rss_model_kib)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = r#"
[acs]
url = "http://127.0.0.1:9/acs"
username = "00D09E-{serial}"
[device]
manufacturer = "cpekit"
oui = "00D09E"
product_class = "Gateway"
serial_number = "SIM"
[agent]
state_dir = "/tmp/x"
connection_request = "127.0.0.1:17000"
periodic_inform_interval = 300
"#;

    #[test]
    fn identities_get_serials_dirs_and_credentials() {
        let base = AgentConfig::parse(CFG).unwrap();
        let c = identity_config(&base, 7).unwrap();
        assert_eq!(c.device.serial_number, "SIM-00007");
        assert_eq!(c.acs.username, "00D09E-SIM-00007");
        assert_eq!(c.agent.state_dir, PathBuf::from("/tmp/x/sim/SIM-00007"));
        assert_eq!(identity_config(&base, 123_456).unwrap().device.serial_number, "SIM-123456");
        let long = AgentConfig::parse(&CFG.replace("\"SIM\"", &format!("\"{}\"", "S".repeat(60)))).unwrap();
        assert!(matches!(identity_config(&long, 1), Err(SimulateError::SerialTooLong(_))));
    }

    #[test]
    fn shards_are_disjoint_and_cover_everything() {
        assert_eq!("2/3".parse::<Shard>().unwrap(), Shard { index: 2, of: 3 });
        for bad in ["0/3", "4/3", "x/2", "1", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        for (count, of) in [(10usize, 3usize), (100_000, 7), (5, 5), (1, 1)] {
            let mut next = 1;
            for index in 1..=of {
                let (lo, hi) = Shard { index, of }.range(count).unwrap();
                assert_eq!(lo, next);
                next = hi + 1;
            }
            assert_eq!(next, count + 1);
        }
        assert_eq!(Shard { index: 1, of: 3 }.range(2), None);
    }

    #[test]
    fn model_identity_values_inform_and_overlay() {
        let base = AgentConfig::parse(CFG).unwrap();
        let m = model::Model::new(&base, Some("http://192.0.2.1:7547".into())).unwrap();
        assert_eq!(m.identity_of("SIM-00042"), Some(42));
        assert_eq!(m.identity_of("SIM-123456"), Some(123_456));
        for bad in ["SIM-0042", "SIM-00000", "SIM-012345", "SIX-00042", "SIM-00042x", "SIM00042"] {
            assert_eq!(m.identity_of(bad), None, "{bad}");
        }
        let mut cpe = model::Cpe { secret: [0xab; 16], ..Default::default() };
        let url = format!("http://192.0.2.1:7547/cr/SIM-00042/{}", "ab".repeat(16));
        assert_eq!(m.value(42, &cpe, model::CR_URL).unwrap(), url);
        assert_eq!(m.acs_credentials(42, &cpe).0, "00D09E-SIM-00042");
        assert_eq!(m.periodic.unwrap().interval, 300);
        // The Inform carries the identity's values (Table 33).
        let inform = m.inform(42, &cpe, vec![], "2026-01-01T00:00:00Z".into());
        let xml = crate::soap::to_xml(Some("1"), false, &inform);
        assert!(xml.contains("<SerialNumber>SIM-00042</SerialNumber>") && xml.contains(&url), "{xml}");
        // An ACS change becomes a values overlay, read back by `value`;
        // the identity's own values are not part of it.
        let mut tree = m.materialise(42, &cpe.secret, None);
        assert_eq!(tree.values.get(model::SERIAL).unwrap(), "SIM-00042");
        tree.values.insert(model::CR_USERNAME.into(), "acs".into());
        tree.values.insert("InternetGatewayDevice.ManagementServer.PeriodicInformInterval".into(), "60".into());
        let Some(model::Overlay::Values(v)) = m.overlay_of(42, &cpe, tree) else { panic!("values overlay") };
        assert_eq!(v.len(), 2, "{v:?}");
        cpe.extra().overlay = Some(model::Overlay::Values(v));
        assert_eq!(m.cr_credentials(42, &cpe).0, "acs");
        assert_eq!(m.cpe_periodic(42, &cpe).unwrap().interval, 60);
        assert_eq!(m.materialise(42, &cpe.secret, cpe.overlay()).values.get(model::CR_USERNAME).unwrap(), "acs");
        // A new object: the whole tree.
        let mut tree = m.materialise(42, &cpe.secret, cpe.overlay());
        tree.objects.insert("InternetGatewayDevice.X.".into());
        assert!(matches!(m.overlay_of(42, &cpe, tree), Some(model::Overlay::Tree(_))));
        // Unchanged: no overlay.
        let tree = m.materialise(7, &[1; 16], None);
        assert!(m.overlay_of(7, &model::Cpe { secret: [1; 16], ..Default::default() }, tree).is_none());
    }

    #[test]
    fn events_follow_table35() {
        let mut c = model::Cpe::default();
        c.add_event("1 BOOT", "");
        c.add_event("0 BOOTSTRAP", "");
        c.add_event("M Reboot", "k");
        c.add_event("M Reboot", "k");
        let sent = c.pending();
        assert_eq!(sent.iter().map(|e| e.code.as_str()).collect::<Vec<_>>(), ["0 BOOTSTRAP", "1 BOOT", "M Reboot"]);
        c.add_event("6 CONNECTION REQUEST", "");
        c.delivered(&sent);
        assert!(c.bootstrapped);
        assert_eq!(c.pending().len(), 1);
    }
}
