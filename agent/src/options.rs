//! Signed vouchers in the agent (A.4.1.3 SetVouchers, A.4.1.4 GetOptions,
//! Appendix C): a session [`Extension`] over the `vouchers` crate.
//!
//! * The device's identity for the C.3 DeviceId check is the config's
//!   `[device]` OUI, ProductClass and SerialNumber (the same values the
//!   agent writes into DeviceInfo on every start); the provider is the
//!   current `DeviceInfo.ProvisioningCode` (C.2, Table 62 Transferable).
//! * Trust anchors are the PEM files of `[trust] vouchers`; a voucher must
//!   verify and chain to one of them before anything in it is applied
//!   (C.2 "a CPE MUST validate the signature and authenticate the signer").
//! * The XML Signatures are checked by a [`VerifyVouchers`]: by default the
//!   `cpekit-xmldsig` helper process ([`vouchers::Helper`], `[trust]
//!   voucher_helper` or beside the running executable), run once per
//!   SetVouchers, so the agent never maps libxmlsec1, libxml2 or ICU
//!   (issue 14: an idle agent within 8 MiB); its typed errors give the same
//!   faults as an in-process verification.
//! * Options are persisted in `state_dir/options.json` (the vouchers
//!   crate's store: atomic writes).
//! * `DeviceInfo.EnabledOptions` (Table 61 / B.2) lists the Options enabled
//!   now. SetVouchers updates it as a side effect of the ACS's request;
//!   [`Options::refresh`] (called by the runner on every loop iteration,
//!   so before every Inform) applies expiry (C.2 "the CPE MUST disable the
//!   Option itself"), future StartDates, and a ProvisioningCode change
//!   (non-transferable Options are disabled, C.2) without a restart.
//! * Network time (C.2: vouchers "should only" be applied once network
//!   time is established): the agent uses the host's system clock, which
//!   the host keeps in sync (NTP/SNTP is the OS's job, not the agent's). A
//!   clock that reads before [`NETWORK_TIME_FLOOR`] (an RTC-less board
//!   that booted at the epoch) is taken as "no network time yet".
//!
//! Fault codes (A.4.1.3 allows 9000–9004; Table 58 meanings):
//! * DeviceId of another device → 9001 Request denied (C.3, Table 62
//!   DeviceId: "MUST ignore the Voucher and respond with a Request Denied
//!   fault");
//! * signature invalid, signer not chaining to a trust anchor, no trust
//!   anchor configured, signature-wrapping shapes, disallowed algorithms →
//!   9001 Request denied: the CPE could not authenticate the signer (C.2)
//!   and refuses; Table 58 has no more specific code;
//! * a VoucherList entry that is not a voucher at all (not XML, not an
//!   enveloping Signature with Options, a bad Option field) → 9003
//!   Invalid arguments;
//! * more vouchers (or bigger, deeper, with more elements, attributes,
//!   References or certificates: `vouchers::limits`) than we accept → 9004
//!   Resources exceeded;
//! * no network time, libxmlsec1, helper process or storage failure → 9002
//!   Internal error.
//!
//! SetVouchers is all-or-nothing: every voucher is verified and checked
//! before any is applied. A voucher already applied (same VSerialNum and
//! OptionIdent) is not applied again (C.3: VSerialNum is unique per
//! voucher): re-sending the voucher that is in effect is answered with
//! success and changes nothing (an ACS retrying after a lost response);
//! replaying a voucher that a later one superseded is refused with 9001.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use tracing::{info, warn};
use vouchers::store::{Applied, ApplyError, Device};
use vouchers::{Helper, OptionStore, VerifiedVoucher, VerifyError, VerifyVouchers, VoucherError};

use super::datamodel::store::Store;
use super::datamodel::Schema;
use super::rpc::Effects;
use super::session::Extension;
use super::soap::{Body, Fault, OptionStruct};

pub const ENABLED_OPTIONS: &str = "InternetGatewayDevice.DeviceInfo.EnabledOptions";
pub const PROVISIONING_CODE: &str = "InternetGatewayDevice.DeviceInfo.ProvisioningCode";

