//! `cpekit agent ...` command-line errors: usage errors exit 2, and
//! `--json` reports a failure as JSON on stdout (no ACS needed).

#[path = "support/config.rs"]
mod config;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

fn cpekit() -> Command {
    Command::cargo_bin("cpekit").unwrap()
}

/// A valid config whose ACS is never contacted.
fn good_config(dir: &Path) -> PathBuf {
    let f = dir.join("agent.toml");
    std::fs::write(&f, config::agent_toml("http://127.0.0.1:9/", dir, "", "", "")).unwrap();
    f
}

/// A config that does not validate: exit status 3.
fn bad_config(dir: &Path) -> PathBuf {
    let f = dir.join("bad.toml");
    std::fs::write(&f, config::agent_toml("ftp://x/", dir, "", "", "")).unwrap();
    f
}

#[test]
fn simulate_json_reports_failures_as_json() {
    let d = tempfile::tempdir().unwrap();
    let bad = bad_config(d.path());
    let out = cpekit().args(["agent", "simulate", "--count", "1", "--duration", "1", "--json", "--config"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 3);
    assert!(v["error"].as_str().unwrap().contains("[acs] url"), "{v}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("[acs] url"));
    // Without --json stdout stays empty.
    let out = cpekit().args(["agent", "simulate", "--count", "1", "--duration", "1", "--config"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty());
    // A usage error found after parsing (a negative duration) is JSON too.
    let good = good_config(d.path());
    let out = cpekit().args(["agent", "simulate", "--count", "1", "--duration=-1", "--json", "--config"]).arg(&good).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["ok"].as_bool(), v["exit_code"].as_u64()), (Some(false), Some(2)), "{v}");
    assert!(v["error"].as_str().unwrap().contains("--duration -1"), "{v}");
}

#[test]
fn config_is_required_without_a_subcommand() {
    let out = cpekit().args(["agent", "--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config <agent.toml>"));
}

#[test]
fn bad_arguments_are_usage_errors_and_nothing_is_spooled() {
    let d = tempfile::tempdir().unwrap();
    let f = good_config(d.path());
    let state = d.path().join("state");
    let run = |args: &[&str]| {
        let out = cpekit().arg("agent").args(args).arg("--config").arg(&f).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&["set", "InternetGatewayDevice.Nope", "1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no such parameter"));
    let (code, err) = run(&["set", "InternetGatewayDevice.ManagementServer.PeriodicInformEnable", "maybe"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("invalid value"));
    let (code, err) = run(&["request-download", "--file-type", "1 Firmware"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("Table 27"));
    let (code, err) = run(&["request-download", "--file-type", "2 Web Content", "--arg", "x"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("NAME=VALUE"));
    let spooled = |sub: &str| std::fs::read_dir(state.join(sub)).map(|d| d.count()).unwrap_or(0);
    assert_eq!((spooled("request-download"), spooled("local")), (0, 0));
    // The same commands with good arguments succeed.
    let (code, err) = run(&["request-download", "--file-type", "2 Web Content", "--arg", "Version=2.1"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(spooled("request-download"), 1);
}
