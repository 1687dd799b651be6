//! Data-model providers: the values, instances and actions of a subtree of
//! the tree supplied by something other than the persisted store — a
//! long-running process speaking the line-delimited JSON protocol of
//! `docs/provider-protocol.md` ([`ProcessProvider`], configured with
//! `[[providers]]`), or a built-in (the Linux backend).
//!
//! The [`Store`](super::store::Store) asks the provider whose subtree holds
//! a name: values in batches ([`Provider::get`]; names a provider leaves out
//! keep their stored value), SetParameterValues entries all at once per
//! provider ([`Provider::set`], applied or refused as a whole, with
//! per-parameter faults), AddObject/DeleteObject, and the instances of the
//! tables in the subtree ([`Provider::instances`]). What providers push —
//! changed values, "instances changed", "diagnostics complete" — is
//! collected in [`Pushed`] and wakes the agent's main loop.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use super::store::Refusal;
use super::{template_of, Schema};

/// Default per-call deadline.
pub const DEFAULT_TIMEOUT_MS: u64 = 3000;
/// Largest accepted `timeout_ms` (a session must not stall on a provider).
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// Longest line accepted from a provider.
pub const MAX_LINE: usize = 4 << 20;
/// Most instances one `instances` answer may list.
pub const MAX_INSTANCES: usize = 10_000;
/// First wait before restarting a provider that exited; it doubles on each
/// consecutive failure up to [`RESTART_MAX`] (A.5.3-style back-off).
pub const RESTART_BASE: Duration = Duration::from_millis(500);
pub const RESTART_MAX: Duration = Duration::from_secs(60);
/// A provider that ran this long before exiting starts the back-off over.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// Between SIGTERM and SIGKILL when the agent stops a provider.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// One `[[providers]]` entry of the agent configuration.
///
/// ```toml
/// [[providers]]
/// subtree = "InternetGatewayDevice.LANDevice.1.Hosts."
/// command = ["/usr/lib/cpekit/hosts-provider", "--lan", "br-lan"]
/// timeout_ms = 3000        # optional: per-call deadline, default 3000, at most 60000
/// ```
///
/// `subtree` is an object or table path of the data model (instance
/// numbers, not `{i}`); instances on the way to it (`LANDevice.1.`) are
/// created if missing. Subtrees may not overlap, nor hold ManagementServer
/// (the agent's own). A `[[hooks]]` parameter inside a subtree is its
/// hook's, not the provider's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    pub subtree: String,
    pub command: Vec<String>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// A `[[providers]]` entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderConfigError {
    #[error("provider for {0:?}: subtree must be an object or table path of the data model, ending in '.', with instance numbers rather than {{i}}")]
    BadSubtree(String),
    #[error("provider for {0:?}: the subtree overlaps the one of another provider")]
    Overlap(String),
    #[error("provider for {0:?}: ManagementServer is the agent's own, it cannot be provided")]
    ManagementServer(String),
    #[error("provider for {0:?}: empty command")]
    EmptyCommand(String),
    #[error("provider for {0:?}: timeout_ms must be 1..={MAX_TIMEOUT_MS}")]
    BadTimeout(String),
}

/// Why a provider call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("provider for {subtree}: not running ({reason})")]
    Unavailable { subtree: String, reason: String },
    #[error("provider for {subtree}: no answer to {method} within {timeout_ms} ms (the provider is restarted)")]
    Timeout { subtree: String, method: &'static str, timeout_ms: u64 },
    #[error("provider for {subtree}: {method}: {message}")]
    Protocol { subtree: String, method: &'static str, message: String },
    /// The provider refused: a CWMP fault code, and for `set` the
    /// per-parameter faults.
    #[error("provider for {subtree}: {method} refused: {code} {message}")]
    Fault { subtree: String, method: &'static str, code: u32, message: String, faults: Vec<(String, Refusal)> },
}

impl ProviderError {
    /// The fault for the ACS (A.5.1): the provider's own refusal, else
    /// 9002 Internal error.
    pub fn refusal(&self) -> Refusal {
        match self {
            ProviderError::Fault { code, message, .. } => Refusal { code: *code, message: message.clone() },
            other => Refusal { code: 9002, message: format!("Internal error: {other}") },
        }
    }
}

/// A source of the values and instances of some subtrees.
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// Current values of `names` (parameter paths); names left out keep
    /// their stored value.
    fn get(&self, names: &[String]) -> Result<BTreeMap<String, String>, ProviderError>;
    /// Apply all of `values` or none.
    fn set(&self, values: &[(String, String)]) -> Result<(), ProviderError>;
    /// A.3.2.6: a new instance of `table` ("A.B."); its instance number.
    fn add(&self, table: &str) -> Result<u32, ProviderError>;
    /// A.3.2.7: remove the instance `object` ("A.B.3.").
    fn delete(&self, object: &str) -> Result<(), ProviderError>;
    /// Every instance object ("A.B.3.") of the tables in `subtree`.
    fn instances(&self, subtree: &str) -> Result<Vec<String>, ProviderError>;
    /// Cheap to read (in-process): change notification reads its values
    /// on every check instead of waiting for pushes.
    fn polled(&self) -> bool {
        false
    }
    /// Whether AddObject/DeleteObject may be used on `table` ("A.B.") where
    /// the data model allows them (GetParameterNames reports it, Table 16).
    fn allows_add_delete(&self, _table: &str) -> bool {
        true
    }
}

/// What providers reported on their own, collected for the main loop.
#[derive(Default)]
pub struct Pushed {
    /// Last value seen per provided parameter (pushed, or read).
    observed: Mutex<BTreeMap<String, String>>,
    instances_changed: AtomicBool,
    diagnostics_complete: AtomicBool,
    wake: RwLock<Option<Arc<dyn Fn() + Send + Sync>>>,
}

impl std::fmt::Debug for Pushed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pushed").field("instances_changed", &self.instances_changed).field("diagnostics_complete", &self.diagnostics_complete).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pushed {
    fn wake(&self) {
        if let Some(w) = self.wake.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            w();
        }
    }

    /// Values changed (a push, or a read): remembered for notification.
    pub fn values(&self, values: impl IntoIterator<Item = (String, String)>, wake: bool) {
        lock(&self.observed).extend(values);
        if wake {
            self.wake();
        }
    }

    pub fn instances_changed(&self) {
        self.instances_changed.store(true, Ordering::SeqCst);
        self.wake();
    }

    pub fn diagnostics_complete(&self) {
        self.diagnostics_complete.store(true, Ordering::SeqCst);
        self.wake();
    }
}

