//! The small mechanisms every cpekit crate uses, each written once.
//!
//! This crate sits at the bottom of the workspace: `pkgfmt`, `vouchers`,
//! `install`, `agent` and the `cpekit` binary may depend on it; it depends on
//! none of them.
//!
//! * [`ErrorKind`] — what kind of failure an error is, so that the binary
//!   decides exit codes in one place without downcasting through every
//!   library's error type.
//! * [`XmlLimits`] — depth, element, attribute and size limits on untrusted
//!   XML (and no DOCTYPE), checked by one streaming scan before any parser
//!   builds a tree.

pub mod error_kind;
pub mod xml_limits;

pub use error_kind::{ErrorKind, Kind};
pub use xml_limits::{XmlLimitError, XmlLimits, XmlShape};
