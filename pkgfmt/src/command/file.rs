//! E.4.3, Table 69 — Value format for the extract and add commands.
//!
//! > Hash Type: "1 = SHA-1. When set to this value, the Hash field contains
//! > the 20-octet SHA-1 hash of the specified file. The Hash Length value in
//! > this case MUST be set to 20 (decimal). All other values are reserved."
//! > Path Offset, Hash Offset: "The offset in octets from the beginning of
//! > the Value field". File Offset: "The offset in octets from the beginning
//! > of the payload portion of the package to the beginning of the specified
//! > file."

use binrw::binrw;

use super::value::{utf8, ValueLayout, UNSAFE_FLAG};
use crate::codec::{encode, Fixed, Reader, ValueError};
use crate::command_type::CommandType;
use crate::error::ParseErrorKind;

/// Table 69 Hash Type 1: SHA-1, "The Hash Length value in this case MUST be
/// set to 20". All other values are reserved.
pub const SHA1_HASH_TYPE: u32 = 1;
const SHA1_LEN: u32 = 20;

/// The eight fixed 32-bit fields of Table 69 (32 octets). Reading checks
/// the Hash Type and Hash Length; the Path and Hash they locate are
/// bounded by the [`Reader`].
#[binrw]
#[brw(big)]
struct FileFields {
    flags: u32,
    path_offset: u32,
    path_length: u32,
    #[br(try_map = |v: u32| if v == SHA1_HASH_TYPE { Ok(v) } else { Err(ParseErrorKind::UnsupportedHashType(v)) })]
    hash_type: u32,
    hash_offset: u32,
    #[br(try_map = |v: u32| if v == SHA1_LEN { Ok(v) } else { Err(ParseErrorKind::BadHashLength(v)) })]
    hash_length: u32,
    file_offset: u32,
    file_length: u32,
}

impl Fixed for FileFields {
    const LEN: usize = 32;
    const WHAT: &'static str = "Extract/Add command fixed fields";
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
        let mut r = Reader::new(value);
        let f: FileFields = r.read()?;
        let path = r.field("Path", f.path_offset, f.path_length)?;
        let hash = r.field("Hash", f.hash_offset, f.hash_length)?;
        Ok(FileCommand {
            flags: f.flags,
            path: utf8(path, "Path").map_err(|(o, k)| (f.path_offset as usize + o, k))?,
            sha1: hash.try_into().map_err(|_| (20, ParseErrorKind::BadHashLength(f.hash_length)))?,
            file_offset: f.file_offset,
            file_length: f.file_length,
        })
    }

    /// Canonical layout: fixed fields, Path, then Hash.
    fn encode(&self) -> Vec<u8> {
        let path_length = self.path.len() as u32;
        let fixed = FileFields::LEN as u32;
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
        out.extend_from_slice(self.path.as_bytes());
        out.extend_from_slice(&self.sha1);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FileCommand {
        FileCommand { flags: 1, path: "/bin/app".into(), sha1: [7; 20], file_offset: 10, file_length: 99 }
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