/// The providers of one agent, by subtree.
#[derive(Debug)]
pub struct Providers {
    schema: &'static Schema,
    /// (subtree, provider), longest subtree first.
    entries: Vec<(String, Arc<dyn Provider>)>,
    pushed: Arc<Pushed>,
}

impl Providers {
    /// No providers yet; add them with [`Providers::add`].
    pub fn new(schema: &'static Schema) -> Providers {
        Providers { schema, entries: Vec::new(), pushed: Arc::new(Pushed::default()) }
    }

    /// Start the configured provider processes (after [`Providers::check`]).
    pub fn start(schema: &'static Schema, config: &[ProviderConfig]) -> Result<Providers, ProviderConfigError> {
        Providers::check(schema, config)?;
        let mut p = Providers::new(schema);
        for c in config {
            let ms = c.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
            let provider = ProcessProvider::start(&c.subtree, &c.command, Duration::from_millis(ms), p.pushed.clone());
            p.entries.push((c.subtree.clone(), Arc::new(provider)));
        }
        p.sort();
        Ok(p)
    }

    /// Check `[[providers]]` entries without starting anything.
    pub fn check(schema: &Schema, config: &[ProviderConfig]) -> Result<(), ProviderConfigError> {
        let mut seen: Vec<&str> = Vec::new();
        for c in config {
            check_subtree(schema, &seen, &c.subtree)?;
            if c.command.is_empty() || c.command[0].is_empty() {
                return Err(ProviderConfigError::EmptyCommand(c.subtree.clone()));
            }
            let ms = c.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
            if ms == 0 || ms > MAX_TIMEOUT_MS {
                return Err(ProviderConfigError::BadTimeout(c.subtree.clone()));
            }
            seen.push(&c.subtree);
        }
        Ok(())
    }

    fn check_subtree(&self, subtree: &str) -> Result<(), ProviderConfigError> {
        let seen: Vec<&str> = self.entries.iter().map(|(s, _)| s.as_str()).collect();
        check_subtree(self.schema, &seen, subtree)
    }

    /// Register a built-in provider for the subtrees given: objects or
    /// tables as for `[[providers]]`, or single parameters.
    pub fn add(&mut self, subtrees: &[String], provider: Arc<dyn Provider>) -> Result<(), ProviderConfigError> {
        for s in subtrees {
            if s.ends_with('.') {
                self.check_subtree(s)?;
            } else if self.schema.param(s).is_none() || s.contains("{i}") {
                return Err(ProviderConfigError::BadSubtree(s.clone()));
            } else if self.entries.iter().any(|(e, _)| covers(e, s)) {
                return Err(ProviderConfigError::Overlap(s.clone()));
            }
            self.entries.push((s.clone(), provider.clone()));
        }
        self.sort();
        Ok(())
    }

    fn sort(&mut self) {
        self.entries.sort_by_key(|e| std::cmp::Reverse(e.0.len()));
    }

    /// Where pushes are collected (built-in providers push here too).
    pub fn pushed(&self) -> Arc<Pushed> {
        self.pushed.clone()
    }

    /// Call `wake` whenever a provider pushes something.
    pub fn set_wake(&self, wake: Arc<dyn Fn() + Send + Sync>) {
        *self.pushed.wake.write().unwrap_or_else(|e| e.into_inner()) = Some(wake);
    }

    /// The subtrees, longest first.
    pub fn subtrees(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(s, _)| s.as_str())
    }

    /// The provider serving `path` (a parameter, object or table path) and
    /// its index.
    pub fn owner(&self, path: &str) -> Option<(usize, &Arc<dyn Provider>)> {
        self.entries.iter().enumerate().find(|(_, (s, _))| covers(s, path)).map(|(i, (_, p))| (i, p))
    }

    /// Values of provided parameters, one call per provider; checked
    /// against the schema. Names a provider leaves out are absent.
    pub fn get(&self, names: &[String]) -> Result<BTreeMap<String, String>, ProviderError> {
        let mut groups: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for n in names {
            if let Some((i, _)) = self.owner(n) {
                groups.entry(i).or_default().push(n.clone());
            }
        }
        let mut out = BTreeMap::new();
        for (i, group) in groups {
            let (subtree, p) = &self.entries[i];
            let wanted: BTreeSet<&String> = group.iter().collect();
            for (k, v) in p.get(&group)? {
                if !wanted.contains(&k) {
                    continue;
                }
                if let Some(def) = self.schema.param(&k) {
                    def.validate(&v).map_err(|e| ProviderError::Protocol { subtree: subtree.clone(), method: "get", message: e.to_string() })?;
                }
                out.insert(k, v);
            }
        }
        self.pushed.values(out.iter().map(|(k, v)| (k.clone(), v.clone())), false);
        Ok(out)
    }

    /// The last value seen of a provided parameter (pushed or read);
    /// `None` when never seen, or when its provider is polled.
    pub fn observed(&self, name: &str) -> Option<String> {
        if self.owner(name).is_some_and(|(_, p)| p.polled()) {
            return None;
        }
        lock(&self.pushed.observed).get(name).cloned()
    }

    /// Record values applied through a provider as seen.
    pub fn applied(&self, values: &[(String, String)]) {
        self.pushed.values(values.iter().cloned(), false);
    }

    /// A provider asked for its instances to be listed again (or started):
    /// clears the flag.
    pub fn take_instances_changed(&self) -> bool {
        self.pushed.instances_changed.swap(false, Ordering::SeqCst)
    }

    /// A provider reported a finished diagnostic: clears the flag.
    pub fn take_diagnostics_complete(&self) -> bool {
        self.pushed.diagnostics_complete.swap(false, Ordering::SeqCst)
    }

    /// Every (subtree, provider) pair.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Arc<dyn Provider>)> {
        self.entries.iter().map(|(s, p)| (s.as_str(), p))
    }
}

