//! SetVouchers / GetOptions end to end (A.4.1.3, A.4.1.4, Appendix C):
//! the agent against the in-repo test ACS over loopback, with vouchers
//! signed by the `xmlsec1` CLI from a template (TEST keys in
//! testdata/keys). Every envelope the agent posts is validated against
//! cwmp-1-0.xsd.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use agent::config::AgentConfig;
use agent::runner::{self, Agent, LocalChange, Trigger};
use agent::soap::{Body, OptionStruct, ParameterValue};
use support::acs::{Step, TestAcs};
use time::OffsetDateTime;
use vouchers::{DeviceId, DurationUnits, Mode, VoucherOption};

const ENABLED: &str = "InternetGatewayDevice.DeviceInfo.EnabledOptions";
const PCODE: &str = "InternetGatewayDevice.DeviceInfo.ProvisioningCode";
const SERIAL: &str = "CPE0001";

fn keys() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/keys")
}

fn config(dir: &Path, acs: &TestAcs) -> AgentConfig {
    let trust = format!("[trust]\nvouchers = [\"{}\"]\nvoucher_helper = \"{}\"", keys().join("ca.pem").display(), support::xmldsig::helper().display());
    let f = dir.join("agent.toml");
    std::fs::write(&f, support::config::agent_toml(&acs.url, dir, "", "", &trust)).unwrap();
    AgentConfig::load(&f).unwrap()
}

struct Opt {
    ident: &'static str,
    vserial: &'static str,
    serial: &'static str,
    mode: Mode,
    transferable: bool,
    start: Option<OffsetDateTime>,
    duration: Option<(u32, DurationUnits)>,
}

fn opt(ident: &'static str, vserial: &'static str, mode: Mode) -> Opt {
    Opt { ident, vserial, serial: SERIAL, mode, transferable: false, start: None, duration: None }
}

impl Opt {
    fn option(&self) -> VoucherOption {
        VoucherOption {
            vserial_num: self.vserial.into(),
            device_id: DeviceId { manufacturer: "cpekit".into(), oui: "00D09E".into(), product_class: "Gateway".into(), serial_number: self.serial.into() },
            option_ident: self.ident.into(),
            option_desc: format!("{} option", self.ident),
            start_date: self.start,
            duration: self.duration,
            mode: self.mode,
            transferable: self.transferable,
        }
    }
}

/// A voucher signed by the `xmlsec1` CLI from a Figure 6 style template
/// (enveloping Signature, one Reference per Option).
fn xmlsec1_voucher(opts: &[Opt], key: &str) -> Vec<u8> {
    let t = tempfile::tempdir().unwrap();
    let mut refs = String::new();
    let mut objects = String::new();
    for (i, o) in opts.iter().enumerate() {
        refs.push_str(&format!(
            r##"<Reference URI="#option{i}"><Transforms><Transform Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/></Transforms><DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/><DigestValue/></Reference>"##
        ));
        objects.push_str(&format!(
            r#"<dsig:Object xmlns="" xmlns:dsig="http://www.w3.org/2000/09/xmldsig#" Id="option{i}">{}</dsig:Object>"#,
            o.option().to_xml()
        ));
    }
    let tmpl = format!(
        r#"<?xml version="1.0"?>
<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo><CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/><SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/>{refs}</SignedInfo><SignatureValue/><KeyInfo><X509Data/></KeyInfo>
{objects}</Signature>"#
    );
    let tf = t.path().join("tmpl.xml");
    let out = t.path().join("out.xml");
    std::fs::write(&tf, tmpl).unwrap();
    let st = Command::new("xmlsec1")
        .arg("--sign")
        .arg("--privkey-pem")
        .arg(format!("{},{}", keys().join(format!("{key}.key")).display(), keys().join(format!("{key}.pem")).display()))
        .args(["--id-attr:Id", "Object", "--output"])
        .arg(&out)
        .arg(&tf)
        .output()
        .expect("xmlsec1 must be installed (make test installs it)");
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    std::fs::read(&out).unwrap()
}

fn fault(b: &Body) -> Option<u32> {
    match b {
        Body::Fault(f) => Some(f.code),
        _ => None,
    }
}

fn options(b: &Body) -> Vec<OptionStruct> {
    match b {
        Body::GetOptionsResponse { options } => options.clone(),
        other => panic!("expected GetOptionsResponse, got {other:?}"),
    }
}

fn value(b: &Body, name: &str) -> String {
    match b {
        Body::GetParameterValuesResponse { list } => list.iter().find(|p| p.name == name).map(|p| p.value.clone()).unwrap(),
        other => panic!("expected GetParameterValuesResponse, got {other:?}"),
    }
}

fn gpv(name: &str) -> Step {
    Step::one(Body::GetParameterValues { names: vec![name.into()] })
}

