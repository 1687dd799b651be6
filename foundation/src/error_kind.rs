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

/// An error and its sources, joined with ": " (what `anyhow` prints for
/// `{:#}`): for errors that leave as text, such as a TransferComplete
/// FaultString, a report line or the binary's `error:` line. A source whose
/// text its error's message already ends with is not repeated (some
/// messages name their cause, as log lines showing only the outer error
/// need them to).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        let text = c.to_string();
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        next = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("writing the journal")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chain_joins_every_source() {
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(chain(&e), "writing the journal: disk full");
        assert_eq!(chain(&std::io::Error::other("alone")), "alone");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("queue {path}: {source}")]
    struct Named {
        path: &'static str,
        source: Outer,
    }

    #[test]
    fn chain_does_not_repeat_a_cause_the_message_names() {
        let e = Named { path: "t.json", source: Outer(std::io::Error::other("disk full")) };
        assert_eq!(e.to_string(), "queue t.json: writing the journal");
        assert_eq!(chain(&e), "queue t.json: writing the journal: disk full");
    }
}
