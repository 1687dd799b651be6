//! End-to-end file transfers and the "after the session" methods over real
//! HTTP on loopback: the agent against the in-repo test ACS
//! (tests/support/acs.rs) and a test file server (tests/support/files.rs).
//! Packages are built and signed here with the TEST keys in testdata/keys.
//! Every envelope the agent posts is validated against cwmp-1-0.xsd.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agent::config::AgentConfig;
use agent::progress::Phase;
use agent::runner::Agent;
use agent::soap::{Body, DownloadArgs, Event, ParameterValue, UploadArgs};
use pkgfmt::{Builder, Command, FileCommand, PayloadSource};
use support::acs::{SessionLog, Step, TestAcs};
use support::files::{Auth, FileServer, Route};

const SW: &str = "InternetGatewayDevice.DeviceInfo.SoftwareVersion";

fn keys() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/keys")
}

struct Env {
    t: tempfile::TempDir,
    root: PathBuf,
}

impl Env {
    fn new() -> Env {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/old.cfg"), "old config\n").unwrap();
        Env { t, root }
    }

    fn dir(&self) -> &Path {
        self.t.path()
    }

    fn config_text(&self, acs: &TestAcs, extra_agent: &str) -> String {
        let agent = format!("install_root = \"{}\"\ntransfer_stall_timeout_seconds = 10\n{extra_agent}", self.root.display());
        let trust = format!("[trust]\npackages = [\"{}\"]", keys().join("ca.pem").display());
        support::config::agent_toml(&acs.url, self.dir(), "", &agent, &trust)
    }

    fn config(&self, acs: &TestAcs, extra_agent: &str) -> AgentConfig {
        let f = self.dir().join("agent.toml");
        std::fs::write(&f, self.config_text(acs, extra_agent)).unwrap();
        AgentConfig::load(&f).unwrap()
    }

    /// An executable shell script in the temp dir.
    fn script(&self, name: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    }
}

/// Every entry under `root`: path -> "d" or "f:<content>".
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().display().to_string();
        let v = if e.file_type().is_dir() { "d".to_string() } else { format!("f:{}", String::from_utf8_lossy(&std::fs::read(e.path()).unwrap())) };
        m.insert(rel, v);
    }
    m
}

fn extract(path: &str) -> Command {
    Command::ExtractFile(FileCommand { flags: 0, path: path.into(), sha1: [0; 20], file_offset: 0, file_length: 0, metadata: None })
}

/// A package: `head` commands, then the files; signed by `signer`
/// (a base name in testdata/keys) unless None.
fn package(head: Vec<Command>, files: &[(&str, Vec<u8>)], signer: Option<&str>) -> Vec<u8> {
    package_with_tail(head, files, vec![], signer)
}

fn package_with_tail(head: Vec<Command>, files: &[(&str, Vec<u8>)], tail: Vec<Command>, signer: Option<&str>) -> Vec<u8> {
    let mut b = Builder::new();
    for c in head {
        b.command(c);
    }
    for (p, data) in files {
        b.file(extract(p), PayloadSource::Bytes(data.clone())).unwrap();
    }
    for c in tail {
        b.command(c);
    }
    let mut built = b.build(|_, _| {}).unwrap();
    if let Some(s) = signer {
        let key = pkgfmt::signature::load_private_key_pem(&std::fs::read(keys().join(format!("{s}.key"))).unwrap()).unwrap();
        let cert = pkgfmt::signature::load_certs_pem(&std::fs::read(keys().join(format!("{s}.pem"))).unwrap()).unwrap().remove(0);
        let block = built.prefix.signatures.add_signer(built.prefix.signed_message(), &key, &cert, &[], true).unwrap();
        built.prefix.signatures = block;
    }
    let mut out = Vec::new();
    built.write_to(&mut out, |_, _| {}).unwrap();
    out
}

fn version(v: &str) -> pkgfmt::VersionNumber {
    v.parse().unwrap()
}

fn download(key: &str, file_type: &str, url: &str) -> DownloadArgs {
    DownloadArgs { command_key: key.into(), file_type: file_type.into(), url: url.into(), ..Default::default() }
}

fn events(s: &SessionLog) -> Vec<Event> {
    match s.inform.as_ref().map(|e| &e.body) {
        Some(Ok(Body::Inform { events, .. })) => events.clone(),
        _ => vec![],
    }
}

fn has_event(s: &SessionLog, code: &str, key: &str) -> bool {
    events(s).iter().any(|e| e.code == code && e.command_key == key)
}

