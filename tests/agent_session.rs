//! End-to-end CWMP sessions over real HTTP on loopback: the agent against
//! the in-repo test ACS (tests/support/acs.rs). Every envelope the agent
//! posts is validated against cwmp-1-0.xsd at the end of each test.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use agent::config::AgentConfig;
use agent::digest;
use agent::runner::{self, Agent, LocalChange, Trigger};
use agent::soap::{Body, ParameterValue, SetAttributes};
use support::acs::{AuthMode, Step, TestAcs};

const IGD: &str = "InternetGatewayDevice.";
const MS: &str = "InternetGatewayDevice.ManagementServer.";

fn config(dir: &Path, acs: &TestAcs, extra_agent: &str, acs_creds: (&str, &str)) -> AgentConfig {
    let creds = format!("username = \"{}\"\npassword = \"{}\"", acs_creds.0, acs_creds.1);
    let f = dir.join("agent.toml");
    std::fs::write(&f, support::config::agent_toml(&acs.url, dir, &creds, extra_agent, "")).unwrap();
    AgentConfig::load(&f).unwrap()
}

fn pv(n: &str, v: &str, t: &str) -> ParameterValue {
    ParameterValue { name: n.into(), value: v.into(), xsd_type: t.into() }
}

fn fault_code(b: &Body) -> Option<u32> {
    match b {
        Body::Fault(f) => Some(f.code),
        _ => None,
    }
}

