//! One record of a dialect command list (2wire-pkgstream-notes §5: a
//! big-endian u32 type, a u32 length, then that many value bytes; no
//! padding, no CRC), its value read as its [`RecordType`]'s layout says.
//!
//! A value that does not decode does not stop the walk: the framing still
//! says where the next record starts, so the record is kept as labelled
//! hex with the reason ([`RecordBody::Malformed`]).

use super::catalogue::{FileMode, Layout, RecordType};
use super::digest::{Digest, DigestAlgorithm};
use super::script::Script;
use crate::codec::ValueError;
use crate::command::metadata::{FileMetadata, S_IFREG, UNCHANGED};
use crate::command::{Command, FileRecord, EXTENDED_HEADER_LEN};
use crate::error::ParseErrorKind;

/// A FILE record (types 1, 3, 47), notes §6.1, read with the file record
/// codec Annex E's extended record uses ([`crate::command::FileCommand`]),
/// under the dialect's rules: any of the three hash types, and in the
/// extended form the 64-bit offset and size apply (the 32-bit ones are
/// reported beside them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialectFile {
    pub mode: FileMode,
    /// Bit 0 tested by the device; bit 16 makes it remember the path (§6.1).
    pub flags: u32,
    /// The target path, lossily decoded if it is not UTF-8.
    pub path: String,
    pub digest: Digest,
    /// From the payload base: the 64-bit value in the extended form, else the 32-bit one.
    pub data_offset: u64,
    pub data_size: u64,
    /// The extended form's header length (100 in the samples); `None`: the short form.
    pub header_length: Option<u32>,
    /// The 32-bit offset and size as found (they apply only in the short form).
    pub short_offset: u32,
    pub short_size: u32,
    /// The extended form's POSIX mode word as found (file-type bits included);
    /// uid and gid follow it (a reading of the decompiled code).
    pub mode_word: Option<u32>,
    /// The extended form's attributes, when they are well-formed.
    pub metadata: Option<FileMetadata>,
    /// What in the record does not look as the notes describe.
    pub warnings: Vec<String>,
}

impl DialectFile {
    pub(crate) fn decode(mode: FileMode, value: &[u8]) -> Result<DialectFile, ValueError> {
        let mut algorithm = None;
        let (FileRecord { fields: f, extended }, r) = FileRecord::read(value, |f| {
            algorithm = Some(DigestAlgorithm::check(f.hash_type, f.hash_length, 12)?);
            Ok(())
        })?;
        let algorithm = algorithm.expect("checked");
        let path = r.field("Path", f.path_offset, f.path_length)?;
        let digest = r.field("Hash", f.hash_offset, f.hash_length)?;
        let mut warnings = Vec::new();
        let (data_offset, data_size, header_length, mode_word, metadata) = match extended {
            Some(x) => {
                let metadata = match FileMetadata::from_fields(x.attributes, S_IFREG, 52) {
                    Ok(m) => Some(m),
                    Err((_, e)) => {
                        warnings.push(format!("attributes not shown: {e}"));
                        None
                    }
                };
                let mode = x.attributes.raw_mode();
                (x.file_offset, x.file_length, Some(x.header_length), (mode != UNCHANGED).then_some(mode), metadata)
            }
            None => (f.file_offset as u64, f.file_length as u64, None, None, None),
        };
        if header_length.is_some() && (data_offset, data_size) != (f.file_offset as u64, f.file_length as u64) {
            warnings.push(format!(
                "the 32-bit offset/size {}/{} differ from the 64-bit {}/{}; the extended form's 64-bit values apply (notes §6.1)",
                f.file_offset, f.file_length, data_offset, data_size
            ));
        }
        if header_length.is_some_and(|h| h != EXTENDED_HEADER_LEN) {
            warnings.push(format!("extended header length {} (the samples use 100)", header_length.unwrap_or_default()));
        }
        if std::str::from_utf8(path).is_err() {
            warnings.push("path is not UTF-8 (shown lossily)".into());
        }
        Ok(DialectFile {
            mode,
            flags: f.flags,
            path: String::from_utf8_lossy(path).into_owned(),
            digest: Digest { algorithm, value: digest.to_vec() },
            data_offset,
            data_size,
            header_length,
            short_offset: f.file_offset,
            short_size: f.file_length,
            mode_word,
            metadata,
            warnings,
        })
    }

