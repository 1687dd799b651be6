//! What kind of failure an error is.
//!
//! Every library error type implements [`Kind`]; the `cpekit` binary maps an
//! [`ErrorKind`] to its exit status in one place (documented in the man pages
//! under EXIT STATUS).

/// The kinds of failure the command-line tools distinguish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The command line itself is wrong (an option combination, a missing
    /// argument that clap could not express).
    Usage,
    /// A signature, certificate chain, trust decision or content hash did
    /// not verify.
    VerifyFailed,
    /// The input is not well-formed (package, voucher, manifest, config file).
    Malformed,
    /// The input is well-formed and trusted but refused by policy (a
    /// precondition, an unsafe path, an interrupted earlier install).
    Rejected,
    /// The environment failed: I/O, a timeout, a library error.
    Runtime,
}

/// Implemented by every library error type: which [`ErrorKind`] it is.
pub trait Kind {
    fn kind(&self) -> ErrorKind;
}
