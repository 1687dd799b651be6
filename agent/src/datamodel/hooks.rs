//! Value backend hooks: parameters whose values do not live in the
//! persisted [`Store`](super::store::Store) but are computed (built-ins) or
//! obtained from a vendor's script (command hooks).
//!
//! Built-ins, registered only where the parameter exists in the schema:
//! - `InternetGatewayDevice.DeviceInfo.UpTime` — B.2.3 "Time in seconds since
//!   the CPE was last restarted"; here: since the agent (its [`Hooks`]) started.
//! - `InternetGatewayDevice.Time.CurrentLocalTime` — B.2.3 "the current date
//!   and time in the CPE's local time zone": now, in the offset given by
//!   `Time.LocalTimeZone` (`+hh:mm`) when that holds a valid offset, else UTC.
//! - `InternetGatewayDevice.DeviceInfo.SpecVersion` — "1.0" (B.2.3: "Currently
//!   1.0 is the only available version").
//!
//! Command hooks come from the agent configuration, one `[[hooks]]` entry
//! per parameter (see [`HookConfig`]). A command hook replaces a built-in
//! on the same parameter.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use foundation::clock::format_date_time;
use foundation::subprocess::{self, AfterExit};
use serde::Deserialize;
use time::{OffsetDateTime, UtcOffset};

use super::{InvalidValue, ParamDef, Schema};

pub const UPTIME: &str = "InternetGatewayDevice.DeviceInfo.UpTime";
pub const CURRENT_LOCAL_TIME: &str = "InternetGatewayDevice.Time.CurrentLocalTime";
pub const LOCAL_TIME_ZONE: &str = "InternetGatewayDevice.Time.LocalTimeZone";
pub const SPEC_VERSION: &str = "InternetGatewayDevice.DeviceInfo.SpecVersion";

/// Default command timeout.
pub const DEFAULT_TIMEOUT_MS: u64 = 3000;
/// Largest accepted `timeout_ms`: a slow script must not stall a session
/// (the ACS side gives up after its own timeout).
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// Largest accepted standard output of a get command. The longest value
/// in the IGD:1.0 model is DeviceLog, string(32K); 64 KiB leaves room for
/// multi-byte characters.
pub const MAX_OUTPUT: usize = 64 * 1024;
/// How much of a failing command's standard error is kept for the message.
const MAX_STDERR: usize = 512;

/// One `[[hooks]]` entry of the agent configuration: bind a parameter to
/// external commands.
///
/// ```toml
/// [[hooks]]
/// parameter = "InternetGatewayDevice.DeviceInfo.ProvisioningCode"
/// get = ["/usr/lib/cpe/provcode", "get"]
/// set = ["/usr/lib/cpe/provcode", "set"]   # optional
/// timeout_ms = 2000                          # optional, default 3000, at most 60000
/// ```
///
/// - `get` and `set` are argv lists, run directly (no shell, so values and
///   names are never interpreted by one); `argv[0]` is looked up in `PATH`
///   when it contains no `/`. Wrap in `["/bin/sh", "-c", "..."]` explicitly
///   if a shell is wanted.
/// - Both run with the environment variable `CPEKIT_PARAMETER` set to the
///   parameter's name.
/// - `get`: exit status 0 and the standard output is the value, with
///   trailing `\n`/`\r` removed (other whitespace is part of the value); the
///   value must be valid for the parameter's type (else an error). At most
///   [`MAX_OUTPUT`] bytes.
/// - `set`: the new value is written to standard input (exactly, no
///   newline added; on stdin rather than argv so that secrets such as
///   passwords do not show in process listings); exit status 0 = applied.
/// - A command that does not finish within the timeout is killed together
///   with its process group (each command gets its own group), and the
///   request fails (fault 9002 Internal error).
/// - Commands run synchronously, one at a time, whenever the value is
///   read: a GetParameterValues of a partial path runs every get command
///   below it, so keep them fast.
/// - `set` is only allowed on parameters the schema marks writable. A
///   hooked writable parameter without `set` is read-only for the ACS
///   (SetParameterValues: 9008; GetParameterNames reports it not writable).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    pub parameter: String,
    pub get: Vec<String>,
    #[serde(default)]
    pub set: Option<Vec<String>>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// A configuration entry that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookConfigError {
    #[error("hook for {0:?}: no such parameter in the data model (give a concrete path, instance numbers rather than {{i}})")]
    UnknownParameter(String),
    #[error("hook for {0:?}: empty command")]
    EmptyCommand(String),
    #[error("hook for {0:?}: the parameter is not writable, it cannot have a set command")]
    SetOnReadOnly(String),
    #[error("hook for {0:?}: given twice")]
    Duplicate(String),
    #[error("hook for {0:?}: timeout_ms must be 1..={MAX_TIMEOUT_MS}")]
    BadTimeout(String),
}