/// Every TransferComplete the CPE sent: (CommandKey, FaultCode, FaultString).
fn transfer_completes(sessions: &[SessionLog]) -> Vec<(String, u32, String, String, String)> {
    sessions
        .iter()
        .flat_map(|s| s.received.iter())
        .filter_map(|e| match &e.body {
            Ok(Body::TransferComplete { command_key, fault, start_time, complete_time }) => {
                Some((command_key.clone(), fault.code, fault.string.clone(), start_time.clone(), complete_time.clone()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn signed_package_over_http_installs_and_reports_transfer_complete() {
    let env = Env::new();
    let acs = TestAcs::start();
    let files = FileServer::start();
    // E.4.8: the package asks for a reboot after installing.
    let pkg = package_with_tail(
        vec![Command::Version("3.1.0".into()), Command::MinimumVersion(version("3.0")), Command::InitialActivityTimeout(30)],
        &[("/bin/app", b"#!/bin/sh\necho new app\n".to_vec()), ("/www/index.html", vec![b'x'; 300_000])],
        vec![Command::Reboot],
        Some("signer"),
    );
    let marker = env.dir().join("rebooted");
    let reboot = env.script("reboot", &format!("echo rebooted >> {}", marker.display()));
    files.route("/fw.pkg", Route { auth: Some(Auth::Basic { user: "fw".into(), pass: "pw".into() }), ..Route::ok(pkg.clone()) });
    let mut args = download("fw-1", "1 Firmware Upgrade Image", &files.url("/fw.pkg"));
    args.username = "fw".into();
    args.password = "pw".into();
    args.file_size = pkg.len() as u32;
    acs.push_script(vec![Step::one(Body::Download(args)), Step::one(Body::GetQueuedTransfers)]);
    let mut agent = Agent::new(env.config(&acs, &format!("reboot_command = [\"{reboot}\"]"))).unwrap();
    agent.run(true, 3).unwrap();

    let s = acs.sessions();
    assert_eq!(s.len(), 2, "{:#?}", s.iter().map(events).collect::<Vec<_>>());
    // A.3.2.8 Table 28: Status 1, TransferComplete follows in a new session.
    let r = s[0].responses();
    assert!(matches!(r[0], Body::DownloadResponse { status: 1, .. }), "{r:?}");
    match &r[1] {
        Body::GetQueuedTransfersResponse { transfers } => {
            assert_eq!(transfers.len(), 1);
            assert_eq!((transfers[0].command_key.as_str(), transfers[0].state), ("fw-1", 1), "not yet started during the session");
        }
        other => panic!("{other:?}"),
    }
    assert!(has_event(&s[1], "7 TRANSFER COMPLETE", ""), "{:?}", events(&s[1]));
    assert!(has_event(&s[1], "M Download", "fw-1"));
    // The reboot command ran once, after the install; the next Inform says 1 BOOT.
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "rebooted\n");
    assert!(has_event(&s[1], "1 BOOT", ""), "{:?}", events(&s[1]));
    let tc = transfer_completes(&s);
    assert_eq!(tc.len(), 1);
    assert_eq!((tc[0].0.as_str(), tc[0].1, tc[0].2.as_str()), ("fw-1", 0, ""), "{tc:?}");
    assert_ne!(tc[0].3, "0001-01-01T00:00:00Z");
    assert!(tc[0].3 <= tc[0].4, "StartTime <= CompleteTime");
    // Installed; SoftwareVersion follows the package's Version command.
    let t = tree(&env.root);
    assert_eq!(t.get("bin/app").map(String::as_str), Some("f:#!/bin/sh\necho new app\n"));
    assert_eq!(t.get("www/index.html").map(|v| v.len()), Some(300_002));
    assert_eq!(s[1].inform_param(SW).as_deref(), Some("3.1.0"));
    assert_eq!(agent.store.get(SW).as_deref(), Some("3.1.0"));
    // The file server saw the challenge, then the authenticated GET.
    let reqs = files.requests();
    assert_eq!(reqs.iter().map(|r| r.status).collect::<Vec<_>>(), vec![401, 200]);
    let p = agent.progress.snapshot();
    assert_eq!(p.phase, Phase::Done);
    assert_eq!((p.bytes, p.total), (pkg.len() as u64, pkg.len() as u64));
    assert_eq!(p.command_key, "fw-1");
    // Nothing left queued; the installed version survives a restart.
    assert!(!agent.transfers.busy());
    drop(agent);
    let agent = Agent::new(env.config(&acs, "")).unwrap();
    assert_eq!(agent.store.get(SW).as_deref(), Some("3.1.0"));
    assert!(acs.validate_all() >= 5);
}

#[test]
fn rejected_packages_leave_the_install_root_unchanged() {
    let env = Env::new();
    let acs = TestAcs::start();
    let files = FileServer::start();
    let good_files = [("/etc/new.cfg", b"new".to_vec())];
    files.route("/rogue.pkg", Route::ok(package(vec![], &good_files, Some("rogue"))));
    let mut tampered = package(vec![], &[("/etc/new.cfg", b"genuine contents".to_vec())], Some("signer"));
    let last = tampered.len() - 1;
    tampered[last] ^= 0x20;
    files.route("/tampered.pkg", Route::ok(tampered));
    files.route("/newer.pkg", Route::ok(package(vec![Command::MinimumVersion(version("9.0"))], &good_files, Some("signer"))));
    files.route("/unsigned.pkg", Route::ok(package(vec![], &good_files, None)));
    // E.5: the signature is checked from the prefix, before the payload:
    // this body stalls after the prefix (and some payload past the server's
    // output buffer) for longer than the whole test may take.
    let rogue_big = package(vec![], &[("/etc/big.bin", vec![3u8; 300_000])], Some("rogue"));
    files.route("/rogue-stalled.pkg", Route { stall_after: Some(rogue_big.len() - 200_000), ..Route::ok(rogue_big) });
    // A genuine package whose server dies mid-body.
    let cut = package(vec![], &[("/etc/big.bin", vec![4u8; 300_000])], Some("signer"));
    let cut_len = cut.len() / 2;
    let dying = support::files::dying_server(cut, cut_len);
    acs.push_script(vec![
        Step::one(Body::Download(download("rogue", "1 Firmware Upgrade Image", &files.url("/rogue.pkg")))),
        Step::one(Body::Download(download("tampered", "2 Web Content", &files.url("/tampered.pkg")))),
        Step::one(Body::Download(download("newer", "1 Firmware Upgrade Image", &files.url("/newer.pkg")))),
        Step::one(Body::Download(download("unsigned", "1 Firmware Upgrade Image", &files.url("/unsigned.pkg")))),
        Step::one(Body::Download(download("missing", "1 Firmware Upgrade Image", &files.url("/missing.pkg")))),
        Step::one(Body::Download(download("rogue-stalled", "1 Firmware Upgrade Image", &files.url("/rogue-stalled.pkg")))),
        Step::one(Body::Download(download("dies", "1 Firmware Upgrade Image", &dying))),
        // Refused in the response itself (A.5.1).
        Step::one(Body::Download(download("ftp", "1 Firmware Upgrade Image", "ftp://127.0.0.1/fw.pkg"))),
        Step::one(Body::Download(download("odd", "7 Ringtone", &files.url("/x")))),
    ]);
    let before = tree(&env.root);
    let mut agent = Agent::new(env.config(&acs, "")).unwrap();
    let t0 = Instant::now();
    agent.run(true, 3).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(8), "the stalled rogue package was refused from its prefix: {:?}", t0.elapsed());
    assert_eq!(tree(&env.root), before, "no rejected package may change the install root");

    let s = acs.sessions();
    let r = s[0].responses();
    let codes: Vec<Option<u32>> = r.iter().map(|b| if let Body::Fault(f) = b { Some(f.code) } else { None }).collect();
    assert_eq!(codes, vec![None, None, None, None, None, None, None, Some(9013), Some(9003)]);
    let tc: BTreeMap<String, (u32, String)> = transfer_completes(&s).into_iter().map(|t| (t.0, (t.1, t.2))).collect();
    assert_eq!(tc.len(), 7, "{tc:#?}");
    let expect = [
        ("rogue", "package signature not trusted"),
        ("tampered", "payload hash mismatch in file /etc/new.cfg"),
        ("newer", "below the package minimum 9.0"),
        ("unsigned", "package signature not trusted"),
        ("missing", "HTTP 404"),
        ("rogue-stalled", "package signature not trusted"),
        ("dies", "download failed: reading the payload: receiving from the file server after"),
    ];
    for (key, text) in expect {
        let (code, msg) = &tc[key];
        assert_eq!(*code, 9010, "{key}: {msg}");
        assert!(msg.contains(text), "{key}: {msg:?} should say {text:?}");
        assert!(msg.len() <= 256);
    }
    assert!(matches!(agent.progress.snapshot().phase, Phase::Failed { code: 9010, .. }));
    // E.5: a rejected signature is noticed from the prefix; the rest of the
    // body is never needed (the server may not even finish sending it).
    assert_eq!(agent.store.get(SW).as_deref(), Some("3.0.21"));
    assert!(acs.validate_all() >= 10);
}

#[test]
fn vendor_configuration_file_with_digest_auth_and_handler_failure() {
    let env = Env::new();
    let acs = TestAcs::start();
    let files = FileServer::start();
    let out = env.dir().join("applied");
    std::fs::create_dir(&out).unwrap();
    let handler = env.script(
        "apply-config",
        &format!(
            "if grep -q bad \"$1\"; then echo \"syntax error on line 3\" >&2; exit 3; fi\ncp \"$1\" \"{}/$CPEKIT_TARGET_FILE_NAME\"\necho \"$CPEKIT_FILE_TYPE|$CPEKIT_COMMAND_KEY\" > \"{}/meta\"",
            out.display(),
            out.display()
        ),
    );
    let digest = Auth::Digest { user: "cfg".into(), pass: "secret".into() };
    files.route("/dev.conf", Route { auth: Some(digest.clone()), ..Route::ok(b"wifi=on\n".to_vec()) });
    files.route("/bad.conf", Route::ok(b"bad stuff\n".to_vec()));
    let mut ok = download("cfg-1", "3 Vendor Configuration File", &files.url("/dev.conf"));
    ok.username = "cfg".into();
    ok.password = "secret".into();
    ok.target_file_name = "device.conf".into();
    let mut wrong = ok.clone();
    wrong.command_key = "cfg-401".into();
    wrong.password = "guess".into();
    let bad = download("cfg-bad", "3 Vendor Configuration File", &files.url("/bad.conf"));
    // A.3.2.8 FileSize: a body longer than announced is refused before the handler runs.
    files.route("/long.conf", Route::ok(b"mode=long\n".to_vec()));
    let mut long = download("cfg-long", "3 Vendor Configuration File", &files.url("/long.conf"));
    long.file_size = 4;
    long.target_file_name = "long.conf".into();
    acs.push_script(vec![Step::one(Body::Download(ok)), Step::one(Body::Download(wrong)), Step::one(Body::Download(bad)), Step::one(Body::Download(long))]);
    let mut agent = Agent::new(env.config(&acs, &format!("vendor_config_command = [\"{handler}\"]"))).unwrap();
    agent.run(true, 3).unwrap();

    assert_eq!(std::fs::read_to_string(out.join("device.conf")).unwrap(), "wifi=on\n");
    assert_eq!(std::fs::read_to_string(out.join("meta")).unwrap().trim(), "3 Vendor Configuration File|cfg-1");
    let tc: BTreeMap<String, (u32, String)> = transfer_completes(&acs.sessions()).into_iter().map(|t| (t.0, (t.1, t.2))).collect();
    assert_eq!(tc["cfg-1"].0, 0);
    // A.5.1 9012: file server authentication failure.
    assert_eq!(tc["cfg-401"].0, 9012, "{:?}", tc["cfg-401"]);
    assert_eq!(tc["cfg-bad"].0, 9010);
    assert!(tc["cfg-bad"].1.contains("syntax error on line 3"), "{:?}", tc["cfg-bad"]);
    assert_eq!(tc["cfg-long"].0, 9010);
    assert!(tc["cfg-long"].1.contains("more than the 4 bytes announced in FileSize"), "{:?}", tc["cfg-long"]);
    assert!(!out.join("long.conf").exists(), "the handler must not see an oversized file");
    // The spool files are gone.
    let spool = env.dir().join("state/transfers");
    assert!(std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0) == 0);
    acs.validate_all();
}

#[test]
fn delay_seconds_defers_the_download_past_the_session() {
    let env = Env::new();
    let acs = TestAcs::start();
    let files = FileServer::start();
    files.route("/fw.pkg", Route::ok(package(vec![], &[("/etc/late.cfg", b"late".to_vec())], Some("signer"))));
    let mut args = download("later", "1 Firmware Upgrade Image", &files.url("/fw.pkg"));
    args.delay_seconds = 2;
    acs.push_script(vec![Step::one(Body::Download(args))]);
    let mut agent = Agent::new(env.config(&acs, "")).unwrap();
    let t0 = Instant::now();
    agent.run(true, 3).unwrap();
    let get = files.requests().into_iter().find(|r| r.method == "GET").expect("downloaded");
    assert!(get.at.duration_since(t0) >= Duration::from_millis(1900), "{:?}", get.at.duration_since(t0));
    let tc = transfer_completes(&acs.sessions());
    assert_eq!((tc[0].0.as_str(), tc[0].1), ("later", 0));
    assert_eq!(std::fs::read_to_string(env.root.join("etc/late.cfg")).unwrap(), "late");
    acs.validate_all();
}

#[test]
fn initial_activity_timeout_aborts_a_stalled_download() {
    let env = Env::new();
    let acs = TestAcs::start();
    let files = FileServer::start();
    // E.4.7: 1 s without data in the Initial state ends the download.
    let pkg = package(vec![Command::InitialActivityTimeout(1)], &[("/etc/big.bin", vec![7u8; 200_000])], Some("signer"));
    // Past the prefix and part of the file (the server's output buffer
    // holds back the last few KB), never the whole file.
    let payload_start = pkg.len() - 200_000;
    files.route("/slow.pkg", Route { stall_after: Some(payload_start + 100_000), ..Route::ok(pkg) });
    acs.push_script(vec![Step::one(Body::Download(download("slow", "1 Firmware Upgrade Image", &files.url("/slow.pkg"))))]);
    let before = tree(&env.root);
    let mut agent = Agent::new(env.config(&acs, "")).unwrap();
    let t0 = Instant::now();
    agent.run(true, 3).unwrap();
    assert!(t0.elapsed() < Duration::from_secs(8), "aborted by the package timeout, not the 10 s stall limit");
    let tc = transfer_completes(&acs.sessions());
    assert_eq!(tc[0].1, 9010);
    assert!(tc[0].2.contains("Initial Activity timeout"), "{}", tc[0].2);
    assert_eq!(tree(&env.root), before);
    acs.validate_all();
}

/// A.4.1.5 leaves the HTTP method to the file server: `upload_method = "POST"`.
#[test]
fn upload_by_post_when_configured() {
    let env = Env::new();
    let acs = TestAcs::start();
    let files = FileServer::start();
    files.route("/up/log", Route::ok(vec![]));
    let log = env.dir().join("messages");
    std::fs::write(&log, "posted\n").unwrap();
    acs.push_script(vec![Step::one(Body::Upload(UploadArgs {
        command_key: "post-1".into(),
        file_type: "2 Vendor Log File".into(),
        url: files.url("/up/log"),
        username: String::new(),
        password: String::new(),
        delay_seconds: 0,
    }))]);
    let extra = format!("upload_log_file = \"{}\"\nupload_method = \"POST\"", log.display());
    let mut agent = Agent::new(env.config(&acs, &extra)).unwrap();
    agent.run(true, 3).unwrap();
    let reqs = files.requests();
    let post = reqs.iter().find(|r| r.path == "/up/log").expect("uploaded");
    assert_eq!((post.method.as_str(), post.body.as_slice()), ("POST", &b"posted\n"[..]));
    assert!(!reqs.iter().any(|r| r.method == "PUT"));
    let tc = transfer_completes(&acs.sessions());
    assert_eq!((tc[0].0.as_str(), tc[0].1), ("post-1", 0));
    // Anything else is a configuration error, named.
    let bad = Env::new();
    let text = bad.config_text(&acs, "upload_method = \"PATCH\"");
    let err = AgentConfig::parse(&text).unwrap_err().to_string();
    assert!(err.contains("unknown variant `PATCH`, expected `PUT` or `POST`"), "{err}");
    acs.validate_all();
}

#[test]
fn schedule_inform_upload_and_reboot() {
    let env = Env::new();
    let acs = TestAcs::start();
    let files = FileServer::start();
    files.route("/up/config", Route::ok(vec![]));
    files.route("/up/log", Route { auth: Some(Auth::Basic { user: "u".into(), pass: "p".into() }), ..Route::ok(vec![]) });
    let log = env.dir().join("messages");
    std::fs::write(&log, "boot ok\nlink up\n").unwrap();
    let marker = env.dir().join("rebooted");
    let reboot = env.script("reboot", &format!("echo once >> {}", marker.display()));
    let up = |key: &str, t: &str, url: String, cred: (&str, &str)| {
        Body::Upload(UploadArgs { command_key: key.into(), file_type: t.into(), url, username: cred.0.into(), password: cred.1.into(), delay_seconds: 0 })
    };
    acs.push_script(vec![
        Step::one(Body::ScheduleInform { delay_seconds: 1, command_key: "si-1".into() }),
        Step::one(up("up-cfg", "1 Vendor Configuration File", files.url("/up/config"), ("", ""))),
        Step::one(up("up-log", "2 Vendor Log File", files.url("/up/log"), ("u", "p"))),
        Step::one(Body::Reboot { command_key: "rb-1".into() }),
        Step::one(Body::GetRPCMethods),
    ]);
    let extra = format!("reboot_command = [\"{reboot}\"]\nupload_log_file = \"{}\"", log.display());
    let mut agent = Agent::new(env.config(&acs, &extra)).unwrap();
    let t0 = Instant::now();
    agent.run(true, 3).unwrap();

    let s = acs.sessions();
    let r = s[0].responses();
    assert_eq!(r[0], Body::ScheduleInformResponse);
    assert!(matches!(r[1], Body::UploadResponse { status: 1, .. }));
    assert!(matches!(r[2], Body::UploadResponse { status: 1, .. }));
    assert_eq!(r[3], Body::RebootResponse);
    match &r[4] {
        Body::GetRPCMethodsResponse { methods } => {
            for m in ["Download", "Upload", "Reboot", "FactoryReset", "ScheduleInform", "GetQueuedTransfers", "GetParameterValues"] {
                assert!(methods.iter().any(|x| x == m), "{m} missing from {methods:?}");
            }
        }
        other => panic!("{other:?}"),
    }
    // A.3.2.9: rebooted once, after the session; "M Reboot" + "1 BOOT".
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "once\n");
    let all: Vec<Event> = s.iter().skip(1).flat_map(events).collect();
    let has = |c: &str, k: &str| all.iter().any(|e| e.code == c && e.command_key == k);
    assert!(has("M Reboot", "rb-1") && has("1 BOOT", ""), "{all:?}");
    // A.4.1.2: "3 SCHEDULED" + "M ScheduleInform", not before DelaySeconds.
    let sched = s.iter().position(|x| has_event(x, "M ScheduleInform", "si-1")).expect("scheduled inform");
    assert!(has_event(&s[sched], "3 SCHEDULED", ""));
    let si_post = acs.posts().into_iter().filter(|p| p.session == sched).count();
    assert!(si_post > 0);
    assert!(t0.elapsed() >= Duration::from_secs(1));
    // A.4.1.5: the PUT bodies.
    let puts: Vec<_> = files.requests().into_iter().filter(|r| r.method == "PUT" && r.status == 200).collect();
    let cfg = puts.iter().find(|p| p.path == "/up/config").expect("config uploaded");
    let dump: serde_json::Value = serde_json::from_slice(&cfg.body).unwrap();
    assert_eq!(dump["InternetGatewayDevice.DeviceInfo.SerialNumber"], "CPE0001");
    assert_eq!(dump["InternetGatewayDevice.ManagementServer.Password"], "", "passwords are never uploaded");
    let logp = puts.iter().find(|p| p.path == "/up/log").expect("log uploaded");
    assert_eq!(logp.body, b"boot ok\nlink up\n");
    let tc: BTreeMap<String, u32> = transfer_completes(&s).into_iter().map(|t| (t.0, t.1)).collect();
    assert_eq!(tc, BTreeMap::from([("up-cfg".to_string(), 0), ("up-log".to_string(), 0)]));
    assert!(all.iter().any(|e| e.code == "M Upload" && e.command_key == "up-log"));
    acs.validate_all();
}

#[test]
fn transfer_complete_is_retried_until_acknowledged() {
    let env = Env::new();
    let acs = TestAcs::start();
    let files = FileServer::start();
    files.route("/up", Route::ok(vec![]));
    acs.with(|s| s.transfer_complete_faults = 1);
    acs.push_script(vec![Step::one(Body::Upload(UploadArgs {
        command_key: "again".into(),
        file_type: "1 Vendor Configuration File".into(),
        url: files.url("/up"),
        ..Default::default()
    }))]);
    // In the session whose TransferComplete is refused, the ACS asks (its
    // fault and its request share one HTTP response: MaxEnvelopes 2).
    acs.push_script(vec![Step::one(Body::GetQueuedTransfers)]);
    let mut agent = Agent::new(env.config(&acs, "max_envelopes = 2")).unwrap();
    agent.run(true, 3).unwrap();
    let s = acs.sessions();
    let tc = transfer_completes(&s);
    assert_eq!(tc.len(), 2, "faulted once, then sent again: {tc:?}");
    let gqt = s[1].responses().into_iter().find_map(|b| match b {
        Body::GetQueuedTransfersResponse { transfers } => Some(transfers),
        _ => None,
    });
    let gqt = gqt.expect("GetQueuedTransfersResponse");
    // A.4.1.1 Table 41: 3 = completed, finishing cleanup (not yet reported).
    assert_eq!(gqt.iter().map(|t| (t.command_key.as_str(), t.state)).collect::<Vec<_>>(), vec![("again", 3)]);
    assert_eq!(s.len(), 3, "the refused TransferComplete goes out again in a new session");
    assert!(has_event(&s[2], "M Upload", "again") && has_event(&s[2], "7 TRANSFER COMPLETE", ""));
    assert!(!agent.transfers.busy());
    acs.validate_all();
}

#[test]
fn factory_reset_wipes_the_tree_and_bootstraps() {
    let env = Env::new();
    let acs = TestAcs::start();
    let marker = env.dir().join("reset-ran");
    let hook = env.script("factory-reset", &format!("touch {}", marker.display()));
    let pii = "InternetGatewayDevice.ManagementServer.PeriodicInformInterval";
    acs.push_script(vec![
        Step::one(Body::SetParameterValues {
            list: vec![ParameterValue { name: pii.into(), value: "777".into(), xsd_type: "xsd:unsignedInt".into() }],
            parameter_key: "pk".into(),
        }),
        Step::one(Body::FactoryReset),
    ]);
    let mut agent = Agent::new(env.config(&acs, &format!("factory_reset_command = [\"{hook}\"]"))).unwrap();
    agent.run(true, 3).unwrap();
    let s = acs.sessions();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].responses()[1], Body::FactoryResetResponse);
    assert!(marker.exists(), "the hook ran");
    assert_eq!(events(&s[1]).iter().map(|e| e.code.as_str()).collect::<Vec<_>>(), vec!["0 BOOTSTRAP"]);
    assert_ne!(agent.store.get(pii).as_deref(), Some("777"));
    let saved = std::fs::read_to_string(env.dir().join("state/parameters.json")).unwrap();
    assert!(!saved.contains("\"777\""), "the persisted tree was wiped");
    acs.validate_all();
}

