//! Issue 14 (agent footprint): the real `cpekit agent` process maps no
//! XML-DSig library — libxmlsec1, libxml2, ICU — after start-up, and
//! SetVouchers still works end to end: the `cpekit-xmldsig` helper process
//! beside `cpekit` verifies (a voucher signed with the TEST keys is applied,
//! a rogue-signed one refused with 9001 as before), and the agent still maps
//! none of them afterwards.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent::soap::{Body, Fault};
use support::acs::{Step, TestAcs};

const ENABLED: &str = "InternetGatewayDevice.DeviceInfo.EnabledOptions";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Lines of /proc/PID/maps naming an XML-DSig library or ICU.
fn xml_mappings(pid: u32) -> Vec<String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    maps.lines().filter(|l| ["libxmlsec1", "libxml2", "libicu"].iter().any(|lib| l.contains(lib))).map(str::to_string).collect()
}

/// `cpekit voucher sign` (through the helper) of testdata/vouchers/options.toml
/// (VoIP and ParentalControl for 00D09E-Gateway-CPE0001) with a TEST key.
fn voucher(dir: &Path, signer: &str) -> Vec<u8> {
    let out = dir.join(format!("{signer}.xml"));
    let keys = root().join("testdata/keys");
    let st = Command::new(env!("CARGO_BIN_EXE_cpekit"))
        .args(["voucher", "sign", "--options"])
        .arg(root().join("testdata/vouchers/options.toml"))
        .arg("--key")
        .arg(keys.join(format!("{signer}.key")))
        .arg("--cert")
        .arg(keys.join(format!("{signer}.pem")))
        .arg("-o")
        .arg(&out)
        .env_remove(vouchers::helper::HELPER_ENV)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    std::fs::read(out).unwrap()
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn agent_maps_no_xmldsig_library_and_set_vouchers_works_through_the_helper() {
    support::xmldsig::helper();
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let good = voucher(d.path(), "signer");
    let rogue = voucher(d.path(), "rogue");
    // No voucher_helper: the agent finds cpekit-xmldsig beside cpekit.
    let trust = format!("[trust]\nvouchers = [\"{}\"]", root().join("testdata/keys/ca.pem").display());
    let f = d.path().join("agent.toml");
    std::fs::write(&f, support::config::agent_toml(&acs.url, d.path(), "", "periodic_inform_interval = 1", &trust)).unwrap();
    let agent = Running(
        Command::new(env!("CARGO_BIN_EXE_cpekit"))
            .args(["agent", "--config"])
            .arg(&f)
            .env_remove(vouchers::helper::HELPER_ENV)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = agent.0.id();
    assert!(acs.wait_sessions(1, Duration::from_secs(20)), "no BOOTSTRAP session");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(xml_mappings(pid), Vec::<String>::new(), "the idle agent maps an XML-DSig library");

    acs.push_script(vec![
        Step::one(Body::SetVouchers { vouchers: vec![rogue] }),
        Step::one(Body::SetVouchers { vouchers: vec![good] }),
        Step::one(Body::GetOptions { option_name: "VoIP".into() }),
        Step::one(Body::GetParameterValues { names: vec![ENABLED.into()] }),
    ]);
    let t = Instant::now();
    let r = loop {
        if let Some(s) = acs.sessions().iter().skip(1).find(|s| s.responses().len() >= 4) {
            break s.responses();
        }
        assert!(t.elapsed() < Duration::from_secs(30), "the scripted session did not happen: {:#?}", acs.sessions());
        std::thread::sleep(Duration::from_millis(50));
    };
    // C.2: a signer that does not chain to [trust] vouchers → 9001, as in process.
    match &r[0] {
        Body::Fault(Fault { code: 9001, string, .. }) => {
            assert!(string.starts_with("voucher 0: signing certificate does not chain to a configured trust anchor"), "{string}")
        }
        other => panic!("rogue voucher: {other:?}"),
    }
    assert_eq!(r[1], Body::SetVouchersResponse, "{r:#?}");
    match &r[2] {
        Body::GetOptionsResponse { options } => {
            assert_eq!(options.len(), 1, "{options:?}");
            assert_eq!((options[0].option_name.as_str(), options[0].state & 1, options[0].voucher_sn), ("VoIP", 1, 1001));
        }
        other => panic!("{other:?}"),
    }
    match &r[3] {
        Body::GetParameterValuesResponse { list } => assert_eq!(list[0].value, "ParentalControl,VoIP"),
        other => panic!("{other:?}"),
    }
    // The helper was another process: the agent still maps none of them.
    assert_eq!(xml_mappings(pid), Vec::<String>::new(), "the agent maps an XML-DSig library after SetVouchers");
    drop(agent);
    assert!(acs.validate_all() >= 6);
}

/// A helper that is not there: SetVouchers is refused with 9002 Internal
/// error (the module documentation of agent::options), nothing is applied.
#[test]
fn a_missing_helper_is_an_internal_error() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    support::xmldsig::helper();
    let good = voucher(d.path(), "signer");
    let trust =
        format!("[trust]\nvouchers = [\"{}\"]\nvoucher_helper = \"{}\"", root().join("testdata/keys/ca.pem").display(), d.path().join("absent").display());
    let f = d.path().join("agent.toml");
    std::fs::write(&f, support::config::agent_toml(&acs.url, d.path(), "", "", &trust)).unwrap();
    acs.push_script(vec![Step::one(Body::SetVouchers { vouchers: vec![good] }), Step::one(Body::GetOptions { option_name: String::new() })]);
    let out = Command::new(env!("CARGO_BIN_EXE_cpekit")).args(["agent", "--once", "--config"]).arg(&f).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = acs.sessions()[0].responses();
    match &r[0] {
        Body::Fault(Fault { code: 9002, string, .. }) => assert!(string.contains("absent"), "{string}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(r[1], Body::GetOptionsResponse { options: vec![] });
}