/// The option store's file in the state directory.
pub const STORE_FILE: &str = "options.json";

/// Vouchers accepted in one SetVouchers (more: 9004 Resources exceeded).
pub const MAX_VOUCHERS: usize = 32;
/// Largest voucher accepted (decoded bytes): the vouchers crate's limit,
/// checked here before any voucher of the request is looked at.
pub use vouchers::MAX_VOUCHER_BYTES;
/// Table 61 (B.2): EnabledOptions is string(1024).
const ENABLED_OPTIONS_MAX: usize = 1024;

/// A system clock before this (2025-01-01T00:00:00Z) has not been set from
/// the network (C.2).
pub const NETWORK_TIME_FLOOR: i64 = 1_735_689_600;

#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// The option store (its message names the file).
    #[error(transparent)]
    Store(#[from] ApplyError),
}

/// The agent's voucher/option state: a session [`Extension`].
pub struct Options {
    oui: String,
    product_class: String,
    serial_number: String,
    /// `[trust] vouchers`: PEM trust anchors, read on each SetVouchers (so
    /// a replaced anchor file takes effect without a restart).
    anchors: Vec<PathBuf>,
    store: OptionStore,
    /// Checks the signatures (the helper process unless replaced).
    verifier: Box<dyn VerifyVouchers>,
}

impl Options {
    /// Open the option store in `state_dir` for the device identified by
    /// `oui`/`product_class`/`serial_number` (Table 63).
    pub fn open(state_dir: &Path, oui: &str, product_class: &str, serial_number: &str, anchors: Vec<PathBuf>) -> Result<Options, OptionsError> {
        Ok(Options {
            oui: oui.into(),
            product_class: product_class.into(),
            serial_number: serial_number.into(),
            anchors,
            store: OptionStore::open(&state_dir.join(STORE_FILE))?,
            verifier: Box::new(Helper::locate(None)),
        })
    }

    /// Check voucher signatures with `verifier` (default: the
    /// `cpekit-xmldsig` helper found by [`Helper::locate`]).
    pub fn with_verifier(mut self, verifier: Box<dyn VerifyVouchers>) -> Options {
        self.verifier = verifier;
        self
    }

    fn device(&self, store: &Store) -> Device {
        Device {
            oui: self.oui.clone(),
            product_class: self.product_class.clone(),
            serial_number: self.serial_number.clone(),
            provisioning_code: provisioning_code(store),
        }
    }

    /// The option store (read-only view).
    pub fn option_store(&self) -> &OptionStore {
        &self.store
    }

    /// Apply the time and provider rules as of `now` (C.2) and bring
    /// `DeviceInfo.EnabledOptions` up to date. Returns whether the tree
    /// changed (the caller persists it).
    pub fn refresh(&mut self, store: &mut Store, now: OffsetDateTime) -> Result<bool, OptionsError> {
        let code = provisioning_code(store);
        if self.store.refresh(now, &code)? {
            info!(provisioning_code = %code, "options disabled by expiry or a new ProvisioningCode (C.2)");
        }
        let enabled = enabled_options_value(&self.store.enabled_options(now));
        if !store.values.contains_key(ENABLED_OPTIONS) || store.values.get(ENABLED_OPTIONS) == Some(&enabled) {
            return Ok(false);
        }
        info!(enabled_options = %enabled, "EnabledOptions changed");
        store.set(ENABLED_OPTIONS, &enabled);
        Ok(true)
    }

