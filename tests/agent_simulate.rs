//! `cpekit agent simulate` against the in-repo test ACSes over loopback:
//! N identities with distinct serial numbers and state directories, each
//! informing (BOOTSTRAP, then periodic), every envelope schema-valid; and
//! 2,000 of them against the event-driven load ACS, with Connection
//! Requests routed by path.

mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::config::AgentConfig;
use agent::digest::{self, Scheme};
use agent::simulate::{self, SimOptions};
use agent::soap::{Body, ParameterValue};
use assert_cmd::Command;
use support::acs::TestAcs;
use support::load_acs::LoadAcs;

fn config_file(dir: &Path, acs: &TestAcs, interval: u32, extra: &str) -> std::path::PathBuf {
    config_for(dir, &acs.url, interval, extra)
}

fn config_for(dir: &Path, acs_url: &str, interval: u32, extra: &str) -> std::path::PathBuf {
    let f = dir.join("agent.toml");
    std::fs::write(
        &f,
        format!(
            r#"
[acs]
url = "{}"
username = "00D09E-{{serial}}"
[device]
manufacturer = "cpekit"
oui = "00D09E"
product_class = "Gateway"
serial_number = "SIM"
[agent]
state_dir = "state"
periodic_inform_interval = {interval}
response_timeout_seconds = 5
{extra}
"#,
            acs_url
        ),
    )
    .unwrap();
    f
}

fn serials(acs: &TestAcs) -> Vec<(String, Vec<String>)> {
    acs.sessions()
        .iter()
        .filter_map(|s| match s.inform.as_ref().map(|e| &e.body) {
            Some(Ok(Body::Inform { device_id, events, .. })) => Some((device_id.serial_number.clone(), events.iter().map(|e| e.code.clone()).collect())),
            _ => None,
        })
        .collect()
}

#[test]
fn five_identities_inform_with_distinct_serials_and_periodic_informs() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let cfg = AgentConfig::load(&config_file(d.path(), &acs, 1, "")).unwrap();
    // The state is in memory unless a state directory is given.
    let opts = SimOptions {
        count: 5,
        duration: Some(Duration::from_millis(3500)),
        ramp: Some(Duration::from_millis(500)),
        report_every: Duration::from_secs(1),
        state_dir: Some(cfg.agent.state_dir.clone()),
        ..SimOptions::default()
    };
    let mut lines = 0;
    let summary = simulate::run(&cfg, &opts, Arc::new(AtomicBool::new(false)), |_| lines += 1).unwrap();
    assert!(lines >= 2, "a summary line every second");
    let seen = serials(&acs);
    let distinct: BTreeSet<&str> = seen.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(distinct, ["SIM-00001", "SIM-00002", "SIM-00003", "SIM-00004", "SIM-00005"].into_iter().collect());
    for sn in &distinct {
        let evs: Vec<&Vec<String>> = seen.iter().filter(|(s, _)| s == sn).map(|(_, e)| e).collect();
        assert_eq!(evs[0], &vec!["0 BOOTSTRAP".to_string()], "{sn}");
        assert!(evs.iter().skip(1).any(|e| e.contains(&"2 PERIODIC".to_string())), "{sn}: {evs:?}");
        assert!(d.path().join("state/sim").join(sn).join("parameters.json").exists());
    }
    assert_eq!(summary.started, 5);
    assert_eq!(summary.sessions_failed, 0);
    assert_eq!(summary.informs as usize, seen.len());
    assert!(summary.periodic_informs >= 5, "{summary:?}");
    assert!(summary.latency_p99_ms > 0.0);
    assert!(acs.validate_all() >= seen.len());
}