/// An object or table path of the model, not ManagementServer, not
/// overlapping `taken`.
fn check_subtree(schema: &Schema, taken: &[&str], subtree: &str) -> Result<(), ProviderConfigError> {
    let bad = || ProviderConfigError::BadSubtree(subtree.to_string());
    if !subtree.ends_with('.') || subtree.contains("{i}") || subtree.contains("..") {
        return Err(bad());
    }
    let t = template_of(subtree);
    if schema.object(&t).is_none() && !schema.object(&format!("{t}{{i}}.")).is_some_and(|d| d.multi_instance) {
        return Err(bad());
    }
    let ms = "InternetGatewayDevice.ManagementServer.";
    if subtree.starts_with(ms) || ms.starts_with(subtree) {
        return Err(ProviderConfigError::ManagementServer(subtree.to_string()));
    }
    if taken.iter().any(|s| s.starts_with(subtree) || covers(s, subtree)) {
        return Err(ProviderConfigError::Overlap(subtree.to_string()));
    }
    Ok(())
}

/// Whether `subtree` (an object path, or one parameter) holds `path`.
fn covers(subtree: &str, path: &str) -> bool {
    if subtree.ends_with('.') {
        path.starts_with(subtree)
    } else {
        path == subtree
    }
}

// ---------------------------------------------------------------------------
// The provider process.

/// A provider process (see `docs/provider-protocol.md`): started at once,
/// restarted with back-off when it exits, killed when a call misses its
/// deadline, stopped when dropped.
pub struct ProcessProvider {
    shared: Arc<Shared>,
    timeout: Duration,
    /// One request at a time.
    calls: Mutex<()>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for ProcessProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessProvider").field("subtree", &self.shared.subtree).field("timeout", &self.timeout).finish()
    }
}

struct Shared {
    subtree: String,
    command: Vec<String>,
    pushed: Arc<Pushed>,
    next_id: AtomicU64,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// None while the process is down (or while a request is written).
    stdin: Option<ChildStdin>,
    pid: Option<u32>,
    /// The request waiting for its reply: (id, where the reply goes).
    waiting: Option<(u64, Sender<Reply>)>,
    /// Why the provider is down.
    down: String,
    /// Being started (first start): calls wait for it, within their deadline.
    starting: bool,
    /// Processes started so far.
    starts: u64,
    stopping: bool,
}

type Reply = Result<Value, ProviderError>;

impl ProcessProvider {
    /// Start `command` for `subtree` (its supervisor thread starts it and
    /// restarts it when it exits).
    pub fn start(subtree: &str, command: &[String], timeout: Duration, pushed: Arc<Pushed>) -> ProcessProvider {
        let shared = Arc::new(Shared {
            subtree: subtree.to_string(),
            command: command.to_vec(),
            pushed,
            next_id: AtomicU64::new(1),
            state: Mutex::new(State { down: "starting".into(), starting: true, ..State::default() }),
            changed: Condvar::new(),
        });
        let s = shared.clone();
        let supervisor = std::thread::Builder::new().name(format!("provider {subtree}")).spawn(move || supervise(&s)).ok();
        if supervisor.is_none() {
            let mut st = lock(&shared.state);
            st.down = "cannot start its supervisor thread".into();
            st.starting = false;
        }
        ProcessProvider { shared, timeout, calls: Mutex::new(()), supervisor: Mutex::new(supervisor) }
    }

