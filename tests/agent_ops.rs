//! Running the agent as a service (issue 13): the `cpekit agent` process
//! against the test ACS — SIGTERM ends the current session cleanly and
//! saves the state, SIGHUP reloads the configuration, `agent status`
//! reports what the state directory says, logs carry no colour codes when
//! not on a terminal and can be JSON lines.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent::soap::{Body, ParameterValue};
use serde_json::Value;
use support::acs::TestAcs;

const MS: &str = "InternetGatewayDevice.ManagementServer.";

fn cpekit() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cpekit"))
}

fn pv(n: &str, v: &str, t: &str) -> ParameterValue {
    ParameterValue { name: n.into(), value: v.into(), xsd_type: t.into() }
}

fn write_config(dir: &Path, acs_url: &str, agent_extra: &str) -> PathBuf {
    let f = dir.join("agent.toml");
    std::fs::write(&f, support::config::agent_toml(acs_url, dir, "", agent_extra, "")).unwrap();
    f
}

/// `cpekit agent --config F ARGS`, stderr to `dir/stderr.log`.
fn spawn_agent(dir: &Path, config: &Path, args: &[&str]) -> (Child, PathBuf) {
    let log = dir.join("stderr.log");
    let child = cpekit().args(["agent", "--config"]).arg(config).args(args).stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
    (child, log)
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
}

fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(t.elapsed() < timeout, "the agent did not exit within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_log(log: &Path, needle: &str) -> String {
    let t = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "{needle:?} not logged:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn get(c: &support::acs::Conversation, name: &str) -> String {
    match c.call(Body::GetParameterValues { names: vec![name.into()] }) {
        Body::GetParameterValuesResponse { list } => list[0].value.clone(),
        other => panic!("{other:?}"),
    }
}

/// SIGTERM in the middle of a session: the session runs to its end, the
/// Connection Request accepted meanwhile stays queued, the state is saved
/// and consistent (`agent status`), and the next start reports "1 BOOT"
/// with the queued event.
#[test]
fn sigterm_mid_session_then_status_then_restart() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let config = write_config(d.path(), &acs.url, "connection_request = \"127.0.0.1:0\"");
    let (bootstrap, conv) = (acs.converse(), acs.converse());
    let (mut child, log) = spawn_agent(d.path(), &config, &[]);
    // Session 1 sets the Connection Request credentials (3.2.2).
    let set = Body::SetParameterValues {
        list: vec![pv(&format!("{MS}ConnectionRequestUsername"), "acs", "xsd:string"), pv(&format!("{MS}ConnectionRequestPassword"), "crpw", "xsd:string")],
        parameter_key: "cr".into(),
    };
    assert_eq!(bootstrap.call(set), Body::SetParameterValuesResponse { status: 0 });
    let cr_url = get(&bootstrap, &format!("{MS}ConnectionRequestURL"));
    bootstrap.end();
    assert!(acs.wait_sessions(1, Duration::from_secs(20)));
    let connection_request = || {
        let out = Command::new("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--digest", "-u", "acs:crpw", &cr_url]).output().unwrap();
        let code = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(code == "200" || code == "204", "Connection Request: {code}");
    };
    // Session 2, for a Connection Request; another one arrives during it.
    connection_request();
    assert_eq!(get(&conv, &format!("{MS}ParameterKey")), "cr");
    connection_request();
    signal(&child, libc::SIGTERM);
    wait_for_log(&log, "stopping after the current session");
    // The session goes on to its end.
    assert_eq!(get(&conv, &format!("{MS}ParameterKey")), "cr");
    conv.end();
    let status = wait_exit(&mut child, Duration::from_secs(20));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{status}\n{text}");
    assert!(text.contains("agent stopped, state saved"), "{text}");
    assert!(!text.contains('\u{1b}'), "no ANSI escape codes when stderr is not a terminal:\n{text}");
    assert_eq!(acs.sessions().len(), 2, "no session after the stop");

    // agent status --json, field by field.
    let out = cpekit().args(["agent", "status", "--json", "--config"]).arg(&config).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let st: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["serial_number"], "CPE0001");
    assert_eq!(st["oui"], "00D09E");
    assert_eq!(st["manufacturer"], "cpekit");
    assert_eq!(st["product_class"], "Gateway");
    assert_eq!(st["software_version"], "3.0.21");
    assert_eq!(st["hardware_version"], "hw1");
    assert_eq!(st["acs_url"], acs.url.as_str());
    assert_eq!(st["connection_request_url"], cr_url.as_str());
    assert_eq!(st["started"], true);
    assert_eq!(st["bootstrapped"], true);
    assert_eq!(st["retry_count"], 0);
    let last = &st["last_session"];
    assert_eq!((last["ok"].as_bool(), last["informed"].as_bool()), (Some(true), Some(true)), "{last}");
    assert_eq!(last["events"], serde_json::json!(["6 CONNECTION REQUEST"]));
    assert!(last["acs_requests"].as_u64().unwrap() >= 2, "{last}");
    assert!(last["error"].is_null());
    assert!(last["started"].as_str().unwrap() <= last["ended"].as_str().unwrap());
    assert_eq!(st["queued_events"], serde_json::json!([{"code": "6 CONNECTION REQUEST", "command_key": ""}]));
    assert_eq!(st["pending_transfers"], serde_json::json!([]));
    assert_eq!(st["enabled_options"], serde_json::json!([]));
    assert_eq!((st["periodic_inform_enabled"].as_bool(), st["next_periodic_inform"].is_null()), (Some(false), true));
    let out = cpekit().args(["agent", "status", "--config"]).arg(&config).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("queued events   6 CONNECTION REQUEST")
            && text.contains("last session")
            && text.contains(&format!("ok, {} ACS requests", last["acs_requests"])),
        "{text}"
    );

    // The next start: 1 BOOT, and the queued Connection Request.
    let (mut child, log) = spawn_agent(d.path(), &config, &["--once"]);
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert!(status.success(), "{}", std::fs::read_to_string(&log).unwrap());
    let s = acs.sessions();
    assert_eq!(s.len(), 3);
    let events = s[2].events();
    // (and 4 VALUE CHANGE: port 0 gives the Connection Request server a new
    // port, so ConnectionRequestURL, Table 33 "inform on change", changed)
    assert!(events.contains(&"1 BOOT".to_string()) && events.contains(&"6 CONNECTION REQUEST".to_string()), "{events:?}");
    assert!(!events.contains(&"0 BOOTSTRAP".to_string()), "{events:?}");
    acs.validate_all();
}