#[test]
fn cli_runs_for_a_duration_and_prints_json() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    // One Connection Request listener on any free port, for all identities.
    let f = config_file(d.path(), &acs, 3600, "connection_request = \"127.0.0.1:0\"");
    let out = Command::cargo_bin("cpekit")
        .unwrap()
        .args(["agent", "simulate", "--count", "3", "--duration", "1.5", "--ramp", "0.3", "--report-every", "0.5", "--json", "--config"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["identities"], 3);
    assert_eq!(j["sessions_ok"], 3, "{j}");
    assert_eq!(j["sessions_failed"], 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("sim: 3/3 up"));
    let distinct: BTreeSet<String> = serials(&acs).into_iter().map(|(s, _)| s).collect();
    assert_eq!(distinct.len(), 3);
    let cr_urls: BTreeSet<String> = acs
        .sessions()
        .iter()
        .filter_map(|s| s.inform_param("InternetGatewayDevice.ManagementServer.ConnectionRequestURL"))
        .filter(|u| u.starts_with("http://127.0.0.1:"))
        .collect();
    assert_eq!(cr_urls.len(), 3, "{cr_urls:?}");
    // --count 0 is a usage error.
    let bad = Command::cargo_bin("cpekit").unwrap().args(["agent", "simulate", "--count", "0", "--config"]).arg(&f).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    // More shards than identities: a usage error too; without --config, clap's.
    let bad = Command::cargo_bin("cpekit")
        .unwrap()
        .args(["agent", "simulate", "--count", "2", "--shard", "1/3", "--duration", "5", "--config"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("fewer identities than shards"));
    let bad = Command::cargo_bin("cpekit").unwrap().args(["agent", "simulate", "--count", "2"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    // A serial number that would exceed Table 34's 64 characters: a malformed config.
    let long = d.path().join("long.toml");
    let text = std::fs::read_to_string(&f).unwrap().replace("serial_number = \"SIM\"", &format!("serial_number = \"{}\"", "S".repeat(60)));
    assert!(text.contains(&"S".repeat(60)), "{text}");
    std::fs::write(&long, text).unwrap();
    let bad = Command::cargo_bin("cpekit").unwrap().args(["agent", "simulate", "--count", "2", "--duration", "1", "--config"]).arg(&long).output().unwrap();
    assert_eq!(bad.status.code(), Some(3), "{}", String::from_utf8_lossy(&bad.stderr));
}

/// One GET on a fresh connection (or `conn`), returning the status and the
/// WWW-Authenticate header (Connection Request replies have no body).
fn cr_get(conn: &mut BufReader<TcpStream>, path: &str, authorization: Option<&str>) -> (u16, Option<String>) {
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    conn.get_mut().write_all(format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n").as_bytes()).unwrap();
    let mut line = String::new();
    conn.read_line(&mut line).unwrap();
    let status = line.split(' ').nth(1).unwrap_or_else(|| panic!("status line {line:?}")).parse().unwrap();
    let mut challenge = None;
    loop {
        let mut l = String::new();
        conn.read_line(&mut l).unwrap();
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((n, v)) = l.split_once(':') {
            if n.eq_ignore_ascii_case("www-authenticate") {
                challenge = Some(v.trim().to_string());
            }
        }
    }
    (status, challenge)
}

fn connect(addr: &str) -> BufReader<TcpStream> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    BufReader::new(s)
}

/// Wait for `cond`; the bound only keeps a broken build from hanging the
/// test run (nothing here measures speed).
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < Duration::from_secs(300), "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Issue 14: 2,000 simulated CPEs in one event loop against the in-repo
/// event-driven ACS. Every CPE informs once (0 BOOTSTRAP) with a distinct
/// serial number and a ConnectionRequestURL of its own on the one
/// listener, routable by path; a Connection Request (Digest, with the
/// credentials the ACS set in that CPE's session) starts a session for
/// that CPE only.
#[test]
fn two_thousand_cpes_inform_once_and_connection_requests_route_by_path() {
    const N: usize = 2000;
    const TARGET: &str = "SIM-01234";
    let d = tempfile::tempdir().unwrap();
    let acs = LoadAcs::start("127.0.0.1:0", 1, true);
    let f = config_for(d.path(), &acs.url, 3600, "connection_request = \"127.0.0.1:0\"");
    let cfg = AgentConfig::load(&f).unwrap();
    // The ACS gives one CPE Connection Request credentials (3.2.2) in its
    // bootstrap session: the simulator runs SetParameterValues on that
    // CPE's own tree.
    let ms = "InternetGatewayDevice.ManagementServer.";
    let pv = |n: &str, v: &str| ParameterValue { name: format!("{ms}{n}"), value: v.into(), xsd_type: "xsd:string".into() };
    acs.script(
        TARGET,
        Body::SetParameterValues { list: vec![pv("ConnectionRequestUsername", "acs"), pv("ConnectionRequestPassword", "s3cret")], parameter_key: "cr".into() },
    );
    let stop = Arc::new(AtomicBool::new(false));
    let opts = SimOptions { count: N, ramp: Some(Duration::from_secs(2)), report_every: Duration::from_secs(1), ..SimOptions::default() };
    let sim = {
        let stop = stop.clone();
        std::thread::spawn(move || simulate::run(&cfg, &opts, stop, |_| {}).unwrap())
    };
    wait_for("every CPE's Inform and the scripted session", || acs.informs() as usize >= N && !acs.responses().is_empty());

    let seen = acs.seen();
    assert_eq!(seen.len(), N, "each CPE informed once");
    let serials: BTreeSet<&str> = seen.iter().map(|s| s.serial.as_str()).collect();
    let want: BTreeSet<String> = (1..=N).map(|i| format!("SIM-{i:05}")).collect();
    assert_eq!(serials, want.iter().map(String::as_str).collect(), "distinct serial numbers SIM-00001..SIM-02000");
    assert!(seen.iter().all(|s| s.events == ["0 BOOTSTRAP"]), "first contact is a bootstrap");
    // One listener; the path names the CPE and a random secret.
    let urls: Vec<(&str, &str)> =
        seen.iter().map(|s| (s.serial.as_str(), s.connection_request_url.as_deref().expect("ConnectionRequestURL in the Inform"))).collect();
    let hosts: BTreeSet<&str> = urls.iter().map(|(_, u)| u.split("/cr/").next().unwrap()).collect();
    assert_eq!(hosts.len(), 1, "one Connection Request listener: {hosts:?}");
    let host = hosts.into_iter().next().unwrap().strip_prefix("http://").unwrap().to_string();
    assert_eq!(urls.iter().map(|(_, u)| *u).collect::<BTreeSet<_>>().len(), N, "distinct URLs");
    let path_of = |u: &str| format!("/cr/{}", u.split("/cr/").nth(1).unwrap());
    for (serial, url) in &urls {
        let p = path_of(url);
        let secret = p.strip_prefix(&format!("/cr/{serial}/")).unwrap_or_else(|| panic!("{url} names {serial}"));
        assert!(secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_hexdigit()), "{url}");
    }
    // Routable: every URL reaches its CPE (a Digest challenge); a wrong
    // secret, or another CPE's secret, reaches nothing (404).
    let mut conn = connect(&host);
    for (i, (_, url)) in urls.iter().enumerate() {
        let (status, challenge) = cr_get(&mut conn, &path_of(url), None);
        assert_eq!(status, 401, "{url}");
        assert!(matches!(digest::pick(&[challenge.as_deref().unwrap()]).unwrap(), Scheme::Digest(_)), "{url}");
        if i % 7 == 6 {
            conn = connect(&host);
        }
    }
    let (target_url, other_url) = {
        let t = urls.iter().find(|(s, _)| *s == TARGET).unwrap().1;
        let o = urls.iter().find(|(s, _)| *s == "SIM-00001").unwrap().1;
        (path_of(t), path_of(o))
    };
    let other_secret = other_url.rsplit('/').next().unwrap();
    assert_eq!(cr_get(&mut connect(&host), &format!("/cr/{TARGET}/{other_secret}"), None).0, 404);
    assert_eq!(cr_get(&mut connect(&host), &format!("/cr/{TARGET}/{}", "0".repeat(32)), None).0, 404);
    assert_eq!(cr_get(&mut connect(&host), "/cr/SIM-09999/00", None).0, 404);

    // The scripted CPE applied the credentials (SetParameterValuesResponse, Status 0).
    let responses = acs.responses();
    assert_eq!(responses.len(), 1, "{responses:?}");
    assert_eq!(responses[0].0, TARGET);
    assert!(responses[0].1.contains("<cwmp:SetParameterValuesResponse><Status>0</Status>"), "{}", responses[0].1);

    // Another CPE has no such credentials: refused.
    let mut c = connect(&host);
    let (_, ch) = cr_get(&mut c, &other_url, None);
    let Scheme::Digest(ch) = digest::pick(&[ch.as_deref().unwrap()]).unwrap() else { panic!() };
    let a = digest::digest_authorization(&ch, "GET", &other_url, "acs", "s3cret", 1, "c0ffee");
    assert_eq!(cr_get(&mut c, &other_url, Some(&a)).0, 401);
    // The target accepts them: 200, and a session with 6 CONNECTION REQUEST.
    let mut c = connect(&host);
    let (_, ch) = cr_get(&mut c, &target_url, None);
    let Scheme::Digest(ch) = digest::pick(&[ch.as_deref().unwrap()]).unwrap() else { panic!() };
    let a = digest::digest_authorization(&ch, "GET", &target_url, "acs", "s3cret", 1, "c0ffee");
    assert_eq!(cr_get(&mut c, &target_url, Some(&a)).0, 200);
    wait_for("the Connection Request session", || acs.informs() as usize > N);
    stop.store(true, Ordering::SeqCst);
    let summary = sim.join().unwrap();

    let seen = acs.seen();
    assert_eq!(seen.len(), N + 1, "one more session, for that CPE only");
    assert_eq!(seen[N].serial, TARGET);
    assert_eq!(seen[N].events, ["6 CONNECTION REQUEST"]);
    assert_eq!((summary.identities, summary.started), (N, N));
    assert_eq!(summary.informs as usize, N + 1, "{summary:?}");
    assert_eq!(summary.sessions_failed, 0, "{summary:?}");
    assert_eq!(summary.connection_requests, 1);
}

/// Scripted behaviours run the agent's own extension code: a Reboot sent
/// to one simulated CPE is answered and the CPE comes back with 1 BOOT and
/// M Reboot (A.3.2.9); a ScheduleInform brings 3 SCHEDULED and
/// M ScheduleInform with its CommandKey (A.4.1.2). Other CPEs are not
/// affected.
#[test]
fn reboot_and_schedule_inform_run_the_agents_extensions() {
    let d = tempfile::tempdir().unwrap();
    let acs = LoadAcs::start("127.0.0.1:0", 1, true);
    let cfg = AgentConfig::load(&config_for(d.path(), &acs.url, 3600, "")).unwrap();
    acs.script("SIM-00002", Body::Reboot { command_key: "rb1".into() });
    acs.script("SIM-00004", Body::ScheduleInform { delay_seconds: 1, command_key: "si1".into() });
    let stop = Arc::new(AtomicBool::new(false));
    let opts = SimOptions { count: 5, ramp: Some(Duration::from_millis(300)), report_every: Duration::from_secs(1), ..SimOptions::default() };
    let sim = {
        let stop = stop.clone();
        std::thread::spawn(move || simulate::run(&cfg, &opts, stop, |_| {}).unwrap())
    };
    let events_of = |sn: &str| acs.seen().into_iter().filter(|s| s.serial == sn).map(|s| s.events).collect::<Vec<_>>();
    wait_for("the Reboot and ScheduleInform follow-ups", || events_of("SIM-00002").len() >= 2 && events_of("SIM-00004").len() >= 2);
    stop.store(true, Ordering::SeqCst);
    let summary = sim.join().unwrap();
    let rb = events_of("SIM-00002");
    assert_eq!(rb[0], ["0 BOOTSTRAP"]);
    assert!(rb[1].contains(&"1 BOOT".to_string()) && rb[1].contains(&"M Reboot".to_string()), "{rb:?}");
    let si = events_of("SIM-00004");
    assert!(si[1].contains(&"3 SCHEDULED".to_string()) && si[1].contains(&"M ScheduleInform".to_string()), "{si:?}");
    let responses = acs.responses();
    assert!(responses.iter().any(|(sn, b)| sn == "SIM-00002" && b.contains("<cwmp:RebootResponse")), "{responses:?}");
    assert!(responses.iter().any(|(sn, b)| sn == "SIM-00004" && b.contains("<cwmp:ScheduleInformResponse")), "{responses:?}");
    for sn in ["SIM-00001", "SIM-00003", "SIM-00005"] {
        assert_eq!(events_of(sn), [["0 BOOTSTRAP"]], "{sn}");
    }
    assert_eq!(summary.sessions_failed, 0, "{summary:?}");
    // The extensions' state lives in the config's state directory.
    assert!(d.path().join("state/sim/SIM-00002/transfers.json").exists());
}

/// State is in memory by default; with a state directory a later run
/// resumes: 1 BOOT, not 0 BOOTSTRAP (Table 35), and the same
/// ConnectionRequestURL path (the ACS knows it).
#[test]
fn state_dir_resumes_with_boot_and_keeps_the_connection_request_path() {
    let d = tempfile::tempdir().unwrap();
    let acs = LoadAcs::start("127.0.0.1:0", 1, true);
    let cfg = AgentConfig::load(&config_for(d.path(), &acs.url, 3600, "connection_request = \"127.0.0.1:0\"")).unwrap();
    let state = d.path().join("sim-state");
    let run = |state_dir: Option<&Path>, n: usize| {
        let opts = SimOptions {
            count: 2,
            ramp: Some(Duration::from_millis(100)),
            state_dir: state_dir.map(Path::to_path_buf),
            report_every: Duration::from_secs(1),
            ..SimOptions::default()
        };
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let cfg = cfg.clone();
        let h = std::thread::spawn(move || simulate::run(&cfg, &opts, s2, |_| {}).unwrap());
        wait_for("the Informs", || acs.seen().len() >= n);
        stop.store(true, Ordering::SeqCst);
        h.join().unwrap()
    };
    run(Some(&state), 2);
    assert!(state.join("sim/SIM-00001/agent.json").exists());
    run(Some(&state), 4);
    run(None, 6);
    run(None, 8);
    let seen = acs.seen();
    let of = |sn: &str| seen.iter().filter(|s| s.serial == sn).cloned().collect::<Vec<_>>();
    for sn in ["SIM-00001", "SIM-00002"] {
        let s = of(sn);
        assert_eq!(s.len(), 4, "{sn}: {s:?}");
        assert_eq!(s[0].events, ["0 BOOTSTRAP"], "{sn}");
        assert_eq!(s[1].events, ["1 BOOT"], "{sn}: resumed from the state directory");
        // The listener's port is any free one (port 0); the path stays.
        let path = |u: &Option<String>| u.as_deref().unwrap().split_once("/cr/").unwrap().1.to_string();
        assert_eq!(path(&s[0].connection_request_url), path(&s[1].connection_request_url), "{sn}");
        assert_ne!(path(&s[1].connection_request_url), path(&s[2].connection_request_url), "{sn}");
        // In memory: every run is a first start.
        assert_eq!((s[2].events.as_slice(), s[3].events.as_slice()), (&["0 BOOTSTRAP".to_string()][..], &["0 BOOTSTRAP".to_string()][..]), "{sn}");
    }
}

/// 3.4.4: the simulated CPEs answer the ACS's Digest challenge with the
/// agent's digest code ({serial} in the username), over the connection
/// the nonce was issued on.
#[test]
fn simulated_cpes_authenticate_with_digest() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let f = config_file(d.path(), &acs, 3600, "");
    std::fs::write(&f, std::fs::read_to_string(&f).unwrap().replace("username = \"00D09E-{serial}\"", "username = \"00D09E-{serial}\"\npassword = \"pw\""))
        .unwrap();
    acs.set_auth(support::acs::AuthMode::Digest { user: "00D09E-SIM-00002".into(), pass: "pw".into() });
    let cfg = AgentConfig::load(&f).unwrap();
    // One session at a time: the test ACS keeps one session's state.
    let opts = SimOptions { count: 3, ramp: Some(Duration::from_millis(300)), max_sessions: 1, report_every: Duration::from_secs(1), ..SimOptions::default() };
    let stop = Arc::new(AtomicBool::new(false));
    let h = {
        let stop = stop.clone();
        std::thread::spawn(move || simulate::run(&cfg, &opts, stop, |_| {}).unwrap())
    };
    let tried = |sn: &str| acs.posts().iter().any(|p| p.body.contains(&format!("<SerialNumber>{sn}</SerialNumber>")));
    wait_for("SIM-00002's session and the others' attempts", || {
        serials(&acs).iter().any(|(s, _)| s == "SIM-00002") && tried("SIM-00001") && tried("SIM-00003")
    });
    stop.store(true, Ordering::SeqCst);
    let summary = h.join().unwrap();
    // Only SIM-00002 has the ACS's credentials: the others are refused (and retry).
    let seen = serials(&acs);
    assert!(seen.iter().all(|(s, _)| s == "SIM-00002"), "{seen:?}");
    let posts = acs.posts();
    let authed: Vec<_> = posts.iter().filter(|p| p.status == 200).collect();
    assert!(
        authed.iter().any(|p| p.authorization.as_deref().is_some_and(|a| a.starts_with("Digest ") && a.contains("username=\"00D09E-SIM-00002\""))),
        "{posts:?}"
    );
    assert!(posts.iter().any(|p| p.status == 401));
    assert!(summary.sessions_ok >= 1 && summary.sessions_failed >= 2, "{summary:?}");
}

/// `--shard I/N` runs disjoint ranges; `agent simulate report` merges the
/// shards' JSON summaries.
#[test]
fn cli_shards_and_report_merge() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let f = config_file(d.path(), &acs, 3600, "");
    let mut files = Vec::new();
    for shard in ["1/2", "2/2"] {
        let out = Command::cargo_bin("cpekit")
            .unwrap()
            .args(["agent", "simulate", "--count", "5", "--shard", shard, "--duration", "1", "--ramp", "0.2", "--max-sessions", "1", "--json", "--config"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let p = d.path().join(format!("shard-{}.json", shard.replace('/', "-")));
        std::fs::write(&p, &out.stdout).unwrap();
        files.push(p);
    }
    let one: serde_json::Value = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!((one["first_identity"].as_u64(), one["last_identity"].as_u64(), one["shard"].as_str()), (Some(1), Some(2), Some("1/2")));
    let out = Command::cargo_bin("cpekit").unwrap().args(["agent", "simulate", "report", "--json"]).args(&files).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((m["identities"].as_u64(), m["first_identity"].as_u64(), m["last_identity"].as_u64()), (Some(5), Some(1), Some(5)), "{m}");
    assert_eq!(m["informs"], 5, "{m}");
    let distinct: BTreeSet<String> = serials(&acs).into_iter().map(|(s, _)| s).collect();
    assert_eq!(distinct, (1..=5).map(|i| format!("SIM-{i:05}")).collect());
    // The same shard twice overlaps: refused.
    let bad = Command::cargo_bin("cpekit").unwrap().args(["agent", "simulate", "report"]).args([&files[0], &files[0]]).output().unwrap();
    assert_eq!(bad.status.code(), Some(3), "summaries that do not fit together are malformed input");
    // Not a summary at all: malformed input too.
    let bad = Command::cargo_bin("cpekit").unwrap().args(["agent", "simulate", "report"]).arg(&f).output().unwrap();
    assert_eq!(bad.status.code(), Some(3), "{}", String::from_utf8_lossy(&bad.stderr));
}
