//! Sans-IO parts of the transfer extension: argument checks (A.3.2.8,
//! A.4.1.5, A.5.1), fault strings, and the extension's answers.

use super::*;
use crate::soap::Fault;

fn settings(dir: &Path) -> Settings {
    let ca = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/keys/ca.pem")).unwrap();
    Settings {
        state_dir: dir.to_path_buf(),
        install_root: Some(dir.join("root")),
        trust: pkgfmt::signature::load_certs_pem(&ca).unwrap(),
        reboot_command: None,
        factory_reset_command: None,
        vendor_config_command: Some(vec!["true".into()]),
        upload_config_file: None,
        upload_log_file: None,
        upload_method: Default::default(),
        tls: None,
        stall: Duration::from_secs(5),
        config_software_version: "1.0".into(),
        retry_base: Duration::from_millis(50),
        retry_max: Duration::from_secs(1),
    }
}

fn dl(file_type: &str, url: &str) -> DownloadArgs {
    DownloadArgs { command_key: "k".into(), file_type: file_type.into(), url: url.into(), ..Default::default() }
}

fn code(r: Result<impl std::fmt::Debug, Fault>) -> u32 {
    r.map(|_| 0).unwrap_or_else(|f| f.code)
}

#[test]
fn download_argument_checks() {
    let d = tempfile::tempdir().unwrap();
    let s = settings(d.path());
    assert_eq!(check_download(&dl("1 Firmware Upgrade Image", "http://h/fw"), &s, None, false), Ok(DownloadKind::Package));
    assert_eq!(check_download(&dl("2 Web Content", "https://h/w"), &s, None, false), Ok(DownloadKind::Package));
    assert_eq!(check_download(&dl("3 Vendor Configuration File", "http://h/c"), &s, None, false), Ok(DownloadKind::VendorFile));
    assert_eq!(check_download(&dl("X 00D09E Recipe", "http://h/c"), &s, None, false), Ok(DownloadKind::VendorFile));
    // A.5.1: 9013 unsupported protocol, 9003 invalid arguments.
    assert_eq!(code(check_download(&dl("1 Firmware Upgrade Image", "ftp://h/fw"), &s, None, false)), 9013);
    assert_eq!(code(check_download(&dl("4 Ringtone", "http://h/r"), &s, None, false)), 9003);
    assert_eq!(code(check_download(&dl("X 00d09e Recipe", "http://h/r"), &s, None, false)), 9003, "OUI must be upper-case hex");
    let mut long_key = dl("2 Web Content", "http://h/w");
    long_key.command_key = "k".repeat(33);
    assert_eq!(code(check_download(&long_key, &s, None, false)), 9003);
    let mut escape = dl("3 Vendor Configuration File", "http://h/c");
    escape.target_file_name = "../etc/passwd".into();
    assert_eq!(code(check_download(&escape, &s, None, false)), 9003);
    // For packages the package names its files: TargetFileName is ignored.
    let mut pkg_target = dl("1 Firmware Upgrade Image", "http://h/fw");
    pkg_target.target_file_name = "a/b".into();
    assert!(check_download(&pkg_target, &s, None, false).is_ok());
}

#[test]
fn download_refusals_name_the_reason() {
    let d = tempfile::tempdir().unwrap();
    let s = settings(d.path());
    let mut big = dl("1 Firmware Upgrade Image", "http://h/fw");
    big.file_size = 5000;
    let f = check_download(&big, &s, Some(4096), false).unwrap_err();
    assert_eq!(f.code, 9010);
    assert!(f.string.contains("5000") && f.string.contains("4096"), "{}", f.string);
    assert!(check_download(&big, &s, Some(5000), false).is_ok());
    let f = check_download(&dl("2 Web Content", "http://h/w"), &s, None, true).unwrap_err();
    assert_eq!(f.code, 9001);
    let mut no_root = settings(d.path());
    no_root.install_root = None;
    let f = check_download(&dl("1 Firmware Upgrade Image", "http://h/fw"), &no_root, None, false).unwrap_err();
    assert!(f.string.contains("install_root"), "{}", f.string);
    let mut no_trust = settings(d.path());
    no_trust.trust.clear();
    let f = check_download(&dl("1 Firmware Upgrade Image", "http://h/fw"), &no_trust, None, false).unwrap_err();
    assert!(f.string.contains("[trust] packages"), "{}", f.string);
    let mut no_handler = settings(d.path());
    no_handler.vendor_config_command = None;
    let f = check_download(&dl("3 Vendor Configuration File", "http://h/c"), &no_handler, None, false).unwrap_err();
    assert!(f.string.contains("vendor_config_command"), "{}", f.string);
}

