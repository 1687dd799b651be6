//! E.4.3, Table 69 — Value format for the extract and add commands.
//!
//! > Hash Type: "1 = SHA-1. When set to this value, the Hash field contains
//! > the 20-octet SHA-1 hash of the specified file. The Hash Length value in
//! > this case MUST be set to 20 (decimal). All other values are reserved."
//! > Path Offset, Hash Offset: "The offset in octets from the beginning of
//! > the Value field". File Offset: "The offset in octets from the beginning
//! > of the payload portion of the package to the beginning of the specified
//! > file."
//!
//! # The extended file record
//!
//! Table 69 carries no mode, owner or times. Real 2Wire gateways read an
//! *extended* form of the same record (2wire-pkgstream-notes §6.1, from the
//! decompiled `demarshall_2sp_file`), and cpekit writes it when a file's
//! [`FileMetadata`] is recorded. The first 32 octets are exactly Table 69,
//! with the Path and Hash after the extension, so a reader that knows only
//! Table 69 finds the path, hash, offset and length where it looks:
//!
//! | offset | octets | field |
//! |---|---|---|
//! | 0 | 32 | Table 69: Flags … File Length (offsets point past octet 100) |
//! | 32 | 4 | Header Length: 100 |
//! | 36 | 8 | File Offset, 64-bit (equal to the 32-bit one) |
//! | 44 | 8 | File Length, 64-bit (equal to the 32-bit one) |
//! | 52 | 48 | mode, uid, gid, three timestamps ([`metadata`](super::metadata)) |
//! | 100 | | Path, then Hash |
//!
//! A record is read as extended exactly when the gateway would: the Value
//! is at least 100 octets, the Header Length is at least 100 and at most
//! the Value's length, and both the Path and the Hash start at or after
//! octet 100. Otherwise it is a plain Table 69 record. cpekit refuses an
//! extended record whose 64-bit offset or length differs from the 32-bit
//! one, since a Table 69 reader would then take different bytes.

use binrw::binrw;

use super::metadata::{AttributeFields, FileMetadata, S_IFREG};
use super::value::{utf8, ValueLayout, UNSAFE_FLAG};
use crate::codec::{encode, Fixed, Reader, ValueError};
use crate::command_type::CommandType;
use crate::error::ParseErrorKind;

/// Table 69 Hash Type 1: SHA-1, "The Hash Length value in this case MUST be
/// set to 20". All other values are reserved.
pub const SHA1_HASH_TYPE: u32 = 1;
const SHA1_LEN: u32 = 20;

/// The eight fixed 32-bit fields of Table 69 (32 octets), as on the wire.
/// What they must hold is the reader's rule ([`FileCommand`]'s: Table 69;
/// the 2Wire dialect's: its three hash types), checked by [`FileRecord::read`]'s caller.
#[binrw]
#[brw(big)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileFields {
    pub flags: u32,
    pub path_offset: u32,
    pub path_length: u32,
    pub hash_type: u32,
    pub hash_offset: u32,
    pub hash_length: u32,
    pub file_offset: u32,
    pub file_length: u32,
}

impl Fixed for FileFields {
    const LEN: usize = 32;
    const WHAT: &'static str = "Extract/Add command fixed fields";
}

/// Header Length of the extended file record, and where its Path may start.
pub const EXTENDED_HEADER_LEN: u32 = 100;

/// What follows the Table 69 fields in the extended record (68 octets).
#[binrw]
#[brw(big)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct ExtendedFields {
    pub header_length: u32,
    pub file_offset: u64,
    pub file_length: u64,
    pub attributes: AttributeFields,
}

impl Fixed for ExtendedFields {
    const LEN: usize = 4 + 8 + 8 + AttributeFields::LEN;
    const WHAT: &'static str = "extended file record";
}

/// A file record as the gateway reads it (notes §6.1): the Table 69
/// fields, then the extension exactly when [`is_extended`] says so. The
/// one codec of the record: [`FileCommand`] applies Table 69's rules to
/// it, the 2Wire dialect reader (`crate::dialect`) the dialect's.
pub(crate) struct FileRecord {
    pub fields: FileFields,
    pub extended: Option<ExtendedFields>,
}

