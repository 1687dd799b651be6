//! Simulator mode (`cpekit agent simulate`): N independent CPE identities
//! in one process against one ACS, for ACS load testing.
//!
//! Each identity is a full [`Agent`] (the real session code, persistence,
//! back-off, periodic Informs) with:
//! * serial number `<serial_number>-NNNNN` (1-based, five digits; Table 34
//!   string(64) is checked), the rest of `[device]` unchanged; `{serial}`
//!   in `[acs] username` / `password` is replaced by the identity's serial
//!   (3.4.4 suggests OUI-SERIAL user names);
//! * its own state directory `<state_dir>/sim/<serial>/`;
//! * a Connection Request server only if `[agent] connection_request` is
//!   configured: identity i listens on port+i-1 (port 0 stays 0: any port);
//! * periodic Informs per `[agent] periodic_inform_interval`;
//! * `poll_interval_ms` defaults to 30 s here (how often a simulated
//!   device looks for local changes; sessions and periodic Informs are
//!   timed exactly regardless).
//!
//! Start-up is staggered over `ramp` (default: the periodic interval, so
//! periodic Informs end up evenly spread over it; 10 s without one):
//! identity i starts at `ramp * i / N` plus a random jitter of up to one
//! slot, so N agents never stampede the ACS (the same reason A.5.3 adds
//! randomness to retries).
//!
//! One thread per identity (each sleeps in `recv_timeout` between
//! sessions; 512 KiB stacks, mostly untouched): ~100 KiB RSS and, at a
//! 10 s periodic interval, ~1 % of a core per 100 identities; 10 000
//! identities were sustained on the 2-core build machine (see
//! `scripts/bench-simulate`, docs/benchmarks.md). Each thread costs a few
//! memory maps: past ~18 000 identities Linux's default
//! `vm.max_map_count` (65 530) refuses new threads; those identities are
//! counted as start failures.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use foundation::random::{self, RandomError};
use serde::Serialize;
use tracing::warn;

use super::config::AgentConfig;
use super::runner::{Agent, SessionOutcome, Trigger};

/// Stack of each identity's thread (sessions need far less; most of it is
/// never touched, so it costs address space, not memory).
const STACK_SIZE: usize = 512 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("--count must be at least 1")]
    NoIdentities,
    #[error("serial number {0:?} is longer than 64 characters (Table 34)")]
    SerialTooLong(String),
    #[error("Connection Request port {base}+{count} exceeds 65535")]
    PortRange { base: u16, count: usize },
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// How to run the simulation.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub count: usize,
    /// Stop after this long (None: until `stop` is set).
    pub duration: Option<Duration>,
    /// Spread the start-up over this long (None: see the module docs).
    pub ramp: Option<Duration>,
    /// Period of the progress line.
    pub report_every: Duration,
}

/// The final (or a periodic) summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub identities: usize,
    /// Identities whose agent started (state loaded, servers bound).
    pub started: usize,
    pub start_failures: usize,
    pub sessions_ok: u64,
    pub sessions_failed: u64,
    /// Sessions whose Inform was acknowledged.
    pub informs: u64,
    /// Of those, 2 PERIODIC Informs.
    pub periodic_informs: u64,
    /// Periodic Informs started more than 1 s after they were due (the
    /// previous Inform plus PeriodicInformInterval).
    pub periodic_late: u64,
    /// Periodic Informs that were due before the end of the run, counted
    /// from each identity's first acknowledged Inform (0 without a
    /// periodic interval).
    pub periodic_expected: u64,
    /// Informs a CPE starting exactly on its planned start-up slot would
    /// have made by the end of the run: its BOOTSTRAP (or BOOT) Inform plus
    /// one per PeriodicInformInterval after it. A slow start-up shows here.
    pub informs_expected: u64,
    pub periodic_interval_s: Option<u32>,
    pub elapsed_s: f64,
    pub informs_per_s: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_max_ms: f64,
    /// CPU time of the whole process (user + system) and its share of one core.
    pub cpu_s: f64,
    pub cpu_percent: f64,
    pub max_rss_kib: u64,
}