fn cpekit_bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("cpekit")
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn agent_killed_mid_download_still_delivers_transfer_complete() {
    let env = Env::new();
    let acs = TestAcs::start();
    let files = FileServer::start();
    let pkg = package(vec![Command::Version("4.0".into())], &[("/etc/new.cfg", vec![1u8; 500_000])], Some("signer"));
    files.route("/fw.pkg", Route { stall_after: Some(pkg.len() / 2), ..Route::ok(pkg.clone()) });
    acs.push_script(vec![Step::one(Body::Download(download("crash", "1 Firmware Upgrade Image", &files.url("/fw.pkg"))))]);
    let cfg = env.dir().join("agent.toml");
    std::fs::write(&cfg, env.config_text(&acs, "")).unwrap();
    let before = tree(&env.root);

    let mut child = std::process::Command::new(cpekit_bin()).args(["agent", "--config"]).arg(&cfg).stderr(std::process::Stdio::null()).spawn().unwrap();
    let queue = env.dir().join("state/transfers.json");
    wait_for("the download to stall mid-body", Duration::from_secs(20), || {
        files.sent.load(std::sync::atomic::Ordering::SeqCst) >= (pkg.len() / 2) as u64
            && std::fs::read_to_string(&queue).is_ok_and(|q| q.contains("in_progress"))
    });
    std::thread::sleep(Duration::from_millis(200));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(tree(&env.root), before, "nothing installed from half a package");
    let install_state = env.dir().join("state/install");
    let leftovers = |d: &Path| walkdir::WalkDir::new(d).into_iter().filter_map(Result::ok).filter(|e| e.file_type().is_file()).count();
    assert!(leftovers(&install_state) > 0, "the killed agent was staging the payload");
    assert_eq!(transfer_completes(&acs.sessions()).len(), 0);

    // Restart: the interrupted transfer is reported (failed, cleanly).
    let out = std::process::Command::new(cpekit_bin()).args(["agent", "--once", "--config"]).arg(&cfg).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = acs.sessions();
    let last = s.last().unwrap();
    assert!(has_event(last, "1 BOOT", "") && has_event(last, "7 TRANSFER COMPLETE", "") && has_event(last, "M Download", "crash"), "{:?}", events(last));
    let tc = transfer_completes(&s);
    assert_eq!(tc.len(), 1);
    assert_eq!(tc[0].1, 9010);
    assert!(tc[0].2.contains("interrupted"), "{}", tc[0].2);
    assert_eq!(tree(&env.root), before);
    assert_eq!(leftovers(&install_state), 0, "staging leftovers removed at start");
    // Delivered: nothing left in the queue.
    let q: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&queue).unwrap()).unwrap();
    assert_eq!(q["jobs"].as_array().unwrap().len(), 0);
    acs.validate_all();
}

