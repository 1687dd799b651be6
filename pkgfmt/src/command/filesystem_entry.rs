//! cpekit Filesystem Entry — a vendor-specific command (Table 68: "1000-9999
//! Vendor-specific commands") for what Table 69 cannot carry: symbolic links
//! and directories (empty ones, or ones whose mode and owner matter).
//!
//! Type 2069. E.4 gives no way to tell one vendor's command 2069 from
//! another's, so the Value starts with the 16-octet identifier
//! `cpekit/fsentry/1` (ASCII; the last octet is the layout's version). A
//! Value of type 2069 that does not start with it is another vendor's
//! command; a recipient that does not know this command ignores it, as
//! E.4 requires ("it MUST ignore the command and continue parsing").
//!
//! Value layout, big-endian, offsets from the start of the Value (the
//! style of Tables 69–71):
//!
//! | offset | octets | field |
//! |---|---|---|
//! | 0 | 16 | Identifier `63 70 65 6B 69 74 2F 66 73 65 6E 74 72 79 2F 31` |
//! | 16 | 4 | Flags: bit 0 Unsafe (as Tables 69–71); other bits 0 |
//! | 20 | 4 | Entry Type: 1 = directory, 2 = symbolic link |
//! | 24 | 4 | Path Offset |
//! | 28 | 4 | Path Length |
//! | 32 | 4 | Target Offset |
//! | 36 | 4 | Target Length (0 for a directory) |
//! | 40 | 48 | mode, uid, gid, three timestamps ([`metadata`](super::metadata); 0xFFFFFFFF = leave unchanged) |
//! | 88 | | Path (UTF-8, UNIX form), then Target (the link's contents, verbatim) |
//!
//! Semantics, in list order like every file command (E.4.1): a directory
//! entry creates the directory (and its parents) if absent and applies the
//! recorded attributes; a symbolic link entry replaces whatever non-directory
//! is at the path, like Extract File. The target is stored as given; a
//! recipient refuses a link whose target would resolve outside its install
//! root, and never follows a link the package created.

use binrw::binrw;

use super::metadata::{AttributeFields, FileMetadata, S_IFDIR, S_IFLNK};
use super::value::{utf8, VendorLayout, UNSAFE_FLAG};
use crate::codec::{encode, Fixed, Reader, ValueError};
use crate::command_type::VendorCommandType;
use crate::error::ParseErrorKind;

/// Entry Type 1.
pub const ENTRY_DIRECTORY: u32 = 1;
/// Entry Type 2.
pub const ENTRY_SYMLINK: u32 = 2;

/// The fixed fields (88 octets).
#[binrw]
#[brw(big)]
struct EntryFields {
    identifier: [u8; 16],
    flags: u32,
    #[br(try_map = |v: u32| if matches!(v, ENTRY_DIRECTORY | ENTRY_SYMLINK) { Ok(v) } else { Err(ParseErrorKind::UnknownEntryType(v)) })]
    entry_type: u32,
    path_offset: u32,
    path_length: u32,
    target_offset: u32,
    target_length: u32,
    attributes: AttributeFields,
}

impl Fixed for EntryFields {
    const LEN: usize = 40 + AttributeFields::LEN;
    const WHAT: &'static str = "Filesystem Entry fixed fields";
}

/// What the entry creates.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntryKind {
    Directory,
    /// A symbolic link and its target, verbatim.
    Symlink {
        target: String,
    },
}

/// A directory or symbolic link to create, with its attributes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FilesystemEntry {
    /// Bit 0: Unsafe Flag (as Tables 69–71).
    pub flags: u32,
    pub path: String,
    pub kind: EntryKind,
    /// For a link only the owner applies (a link's own mode is not used on POSIX).
    pub metadata: FileMetadata,
}

impl FilesystemEntry {
    pub fn is_unsafe(&self) -> bool {
        self.flags & UNSAFE_FLAG != 0
    }

    /// The symbolic link's target, if this is one.
    pub fn target(&self) -> Option<&str> {
        match &self.kind {
            EntryKind::Symlink { target } => Some(target),
            EntryKind::Directory => None,
        }
    }

    fn file_type(&self) -> u32 {
        match self.kind {
            EntryKind::Directory => S_IFDIR,
            EntryKind::Symlink { .. } => S_IFLNK,
        }
    }
}

impl VendorLayout for FilesystemEntry {
    fn decode(t: VendorCommandType, value: &[u8]) -> Result<Self, ValueError> {
        let mut r = Reader::new(value);
        let f: EntryFields = r.read()?;
        debug_assert_eq!(&f.identifier[..], t.identifier(), "recognised by its identifier");
        let file_type = if f.entry_type == ENTRY_DIRECTORY { S_IFDIR } else { S_IFLNK };
        let metadata = FileMetadata::from_fields(f.attributes, file_type, 40)?;
        let path = r.field("Path", f.path_offset, f.path_length)?;
        let path = utf8(path, "Path").map_err(|(o, k)| (f.path_offset as usize + o, k))?;
        let target = r.field("Target", f.target_offset, f.target_length)?;
        let kind = match f.entry_type {
            ENTRY_DIRECTORY if target.is_empty() => EntryKind::Directory,
            ENTRY_DIRECTORY => return Err((36, ParseErrorKind::DirectoryTarget { length: f.target_length })),
            _ if target.is_empty() => return Err((36, ParseErrorKind::EmptyLinkTarget)),
            _ => EntryKind::Symlink { target: utf8(target, "Target").map_err(|(o, k)| (f.target_offset as usize + o, k))? },
        };
        Ok(FilesystemEntry { flags: f.flags, path, kind, metadata })
    }

