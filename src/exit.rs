//! How a failure becomes an exit status, decided in one place.
//!
//! Every failure has a [`foundation::ErrorKind`]: library errors say theirs
//! through [`foundation::Kind`], and the binary's own failures (a bad command
//! line, a malformed manifest, a voucher for another device) are a [`Failure`]
//! carrying one. [`kind_of`] asks the error chain, [`status`] maps the kind to
//! the exit code, and [`DOCUMENTED`] is the EXIT STATUS section of every man
//! page (`man.rs`). clap's own command-line errors go through [`status`] too
//! (`main.rs`).

use std::error::Error as StdError;

use foundation::{ErrorKind, Kind};

/// The command did what was asked (for `verify`: the package is trusted and
/// intact).
pub const SUCCESS: u8 = 0;

/// The exit status of a failure of this kind.
pub const fn status(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::VerifyFailed => 1,
        ErrorKind::Usage => 2,
        ErrorKind::Malformed => 3,
        ErrorKind::Runtime => 4,
        ErrorKind::Rejected => 5,
    }
}

/// The EXIT STATUS entries of the man pages (roff), in order: success, then
/// one per [`ErrorKind`] with its code from [`status`].
pub const DOCUMENTED: &[(Option<ErrorKind>, &str)] = &[
    (None, "Success. For \\fBverify\\fR: a signer validated and chains to a trust anchor, and every payload hash matches."),
    (
        Some(ErrorKind::VerifyFailed),
        "Verification failed: no trusted signer (unsigned, untrusted or tampered), a payload hash mismatch, or a truncated or overlong payload.",
    ),
    (
        Some(ErrorKind::Usage),
        "Usage error: bad flags or arguments, or flags that do not go together.",
    ),
    (
        Some(ErrorKind::Malformed),
        "Malformed input: the package, manifest, key or certificate could not be parsed; the message names the byte offset and command. For \\fBverify\\fR and \\fBbuild\\fR also a path no CPE accepts (the message names the command and the rule).",
    ),
    (
        Some(ErrorKind::Runtime),
        "I/O or other runtime error (file not found, permission denied, ...); for \\fBinstall\\fR also a timeout or a failure while applying that was rolled back.",
    ),
    (
        Some(ErrorKind::Rejected),
        "\\fBinstall\\fR: the package was rejected before any change (precondition not met, unsafe path, Reboot not last, interrupted install needing \\fB--recover\\fR).",
    ),
];

/// The code of a [`DOCUMENTED`] entry.
pub const fn documented_status(kind: Option<ErrorKind>) -> u8 {
    match kind {
        None => SUCCESS,
        Some(k) => status(k),
    }
}

/// A failure the binary itself finds, with its kind.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
}

impl Kind for Failure {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// The command line is wrong in a way clap cannot see (exit status 2, like
/// clap's own errors).
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Failure { kind: ErrorKind::Usage, message: message.into() }.into()
}

/// Input the binary reads itself is not well-formed.
pub fn malformed(message: impl Into<String>) -> anyhow::Error {
    Failure { kind: ErrorKind::Malformed, message: message.into() }.into()
}

/// Verified, but not acceptable here (a voucher for another device, expired).
pub fn verify_failed(message: impl Into<String>) -> anyhow::Error {
    Failure { kind: ErrorKind::VerifyFailed, message: message.into() }.into()
}

/// The kind of an error chain: the outermost cause that knows its kind
/// decides. An error no one classifies is a runtime error.
pub fn kind_of(e: &anyhow::Error) -> ErrorKind {
    e.chain().find_map(cause_kind).unwrap_or(ErrorKind::Runtime)
}

