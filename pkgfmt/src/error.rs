//! Typed errors. Parse errors carry the absolute byte offset in the package
//! and, inside the command list, the zero-based index of the command.
//!
//! Every error type here implements [`foundation::Kind`], so that the
//! `cpekit` binary decides exit codes without knowing these types.

use std::fmt;

use foundation::{ErrorKind, Kind};

use crate::command_type::CommandType;
use crate::signature::SignatureError;

/// What was wrong with the bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("bad preamble {found}: expected \"2WIRE_SP\" (32 57 49 52 45 5F 53 50)")]
    BadPreamble { found: String },
    #[error("unsupported major version {0}: only major version 1 is understood (E.3)")]
    UnsupportedMajor(u32),
    #[error("command list length {0} is not less than 2^16 (E.3)")]
    CommandListTooLong(u32),
    #[error("truncated: {what} needs {needed} bytes but only {available} are present")]
    Truncated { what: &'static str, needed: u64, available: u64 },
    #[error("command length {length} overruns the command list ({remaining} bytes remain)")]
    CommandOverrun { length: u32, remaining: u32 },
    #[error("{command} must have Length {expected}, found {found}")]
    BadLength { command: &'static str, expected: &'static str, found: u32 },
    #[error("{field} (offset {offset}, length {length}) lies outside the {value_len}-byte Value field")]
    FieldOutOfBounds { field: &'static str, offset: u32, length: u32, value_len: u32 },
    #[error("{field} overlaps the fixed fields of the command (offset {offset} < {fixed})")]
    FieldOverlapsFixed { field: &'static str, offset: u32, fixed: u32 },
    #[error("unsupported hash type {0}: only 1 (SHA-1) is defined (Table 69)")]
    UnsupportedHashType(u32),
    #[error("SHA-1 hash length must be 20, found {0} (Table 69)")]
    BadHashLength(u32),
    #[error("{field}: the 64-bit value {long} of the extended file record differs from the Table 69 value {short}")]
    ExtendedMismatch { field: &'static str, short: u32, long: u64 },
    #[error("mode 0o{mode:o} is not a permission mode of file type 0o{expected:o} (nor 0xFFFFFFFF, leave unchanged)")]
    BadMode { mode: u32, expected: u32 },
    #[error("timestamp {seconds} s {nanoseconds} ns is out of range (nanoseconds below 10^9, or 0xFFFFFFFF for none)")]
    BadTimestamp { seconds: u64, nanoseconds: u32 },
    #[error("unknown Filesystem Entry type {0} (1 = directory, 2 = symbolic link)")]
    UnknownEntryType(u32),
    #[error("a directory entry has a {length}-byte link target")]
    DirectoryTarget { length: u32 },
    #[error("a symbolic link entry has an empty target")]
    EmptyLinkTarget,
    #[error("{field} is not valid UTF-8")]
    NotUtf8 { field: &'static str },
    #[error("payload file (offset {file_offset}, length {file_length}) lies outside the {payload_length}-byte payload")]
    PayloadOutOfBounds { file_offset: u32, file_length: u32, payload_length: u32 },
    #[error("standard role {role} carries {extra} bytes of arguments; only vendor roles (0xFF OUI) may (Table 75)")]
    RoleArguments { role: u32, extra: usize },
    #[error("signature block: {0}")]
    Signature(SignatureError),
    #[error("header, command list and signature block exceed the {limit}-byte prefix limit (E.5 allows assuming 150 KB)")]
    PrefixTooLarge { limit: usize },
    #[error("trailing bytes: package is {actual} bytes but header, command list, signatures and payload account for {expected}")]
    TrailingBytes { expected: u64, actual: u64 },
    // The 2Wire dialect (`crate::dialect`, 2wire-pkgstream-notes).
    #[error("unknown hash algorithm {0}: the 2Wire dialect defines 1 (SHA-1), 2 (MD5) and 3 (SHA-256) (notes §6.1)")]
    UnknownDigestAlgorithm(u32),
    #[error("{algorithm} digest length must be {expected}, found {found} (notes §6.1)")]
    DigestLength { algorithm: &'static str, expected: u32, found: u32 },
    #[error("SCRIPT header length {header_length} must be at least 52 and at most the {value_len}-byte value (notes §6.2)")]
    ScriptHeaderLength { header_length: u32, value_len: u32 },
    #[error("record length {length} exceeds the {limit}-byte limit for one record")]
    RecordTooLong { length: u32, limit: u32 },
    #[error("the command list runs past {limit} bytes without a type-0 terminator or a SignedData")]
    CommandListUnbounded { limit: u64 },
    #[error("more than {limit} records in the command list")]
    TooManyRecords { limit: usize },
    #[error("the signature block is {length} bytes, more than the {limit}-byte limit")]
    SignatureTooLong { length: u64, limit: u64 },
    #[error("not a 2Wire package: {0}")]
    NotDialect(String),
    /// A fixed layout failed to decode for a reason none of the above
    /// names (the decoder's own message).
    #[error("{what}: {detail}")]
    Layout { what: &'static str, detail: String },
}

/// A strict-parsing failure with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Absolute byte offset in the package file where the problem was found.
    pub offset: u64,
    /// Zero-based index of the command being parsed, if inside the command list.
    pub command_index: Option<usize>,
    /// Numeric Table 68 type of that command, if known.
    pub command_type: Option<u32>,
    pub kind: ParseErrorKind,
}

impl ParseError {
    pub(crate) fn at(offset: u64, kind: ParseErrorKind) -> Self {
        ParseError { offset, command_index: None, command_type: None, kind }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte offset {} (0x{:x})", self.offset, self.offset)?;
        if let Some(i) = self.command_index {
            write!(f, ", command #{i}")?;
            if let Some(t) = self.command_type {
                write!(f, " (type {t}, {})", CommandType::name_of(t))?;
            }
        }
        write!(f, ": {}", self.kind)
    }
}

// The kind is part of Display, so it is not repeated as a source.
impl std::error::Error for ParseError {}

/// Any failure while reading, verifying or writing a package.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("malformed package {0}")]
    Parse(ParseError),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("payload hash mismatch for command #{index} ({path}): expected SHA-1 {expected}, got {actual}")]
    HashMismatch { index: usize, path: String, expected: String, actual: String },
    #[error("payload truncated: header declares {expected} payload bytes but only {actual} were read")]
    PayloadTruncated { expected: u64, actual: u64 },
    #[error("payload longer than the {expected} bytes declared in the header")]
    PayloadTooLong { expected: u64 },
    #[error("package is not trusted: {0}")]
    Untrusted(String),
    /// The outer bzip2 wrapper of a 2Wire package does not decompress.
    #[error("malformed package: {0}")]
    Wrapper(String),
    /// A strict reader (the installer, the agent) met a package of a vendor
    /// dialect: it is refused, with the strict parser's reason as the source.
    #[error("not an Annex E package: {dialect} dialect detected; install refuses non-conformant packages")]
    NotAnnexE {
        dialect: crate::dialect::Dialect,
        #[source]
        reason: ParseError,
    },
    #[error("{0}")]
    Build(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<ParseError> for Error {
    fn from(e: ParseError) -> Self {
        Error::Parse(e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Bytes that are not a well-formed package.
impl Kind for ParseErrorKind {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Malformed
    }
}

/// Bytes that are not a well-formed package.
impl Kind for ParseError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Malformed
    }
}

impl Kind for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Parse(_) | Error::Signature(_) | Error::Build(_) | Error::NotAnnexE { .. } | Error::Wrapper(_) => ErrorKind::Malformed,
            Error::HashMismatch { .. } | Error::PayloadTruncated { .. } | Error::PayloadTooLong { .. } | Error::Untrusted(_) => ErrorKind::VerifyFailed,
            Error::Io(_) => ErrorKind::Runtime,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same mapping `cpekit`'s exit codes have used (EXIT STATUS in the man pages).
    #[test]
    fn kinds() {
        let parse = ParseError::at(0, ParseErrorKind::UnsupportedMajor(2));
        assert_eq!(parse.kind(), ErrorKind::Malformed);
        assert_eq!(parse.kind.kind(), ErrorKind::Malformed);
        assert_eq!(SignatureError::NotDetached.kind(), ErrorKind::Malformed);
        let malformed = [Error::Parse(parse), Error::Signature(SignatureError::MessageDigestMismatch), Error::Build("too big".into())];
        for e in malformed {
            assert_eq!(e.kind(), ErrorKind::Malformed, "{e}");
        }
        let verify = [
            Error::HashMismatch { index: 1, path: "/a".into(), expected: "00".into(), actual: "11".into() },
            Error::PayloadTruncated { expected: 2, actual: 1 },
            Error::PayloadTooLong { expected: 1 },
            Error::Untrusted("no signer".into()),
        ];
        for e in verify {
            assert_eq!(e.kind(), ErrorKind::VerifyFailed, "{e}");
        }
        assert_eq!(Error::Io(std::io::Error::other("disk")).kind(), ErrorKind::Runtime);
    }
}