impl FileRecord {
    /// Read the fixed fields, run `check` on them before anything else is
    /// read (a reader's rules for Hash Type and Hash Length), then the
    /// extension if the gateway would use it. The returned [`Reader`] is
    /// past the fixed fields, ready to take the Path and Hash with
    /// [`Reader::field`].
    pub(crate) fn read(value: &[u8], check: impl FnOnce(&FileFields) -> Result<(), ValueError>) -> Result<(FileRecord, Reader<'_>), ValueError> {
        let mut r = Reader::new(value);
        let fields: FileFields = r.read()?;
        check(&fields)?;
        let extended = if is_extended(&fields, value) { Some(r.read::<ExtendedFields>()?) } else { None };
        Ok((FileRecord { fields, extended }, r))
    }
}

/// Table 69's rule for the Hash fields: Hash Type 1 (SHA-1), Hash Length 20.
fn table_69_hash(f: &FileFields) -> Result<(), ValueError> {
    if f.hash_type != SHA1_HASH_TYPE {
        return Err((12, ParseErrorKind::UnsupportedHashType(f.hash_type)));
    }
    if f.hash_length != SHA1_LEN {
        return Err((20, ParseErrorKind::BadHashLength(f.hash_length)));
    }
    Ok(())
}

/// Extract File, Extract Versioned File, Add File, Add Versioned File.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileCommand {
    /// Bit 0: Unsafe Flag; other bits reserved (kept for round trips).
    pub flags: u32,
    /// Path of the file, UNIX format (E.2.1).
    pub path: String,
    /// SHA-1 of the payload file (Hash Type 1, the only one defined).
    pub sha1: [u8; 20],
    /// Offset of the file from the beginning of the payload.
    pub file_offset: u32,
    /// Length of the file in the payload.
    pub file_length: u32,
    /// Mode, owner and times: `Some` is written as the extended record
    /// (even when every attribute is "leave unchanged"), `None` as plain
    /// Table 69.
    pub metadata: Option<FileMetadata>,
}

impl FileCommand {
    pub fn is_unsafe(&self) -> bool {
        self.flags & UNSAFE_FLAG != 0
    }

    /// File's byte range within the payload, in checked 64-bit arithmetic.
    pub fn payload_range(&self) -> std::ops::Range<u64> {
        let start = self.file_offset as u64;
        start..start + self.file_length as u64
    }
}

impl ValueLayout for FileCommand {
    fn decode(_: CommandType, value: &[u8]) -> Result<Self, ValueError> {
        let (FileRecord { fields: f, extended }, r) = FileRecord::read(value, table_69_hash)?;
        let metadata = match extended {
            Some(x) => {
                if x.file_offset != f.file_offset as u64 {
                    return Err((36, ParseErrorKind::ExtendedMismatch { field: "File Offset", short: f.file_offset, long: x.file_offset }));
                }
                if x.file_length != f.file_length as u64 {
                    return Err((44, ParseErrorKind::ExtendedMismatch { field: "File Length", short: f.file_length, long: x.file_length }));
                }
                Some(FileMetadata::from_fields(x.attributes, S_IFREG, 52)?)
            }
            None => None,
        };
        let path = r.field("Path", f.path_offset, f.path_length)?;
        let hash = r.field("Hash", f.hash_offset, f.hash_length)?;
        Ok(FileCommand {
            flags: f.flags,
            path: utf8(path, "Path").map_err(|(o, k)| (f.path_offset as usize + o, k))?,
            sha1: hash.try_into().map_err(|_| (20, ParseErrorKind::BadHashLength(f.hash_length)))?,
            file_offset: f.file_offset,
            file_length: f.file_length,
            metadata,
        })
    }

    /// Canonical layout: fixed fields (Table 69, then the extension if
    /// metadata is recorded), Path, then Hash.
    fn encode(&self) -> Vec<u8> {
        let path_length = self.path.len() as u32;
        let fixed = if self.metadata.is_some() { EXTENDED_HEADER_LEN } else { FileFields::LEN as u32 };
        let mut out = encode(&FileFields {
            flags: self.flags,
            path_offset: fixed,
            path_length,
            hash_type: SHA1_HASH_TYPE,
            hash_offset: fixed + path_length,
            hash_length: SHA1_LEN,
            file_offset: self.file_offset,
            file_length: self.file_length,
        });
        if let Some(m) = self.metadata {
            out.extend(encode(&ExtendedFields {
                header_length: EXTENDED_HEADER_LEN,
                file_offset: self.file_offset as u64,
                file_length: self.file_length as u64,
                attributes: m.to_fields(S_IFREG),
            }));
        }
        out.extend_from_slice(self.path.as_bytes());
        out.extend_from_slice(&self.sha1);
        out
    }
}