fn get_options(name: &str) -> Step {
    Step::one(Body::GetOptions { option_name: name.into() })
}

fn set_vouchers(v: Vec<Vec<u8>>) -> Step {
    Step::one(Body::SetVouchers { vouchers: v })
}

#[test]
fn set_vouchers_enables_options_get_options_and_enabled_options() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let mut iptv = opt("IPTV", "1002", Mode::EnableWithExpiration);
    iptv.duration = Some((2, DurationUnits::Months));
    iptv.transferable = true;
    let v = xmlsec1_voucher(&[opt("VoIP", "1001", Mode::EnableWithoutExpiration), iptv], "signer");
    acs.push_script(vec![
        Step::one(Body::GetRPCMethods),
        gpv(ENABLED),
        set_vouchers(vec![v.clone()]),
        get_options(""),
        get_options("VoIP"),
        get_options("NoSuchOption"),
        gpv(ENABLED),
        // The same voucher again (an ACS retrying): success, no change.
        set_vouchers(vec![v]),
        get_options("VoIP"),
    ]);
    let before = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let mut agent = Agent::new(config(d.path(), &acs)).unwrap();
    agent.run(true, 3).unwrap();
    let r = acs.sessions()[0].responses();
    assert_eq!(r.len(), 9, "{r:#?}");
    match &r[0] {
        Body::GetRPCMethodsResponse { methods } => {
            assert!(methods.iter().any(|m| m == "SetVouchers") && methods.iter().any(|m| m == "GetOptions"), "{methods:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(value(&r[1], ENABLED), "");
    assert_eq!(r[2], Body::SetVouchersResponse);
    let all = options(&r[3]);
    assert_eq!(all.len(), 2);
    let voip = all.iter().find(|o| o.option_name == "VoIP").unwrap();
    // Table 48: State bit 0 enabled; Mode 2 = enabled without expiration.
    assert_eq!((voip.state & 1, voip.mode, voip.voucher_sn, voip.is_transferable), (1, 2, 1001, false));
    assert!(voip.expiration_date.is_none());
    let started = time::OffsetDateTime::parse(&voip.start_date, &time::format_description::well_known::Rfc3339).unwrap();
    assert!(started >= before, "StartDate is the application time: {}", voip.start_date);
    let tv = all.iter().find(|o| o.option_name == "IPTV").unwrap();
    assert_eq!((tv.state & 1, tv.mode, tv.voucher_sn, tv.is_transferable), (1, 1, 1002, true));
    assert!(tv.expiration_date.is_some());
    assert_eq!(options(&r[4]).iter().map(|o| o.option_name.as_str()).collect::<Vec<_>>(), ["VoIP"]);
    assert!(options(&r[5]).is_empty(), "an Option no voucher named is unknown");
    assert_eq!(value(&r[6], ENABLED), "IPTV,VoIP");
    assert_eq!(r[7], Body::SetVouchersResponse);
    assert_eq!(options(&r[8])[0].voucher_sn, 1001);
    // Persisted: the option store and the tree (also after a restart).
    assert!(d.path().join("state/options.json").exists());
    drop(agent);
    let again = Agent::new(config(d.path(), &acs)).unwrap();
    assert_eq!(again.store.values.get(ENABLED).map(String::as_str), Some("IPTV,VoIP"));
    assert!(acs.validate_all() >= 10);
}

/// Issue 14, "privilege-dropped where possible": with `[trust]
/// voucher_helper_user`, the helper that parses the ACS's XML runs as that
/// user. As root the agent runs it as nobody (a stand-in records its uid,
/// then becomes the real helper) and the voucher takes effect; an agent
/// that cannot change user (not root, asking for root) runs no helper and
/// answers 9002, enabling nothing.
#[test]
fn voucher_helper_runs_as_the_configured_user() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    // Where nobody can reach the helper (the checkout may be under /root).
    let bin = tempfile::tempdir().unwrap();
    for p in [bin.path(), d.path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let real = bin.path().join("cpekit-xmldsig");
    std::fs::copy(support::xmldsig::helper(), &real).unwrap();
    let uid_file = bin.path().join("uid");
    let wrapper = bin.path().join("helper");
    std::fs::write(&wrapper, format!("#!/bin/sh\nid -u > '{}'\nexec '{}'\n", uid_file.display(), real.display())).unwrap();
    for f in [&real, &wrapper] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let root = unsafe { libc::geteuid() } == 0;
    let user = if root { "nobody" } else { "0:0" };
    let acs = TestAcs::start();
    let v = xmlsec1_voucher(&[opt("VoIP", "1001", Mode::EnableWithoutExpiration)], "signer");
    acs.push_script(vec![set_vouchers(vec![v]), gpv(ENABLED)]);
    let trust =
        format!("[trust]\nvouchers = [\"{}\"]\nvoucher_helper = \"{}\"\nvoucher_helper_user = \"{user}\"", keys().join("ca.pem").display(), wrapper.display());
    let f = d.path().join("agent.toml");
    std::fs::write(&f, support::config::agent_toml(&acs.url, d.path(), "", "", &trust)).unwrap();
    let mut agent = Agent::new(AgentConfig::load(&f).unwrap()).unwrap();
    agent.run(true, 3).unwrap();
    let r = acs.sessions()[0].responses();
    assert_eq!(r.len(), 2, "{r:#?}");
    if root {
        assert_eq!(r[0], Body::SetVouchersResponse, "{r:#?}");
        assert_eq!(value(&r[1], ENABLED), "VoIP");
        let nobody = Command::new("id").args(["-u", "nobody"]).output().unwrap();
        assert_eq!(std::fs::read_to_string(&uid_file).unwrap().trim(), String::from_utf8_lossy(&nobody.stdout).trim());
    } else {
        assert_eq!(fault(&r[0]), Some(9002), "{r:#?}");
        assert_eq!(value(&r[1], ENABLED), "");
        assert!(!uid_file.exists(), "the helper ran as the agent's user");
    }
}

#[test]
fn refused_vouchers_fault_and_change_nothing() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let mut other = opt("VoIP", "2001", Mode::EnableWithoutExpiration);
    other.serial = "SOMEONE-ELSE";
    let good = xmlsec1_voucher(&[opt("Gaming", "2002", Mode::EnableWithoutExpiration)], "signer");
    let tampered = String::from_utf8(good.clone()).unwrap().replace("<OptionIdent>Gaming</OptionIdent>", "<OptionIdent>Gamino</OptionIdent>");
    acs.push_script(vec![
        // C.3: another device's voucher → Request denied.
        set_vouchers(vec![xmlsec1_voucher(&[other], "signer")]),
        // C.2: a signer that does not chain to [trust] vouchers.
        set_vouchers(vec![xmlsec1_voucher(&[opt("VoIP", "2003", Mode::EnableWithoutExpiration)], "rogue")]),
        // Signature broken.
        set_vouchers(vec![tampered.into_bytes()]),
        // Not a voucher at all.
        set_vouchers(vec![b"<Option>unsigned</Option>".to_vec()]),
        // All or nothing: a good voucher with a bad one applies neither.
        set_vouchers(vec![good, xmlsec1_voucher(&[opt("VoIP", "2004", Mode::EnableWithoutExpiration)], "rogue")]),
        get_options(""),
        gpv(ENABLED),
    ]);
    let mut agent = Agent::new(config(d.path(), &acs)).unwrap();
    agent.run(true, 3).unwrap();
    let r = acs.sessions()[0].responses();
    let codes: Vec<_> = r.iter().take(5).map(fault).collect();
    assert_eq!(codes, [Some(9001), Some(9001), Some(9001), Some(9003), Some(9001)], "{r:#?}");
    match &r[0] {
        Body::Fault(f) => assert!(f.string.contains("SOMEONE-ELSE"), "{}", f.string),
        _ => unreachable!(),
    }
    assert!(options(&r[5]).is_empty());
    assert_eq!(value(&r[6], ENABLED), "");
    assert!(acs.validate_all() >= 8);
}

#[test]
fn replayed_voucher_cannot_undo_a_later_one() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let on = xmlsec1_voucher(&[opt("VoIP", "3001", Mode::EnableWithoutExpiration)], "signer");
    let off = xmlsec1_voucher(&[opt("VoIP", "3002", Mode::Disable)], "signer");
    acs.push_script(vec![
        set_vouchers(vec![on.clone()]),
        gpv(ENABLED),
        set_vouchers(vec![off.clone()]),
        // The old enabling voucher replayed: refused (C.3 VSerialNum).
        set_vouchers(vec![on]),
        get_options("VoIP"),
        gpv(ENABLED),
        // The voucher in effect, re-sent: fine, no change.
        set_vouchers(vec![off]),
    ]);
    let mut agent = Agent::new(config(d.path(), &acs)).unwrap();
    agent.run(true, 3).unwrap();
    let r = acs.sessions()[0].responses();
    assert_eq!(r[0], Body::SetVouchersResponse);
    assert_eq!(value(&r[1], ENABLED), "VoIP");
    assert_eq!(r[2], Body::SetVouchersResponse);
    assert_eq!(fault(&r[3]), Some(9001), "{:?}", r[3]);
    let o = options(&r[4]);
    assert_eq!((o[0].state & 1, o[0].mode, o[0].voucher_sn), (0, 0, 3002));
    assert_eq!(value(&r[5], ENABLED), "");
    assert_eq!(r[6], Body::SetVouchersResponse);
    assert!(acs.validate_all() >= 8);
}

