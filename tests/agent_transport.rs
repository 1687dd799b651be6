//! The agent's transport edges: HTTPS with the ACS certificate checked
//! against the URL host (3.3), the no-response timeout (3.7.1.4), a
//! script-bound parameter notifying actively, and the `cpekit agent --once`
//! command line.

mod support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use agent::config::AgentConfig;
use agent::runner::{Agent, Trigger};
use agent::soap::{Body, SetAttributes};
use support::acs::{Step, TestAcs};
use support::tls::{pki, tls_front};

fn write_config(dir: &Path, url: &str, acs_extra: &str, extra: &str) -> PathBuf {
    let f = dir.join("agent.toml");
    std::fs::write(
        &f,
        format!(
            r#"
[acs]
url = "{url}"
{acs_extra}
[device]
manufacturer = "cpekit"
oui = "00D09E"
product_class = "Gateway"
serial_number = "CPE0002"
software_version = "1.0"
[agent]
state_dir = "state"
retry_base_seconds = 0.05
retry_max_seconds = 0.1
response_timeout_seconds = 5
poll_interval_ms = 50
{extra}
"#
        ),
    )
    .unwrap();
    f
}

fn backend_addr(acs: &TestAcs) -> std::net::SocketAddr {
    acs.url.trim_start_matches("http://").split('/').next().unwrap().parse().unwrap()
}

#[test]
fn https_checks_the_acs_certificate_against_the_url_host() {
    let d = tempfile::tempdir().unwrap();
    pki(d.path(), "DNS:localhost");
    let acs = TestAcs::start();
    let port = tls_front(d.path(), backend_addr(&acs));

    // Trusted CA, host matches the certificate: a session.
    let ok = tempfile::tempdir().unwrap();
    let ca = d.path().join("ca.pem");
    let f = write_config(ok.path(), &format!("https://localhost:{port}/acs"), &format!("ca_file = \"{}\"", ca.display()), "");
    let mut agent = Agent::new(AgentConfig::load(&f).unwrap()).unwrap();
    agent.run(true, 1).unwrap();
    assert_eq!(acs.sessions().len(), 1);

    // Same server reached by IP: the certificate names only "localhost".
    let by_ip = tempfile::tempdir().unwrap();
    let f = write_config(by_ip.path(), &format!("https://127.0.0.1:{port}/acs"), &format!("ca_file = \"{}\"", ca.display()), "");
    let e = Agent::new(AgentConfig::load(&f).unwrap()).unwrap().run(true, 1).unwrap_err();
    assert!(e.to_string().contains("gave up"), "{e}");
    // Without our CA (webpki roots only): refused too.
    let untrusted = tempfile::tempdir().unwrap();
    let f = write_config(untrusted.path(), &format!("https://localhost:{port}/acs"), "", "");
    let mut a = Agent::new(AgentConfig::load(&f).unwrap()).unwrap();
    assert!(a.run_session().unwrap_err().to_string().to_lowercase().contains("certificate"));
    assert_eq!(acs.sessions().len(), 1, "no Inform reached the ACS over an unauthenticated channel");
    acs.validate_all();
}

#[test]
fn no_response_times_out_the_session() {
    // An "ACS" that accepts and never answers.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let _hold = std::thread::spawn(move || {
        let mut keep = Vec::new();
        for c in l.incoming().flatten() {
            keep.push(c);
        }
    });
    let d = tempfile::tempdir().unwrap();
    let f = write_config(d.path(), &format!("http://{addr}/acs"), "", "");
    let mut cfg = AgentConfig::load(&f).unwrap();
    cfg.agent.response_timeout_seconds = Some(0.5);
    let mut agent = Agent::new(cfg).unwrap();
    let t = Instant::now();
    let e = agent.run_session().unwrap_err();
    assert!(t.elapsed() >= Duration::from_millis(450) && t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(e.to_string().to_lowercase().contains("timed out") || e.to_string().contains("timeout"), "{e}");
    assert_eq!(agent.state.retry_count, 1);
}

#[test]
fn script_bound_vendor_parameter_notifies_actively() {
    let d = tempfile::tempdir().unwrap();
    let value = d.path().join("temperature");
    std::fs::write(&value, "40").unwrap();
    let acs = TestAcs::start();
    let p = "InternetGatewayDevice.X_00D09E_Diag.Temperature";
    acs.push_script(vec![Step::one(Body::SetParameterAttributes {
        list: vec![SetAttributes { name: p.into(), notification_change: true, notification: 2, access_list_change: false, access_list: vec![] }],
    })]);
    let extra =
        format!("\n[[vendor_parameters]]\nname = \"{p}\"\ntype = \"int\"\n\n[[hooks]]\nparameter = \"{p}\"\nget = [\"cat\", \"{}\"]\n", value.display());
    let f = write_config(d.path(), &acs.url, "", &extra);
    let mut agent = Agent::new(AgentConfig::load(&f).unwrap()).unwrap();
    let tx = agent.trigger_sender();
    let h = std::thread::spawn(move || agent.run(false, 1));
    assert!(acs.wait_sessions(1, Duration::from_secs(10)));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(acs.sessions().len(), 1);
    std::fs::write(&value, "71").unwrap(); // the device changed, not the ACS
    assert!(acs.wait_sessions(2, Duration::from_secs(10)));
    let s = &acs.sessions()[1];
    assert_eq!(s.events(), vec!["4 VALUE CHANGE"]);
    assert_eq!(s.inform_param(p).as_deref(), Some("71"));
    tx.send(Trigger::Stop).unwrap();
    h.join().unwrap().unwrap();
    acs.validate_all();
}

#[test]
fn cli_once_and_local_set() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let f = write_config(d.path(), &acs.url, "", "");
    let bin = env!("CARGO_BIN_EXE_cpekit");
    let out = Command::new(bin).args(["agent", "--once", "--config"]).arg(&f).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(acs.sessions()[0].events(), vec!["0 BOOTSTRAP"]);
    // A local change of a Table 33 "inform on change" parameter, then --once again.
    let pc = "InternetGatewayDevice.DeviceInfo.ProvisioningCode";
    let out = Command::new(bin).args(["agent", "set", "--config"]).arg(&f).args([pc, "PC-42"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(bin).args(["agent", "--once", "--config"]).arg(&f).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let s = acs.sessions();
    assert_eq!(s.len(), 2);
    assert_eq!(s[1].events(), vec!["1 BOOT", "4 VALUE CHANGE"]);
    assert_eq!(s[1].inform_param(pc).as_deref(), Some("PC-42"));
    // Bad input: clear errors, documented exit statuses.
    let out = Command::new(bin).args(["agent", "set", "--config"]).arg(&f).args(["InternetGatewayDevice.Nope", "1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2)); // a usage error (issue 9; it was 4)
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such parameter"));
    std::fs::write(d.path().join("bad.toml"), "[acs]\nurl = \"ftp://x\"\n").unwrap();
    let out = Command::new(bin).args(["agent", "--once", "--config"]).arg(d.path().join("bad.toml")).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    // The ACS gone: --once gives up after --max-attempts, exit 4.
    drop(acs);
    let out = Command::new(bin).args(["agent", "--once", "--max-attempts", "2", "--config"]).arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("gave up after 2"), "{}", String::from_utf8_lossy(&out.stderr));
}