    /// A.4.1.3: verify every voucher, check it is ours, then apply them all.
    fn set_vouchers(&mut self, store: &mut Store, vouchers: &[Vec<u8>], now: OffsetDateTime) -> Result<(), Fault> {
        if vouchers.len() > MAX_VOUCHERS {
            return Err(Fault::new(9004, format!("at most {MAX_VOUCHERS} vouchers per SetVouchers")));
        }
        if vouchers.iter().any(|v| v.len() > MAX_VOUCHER_BYTES) {
            return Err(Fault::new(9004, format!("a voucher is larger than {MAX_VOUCHER_BYTES} bytes")));
        }
        if vouchers.is_empty() {
            return Ok(());
        }
        if now.unix_timestamp() < NETWORK_TIME_FLOOR {
            return Err(Fault::new(9002, "network time is not established (C.2)"));
        }
        if self.anchors.is_empty() {
            return Err(Fault::new(9001, "no voucher trust anchor configured: the signer cannot be authenticated (C.2)"));
        }
        let mut pems = Vec::with_capacity(self.anchors.len());
        for a in &self.anchors {
            pems.push(std::fs::read(a).map_err(|e| Fault::new(9002, format!("voucher trust anchor {}: {e}", a.display())))?);
        }
        // One verification per request (one helper process): SetVouchers is rare.
        let verified: Vec<VerifiedVoucher> = self.verifier.verify_vouchers(&pems, vouchers, Some(now)).map_err(|e| {
            match &e {
                VerifyError::Voucher { index, error } => warn!(voucher = index, error = %foundation::error_kind::chain(&error), "voucher refused"),
                e => warn!(error = %foundation::error_kind::chain(&e), "vouchers not verified"),
            }
            verify_fault(&e)
        })?;
        let device = self.device(store);
        for (i, v) in verified.iter().enumerate() {
            for o in &v.options {
                // C.3 / Table 62 DeviceId.
                if !o.device_id.matches(&device.oui, &device.product_class, &device.serial_number) {
                    warn!(voucher = i, vserial = %o.vserial_num, "voucher for another device refused");
                    return Err(Fault::new(
                        9001,
                        format!(
                            "voucher {i} ({}) is for device {}-{}-{}, not this one (C.3)",
                            o.vserial_num, o.device_id.oui, o.device_id.product_class, o.device_id.serial_number
                        ),
                    ));
                }
                // C.3 VSerialNum: a replayed voucher must not undo a later one.
                let current = self.store.record(&o.option_ident).map(|r| r.voucher_sn.as_str());
                if self.store.was_applied(&o.vserial_num, &o.option_ident) && current != Some(o.vserial_num.as_str()) {
                    warn!(voucher = i, vserial = %o.vserial_num, option = %o.option_ident, "superseded voucher replayed");
                    return Err(Fault::new(
                        9001,
                        format!("voucher {} for Option {} was already applied and has been superseded (C.3 VSerialNum)", o.vserial_num, o.option_ident),
                    ));
                }
            }
        }
        for v in &verified {
            for a in self.store.apply(v, &device, now, true).map_err(|e| Fault::new(e.fault_code(), e.to_string()))? {
                match a {
                    Applied::Set(ident) => info!(option = %ident, signer = ?v.signer, "voucher applied"),
                    Applied::Replayed(ident) => info!(option = %ident, "voucher already in effect: nothing to do"),
                }
            }
        }
        Ok(())
    }

    /// A.4.1.4 / Table 48.
    fn get_options(&self, name: &str, now: OffsetDateTime) -> Vec<OptionStruct> {
        // An Option no voucher ever named is unknown to this CPE (it has no
        // static catalogue of Options): the list is then empty.
        self.store
            .get_options(name, now)
            .into_iter()
            .map(|o| OptionStruct {
                option_name: o.option_name,
                voucher_sn: o.voucher_sn,
                state: (o.state & 0b11) as u8,
                mode: o.mode.min(2) as u8,
                // Table 48 StartDate is mandatory; a disabled Option that
                // never started has the unknown time (0001-01-01, as Table 33 uses).
                start_date: o.start_date.map(vouchers::option::format_date).unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
                expiration_date: o.expiration_date.map(vouchers::option::format_date),
                is_transferable: o.is_transferable,
            })
            .collect()
    }
}

fn provisioning_code(store: &Store) -> String {
    store.values.get(PROVISIONING_CODE).cloned().unwrap_or_default()
}