/// The one place that asks each error type the binary meets its kind.
fn cause_kind(cause: &(dyn StdError + 'static)) -> Option<ErrorKind> {
    fn ask<E: Kind + StdError + 'static>(cause: &(dyn StdError + 'static)) -> Option<ErrorKind> {
        cause.downcast_ref::<E>().map(Kind::kind)
    }
    ask::<Failure>(cause)
        .or_else(|| ask::<crate::manifest::ManifestError>(cause))
        .or_else(|| ask::<vouchers::VoucherError>(cause))
        .or_else(|| ask::<agent::config::ConfigError>(cause))
        .or_else(|| ask::<agent::runner::AgentError>(cause))
        .or_else(|| ask::<agent::simulate::SimulateError>(cause))
        .or_else(|| ask::<agent::cpe_requests::RequestDownloadError>(cause))
        .or_else(|| ask::<pkgfmt::Error>(cause))
        .or_else(|| ask::<pkgfmt::ParseError>(cause))
        .or_else(|| ask::<pkgfmt::signature::SignatureError>(cause))
        .or_else(|| ask::<install::InstallError>(cause))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn every_kind_is_documented_once_with_a_distinct_code() {
        let all = [ErrorKind::Usage, ErrorKind::VerifyFailed, ErrorKind::Malformed, ErrorKind::Rejected, ErrorKind::Runtime];
        for k in all {
            assert_eq!(DOCUMENTED.iter().filter(|(d, _)| *d == Some(k)).count(), 1, "{k:?}");
        }
        let codes: Vec<u8> = DOCUMENTED.iter().map(|(k, _)| documented_status(*k)).collect();
        assert_eq!(codes, (0..DOCUMENTED.len() as u8).collect::<Vec<_>>(), "in order, no gaps, no duplicates");
        // clap's own usage errors exit with the same status as ours.
        let clap_usage = crate::cli::Cli::try_parse_from(["cpekit", "--no-such-flag"]).unwrap_err();
        assert_eq!(clap_usage.exit_code(), status(ErrorKind::Usage) as i32);
    }

    #[test]
    fn help_texts_name_the_same_codes() {
        use crate::cli::{AGENT_HELP, BUILD_HELP, EXIT_STATUS, VOUCHER_OPTIONS_HELP};
        let s = |k| status(k);
        for (text, needle) in [
            (EXIT_STATUS, format!("{} verification failed", s(ErrorKind::VerifyFailed))),
            (EXIT_STATUS, format!("{} usage error", s(ErrorKind::Usage))),
            (EXIT_STATUS, format!("{} malformed input", s(ErrorKind::Malformed))),
            (EXIT_STATUS, format!("{} I/O or other runtime error", s(ErrorKind::Runtime))),
            (EXIT_STATUS, format!("{} package rejected", s(ErrorKind::Rejected))),
            (BUILD_HELP, format!("{} usage error; {} bad manifest", s(ErrorKind::Usage), s(ErrorKind::Malformed))),
            (BUILD_HELP, format!("{} I/O error", s(ErrorKind::Runtime))),
            (VOUCHER_OPTIONS_HELP, format!("{} verification failed, {} usage error", s(ErrorKind::VerifyFailed), s(ErrorKind::Usage))),
            (VOUCHER_OPTIONS_HELP, format!("{} malformed input, {} I/O error", s(ErrorKind::Malformed), s(ErrorKind::Runtime))),
            (AGENT_HELP, format!("{} usage error", s(ErrorKind::Usage))),
            (AGENT_HELP, format!("{} malformed config, {} runtime error", s(ErrorKind::Malformed), s(ErrorKind::Runtime))),
        ] {
            assert!(text.replace('\n', " ").contains(&needle), "{needle:?} not in {text:?}");
        }
    }

    #[test]
    fn the_outermost_classified_cause_decides() {
        use anyhow::Context;
        let inner: anyhow::Error = pkgfmt::Error::HashMismatch { index: 0, path: "/x".into(), expected: "a".into(), actual: "b".into() }.into();
        assert_eq!(kind_of(&inner), ErrorKind::VerifyFailed);
        // Context strings do not classify; the library error below them does.
        let e = Err::<(), _>(inner).context("command #0").context("installing x.pkg").unwrap_err();
        assert_eq!(kind_of(&e), ErrorKind::VerifyFailed);
        // A binary failure wrapping nothing: its own kind.
        assert_eq!(kind_of(&usage("--key given 2 times")), ErrorKind::Usage);
        // An installer error decides over the package error it carries.
        let i: anyhow::Error = install::InstallError::Unsafe(install::UnsafePath::Symlink("/x".into())).into();
        assert_eq!(kind_of(&i), ErrorKind::Rejected);
        let cfg: anyhow::Error = agent::config::ConfigError::Invalid("x".into()).into();
        assert_eq!(kind_of(&cfg), ErrorKind::Malformed);
        assert_eq!(kind_of(&vouchers::VoucherError::BadSignature("x".into()).into()), ErrorKind::VerifyFailed);
        assert_eq!(kind_of(&anyhow::anyhow!("something else")), ErrorKind::Runtime);
    }
}