#[test]
fn https_download_checks_the_file_server_certificate() {
    let env = Env::new();
    let acs = TestAcs::start();
    let files = FileServer::start();
    support::tls::pki(env.dir(), "DNS:localhost");
    let backend: std::net::SocketAddr = files.base.trim_start_matches("http://").parse().unwrap();
    let port = support::tls::tls_front(env.dir(), backend);
    files.route("/web.pkg", Route::ok(package(vec![], &[("/www/new.html", b"<p>new</p>".to_vec())], Some("signer"))));
    acs.push_script(vec![
        Step::one(Body::Download(download("tls-ok", "2 Web Content", &format!("https://localhost:{port}/web.pkg")))),
        // The certificate names localhost, not 127.0.0.1 (3.3-style host check).
        Step::one(Body::Download(download("tls-host", "2 Web Content", &format!("https://127.0.0.1:{port}/web.pkg")))),
    ]);
    let extra = format!("transfer_ca_file = \"{}\"", env.dir().join("ca.pem").display());
    let mut agent = Agent::new(env.config(&acs, &extra)).unwrap();
    agent.run(true, 3).unwrap();
    let tc: BTreeMap<String, (u32, String)> = transfer_completes(&acs.sessions()).into_iter().map(|t| (t.0, (t.1, t.2))).collect();
    assert_eq!(tc["tls-ok"].0, 0, "{:?}", tc["tls-ok"]);
    assert_eq!(tc["tls-host"].0, 9010);
    assert!(tc["tls-host"].1.contains("cannot reach the file server"), "{:?}", tc["tls-host"]);
    assert_eq!(std::fs::read_to_string(env.root.join("www/new.html")).unwrap(), "<p>new</p>");
    acs.validate_all();
}

