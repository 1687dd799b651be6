//! The simulator's event loop: one thread, one `mio` poll, every CPE of
//! the shard. Timers live in one binary heap (one live entry per CPE);
//! sessions in flight and Connection Request connections in slabs.

use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use foundation::{backoff, clock, random};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use tracing::{debug, warn};

use crate::connreq::{self, Policy, Reply};
use crate::digest;
use crate::http::TransportError;
use crate::http_head::{parse_head, HeadError, RequestHead, MAX_HEAD_LEN};
use crate::runner;
use crate::session::{Session, State};
use crate::soap::Event;

use super::client::{Connection, Exchange, Io, Next, Target};
use super::model::{self, Cpe, Model, EV_BOOT, EV_BOOTSTRAP, EV_CONNECTION_REQUEST, EV_PERIODIC};
use super::persist::{self, SavedCpe, Writer};
use super::summary::{Histogram, Summary};
use super::{SimOptions, SimulateError};

const LISTENER: Token = Token(usize::MAX - 1);
/// Tokens of Connection Request connections start here.
const CR_BASE: usize = 1 << 40;
/// Most simultaneous Connection Request connections; more get 503.
const MAX_CR_CONNECTIONS: usize = 512;
/// Most requests on one Connection Request connection.
const MAX_CR_REQUESTS: u32 = 8;
/// A Connection Request connection idle (or trickling) this long is closed.
const CR_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the state of changed CPEs goes to disk with `--state-dir`.
const PERSIST_EVERY: Duration = Duration::from_secs(1);
/// Periodic Informs started later than this after they were due are late.
const LATE_MS: u64 = 1000;
const NEVER: u64 = u64::MAX;

/// One session in flight.
struct Active {
    local: u32,
    session: Session<model::SimHandler>,
    http: Exchange,
    conn: Option<Connection>,
    started: Instant,
    sent: Vec<Event>,
    periodic: bool,
    late: bool,
    acknowledged: Option<Instant>,
    deadline: Instant,
    /// The ACS URL this session used.
    url: Option<String>,
    /// A reused connection closed before answering was retried once.
    resent: bool,
}

struct CrConn {
    stream: TcpStream,
    /// The client's address (the Policy's per-source limits).
    peer: IpAddr,
    buf: Vec<u8>,
    out: Vec<u8>,
    written: usize,
    served: u32,
    deadline: Instant,
    closing: bool,
}

#[derive(Default)]
struct Counters {
    ok: u64,
    failed: u64,
    informs: u64,
    periodic: u64,
    periodic_late: u64,
    connection_requests: u64,
    latency: Histogram,
    max_us: u64,
}

impl Counters {
    fn take(&mut self) -> Counters {
        std::mem::take(self)
    }
}

pub struct Engine<'a> {
    model: Rc<Model>,
    opts: &'a SimOptions,
    /// Identity (1-based) of local CPE 0.
    first: usize,
    cpes: Vec<Cpe>,
    /// Planned start of each CPE (ms since t0).
    planned_ms: Vec<u64>,
    heap: BinaryHeap<std::cmp::Reverse<(u64, u32)>>,
    ready: VecDeque<u32>,
    active: Vec<Option<Active>>,
    active_free: Vec<usize>,
    n_active: usize,
    cr: Vec<Option<CrConn>>,
    cr_free: Vec<usize>,
    n_cr: usize,
    listener: Option<TcpListener>,
    poll: Poll,
    t0: Instant,
    total: Counters,
    window: Counters,
    timeout: Duration,
    dirty: Vec<u32>,
    is_dirty: Vec<bool>,
    writer: Option<Writer>,
    state_dir: Option<PathBuf>,
    start_failures: usize,
    now_text: (u64, String),
    /// Process CPU seconds at the start of the current progress window.
    window_cpu: f64,
    /// CPEs with the agent's extensions (polled between their sessions).
    devices: Vec<u32>,
    /// `--max-sessions`, within the open-file limit.
    max_sessions: usize,
}

fn ms_since(t0: Instant, t: Instant) -> u64 {
    t.saturating_duration_since(t0).as_millis() as u64
}

/// A deterministic per-CPE number in [0, 1) (start-up jitter).
fn unit(seed: u64, i: u64) -> f64 {
    let mut z = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Current resident memory (KiB) from /proc/self/statm.
pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    pages * page / 1024
}

/// Process CPU seconds (user + system) and peak RSS in KiB.
pub fn rusage() -> (f64, u64) {
    // SAFETY: getrusage writes into the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (0.0, 0);
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (tv(ru.ru_utime) + tv(ru.ru_stime), ru.ru_maxrss.max(0) as u64)
}