#[test]
fn provisioning_code_change_by_acs_disables_non_transferable() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let mut keep = opt("Keep", "4001", Mode::EnableWithoutExpiration);
    keep.transferable = true;
    let v = xmlsec1_voucher(&[keep, opt("Lose", "4002", Mode::EnableWithoutExpiration)], "signer");
    acs.push_script(vec![
        set_vouchers(vec![v]),
        gpv(ENABLED),
        // C.2 / Table 62 Transferable: a new provider (ProvisioningCode).
        Step::one(Body::SetParameterValues {
            list: vec![ParameterValue { name: PCODE.into(), value: "ISP-B".into(), xsd_type: "xsd:string".into() }],
            parameter_key: "pc".into(),
        }),
        gpv(ENABLED),
        get_options("Lose"),
    ]);
    let mut agent = Agent::new(config(d.path(), &acs)).unwrap();
    agent.run(true, 3).unwrap();
    let r = acs.sessions()[0].responses();
    assert_eq!(value(&r[1], ENABLED), "Keep,Lose");
    assert!(matches!(r[2], Body::SetParameterValuesResponse { status: 0 }));
    assert_eq!(value(&r[3], ENABLED), "Keep");
    let lose = options(&r[4]);
    assert_eq!((lose[0].state & 1, lose[0].mode), (0, 0));
    assert_eq!(agent.store.values.get(ENABLED).map(String::as_str), Some("Keep"));
    assert!(acs.validate_all() >= 6);
}

