//! `scripts/demo` (`make demo`, issue 15) against the debug binaries: the
//! life cycle's every step has the outcome the demo shows (TransferComplete
//! 0, the package's files installed, the voucher's Option enabled; then the
//! rogue package refused with 9010 and the root unchanged), a step that goes
//! wrong makes the script fail, and its processes are gone after success,
//! failure and Ctrl-C.

#[path = "support/xmldsig.rs"]
mod xmldsig;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cpekit() -> PathBuf {
    // The voucher is signed and verified by the XML-DSig helper beside cpekit.
    xmldsig::helper();
    PathBuf::from(env!("CARGO_BIN_EXE_cpekit"))
}

/// Built beside `cpekit` by `cargo test --workspace` (`make test`).
fn lab_acs() -> PathBuf {
    let p = cpekit().with_file_name("cpekit-lab-acs");
    assert!(p.is_file(), "{} missing: run `cargo test --workspace` or `cargo build -p cpekit-lab`", p.display());
    p
}

fn demo(dir: &Path, cpekit: &Path) -> Command {
    let mut c = Command::new(repo().join("scripts/demo"));
    c.env("CPEKIT", cpekit).env("LAB_ACS", lab_acs()).env("DEMO_DIR", dir).stdin(Stdio::null());
    c
}

fn text(o: &Output) -> String {
    format!("status {:?}\n--- stdout\n{}\n--- stderr\n{}", o.status, String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Path (relative to the root) → contents, files only.
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

fn record(dir: &Path, name: &str) -> serde_json::Value {
    let f = dir.join(format!("lab-acs-{name}.json"));
    serde_json::from_str(&std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()))).unwrap()
}

/// (CommandKey, FaultCode, FaultString) of every TransferComplete the lab ACS received.
fn transfer_completes(rec: &serde_json::Value) -> Vec<(String, u64, String)> {
    let sessions = rec["sessions"].as_array().unwrap();
    sessions
        .iter()
        .flat_map(|s| s["transfer_completes"].as_array().unwrap().iter())
        .map(|t| (t["command_key"].as_str().unwrap().to_string(), t["fault_code"].as_u64().unwrap(), t["fault_string"].as_str().unwrap().to_string()))
        .collect()
}