/// Peak resident memory (VmHWM, KiB) of a process.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn large_package_memory_stays_flat() {
    // The body streams through the installer (staged on disk): the agent's
    // peak RSS must not grow with the package size.
    let env = Env::new();
    let acs = TestAcs::start();
    let files = FileServer::start();
    const SIZE: usize = 48 << 20;
    let mut big = vec![0u8; SIZE];
    for (i, b) in big.iter_mut().enumerate() {
        *b = (i * 7 % 251) as u8;
    }
    let pkg = package(vec![], &[("/data/big.bin", big)], Some("signer"));
    // Hold the body near its end until the peak has been measured.
    files.route("/big.pkg", Route { stall_after: Some(pkg.len() - 1), ..Route::ok(pkg.clone()) });
    acs.push_script(vec![Step::one(Body::Download(download("big", "1 Firmware Upgrade Image", &files.url("/big.pkg"))))]);
    let cfg = env.dir().join("agent.toml");
    std::fs::write(&cfg, env.config_text(&acs, "")).unwrap();
    let mut child =
        std::process::Command::new(cpekit_bin()).args(["agent", "--once", "--config"]).arg(&cfg).stderr(std::process::Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    wait_for("the body to be sent", Duration::from_secs(120), || files.sent.load(std::sync::atomic::Ordering::SeqCst) >= (pkg.len() - 1) as u64);
    let elapsed = t0.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let hwm = vm_hwm_kib(child.id()).expect("/proc/PID/status");
    files.release.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(child.wait().unwrap().success());
    eprintln!("large_package_memory_stays_flat: {} MiB package, peak RSS {} KiB, body sent in {elapsed:?}", SIZE >> 20, hwm);
    assert!(hwm < 40 * 1024, "peak RSS {hwm} KiB for a {} MiB package", SIZE >> 20);
    let tc = transfer_completes(&acs.sessions());
    assert_eq!((tc[0].0.as_str(), tc[0].1), ("big", 0), "{tc:?}");
    assert_eq!(std::fs::metadata(env.root.join("data/big.bin")).unwrap().len(), SIZE as u64);
}

