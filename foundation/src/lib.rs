//! The small mechanisms every cpekit crate uses, each written once.
//!
//! This crate sits at the bottom of the workspace: `pkgfmt`, `vouchers`,
//! `install`, `agent` and the `cpekit` binary may depend on it; it depends on
//! none of them.
//!
//! * [`ErrorKind`] — what kind of failure an error is, so that the binary
//!   decides exit codes in one place without downcasting through every
//!   library's error type.

pub mod error_kind;

pub use error_kind::{ErrorKind, Kind};