impl Summary {
    /// One line for stderr.
    pub fn line(&self) -> String {
        format!(
            "sim: {}/{} up ({} failed to start) | sessions ok {} failed {} | informs {} ({:.1}/s) periodic {}{} late {} | latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms | cpu {:.0}% rss {} MiB",
            self.started,
            self.identities,
            self.start_failures,
            self.sessions_ok,
            self.sessions_failed,
            self.informs,
            self.informs_per_s,
            self.periodic_informs,
            if self.periodic_expected > 0 { format!("/{} due", self.periodic_expected) } else { String::new() },
            self.periodic_late,
            self.latency_p50_ms,
            self.latency_p99_ms,
            self.latency_max_ms,
            self.cpu_percent,
            self.max_rss_kib / 1024
        )
    }
}

#[derive(Default)]
struct Counters {
    ok: u64,
    failed: u64,
    informs: u64,
    periodic: u64,
    periodic_late: u64,
    latencies_us: Vec<u32>,
}

#[derive(Default)]
struct Shared {
    total: Counters,
    window: Counters,
    started: usize,
    start_failures: usize,
    /// Each identity's first acknowledged Inform.
    first_inform: Vec<Option<Instant>>,
    /// The end of the measured run: sessions begun later (while the
    /// agents are being stopped) are not counted.
    stopped_at: Option<Instant>,
}

fn lock(s: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i.min(sorted.len() - 1)]) / 1000.0
}

/// Process CPU seconds (user + system) and peak RSS in KiB.
fn rusage() -> (f64, u64) {
    // SAFETY: getrusage writes into the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (0.0, 0);
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (tv(ru.ru_utime) + tv(ru.ru_stime), ru.ru_maxrss.max(0) as u64)
}

/// The configuration of identity `i` (1-based).
pub fn identity_config(base: &AgentConfig, i: usize) -> Result<AgentConfig, SimulateError> {
    let mut cfg = base.clone();
    let serial = format!("{}-{i:05}", base.device.serial_number);
    if serial.chars().count() > 64 {
        return Err(SimulateError::SerialTooLong(serial));
    }
    cfg.acs.username = cfg.acs.username.replace("{serial}", &serial);
    cfg.acs.password = cfg.acs.password.replace("{serial}", &serial);
    cfg.agent.state_dir = base.agent.state_dir.join("sim").join(&serial);
    if let Some(addr) = cfg.agent.connection_request.as_mut() {
        if addr.port() != 0 {
            let port = usize::from(addr.port()) + i - 1;
            let port = u16::try_from(port).map_err(|_| SimulateError::PortRange { base: addr.port(), count: i })?;
            addr.set_port(port);
        }
    }
    if cfg.agent.poll_interval_ms.is_none() {
        cfg.agent.poll_interval_ms = Some(30_000);
    }
    cfg.device.serial_number = serial;
    Ok(cfg)
}

/// The per-identity state directory root (for tests and cleanup).
pub fn sim_dir(base: &AgentConfig) -> PathBuf {
    base.agent.state_dir.join("sim")
}