    pub fn is_extended(&self) -> bool {
        self.header_length.is_some()
    }
}

/// What a record's value was read as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordBody {
    /// Type 0, the terminator.
    End,
    /// A text value, lossily decoded; `utf8` false if it was not UTF-8.
    Text {
        text: String,
        utf8: bool,
    },
    /// Type 46, the install-method tag.
    InstallMethod(String),
    File(DialectFile),
    Script(Script),
    /// A Table 68 type whose Annex E layout decodes.
    AnnexE(Command),
    /// Layout unknown: the value is shown as hex.
    Opaque,
    /// The value does not decode as its layout: shown as hex, with why.
    Malformed {
        offset: usize,
        error: ParseErrorKind,
    },
}

/// One record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the list.
    pub index: usize,
    /// Absolute offset of its type word in the (decompressed) package.
    pub offset: u64,
    pub kind: u32,
    pub value: Vec<u8>,
    pub body: RecordBody,
}

impl Record {
    /// Read a value as `kind`'s layout says.
    pub fn decode(index: usize, offset: u64, kind: u32, value: Vec<u8>) -> Record {
        let body = decode_body(kind, &value);
        Record { index, offset, kind, value, body }
    }

    pub fn record_type(&self) -> RecordType {
        RecordType::of(self.kind)
    }

    /// The FILE record, if this is one.
    pub fn file(&self) -> Option<&DialectFile> {
        match &self.body {
            RecordBody::File(f) => Some(f),
            _ => None,
        }
    }

    /// The SCRIPT record, if this is one.
    pub fn script(&self) -> Option<&Script> {
        match &self.body {
            RecordBody::Script(s) => Some(s),
            _ => None,
        }
    }
}

