//! `cpekit-lab-acs` as a process: exit statuses for a bad script and for a
//! script that does not finish (the full life cycle runs in the cpekit
//! package's tests/demo.rs, which needs this binary built).

use std::path::Path;
use std::process::Command;

fn acs(dir: &Path, script: &str, extra: &[&str]) -> std::process::Output {
    std::fs::write(dir.join("script.toml"), script).unwrap();
    Command::new(env!("CARGO_BIN_EXE_cpekit-lab-acs")).arg("--serve").arg(dir).arg("--script").arg(dir.join("script.toml")).args(extra).output().unwrap()
}

fn scratch(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("cpekit-lab-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn bad_scripts_are_usage_errors() {
    let d = scratch("bad");
    let missing = acs(&d, "[[session]]\n[[session.rpc]]\nmethod = \"SetVouchers\"\nfiles = [\"v.xml\"]\n", &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("v.xml does not exist"), "{missing:?}");
    let outside = acs(&d, "[[session]]\n[[session.rpc]]\nmethod = \"SetVouchers\"\nfiles = [\"../etc/passwd\"]\n", &[]);
    assert_eq!(outside.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&outside.stderr).contains("not a plain file name"), "{outside:?}");
    let typo = acs(&d, "[[session]]\nexpect_event = [\"1 BOOT\"]\n", &[]);
    assert_eq!(typo.status.code(), Some(2));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_script_that_does_not_finish_fails_and_says_what_was_missing() {
    let d = scratch("timeout");
    let rec = d.join("record.json");
    let out = acs(
        &d,
        "[[session]]\nexpect_events = [\"0 BOOTSTRAP\"]\n",
        &["--timeout", "1", "--url-file", d.join("url").to_str().unwrap(), "--record", rec.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("timed out after 1 s waiting for session 1"), "{stdout}");
    assert!(std::fs::read_to_string(d.join("url")).unwrap().starts_with("http://127.0.0.1:"));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&rec).unwrap()).unwrap();
    assert_eq!(r["failures"].as_array().unwrap().len(), 1);
    std::fs::remove_dir_all(&d).unwrap();
}