    fn encode(&self) -> Vec<u8> {
        let identifier: [u8; 16] = VendorCommandType::FilesystemEntry.identifier().try_into().expect("a 16-octet identifier");
        let fixed = EntryFields::LEN as u32;
        let path_length = self.path.len() as u32;
        let target = self.target().unwrap_or_default();
        let mut out = encode(&EntryFields {
            identifier,
            flags: self.flags,
            entry_type: match self.kind {
                EntryKind::Directory => ENTRY_DIRECTORY,
                EntryKind::Symlink { .. } => ENTRY_SYMLINK,
            },
            path_offset: fixed,
            path_length,
            target_offset: fixed + path_length,
            target_length: target.len() as u32,
            attributes: self.metadata.to_fields(self.file_type()),
        });
        out.extend_from_slice(self.path.as_bytes());
        out.extend_from_slice(target.as_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;

    fn link() -> FilesystemEntry {
        FilesystemEntry {
            flags: 0,
            path: "/lib/libc.so".into(),
            kind: EntryKind::Symlink { target: "../usr/lib/libc.so.6".into() },
            metadata: FileMetadata { uid: Some(1000), gid: Some(1000), ..FileMetadata::default() },
        }
    }

    fn word(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn layout_byte_by_byte() {
        let e = link();
        let b = e.encode();
        assert_eq!(&b[..16], b"cpekit/fsentry/1");
        assert_eq!(word(&b, 16), 0);
        assert_eq!(word(&b, 20), ENTRY_SYMLINK);
        assert_eq!((word(&b, 24), word(&b, 28)), (88, 12));
        assert_eq!((word(&b, 32), word(&b, 36)), (100, 20));
        assert_eq!(word(&b, 40), 0xFFFF_FFFF, "a link's mode is not recorded");
        assert_eq!((word(&b, 44), word(&b, 48)), (1000, 1000));
        assert_eq!(&b[88..100], b"/lib/libc.so");
        assert_eq!(&b[100..], b"../usr/lib/libc.so.6");
        assert_eq!(FilesystemEntry::decode(VendorCommandType::FilesystemEntry, &b).unwrap(), e);

        let d = FilesystemEntry {
            flags: 1,
            path: "/var/empty".into(),
            kind: EntryKind::Directory,
            metadata: FileMetadata { mode: Some(0o1777), ..Default::default() },
        };
        let b = d.encode();
        assert_eq!(word(&b, 20), ENTRY_DIRECTORY);
        assert_eq!(word(&b, 36), 0);
        assert_eq!(word(&b, 40), 0o041777);
        assert_eq!(b.len(), 88 + 10);
        assert_eq!(FilesystemEntry::decode(VendorCommandType::FilesystemEntry, &b).unwrap(), d);
    }

    /// Through the command list: type 2069 with the identifier is this
    /// command; the same number without it is some other vendor's.
    #[test]
    fn recognised_only_by_number_and_identifier() {
        let c = Command::FilesystemEntry(link());
        let tlv = c.encode();
        assert_eq!(&tlv[..4], &2069u32.to_be_bytes());
        assert_eq!(c.name(), "cpekit Filesystem Entry");
        assert_eq!(Command::decode(2069, &tlv[8..]).unwrap(), c);
        let foreign = b"ACME\x00\x00\x00\x01 something else entirely".to_vec();
        assert_eq!(Command::decode(2069, &foreign).unwrap(), Command::Vendor { kind: 2069, value: foreign.clone() });
        assert_eq!(Command::decode(2070, &tlv[8..]).unwrap(), Command::Vendor { kind: 2070, value: tlv[8..].to_vec() });
    }

    #[test]
    fn malformed_entries_are_errors() {
        let good = link().encode();
        let decode = |b: &[u8]| FilesystemEntry::decode(VendorCommandType::FilesystemEntry, b);
        let mut b = good.clone();
        b[20..24].copy_from_slice(&3u32.to_be_bytes());
        assert_eq!(decode(&b).unwrap_err(), (20, ParseErrorKind::UnknownEntryType(3)));
        // A directory with a target; a link without one.
        let mut b = good.clone();
        b[20..24].copy_from_slice(&ENTRY_DIRECTORY.to_be_bytes());
        assert!(matches!(decode(&b).unwrap_err().1, ParseErrorKind::DirectoryTarget { length: 20 }));
        let mut b = good.clone();
        b[36..40].copy_from_slice(&0u32.to_be_bytes());
        assert_eq!(decode(&b[..100]).unwrap_err().1, ParseErrorKind::EmptyLinkTarget);
        // A regular file's mode in a link entry.
        let mut b = good.clone();
        b[40..44].copy_from_slice(&0o100644u32.to_be_bytes());
        assert!(matches!(decode(&b).unwrap_err(), (40, ParseErrorKind::BadMode { .. })));
        // Target out of bounds, into the fixed fields, not UTF-8.
        let mut b = good.clone();
        b[36..40].copy_from_slice(&21u32.to_be_bytes());
        assert!(matches!(decode(&b).unwrap_err().1, ParseErrorKind::FieldOutOfBounds { field: "Target", .. }));
        let mut b = good.clone();
        b[32..36].copy_from_slice(&8u32.to_be_bytes());
        assert!(matches!(decode(&b).unwrap_err().1, ParseErrorKind::FieldOverlapsFixed { field: "Target", .. }));
        let mut b = good.clone();
        b[101] = 0xFF;
        assert_eq!(decode(&b).unwrap_err(), (101, ParseErrorKind::NotUtf8 { field: "Target" }));
        for n in 16..good.len() {
            assert!(Command::decode(2069, &good[..n]).is_err(), "cut at {n}");
        }
    }
}