/// The gateway's rule (notes §6.1): the extension is used only if the
/// Value has at least 100 octets, its Header Length is at least 100 and no
/// more than the Value, and both the Path and the Hash start at or after 100.
fn is_extended(f: &FileFields, value: &[u8]) -> bool {
    let header_length = match value.get(32..36) {
        Some(b) => u32::from_be_bytes(b.try_into().expect("four octets")),
        None => return false,
    };
    let n = EXTENDED_HEADER_LEN;
    value.len() >= n as usize && (n..=value.len() as u32).contains(&header_length) && f.path_offset.min(f.hash_offset) >= n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FileCommand {
        FileCommand { flags: 1, path: "/bin/app".into(), sha1: [7; 20], file_offset: 10, file_length: 99, metadata: None }
    }

    fn extended() -> FileCommand {
        let metadata = FileMetadata { mode: Some(0o750), uid: Some(1000), gid: Some(20), ..FileMetadata::default() };
        FileCommand { metadata: Some(metadata), ..sample() }
    }

    fn word(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
    }

    /// What a reader that knows only Table 69 takes from a record: the
    /// eight fixed fields and the Path and Hash at their offsets.
    fn table_69_view(b: &[u8]) -> (String, Vec<u8>, u32, u32) {
        let (po, pl, ho, hl) = (word(b, 4) as usize, word(b, 8) as usize, word(b, 16) as usize, word(b, 20) as usize);
        (String::from_utf8(b[po..po + pl].to_vec()).unwrap(), b[ho..ho + hl].to_vec(), word(b, 24), word(b, 28))
    }

    #[test]
    fn extended_layout_byte_by_byte() {
        let c = extended();
        let b = c.encode();
        assert_eq!(b.len(), 100 + 8 + 20);
        // The first 32 octets are Table 69, pointing past the extension.
        assert_eq!(word(&b, 0), 1);
        assert_eq!(word(&b, 4), 100, "Path Offset");
        assert_eq!(word(&b, 8), 8, "Path Length");
        assert_eq!(word(&b, 12), 1, "Hash Type");
        assert_eq!(word(&b, 16), 108, "Hash Offset");
        assert_eq!(word(&b, 20), 20, "Hash Length");
        assert_eq!(word(&b, 24), 10, "File Offset");
        assert_eq!(word(&b, 28), 99, "File Length");
        assert_eq!(word(&b, 32), 100, "Header Length");
        assert_eq!(&b[36..44], &10u64.to_be_bytes());
        assert_eq!(&b[44..52], &99u64.to_be_bytes());
        assert_eq!(word(&b, 52), 0o100750, "mode with S_IFREG");
        assert_eq!(word(&b, 56), 1000);
        assert_eq!(word(&b, 60), 20);
        assert_eq!(&b[64..100], &[0xFF; 36][..], "no times recorded");
        assert_eq!(&b[100..108], b"/bin/app");
        assert_eq!(&b[108..128], &[7; 20]);
        assert_eq!(FileCommand::decode(CommandType::ExtractFile, &b).unwrap(), c);
        assert_eq!(table_69_view(&b), ("/bin/app".into(), vec![7; 20], 10, 99));
        // Metadata recorded as "leave unchanged" still selects the extended form.
        let empty = FileCommand { metadata: Some(FileMetadata::default()), ..sample() };
        let b = empty.encode();
        assert_eq!(word(&b, 32), 100);
        assert_eq!(FileCommand::decode(CommandType::ExtractFile, &b).unwrap(), empty);
    }

    /// The gateway's rule decides the form: a short Header Length, a Path
    /// or Hash before octet 100, or a Header Length past the Value all mean
    /// plain Table 69 (the bytes after octet 32 are then just a gap).
    #[test]
    fn extended_only_when_the_gateway_would() {
        let good = extended().encode();
        let plain = |b: &[u8]| FileCommand::decode(CommandType::ExtractFile, b).unwrap().metadata.is_none();
        assert!(!plain(&good));
        let mut b = good.clone();
        b[32..36].copy_from_slice(&99u32.to_be_bytes());
        assert!(plain(&b));
        let mut b = good.clone();
        b[32..36].copy_from_slice(&(good.len() as u32 + 1).to_be_bytes());
        assert!(plain(&b));
        let mut b = good.clone();
        b[32..36].copy_from_slice(&(good.len() as u32).to_be_bytes());
        assert!(!plain(&b), "Header Length up to the Value's length");
        // Hash moved before octet 100 (into the gap of a plain record).
        let mut b = good.clone();
        b[16..20].copy_from_slice(&80u32.to_be_bytes());
        assert!(plain(&b));
        // Shorter than 100 octets: plain.
        let short = sample().encode();
        assert!(short.len() < 100 && plain(&short));
    }

    #[test]
    fn extended_offsets_must_agree_with_table_69() {
        let good = extended().encode();
        let mut b = good.clone();
        b[36..44].copy_from_slice(&(1u64 << 32 | 10).to_be_bytes());
        let e = FileCommand::decode(CommandType::ExtractFile, &b).unwrap_err();
        assert_eq!(e, (36, ParseErrorKind::ExtendedMismatch { field: "File Offset", short: 10, long: 1 << 32 | 10 }));
        let mut b = good.clone();
        b[44..52].copy_from_slice(&98u64.to_be_bytes());
        assert_eq!(FileCommand::decode(CommandType::ExtractFile, &b).unwrap_err().0, 44);
        // A directory's mode in a file record.
        let mut b = good.clone();
        b[52..56].copy_from_slice(&0o040755u32.to_be_bytes());
        assert!(matches!(FileCommand::decode(CommandType::ExtractFile, &b).unwrap_err(), (52, ParseErrorKind::BadMode { .. })));
        // Truncating an extended record anywhere is an error.
        for n in 0..good.len() {
            assert!(FileCommand::decode(CommandType::ExtractFile, &good[..n]).is_err(), "cut at {n}");
        }
    }

    #[test]
    fn canonical_layout() {
        let b = sample().encode();
        assert_eq!(b.len(), 32 + 8 + 20);
        assert_eq!(&b[4..8], &32u32.to_be_bytes());
        assert_eq!(&b[16..20], &40u32.to_be_bytes());
        assert_eq!(&b[32..40], b"/bin/app");
        assert_eq!(FileCommand::decode(CommandType::ExtractFile, &b).unwrap(), sample());
    }

    #[test]
    fn honours_offsets_hash_before_path_with_gap() {
        let mut b =
            encode(&FileFields { flags: 0, path_offset: 56, path_length: 3, hash_type: 1, hash_offset: 36, hash_length: 20, file_offset: 0, file_length: 5 });
        b.extend_from_slice(&[0xEE; 4]); // gap
        b.extend_from_slice(&[9; 20]);
        b.extend_from_slice(b"/ab");
        let c = FileCommand::decode(CommandType::ExtractFile, &b).unwrap();
        assert_eq!(c.path, "/ab");
        assert_eq!(c.sha1, [9; 20]);
    }

    #[test]
    fn bounds_every_field() {
        let good = sample().encode();
        // Path length running past the Value.
        let mut b = good.clone();
        b[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(FileCommand::decode(CommandType::ExtractFile, &b).unwrap_err().1, ParseErrorKind::FieldOutOfBounds { field: "Path", .. }));
        // Hash offset past the Value (and u32 overflow on offset+length).
        let mut b = good.clone();
        b[16..20].copy_from_slice(&(u32::MAX - 3).to_be_bytes());
        assert!(matches!(FileCommand::decode(CommandType::ExtractFile, &b).unwrap_err().1, ParseErrorKind::FieldOutOfBounds { field: "Hash", .. }));
        // Path pointing into the fixed fields.
        let mut b = good.clone();
        b[4..8].copy_from_slice(&4u32.to_be_bytes());
        assert!(matches!(FileCommand::decode(CommandType::ExtractFile, &b).unwrap_err().1, ParseErrorKind::FieldOverlapsFixed { .. }));
        // Unknown hash type, wrong hash length.
        let mut b = good.clone();
        b[12..16].copy_from_slice(&2u32.to_be_bytes());
        assert_eq!(FileCommand::decode(CommandType::ExtractFile, &b).unwrap_err().1, ParseErrorKind::UnsupportedHashType(2));
        assert_eq!(FileCommand::decode(CommandType::ExtractFile, &b).unwrap_err().0, 12);
        let mut b = good.clone();
        b[20..24].copy_from_slice(&32u32.to_be_bytes());
        assert_eq!(FileCommand::decode(CommandType::ExtractFile, &b).unwrap_err().1, ParseErrorKind::BadHashLength(32));
        assert_eq!(FileCommand::decode(CommandType::ExtractFile, &b).unwrap_err().0, 20);
        // Truncated fixed part.
        for n in 0..32 {
            assert!(matches!(FileCommand::decode(CommandType::ExtractFile, &good[..n]).unwrap_err().1, ParseErrorKind::Truncated { .. }));
        }
    }
}