#[test]
fn power_loss_at_every_install_step_keeps_the_root_consistent_and_reports() {
    // CPEKIT_FAILPOINT=N SIGKILLs the agent at the installer's N-th fail
    // point (payload reads, journal written, each applied operation,
    // commit, clean-up; the `failpoints` feature, on in test builds). For every N until the install runs through: the
    // restarted agent delivers exactly one TransferComplete and the root is
    // the complete old tree or the complete new one (0 only if new).
    let files = FileServer::start();
    let pkg = package(
        vec![Command::Version("5.0".into())],
        &[("/etc/old.cfg", b"replaced\n".to_vec()), ("/bin/tool", b"tool v5\n".to_vec()), ("/www/a/b.html", b"<b/>".to_vec())],
        Some("signer"),
    );
    files.route("/fw.pkg", Route::ok(pkg));
    let mut old_tree = None;
    let mut new_tree: Option<BTreeMap<String, String>> = None;
    let mut outcomes = Vec::new();
    for n in 1..40u32 {
        let env = Env::new();
        let acs = TestAcs::start();
        acs.push_script(vec![Step::one(Body::Download(download("pl", "1 Firmware Upgrade Image", &files.url("/fw.pkg"))))]);
        let cfg = env.dir().join("agent.toml");
        std::fs::write(&cfg, env.config_text(&acs, "")).unwrap();
        let before = tree(&env.root);
        old_tree.get_or_insert_with(|| before.clone());
        let first =
            std::process::Command::new(cpekit_bin()).args(["agent", "--once", "--config"]).arg(&cfg).env("CPEKIT_FAILPOINT", n.to_string()).output().unwrap();
        if first.status.success() {
            // Fewer than N fail points: the install ran through.
            let tc = transfer_completes(&acs.sessions());
            assert_eq!(tc.len(), 1);
            assert_eq!(tc[0].1, 0, "{tc:?}");
            new_tree = Some(tree(&env.root));
            outcomes.push((n, 0, "ran through".to_string()));
            break;
        }
        let restart = std::process::Command::new(cpekit_bin()).args(["agent", "--once", "--config"]).arg(&cfg).output().unwrap();
        assert!(restart.status.success(), "N={n}: {}", String::from_utf8_lossy(&restart.stderr));
        let tc = transfer_completes(&acs.sessions());
        assert_eq!(tc.len(), 1, "N={n}: exactly one TransferComplete: {tc:?}");
        let after = tree(&env.root);
        outcomes.push((n, tc[0].1, tc[0].2.clone()));
        if tc[0].1 == 0 {
            assert_ne!(after, before, "N={n}: success reported but nothing installed");
        } else {
            assert!(tc[0].2.contains("interrupted"), "N={n}: {}", tc[0].2);
        }
        // Compared with the ran-through tree below.
        outcomes.last_mut().unwrap().2.push_str(&format!(" | {}", serde_json::to_string(&after).unwrap()));
        assert!(!env.dir().join("state/install/journal.json").exists(), "N={n}: recovered");
    }
    let new_tree = new_tree.expect("the install ran through within 40 fail points");
    assert!(outcomes.len() > 1, "no fail point killed the agent: is `cpekit` built with the install crate's `failpoints` feature?");
    let old_tree = old_tree.unwrap();
    assert_ne!(new_tree, old_tree);
    for (n, code, text) in &outcomes[..outcomes.len() - 1] {
        let after: BTreeMap<String, String> = serde_json::from_str(text.rsplit(" | ").next().unwrap()).unwrap();
        assert!(after == old_tree || after == new_tree, "N={n}: a mixed tree after power loss: {after:#?}");
        if *code == 0 {
            assert_eq!(after, new_tree, "N={n}");
        }
        if after == new_tree && *code != 0 {
            assert!(text.contains("committed") || text.contains("unless the install had just finished"), "N={n}: {text}");
        }
        if after == old_tree {
            assert_ne!(*code, 0, "N={n}: success reported for the old tree");
        }
    }
    for (n, code, text) in &outcomes {
        eprintln!("fail point {n}: {code} {}", text.split(" | ").next().unwrap());
    }
}