#[test]
fn upload_argument_checks() {
    let d = tempfile::tempdir().unwrap();
    let mut s = settings(d.path());
    let up = |t: &str, url: &str| UploadArgs { command_key: "u".into(), file_type: t.into(), url: url.into(), ..Default::default() };
    assert!(check_upload(&up("1 Vendor Configuration File", "http://h/put"), &s, false).is_ok());
    assert_eq!(check_upload(&up("2 Vendor Log File", "http://h/put"), &s, false).unwrap_err().code, 9001);
    s.upload_log_file = Some(d.path().join("log"));
    assert!(check_upload(&up("2 Vendor Log File", "http://h/put"), &s, false).is_ok());
    assert_eq!(check_upload(&up("3 Other", "http://h/put"), &s, false).unwrap_err().code, 9003);
    assert_eq!(check_upload(&up("1 Vendor Configuration File", "tftp://h/put"), &s, false).unwrap_err().code, 9013);
}

#[test]
fn install_faults_are_helpful_and_bounded() {
    let m = install_fault(&InstallError::Untrusted("signer #0: certificate chain does not reach a trust anchor".into()));
    assert!(m.starts_with("package signature not trusted"), "{m}");
    let m = install_fault(&InstallError::Rejected { index: 3, reason: "device version 1.0 is below the package minimum 2.0 (E.4.10)".into() });
    assert!(m.contains("below the package minimum 2.0"), "{m}");
    let m =
        install_fault(&InstallError::Package(pkgfmt::Error::HashMismatch { index: 4, path: "/bin/app".into(), expected: "aa".into(), actual: "bb".into() }));
    assert!(m.contains("payload hash mismatch in file /bin/app"), "{m}");
    let m = install_fault(&install::IoError::ReadPayload(std::io::Error::other("receiving from the file server after 10 bytes: reset")).into());
    assert_eq!(m, "download failed: reading the payload: receiving from the file server after 10 bytes: reset");
    let m =
        install_fault(&InstallError::RolledBack(Box::new(install::IoError::Op { context: "committing".into(), source: std::io::Error::other("EIO") }.into())));
    assert_eq!(m, "install failed: install failed while applying and was rolled back: committing: EIO", "with its causes");
    let m = install_fault(&InstallError::Rejected { index: 0, reason: "x".repeat(1000) });
    assert!(m.len() <= MAX_FAULT_STRING, "{}", m.len());
    assert!(m.ends_with("..."));
}

fn transfers(d: &Path) -> Transfers {
    let path = d.join("transfers.json");
    Transfers {
        settings: settings(d),
        queue: Queue::load(&path).unwrap(),
        progress: Progress::new(),
        state_path: d.join("agent.json"),
        tc_attempts: 0,
        tc_retry_at: None,
        worker: None,
    }
}

fn ask(t: &mut Transfers, req: Body) -> Body {
    let schema = Schema::igd();
    let mut store = Store::new(schema);
    let mut fx = Effects::default();
    t.request(schema, &mut store, &req, &mut fx).expect("ours")
}

