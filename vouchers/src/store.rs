//! What a CPE does with verified vouchers (C.2, A.4.1.3–A.4.1.4): a
//! persisted store of Options with the spec's rules, and the GetOptions
//! (Table 48) and `DeviceInfo.EnabledOptions` views. Time is always an
//! argument, so the rules are testable with any clock.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::{Date, Duration, Month, OffsetDateTime};

use crate::dsig::VerifiedVoucher;
use crate::option::{DurationUnits, Mode, VoucherOption};

/// The device's identity and current ProvisioningCode (Appendix B).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub oui: String,
    pub product_class: String,
    pub serial_number: String,
    pub provisioning_code: String,
}

/// Why a voucher was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// C.3: "If not, it MUST ignore the Voucher and respond with a Request
    /// Denied fault" (9001).
    #[error("Request Denied (9001): {0}")]
    RequestDenied(String),
    /// C.2: application "should only occur once the CPE has established
    /// network time".
    #[error("network time is not established yet; the voucher is kept for later")]
    NoNetworkTime,
    #[error("option store {path}: {error}")]
    Io { path: String, error: String },
}

impl foundation::Kind for ApplyError {
    fn kind(&self) -> foundation::ErrorKind {
        match self {
            ApplyError::RequestDenied(_) => foundation::ErrorKind::Rejected,
            ApplyError::NoNetworkTime | ApplyError::Io { .. } => foundation::ErrorKind::Runtime,
        }
    }
}

impl ApplyError {
    /// The CWMP fault code for SetVouchers.
    pub fn fault_code(&self) -> u32 {
        match self {
            ApplyError::RequestDenied(_) => 9001,
            _ => 9002,
        }
    }
}

/// One Option's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptionRecord {
    pub option_ident: String,
    pub voucher_sn: String,
    pub mode: ModeRepr,
    #[serde(with = "time::serde::rfc3339::option")]
    pub start_date: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expiration_date: Option<OffsetDateTime>,
    pub transferable: bool,
    /// ProvisioningCode when the voucher was applied.
    pub provisioning_code: String,
    /// Table 48 bit 1, Option-specific; kept for the agent to set.
    pub setup: bool,
    /// Set when the CPE itself disabled the Option (expiry, new provider).
    pub disabled_reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModeRepr {
    Disable,
    EnableWithExpiration,
    EnableWithoutExpiration,
}

impl From<Mode> for ModeRepr {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Disable => ModeRepr::Disable,
            Mode::EnableWithExpiration => ModeRepr::EnableWithExpiration,
            Mode::EnableWithoutExpiration => ModeRepr::EnableWithoutExpiration,
        }
    }
}

/// Table 48 — OptionStruct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OptionStruct {
    pub option_name: String,
    /// Table 48 types this unsignedInt; VSerialNum is string(64) (Table
    /// 62): the numeric value when it is one, else 0, and the text beside.
    pub voucher_sn: u32,
    pub voucher_serial: String,
    /// Bit 0 enabled, bit 1 setup.
    pub state: u32,
    /// 0 disabled, 1 enabled with expiration, 2 enabled without.
    pub mode: u32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub start_date: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expiration_date: Option<OffsetDateTime>,
    pub is_transferable: bool,
}

/// What applying a voucher did, per Option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Set(String),
    /// C.3 VSerialNum is unique per voucher: one already applied is not re-applied.
    Replayed(String),
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Persisted {
    options: BTreeMap<String, OptionRecord>,
    applied_serials: BTreeSet<String>,
}

/// The persisted Option store.
#[derive(Debug, Clone, Default)]
pub struct OptionStore {
    path: Option<PathBuf>,
    state: Persisted,
}

/// `start + n calendar months`, clamping to the month's last day
/// (Jan 31 + 1 month = Feb 28, or Feb 29 in a leap year).
pub fn add_months(start: OffsetDateTime, n: u32) -> OffsetDateTime {
    let total = start.month() as i64 - 1 + n as i64;
    let year = start.year() as i64 + total.div_euclid(12);
    let month = Month::try_from((total.rem_euclid(12) + 1) as u8).expect("1..=12");
    let year = year.clamp(-9999, 9999) as i32;
    let last = month.length(year);
    let date = Date::from_calendar_date(year, month, start.day().min(last)).expect("clamped day is valid");
    start.replace_date(date)
}

