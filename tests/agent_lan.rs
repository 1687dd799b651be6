//! The LAN side of the agent (Appendix D) end to end over loopback: the
//! KickURL and DownloadProgressURL pages against the in-repo test ACS, the
//! Kicked and RequestDownload calls (A.4.2), and both pages rendered by
//! headless Chromium (DOM and screenshots, kept in target/lan-screenshots/).
//! Every envelope the agent posts is validated against cwmp-1-0.xsd.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use agent::config::AgentConfig;
use agent::progress::{Phase, Progress};
use agent::runner::{Agent, Trigger};
use agent::soap::{Arg, Body, Fault};
use support::acs::{Step, TestAcs};

const MS: &str = "InternetGatewayDevice.ManagementServer.";

fn config(dir: &Path, acs: &TestAcs, extra_agent: &str) -> AgentConfig {
    let f = write_config(dir, acs, extra_agent);
    AgentConfig::load(&f).unwrap()
}

fn write_config(dir: &Path, acs: &TestAcs, extra_agent: &str) -> PathBuf {
    let timeout = if extra_agent.contains("kick_timeout_seconds") { "" } else { "kick_timeout_seconds = 20" };
    let agent = format!("lan_address = \"127.0.0.1:0\"\n{timeout}\n{extra_agent}");
    let f = dir.join("agent.toml");
    std::fs::write(&f, support::config::agent_toml(&acs.url, dir, "", &agent, "")).unwrap();
    f
}

/// A running agent and its LAN URLs.
struct Running {
    tx: Sender<Trigger>,
    thread: Option<JoinHandle<()>>,
    kick_url: String,
    progress_url: String,
    progress: Progress,
}

impl Running {
    fn start(cfg: AgentConfig) -> Running {
        let mut agent = Agent::new(cfg).unwrap();
        let kick_url = agent.kick_url().expect("LAN server runs");
        let progress_url = agent.progress_url().unwrap();
        // B: the parameters advertise the served URLs.
        assert_eq!(agent.store.get(&format!("{MS}KickURL")).as_deref(), Some(kick_url.as_str()));
        assert_eq!(agent.store.get(&format!("{MS}DownloadProgressURL")).as_deref(), Some(progress_url.as_str()));
        let progress = agent.progress.clone();
        let tx = agent.trigger_sender();
        let thread = std::thread::spawn(move || agent.run(false, 1).unwrap());
        Running { tx, thread: Some(thread), kick_url, progress_url, progress }
    }

