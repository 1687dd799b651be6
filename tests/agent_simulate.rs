//! `cpekit agent simulate` against the in-repo test ACS over loopback:
//! N identities with distinct serial numbers and state directories, each
//! informing (BOOTSTRAP, then periodic), every envelope schema-valid.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use agent::config::AgentConfig;
use agent::simulate::{self, SimOptions};
use agent::soap::Body;
use assert_cmd::Command;
use support::acs::TestAcs;

fn config_file(dir: &Path, acs: &TestAcs, interval: u32, extra: &str) -> std::path::PathBuf {
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
            acs.url
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
}