    /// How many times the process was started (tests, status).
    pub fn starts(&self) -> u64 {
        lock(&self.shared.state).starts
    }

    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        lock(&self.shared.state).pid
    }

    /// Wait until the process runs (or `timeout` passes).
    pub fn wait_running(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = lock(&self.shared.state);
        while st.pid.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self.shared.changed.wait_timeout(st, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }

    fn call(&self, method: &'static str, mut params: Value) -> Reply {
        let _one = lock(&self.calls);
        let sh = &self.shared;
        let deadline = Instant::now() + self.timeout;
        let timed_out = || ProviderError::Timeout { subtree: sh.subtree.clone(), method, timeout_ms: self.timeout.as_millis() as u64 };
        let id = sh.next_id.fetch_add(1, Ordering::SeqCst);
        params["id"] = json!(id);
        params["method"] = json!(method);
        let mut line = params.to_string();
        line.push('\n');
        let (tx, rx) = mpsc::channel();
        let (mut stdin, pid) = {
            let mut st = lock(&sh.state);
            while st.starting && Instant::now() < deadline {
                st = sh.changed.wait_timeout(st, deadline.saturating_duration_since(Instant::now())).unwrap_or_else(|e| e.into_inner()).0;
            }
            let Some(stdin) = st.stdin.take() else {
                return Err(ProviderError::Unavailable { subtree: sh.subtree.clone(), reason: st.down.clone() });
            };
            st.waiting = Some((id, tx));
            (stdin, st.pid)
        };
        let written = write_before(&mut stdin, line.as_bytes(), deadline);
        {
            let mut st = lock(&sh.state);
            // Put it back unless that process went away meanwhile.
            if st.pid.is_some() && st.pid == pid && !st.stopping {
                st.stdin = Some(stdin);
            }
        }
        let reply = match written {
            Ok(()) => match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(r) => r,
                Err(mpsc::RecvTimeoutError::Timeout) => Err(timed_out()),
                Err(mpsc::RecvTimeoutError::Disconnected) => Err(ProviderError::Unavailable { subtree: sh.subtree.clone(), reason: "exited".into() }),
            },
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(timed_out()),
            Err(e) => Err(ProviderError::Unavailable { subtree: sh.subtree.clone(), reason: format!("writing the request: {e}") }),
        };
        let mut st = lock(&sh.state);
        st.waiting = None;
        if matches!(reply, Err(ProviderError::Timeout { .. })) {
            // A provider that misses a deadline is in an unknown state.
            tracing::warn!(provider = %sh.subtree, "no answer to {method} within {:?}: killing the provider", self.timeout);
            if let Some(pid) = st.pid {
                kill_group(pid, libc::SIGKILL);
            }
        }
        drop(st);
        let result = reply?;
        if let Some(err) = result.get("error") {
            return Err(fault(&sh.subtree, method, err));
        }
        result.get("result").cloned().ok_or_else(|| ProviderError::Protocol {
            subtree: sh.subtree.clone(),
            method,
            message: "reply without result or error".into(),
        })
    }

    fn protocol(&self, method: &'static str, message: impl Into<String>) -> ProviderError {
        ProviderError::Protocol { subtree: self.shared.subtree.clone(), method, message: message.into() }
    }
}

/// A provider's `error` member as a fault: a CWMP code (9000–9899; anything
/// else becomes 9002) and for `set` the per-parameter faults.
fn fault(subtree: &str, method: &'static str, err: &Value) -> ProviderError {
    let code_of = |v: &Value| v.get("code").and_then(Value::as_u64).filter(|c| (9000..9900).contains(c)).unwrap_or(9002) as u32;
    let message_of = |v: &Value| v.get("message").and_then(Value::as_str).unwrap_or("refused by the provider").chars().take(256).collect::<String>();
    let faults = err
        .get("faults")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| Some((f.get("name")?.as_str()?.to_string(), Refusal { code: code_of(f), message: message_of(f) })))
                .take(1000)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    ProviderError::Fault { subtree: subtree.to_string(), method, code: code_of(err), message: message_of(err), faults }
}

impl Provider for ProcessProvider {
    fn get(&self, names: &[String]) -> Result<BTreeMap<String, String>, ProviderError> {
        let r = self.call("get", json!({ "names": names }))?;
        let values = r.get("values").and_then(Value::as_object).ok_or_else(|| self.protocol("get", "result without values"))?;
        values
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.as_str().ok_or_else(|| self.protocol("get", format!("value of {k} is not a string")))?.to_string())))
            .collect()
    }

    fn set(&self, values: &[(String, String)]) -> Result<(), ProviderError> {
        let map: serde_json::Map<String, Value> = values.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        self.call("set", json!({ "values": map })).map(|_| ())
    }

    fn add(&self, table: &str) -> Result<u32, ProviderError> {
        let r = self.call("add", json!({ "table": table }))?;
        r.get("instance")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n >= 1)
            .ok_or_else(|| self.protocol("add", "result without an instance number 1..4294967295"))
    }

    fn delete(&self, object: &str) -> Result<(), ProviderError> {
        self.call("delete", json!({ "object": object })).map(|_| ())
    }

    fn instances(&self, subtree: &str) -> Result<Vec<String>, ProviderError> {
        let r = self.call("instances", json!({ "subtree": subtree }))?;
        let list = r.get("objects").and_then(Value::as_array).ok_or_else(|| self.protocol("instances", "result without objects"))?;
        if list.len() > MAX_INSTANCES {
            return Err(self.protocol("instances", format!("more than {MAX_INSTANCES} instances")));
        }
        list.iter().map(|o| o.as_str().map(str::to_string).ok_or_else(|| self.protocol("instances", "an object that is not a string"))).collect()
    }
}

impl Drop for ProcessProvider {
    fn drop(&mut self) {
        let sh = &self.shared;
        let pid = {
            let mut st = lock(&sh.state);
            st.stopping = true;
            st.stdin = None; // EOF: the protocol's "stop"
            st.pid
        };
        sh.changed.notify_all();
        if let Some(pid) = pid {
            kill_group(pid, libc::SIGTERM);
            let deadline = Instant::now() + STOP_GRACE;
            let mut st = lock(&sh.state);
            while st.pid.is_some() && Instant::now() < deadline {
                st = sh.changed.wait_timeout(st, Duration::from_millis(50)).unwrap_or_else(|e| e.into_inner()).0;
            }
            if let Some(pid) = st.pid {
                kill_group(pid, libc::SIGKILL);
            }
        }
        if let Some(h) = lock(&self.supervisor).take() {
            let _ = h.join();
        }
    }
}

fn kill_group(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) has no memory effects; a negative pid addresses the
    // process group the provider leads.
    unsafe {
        libc::kill(-(pid as libc::pid_t), signal);
    }
}