    /// The LAN server's `http://host:port`.
    fn base(&self) -> &str {
        self.kick_url.strip_suffix("/kick").unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.tx.send(Trigger::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn header(&self, n: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request over a fresh connection.
fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Resp {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.trim().to_string())).collect();
    Resp { status, headers, body: body.to_string() }
}

fn get(url: &str) -> Resp {
    request("GET", url, &[])
}

/// The Kicked requests the ACS received, in order.
fn kicked(acs: &TestAcs) -> Vec<Body> {
    acs.sessions().iter().flat_map(|s| s.received.iter().filter_map(|e| e.body.clone().ok())).filter(|b| matches!(b, Body::Kicked { .. })).collect()
}

/// An ACS that answers Kicked with its Next plus a session token.
fn kick_answering_acs() -> TestAcs {
    let acs = TestAcs::start();
    acs.with(|s| {
        s.cpe_answer = Some(Arc::new(|b: &Body| match b {
            Body::Kicked { command, .. } if command == "deny" => Some(Body::Fault(Fault::new(8001, "Request denied <for the test>"))),
            Body::Kicked { next, .. } => Some(Body::KickedResponse { next_url: format!("{next}{}token=abc", if next.contains('?') { '&' } else { '?' }) }),
            Body::RequestDownload { .. } => Some(Body::RequestDownloadResponse),
            _ => None,
        }))
    });
    acs
}

#[test]
fn kick_runs_a_kicked_session_and_redirects_to_next_url() {
    let d = tempfile::tempdir().unwrap();
    let acs = kick_answering_acs();
    let agent = Running::start(config(d.path(), &acs, "max_envelopes = 2"));
    assert!(acs.wait_sessions(1, Duration::from_secs(10)));
    // D.3 step 4: the ACS may use the kicked session for other RPCs too.
    acs.push_script(vec![Step::one(Body::GetParameterValues { names: vec![format!("{MS}KickURL")] })]);
    let next = "http://web.example/account?step=2";
    let url = format!("{}?command=identify&arg=user%3D42+%26+more&next={}", agent.kick_url, agent::lan::url_encode(next));
    let r = request("GET", &url, &[("Referer", "http://web.example/start")]);
    // D.3 step 5: redirect to the ACS's NextURL.
    assert_eq!(r.status, 302, "{r:?}");
    assert_eq!(r.header("Location"), Some("http://web.example/account?step=2&token=abc"));
    // The browser is answered as soon as the KickedResponse arrives; the
    // session goes on with the ACS's requests.
    assert!(acs.wait_sessions(2, Duration::from_secs(10)));
    let s = acs.sessions();
    let ks = s.iter().find(|s| s.received.iter().any(|e| matches!(e.body, Ok(Body::Kicked { .. })))).expect("a session with Kicked");
    // Table 35: the session carries 5 KICKED.
    assert!(ks.events().contains(&"5 KICKED".to_string()), "{:?}", ks.events());
    assert_eq!(
        kicked(&acs),
        vec![Body::Kicked { command: "identify".into(), referer: "http://web.example/start".into(), arg: "user=42 & more".into(), next: next.into() }]
    );
    assert!(!s[0].events().contains(&"5 KICKED".to_string()), "the bootstrap session was not kicked");
    match ks.responses().iter().find(|b| matches!(b, Body::GetParameterValuesResponse { .. })) {
        Some(Body::GetParameterValuesResponse { list }) => assert_eq!(list[0].value, agent.kick_url),
        other => panic!("{other:?}"),
    }

    // A.4.2.1: a path-only NextURL is on the CPE's own host.
    let r = get(&format!("{}?command=local&next=%2Fsecurity%2Findex.html", agent.kick_url));
    assert_eq!(r.header("Location"), Some(format!("{}/security/index.html?token=abc", agent.base()).as_str()));
    // 5 KICKED is not persisted: a later session is not "kicked".
    agent.tx.send(Trigger::ConnectionRequest).unwrap();
    let n = acs.sessions().len();
    assert!(acs.wait_sessions(n + 1, Duration::from_secs(10)));
    assert_eq!(acs.sessions().last().unwrap().events(), vec!["6 CONNECTION REQUEST"]);
    drop(agent);
    assert!(acs.validate_all() >= 5);
}

#[test]
fn kick_fault_bad_args_and_rate_limit_give_error_pages() {
    let d = tempfile::tempdir().unwrap();
    let acs = kick_answering_acs();
    let agent = Running::start(config(d.path(), &acs, "kick_limit_per_hour = 2"));
    assert!(acs.wait_sessions(1, Duration::from_secs(10)));

    // A.4.2.1: a fault sends the browser to the CPE's error page.
    let r = get(&format!("{}?command=deny&next=http%3A%2F%2Fweb.example%2F", agent.kick_url));
    assert_eq!(r.status, 303, "{r:?}");
    let loc = r.header("Location").unwrap().to_string();
    assert!(loc.starts_with(&format!("{}/kick-error?id=", agent.base())), "{loc}");
    let e = get(&loc);
    assert_eq!(e.status, 502);
    assert!(e.body.contains("fault 8001: Request denied &lt;for the test&gt;"), "{}", e.body);

    // Table 64: an over-long command is refused without a Kicked call (and
    // does not use up the hourly allowance).
    let r = get(&format!("{}?command={}", agent.kick_url, "c".repeat(33)));
    let e = get(r.header("Location").unwrap());
    assert_eq!(e.status, 400);
    assert!(e.body.contains("longer than 32"), "{}", e.body);

    let r = get(&format!("{}?command=ok&next=http%3A%2F%2Fweb.example%2F", agent.kick_url));
    assert_eq!(r.status, 302);
    // D.4: the third kick within the hour is a security violation: no Kicked.
    let r = get(&format!("{}?command=ok&next=http%3A%2F%2Fweb.example%2F", agent.kick_url));
    assert_eq!(r.status, 303);
    let e = get(r.header("Location").unwrap());
    assert_eq!(e.status, 429);
    assert!(e.body.contains("at most 2 per hour"), "{}", e.body);
    assert!(e.header("Retry-After").is_some());
    assert_eq!(kicked(&acs).len(), 2);

    // Only GET and HEAD; nothing else is served.
    assert_eq!(request("POST", &agent.kick_url, &[]).status, 405);
    assert_eq!(get(&format!("{}/kick/../progress", agent.base())).status, 404);
    assert_eq!(get(&format!("{}/../../etc/passwd", agent.base())).status, 404);
    let h = request("HEAD", &agent.progress_url, &[]);
    assert_eq!((h.status, h.body.as_str()), (200, ""));
    drop(agent);
    assert_eq!(kicked(&acs).len(), 2);
    acs.validate_all();
}

#[test]
fn lan_server_bounds_heads_and_connections() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let agent = Running::start(config(d.path(), &acs, ""));
    let addr = agent.base().strip_prefix("http://").unwrap().to_string();
    // An oversized request head is refused, not buffered.
    let big = "x".repeat(9000);
    assert_eq!(request("GET", &agent.progress_url, &[("X-Big", &big)]).status, 431);
    // A GET with a body is refused.
    assert_eq!(request("GET", &agent.progress_url, &[("Content-Length", "3")]).status, 400);
    // Idle connections hold a worker each, up to the cap; one more gets 503.
    let mut idle: Vec<TcpStream> = (0..agent::lan::MAX_CONNECTIONS).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    // The workers of the two requests above may still be closing (on a
    // loaded machine): a connection that finds a free slot gets no answer
    // (it waits for a head like the idle ones); the cap must answer 503
    // within a few more.
    let mut answered = None;
    for _ in 0..4 {
        let mut extra = TcpStream::connect(&addr).unwrap();
        extra.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut text = String::new();
        let _ = extra.read_to_string(&mut text);
        if !text.is_empty() {
            answered = Some(text);
            break;
        }
        idle.push(extra);
    }
    let text = answered.expect("the connection cap never answered");
    assert!(text.starts_with("HTTP/1.1 503"), "{text:?}");
    drop(idle);
    drop(agent);
    acs.validate_all();
}

#[test]
fn kick_queues_behind_a_running_session_and_times_out() {
    let d = tempfile::tempdir().unwrap();
    let acs = kick_answering_acs();
    let agent = Running::start(config(d.path(), &acs, "kick_timeout_seconds = 1"));
    assert!(acs.wait_sessions(1, Duration::from_secs(10)));
    // Stall the ACS (its state lock) while a Connection Request session runs.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let st = Arc::clone(&acs.state);
    let blocker = std::thread::spawn(move || {
        let _g = st.lock().unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_secs(3));
    });
    locked_rx.recv().unwrap();
    agent.tx.send(Trigger::ConnectionRequest).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // 3.2.2 / D: the kick does not interrupt the session; it waits, and the
    // browser gets the error page when the wait is over.
    let r = get(&format!("{}?command=late&next=http%3A%2F%2Fweb.example%2F", agent.kick_url));
    assert_eq!(r.status, 303, "{r:?}");
    let e = get(r.header("Location").unwrap());
    assert_eq!(e.status, 504);
    assert!(e.body.contains("no answer from the ACS within 1 s"), "{}", e.body);
    blocker.join().unwrap();
    assert!(acs.wait_sessions(2, Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(500));
    // Nobody waits for that kick any more: no Kicked call, no session.
    assert_eq!(acs.sessions().len(), 2);
    assert!(kicked(&acs).is_empty());
    drop(agent);
    acs.validate_all();
}

#[test]
fn kick_with_the_acs_down_gives_an_error_page() {
    let d = tempfile::tempdir().unwrap();
    let acs = kick_answering_acs();
    let agent = Running::start(config(d.path(), &acs, ""));
    assert!(acs.wait_sessions(1, Duration::from_secs(10)));
    acs.with(|s| s.refuse_informs = 1000);
    let r = get(&format!("{}?command=identify&next=http%3A%2F%2Fweb.example%2F", agent.kick_url));
    assert_eq!(r.status, 303, "{r:?}");
    let e = get(r.header("Location").unwrap());
    assert_eq!(e.status, 502);
    assert!(e.body.contains("session with the ACS failed"), "{}", e.body);
    assert!(kicked(&acs).is_empty());
    drop(agent);
    acs.validate_all();
}

#[test]
fn request_download_is_spooled_and_sent_until_answered() {
    let d = tempfile::tempdir().unwrap();
    let acs = kick_answering_acs();
    let f = write_config(d.path(), &acs, "");
    let bin = env!("CARGO_BIN_EXE_cpekit");
    let out = Command::new(bin)
        .args(["agent", "request-download", "--config"])
        .arg(&f)
        .args(["--file-type", "2 Web Content", "--arg", "Version=2.1", "--arg", "Lang=en"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Table 27 FileType values only; NAME=VALUE arguments.
    let bad = Command::new(bin).args(["agent", "request-download", "--config"]).arg(&f).args(["--file-type", "1 Firmware"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2)); // a usage error (issue 9; it was 4)
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Table 27"));
    let bad = Command::new(bin).args(["agent", "request-download", "--config"]).arg(&f).args(["--file-type", "2 Web Content", "--arg", "x"]).output().unwrap();
    assert!(!bad.status.success());

    // The ACS is down: the request stays spooled.
    acs.with(|s| s.refuse_informs = 1000);
    let mut agent = Agent::new(AgentConfig::load(&f).unwrap()).unwrap();
    assert!(agent.run(true, 2).is_err());
    drop(agent);
    let spool = d.path().join("state/request-download");
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 1);

    // Back up: sent in the next session, which it caused.
    acs.with(|s| s.refuse_informs = 0);
    let mut agent = Agent::new(AgentConfig::load(&f).unwrap()).unwrap();
    agent.run(true, 2).unwrap();
    let s = acs.sessions();
    assert_eq!(s.len(), 1);
    // The first start failed to reach the ACS: this is a restart (1 BOOT).
    assert_eq!(s[0].events(), vec!["0 BOOTSTRAP", "9 REQUEST DOWNLOAD", "1 BOOT"]);
    let rds: Vec<Body> = s[0].received.iter().filter_map(|e| e.body.clone().ok()).filter(|b| matches!(b, Body::RequestDownload { .. })).collect();
    assert_eq!(
        rds,
        vec![Body::RequestDownload {
            file_type: "2 Web Content".into(),
            args: vec![Arg { name: "Version".into(), value: "2.1".into() }, Arg { name: "Lang".into(), value: "en".into() }]
        }]
    );
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0, "answered: removed from the spool");

    // The running agent picks up a new spool entry and starts a session.
    let agent = Running::start(AgentConfig::load(&f).unwrap());
    assert!(acs.wait_sessions(2, Duration::from_secs(10)));
    let out = Command::new(bin).args(["agent", "request-download", "--config"]).arg(&f).args(["--file-type", "1 Firmware Upgrade Image"]).output().unwrap();
    assert!(out.status.success());
    assert!(acs.wait_sessions(3, Duration::from_secs(10)));
    let last = acs.sessions().pop().unwrap();
    assert_eq!(last.events(), vec!["9 REQUEST DOWNLOAD"]);
    assert!(last
        .received
        .iter()
        .any(|e| matches!(&e.body, Ok(Body::RequestDownload { file_type, args }) if file_type == "1 Firmware Upgrade Image" && args.is_empty())));
    drop(agent);
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
    assert!(acs.validate_all() >= 4);
}

#[test]
fn progress_pages_show_the_shared_progress() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let agent = Running::start(config(d.path(), &acs, ""));
    let idle = get(&agent.progress_url);
    assert!(idle.body.contains("No download has run"), "{}", idle.body);
    agent.progress.update(|s| {
        s.phase = Phase::Downloading;
        s.url = "http://files.example/fw.bin?a=1&b=<2>".into();
        s.file_type = "1 Firmware Upgrade Image".into();
        s.bytes = 300;
        s.total = 1200;
    });
    let p = get(&agent.progress_url);
    assert_eq!(p.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert!(p.body.contains("300 of 1200 bytes") && p.body.contains("25%"), "{}", p.body);
    assert!(p.body.contains("fw.bin?a=1&amp;b=&lt;2&gt;"), "escaped: {}", p.body);
    let j: serde_json::Value = serde_json::from_str(&get(&format!("{}.json", agent.progress_url)).body).unwrap();
    assert_eq!((j["bytes"].as_u64(), j["total"].as_u64(), j["percent"].as_u64()), (Some(300), Some(1200), Some(25)));
    assert_eq!(j["phase"], "downloading");
    agent.progress.update(|s| s.phase = Phase::Failed { code: 9010, message: "Download failed".into() });
    assert!(get(&agent.progress_url).body.contains("fault 9010: Download failed"));
    drop(agent);
    acs.validate_all();
}

// ---- headless Chromium -------------------------------------------------

const CHROMIUM: &str = "/usr/bin/chromium";

/// Run headless Chromium (the Makefile installs Debian's `chromium`; a
/// missing browser fails the test) with a fresh profile; returns stdout.
fn chromium(args: &[&str]) -> String {
    assert!(Path::new(CHROMIUM).exists(), "{CHROMIUM} is missing: install Debian's chromium (make installs it)");
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--force-device-scale-factor=1",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn screenshot_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("lan-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Decode a screenshot: (width, height, RGB pixels).
fn decode_png(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let dec = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let step = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected PNG color type {other:?}"),
    };
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let px = buf[..info.buffer_size()].chunks(step).map(|c| [c[0], c[1], c[2]]).collect();
    (info.width, info.height, px)
}

fn screenshot(url: &str, name: &str) -> (Vec<[u8; 3]>, PathBuf) {
    let path = screenshot_dir().join(name);
    let _ = std::fs::remove_file(&path);
    chromium(&[&format!("--screenshot={}", path.display()), "--window-size=800,600", url]);
    let (w, h, px) = decode_png(&path);
    assert_eq!((w, h), (800, 600), "{}", path.display());
    let distinct: std::collections::HashSet<[u8; 3]> = px.iter().copied().collect();
    assert!(distinct.len() >= 4, "{}: a blank page ({} colours)", path.display(), distinct.len());
    (px, path)
}

/// A small "web site" of the ACS: the page the kicked browser lands on.
fn web_site() -> (Arc<tiny_http::Server>, String, JoinHandle<()>) {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let url = format!("http://127.0.0.1:{}/landing", server.server_addr().to_ip().unwrap().port());
    let s = Arc::clone(&server);
    let t = std::thread::spawn(move || {
        for req in s.incoming_requests() {
            let query = req.url().split_once('?').map(|(_, q)| q.to_string()).unwrap_or_default();
            let body = if req.url().starts_with("/landing") {
                format!("<!DOCTYPE html><html><body><h1 id=\"landed\">Welcome back, CPE0001</h1><p id=\"query\">{query}</p></body></html>")
            } else {
                String::new()
            };
            let status = if body.is_empty() { 404 } else { 200 };
            let resp = tiny_http::Response::from_string(body)
                .with_status_code(status)
                .with_header(tiny_http::Header::from_bytes("Content-Type", "text/html; charset=utf-8").unwrap());
            let _ = req.respond(resp);
        }
    });
    (server, url, t)
}

#[test]
fn chromium_kick_lands_on_the_next_url_page() {
    let d = tempfile::tempdir().unwrap();
    let acs = kick_answering_acs();
    let (site, landing, site_thread) = web_site();
    let agent = Running::start(config(d.path(), &acs, "kick_limit_per_hour = 1"));
    assert!(acs.wait_sessions(1, Duration::from_secs(10)));
    let kick = format!("{}?command=identify&arg=browser&next={}", agent.kick_url, agent::lan::url_encode(&landing));
    let dom = chromium(&["--dump-dom", &kick]);
    // The browser followed the 302 to the NextURL (with the ACS's token).
    assert!(dom.contains("<h1 id=\"landed\">Welcome back, CPE0001</h1>"), "{dom}");
    assert!(dom.contains("token=abc"), "{dom}");
    match &kicked(&acs)[..] {
        [Body::Kicked { command, arg, next, .. }] => assert_eq!((command.as_str(), arg.as_str(), next.as_str()), ("identify", "browser", landing.as_str())),
        other => panic!("{other:?}"),
    }
    // Over the hourly limit: the CPE's own error page, rendered.
    let dom = chromium(&["--dump-dom", &kick]);
    assert!(dom.contains("id=\"error\"") && dom.contains("at most 1 per hour"), "{dom}");
    let (px, path) = screenshot(&kick, "kick-error.png");
    // The error text is red (#c62828): some clearly red pixels.
    let red = px.iter().filter(|[r, g, b]| *r > 150 && *g < 90 && *b < 90).count();
    assert!(red > 20, "{}: no red error text ({red} pixels)", path.display());
    assert_eq!(kicked(&acs).len(), 1, "rate limited kicks make no Kicked call");
    drop(agent);
    site.unblock();
    let _ = site_thread.join();
    acs.validate_all();
}

#[test]
fn chromium_renders_the_progress_page() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let agent = Running::start(config(d.path(), &acs, ""));
    agent.progress.update(|s| {
        s.phase = Phase::Downloading;
        s.command_key = "fw-42".into();
        s.url = "http://files.example/fw.bin".into();
        s.file_type = "1 Firmware Upgrade Image".into();
        s.bytes = 512_000;
        s.total = 1_024_000;
    });
    let dom = chromium(&["--dump-dom", &agent.progress_url]);
    assert!(dom.contains("<td id=\"bytes\">512000 of 1024000 bytes</td>"), "{dom}");
    assert!(dom.contains("<td id=\"percent\">50%</td>") && dom.contains("<td id=\"phase\">downloading</td>"), "{dom}");
    assert!(dom.contains("http-equiv=\"refresh\""), "{dom}");
    let (px, path) = screenshot(&agent.progress_url, "progress.png");
    // The bar: filled part #1565c0, the rest #e0e0e0, about half each.
    let fill = px.iter().filter(|p| **p == [0x15, 0x65, 0xc0]).count();
    let track = px.iter().filter(|p| **p == [0xe0, 0xe0, 0xe0]).count();
    assert!(fill > 2000, "{}: progress bar fill missing ({fill} pixels)", path.display());
    assert!(track > 2000 && (fill as f64 / (fill + track) as f64 - 0.5).abs() < 0.1, "{}: fill {fill}, track {track}", path.display());
    drop(agent);
    acs.validate_all();
}