/// C.2 / Table 62: expiry of an EnableWithExpiration Option, relative to
/// StartDate if given, else to the application time.
pub fn expiration(opt: &VoucherOption, applied_at: OffsetDateTime) -> Option<OffsetDateTime> {
    if opt.mode != Mode::EnableWithExpiration {
        return None;
    }
    let (n, units) = opt.duration?;
    let base = opt.start_date.unwrap_or(applied_at);
    Some(match units {
        DurationUnits::Days => base.saturating_add(Duration::days(n as i64)),
        DurationUnits::Months => add_months(base, n),
    })
}

impl OptionStore {
    /// An in-memory store (tests, simulators).
    pub fn in_memory() -> Self {
        OptionStore::default()
    }

    /// Open (or start) the store persisted at `path`.
    pub fn open(path: &Path) -> Result<Self, ApplyError> {
        let io = |e: String| ApplyError::Io { path: path.display().to_string(), error: e };
        let state = match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| io(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Persisted::default(),
            Err(e) => return Err(io(e.to_string())),
        };
        Ok(OptionStore { path: Some(path.to_path_buf()), state })
    }

    /// Write atomically and durably ([`foundation::durable::write_atomic`]).
    fn save(&self) -> Result<(), ApplyError> {
        let Some(path) = &self.path else { return Ok(()) };
        let io = |e: std::io::Error| ApplyError::Io { path: path.display().to_string(), error: e.to_string() };
        let bytes = serde_json::to_vec_pretty(&self.state).expect("serializable");
        foundation::durable::write_atomic(path, &bytes).map_err(io)
    }

    /// Apply a verified voucher: all Options or none.
    pub fn apply(&mut self, voucher: &VerifiedVoucher, device: &Device, now: OffsetDateTime, network_time: bool) -> Result<Vec<Applied>, ApplyError> {
        if !network_time {
            return Err(ApplyError::NoNetworkTime);
        }
        for o in &voucher.options {
            if !o.device_id.matches(&device.oui, &device.product_class, &device.serial_number) {
                return Err(ApplyError::RequestDenied(format!(
                    "voucher {} is for device {}-{}-{}, not this one",
                    o.vserial_num, o.device_id.oui, o.device_id.product_class, o.device_id.serial_number
                )));
            }
        }
        let mut out = Vec::new();
        for o in &voucher.options {
            let key = format!("{}\u{0}{}", o.vserial_num, o.option_ident);
            if self.state.applied_serials.contains(&key) {
                out.push(Applied::Replayed(o.option_ident.clone()));
                continue;
            }
            let rec = OptionRecord {
                option_ident: o.option_ident.clone(),
                voucher_sn: o.vserial_num.clone(),
                mode: o.mode.into(),
                start_date: Some(o.start_date.filter(|s| *s > now).unwrap_or(now)).filter(|_| o.mode != Mode::Disable),
                expiration_date: expiration(o, now),
                transferable: o.transferable,
                provisioning_code: device.provisioning_code.clone(),
                setup: self.state.options.get(&o.option_ident).is_some_and(|r| r.setup),
                disabled_reason: None,
            };
            self.state.options.insert(o.option_ident.clone(), rec);
            self.state.applied_serials.insert(key);
            out.push(Applied::Set(o.option_ident.clone()));
        }
        self.refresh(now, &device.provisioning_code)?;
        self.save()?;
        Ok(out)
    }

    /// Apply the time and provider rules: expired Options are disabled
    /// (C.2 "the CPE MUST disable the Option itself"); a changed
    /// ProvisioningCode disables non-transferable Options. Returns whether
    /// anything changed (and persists it).
    pub fn refresh(&mut self, now: OffsetDateTime, provisioning_code: &str) -> Result<bool, ApplyError> {
        let mut changed = false;
        for r in self.state.options.values_mut() {
            if r.disabled_reason.is_some() || r.mode == ModeRepr::Disable {
                continue;
            }
            if r.expiration_date.is_some_and(|e| now >= e) {
                r.disabled_reason = Some("expired".into());
                changed = true;
            } else if !r.transferable && r.provisioning_code != provisioning_code {
                r.disabled_reason = Some("ProvisioningCode changed (non-transferable)".into());
                changed = true;
            }
        }
        if changed {
            self.save()?;
        }
        Ok(changed)
    }