/// Table 61: at most 1024 characters, whole names only.
fn enabled_options_value(list: &str) -> String {
    if list.len() <= ENABLED_OPTIONS_MAX {
        return list.to_string();
    }
    let mut out = String::new();
    for name in list.split(',') {
        let extra = if out.is_empty() { name.len() } else { name.len() + 1 };
        if out.len() + extra > ENABLED_OPTIONS_MAX {
            break;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(name);
    }
    out
}

/// The SetVouchers fault for a verification that failed: the anchors or
/// the helper (9002 Internal error), or a voucher ([`voucher_fault`]).
pub fn verify_fault(e: &VerifyError) -> Fault {
    match e {
        VerifyError::Anchors(e) => Fault::new(9002, format!("voucher trust anchors: {e}")),
        VerifyError::Voucher { index, error } => voucher_fault(*index, error),
        VerifyError::Helper(e) => Fault::new(9002, e.to_string()),
    }
}

/// The SetVouchers fault for a voucher that did not verify (see the module
/// documentation for the choice of codes).
pub fn voucher_fault(index: usize, e: &VoucherError) -> Fault {
    let code = match e {
        VoucherError::Xml(_) | VoucherError::Doctype | VoucherError::Structure(_) | VoucherError::Field { .. } | VoucherError::Base64(_) => 9003,
        VoucherError::DuplicateId(_)
        | VoucherError::UnsignedOption
        | VoucherError::ExternalReference(_)
        | VoucherError::Algorithm(_)
        | VoucherError::NoTrustedKey
        | VoucherError::Untrusted(_)
        | VoucherError::BadSignature(_) => 9001,
        VoucherError::Xmlsec(_) | VoucherError::Key(_) => 9002,
        VoucherError::Limit(_) | VoucherError::TooManyReferences { .. } | VoucherError::TooManyCertificates { .. } => 9004,
    };
    Fault::new(code, format!("voucher {index}: {e}"))
}

impl Extension for Options {
    fn methods(&self) -> &'static [&'static str] {
        // Table 9 footnote 5: both or neither.
        &["SetVouchers", "GetOptions"]
    }

    fn request(&mut self, _schema: &Schema, store: &mut Store, req: &Body, fx: &mut Effects) -> Option<Body> {
        let now = OffsetDateTime::now_utc();
        // Keep EnabledOptions current within the session too (e.g. the ACS
        // just set ProvisioningCode and now reads EnabledOptions).
        match self.refresh(store, now) {
            Ok(true) => {
                fx.side_changes.push(ENABLED_OPTIONS.into());
                fx.dirty = true;
            }
            Ok(false) => {}
            Err(e) => warn!("{e}"),
        }
        match req {
            Body::SetVouchers { vouchers } => Some(match self.set_vouchers(store, vouchers, now) {
                Ok(()) => {
                    match self.refresh(store, now) {
                        Ok(true) => {
                            // A consequence of the ACS's request: persisted, never notified.
                            fx.side_changes.push(ENABLED_OPTIONS.into());
                            fx.dirty = true;
                        }
                        Ok(false) => {}
                        Err(e) => return Some(Body::Fault(Fault::new(9002, e.to_string()))),
                    }
                    Body::SetVouchersResponse
                }
                Err(f) => Body::Fault(f),
            }),
            Body::GetOptions { option_name } => Some(Body::GetOptionsResponse { options: self.get_options(option_name, now) }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enabled_options_is_capped_at_whole_names() {
        let long: Vec<String> = (0..200).map(|i| format!("Option{i:04}")).collect();
        let v = enabled_options_value(&long.join(","));
        assert!(v.len() <= 1024);
        assert!(v.split(',').all(|n| n.len() == 10), "no cut name");
        assert_eq!(enabled_options_value("A,B"), "A,B");
    }

    #[test]
    fn fault_codes_per_cause() {
        assert_eq!(voucher_fault(0, &VoucherError::BadSignature("x".into())).code, 9001);
        assert_eq!(voucher_fault(0, &VoucherError::Untrusted("x".into())).code, 9001);
        assert_eq!(voucher_fault(0, &VoucherError::Xml("x".into())).code, 9003);
        assert_eq!(voucher_fault(0, &VoucherError::Xmlsec("x".into())).code, 9002);
    }

    #[test]
    fn limits_and_missing_anchors() {
        let d = tempfile::tempdir().unwrap();
        let schema = Schema::igd();
        let mut store = Store::new(schema);
        let mut o = Options::open(d.path(), "00D09E", "Gateway", "S1", vec![]).unwrap();
        let now = OffsetDateTime::now_utc();
        assert_eq!(o.set_vouchers(&mut store, &vec![vec![b'<']; MAX_VOUCHERS + 1], now).unwrap_err().code, 9004);
        assert_eq!(o.set_vouchers(&mut store, &[vec![0; MAX_VOUCHER_BYTES + 1]], now).unwrap_err().code, 9004);
        assert_eq!(o.set_vouchers(&mut store, &[b"<x/>".to_vec()], now).unwrap_err().code, 9001, "no anchors");
        let epoch = OffsetDateTime::UNIX_EPOCH;
        assert_eq!(o.set_vouchers(&mut store, &[b"<x/>".to_vec()], epoch).unwrap_err().code, 9002, "no network time");
        // An empty VoucherList is a no-op.
        o.set_vouchers(&mut store, &[], now).unwrap();
        assert!(o.get_options("", now).is_empty());
    }

    fn keys(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/keys").join(name)
    }

    /// A voucher for device 00D09E-Gateway-S1 enabling `ident`, signed by `signer`.
    fn voucher(signer: &str, ident: &str) -> Vec<u8> {
        let option = vouchers::VoucherOption {
            vserial_num: "41".into(),
            device_id: vouchers::DeviceId { manufacturer: "cpekit".into(), oui: "00D09E".into(), product_class: "Gateway".into(), serial_number: "S1".into() },
            option_ident: ident.into(),
            option_desc: String::new(),
            start_date: None,
            duration: None,
            mode: vouchers::Mode::EnableWithoutExpiration,
            transferable: false,
        };
        let read = |f: String| std::fs::read(keys(&f)).unwrap();
        xmldsig::sign(&[option], &read(format!("{signer}.key")), &read(format!("{signer}.pem")), &[], vouchers::SignAlgorithm::RsaSha1).unwrap().into_bytes()
    }

    /// The real libxmlsec1 verifier, in process (the binary's helper runs the same).
    #[test]
    fn set_vouchers_with_the_in_process_verifier() {
        let d = tempfile::tempdir().unwrap();
        let mut store = Store::new(Schema::igd());
        let mut o = Options::open(d.path(), "00D09E", "Gateway", "S1", vec![keys("ca.pem")]).unwrap().with_verifier(Box::new(xmldsig::InProcess));
        let now = OffsetDateTime::now_utc();
        let rogue = o.set_vouchers(&mut store, &[voucher("rogue", "VoIP")], now).unwrap_err();
        assert_eq!(rogue.code, 9001, "{rogue:?}");
        assert!(o.get_options("VoIP", now).is_empty(), "nothing applied");
        o.set_vouchers(&mut store, &[voucher("signer", "VoIP")], now).unwrap();
        let got = o.get_options("VoIP", now);
        assert_eq!((got.len(), got[0].state & 1, got[0].voucher_sn), (1, 1, 41), "{got:?}");
    }

    /// A helper that cannot run is an internal error, and nothing is applied.
    #[test]
    fn a_missing_helper_is_9002() {
        let d = tempfile::tempdir().unwrap();
        let mut store = Store::new(Schema::igd());
        let helper = vouchers::Helper::at(d.path().join("no-such-helper"));
        let mut o = Options::open(d.path(), "00D09E", "Gateway", "S1", vec![keys("ca.pem")]).unwrap().with_verifier(Box::new(helper));
        let now = OffsetDateTime::now_utc();
        let f = o.set_vouchers(&mut store, &[voucher("signer", "VoIP")], now).unwrap_err();
        assert_eq!(f.code, 9002, "{f:?}");
        assert!(f.string.contains("no-such-helper"), "{f:?}");
        assert!(o.get_options("", now).is_empty());
    }
}