/// Why a hook could not produce or apply a value (sent as fault 9002).
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("hook for {parameter}: cannot run {program:?}: {source}")]
    Spawn { parameter: String, program: String, source: std::io::Error },
    #[error("hook for {parameter}: no result within {timeout_ms} ms, command killed")]
    Timeout { parameter: String, timeout_ms: u64 },
    #[error("hook for {parameter}: command failed ({status}): {stderr}")]
    Failed { parameter: String, status: String, stderr: String },
    #[error("hook for {parameter}: output longer than {MAX_OUTPUT} bytes")]
    TooLong { parameter: String },
    #[error("hook for {parameter}: output is not UTF-8")]
    NotUtf8 { parameter: String },
    #[error("hook for {parameter}: command gave an {0}", parameter = .0.path)]
    Invalid(InvalidValue),
    #[error("hook for {parameter}: read-only (no set command)")]
    ReadOnly { parameter: String },
}

/// Where the built-ins get the time from (injectable for tests).
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Wall-clock time, UTC.
    fn now(&self) -> OffsetDateTime;
    /// Monotonic time since some fixed origin (never goes back, unaffected
    /// by wall-clock changes such as NTP steps).
    fn monotonic(&self) -> Duration;
}

/// The real clocks.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> SystemClock {
        SystemClock { origin: Instant::now() }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock moved by hand (tests, simulations).
#[derive(Debug)]
pub struct ManualClock {
    state: Mutex<(OffsetDateTime, Duration)>,
}

impl ManualClock {
    pub fn new(now: OffsetDateTime) -> ManualClock {
        ManualClock { state: Mutex::new((now, Duration::ZERO)) }
    }
    /// Let `d` pass (both clocks).
    pub fn advance(&self, d: Duration) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0 += d;
        s.1 += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0
    }
    fn monotonic(&self) -> Duration {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    UpTime,
    CurrentLocalTime,
    SpecVersion,
}

#[derive(Debug)]
struct CommandHook {
    def: ParamDef,
    get: Vec<String>,
    set: Option<Vec<String>>,
    timeout: Duration,
}

/// The hooks of one agent.
#[derive(Debug)]
pub struct Hooks {
    clock: Arc<dyn Clock>,
    started: Duration,
    builtins: BTreeMap<String, Builtin>,
    commands: BTreeMap<String, CommandHook>,
}

impl Hooks {
    /// Built-ins and the configured command hooks, on the real clock.
    pub fn new(schema: &Schema, config: &[HookConfig]) -> Result<Hooks, HookConfigError> {
        Hooks::with_clock(schema, config, Arc::new(SystemClock::new()))
    }

    /// Same, with the given clock; UpTime counts from now on that clock.
    pub fn with_clock(schema: &Schema, config: &[HookConfig], clock: Arc<dyn Clock>) -> Result<Hooks, HookConfigError> {
        let builtins = [(UPTIME, Builtin::UpTime), (CURRENT_LOCAL_TIME, Builtin::CurrentLocalTime), (SPEC_VERSION, Builtin::SpecVersion)]
            .into_iter()
            .filter(|(p, _)| schema.param(p).is_some())
            .map(|(p, b)| (p.to_string(), b))
            .collect();
        let mut commands = BTreeMap::new();
        for c in config {
            let p = &c.parameter;
            let def = schema.param(p).filter(|_| !p.contains("{i}")).ok_or_else(|| HookConfigError::UnknownParameter(p.clone()))?;
            if c.get.is_empty() || c.set.as_ref().is_some_and(|s| s.is_empty()) {
                return Err(HookConfigError::EmptyCommand(p.clone()));
            }
            if c.set.is_some() && !def.writable {
                return Err(HookConfigError::SetOnReadOnly(p.clone()));
            }
            let ms = c.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
            if ms == 0 || ms > MAX_TIMEOUT_MS {
                return Err(HookConfigError::BadTimeout(p.clone()));
            }
            let hook =
                CommandHook { def: ParamDef { path: p.clone(), ..def.clone() }, get: c.get.clone(), set: c.set.clone(), timeout: Duration::from_millis(ms) };
            if commands.insert(p.clone(), hook).is_some() {
                return Err(HookConfigError::Duplicate(p.clone()));
            }
        }
        Ok(Hooks { started: clock.monotonic(), clock, builtins, commands })
    }

