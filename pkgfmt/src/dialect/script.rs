//! The SCRIPT record (type 0x26 = 38), 2wire-pkgstream-notes §6.2: the
//! source repository's parser (`parse_script_tlv_body`, checked against
//! real files) `[CODE]`, and the gateway's decompiled
//! `demarshall_2sp_script` and `lib2sp_close_script` `[DECOMP]`.
//!
//! | off | size | field |
//! |---|---|---|
//! | +0x00 | u32 | header length, > 0x33 and ≤ the value's length |
//! | +0x04 | u32 | flags (bit 0 used) |
//! | +0x08 | u32 | string A offset: the script's name in the device's logs |
//! | +0x0C | u32 | string A length |
//! | +0x10 | u32 | string B offset: a phase or event label (a reading) |
//! | +0x14 | u32 | string B length; 0: the script runs as soon as it is closed |
//! | +0x18 | u32 | hash algorithm (as FILE's) |
//! | +0x1C | u32 | digest offset |
//! | +0x20 | u32 | digest length |
//! | +0x24 | u64 | payload offset (from the payload base) |
//! | +0x2C | u64 | payload size |
//!
//! The source's 010 template reads the size at +0x24 and the offset at
//! +0x32; the notes side with the parser that was checked against files.

use binrw::binrw;

use super::digest::{Digest, DigestAlgorithm};
use crate::codec::{Fixed, Reader, ValueError};
use crate::error::ParseErrorKind;

/// The 52 fixed octets.
#[binrw]
#[brw(big)]
struct ScriptFields {
    header_length: u32,
    flags: u32,
    name_offset: u32,
    name_length: u32,
    label_offset: u32,
    label_length: u32,
    hash_algorithm: u32,
    digest_offset: u32,
    digest_length: u32,
    payload_offset: u64,
    payload_size: u64,
}

/// The minimum header length (and value length): 0x34.
pub const SCRIPT_FIXED_LEN: u32 = 52;

impl Fixed for ScriptFields {
    const LEN: usize = SCRIPT_FIXED_LEN as usize;
    const WHAT: &'static str = "SCRIPT record";
}

/// A SCRIPT record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub header_length: u32,
    pub flags: u32,
    /// String A: the script's name (a reading of the decompiled code).
    pub name: String,
    /// String B: the phase or event the script is queued under; empty: it
    /// runs as soon as it is closed (a reading).
    pub label: String,
    pub digest: Digest,
    /// From the payload base.
    pub payload_offset: u64,
    pub payload_size: u64,
}

impl Script {
    pub(crate) fn decode(value: &[u8]) -> Result<Script, ValueError> {
        let mut r = Reader::new(value);
        let f: ScriptFields = r.read()?;
        if f.header_length < SCRIPT_FIXED_LEN || f.header_length as usize > value.len() {
            return Err((0, ParseErrorKind::ScriptHeaderLength { header_length: f.header_length, value_len: value.len() as u32 }));
        }
        let algorithm = DigestAlgorithm::check(f.hash_algorithm, f.digest_length, 24)?;
        let name = r.field("script name", f.name_offset, f.name_length)?;
        let label = r.field("phase label", f.label_offset, f.label_length)?;
        let digest = r.field("digest", f.digest_offset, f.digest_length)?;
        Ok(Script {
            header_length: f.header_length,
            flags: f.flags,
            name: String::from_utf8_lossy(name).into_owned(),
            label: String::from_utf8_lossy(label).into_owned(),
            digest: Digest { algorithm, value: digest.to_vec() },
            payload_offset: f.payload_offset,
            payload_size: f.payload_size,
        })
    }

    /// The value as a writer lays it out: the fixed fields, name, label,
    /// digest (for tests and samples).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let name_offset = SCRIPT_FIXED_LEN;
        let label_offset = name_offset + self.name.len() as u32;
        let digest_offset = label_offset + self.label.len() as u32;
        for w in [
            self.header_length,
            self.flags,
            name_offset,
            self.name.len() as u32,
            label_offset,
            self.label.len() as u32,
            self.digest.algorithm.code(),
            digest_offset,
            self.digest.value.len() as u32,
        ] {
            out.extend(w.to_be_bytes());
        }
        out.extend(self.payload_offset.to_be_bytes());
        out.extend(self.payload_size.to_be_bytes());
        out.extend(self.name.as_bytes());
        out.extend(self.label.as_bytes());
        out.extend(&self.digest.value);
        out
    }

    /// When the device runs it (a reading of `lib2sp_close_script`).
    pub fn phase(&self) -> String {
        if self.label.is_empty() {
            "runs when closed".into()
        } else {
            format!("queued under {:?}", self.label)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Script {
        Script {
            header_length: 52,
            flags: 0,
            name: "start.sh".into(),
            label: "post-write".into(),
            digest: Digest { algorithm: DigestAlgorithm::Md5, value: vec![7; 16] },
            payload_offset: 1 << 33,
            payload_size: 1576,
        }
    }

    #[test]
    fn layout_byte_by_byte() {
        let b = sample().encode();
        assert_eq!(b.len(), 52 + 8 + 10 + 16);
        assert_eq!(&b[0x18..0x1C], &2u32.to_be_bytes(), "hash algorithm at +0x18");
        assert_eq!(&b[0x20..0x24], &16u32.to_be_bytes(), "digest length at +0x20");
        assert_eq!(&b[0x24..0x2C], &(1u64 << 33).to_be_bytes(), "64-bit payload offset at +0x24");
        assert_eq!(&b[0x2C..0x34], &1576u64.to_be_bytes(), "payload size at +0x2C");
        assert_eq!(&b[52..60], b"start.sh");
        assert_eq!(Script::decode(&b).unwrap(), sample());
        assert_eq!(sample().phase(), "queued under \"post-write\"");
    }

    #[test]
    fn malformed_scripts_are_typed_errors() {
        let good = sample().encode();
        for n in 0..52 {
            assert!(matches!(Script::decode(&good[..n]).unwrap_err().1, ParseErrorKind::Truncated { .. }), "{n}");
        }
        let mut b = good.clone();
        b[0..4].copy_from_slice(&51u32.to_be_bytes());
        assert!(matches!(Script::decode(&b).unwrap_err(), (0, ParseErrorKind::ScriptHeaderLength { header_length: 51, .. })));
        let mut b = good.clone();
        b[0..4].copy_from_slice(&(good.len() as u32 + 1).to_be_bytes());
        assert!(matches!(Script::decode(&b).unwrap_err().1, ParseErrorKind::ScriptHeaderLength { .. }));
        let mut b = good.clone();
        b[0x18..0x1C].copy_from_slice(&9u32.to_be_bytes());
        assert_eq!(Script::decode(&b).unwrap_err(), (24, ParseErrorKind::UnknownDigestAlgorithm(9)));
        let mut b = good.clone();
        b[0x0C..0x10].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(Script::decode(&b).unwrap_err().1, ParseErrorKind::FieldOutOfBounds { field: "script name", .. }));
    }
}