#[test]
fn full_session_parameter_rpcs() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let pii = format!("{MS}PeriodicInformInterval");
    let table = format!("{IGD}Layer3Forwarding.Forwarding.");
    acs.push_script(vec![
        Step::one(Body::GetParameterNames { path: String::new(), next_level: false }),
        Step::one(Body::GetParameterValues { names: vec![format!("{IGD}DeviceInfo.")] }),
        Step::one(Body::SetParameterValues { list: vec![pv(&pii, "600", "xsd:unsignedInt")], parameter_key: "k1".into() }),
        // Not writable.
        Step::one(Body::SetParameterValues { list: vec![pv(&format!("{IGD}DeviceInfo.SerialNumber"), "x", "xsd:string")], parameter_key: "k2".into() }),
        // Wrong type: atomic, nothing applied.
        Step::one(Body::SetParameterValues {
            list: vec![pv(&pii, "700", "xsd:unsignedInt"), pv(&format!("{MS}PeriodicInformEnable"), "maybe", "xsd:boolean")],
            parameter_key: "k3".into(),
        }),
        Step::one(Body::SetParameterAttributes {
            list: vec![SetAttributes { name: pii.clone(), notification_change: true, notification: 1, access_list_change: false, access_list: vec![] }],
        }),
        Step::one(Body::GetParameterAttributes { names: vec![pii.clone()] }),
        Step::one(Body::AddObject { object_name: table.clone(), parameter_key: "k4".into() }),
        Step::one(Body::DeleteObject { object_name: format!("{table}1."), parameter_key: "k5".into() }),
    ]);
    let mut agent = Agent::new(config(d.path(), &acs, "", ("", ""))).unwrap();
    agent.run(true, 3).unwrap();

    let s = acs.sessions();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].events(), vec!["0 BOOTSTRAP"]);
    assert_eq!(s[0].inform_param(&format!("{IGD}DeviceInfo.SoftwareVersion")).as_deref(), Some("3.0.21"));
    let r = s[0].responses();
    assert_eq!(r.len(), 9, "{r:#?}");
    match &r[0] {
        Body::GetParameterNamesResponse { list } => {
            // Without table instances the fresh IGD tree has ~90 names.
            assert!(list.len() > 50, "{}", list.len());
            assert!(list.iter().any(|p| p.name == pii && p.writable), "{:?}", list.iter().filter(|p| p.name.contains("Periodic")).collect::<Vec<_>>());
        }
        other => panic!("{other:?}"),
    }
    match &r[1] {
        Body::GetParameterValuesResponse { list } => {
            assert!(list.iter().all(|p| p.name.starts_with(&format!("{IGD}DeviceInfo."))));
            assert!(list.iter().any(|p| p.name.ends_with("SerialNumber") && p.value == "CPE0001"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(r[2], Body::SetParameterValuesResponse { status: 0 }));
    assert_eq!(fault_code(&r[3]), Some(9003));
    match &r[3] {
        Body::Fault(f) => assert_eq!(f.set_parameter_values[0].code, 9008, "non-writable"),
        _ => unreachable!(),
    }
    match &r[4] {
        Body::Fault(f) => {
            assert_eq!(f.code, 9003);
            assert!(f.set_parameter_values.iter().any(|p| p.code == 9007), "{f:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(r[5], Body::SetParameterAttributesResponse));
    match &r[6] {
        Body::GetParameterAttributesResponse { list } => assert_eq!(list[0].notification, 1),
        other => panic!("{other:?}"),
    }
    assert!(matches!(r[7], Body::AddObjectResponse { instance_number: 1, status: 0 }));
    assert!(matches!(r[8], Body::DeleteObjectResponse { status: 0 }));
    assert_eq!(agent.store.get(&pii).as_deref(), Some("600"), "the good SPV applied, the bad one not");
    assert_eq!(agent.store.get(&format!("{MS}ParameterKey")).as_deref(), Some("k5"));
    assert!(acs.validate_all() >= 10);
}

#[test]
fn pipelining_and_hold_requests() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    acs.with(|s| s.max_envelopes = 2);
    let gpv = |p: &str| Body::GetParameterValues { names: vec![format!("{MS}{p}")] };
    acs.push_script(vec![Step::many(vec![gpv("URL"), gpv("PeriodicInformEnable"), gpv("ParameterKey")]), Step { requests: vec![gpv("Username")], hold: true }]);
    let mut agent = Agent::new(config(d.path(), &acs, "max_envelopes = 3", ("", ""))).unwrap();
    agent.run(true, 3).unwrap();
    let s = &acs.sessions()[0];
    assert_eq!(s.responses().len(), 4);
    // The CPE honoured the ACS's MaxEnvelopes = 2: no POST carried more.
    let posts = acs.posts();
    let most = posts.iter().map(|p| support::acs::split_envelopes(&p.body).len()).max().unwrap();
    assert_eq!(most, 2, "{posts:#?}");
    // Responses in request order (3.7.1.2).
    let names: Vec<String> = s
        .responses()
        .iter()
        .map(|b| match b {
            Body::GetParameterValuesResponse { list } => list[0].name.clone(),
            o => panic!("{o:?}"),
        })
        .collect();
    assert_eq!(names, ["URL", "PeriodicInformEnable", "ParameterKey", "Username"].map(|p| format!("{MS}{p}")));
    acs.validate_all();
}

#[test]
fn digest_auth_on_the_same_connection_and_cookies() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    acs.set_auth(AuthMode::Digest { user: "00D09E-CPE0001".into(), pass: "s3cret".into() });
    acs.push_script(vec![Step::one(Body::GetRPCMethods)]);
    let mut agent = Agent::new(config(d.path(), &acs, "", ("00D09E-CPE0001", "s3cret"))).unwrap();
    agent.run(true, 3).unwrap();
    // A second session: new connection, challenged again, no old cookie.
    agent.state.add_event("6 CONNECTION REQUEST", "");
    agent.run(true, 3).unwrap();
    assert_eq!(acs.sessions().len(), 2);
    let posts = acs.posts();
    let s1: Vec<_> = posts.iter().filter(|p| p.session <= 1).collect();
    assert_eq!(s1[0].status, 401);
    assert!(s1[0].authorization.is_none());
    // The retry went over the connection the nonce was issued on.
    assert_eq!(s1[1].peer, s1[0].peer);
    assert!(s1[1].authorization.as_deref().unwrap().starts_with("Digest "));
    assert_eq!(s1[1].status, 200);
    // Keep-alive: the whole first session on one TCP connection.
    let first_session: Vec<_> = posts.iter().filter(|p| p.session == 0 || (p.session == 1 && !p.body.contains("<cwmp:Inform>"))).collect();
    assert!(first_session.iter().all(|p| p.peer == s1[0].peer), "{first_session:#?}");
    // Cookies: every POST after the InformResponse returns it; not the next session's Inform.
    let after_inform: Vec<_> = posts.iter().filter(|p| p.session == 1 && !p.body.contains("<cwmp:Inform>")).collect();
    assert!(!after_inform.is_empty());
    assert!(after_inform.iter().all(|p| p.cookie.as_deref() == Some("acs_session=s1")), "{after_inform:#?}");
    let second_inform = posts.iter().filter(|p| p.body.contains("<cwmp:Inform>") && p.status == 200).nth(1).unwrap();
    assert!(second_inform.cookie.is_none(), "cookies are discarded at the end of a session");
    assert_ne!(second_inform.peer, s1[0].peer, "a new TCP connection per session");
    assert!(matches!(acs.sessions()[0].responses()[0], Body::GetRPCMethodsResponse { .. }));
    acs.validate_all();
}

#[test]
fn wrong_password_fails_and_retries() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    acs.set_auth(AuthMode::Digest { user: "00D09E-CPE0001".into(), pass: "right".into() });
    let mut agent = Agent::new(config(d.path(), &acs, "", ("00D09E-CPE0001", "wrong"))).unwrap();
    let e = agent.run(true, 2).unwrap_err();
    assert!(e.to_string().contains("gave up after 2"), "{e}");
    assert!(acs.sessions().is_empty());
    assert_eq!(agent.state.retry_count, 2);
    assert!(agent.state.has_event("0 BOOTSTRAP"), "undelivered events stay queued");
}

#[test]
fn basic_auth() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    acs.set_auth(AuthMode::Basic { user: "u".into(), pass: "p w".into() });
    let mut agent = Agent::new(config(d.path(), &acs, "", ("u", "p w"))).unwrap();
    agent.run(true, 2).unwrap();
    assert_eq!(acs.sessions().len(), 1);
}

#[test]
fn acs_down_then_up_backs_off_with_retry_count() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    acs.with(|s| s.refuse_informs = 3);
    let mut agent = Agent::new(config(d.path(), &acs, "", ("", ""))).unwrap();
    let t = std::time::Instant::now();
    agent.run(true, 5).unwrap();
    // Back-off 0.05, 0.1, 0.2 s (+ up to 50 %): at least 0.35 s in all.
    assert!(t.elapsed() >= Duration::from_millis(340), "{:?}", t.elapsed());
    let informs: Vec<_> = acs.posts().into_iter().filter(|p| p.body.contains("<cwmp:Inform>")).collect();
    assert_eq!(informs.len(), 4);
    let counts: Vec<String> = informs.iter().map(|p| p.body.split("<RetryCount>").nth(1).unwrap().split('<').next().unwrap().to_string()).collect();
    assert_eq!(counts, ["0", "1", "2", "3"]);
    assert_eq!(acs.sessions()[0].events(), vec!["0 BOOTSTRAP"]);
    assert_eq!(agent.state.retry_count, 0, "reset after a successful Inform");
    acs.validate_all();
}