/// Write all of `data` before `deadline` (a provider that does not read
/// its input must not block the agent).
fn write_before(w: &mut ChildStdin, mut data: &[u8], deadline: Instant) -> std::io::Result<()> {
    let fd = w.as_raw_fd();
    while !data.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        let mut pfd = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
        // SAFETY: poll on one live pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            continue;
        }
        match w.write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted) => {}
            Err(e) => return Err(e),
        }
    }
    w.flush()
}

fn set_nonblocking(fd: std::os::fd::RawFd) {
    // SAFETY: fcntl on a descriptor we own, flags only.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

/// The supervisor thread: start the process, read its output, restart it
/// with back-off when it exits, until the provider is dropped.
fn supervise(sh: &Shared) {
    let mut failures: u32 = 0;
    loop {
        if lock(&sh.state).stopping {
            return;
        }
        let started = Instant::now();
        match spawn(sh) {
            Ok(child) => {
                let status = run_process(sh, child);
                let mut st = lock(&sh.state);
                st.pid = None;
                st.stdin = None;
                st.down = format!("exited ({status}), restarting");
                if let Some((_, tx)) = st.waiting.take() {
                    let _ = tx.send(Err(ProviderError::Unavailable { subtree: sh.subtree.clone(), reason: format!("exited ({status})") }));
                }
                sh.changed.notify_all();
                if st.stopping {
                    return;
                }
                tracing::warn!(provider = %sh.subtree, "provider exited ({status})");
            }
            Err(e) => {
                let mut st = lock(&sh.state);
                st.starting = false;
                if st.stopping {
                    return;
                }
                tracing::error!(provider = %sh.subtree, "cannot start {:?}: {e}", sh.command[0]);
                st.down = format!("cannot start {:?}: {e}", sh.command[0]);
                sh.changed.notify_all();
            }
        }
        if started.elapsed() >= HEALTHY_AFTER {
            failures = 0;
        }
        failures = failures.saturating_add(1);
        let wait = foundation::backoff::random_wait(RESTART_BASE, RESTART_MAX, failures)
            .unwrap_or_else(|_| foundation::backoff::window(RESTART_BASE, RESTART_MAX, failures).0);
        tracing::info!(provider = %sh.subtree, "restarting the provider in {wait:?}");
        let deadline = Instant::now() + wait;
        let mut st = lock(&sh.state);
        while !st.stopping && Instant::now() < deadline {
            st = sh.changed.wait_timeout(st, deadline.saturating_duration_since(Instant::now())).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

fn spawn(sh: &Shared) -> std::io::Result<Child> {
    let mut child = Command::new(&sh.command[0])
        .args(&sh.command[1..])
        .env("CPEKIT_PROVIDER_SUBTREE", &sh.subtree)
        .env("CPEKIT_PROVIDER_PROTOCOL", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a kill reaches what it started.
        .process_group(0)
        .spawn()?;
    let stdin = child.stdin.take().expect("piped stdin");
    set_nonblocking(stdin.as_raw_fd());
    let mut st = lock(&sh.state);
    if st.stopping {
        // Dropped while starting: the drop saw no process to stop.
        kill_group(child.id(), libc::SIGKILL);
        let _ = child.wait();
        return Err(std::io::Error::other("stopped"));
    }
    st.stdin = Some(stdin);
    st.starting = false;
    st.pid = Some(child.id());
    st.starts += 1;
    st.down.clear();
    drop(st);
    sh.changed.notify_all();
    tracing::info!(provider = %sh.subtree, pid = child.id(), "provider started");
    // A (re)started provider may have other instances than we know.
    sh.pushed.instances_changed();
    Ok(child)
}

/// Read the process's output until it ends; its exit status.
fn run_process(sh: &Shared, mut child: Child) -> String {
    if let Some(err) = child.stderr.take() {
        let subtree = sh.subtree.clone();
        let _ = std::thread::Builder::new().name(format!("provider {subtree} stderr")).spawn(move || {
            let mut r = BufReader::new(err);
            let mut line = Vec::new();
            while read_line(&mut r, &mut line, 4096).unwrap_or(0) > 0 {
                tracing::warn!(provider = %subtree, "{}", String::from_utf8_lossy(&line).trim_end());
            }
        });
    }
    let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = Vec::new();
    loop {
        match read_line(&mut out, &mut line, MAX_LINE) {
            Ok(0) => break,
            Ok(_) if line.last() != Some(&b'\n') && line.len() >= MAX_LINE => {
                tracing::error!(provider = %sh.subtree, "line longer than {MAX_LINE} bytes: killing the provider");
                kill_group(child.id(), libc::SIGKILL);
                break;
            }
            Ok(_) => handle_line(sh, &line),
            Err(e) => {
                tracing::error!(provider = %sh.subtree, "reading its output: {e}");
                kill_group(child.id(), libc::SIGKILL);
                break;
            }
        }
    }
    // Its output is closed: make sure it is gone, and reap it.
    let status = match child.try_wait() {
        Ok(Some(s)) => s,
        _ => {
            let deadline = Instant::now() + STOP_GRACE;
            loop {
                match child.try_wait() {
                    Ok(Some(s)) => break s,
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                    _ => {
                        kill_group(child.id(), libc::SIGKILL);
                        match child.wait() {
                            Ok(s) => break s,
                            Err(e) => return format!("lost: {e}"),
                        }
                    }
                }
            }
        }
    };
    status.to_string()
}

/// One line (with its `\n`) into `buf`, at most `limit` bytes.
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>, limit: usize) -> std::io::Result<usize> {
    buf.clear();
    r.take(limit as u64).read_until(b'\n', buf)
}

/// A reply to the waiting request, or a notification.
fn handle_line(sh: &Shared, line: &[u8]) {
    let msg: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(provider = %sh.subtree, "not JSON, ignored: {e}");
            return;
        }
    };
    if let Some(id) = msg.get("id").and_then(Value::as_u64) {
        let mut st = lock(&sh.state);
        match st.waiting.take() {
            Some((want, tx)) if want == id => {
                let _ = tx.send(Ok(msg));
            }
            other => {
                st.waiting = other;
                tracing::debug!(provider = %sh.subtree, id, "reply to no waiting request, ignored");
            }
        }
        return;
    }
    match msg.get("notify").and_then(Value::as_str) {
        Some("values") => {
            let Some(values) = msg.get("values").and_then(Value::as_object) else {
                tracing::warn!(provider = %sh.subtree, "values notification without values");
                return;
            };
            let values: Vec<(String, String)> =
                values.iter().filter(|(k, _)| k.starts_with(&sh.subtree)).filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect();
            tracing::debug!(provider = %sh.subtree, count = values.len(), "values pushed");
            sh.pushed.values(values, true);
        }
        Some("instances") => sh.pushed.instances_changed(),
        Some("diagnostics_complete") => sh.pushed.diagnostics_complete(),
        other => tracing::warn!(provider = %sh.subtree, "unknown notification {other:?}, ignored"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datamodel::notify::Notifier;
    use crate::datamodel::store::Store;
    use crate::rpc;
    use crate::soap::{Body, Fault, ParameterInfo, ParameterValue, SetAttributes};

    const FWD: &str = "InternetGatewayDevice.Layer3Forwarding.Forwarding.";
    const PII: &str = "InternetGatewayDevice.ManagementServer.PeriodicInformInterval";

    fn script(dir: &std::path::Path, name: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    }

    /// A provider of the Forwarding table in Python: instance 5 exists,
    /// add numbers from 10, Status follows Enable, set refuses a
    /// DestIPAddress of 0.0.0.0 (all or nothing), pushes on "push".
    const FORWARDING: &str = r#"#!/usr/bin/env python3
import json, os, sys
T = os.environ["CPEKIT_PROVIDER_SUBTREE"]
rows = {5: {"Enable": "false", "DestIPAddress": "10.0.0.0"}}
nxt = 10
def out(m):
    sys.stdout.write(json.dumps(m) + "\n"); sys.stdout.flush()
def values():
    v = {}
    for n, r in rows.items():
        for k, x in r.items():
            v["%s%d.%s" % (T, n, k)] = x
        v["%s%d.Status" % (T, n)] = "Enabled" if r["Enable"] in ("true", "1") else "Disabled"
    return v
for line in sys.stdin:
    q = json.loads(line); m = q["method"]; r = {}
    if m == "get":
        v = values(); r = {"values": {n: v[n] for n in q["names"] if n in v}}
    elif m == "instances":
        r = {"objects": ["%s%d." % (T, n) for n in rows]}
    elif m == "set":
        bad = [n for n, x in q["values"].items() if n.endswith(".DestIPAddress") and x == "0.0.0.0"]
        if bad:
            out({"id": q["id"], "error": {"code": 9003, "message": "Invalid arguments", "faults": [{"name": n, "code": 9007, "message": "no default route here"} for n in bad]}}); continue
        for n, x in q["values"].items():
            i, k = n[len(T):].split(".", 1)
            rows[int(i)][k] = x
        if "push" in q["values"].values():
            out({"notify": "values", "values": {"%s5.Status" % T: "Error"}})
    elif m == "add":
        rows[nxt] = {"Enable": "false", "DestIPAddress": ""}; r = {"instance": nxt}; nxt += 10
    elif m == "delete":
        del rows[int(q["object"][len(T):].strip("."))]
    out({"id": q["id"], "result": r})
"#;

    fn pv(n: &str, v: &str, t: &str) -> ParameterValue {
        ParameterValue { name: n.into(), value: v.into(), xsd_type: t.into() }
    }

    fn store_with(cfg: &[ProviderConfig]) -> (Store, Arc<Providers>) {
        let schema = Schema::igd();
        let p = Arc::new(Providers::start(schema, cfg).unwrap());
        let mut st = Store::new(schema);
        st.attach_providers(schema, p.clone());
        (st, p)
    }

    fn cfg(subtree: &str, command: String, timeout_ms: Option<u64>) -> ProviderConfig {
        ProviderConfig { subtree: subtree.into(), command: vec![command], timeout_ms }
    }

    #[test]
    fn a_provided_table_through_the_rpcs() {
        let d = tempfile::tempdir().unwrap();
        let schema = Schema::igd();
        let (mut st, _p) = store_with(&[cfg(FWD, script(d.path(), "fwd", FORWARDING), Some(10_000))]);
        assert!(st.refresh_instances(schema, true), "the provider's instance 5 appears");
        let count = "InternetGatewayDevice.Layer3Forwarding.ForwardNumberOfEntries";
        assert_eq!(st.get(count).unwrap(), "1");
        let (resp, _) = rpc::handle(schema, &mut st, &Body::GetParameterNames { path: FWD.into(), next_level: true });
        assert_eq!(resp, Body::GetParameterNamesResponse { list: vec![ParameterInfo { name: format!("{FWD}5."), writable: true }] });
        let gpv = |st: &mut Store, n: &str| match rpc::handle(schema, st, &Body::GetParameterValues { names: vec![n.into()] }).0 {
            Body::GetParameterValuesResponse { list } => list.into_iter().map(|p| (p.name, p.value)).collect::<BTreeMap<_, _>>(),
            other => panic!("{other:?}"),
        };
        let v = gpv(&mut st, FWD);
        assert_eq!(v[&format!("{FWD}5.Status")], "Disabled", "from the provider");
        assert_eq!(v[&format!("{FWD}5.DestIPAddress")], "10.0.0.0");
        assert_eq!(v[&format!("{FWD}5.GatewayIPAddress")], "", "left out by the provider: the stored default");
        // SetParameterValues: applied by the provider and ours together.
        let ok = Body::SetParameterValues {
            list: vec![pv(&format!("{FWD}5.Enable"), "true", "xsd:boolean"), pv(PII, "300", "xsd:unsignedInt")],
            parameter_key: "k1".into(),
        };
        assert_eq!(rpc::handle(schema, &mut st, &ok).0, Body::SetParameterValuesResponse { status: 0 });
        assert_eq!(gpv(&mut st, &format!("{FWD}5.Status"))[&format!("{FWD}5.Status")], "Enabled");
        // Refused by the provider with a per-parameter fault: nothing applied.
        let bad = Body::SetParameterValues {
            list: vec![
                pv(PII, "600", "xsd:unsignedInt"),
                pv(&format!("{FWD}5.Enable"), "false", "xsd:boolean"),
                pv(&format!("{FWD}5.DestIPAddress"), "0.0.0.0", "xsd:string"),
            ],
            parameter_key: "k2".into(),
        };
        let (resp, fx) = rpc::handle(schema, &mut st, &bad);
        let Body::Fault(f) = resp else { panic!("{resp:?}") };
        assert_eq!(f.code, 9003);
        assert_eq!(
            f.set_parameter_values.iter().map(|p| (p.name.as_str(), p.code)).collect::<Vec<_>>(),
            vec![(format!("{FWD}5.DestIPAddress").as_str(), 9007)]
        );
        assert!(!fx.dirty);
        assert_eq!(st.get(PII).unwrap(), "300");
        assert_eq!(gpv(&mut st, &format!("{FWD}5.Status"))[&format!("{FWD}5.Status")], "Enabled");
        // AddObject: the provider numbers the instance; DeleteObject.
        let (resp, _) = rpc::handle(schema, &mut st, &Body::AddObject { object_name: FWD.into(), parameter_key: "a".into() });
        assert_eq!(resp, Body::AddObjectResponse { instance_number: 10, status: 0 });
        assert_eq!(st.get(count).unwrap(), "2");
        let (resp, _) = rpc::handle(schema, &mut st, &Body::DeleteObject { object_name: format!("{FWD}5."), parameter_key: "b".into() });
        assert_eq!(resp, Body::DeleteObjectResponse { status: 0 });
        let (resp, _) = rpc::handle(schema, &mut st, &Body::GetParameterNames { path: FWD.into(), next_level: true });
        assert_eq!(resp, Body::GetParameterNamesResponse { list: vec![ParameterInfo { name: format!("{FWD}10."), writable: true }] });
        assert_eq!(st.get(count).unwrap(), "1");
        // The provider agrees.
        assert!(!st.refresh_instances(schema, true));
    }

    #[test]
    fn pushed_values_notify_without_polling() {
        let d = tempfile::tempdir().unwrap();
        let schema = Schema::igd();
        let (mut st, p) = store_with(&[cfg(FWD, script(d.path(), "fwd", FORWARDING), Some(10_000))]);
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        p.set_wake(Arc::new(move || {
            let _ = lock(&tx).send(());
        }));
        st.refresh_instances(schema, true);
        let status = format!("{FWD}5.Status");
        let spa = Body::SetParameterAttributes {
            list: vec![SetAttributes { name: status.clone(), notification_change: true, notification: 2, access_list_change: false, access_list: vec![] }],
        };
        let mut n = Notifier::new();
        let (resp, fx) = rpc::handle(schema, &mut st, &spa);
        assert_eq!(resp, Body::SetParameterAttributesResponse);
        n.acs_changed(&st, fx.acs_changed());
        assert_eq!(n.poll(&st).active, Vec::<String>::new());
        while rx.try_recv().is_ok() {}
        // The provider pushes Status "Error" as a side effect of this set.
        let (resp, _) = rpc::handle(
            schema,
            &mut st,
            &Body::SetParameterValues { list: vec![pv(&format!("{FWD}5.DestIPAddress"), "push", "xsd:string")], parameter_key: "".into() },
        );
        assert_eq!(resp, Body::SetParameterValuesResponse { status: 0 });
        rx.recv_timeout(Duration::from_secs(5)).expect("the push wakes the agent");
        assert_eq!(n.poll(&st).active, vec![status.clone()]);
        assert!(n.needs_session());
    }

    fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_hanging_provider_fails_the_call_within_its_deadline() {
        let d = tempfile::tempdir().unwrap();
        let schema = Schema::igd();
        let hang = script(d.path(), "hang", "#!/bin/sh\nwhile read line; do :; done\n");
        let l3 = "InternetGatewayDevice.Layer3Forwarding.";
        let (mut st, _p) = store_with(&[cfg(l3, hang.clone(), Some(300))]);
        let t = Instant::now();
        let (resp, _) = rpc::handle(schema, &mut st, &Body::GetParameterValues { names: vec![l3.into()] });
        let elapsed = t.elapsed();
        assert!(matches!(&resp, Body::Fault(Fault { code: 9002, string, .. }) if string.contains("300 ms")), "{resp:?}");
        assert!(elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(2500), "{elapsed:?}");
        // The provider is killed and started again.
        let pp = ProcessProvider::start(l3, &[hang], Duration::from_millis(200), Arc::new(Pushed::default()));
        assert!(pp.wait_running(Duration::from_secs(5)));
        let first = pp.pid();
        assert!(matches!(pp.get(&[format!("{l3}DefaultConnectionService")]), Err(ProviderError::Timeout { timeout_ms: 200, .. })));
        wait_for("the restart", || pp.starts() == 2 && pp.pid().is_some());
        assert_ne!(pp.pid(), first);
    }

    #[test]
    fn a_dying_provider_is_restarted() {
        let d = tempfile::tempdir().unwrap();
        let l3 = "InternetGatewayDevice.Layer3Forwarding.";
        let marker = d.path().join("died-once");
        // Dies at its first request; its next incarnation answers.
        let body = format!(
            "#!/bin/sh\nif [ ! -e '{m}' ]; then touch '{m}'; read line; exit 7; fi\nwhile read line; do\n  id=$(echo \"$line\" | sed 's/.*\"id\":\\([0-9]*\\).*/\\1/')\n  echo '{{\"id\":'$id',\"result\":{{\"values\":{{\"{l3}DefaultConnectionService\":\"InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1\"}}}}}}'\ndone\n",
            m = marker.display()
        );
        let pushed = Arc::new(Pushed::default());
        let pp = ProcessProvider::start(l3, &[script(d.path(), "die", &body)], Duration::from_secs(2), pushed.clone());
        assert!(pp.wait_running(Duration::from_secs(5)));
        let t = Instant::now();
        let e = pp.get(&[format!("{l3}DefaultConnectionService")]).unwrap_err();
        assert!(matches!(&e, ProviderError::Unavailable { reason, .. } if reason.contains("exit")), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2), "the exit ends the call at once");
        assert_eq!(e.refusal().code, 9002);
        // While it is down, calls fail at once.
        assert!(matches!(pp.get(&[]), Err(ProviderError::Unavailable { .. })));
        wait_for("the restart", || pp.starts() == 2 && pp.pid().is_some());
        assert!(pushed.instances_changed.load(Ordering::SeqCst), "a restarted provider's instances are listed again");
        let v = pp.get(&[format!("{l3}DefaultConnectionService")]).unwrap();
        assert_eq!(v[&format!("{l3}DefaultConnectionService")], "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1");
    }

    #[test]
    fn stops_with_the_agent() {
        let d = tempfile::tempdir().unwrap();
        let pidfile = d.path().join("pid");
        let body = format!("#!/bin/sh\necho $$ > '{}'\ntrap '' TERM\nwhile true; do sleep 1; done\n", pidfile.display());
        let pp = ProcessProvider::start(FWD, &[script(d.path(), "stubborn", &body)], Duration::from_secs(1), Arc::new(Pushed::default()));
        assert!(pp.wait_running(Duration::from_secs(5)));
        wait_for("the pid file", || std::fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n')));
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        let t = Instant::now();
        drop(pp);
        assert!(t.elapsed() < STOP_GRACE + Duration::from_secs(2));
        // SAFETY: signal 0 only checks for existence.
        assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "ignoring SIGTERM does not keep it alive");
        assert_eq!(std::fs::read_to_string(&pidfile).unwrap().trim(), pid.to_string());
    }

    #[test]
    fn config_is_checked() {
        let s = Schema::igd();
        let c = |subtree: &str| ProviderConfig { subtree: subtree.into(), command: vec!["true".into()], timeout_ms: None };
        let err = |cfg: Vec<ProviderConfig>| Providers::start(s, &cfg).unwrap_err();
        assert!(matches!(err(vec![c("InternetGatewayDevice.Nope.")]), ProviderConfigError::BadSubtree(_)));
        assert!(matches!(err(vec![c("InternetGatewayDevice.LANDevice.{i}.Hosts.")]), ProviderConfigError::BadSubtree(_)));
        assert!(matches!(err(vec![c("InternetGatewayDevice.DeviceInfo.UpTime")]), ProviderConfigError::BadSubtree(_)));
        assert!(matches!(err(vec![c("InternetGatewayDevice.ManagementServer.")]), ProviderConfigError::ManagementServer(_)));
        assert!(matches!(err(vec![c("InternetGatewayDevice.")]), ProviderConfigError::ManagementServer(_)));
        assert!(matches!(err(vec![c("InternetGatewayDevice.LANDevice.1."), c("InternetGatewayDevice.LANDevice.1.Hosts.")]), ProviderConfigError::Overlap(_)));
        assert!(matches!(err(vec![ProviderConfig { timeout_ms: Some(0), ..c("InternetGatewayDevice.Time.") }]), ProviderConfigError::BadTimeout(_)));
        assert!(matches!(err(vec![ProviderConfig { command: vec![], ..c("InternetGatewayDevice.Time.") }]), ProviderConfigError::EmptyCommand(_)));
        // A table path and a nested object path are fine.
        let ok = Providers::start(s, &[c("InternetGatewayDevice.LANDevice.1.Hosts."), c("InternetGatewayDevice.Layer3Forwarding.Forwarding.")]).unwrap();
        assert_eq!(ok.owner("InternetGatewayDevice.LANDevice.1.Hosts.Host.3.IPAddress").map(|(i, _)| i), Some(1));
        assert!(ok.owner("InternetGatewayDevice.LANDevice.1.HostsX").is_none());
        let toml_cfg: Vec<ProviderConfig> =
            toml::from_str::<toml::Table>("[[providers]]\nsubtree = \"A.\"\ncommand = [\"x\"]\n").unwrap()["providers"].clone().try_into().unwrap();
        assert_eq!(toml_cfg, vec![ProviderConfig { subtree: "A.".into(), command: vec!["x".into()], timeout_ms: None }]);
    }
}