#[test]
fn sessions_go_on_during_a_download_which_shows_as_in_progress() {
    let env = Env::new();
    let acs = TestAcs::start();
    let files = FileServer::start();
    let pkg = package(vec![], &[("/etc/slow.bin", vec![5u8; 300_000])], Some("signer"));
    files.route("/fw.pkg", Route { stall_after: Some(150_000), ..Route::ok(pkg.clone()) });
    acs.push_script(vec![Step::one(Body::Download(download("bg", "1 Firmware Upgrade Image", &files.url("/fw.pkg"))))]);
    // The session a Connection Request starts while the body is stalled.
    acs.push_script(vec![Step::one(Body::GetQueuedTransfers)]);
    let mut agent = Agent::new(env.config(&acs, "")).unwrap();
    let tx = agent.trigger_sender();
    let progress = agent.progress.clone();
    let h = std::thread::spawn(move || {
        agent.run(true, 3).unwrap();
        agent
    });
    wait_for("the download to stall", Duration::from_secs(20), || {
        files.sent.load(std::sync::atomic::Ordering::SeqCst) >= 150_000 && progress.snapshot().bytes >= 100_000
    });
    let mid = progress.snapshot();
    assert_eq!(mid.phase, Phase::Downloading);
    assert_eq!((mid.command_key.as_str(), mid.total), ("bg", pkg.len() as u64));
    tx.send(agent::runner::Trigger::ConnectionRequest).unwrap();
    let gqt = |s: &SessionLog| {
        s.responses().into_iter().find_map(|b| match b {
            Body::GetQueuedTransfersResponse { transfers } => Some(transfers),
            _ => None,
        })
    };
    wait_for("the Connection Request session", Duration::from_secs(20), || acs.sessions().get(1).is_some_and(|s| gqt(s).is_some()));
    files.release.store(true, std::sync::atomic::Ordering::SeqCst);
    let agent = h.join().unwrap();
    let s = acs.sessions();
    assert!(has_event(&s[1], "6 CONNECTION REQUEST", ""), "{:?}", events(&s[1]));
    // A.4.1.1 Table 41: 2 = in progress.
    let states: Vec<(String, u8)> = gqt(&s[1]).unwrap().into_iter().map(|t| (t.command_key, t.state)).collect();
    assert_eq!(states, vec![("bg".to_string(), 2)]);
    let tc = transfer_completes(&s);
    assert_eq!(tc.len(), 1);
    assert_eq!((tc[0].0.as_str(), tc[0].1), ("bg", 0), "{tc:?}");
    assert_eq!(std::fs::metadata(env.root.join("etc/slow.bin")).unwrap().len(), 300_000);
    assert_eq!(agent.progress.snapshot().phase, Phase::Done);
    acs.validate_all();
}

