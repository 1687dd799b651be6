//! TR-069 Issue 1 Annex C *signed vouchers*: the Option model (Tables 62,
//! 63), the option store, the narrow verification profile a CPE needs, and
//! the client of the `cpekit-xmldsig` helper process that makes and checks
//! the enveloping XML Signatures with libxmlsec1.
//!
//! This crate links no XML-DSig library: the libxmlsec1 code is the
//! `cpekit-xmldsig` package's (library and helper binary), so that a
//! process that never sees a voucher never maps libxmlsec1, libxml2 or ICU
//! ([`helper`]).

pub mod dsig;
pub mod error;
pub mod helper;
pub mod limits;
pub mod option;
pub mod store;

pub use dsig::{decode_wire, inspect, SignAlgorithm, VerifiedVoucher};
pub use error::VoucherError;
pub use helper::{Helper, HelperError, VerifyError, VerifyVouchers};
pub use limits::MAX_VOUCHER_BYTES;
pub use option::{DeviceId, DurationUnits, Mode, VoucherOption};
pub use store::{ApplyError, Device, OptionStore, OptionStruct};
