//! cpekit library: the device-side engines behind the `cpekit` binary.
//!
//! * [`install`] — applies a verified Annex E signed package to a target
//!   filesystem, transactionally (E.4, E.5).

pub mod agent;
pub mod install;
