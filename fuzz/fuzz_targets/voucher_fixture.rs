//! The voucher fixture of the voucher_verify target, shared with the seed
//! generator (fuzz/examples/seeds.rs): the test signer and its CA, the
//! verification time and the two Options signed at start-up. A voucher
//! that verifies in modes 0, 1 and 3 must carry exactly these Options, so
//! seeds are signed from them.
#![allow(dead_code)]

use time::macros::datetime;
use time::OffsetDateTime;
use vouchers::{DeviceId, DurationUnits, Mode, VoucherOption};

pub const KEY: &[u8] = include_bytes!("../../testdata/keys/signer.key");
pub const CERT: &[u8] = include_bytes!("../../testdata/keys/signer.pem");
pub const CA: &[u8] = include_bytes!("../../testdata/keys/ca.pem");
/// Inside every test certificate's validity (2026-11-25 .. 2046-11-20).
pub const AT: OffsetDateTime = datetime!(2027-01-01 00:00 UTC);

/// The Options signed at start-up.
pub fn options() -> Vec<VoucherOption> {
    let device_id = DeviceId { manufacturer: "cpekit".into(), oui: "00D09E".into(), product_class: "Gateway".into(), serial_number: "CPE0001".into() };
    vec![
        VoucherOption {
            vserial_num: "1001".into(),
            device_id: device_id.clone(),
            option_ident: "VoIP".into(),
            option_desc: "Voice over IP <service> & more".into(),
            start_date: Some(datetime!(2026-01-01 00:00 UTC)),
            duration: Some((12, DurationUnits::Months)),
            mode: Mode::EnableWithExpiration,
            transferable: false,
        },
        VoucherOption {
            vserial_num: "1002".into(),
            device_id,
            option_ident: "ParentalControl".into(),
            option_desc: String::new(),
            start_date: None,
            duration: None,
            mode: Mode::EnableWithoutExpiration,
            transferable: true,
        },
    ]
}