    /// Whether `path`'s value comes from a hook.
    pub fn is_hooked(&self, path: &str) -> bool {
        self.commands.contains_key(path) || self.builtins.contains_key(path)
    }

    /// For a hooked parameter, whether a value can be applied (a command
    /// hook with `set`); `None` when `path` is not hooked.
    pub fn settable(&self, path: &str) -> Option<bool> {
        match self.commands.get(path) {
            Some(c) => Some(c.set.is_some()),
            None => self.builtins.contains_key(path).then_some(false),
        }
    }

    /// The hooked value of `path` (`None`: not hooked). `stored` looks up
    /// other parameters' stored values (CurrentLocalTime reads
    /// LocalTimeZone).
    pub fn get(&self, path: &str, stored: &dyn Fn(&str) -> Option<String>) -> Option<Result<String, HookError>> {
        if let Some(c) = self.commands.get(path) {
            return Some(c.read());
        }
        let b = self.builtins.get(path)?;
        Some(Ok(match b {
            // unsignedInt: saturate rather than wrap after 136 years.
            Builtin::UpTime => (self.clock.monotonic().saturating_sub(self.started).as_secs()).min(u32::MAX as u64).to_string(),
            Builtin::CurrentLocalTime => {
                let offset = stored(LOCAL_TIME_ZONE).and_then(|z| parse_offset(&z)).unwrap_or(UtcOffset::UTC);
                format_date_time(self.clock.now().to_offset(offset))
            }
            Builtin::SpecVersion => "1.0".to_string(),
        }))
    }

    /// Apply `value` to a hooked parameter (`None`: not hooked).
    pub fn set(&self, path: &str, value: &str) -> Option<Result<(), HookError>> {
        if let Some(c) = self.commands.get(path) {
            return Some(match &c.set {
                Some(argv) => run(argv, path, Some(value), c.timeout).map(|_| ()),
                None => Err(HookError::ReadOnly { parameter: path.to_string() }),
            });
        }
        self.builtins.contains_key(path).then(|| Err(HookError::ReadOnly { parameter: path.to_string() }))
    }
}

impl CommandHook {
    fn read(&self) -> Result<String, HookError> {
        let out = run(&self.get, &self.def.path, None, self.timeout)?;
        let s = String::from_utf8(out).map_err(|_| HookError::NotUtf8 { parameter: self.def.path.clone() })?;
        let v = s.trim_end_matches(['\n', '\r']).to_string();
        self.def.validate(&v).map_err(HookError::Invalid)?;
        Ok(v)
    }
}

/// `+hh:mm` / `-hh:mm` (B.2.3 Time.LocalTimeZone).
fn parse_offset(z: &str) -> Option<UtcOffset> {
    let b = z.as_bytes();
    if b.len() != 6 || b[3] != b':' || !matches!(b[0], b'+' | b'-') {
        return None;
    }
    let h: i8 = z[1..3].parse().ok()?;
    let m: i8 = z[4..6].parse().ok()?;
    let sign = if b[0] == b'-' { -1 } else { 1 };
    UtcOffset::from_hms(sign * h, sign * m, 0).ok()
}