    fn enabled(r: &OptionRecord, now: OffsetDateTime) -> bool {
        r.mode != ModeRepr::Disable && r.disabled_reason.is_none() && r.start_date.is_none_or(|s| s <= now) && r.expiration_date.is_none_or(|e| now < e)
    }

    /// Table 48 view of one Option (`name`) or all (`""`).
    pub fn get_options(&self, name: &str, now: OffsetDateTime) -> Vec<OptionStruct> {
        self.state
            .options
            .values()
            .filter(|r| name.is_empty() || r.option_ident == name)
            .map(|r| {
                let enabled = Self::enabled(r, now);
                OptionStruct {
                    option_name: r.option_ident.clone(),
                    voucher_sn: r.voucher_sn.parse().unwrap_or(0),
                    voucher_serial: r.voucher_sn.clone(),
                    state: u32::from(enabled) | (u32::from(r.setup) << 1),
                    mode: if enabled || r.disabled_reason.is_none() {
                        match r.mode {
                            ModeRepr::Disable => 0,
                            ModeRepr::EnableWithExpiration => 1,
                            ModeRepr::EnableWithoutExpiration => 2,
                        }
                    } else {
                        0
                    },
                    start_date: r.start_date,
                    expiration_date: r.expiration_date,
                    is_transferable: r.transferable,
                }
            })
            .collect()
    }

    /// `InternetGatewayDevice.DeviceInfo.EnabledOptions`: comma-separated
    /// names of the Options enabled now.
    pub fn enabled_options(&self, now: OffsetDateTime) -> String {
        self.state.options.values().filter(|r| Self::enabled(r, now)).map(|r| r.option_ident.as_str()).collect::<Vec<_>>().join(",")
    }

    /// Whether Option `option_ident` of the voucher `vserial_num` was
    /// applied before (C.3: VSerialNum is unique per voucher issued).
    pub fn was_applied(&self, vserial_num: &str, option_ident: &str) -> bool {
        self.state.applied_serials.contains(&format!("{vserial_num}\u{0}{option_ident}"))
    }