/// Issue 12: a 2Wire `.pkgstream` (here: the published header's shape, a
/// `run` record, a 16x command-list length word) is refused by name, and
/// nothing is installed.
#[test]
fn a_2wire_dialect_package_is_refused_by_name() {
    let env = Env::new();
    let acs = TestAcs::start();
    let files = FileServer::start();
    let mut list = [&0x2Eu32.to_be_bytes()[..], &3u32.to_be_bytes(), b"run"].concat();
    list.extend([0u8; 8]); // the type-0 terminator
    let mut pkg = b"2WIRE_SP\0\0\0\x01\0\0\0\x01".to_vec();
    pkg.extend(((list.len() * 16) as u32).to_be_bytes());
    pkg.extend(4u32.to_be_bytes());
    pkg.extend(list);
    pkg.extend(pkgfmt::signature::EMPTY_SIGNATURE_BLOCK);
    pkg.extend(b"data");
    files.route("/att.pkgstream", Route::ok(pkg));
    acs.push_script(vec![Step::one(Body::Download(download("2wire", "1 Firmware Upgrade Image", &files.url("/att.pkgstream"))))]);
    let before = tree(&env.root);
    let mut agent = Agent::new(env.config(&acs, "")).unwrap();
    agent.run(true, 3).unwrap();
    assert_eq!(tree(&env.root), before);
    let tc = transfer_completes(&acs.sessions());
    assert_eq!(tc.len(), 1, "{tc:?}");
    assert_eq!(tc[0].1, 9010);
    assert!(tc[0].2.contains("not an Annex E package: 2Wire dialect detected; install refuses non-conformant packages"), "{:?}", tc[0].2);
}