/// SIGHUP: a new ACS URL in the config is taken without a restart (a
/// bootstrap to the new ACS, not a boot); a config that does not load is
/// refused and the agent keeps running. Logs as JSON lines.
#[test]
fn sighup_reloads_the_config_and_json_logs() {
    let d = tempfile::tempdir().unwrap();
    let (acs1, acs2) = (TestAcs::start(), TestAcs::start());
    let config = write_config(d.path(), &acs1.url, "");
    let (mut child, log) = spawn_agent(d.path(), &config, &["--log-format", "json", "-v"]);
    assert!(acs1.wait_sessions(1, Duration::from_secs(20)));
    wait_for_log(&log, "session end");
    // A broken config first: refused, nothing changes.
    std::fs::write(&config, "[acs]\nurl = 5\n").unwrap();
    signal(&child, libc::SIGHUP);
    wait_for_log(&log, "configuration not reloaded");
    // Then the new ACS.
    write_config(d.path(), &acs2.url, "kick_timeout_seconds = 30");
    signal(&child, libc::SIGHUP);
    assert!(acs2.wait_sessions(1, Duration::from_secs(20)), "{}", std::fs::read_to_string(&log).unwrap());
    assert_eq!(acs2.sessions()[0].events(), vec!["0 BOOTSTRAP"], "a new ACS: bootstrap, and no 1 BOOT");
    assert_eq!(acs1.sessions().len(), 1);
    signal(&child, libc::SIGTERM);
    assert!(wait_exit(&mut child, Duration::from_secs(20)).success());
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))).collect();
    assert!(lines.iter().all(|l| l["timestamp"].is_string() && l["level"].is_string() && l["target"].is_string()));
    assert!(lines.iter().any(|l| l["message"] == "configuration reloaded"));
    assert!(lines.iter().any(|l| l["level"] == "DEBUG"), "-v: debug lines");
    assert!(lines.iter().any(|l| l["message"] == "session start" && l["fields"]["url"] == acs2.url.as_str()), "fields as an object");
    acs2.validate_all();
}

/// -q: warnings only; --log-level wins over -v.
#[test]
fn log_levels() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let config = write_config(d.path(), &acs.url, "");
    let run = |args: &[&str]| {
        let out = cpekit().args(["agent", "--once", "--config"]).arg(&config).args(args).output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let quiet = run(&["-q"]);
    assert!(!quiet.contains("INFO") && !quiet.contains("session start"), "{quiet}");
    let normal = run(&[]);
    assert!(normal.contains("session start") && !normal.contains("DEBUG"), "{normal}");
    let level = run(&["--log-level", "warn", "-v"]);
    assert!(!level.contains("session start"), "{level}");
    let bad = cpekit().args(["agent", "--once", "--log-level", "info,=[x", "--config"]).arg(&config).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
