//! Codec, builder and PKCS#7 signer/verifier for the TR-069 Issue 1 Annex E
//! *signed package* format (`2WIRE_SP`).
//!
//! Figure 8 (E.2): a package is a fixed 24-octet [`header`], a TLV
//! [`command`] list, one PKCS#7 [`signature`] block, then the payload files.
//!
//! * Parsing is strict and bounded: every length and offset is checked
//!   against the bytes present before it is used, and nothing is allocated
//!   by an untrusted length (the command list is `< 2^16` octets by E.3;
//!   the signature block is bounded by the caller's prefix limit, 150 KB by
//!   default per E.5).
//! * [`package::Prefix`] holds everything the signatures cover; payload
//!   hashes are checked by the sans-IO [`payload::PayloadVerifier`] in one
//!   streaming pass, so memory does not grow with package size.
//!
//! Modules depend one way, each only on those listed before it:
//!
//! 1. [`signature`] — E.5, the PKCS #7 block (its own error type).
//! 2. [`command_type`] — Table 68, declared once.
//! 3. [`error`] — what was wrong and where.
//! 4. `codec` — the one Reader for the fixed big-endian layouts.
//! 5. [`header`] — E.3, Table 66.
//! 6. [`command`] — E.4, Tables 67 and 69–77; the extended file record and
//!    cpekit's vendor-specific Filesystem Entry.
//! 7. [`command_list`] — E.4, the list as a whole.
//! 8. [`path`] — E.2.1, package paths as a CPE takes them (the installer's
//!    rules and limits, also applied by `verify` and `build`).
//! 9. [`package`] — Figure 8: header, command list, signature block.
//! 10. [`payload`] — E.4.3/E.5: streaming payload hashes.
//! 11. [`builder`] — writing packages.
//! 12. [`dialect`] — the 2Wire `.pkgstream` dialect, read leniently for
//!     inspection (the installer stays strict: [`Prefix::read_conformant`]).

pub mod builder;
mod codec;
pub mod command;
pub mod command_list;
pub mod command_type;
pub mod dialect;
pub mod error;
pub mod header;
pub mod package;
pub mod path;
pub mod payload;
pub mod signature;

pub use builder::{Builder, PayloadSource};
pub use command::{
    Command, CommandType, EntryKind, FileCommand, FileMetadata, FilesystemEntry, MoveCommand, RemoveCommand, RequiredAttributes, Role, VendorCommandType,
    VersionNumber,
};
pub use command_list::CommandList;
pub use dialect::Dialect;
pub use error::{Error, ParseError, ParseErrorKind};
pub use header::Header;
pub use package::{Package, Prefix, DEFAULT_PREFIX_LIMIT};
pub use path::PackagePath;
pub use payload::{FileDigest, PayloadVerifier};