fn decode_body(kind: u32, value: &[u8]) -> RecordBody {
    let malformed = |(offset, error): ValueError| RecordBody::Malformed { offset, error };
    match RecordType::of(kind).layout {
        Layout::End => RecordBody::End,
        Layout::Text => RecordBody::Text { text: String::from_utf8_lossy(value).into_owned(), utf8: std::str::from_utf8(value).is_ok() },
        Layout::InstallMethod => RecordBody::InstallMethod(String::from_utf8_lossy(value).into_owned()),
        Layout::File(mode) => DialectFile::decode(mode, value).map_or_else(malformed, RecordBody::File),
        Layout::Script => Script::decode(value).map_or_else(malformed, RecordBody::Script),
        Layout::AnnexE => Command::decode(kind, value).map_or_else(malformed, RecordBody::AnnexE),
        Layout::Opaque => RecordBody::Opaque,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::FileCommand;
    use crate::command_type::CommandType;

    /// A dialect FILE record: the Table 69 fields, the extension, path, digest.
    pub(crate) fn file_value(path: &str, algorithm: DigestAlgorithm, digest: &[u8], offset: u64, size: u64, mode: u32) -> Vec<u8> {
        let mut v = Vec::new();
        let path_offset = 100u32;
        let digest_offset = path_offset + path.len() as u32;
        for w in [0, path_offset, path.len() as u32, algorithm.code(), digest_offset, digest.len() as u32, offset as u32, size as u32, 100] {
            v.extend(w.to_be_bytes());
        }
        v.extend(offset.to_be_bytes());
        v.extend(size.to_be_bytes());
        v.extend(mode.to_be_bytes());
        v.extend([0u8; 8]); // uid 0, gid 0
        v.extend([0xFF; 36]); // no times
        v.extend(path.as_bytes());
        v.extend(digest);
        v
    }

    #[test]
    fn extended_file_with_md5_and_a_64_bit_offset() {
        let v = file_value("/rwdata/tmp/sys2/rootimage.img", DigestAlgorithm::Md5, &[9; 16], 5 << 32, 26_775_552, 0o100644);
        let r = Record::decode(3, 0x100, 1, v.clone());
        let f = r.file().unwrap();
        assert_eq!(f.path, "/rwdata/tmp/sys2/rootimage.img");
        assert_eq!(f.digest, Digest { algorithm: DigestAlgorithm::Md5, value: vec![9; 16] });
        assert_eq!((f.data_offset, f.data_size, f.header_length, f.mode_word), (5 << 32, 26_775_552, Some(100), Some(0o100644)));
        assert_eq!(f.metadata.unwrap().mode, Some(0o644));
        assert_eq!(f.metadata.unwrap().uid, Some(0));
        assert_eq!(f.warnings.len(), 1, "{:?}", f.warnings); // the 32-bit offset is truncated
                                                             // Annex E refuses the same bytes: MD5, and a 64-bit offset that differs.
        assert_eq!(Command::decode(1, &v).unwrap_err().1, ParseErrorKind::UnsupportedHashType(2));
    }

    #[test]
    fn short_form_and_annex_e_bytes_read_the_same() {
        let c = FileCommand { flags: 1, path: "/a".into(), sha1: [3; 20], file_offset: 7, file_length: 9, metadata: None };
        let v = Command::ExtractFile(c).encode_value();
        let f = DialectFile::decode(FileMode::CreateOrTruncate, &v).unwrap();
        assert_eq!((f.flags, f.path.as_str(), f.data_offset, f.data_size, f.header_length), (1, "/a", 7, 9, None));
        assert_eq!(f.digest.algorithm, DigestAlgorithm::Sha1);
        assert!(f.warnings.is_empty());
    }

    #[test]
    fn bodies_by_layout() {
        assert_eq!(Record::decode(0, 24, 0x2E, b"run".to_vec()).body, RecordBody::InstallMethod("run".into()));
        assert_eq!(Record::decode(0, 24, 0x1A, b"firmware".to_vec()).body, RecordBody::Text { text: "firmware".into(), utf8: true });
        assert_eq!(Record::decode(0, 24, 0x25, vec![1, 2]).body, RecordBody::Opaque);
        assert_eq!(Record::decode(0, 24, 0x3E8, vec![1, 2]).body, RecordBody::Opaque);
        assert_eq!(Record::decode(0, 24, 16, vec![]).body, RecordBody::AnnexE(Command::Reboot));
        assert!(matches!(Record::decode(0, 24, 16, vec![1]).body, RecordBody::Malformed { .. }));
        // A CONFIG record (type 7) is not read as Annex E's Remove Sub-Tree:
        // its 32-byte records would decode as one with an empty path.
        assert_eq!(Record::decode(0, 24, CommandType::RemoveSubTree as u32, vec![0; 32]).body, RecordBody::Opaque);
        assert!(Command::decode(CommandType::RemoveSubTree as u32, &[0; 32]).is_ok());
        assert!(matches!(Record::decode(0, 24, CommandType::Role as u32, vec![0; 3]).body, RecordBody::Malformed { .. }));
        let bad = Record::decode(0, 24, 47, vec![0; 8]);
        assert!(matches!(bad.body, RecordBody::Malformed { error: ParseErrorKind::Truncated { .. }, .. }));
        let v = file_value("/x", DigestAlgorithm::Sha256, &[1; 31], 0, 0, 0o100644);
        assert!(matches!(Record::decode(0, 24, 1, v).body, RecordBody::Malformed { offset: 20, error: ParseErrorKind::DigestLength { .. } }));
    }
}