#[test]
fn fault_8005_is_retried_immediately() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    acs.with(|s| s.retry_informs = 1);
    let mut agent = Agent::new(config(d.path(), &acs, "", ("", ""))).unwrap();
    agent.run(true, 1).unwrap();
    let s = acs.sessions();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].retry_count(), Some(1));
}

#[test]
fn restart_persists_tree_and_reports_boot() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let table = format!("{IGD}Layer3Forwarding.Forwarding.");
    acs.push_script(vec![
        Step::one(Body::SetParameterValues { list: vec![pv(&format!("{MS}PeriodicInformInterval"), "4242", "xsd:unsignedInt")], parameter_key: "p".into() }),
        Step::one(Body::AddObject { object_name: table.clone(), parameter_key: "a".into() }),
        Step::one(Body::DeleteObject { object_name: format!("{table}1."), parameter_key: "b".into() }),
    ]);
    {
        let mut agent = Agent::new(config(d.path(), &acs, "", ("", ""))).unwrap();
        agent.run(true, 2).unwrap();
    }
    acs.push_script(vec![
        Step::one(Body::GetParameterValues { names: vec![format!("{MS}PeriodicInformInterval"), format!("{MS}ParameterKey")] }),
        Step::one(Body::AddObject { object_name: table.clone(), parameter_key: "c".into() }),
    ]);
    let mut agent = Agent::new(config(d.path(), &acs, "", ("", ""))).unwrap();
    agent.run(true, 2).unwrap();
    let s = acs.sessions();
    assert_eq!(s[0].events(), vec!["0 BOOTSTRAP"]);
    assert_eq!(s[1].events(), vec!["1 BOOT"], "a restart reports BOOT, not BOOTSTRAP");
    match &s[1].responses()[0] {
        Body::GetParameterValuesResponse { list } => {
            assert_eq!(list[0].value, "4242");
            assert_eq!(list[1].value, "b");
        }
        o => panic!("{o:?}"),
    }
    assert!(matches!(s[1].responses()[1], Body::AddObjectResponse { instance_number: 2, .. }), "instance numbers are never reused");
    acs.validate_all();
}