    pub fn record(&self, name: &str) -> Option<&OptionRecord> {
        self.state.options.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::option::{parse_date, DeviceId};
    use time::macros::datetime;

    fn dev(code: &str) -> Device {
        Device { oui: "00D09E".into(), product_class: "Gateway".into(), serial_number: "123".into(), provisioning_code: code.into() }
    }

    fn opt(ident: &str, sn: &str, mode: Mode, dur: Option<(u32, DurationUnits)>, start: Option<&str>, transferable: bool) -> VoucherOption {
        VoucherOption {
            vserial_num: sn.into(),
            device_id: DeviceId { manufacturer: "x".into(), oui: "00D09E".into(), product_class: "Gateway".into(), serial_number: "123".into() },
            option_ident: ident.into(),
            option_desc: String::new(),
            start_date: start.map(|s| parse_date(s).unwrap()),
            duration: dur,
            mode,
            transferable,
        }
    }

    fn voucher(opts: Vec<VoucherOption>) -> VerifiedVoucher {
        VerifiedVoucher { options: opts, signer: None, signature_method: String::new() }
    }

    #[test]
    fn months_across_month_ends_and_leap_years() {
        assert_eq!(add_months(datetime!(2024-01-31 10:00 UTC), 1), datetime!(2024-02-29 10:00 UTC));
        assert_eq!(add_months(datetime!(2023-01-31 10:00 UTC), 1), datetime!(2023-02-28 10:00 UTC));
        assert_eq!(add_months(datetime!(2024-02-29 00:00 UTC), 12), datetime!(2025-02-28 00:00 UTC));
        assert_eq!(add_months(datetime!(2024-02-29 00:00 UTC), 48), datetime!(2028-02-29 00:00 UTC));
        assert_eq!(add_months(datetime!(2024-11-30 00:00 UTC), 3), datetime!(2025-02-28 00:00 UTC));
        assert_eq!(add_months(datetime!(2024-08-31 00:00 UTC), 1), datetime!(2024-09-30 00:00 UTC));
        assert_eq!(add_months(datetime!(2024-05-15 00:00 UTC), 0), datetime!(2024-05-15 00:00 UTC));
    }

    #[test]
    fn expiry_from_start_date_or_application_time() {
        let mut s = OptionStore::in_memory();
        let now = datetime!(2026-01-10 00:00 UTC);
        let v = voucher(vec![
            opt("A", "1", Mode::EnableWithExpiration, Some((10, DurationUnits::Days)), None, false),
            opt("B", "1", Mode::EnableWithExpiration, Some((1, DurationUnits::Months)), Some("2026-01-31T00:00:00Z"), false),
            opt("C", "1", Mode::EnableWithoutExpiration, None, None, false),
        ]);
        s.apply(&v, &dev("P1"), now, true).unwrap();
        assert_eq!(s.record("A").unwrap().expiration_date, Some(datetime!(2026-01-20 00:00 UTC)));
        assert_eq!(s.record("B").unwrap().expiration_date, Some(datetime!(2026-02-28 00:00 UTC)));
        // B starts in the future: not enabled yet.
        assert_eq!(s.enabled_options(now), "A,C");
        assert_eq!(s.enabled_options(datetime!(2026-02-01 00:00 UTC)), "B,C");
        // Expiry disables (and says so in GetOptions).
        s.refresh(datetime!(2026-03-01 00:00 UTC), "P1").unwrap();
        let all = s.get_options("", datetime!(2026-03-01 00:00 UTC));
        let a = all.iter().find(|o| o.option_name == "A").unwrap();
        assert_eq!((a.state, a.mode), (0, 0));
        let c = &s.get_options("C", now)[0];
        assert_eq!((c.state, c.mode, c.voucher_sn), (1, 2, 1));
    }

    #[test]
    fn provisioning_code_change_disables_non_transferable_only() {
        let mut s = OptionStore::in_memory();
        let now = datetime!(2026-01-10 00:00 UTC);
        let v = voucher(vec![
            opt("Keep", "7", Mode::EnableWithoutExpiration, None, None, true),
            opt("Lose", "7", Mode::EnableWithoutExpiration, None, None, false),
        ]);
        s.apply(&v, &dev("ISP-A"), now, true).unwrap();
        assert!(s.refresh(now, "ISP-B").unwrap());
        assert_eq!(s.enabled_options(now), "Keep");
    }

    #[test]
    fn device_mismatch_network_time_and_replay() {
        let mut s = OptionStore::in_memory();
        let now = datetime!(2026-01-10 00:00 UTC);
        let v = voucher(vec![opt("A", "42", Mode::EnableWithoutExpiration, None, None, false)]);
        let mut other = dev("P");
        other.serial_number = "999".into();
        let e = s.apply(&v, &other, now, true).unwrap_err();
        assert_eq!(e.fault_code(), 9001);
        assert_eq!(s.apply(&v, &dev("P"), now, false).unwrap_err(), ApplyError::NoNetworkTime);
        assert_eq!(s.apply(&v, &dev("P"), now, true).unwrap(), vec![Applied::Set("A".into())]);
        assert!(s.was_applied("42", "A"));
        assert!(!s.was_applied("42", "B") && !s.was_applied("43", "A"));
        // A later Disable voucher works; replaying the first one does not re-enable.
        let off = voucher(vec![opt("A", "43", Mode::Disable, None, None, false)]);
        s.apply(&off, &dev("P"), now, true).unwrap();
        assert_eq!(s.apply(&v, &dev("P"), now, true).unwrap(), vec![Applied::Replayed("A".into())]);
        assert_eq!(s.enabled_options(now), "");
    }

    #[test]
    fn persisted_atomically_and_reloaded() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("options.json");
        let now = datetime!(2026-01-10 00:00 UTC);
        let mut s = OptionStore::open(&p).unwrap();
        s.apply(&voucher(vec![opt("A", "1", Mode::EnableWithoutExpiration, None, None, false)]), &dev("P"), now, true).unwrap();
        let again = OptionStore::open(&p).unwrap();
        assert_eq!(again.enabled_options(now), "A");
        assert!(!t.path().join("options.tmp").exists());
    }
}
