//! The 2Wire/Pace `.pkgstream` dialect of the Annex E signed package, read
//! leniently for inspection (2wire-pkgstream-notes, "the notes" below).
//!
//! Annex E is the standard; the files that reached 2Wire/Pace 5268AC
//! gateways (releases 9.8 to 11.14) are a vendor dialect of it. What is
//! publicly known about them comes from one source, read for the notes,
//! and every fact carries its [`Confidence`] label: `[DOC]` (the source's
//! prose), `[CODE]` (its parser, tested against real files), `[DECOMP]`
//! (decompiled gateway code, as read), `[DERIVED]` (arithmetic done for
//! the notes). No real file is public; cpekit's tests build their own.
//!
//! What differs from Annex E, and where it is read:
//!
//! * [`wrapper`] — a file may be wrapped whole in bzip2 (`BZh`, notes §2),
//!   decompressed as a stream, never whole in memory.
//! * [`prefix`] — the header's command list length word is not a length
//!   (in the one published header it is 16 × the real one, notes §3): the
//!   list's end is found by walking records to the type-0 terminator and
//!   the DER SignedData after it (§4, §5); both are reported.
//! * [`catalogue`] — record types 26, 27, 32, 37–47 and 1000 beside
//!   Annex E's, named as the notes name them, each with its confidence (§6).
//! * [`record`] — their values: FILE (types 1, 3, 47; short and extended
//!   forms, hash types 1 SHA-1, 2 MD5, 3 SHA-256, §6.1), SCRIPT (type 38,
//!   §6.2), text values, the install-method tag, labelled hex.
//! * [`sparse`] — type 47's data encoding: 32 KiB blocks, each a
//!   length-prefixed run of data and a hole (§11).
//! * [`payload`] — one streaming pass over the payload region: per-record
//!   digests (what each covers, and when that is uncertain), the bytes for
//!   `extract`, trailing PEM certificates of older drops (§7, §8).
//!
//! The signature block is the same detached PKCS #7 as Annex E's (§7) and
//! is checked by the same code ([`crate::signature`]).
//!
//! The reader is for looking, not installing: the installer and the agent
//! stay strict and refuse a dialect package ([`crate::Prefix::read_conformant`]).
//! Every size and count is bounded before anything is allocated
//! ([`limits`]).

pub mod catalogue;
pub mod digest;
pub mod payload;
pub mod prefix;
pub mod record;
pub mod script;
pub mod sparse;
pub mod wrapper;

pub use catalogue::{FileMode, Layout, RecordType};
pub use digest::{Digest, DigestAlgorithm};
pub use payload::{Coverage, ItemCheck, ItemKind, PassMode, PayloadItem, PayloadPass, PayloadReport, TrailingCertificate, Write};
pub use prefix::{DialectPrefix, Evidence, LengthWord};
pub use record::{DialectFile, Record, RecordBody};
pub use script::Script;
pub use wrapper::{Source, Wrapper};

use std::fmt;

/// Which format a package was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// TR-069 Issue 1 Annex E, read strictly.
    AnnexE,
    /// The 2Wire/Pace `.pkgstream` dialect, read leniently.
    TwoWire,
}

impl Dialect {
    /// The name used on the command line (`--dialect`) and in JSON.
    pub fn id(self) -> &'static str {
        match self {
            Dialect::AnnexE => "annex-e",
            Dialect::TwoWire => "2wire",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::AnnexE => "Annex E",
            Dialect::TwoWire => "2Wire",
        })
    }
}

/// How sure the notes are of a fact: the label of its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Confidence {
    /// A statement in the source repository's prose docs.
    Doc,
    /// What the source's parser does; tested against real files.
    Code,
    /// Decompiled gateway code, as read for the notes.
    Decomp,
    /// Arithmetic or reading done for the notes, not stated by the source.
    Derived,
}

impl Confidence {
    /// The notes' label, `DOC`, `CODE`, `DECOMP` or `DERIVED`.
    pub fn label(self) -> &'static str {
        match self {
            Confidence::Doc => "DOC",
            Confidence::Code => "CODE",
            Confidence::Decomp => "DECOMP",
            Confidence::Derived => "DERIVED",
        }
    }

    /// `[DOC, CODE]`.
    pub fn labels(all: &[Confidence]) -> String {
        format!("[{}]", all.iter().map(|c| c.label()).collect::<Vec<_>>().join(", "))
    }
}

/// Bounds on what the dialect reader accepts, checked before allocating.
pub mod limits {
    /// One record's value: `pkgd` caps a single TLV at 0x20000 on its
    /// stream path (notes §5).
    pub const MAX_RECORD_LEN: u32 = 0x20000;
    /// The signature block: `pkgd` caps it at 0x40000 (notes §5).
    pub const MAX_SIGNATURE_LEN: u64 = 0x40000;
    /// The whole command list (cpekit's bound; the published one is 5,395 bytes).
    pub const MAX_COMMAND_LIST_LEN: u64 = 1 << 20;
    /// Records in the list (cpekit's bound).
    pub const MAX_RECORDS: usize = 16_384;
    /// Trailing bytes after the payload region examined for PEM
    /// certificates; more are counted, not read.
    pub const MAX_TRAILER_EXAMINED: u64 = 1 << 20;
    /// Trailing certificates reported.
    pub const MAX_TRAILING_CERTIFICATES: usize = 64;
}

#[cfg(test)]
mod tests;