#[test]
fn acs_url_change_bootstraps_the_new_acs() {
    let d = tempfile::tempdir().unwrap();
    let acs1 = TestAcs::start();
    let acs2 = TestAcs::start();
    acs1.push_script(vec![Step::one(Body::SetParameterValues { list: vec![pv(&format!("{MS}URL"), &acs2.url, "xsd:string")], parameter_key: "u".into() })]);
    let mut agent = Agent::new(config(d.path(), &acs1, "", ("", ""))).unwrap();
    agent.run(true, 2).unwrap();
    assert_eq!(acs1.sessions().len(), 1);
    assert_eq!(acs2.sessions().len(), 1, "the URL change starts a session with the new ACS");
    assert_eq!(acs2.sessions()[0].events(), vec!["0 BOOTSTRAP"]);
    acs1.validate_all();
    acs2.validate_all();
}

/// An HTTP GET with optional Authorization; returns (status, WWW-Authenticate).
fn http_get(url: &str, authorization: Option<&str>) -> (u16, Option<String>) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out.split(' ').nth(1).unwrap().parse().unwrap();
    let www = out.lines().find(|l| l.to_ascii_lowercase().starts_with("www-authenticate:")).map(|l| l.split_once(':').unwrap().1.trim().to_string());
    (status, www)
}

/// An agent with a Connection Request server, running on a thread; its
/// bootstrap session set ConnectionRequestUsername/Password to acs/crpw.
struct CrAgent {
    _dir: tempfile::TempDir,
    url: String,
    tx: std::sync::mpsc::Sender<Trigger>,
    thread: std::thread::JoinHandle<Agent>,
}

impl CrAgent {
    fn start(acs: &TestAcs) -> CrAgent {
        let d = tempfile::tempdir().unwrap();
        acs.push_script(vec![Step::one(Body::SetParameterValues {
            list: vec![pv(&format!("{MS}ConnectionRequestUsername"), "acs", "xsd:string"), pv(&format!("{MS}ConnectionRequestPassword"), "crpw", "xsd:string")],
            parameter_key: "cr".into(),
        })]);
        let agent = Agent::new(config(d.path(), acs, "connection_request = \"127.0.0.1:0\"", ("", ""))).unwrap();
        let url = agent.connection_request_url().expect("ConnectionRequestURL set");
        let (tx, thread) = support::run_in_background(agent);
        assert!(acs.wait_sessions(1, Duration::from_secs(10)));
        CrAgent { _dir: d, url, tx, thread }
    }

    /// The path the Digest response covers.
    fn uri(&self) -> &str {
        &self.url[self.url.find("/cr").unwrap_or(self.url.rfind('/').unwrap())..]
    }

    /// A Connection Request answered with Digest for `password`; its status.
    fn request(&self, password: &str) -> u16 {
        let (_, www) = http_get(&self.url, None);
        let digest::Scheme::Digest(ch) = digest::pick(&[www.as_deref().unwrap()]).unwrap() else { panic!("Digest expected") };
        http_get(&self.url, Some(&digest::digest_authorization(&ch, "GET", self.uri(), "acs", password, 1, "c0ffee"))).0
    }

    fn stop(self) {
        self.tx.send(Trigger::Stop).unwrap();
        self.thread.join().unwrap();
    }
}

#[test]
fn connection_request_with_and_without_valid_digest() {
    let acs = TestAcs::start();
    let agent = CrAgent::start(&acs);
    let url = agent.url.clone();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(acs.sessions()[0].inform_param(&format!("{MS}ConnectionRequestURL")).as_deref(), Some(url.as_str()));

    // Without credentials, and with a wrong password: 401, no session.
    let (st, www) = http_get(&url, None);
    assert_eq!(st, 401);
    assert!(matches!(digest::pick(&[www.as_deref().unwrap()]).unwrap(), digest::Scheme::Digest(_)), "Digest expected");
    assert_eq!(agent.request("nope"), 401);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(acs.sessions().len(), 1, "no session from an unauthenticated request");

    // Valid digest: 200 and a session with 6 CONNECTION REQUEST.
    let st = agent.request("crpw");
    assert!(st == 200 || st == 204, "{st}");
    assert!(acs.wait_sessions(2, Duration::from_secs(10)));
    assert_eq!(acs.sessions()[1].events(), vec!["6 CONNECTION REQUEST"]);
    agent.stop();
    acs.validate_all();
}