/// Run `argv`, feeding `input` on stdin; the standard output on success.
fn run(argv: &[String], parameter: &str, input: Option<&str>, timeout: Duration) -> Result<Vec<u8>, HookError> {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).env("CPEKIT_PARAMETER", parameter);
    let opts = subprocess::Options {
        timeout,
        stdin: input.map(|v| v.as_bytes().to_vec()),
        stdout_limit: Some(MAX_OUTPUT),
        stderr_limit: Some(MAX_STDERR),
        // The value is the whole output: wait for whatever the command
        // started to close it too (killed with it at the deadline).
        after_exit: AfterExit::WaitForOutput,
    };
    let out = subprocess::run(&mut cmd, &opts).map_err(|e| match e {
        subprocess::Error::Spawn(source) => HookError::Spawn { parameter: parameter.to_string(), program: argv[0].clone(), source },
        subprocess::Error::Timeout(_) | subprocess::Error::Wait(_) => {
            HookError::Timeout { parameter: parameter.to_string(), timeout_ms: timeout.as_millis() as u64 }
        }
    })?;
    if !out.status.success() {
        let e = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(HookError::Failed { parameter: parameter.to_string(), status: out.status.to_string(), stderr: e });
    }
    if out.stdout_truncated {
        return Err(HookError::TooLong { parameter: parameter.to_string() });
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// Write an executable shell script.
    pub(crate) fn script(dir: &std::path::Path, name: &str, body: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.to_string_lossy().into_owned()
    }

    fn none(_: &str) -> Option<String> {
        None
    }

    const PC: &str = "InternetGatewayDevice.DeviceInfo.ProvisioningCode";

    #[test]
    fn uptime_and_local_time_follow_the_injected_clock() {
        let t0 = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let clock = Arc::new(ManualClock::new(t0));
        clock.advance(Duration::from_secs(500)); // before the agent started
        let h = Hooks::with_clock(Schema::igd(), &[], clock.clone()).unwrap();
        assert_eq!(h.get(UPTIME, &none).unwrap().unwrap(), "0");
        clock.advance(Duration::from_millis(61_900));
        assert_eq!(h.get(UPTIME, &none).unwrap().unwrap(), "61");
        assert_eq!(h.get(CURRENT_LOCAL_TIME, &none).unwrap().unwrap(), "2023-11-14T22:22:41Z");
        let tz = |p: &str| (p == LOCAL_TIME_ZONE).then(|| "+02:00".to_string());
        assert_eq!(h.get(CURRENT_LOCAL_TIME, &tz).unwrap().unwrap(), "2023-11-15T00:22:41+02:00");
        let bad_tz = |p: &str| (p == LOCAL_TIME_ZONE).then(|| "CET".to_string());
        assert!(h.get(CURRENT_LOCAL_TIME, &bad_tz).unwrap().unwrap().ends_with('Z'));
        // Valid for the schema.
        let v = h.get(CURRENT_LOCAL_TIME, &tz).unwrap().unwrap();
        Schema::igd().param(CURRENT_LOCAL_TIME).unwrap().validate(&v).unwrap();
        assert_eq!(h.get(SPEC_VERSION, &none).unwrap().unwrap(), "1.0");
        assert!(h.get(PC, &none).is_none());
        assert_eq!(h.settable(UPTIME), Some(false));
        assert!(matches!(h.set(UPTIME, "1"), Some(Err(HookError::ReadOnly { .. }))));
    }

    #[test]
    fn command_get_and_set() {
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join("state");
        std::fs::write(&state, "TLCO\n").unwrap();
        let get = script(d.path(), "get", &format!("cat '{}'", state.display()));
        // The value arrives on stdin, the name in the environment.
        let set = script(d.path(), "set", &format!("cat > '{0}'; echo \"$CPEKIT_PARAMETER\" > '{0}.name'", state.display()));
        let cfg = HookConfig { parameter: PC.into(), get: vec![get], set: Some(vec![set]), timeout_ms: None };
        let h = Hooks::new(Schema::igd(), &[cfg]).unwrap();
        assert_eq!(h.get(PC, &none).unwrap().unwrap(), "TLCO");
        h.set(PC, "ABCD.GRP2").unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(&state).unwrap(), "ABCD.GRP2");
        assert_eq!(std::fs::read_to_string(d.path().join("state.name")).unwrap().trim(), PC);
        assert_eq!(h.get(PC, &none).unwrap().unwrap(), "ABCD.GRP2");
        assert_eq!(h.settable(PC), Some(true));
    }

    #[test]
    fn command_failures() {
        let d = tempfile::tempdir().unwrap();
        let mk = |name: &str, body: &str, timeout_ms| {
            let cfg = HookConfig { parameter: PC.into(), get: vec![script(d.path(), name, body)], set: None, timeout_ms };
            Hooks::new(Schema::igd(), &[cfg]).unwrap()
        };
        let e = mk("fail", "echo broken >&2; exit 3", None).get(PC, &none).unwrap().unwrap_err();
        assert!(matches!(&e, HookError::Failed { stderr, .. } if stderr == "broken"), "{e}");
        let e = mk("long", "echo 12345678901234567890123456789012345678901234567890123456789012345", None).get(PC, &none).unwrap().unwrap_err();
        assert!(matches!(e, HookError::Invalid(_)), "string(64) enforced: {e}");
        let e = mk("huge", "head -c 200000 /dev/zero | tr '\\0' a", None).get(PC, &none).unwrap().unwrap_err();
        assert!(matches!(e, HookError::TooLong { .. }), "{e}");
        let h = Hooks::new(
            Schema::igd(),
            &[HookConfig { parameter: PC.into(), get: vec![d.path().join("missing").display().to_string()], set: None, timeout_ms: None }],
        )
        .unwrap();
        assert!(matches!(h.get(PC, &none).unwrap().unwrap_err(), HookError::Spawn { .. }));
        assert!(matches!(h.set(PC, "X"), Some(Err(HookError::ReadOnly { .. }))));
        assert_eq!(h.settable(PC), Some(false));
    }

    #[test]
    fn timeout_kills_the_command_and_its_children() {
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("survived");
        // A child in the background keeps the pipe open; the script itself hangs too.
        let body = format!("(sleep 2; touch '{}') & sleep 30", marker.display());
        let cfg = HookConfig { parameter: PC.into(), get: vec![script(d.path(), "hang", &body)], set: None, timeout_ms: Some(200) };
        let h = Hooks::new(Schema::igd(), &[cfg]).unwrap();
        let t = Instant::now();
        let e = h.get(PC, &none).unwrap().unwrap_err();
        assert!(matches!(e, HookError::Timeout { timeout_ms: 200, .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        // A script that exits but leaves a child holding stdout.
        let body = format!("echo X; (sleep 2; touch '{}') &", marker.display());
        let cfg = HookConfig { parameter: PC.into(), get: vec![script(d.path(), "orphan", &body)], set: None, timeout_ms: Some(300) };
        let h = Hooks::new(Schema::igd(), &[cfg]).unwrap();
        let t = Instant::now();
        assert!(matches!(h.get(PC, &none).unwrap().unwrap_err(), HookError::Timeout { .. }));
        assert!(t.elapsed() < Duration::from_secs(2));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "the process group was killed");
    }

    #[test]
    fn config_is_checked() {
        let s = Schema::igd();
        let c = |p: &str, set: bool, t: Option<u64>| HookConfig {
            parameter: p.into(),
            get: vec!["true".into()],
            set: set.then(|| vec!["true".into()]),
            timeout_ms: t,
        };
        assert_eq!(
            Hooks::new(s, &[c("InternetGatewayDevice.Nope", false, None)]).unwrap_err(),
            HookConfigError::UnknownParameter("InternetGatewayDevice.Nope".into())
        );
        assert!(matches!(
            Hooks::new(s, &[c("InternetGatewayDevice.LANDevice.{i}.LANEthernetInterfaceNumberOfEntries", false, None)]),
            Err(HookConfigError::UnknownParameter(_))
        ));
        assert!(matches!(Hooks::new(s, &[c(UPTIME, true, None)]), Err(HookConfigError::SetOnReadOnly(_))));
        assert!(matches!(Hooks::new(s, &[c(PC, false, Some(0))]), Err(HookConfigError::BadTimeout(_))));
        assert!(matches!(Hooks::new(s, &[c(PC, false, None), c(PC, true, None)]), Err(HookConfigError::Duplicate(_))));
        let toml_cfg: Vec<HookConfig> = toml::from_str::<toml::Table>("[[hooks]]\nparameter = \"A.B\"\nget = [\"x\", \"y\"]\ntimeout_ms = 5\n").unwrap()
            ["hooks"]
            .clone()
            .try_into()
            .unwrap();
        assert_eq!(toml_cfg, vec![HookConfig { parameter: "A.B".into(), get: vec!["x".into(), "y".into()], set: None, timeout_ms: Some(5) }]);
    }
}