/// Sessions in flight within the open-file limit: the soft limit is
/// raised to the hard one (often 1,024 of 4,096+); room is kept for the
/// Connection Request connections, the poll and the state files.
fn max_sessions(wanted: usize) -> usize {
    // SAFETY: getrlimit/setrlimit on a struct we own.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return wanted.max(1);
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    let room = (lim.rlim_cur as usize).saturating_sub(MAX_CR_CONNECTIONS + 64).max(1);
    if wanted > room {
        warn!(wanted, allowed = room, "--max-sessions lowered to the open-file limit");
    }
    wanted.clamp(1, room)
}

fn reply(status: u16, close: bool) -> Reply {
    Reply { status, www_authenticate: None, allow_get: false, retry_after: None, accepted: false, close }
}

impl<'a> Engine<'a> {
    pub fn new(model: Model, opts: &'a SimOptions, first: usize, last: usize, listener: Option<TcpListener>) -> Result<Engine<'a>, SimulateError> {
        let poll = Poll::new().map_err(SimulateError::Poll)?;
        let listener = match listener {
            Some(mut l) => {
                poll.registry().register(&mut l, LISTENER, Interest::READABLE).map_err(SimulateError::Poll)?;
                Some(l)
            }
            None => None,
        };
        let n = last + 1 - first;
        let timeout = model.cfg.response_timeout();
        let writer = match &opts.state_dir {
            Some(d) => Some(Writer::start(d.clone()).map_err(|source| SimulateError::State { path: d.clone(), source })?),
            None => None,
        };
        Ok(Engine {
            model: Rc::new(model),
            opts,
            first,
            cpes: Vec::with_capacity(n),
            planned_ms: Vec::with_capacity(n),
            heap: BinaryHeap::with_capacity(n),
            ready: VecDeque::new(),
            active: Vec::new(),
            active_free: Vec::new(),
            n_active: 0,
            cr: Vec::new(),
            cr_free: Vec::new(),
            n_cr: 0,
            listener,
            poll,
            t0: Instant::now(),
            total: Counters::default(),
            window: Counters::default(),
            timeout,
            dirty: Vec::new(),
            is_dirty: vec![false; n],
            writer,
            state_dir: opts.state_dir.clone(),
            start_failures: 0,
            now_text: (NEVER, String::new()),
            window_cpu: 0.0,
            devices: Vec::new(),
            max_sessions: max_sessions(opts.max_sessions),
        })
    }

    fn id(&self, local: u32) -> usize {
        self.first + local as usize
    }

    /// Set up every CPE: persisted state (with `--state-dir`), start-up
    /// events (Table 35) and the start-up slot within the ramp.
    pub fn populate(&mut self, ramp: Duration) -> Result<(), SimulateError> {
        let n = self.is_dirty.len();
        // Spreads the start-up slots only; each CPE's secret below is drawn on its own.
        let seed = random::u64()?;
        let slot_ms = ramp.as_secs_f64() * 1000.0 / n as f64;
        for k in 0..n {
            let id = self.first + k;
            let mut cpe = Cpe { periodic_ms: NEVER, wake_ms: NEVER, first_ack_ms: NEVER, periodic_due_ms: NEVER, ..Cpe::default() };
            random::fill(&mut cpe.secret)?;
            let mut first_start = true;
            if let Some(dir) = &self.state_dir {
                match persist::load(dir, &self.model.serial(id)) {
                    Ok((saved, params)) => {
                        if let Some(p) = params {
                            cpe.extra().overlay = self.model.loaded_overlay(p);
                        }
                        if let Some(s) = saved {
                            first_start = false;
                            self.restore(&mut cpe, id, s);
                        }
                    }
                    Err(e) => {
                        warn!(serial = %self.model.serial(id), error = %foundation::error_kind::chain(&e), "simulated CPE state unreadable: starting afresh");
                        self.start_failures += 1;
                    }
                }
            }
            // Table 35: first contact is a bootstrap; a restart a boot.
            cpe.events |= if first_start { EV_BOOTSTRAP } else { EV_BOOT };
            let planned = (slot_ms * (k as f64 + unit(seed, id as u64))) as u64;
            cpe.not_before_ms = planned;
            self.planned_ms.push(planned);
            self.cpes.push(cpe);
            self.reschedule(k as u32);
        }
        if self.cpes.last().is_some_and(|c| c.extra.is_none()) {
            self.cpes.shrink_to_fit();
        }
        Ok(())
    }

    fn restore(&self, cpe: &mut Cpe, id: usize, s: SavedCpe) {
        cpe.bootstrapped = s.bootstrapped;
        cpe.retry_count = s.retry_count;
        if let Ok(b) = hex::decode(&s.cr_secret) {
            if let Ok(secret) = <[u8; 16]>::try_from(b.as_slice()) {
                cpe.secret = secret;
            }
        }
        for e in &s.pending_events {
            cpe.add_event(&e.code, &e.command_key);
        }
        let url = self.model.changed_acs_url(id, cpe).unwrap_or_else(|| self.model.cfg.acs.url.clone());
        if !s.bootstrapped || s.acs_url != url {
            cpe.events |= EV_BOOTSTRAP;
        }
    }

    /// Put the CPE's next wake-up in the heap (first start, periodic
    /// Inform, retry after back-off).
    fn reschedule(&mut self, local: u32) {
        let c = &mut self.cpes[local as usize];
        if c.in_session || c.queued {
            return;
        }
        let mut w = c.periodic_ms;
        if c.has_events() {
            w = w.min(c.not_before_ms);
        }
        if w != c.wake_ms {
            c.wake_ms = w;
            if w != NEVER {
                self.heap.push(std::cmp::Reverse((w, local)));
            }
        }
    }

    fn mark_dirty(&mut self, local: u32) {
        if self.writer.is_some() && !self.is_dirty[local as usize] {
            self.is_dirty[local as usize] = true;
            self.dirty.push(local);
        }
    }

    fn persist(&mut self, wait: bool) {
        let Some(dir) = self.state_dir.clone() else { return };
        match &self.writer {
            Some(w) if wait || w.ready() => {}
            _ => return,
        }
        let mut batch = Vec::with_capacity(self.dirty.len() * 2);
        for local in std::mem::take(&mut self.dirty) {
            self.is_dirty[local as usize] = false;
            let id = self.id(local);
            let c = &self.cpes[local as usize];
            let d = persist::cpe_dir(&dir, &self.model.serial(id));
            let saved = SavedCpe {
                bootstrapped: c.bootstrapped,
                acs_url: self.model.changed_acs_url(id, c).unwrap_or_else(|| self.model.cfg.acs.url.clone()),
                pending_events: c.pending(),
                retry_count: c.retry_count,
                cr_secret: hex::encode(c.secret),
            };
            if let Ok(b) = serde_json::to_vec(&saved) {
                batch.push((d.join("agent.json"), b));
            }
            let params = c.overlay().map(Model::saved_overlay).unwrap_or_else(|| model::SavedParameters::Overlay(Default::default()));
            if let Ok(b) = serde_json::to_vec(&params) {
                batch.push((d.join("parameters.json"), b));
            }
        }
        if let Some(w) = &self.writer {
            w.send(batch);
        }
    }

    fn current_time(&mut self) -> String {
        let s = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        if self.now_text.0 != s {
            self.now_text = (s, clock::now_rfc3339());
        }
        self.now_text.1.clone()
    }

    /// Pop due timers: raise periodic events, queue sessions.
    fn fire_timers(&mut self, now_ms: u64) {
        while let Some(&std::cmp::Reverse((w, local))) = self.heap.peek() {
            if w > now_ms {
                break;
            }
            self.heap.pop();
            let id = self.id(local);
            let model = self.model.clone();
            let c = &mut self.cpes[local as usize];
            if c.wake_ms != w {
                continue; // superseded
            }
            c.wake_ms = NEVER;
            if c.periodic_ms <= now_ms {
                if c.events & EV_PERIODIC == 0 {
                    c.periodic_due_ms = c.periodic_ms;
                }
                c.events |= EV_PERIODIC;
                // As the agent: the next one an interval later (an
                // acknowledged Inform reschedules it from then).
                c.periodic_ms = model.cpe_periodic(id, c).map_or(NEVER, |p| now_ms + u64::from(p.interval) * 1000);
            }
            if c.has_events() && c.not_before_ms <= now_ms && !c.in_session {
                c.queued = true;
                self.ready.push_back(local);
            } else {
                self.reschedule(local);
            }
        }
    }

    fn start_ready(&mut self) {
        while self.n_active < self.max_sessions {
            let Some(local) = self.ready.pop_front() else { break };
            self.cpes[local as usize].queued = false;
            if self.cpes[local as usize].in_session || !self.cpes[local as usize].has_events() {
                self.reschedule(local);
                continue;
            }
            self.start_session(local);
        }
    }

    fn start_session(&mut self, local: u32) {
        let id = self.id(local);
        let model = self.model.clone();
        let now = Instant::now();
        let now_ms = ms_since(self.t0, now);
        let current_time = self.current_time();
        let c = &mut self.cpes[local as usize];
        c.in_session = true;
        c.take_device_events();
        let mut device = c.extra.as_mut().and_then(|x| x.device.take());
        // A.3.3.2: unacknowledged TransferCompletes go out in every session.
        let requests = device.as_mut().map(|d| d.transfers.requests()).unwrap_or_default();
        let sent = c.pending();
        let periodic = c.events & EV_PERIODIC != 0;
        let late = periodic && c.periodic_due_ms != NEVER && now_ms.saturating_sub(c.periodic_due_ms) > LATE_MS;
        let inform = model.inform(id, c, sent.clone(), current_time);
        let url = model.changed_acs_url(id, c);
        let (user, pass) = model.acs_credentials(id, c);
        let handler = model::SimHandler::new(model.clone(), id, c, device);
        let mut session = Session::new(inform, requests, handler);
        let target = match &url {
            Some(u) => Target::parse(u),
            None => Ok(model.target.clone()),
        };
        let slot = self.active_free.pop().unwrap_or_else(|| {
            self.active.push(None);
            self.active.len() - 1
        });
        self.n_active += 1;
        let target = match target {
            Ok(t) => t,
            Err(e) => {
                let http = Exchange::new(model.target.clone(), user, pass);
                self.active[slot] = Some(Active {
                    local,
                    session,
                    http,
                    conn: None,
                    started: now,
                    sent,
                    periodic,
                    late,
                    acknowledged: None,
                    deadline: now,
                    url,
                    resent: false,
                });
                return self.finish(slot, Err(e.to_string()));
            }
        };
        let mut http = Exchange::new(target, user, pass);
        let post = session.next_post().unwrap_or_default();
        http.begin(post);
        self.active[slot] = Some(Active {
            local,
            session,
            http,
            conn: None,
            started: now,
            sent,
            periodic,
            late,
            acknowledged: None,
            deadline: now + self.timeout,
            url,
            resent: false,
        });
        if let Err(e) = self.connect(slot) {
            self.finish(slot, Err(e));
        }
    }

    /// (Re)connect the session's connection and queue the request in flight.
    fn connect(&mut self, slot: usize) -> Result<(), String> {
        let a = self.active[slot].as_mut().expect("active slot");
        // Closing a socket takes it out of the poll (no deregister call).
        drop(a.conn.take());
        let addr = a.http.target().addr;
        let connect_err = |e: io::Error| TransportError::Connect { url: addr.to_string(), message: e.to_string() }.to_string();
        let mut conn = Connection::connect(addr).map_err(connect_err)?;
        self.poll.registry().register(&mut conn.stream, Token(slot), Interest::READABLE | Interest::WRITABLE).map_err(|e| e.to_string())?;
        conn.send(a.http.request().map_err(|e| e.to_string())?);
        // Usually connected already (loopback, LAN): send without waiting
        // for the writable event.
        conn.flush().map_err(connect_err)?;
        a.conn = Some(conn);
        Ok(())
    }

    fn session_event(&mut self, slot: usize) {
        match self.advance(slot) {
            Ok(true) => self.finish(slot, Ok(())),
            Ok(false) => {}
            Err(e) => self.finish(slot, Err(e)),
        }
    }

    /// Drive one session on a readiness event. Ok(true): it is over.
    fn advance(&mut self, slot: usize) -> Result<bool, String> {
        loop {
            let Some(a) = self.active[slot].as_mut() else { return Ok(false) };
            let Some(conn) = a.conn.as_mut() else { return Ok(false) };
            let reused = conn.answered > 0;
            if let Err(e) = conn.flush() {
                if reused && !a.resent {
                    // The ACS closed the kept-alive connection: once more on a new one.
                    a.resent = true;
                    self.connect(slot)?;
                    continue;
                }
                return Err(TransportError::Connect { url: a.http.target().addr.to_string(), message: e.to_string() }.to_string());
            }
            let io = match conn.read() {
                Ok(io) => io,
                Err(e) => {
                    if reused && !a.resent && conn.nothing_received() {
                        a.resent = true;
                        self.connect(slot)?;
                        continue;
                    }
                    return Err(e.to_string());
                }
            };
            let Io::Response(resp) = io else { return Ok(false) };
            let close = resp.close;
            a.resent = false;
            match a.http.on_response(resp).map_err(|e| e.to_string())? {
                Next::Retry { reconnect } => {
                    a.deadline = Instant::now() + self.timeout;
                    if reconnect || close {
                        self.connect(slot)?;
                    } else {
                        let req = a.http.request().map_err(|e| e.to_string())?;
                        conn_of(a).send(req);
                    }
                    continue;
                }
                Next::Done(body) => {
                    a.session.on_response(&body).map_err(|e| e.to_string())?;
                    if a.acknowledged.is_none() && a.session.inform_acknowledged() {
                        a.acknowledged = Some(Instant::now());
                    }
                    if *a.session.state() == State::Done {
                        return Ok(true);
                    }
                    let Some(post) = a.session.next_post() else { return Ok(true) };
                    a.http.begin(post);
                    a.deadline = Instant::now() + self.timeout;
                    if close {
                        self.connect(slot)?;
                    } else {
                        let req = a.http.request().map_err(|e| e.to_string())?;
                        conn_of(a).send(req);
                    }
                }
            }
        }
    }

    fn finish(&mut self, slot: usize, result: Result<(), String>) {
        let Some(mut a) = self.active[slot].take() else { return };
        self.active_free.push(slot);
        self.n_active -= 1;
        // 3.4.2: the connection is closed at the end of the session.
        drop(a.conn.take());
        let now = Instant::now();
        let now_ms = ms_since(self.t0, now);
        let local = a.local;
        let id = self.id(local);
        let model = self.model.clone();
        let handler = a.session.into_handler();
        let changed = handler.changed();
        let (tree, device) = (handler.tree, handler.device);
        let c = &mut self.cpes[local as usize];
        c.in_session = false;
        if let Some(d) = device {
            // With the extensions, the tree is the CPE's own from now on.
            if let Some(tree) = tree {
                c.extra().overlay = Some(model::Overlay::Tree(Box::new(tree)));
            }
            if c.extra().device.replace(d).is_none() && !self.devices.contains(&local) {
                self.devices.push(local);
            }
            c.take_device_events();
        } else if changed {
            if let Some(tree) = tree {
                let overlay = model.overlay_of(id, c, tree);
                c.extra().overlay = overlay;
                if let Some(x) = c.extra.as_ref() {
                    if x.overlay.is_none() && x.method_events.is_empty() && x.connreq.is_none() && x.device.is_none() {
                        c.extra = None;
                    }
                }
            }
        }
        let informed = a.acknowledged.is_some();
        if let Some(ack) = a.acknowledged {
            let ack_ms = ms_since(self.t0, ack);
            c.delivered(&a.sent);
            if c.first_ack_ms == NEVER {
                c.first_ack_ms = ack_ms;
            }
            if a.periodic {
                c.periodic_due_ms = NEVER;
            }
            c.periodic_ms = match model.cpe_periodic(id, c) {
                Some(p) => match p.aligned_to {
                    Some(t) => {
                        let sys_now = SystemTime::now();
                        let next = runner::next_periodic(sys_now, sys_now, p.interval, Some(t));
                        now_ms + next.duration_since(sys_now).map(|d| d.as_millis() as u64).unwrap_or(0)
                    }
                    None => ack_ms + u64::from(p.interval) * 1000,
                },
                None => NEVER,
            };
            // 3.2.1: a new ACS URL means 0 BOOTSTRAP with it.
            if model.changed_acs_url(id, c) != a.url {
                c.events |= EV_BOOTSTRAP;
            }
        }
        match &result {
            Ok(()) => {
                c.failures = 0;
                c.retry_count = 0;
                c.not_before_ms = 0;
            }
            Err(e) => {
                c.failures = c.failures.saturating_add(1);
                c.retry_count = c.retry_count.saturating_add(1);
                let (base, max, n) = (model.cfg.retry_base(), model.cfg.retry_max(), u32::from(c.failures));
                // The jitter only spreads the retries: without the OS's randomness, a hash of the time and the CPE does.
                let wait = backoff::random_wait(base, max, n).unwrap_or_else(|_| backoff::backoff(base, max, n, unit(now_ms, id as u64)));
                c.not_before_ms = now_ms + wait.as_millis() as u64;
                if self.total.failed < 10 {
                    warn!(serial = %model.serial(id), error = %e, retry_in = ?wait, "simulated session failed");
                } else {
                    debug!(serial = %model.serial(id), error = %e, "simulated session failed");
                }
            }
        }
        let us = now.duration_since(a.started).as_micros() as u64;
        for k in [&mut self.total, &mut self.window] {
            if result.is_ok() {
                k.ok += 1;
            } else {
                k.failed += 1;
            }
            if informed {
                k.informs += 1;
                if a.periodic {
                    k.periodic += 1;
                    k.periodic_late += u64::from(a.late);
                }
            }
            k.latency.record(us);
            k.max_us = k.max_us.max(us);
        }
        self.mark_dirty(local);
        self.reschedule(local);
    }

    fn check_timeouts(&mut self, now: Instant) {
        let late: Vec<usize> = self.active.iter().enumerate().filter_map(|(i, a)| a.as_ref().filter(|a| a.deadline <= now).map(|_| i)).collect();
        for slot in late {
            let secs = self.timeout.as_secs_f64();
            self.finish(slot, Err(format!("no response from the ACS within {secs} s (3.7.1.4)")));
        }
        let stale: Vec<usize> = self.cr.iter().enumerate().filter_map(|(i, c)| c.as_ref().filter(|c| c.deadline <= now).map(|_| i)).collect();
        for i in stale {
            let partial = self.cr[i].as_ref().is_some_and(|c| !c.buf.is_empty());
            if partial {
                if let Some(c) = self.cr[i].as_mut() {
                    let _ = c.stream.write(connreq::render(&reply(408, true)).as_bytes());
                }
            }
            self.close_cr(i);
        }
    }

    /// Between sessions, as the agent's main loop: transfers (scheduled
    /// Informs, finished downloads, Reboot, FactoryReset) and option expiry.
    fn poll_devices(&mut self) {
        let mut i = 0;
        while i < self.devices.len() {
            let local = self.devices[i];
            i += 1;
            let c = &mut self.cpes[local as usize];
            if c.in_session {
                continue;
            }
            let Some(x) = c.extra.as_mut() else { continue };
            let (Some(model::Overlay::Tree(tree)), Some(d)) = (x.overlay.as_mut(), x.device.as_mut()) else { continue };
            let polled = d.transfers.poll(tree, &mut d.state);
            let _ = d.options.refresh(tree, time::OffsetDateTime::now_utc());
            match polled {
                Ok(out) if out.factory_reset => {
                    // A.4.1.6: back to the shared tree, a first start (0 BOOTSTRAP).
                    c.extra = None;
                    c.events = EV_BOOTSTRAP;
                    c.bootstrapped = false;
                    c.retry_count = 0;
                    c.not_before_ms = 0;
                    self.devices.retain(|&l| l != local);
                    i = i.saturating_sub(1);
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(serial = %self.model.serial(self.first + local as usize), error = %foundation::error_kind::chain(&e), "simulated CPE transfers")
                }
            }
            let c = &mut self.cpes[local as usize];
            c.take_device_events();
            if c.has_events() {
                self.mark_dirty(local);
                self.reschedule(local);
            }
        }
    }

    // ---- Connection Requests (3.2.2): one listener, routed by path ----

    fn accept(&mut self) {
        let Some(l) = self.listener.as_ref() else { return };
        loop {
            match l.accept() {
                Ok((mut stream, peer)) => {
                    if self.n_cr >= MAX_CR_CONNECTIONS {
                        let _ = stream.write(connreq::render(&reply(503, true)).as_bytes());
                        continue;
                    }
                    let i = self.cr_free.pop().unwrap_or_else(|| {
                        self.cr.push(None);
                        self.cr.len() - 1
                    });
                    if self.poll.registry().register(&mut stream, Token(CR_BASE + i), Interest::READABLE | Interest::WRITABLE).is_err() {
                        self.cr_free.push(i);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    self.n_cr += 1;
                    self.cr[i] = Some(CrConn {
                        stream,
                        peer: peer.ip(),
                        buf: Vec::new(),
                        out: Vec::new(),
                        written: 0,
                        served: 0,
                        deadline: Instant::now() + CR_TIMEOUT,
                        closing: false,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    debug!(error = %foundation::error_kind::chain(&e), "connection request accept");
                    return;
                }
            }
        }
    }

    fn close_cr(&mut self, i: usize) {
        if let Some(mut c) = self.cr[i].take() {
            let _ = self.poll.registry().deregister(&mut c.stream);
            self.cr_free.push(i);
            self.n_cr -= 1;
        }
    }

    fn cr_event(&mut self, i: usize) {
        let mut eof = false;
        {
            let Some(c) = self.cr[i].as_mut() else { return };
            let mut chunk = [0u8; 2048];
            loop {
                match c.stream.read(&mut chunk) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => {
                        c.buf.extend_from_slice(&chunk[..n]);
                        if c.buf.len() > MAX_HEAD_LEN * 2 {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        eof = true;
                        break;
                    }
                }
            }
        }
        // Answer every complete request head buffered.
        loop {
            let Some(c) = self.cr[i].as_mut() else { return };
            if c.closing {
                break;
            }
            let parsed = parse_head(&c.buf);
            let r = match parsed {
                Ok(None) => break,
                Ok(Some((head, used))) => {
                    c.buf.drain(..used);
                    c.served += 1;
                    let peer = c.peer;
                    let mut r = self.connection_request(&head, peer);
                    r.close |= head.wants_close() || self.cr[i].as_ref().is_some_and(|c| c.served >= MAX_CR_REQUESTS);
                    r
                }
                Err(e) => reply(
                    match e {
                        HeadError::TooLarge | HeadError::TooManyHeaders => 431,
                        HeadError::Version => 505,
                        HeadError::Malformed(_) => 400,
                    },
                    true,
                ),
            };
            let c = self.cr[i].as_mut().expect("connection");
            c.out.extend_from_slice(connreq::render(&r).as_bytes());
            c.closing |= r.close;
            c.deadline = Instant::now() + CR_TIMEOUT;
        }
        let Some(c) = self.cr[i].as_mut() else { return };
        while c.written < c.out.len() {
            match c.stream.write(&c.out[c.written..]) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => c.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        if c.written == c.out.len() {
            c.out.clear();
            c.written = 0;
            if c.closing {
                let _ = c.stream.shutdown(std::net::Shutdown::Write);
                eof = true;
            }
        }
        if eof {
            self.close_cr(i);
        }
    }

    /// Route one request to its CPE by path and let the agent's
    /// [`Policy`] decide (Digest, rate limits); an accepted request queues
    /// 6 CONNECTION REQUEST and a session at once.
    fn connection_request(&mut self, head: &RequestHead, peer: IpAddr) -> Reply {
        let path = head.path().to_string();
        let Some(local) = self.route(&path) else { return reply(404, false) };
        let id = self.id(local);
        let model = self.model.clone();
        let now = Instant::now();
        let c = &mut self.cpes[local as usize];
        let (user, pass) = model.cr_credentials(id, c);
        let policy = match &mut c.extra().connreq {
            Some(p) => p,
            slot => match Policy::new(&path, model.cr_limit, model.cr_window) {
                Ok(p) => slot.insert(p),
                // No Digest server secret can be made: nothing can authenticate now.
                Err(e) => {
                    warn!(serial = %model.serial(id), error = %foundation::error_kind::chain(&e), "connection request: cannot challenge");
                    return reply(503, true);
                }
            },
        };
        let r = policy.decide(head, peer, (&user, &pass), now);
        if r.accepted {
            c.events |= EV_CONNECTION_REQUEST;
            // 3.2.2: served at once, not after back-off; after the current
            // session if one is in progress.
            c.not_before_ms = 0;
            self.total.connection_requests += 1;
            self.window.connection_requests += 1;
            self.mark_dirty(local);
            if !self.cpes[local as usize].in_session && !self.cpes[local as usize].queued {
                self.cpes[local as usize].wake_ms = NEVER;
                self.cpes[local as usize].queued = true;
                self.ready.push_back(local);
            }
        }
        r
    }

    /// `/cr/<serial>/<secret>` → the local CPE.
    fn route(&self, path: &str) -> Option<u32> {
        let rest = path.strip_prefix("/cr/")?;
        let (serial, secret) = rest.rsplit_once('/')?;
        let id = self.model.identity_of(serial)?;
        if id < self.first || id >= self.first + self.cpes.len() {
            return None;
        }
        let local = (id - self.first) as u32;
        let want = hex::encode(self.cpes[local as usize].secret);
        digest::ct_eq(want.as_bytes(), secret.as_bytes()).then_some(local)
    }

    // ---- the loop and the figures ----

    pub fn run(mut self, stop: &AtomicBool, progress: &mut dyn FnMut(&Summary), rss_model_kib: u64) -> Result<Summary, SimulateError> {
        let opts = self.opts;
        let mut events = Events::with_capacity(1024);
        let deadline = opts.duration.map(|d| self.t0 + d);
        let mut next_report = self.t0 + opts.report_every;
        let mut next_persist = self.t0 + PERSIST_EVERY;
        let mut next_timeouts = self.t0;
        let mut window_start = self.t0;
        let cpu0 = rusage().0;
        self.window_cpu = cpu0;
        let mut stopped_at: Option<Instant> = None;
        let mut drain_until = self.t0;
        loop {
            let now = Instant::now();
            let now_ms = ms_since(self.t0, now);
            if stopped_at.is_none() && (stop.load(Ordering::SeqCst) || deadline.is_some_and(|d| now >= d)) {
                // Stop starting sessions; those in flight finish (or time out).
                stopped_at = Some(now);
                drain_until = now + self.timeout + Duration::from_secs(1);
                self.ready.clear();
                if let Some(mut l) = self.listener.take() {
                    let _ = self.poll.registry().deregister(&mut l);
                }
            }
            if let Some(_t) = stopped_at {
                if self.n_active == 0 || now >= drain_until {
                    break;
                }
            } else {
                self.fire_timers(now_ms);
                self.start_ready();
            }
            if now >= next_report && stopped_at.is_none() {
                let s = self.summary(window_start, now, true, cpu0, rss_model_kib);
                progress(&s);
                window_start = now;
                next_report = now + opts.report_every;
            }
            if now >= next_persist {
                self.persist(false);
                next_persist = now + PERSIST_EVERY;
            }
            if now >= next_timeouts {
                self.check_timeouts(now);
                if stopped_at.is_none() {
                    self.poll_devices();
                }
                next_timeouts = now + Duration::from_millis(50);
            }
            // Sleep until the next timer, report or check.
            let mut wait = next_report.min(next_timeouts).saturating_duration_since(now).min(Duration::from_millis(100));
            if stopped_at.is_none() {
                if let Some(&std::cmp::Reverse((w, _))) = self.heap.peek() {
                    wait = wait.min(Duration::from_millis(w.saturating_sub(now_ms)));
                }
                if !self.ready.is_empty() && self.n_active < self.max_sessions {
                    wait = Duration::ZERO;
                }
            }
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(SimulateError::Poll(e));
                }
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    Token(t) if t >= CR_BASE => self.cr_event(t - CR_BASE),
                    Token(slot) => self.session_event(slot),
                }
            }
        }
        // Sessions still in flight after the grace period fail.
        for slot in 0..self.active.len() {
            if self.active[slot].is_some() {
                self.finish(slot, Err("stopped".into()));
            }
        }
        let end = stopped_at.unwrap_or_else(Instant::now);
        self.persist(true);
        if let Some(w) = self.writer.take() {
            if let Err(e) = w.finish() {
                warn!(error = %foundation::error_kind::chain(&e), "saving the simulated CPEs' state");
            }
        }
        let mut s = self.summary(self.t0, end, false, cpu0, rss_model_kib);
        s.rss_end_kib = rss_kib();
        s.bytes_per_cpe = s.rss_end_kib.saturating_sub(rss_model_kib) * 1024 / s.identities.max(1) as u64;
        Ok(s)
    }

    fn summary(&mut self, since: Instant, end: Instant, window: bool, cpu0: f64, rss_model_kib: u64) -> Summary {
        let elapsed = end.duration_since(since).as_secs_f64().max(1e-9);
        let end_ms = ms_since(self.t0, end);
        let iv = self.model.periodic.map(|p| p.interval);
        let (periodic_expected, informs_expected) = if window {
            (0, 0)
        } else {
            let pe = match iv {
                Some(iv) => self.cpes.iter().filter(|c| c.first_ack_ms != NEVER).map(|c| end_ms.saturating_sub(c.first_ack_ms) / (u64::from(iv) * 1000)).sum(),
                None => 0,
            };
            let ie = self.planned_ms.iter().filter(|&&p| p <= end_ms).map(|&p| 1 + iv.map_or(0, |iv| (end_ms - p) / (u64::from(iv) * 1000))).sum();
            (pe, ie)
        };
        let mut k = if window { self.window.take() } else { self.total.take() };
        let (cpu, max_rss) = rusage();
        let window_cpu = self.window_cpu;
        if window {
            self.window_cpu = cpu;
        }
        let run_s = end.duration_since(self.t0).as_secs_f64().max(1e-9);
        let n = self.cpes.len();
        let shard = (self.opts.shard.of > 1).then(|| self.opts.shard.to_string());
        Summary {
            identities: n,
            shard,
            first_identity: self.first,
            last_identity: self.first + n - 1,
            started: n - self.start_failures,
            start_failures: self.start_failures,
            sessions_ok: k.ok,
            sessions_failed: k.failed,
            informs: k.informs,
            periodic_informs: k.periodic,
            periodic_late: k.periodic_late,
            periodic_expected,
            informs_expected,
            connection_requests: k.connection_requests,
            periodic_interval_s: iv,
            elapsed_s: elapsed,
            informs_per_s: k.informs as f64 / elapsed,
            sessions_per_s: (k.ok + k.failed) as f64 / elapsed,
            planned_sessions_per_s: if window { iv.map_or(0.0, |iv| n as f64 / f64::from(iv)) } else { informs_expected as f64 / elapsed },
            latency_p50_ms: k.latency.quantile_ms(0.50),
            latency_p99_ms: k.latency.quantile_ms(0.99),
            latency_max_ms: k.max_us as f64 / 1000.0,
            cpu_s: cpu - if window { window_cpu } else { cpu0 },
            cpu_percent: 100.0 * (cpu - if window { window_cpu } else { cpu0 }) / if window { elapsed } else { run_s },
            max_rss_kib: max_rss,
            rss_model_kib,
            rss_end_kib: 0,
            bytes_per_cpe: 0,
            latency_histogram: k.latency.take(),
        }
    }

    /// The local address of the Connection Request listener.
    pub fn listener_addr(&self) -> Option<SocketAddr> {
        self.listener.as_ref().and_then(|l| l.local_addr().ok())
    }
}

fn conn_of(a: &mut Active) -> &mut Connection {
    a.conn.as_mut().expect("connection")
}