#[test]
fn local_provisioning_code_change_and_expiry_take_effect_without_restart() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    // Expires ~8 s from now: StartDate in the past, Duration 1 Day
    // (Table 62: the duration is relative to StartDate).
    let mut short = opt("Trial", "5001", Mode::EnableWithExpiration);
    short.transferable = true;
    let expiry = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() + time::Duration::seconds(8);
    short.start = Some(expiry - time::Duration::days(1));
    short.duration = Some((1, DurationUnits::Days));
    let v = xmlsec1_voucher(&[short, opt("Local", "5002", Mode::EnableWithoutExpiration)], "signer");
    acs.push_script(vec![set_vouchers(vec![v]), gpv(ENABLED)]);
    let cfg = config(d.path(), &acs);
    let state_dir = cfg.agent.state_dir.clone();
    let agent = Agent::new(cfg).unwrap();
    let (tx, h) = support::run_in_background(agent);
    assert!(acs.wait_sessions(1, Duration::from_secs(10)));
    // `cpekit agent set` on the device: a new provider. ProvisioningCode
    // is "inform on change" (Table 33): that alone starts a session.
    acs.push_script(vec![gpv(ENABLED), get_options("")]);
    runner::spool_local_change(&state_dir, &LocalChange { name: PCODE.into(), value: "ISP-LOCAL".into() }).unwrap();
    tx.send(Trigger::LocalChange).unwrap();
    assert!(acs.wait_sessions(2, Duration::from_secs(10)));
    // Past the expiry of "Trial".
    let left = expiry - OffsetDateTime::now_utc() + time::Duration::milliseconds(300);
    std::thread::sleep(Duration::try_from(left).unwrap_or_default());
    acs.push_script(vec![gpv(ENABLED), get_options("Trial")]);
    tx.send(Trigger::ConnectionRequest).unwrap();
    assert!(acs.wait_sessions(3, Duration::from_secs(10)));
    tx.send(Trigger::Stop).unwrap();
    let agent = h.join().unwrap();

    let s = acs.sessions();
    assert_eq!(value(&s[0].responses()[1], ENABLED), "Local,Trial");
    assert!(s[1].events().iter().any(|e| e == "4 VALUE CHANGE"), "{:?}", s[1].events());
    let r2 = s[1].responses();
    assert_eq!(value(&r2[0], ENABLED), "Trial", "non-transferable Local disabled by the local ProvisioningCode change");
    assert_eq!(s[1].inform_param(PCODE).as_deref(), Some("ISP-LOCAL"));
    let all = options(&r2[1]);
    assert_eq!(all.iter().find(|o| o.option_name == "Local").unwrap().state & 1, 0);
    let r3 = s[2].responses();
    assert_eq!(value(&r3[0], ENABLED), "", "Trial expired (C.2: the CPE disables it itself)");
    let t = options(&r3[1]);
    assert_eq!((t[0].state & 1, t[0].mode), (0, 0));
    assert_eq!(agent.store.values.get(ENABLED).map(String::as_str), Some(""));
    assert!(acs.validate_all() >= 8);
}
