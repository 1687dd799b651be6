//! The small mechanisms every cpekit crate uses, each written once.
//!
//! This crate sits at the bottom of the workspace: `pkgfmt`, `vouchers`,
//! `install`, `agent` and the `cpekit` binary may depend on it; it depends on
//! none of them.
//!
//! * [`ErrorKind`] — what kind of failure an error is, so that the binary
//!   decides exit codes in one place without downcasting through every
//!   library's error type.
//! * [`durable`] — replace a file's content atomically and durably (temp
//!   file, fsync, rename, fsync of the directory).
//! * [`interrupt`] — temporary files that SIGINT/SIGTERM remove before
//!   the process ends.
//! * [`subprocess`] — run a command with a deadline in its own process
//!   group, killed with everything it started, output bounded.
//! * [`random`] — the one randomness source, with one failure policy
//!   (an error the caller handles), hex secrets and unbiased integers.
//! * [`backoff`] — the A.5.3 retry wait, its jitter spread over its whole
//!   window.
//! * [`clock`] — xsd:dateTime timestamps.
//! * [`XmlLimits`] — depth, element, attribute and size limits on untrusted
//!   XML (and no DOCTYPE), checked by one streaming scan before any parser
//!   builds a tree.

pub mod backoff;
pub mod clock;
pub mod durable;
pub mod error_kind;
pub mod interrupt;
pub mod random;
pub mod subprocess;
pub mod xml_limits;

pub use error_kind::{ErrorKind, Kind};
pub use xml_limits::{XmlLimitError, XmlLimits, XmlShape};