#[test]
fn extension_answers_and_persists_before_answering() {
    let d = tempfile::tempdir().unwrap();
    let mut t = transfers(d.path());
    let r = ask(&mut t, Body::Download(dl("3 Vendor Configuration File", "http://h/c")));
    assert_eq!(r, Body::DownloadResponse { status: 1, start_time: UNKNOWN_TIME.into(), complete_time: UNKNOWN_TIME.into() });
    let r = ask(&mut t, Body::ScheduleInform { delay_seconds: 0, command_key: "s".into() });
    assert!(matches!(r, Body::Fault(Fault { code: 9003, .. })), "Table 42: DelaySeconds > 0");
    assert_eq!(ask(&mut t, Body::ScheduleInform { delay_seconds: 60, command_key: "s".into() }), Body::ScheduleInformResponse);
    assert_eq!(ask(&mut t, Body::Reboot { command_key: "r".into() }), Body::RebootResponse);
    match ask(&mut t, Body::GetQueuedTransfers) {
        Body::GetQueuedTransfersResponse { transfers } => {
            assert_eq!(transfers.len(), 1);
            assert_eq!((transfers[0].command_key.as_str(), transfers[0].state), ("k", 1));
        }
        other => panic!("{other:?}"),
    }
    // Everything accepted is on disk already.
    let q = Queue::load(&d.path().join("transfers.json")).unwrap();
    assert_eq!(q.jobs().len(), 1);
    assert_eq!(q.data.actions.scheduled_informs[0].command_key, "s");
    assert_eq!(q.data.actions.reboot.as_deref(), Some("r"));
    // Not ours.
    let schema = Schema::igd();
    let mut store = Store::new(schema);
    assert!(t.request(schema, &mut store, &Body::GetParameterNames { path: String::new(), next_level: true }, &mut Effects::default()).is_none());
    assert!(METHODS.contains(&"GetQueuedTransfers"));
    assert!(device_actions::METHODS.iter().all(|m| METHODS.contains(m)));
}