/// Run the simulation until `opts.duration` elapses or `stop` is set;
/// `progress` receives a summary every `opts.report_every`.
pub fn run(base: &AgentConfig, opts: &SimOptions, stop: Arc<AtomicBool>, mut progress: impl FnMut(&Summary)) -> Result<Summary, SimulateError> {
    let n = opts.count;
    if n == 0 {
        return Err(SimulateError::NoIdentities);
    }
    // Check every identity up front (serial length, ports).
    let configs: Vec<AgentConfig> = (1..=n).map(|i| identity_config(base, i)).collect::<Result<_, _>>()?;
    let interval = base.agent.periodic_inform_interval.filter(|&s| s > 0);
    let ramp = opts.ramp.unwrap_or_else(|| interval.map(|s| Duration::from_secs(u64::from(s))).unwrap_or(Duration::from_secs(10)));
    let slot = ramp.as_secs_f64() / n as f64;
    let shared = Arc::new(Mutex::new(Shared { first_inform: vec![None; n], ..Default::default() }));
    let senders: Arc<Mutex<Vec<Sender<Trigger>>>> = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let t0 = Instant::now();
    let deadline = opts.duration.map(|d| t0 + d);
    let mut handles = Vec::with_capacity(n);
    let mut next_report = t0 + opts.report_every;
    let mut window_start = t0;
    let cpu0 = rusage().0;
    // Identity i's start: its slot plus a random part of one slot.
    let starts: Vec<Instant> = (0..n).map(|i| Ok(t0 + Duration::from_secs_f64(slot * (i as f64 + random::unit()?)))).collect::<Result<_, RandomError>>()?;
    let planned = starts.clone();
    let mut configs = configs.into_iter().enumerate().map(|(i, c)| (i, starts[i], c)).peekable();

    let summarize = |shared: &Arc<Mutex<Shared>>, window: bool, since: Instant, end: Instant| -> Summary {
        let mut g = lock(shared);
        let elapsed = end.duration_since(since).as_secs_f64().max(1e-9);
        let periodic_expected = match interval {
            Some(iv) => g.first_inform.iter().flatten().map(|f| (end.saturating_duration_since(*f).as_secs_f64() / f64::from(iv)).floor() as u64).sum(),
            None => 0,
        };
        let (started, start_failures) = (g.started, g.start_failures);
        let informs_expected: u64 = planned
            .iter()
            .filter(|s| **s <= end)
            .map(|s| 1 + interval.map_or(0, |iv| (end.duration_since(*s).as_secs_f64() / f64::from(iv)).floor() as u64))
            .sum();
        let c = if window { std::mem::take(&mut g.window) } else { std::mem::take(&mut g.total) };
        drop(g);
        let mut lat = c.latencies_us;
        lat.sort_unstable();
        let (cpu, rss) = rusage();
        let run_s = end.duration_since(t0).as_secs_f64().max(1e-9);
        Summary {
            identities: n,
            started,
            start_failures,
            sessions_ok: c.ok,
            sessions_failed: c.failed,
            informs: c.informs,
            periodic_informs: c.periodic,
            periodic_late: c.periodic_late,
            periodic_expected: if window { 0 } else { periodic_expected },
            informs_expected: if window { 0 } else { informs_expected },
            periodic_interval_s: interval,
            elapsed_s: elapsed,
            informs_per_s: c.informs as f64 / elapsed,
            latency_p50_ms: percentile(&lat, 0.50),
            latency_p99_ms: percentile(&lat, 0.99),
            latency_max_ms: lat.last().map(|&u| f64::from(u) / 1000.0).unwrap_or(0.0),
            cpu_s: cpu - cpu0,
            cpu_percent: 100.0 * (cpu - cpu0) / run_s,
            max_rss_kib: rss,
        }
    };

    loop {
        let now = Instant::now();
        if stop.load(Ordering::SeqCst) || deadline.is_some_and(|d| now >= d) {
            break;
        }
        // Start the identities whose slot has come.
        while let Some((_, due, _)) = configs.peek() {
            if *due > now {
                break;
            }
            let (idx, _, cfg) = configs.next().expect("peeked");
            let serial = cfg.device.serial_number.clone();
            let (sh, senders, stop) = (shared.clone(), senders.clone(), stop.clone());
            match std::thread::Builder::new()
                .name(format!("sim-{}", idx + 1))
                .stack_size(STACK_SIZE)
                .spawn(move || identity(idx, cfg, interval, sh, senders, stop))
            {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // E.g. vm.max_map_count or the thread limit: counted, reported once.
                    let mut g = lock(&shared);
                    if g.start_failures == 0 {
                        warn!(%serial, error = %e, "cannot start a thread for a simulated CPE (thread or memory-map limit?)");
                    }
                    g.start_failures += 1;
                }
            }
        }
        if now >= next_report {
            let mut s = summarize(&shared, true, window_start, now);
            // The progress line shows running totals of identities, window rates.
            s.elapsed_s = now.duration_since(window_start).as_secs_f64();
            progress(&s);
            window_start = now;
            next_report = now + opts.report_every;
        }
        let mut wait = next_report.saturating_duration_since(now).min(Duration::from_millis(100));
        if let Some((_, due, _)) = configs.peek() {
            wait = wait.min(due.saturating_duration_since(now));
        }
        std::thread::sleep(wait.max(Duration::from_millis(1)));
    }
    // Stop every agent (each finishes its current session first).
    let end = Instant::now();
    lock(&shared).stopped_at = Some(end);
    stop.store(true, Ordering::SeqCst);
    for tx in senders.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = tx.send(Trigger::Stop);
    }
    for h in handles {
        let _ = h.join();
    }
    Ok(summarize(&shared, false, t0, end))
}