/// Processes whose command line names `dir` (the lab ACS, the agent).
fn leftovers(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(&needle) {
                found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

#[test]
fn demo_life_cycle_happens_as_shown() {
    let dir = tempfile::tempdir().unwrap();
    let out = demo(dir.path(), &cpekit()).output().unwrap();
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.trim_end().ends_with("demo: every step happened as shown"), "{log}");

    // Part 1: TransferComplete 0; the voucher's Option enabled; every RPC answered.
    let genuine = record(dir.path(), "genuine");
    assert_eq!(genuine["failures"], serde_json::json!([]), "{log}");
    assert_eq!(transfer_completes(&genuine), vec![("demo-1".to_string(), 0, String::new())], "{log}");
    let s = genuine["sessions"].as_array().unwrap();
    assert_eq!(s.len(), 2);
    assert!(s[0]["events"].as_array().unwrap().contains(&"0 BOOTSTRAP".into()), "{log}");
    let answers: Vec<(&str, &str)> =
        s[0]["rpcs"].as_array().unwrap().iter().map(|r| (r["method"].as_str().unwrap(), r["response"].as_str().unwrap())).collect();
    assert_eq!(answers, vec![("Download", "DownloadResponse"), ("SetVouchers", "SetVouchersResponse"), ("GetOptions", "GetOptionsResponse")]);
    assert_eq!(s[0]["rpcs"][2]["options"], serde_json::json!([["VoIP", true]]));
    assert_eq!(s[1]["software_version"], "3.0.22");
    assert_eq!(s[1]["rpcs"][0]["values"][1], serde_json::json!(["InternetGatewayDevice.DeviceInfo.EnabledOptions", "VoIP"]));
    assert_eq!(genuine["files"], serde_json::json!([["demo.pkg", 200, std::fs::metadata(dir.path().join("www/demo.pkg")).unwrap().len()]]));

    // The package's files are in the root (and stay there: part 2 changed nothing).
    let src = repo().join("testdata/demo/files");
    let expected: BTreeMap<String, Vec<u8>> = [
        ("bin/app", std::fs::read(src.join("app.sh")).unwrap()),
        ("etc/default.001", std::fs::read(src.join("default.cfg")).unwrap()),
        ("www/index.html", std::fs::read(src.join("www/index.html")).unwrap()),
        ("var/archive/old.log", b"an old log\n".to_vec()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(files(&dir.path().join("root")), expected, "{log}");
    // Modes the package records (extended file records, issue 11); the others default to 0644.
    let mode = |p: &str| std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(dir.path().join("root").join(p)).unwrap().permissions()) & 0o7777;
    assert_eq!((mode("bin/app"), mode("etc/default.001"), mode("www/index.html")), (0o755, 0o640, 0o644), "{log}");

    // Part 2: the rogue package refused with 9010 for its signature; the tree hash unchanged.
    let rogue = record(dir.path(), "rogue");
    assert_eq!(rogue["failures"], serde_json::json!([]), "{log}");
    let tc = transfer_completes(&rogue);
    assert_eq!(tc.len(), 1, "{log}");
    assert_eq!((tc[0].0.as_str(), tc[0].1), ("demo-rogue", 9010));
    assert!(tc[0].2.contains("signature not trusted"), "{}", tc[0].2);
    assert_eq!(rogue["sessions"][1]["software_version"], "3.0.22");
    let hash =
        |label: &str| stdout.lines().find_map(|l| l.split_once(label).map(|(_, h)| h.trim().to_string())).unwrap_or_else(|| panic!("no {label:?} line\n{log}"));
    let (before, after) = (hash("before:"), hash("after:"));
    assert_eq!(before.len(), 64);
    assert_eq!(before, after);

    // The agent's log is in the demo directory, not on the terminal.
    let agent_log = std::fs::read_to_string(dir.path().join("agent.log")).unwrap();
    assert!(agent_log.contains("installed version 3.0.22"), "{agent_log}");
    assert!(!stdout.contains("INFO") && !String::from_utf8_lossy(&out.stderr).contains("INFO"), "{log}");
    assert_eq!(leftovers(dir.path()), Vec::<String>::new());

    // A second run starts afresh and succeeds too.
    let again = demo(dir.path(), &cpekit()).output().unwrap();
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(files(&dir.path().join("root")), expected);
}

/// A `cpekit` that signs every package with the rogue key: the agent
/// refuses the genuine package, so the demo must fail at that step.
#[test]
fn demo_fails_when_a_step_does_not_happen() {
    let dir = tempfile::tempdir().unwrap();
    let wrapper = dir.path().join("cpekit-rogue-packages");
    std::fs::write(
        &wrapper,
        format!(
            "#!/usr/bin/env bash\nargs=()\nfor a in \"$@\"; do\n  [ \"$1\" = package ] && {{ a=${{a/signer.key/rogue.key}}; a=${{a/signer.pem/rogue.pem}}; }}\n  args+=(\"$a\")\ndone\nexec {} \"${{args[@]}}\"\n",
            cpekit().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let demo_dir = dir.path().join("demo");
    let out = demo(&demo_dir, &wrapper).output().unwrap();
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("demo: FAILED: the lab ACS's script did not happen as shown"), "{log}");
    assert!(log.contains("TransferComplete demo-1 FaultCode 9010, expected 0"), "{log}");
    assert!(!log.contains("every step happened"), "{log}");
    // Nothing was installed: the device's root is as it was before.
    let root: Vec<String> = files(&demo_dir.join("root")).into_keys().collect();
    assert_eq!(root, vec!["etc/app.cfg", "var/old.log"]);
    assert_eq!(leftovers(&demo_dir), Vec::<String>::new());
}

/// Ctrl-C while the agent runs: the script stops it and the lab ACS.
#[test]
fn demo_cleans_up_on_interrupt() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let pid_file = dir.path().join("agent.pid");
    // An agent that never contacts the ACS; its pid outlives `exec`.
    let wrapper = dir.path().join("cpekit-stuck-agent");
    std::fs::write(
        &wrapper,
        format!("#!/usr/bin/env bash\n[ \"$1\" = agent ] || exec {} \"$@\"\necho $$ > {}\nexec sleep 60\n", cpekit().display(), pid_file.display()),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut cmd = demo(&demo_dir, &wrapper);
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    // As from a terminal: SIGINT not ignored, whatever our parent does.
    // SAFETY: signal(2) is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let t = Instant::now();
    // Whole once it ends with the newline (`echo` creates the file first).
    let pid_written = || std::fs::read_to_string(&pid_file).is_ok_and(|p| p.ends_with('\n'));
    while !pid_written() {
        assert!(t.elapsed() < Duration::from_secs(30), "the demo never started the agent");
        assert!(child.try_wait().unwrap().is_none(), "the demo ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    let agent_pid: u32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let agent_pid = agent_pid.to_string();
    assert!(Path::new("/proc").join(&agent_pid).exists());
    let running = leftovers(&demo_dir);
    assert!(running.iter().any(|p| p.contains("cpekit-lab-acs")), "the lab ACS runs: {running:?}");
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(!Path::new("/proc").join(&agent_pid).exists(), "the agent was left running");
    assert_eq!(leftovers(&demo_dir), Vec::<String>::new());
}