#[test]
fn external_change_triggers_active_notification_acs_change_does_not() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let pc = format!("{IGD}DeviceInfo.ProvisioningCode");
    let pii = format!("{MS}PeriodicInformInterval");
    acs.push_script(vec![
        Step::one(Body::SetParameterAttributes {
            list: vec![SetAttributes { name: pii.clone(), notification_change: true, notification: 2, access_list_change: false, access_list: vec![] }],
        }),
        // An ACS-made change of an actively notified parameter: no new session.
        Step::one(Body::SetParameterValues { list: vec![pv(&pii, "900", "xsd:unsignedInt")], parameter_key: "n".into() }),
    ]);
    let cfg = config(d.path(), &acs, "", ("", ""));
    let state_dir = cfg.agent.state_dir.clone();
    let agent = Agent::new(cfg).unwrap();
    let (tx, h) = support::run_in_background(agent);
    assert!(acs.wait_sessions(1, Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(acs.sessions().len(), 1, "ACS-made changes never notify");
    // A local change (external cause) of the active parameter.
    runner::spool_local_change(&state_dir, &LocalChange { name: pii.clone(), value: "1200".into() }).unwrap();
    assert!(acs.wait_sessions(2, Duration::from_secs(10)));
    let s2 = &acs.sessions()[1];
    assert_eq!(s2.events(), vec!["4 VALUE CHANGE"]);
    assert_eq!(s2.inform_param(&pii).as_deref(), Some("1200"));
    // Table 33 "inform on change": ProvisioningCode without any attribute set.
    runner::spool_local_change(&state_dir, &LocalChange { name: pc.clone(), value: "PC-7".into() }).unwrap();
    assert!(acs.wait_sessions(3, Duration::from_secs(10)));
    let s3 = &acs.sessions()[2];
    assert_eq!(s3.events(), vec!["4 VALUE CHANGE"]);
    assert_eq!(s3.inform_param(&pc).as_deref(), Some("PC-7"));
    tx.send(Trigger::Stop).unwrap();
    h.join().unwrap();
    acs.validate_all();
}

#[test]
fn periodic_informs() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let cfg = config(d.path(), &acs, "periodic_inform_interval = 1", ("", ""));
    let agent = Agent::new(cfg).unwrap();
    let (tx, h) = support::run_in_background(agent);
    assert!(acs.wait_sessions(3, Duration::from_secs(10)));
    tx.send(Trigger::Stop).unwrap();
    h.join().unwrap();
    let s = acs.sessions();
    assert_eq!(s[0].events(), vec!["0 BOOTSTRAP"]);
    assert_eq!(s[1].events(), vec!["2 PERIODIC"]);
    assert_eq!(s[2].events(), vec!["2 PERIODIC"]);
}

/// 3.2.2: "If the CPE is already in a session with the ACS when it receives
/// a Connection Request notification, it MUST NOT terminate that session
/// prematurely as a result." The request is accepted, the session runs to
/// its end, and the Connection Request gets a session of its own after it.
#[test]
fn connection_request_during_a_session_waits_for_it_to_end() {
    let acs = TestAcs::start();
    let agent = CrAgent::start(&acs);
    // The second session has an ACS request in it.
    acs.push_script(vec![Step::one(Body::GetParameterNames { path: MS.to_string(), next_level: true })]);
    // Hold the ACS (its state lock) so that session 2 is in progress, stuck
    // on its Inform, when the second Connection Request arrives.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let st = std::sync::Arc::clone(&acs.state);
    let blocker = std::thread::spawn(move || {
        let _g = st.lock().unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(1500));
    });
    locked_rx.recv().unwrap();
    let st = agent.request("crpw");
    assert!(st == 200 || st == 204, "{st}");
    std::thread::sleep(Duration::from_millis(400)); // session 2 has started and waits on the ACS
    let st = agent.request("crpw");
    assert!(st == 200 || st == 204, "a Connection Request during a session is accepted: {st}");
    blocker.join().unwrap();
    assert!(acs.wait_sessions(3, Duration::from_secs(10)), "the queued Connection Request gets its own session");
    std::thread::sleep(Duration::from_millis(300));
    agent.stop();

    let sessions = acs.sessions();
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions[1].events(), vec!["6 CONNECTION REQUEST"]);
    assert_eq!(sessions[2].events(), vec!["6 CONNECTION REQUEST"]);
    // Session 2 ran to its end: the GetParameterNames was answered.
    assert!(sessions[1].responses().iter().any(|b| matches!(b, Body::GetParameterNamesResponse { .. })), "{:?}", sessions[1].responses());
    // One session at a time: the POSTs of different sessions never interleave.
    let order: Vec<usize> = acs.posts().iter().map(|p| p.session).collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{order:?}");
    acs.validate_all();
}