/// One identity's thread: start its agent and run it until stopped.
fn identity(idx: usize, cfg: AgentConfig, interval: Option<u32>, shared: Arc<Mutex<Shared>>, senders: Arc<Mutex<Vec<Sender<Trigger>>>>, stop: Arc<AtomicBool>) {
    let serial = cfg.device.serial_number.clone();
    let mut agent = match Agent::new(cfg) {
        Ok(a) => a,
        Err(e) => {
            warn!(%serial, error = %foundation::error_kind::chain(&e), "simulated CPE failed to start");
            lock(&shared).start_failures += 1;
            return;
        }
    };
    senders.lock().unwrap_or_else(|e| e.into_inner()).push(agent.trigger_sender());
    // Registered before looking at the flag: either the flag is seen here
    // or the Stop trigger arrives (see `run`).
    if stop.load(Ordering::SeqCst) {
        return;
    }
    lock(&shared).started += 1;
    let mut last_inform: Option<Instant> = None;
    let obs_shared = shared.clone();
    agent.set_session_observer(Box::new(move |o: &SessionOutcome| {
        let end = Instant::now();
        let began = end - o.elapsed;
        let periodic = o.events.iter().any(|e| e == "2 PERIODIC");
        // Due: the previous acknowledged Inform plus PeriodicInformInterval.
        let late = match (periodic, interval, last_inform) {
            (true, Some(iv), Some(prev)) => began.saturating_duration_since(prev + Duration::from_secs(u64::from(iv))) > Duration::from_secs(1),
            _ => false,
        };
        let mut guard = lock(&obs_shared);
        if guard.stopped_at.is_some_and(|t| began >= t) {
            return;
        }
        let g = &mut *guard;
        if g.first_inform[idx].is_none() {
            g.first_inform[idx] = o.acknowledged_at;
        }
        let us = u32::try_from(o.elapsed.as_micros()).unwrap_or(u32::MAX);
        for c in [&mut g.total, &mut g.window] {
            if o.ok {
                c.ok += 1;
            } else {
                c.failed += 1;
            }
            if o.informed {
                c.informs += 1;
                if periodic {
                    c.periodic += 1;
                    c.periodic_late += u64::from(late);
                }
            }
            c.latencies_us.push(us);
        }
        drop(guard);
        if o.acknowledged_at.is_some() {
            last_inform = o.acknowledged_at;
        }
    }));
    if let Err(e) = agent.run(false, 1) {
        warn!(%serial, error = %foundation::error_kind::chain(&e), "simulated CPE stopped");
    }
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
"#;

    #[test]
    fn identities_get_serials_dirs_ports_and_credentials() {
        let base = AgentConfig::parse(CFG).unwrap();
        let c = identity_config(&base, 7).unwrap();
        assert_eq!(c.device.serial_number, "SIM-00007");
        assert_eq!(c.acs.username, "00D09E-SIM-00007");
        assert_eq!(c.agent.state_dir, PathBuf::from("/tmp/x/sim/SIM-00007"));
        assert_eq!(c.agent.connection_request.unwrap().port(), 17006);
        assert_eq!(c.poll_interval(), Duration::from_secs(30));
        let any = AgentConfig::parse(&CFG.replace(":17000", ":0")).unwrap();
        assert_eq!(identity_config(&any, 9).unwrap().agent.connection_request.unwrap().port(), 0);
        let high = AgentConfig::parse(&CFG.replace(":17000", ":65535")).unwrap();
        assert!(matches!(identity_config(&high, 2), Err(SimulateError::PortRange { .. })));
        let long = AgentConfig::parse(&CFG.replace("\"SIM\"", &format!("\"{}\"", "S".repeat(60)))).unwrap();
        assert!(matches!(identity_config(&long, 1), Err(SimulateError::SerialTooLong(_))));
    }

    #[test]
    fn percentiles() {
        let v: Vec<u32> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.99), 0.0);
    }
}
