//! TR-069 Issue 1 Annex C *signed vouchers*: the Option model (Tables 62,
//! 63), enveloping XML Signatures made and checked with libxmlsec1, and
//! the narrow verification profile a CPE needs.
//!
//! Bindings: the `xmlsec` crate (0.3) with `libxml`. Its safe API has no
//! keys manager, trust anchors or reference inspection, so [`dsig`] uses
//! `xmlsec::bindings` (plus one missing declaration) directly; C14N and
//! signature processing are libxmlsec1's, not ours.

pub mod dsig;
pub mod error;
pub mod limits;
pub mod option;
pub mod store;

pub use dsig::{decode_wire, inspect, sign, sign_with, verify, SignAlgorithm, SigningKey, VerifiedVoucher, Verifier};
pub use error::VoucherError;
pub use limits::MAX_VOUCHER_BYTES;
pub use option::{DeviceId, DurationUnits, Mode, VoucherOption};
pub use store::{ApplyError, Device, OptionStore, OptionStruct};