#[test]
fn device_action_that_cannot_be_persisted_is_refused_and_forgotten() {
    let d = tempfile::tempdir().unwrap();
    let mut t = transfers(d.path());
    t.queue = Queue::load(&d.path().join("missing-dir/transfers.json")).unwrap();
    for (req, what) in [
        (Body::Reboot { command_key: "r".into() }, "the reboot"),
        (Body::FactoryReset, "the factory reset"),
        (Body::ScheduleInform { delay_seconds: 5, command_key: "s".into() }, "the scheduled Inform"),
    ] {
        match ask(&mut t, req) {
            Body::Fault(f) => assert!(f.code == 9002 && f.string.starts_with(&format!("cannot persist {what}: ")), "{f:?}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(t.queue.data.actions, Default::default(), "nothing accepted that is not on disk");
}

#[test]
fn reboot_and_scheduled_inform_events_via_poll() {
    let d = tempfile::tempdir().unwrap();
    let mut t = transfers(d.path());
    let marker = d.path().join("rebooted");
    t.settings.reboot_command = Some(vec!["touch".into(), marker.display().to_string()]);
    ask(&mut t, Body::Reboot { command_key: "rk".into() });
    t.queue.data.actions.scheduled_informs.push(device_actions::ScheduledInform { due_ms: 0, command_key: "sk".into() });
    let schema = Schema::igd();
    let mut store = Store::new(schema);
    let mut state = AgentState::default();
    let out = t.poll(&mut store, &mut state).unwrap();
    assert_eq!(out, PollOutcome::default());
    assert!(marker.exists(), "reboot command ran");
    let ev: Vec<(String, String)> = state.pending_events.iter().map(|e| (e.code.clone(), e.command_key.clone())).collect();
    for want in [("3 SCHEDULED", ""), ("M ScheduleInform", "sk"), ("M Reboot", "rk"), ("1 BOOT", "")] {
        assert!(ev.contains(&(want.0.to_string(), want.1.to_string())), "{want:?} missing from {ev:?}");
    }
    // Persisted: the events in agent.json, the queue emptied.
    let saved = AgentState::load(&d.path().join("agent.json")).unwrap().unwrap();
    assert!(saved.pending_events.iter().any(|e| e.code == "M Reboot" && e.command_key == "rk"));
    assert!(!Queue::load(&d.path().join("transfers.json")).unwrap().busy());
}

#[test]
fn reboot_accepted_before_a_crash_is_reported_at_start() {
    let d = tempfile::tempdir().unwrap();
    let mut t = transfers(d.path());
    ask(&mut t, Body::Reboot { command_key: "rk".into() });
    drop(t);
    let mut t = transfers(d.path());
    let mut state = AgentState::default();
    let mut store = Store::new(Schema::igd());
    t.on_start(&mut state, &mut store).unwrap();
    assert!(state.pending_events.iter().any(|e| e.code == "M Reboot" && e.command_key == "rk"));
    assert!(t.queue.data.actions.reboot.is_none());
}

#[test]
fn transfer_complete_acknowledged_only_by_its_response() {
    let d = tempfile::tempdir().unwrap();
    let mut t = transfers(d.path());
    ask(&mut t, Body::Download(dl("3 Vendor Configuration File", "http://h/c")));
    let id = t.queue.jobs()[0].id;
    t.queue.set_status(id, Status::Completed { code: 9010, message: "boom".into(), start_time: "s".into(), complete_time: "e".into() });
    let reqs = t.requests();
    assert_eq!(reqs.len(), 1);
    assert!(t.tc_retry_at.is_some());
    t.response(&reqs[0], &Body::Fault(Fault::new(8002, "internal")));
    assert_eq!(t.queue.jobs().len(), 1, "a fault is not an acknowledgement");
    t.response(&reqs[0], &Body::TransferCompleteResponse);
    assert!(t.queue.jobs().is_empty());
    assert!(Queue::load(&d.path().join("transfers.json")).unwrap().jobs().is_empty(), "persisted");
}

#[test]
fn config_dump_hides_passwords() {
    let schema = Schema::igd();
    let mut store = Store::new(schema);
    store.set("InternetGatewayDevice.ManagementServer.Password", "s3cret");
    let dump = String::from_utf8(config_dump(&store)).unwrap();
    assert!(!dump.contains("s3cret"));
    let v: serde_json::Value = serde_json::from_str(&dump).unwrap();
    assert!(v.get("InternetGatewayDevice.DeviceInfo.SoftwareVersion").is_some());
}

#[test]
fn installer_phases_show_on_the_progress_page() {
    use install::progress::{Phase as I, Progress as P};
    let p = Progress::new();
    p.update(|s| s.phase = Phase::Downloading);
    let o = install_observer(p.clone());
    // The installer has read the prefix: it verifies before asking for payload.
    o.progress(P { phase: I::VerifyingPrefix, done: 100, total: 1000 });
    assert_eq!(p.snapshot().phase, Phase::Verifying);
    assert_eq!(p.snapshot().total, 1000, "the package's length when the server gave none");
    o.progress(P { phase: I::StreamingPayload, done: 100, total: 1000 });
    assert_eq!(p.snapshot().phase, Phase::Downloading, "payload requested: verification passed");
    o.progress(P { phase: I::StreamingPayload, done: 1000, total: 1000 });
    o.progress(P { phase: I::Committing, done: 1000, total: 1000 });
    assert_eq!(p.snapshot().phase, Phase::Installing);
    // A FileSize or Content-Length already known stays.
    let p = Progress::new();
    p.update(|s| s.total = 5000);
    install_observer(p.clone()).progress(P { phase: I::VerifyingPrefix, done: 100, total: 1000 });
    assert_eq!(p.snapshot().total, 5000);
}

#[test]
fn settings_from_config_name_bad_trust_files() {
    let d = tempfile::tempdir().unwrap();
    let text = |packages: &str| {
        format!(
            "[acs]\nurl = \"http://127.0.0.1:1/\"\n[device]\nmanufacturer = \"m\"\noui = \"00D09E\"\nproduct_class = \"p\"\nserial_number = \"s\"\nsoftware_version = \"3.0\"\n[agent]\nstate_dir = \"st\"\nreboot_command = []\n[trust]\npackages = [{packages}]\n"
        )
    };
    let f = d.path().join("a.toml");
    std::fs::write(&f, text("\"missing.pem\"")).unwrap();
    let cfg = AgentConfig::load(&f).unwrap();
    let e = Settings::from_config(&cfg).err().expect("missing anchors file");
    assert!(e.to_string().contains("missing.pem"), "{e}");
    std::fs::write(d.path().join("empty.pem"), "not a certificate\n").unwrap();
    std::fs::write(&f, text("\"empty.pem\"")).unwrap();
    let e = Settings::from_config(&AgentConfig::load(&f).unwrap()).err().expect("no certificates");
    assert!(e.to_string().contains("empty.pem"), "{e}");
    let ca = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/keys/ca.pem");
    std::fs::write(&f, text(&format!("\"{}\"", ca.display()))).unwrap();
    let s = Settings::from_config(&AgentConfig::load(&f).unwrap()).unwrap();
    assert_eq!(s.trust.len(), 1);
    assert!(s.reboot_command.is_none(), "an empty argv is no command");
    assert_eq!(s.stall, Duration::from_secs(300));
    assert_eq!(s.install_state_dir(), d.path().join("st/install"));
}
