//! E.3, Table 66: the fixed 24-octet signed package header.
//!
//! > "The signed package header is a fixed-length 24-octet structure."
//! > Preamble: "An interpreter of the signed package format MUST verify
//! > that the preamble contains exactly this sequence of values for the
//! > package to be considered valid." Major version: "An implementation
//! > conforming to this specification has a major version of 1 (one).
//! > Changes to the major version denote incompatible changes to this
//! > format." Minor version: an implementation "should be capable of
//! > interpreting packages encoded using a format with a different minor
//! > version value." Command list length: "The command list length MUST be
//! > less than 2^16."

use std::io::Read;

use binrw::{binrw, BinResult};

use crate::codec::{encode, Fixed, Reader};
use crate::error::{ParseError, ParseErrorKind};

/// Table 66 preamble: `32 57 49 52 45 5F 53 50` ("2WIRE_SP").
pub const PREAMBLE: [u8; 8] = *b"2WIRE_SP";
/// Length of the header in octets.
pub const HEADER_LEN: usize = 24;
/// Major version implemented here (E.3: "has a major version of 1").
pub const MAJOR_VERSION: u32 = 1;
/// Minor version written by us (E.3: "has a minor version of 0").
pub const MINOR_VERSION: u32 = 0;
/// E.3: "The command list length MUST be less than 2^16."
pub const MAX_COMMAND_LIST_LEN: u32 = 1 << 16;

/// Table 66 — signed package header. All fields big-endian (E.2.1).
///
/// Reading checks the preamble, the major version and the command list
/// length, in that (wire) order; any minor version is accepted.
#[binrw]
#[brw(big)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Preamble: exactly [`PREAMBLE`].
    #[br(temp, parse_with = preamble)]
    #[bw(calc = PREAMBLE)]
    preamble: [u8; 8],
    /// Incompatible format changes; must be 1.
    #[br(try_map = |v: u32| if v == MAJOR_VERSION { Ok(v) } else { Err(ParseErrorKind::UnsupportedMajor(v)) })]
    pub major: u32,
    /// Compatible format changes; any value is accepted on input.
    pub minor: u32,
    /// Length in octets of the command list, `< 2^16`.
    #[br(try_map = |v: u32| if v < MAX_COMMAND_LIST_LEN { Ok(v) } else { Err(ParseErrorKind::CommandListTooLong(v)) })]
    pub command_list_length: u32,
    /// Length in octets of the payload, including all files in it.
    pub payload_length: u32,
}

impl Fixed for Header {
    const LEN: usize = HEADER_LEN;
    const WHAT: &'static str = "header";
}

/// The same 24 octets without the E.3 checks on the major version and the
/// command list length: how the 2Wire dialect's header is read
/// (2wire-pkgstream-notes §3: "8-byte magic followed by four big-endian
/// u32s"; the device checks only the magic). Only the preamble is checked.
#[binrw]
#[brw(big)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawHeader {
    #[br(temp, parse_with = preamble)]
    #[bw(calc = PREAMBLE)]
    preamble: [u8; 8],
    pub major: u32,
    pub minor: u32,
    /// The command list length word as found (the dialect's is not a length; notes §3).
    pub command_list_length: u32,
    pub payload_length: u32,
}

impl Fixed for RawHeader {
    const LEN: usize = HEADER_LEN;
    const WHAT: &'static str = "header";
}

impl RawHeader {
    /// Parse the first 24 bytes of `bytes`, checking only the preamble.
    pub fn parse(bytes: &[u8]) -> Result<RawHeader, ParseError> {
        Reader::new(bytes).read().map_err(|(at, kind)| ParseError::at(at as u64, kind))
    }

    /// The 24 header octets.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out.copy_from_slice(&encode(self));
        out
    }
}

/// The preamble, reported as wrong as soon as the octets present differ
/// from it, even when there are fewer than eight (a short file that is not
/// a package at all says so, rather than that it is truncated).
#[binrw::parser(reader)]
fn preamble() -> BinResult<[u8; 8]> {
    let pos = reader.stream_position()?;
    let mut found = Vec::with_capacity(PREAMBLE.len());
    reader.take(PREAMBLE.len() as u64).read_to_end(&mut found)?;
    if !PREAMBLE.starts_with(&found) {
        let hex: Vec<String> = found.iter().map(|b| format!("{b:02X}")).collect();
        return Err(binrw::Error::Custom { pos, err: Box::new(ParseErrorKind::BadPreamble { found: hex.join(" ") }) });
    }
    if found.len() < PREAMBLE.len() {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    Ok(PREAMBLE)
}

impl Header {
    /// Strictly parse the first 24 bytes of `bytes`.
    ///
    /// E.3: the preamble must be exact, the major version 1 (other minors
    /// are accepted, as "compatible changes") and the command list shorter
    /// than 2^16 octets.
    pub fn parse(bytes: &[u8]) -> Result<Header, ParseError> {
        Reader::new(bytes).read().map_err(|(at, kind)| ParseError::at(at as u64, kind))
    }

    /// The 24 header octets.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out.copy_from_slice(&encode(self));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header { major: 1, minor: 0, command_list_length: 40, payload_length: 7 }
    }

    #[test]
    fn round_trip() {
        let b = sample().to_bytes();
        assert_eq!(&b[..8], b"2WIRE_SP");
        assert_eq!(&b[8..12], &[0, 0, 0, 1]);
        assert_eq!(&b[16..20], &[0, 0, 0, 40]);
        assert_eq!(Header::parse(&b).unwrap(), sample());
    }

    #[test]
    fn other_minor_accepted() {
        let mut h = sample();
        h.minor = 7;
        assert_eq!(Header::parse(&h.to_bytes()).unwrap().minor, 7);
    }

    #[test]
    fn rejects_bad_preamble_major_and_length() {
        let mut b = sample().to_bytes();
        b[0] = b'3';
        let e = Header::parse(&b).unwrap_err();
        assert!(matches!(e.kind, ParseErrorKind::BadPreamble { .. }), "{e}");
        assert_eq!(e.offset, 0);

        let mut h = sample();
        h.major = 2;
        let e = Header::parse(&h.to_bytes()).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::UnsupportedMajor(2));
        assert_eq!(e.offset, 8);

        h.major = 1;
        h.command_list_length = 65536;
        let e = Header::parse(&h.to_bytes()).unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::CommandListTooLong(65536));
        assert_eq!(e.offset, 16);
        h.command_list_length = 65535;
        assert!(Header::parse(&h.to_bytes()).is_ok());
    }

    #[test]
    fn wrong_preamble_reported_even_when_short() {
        let e = Header::parse(b"2WIRX").unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::BadPreamble { found: "32 57 49 52 58".into() });
        assert_eq!(e.offset, 0);
        let e = Header::parse(b"2WIRE").unwrap_err();
        assert_eq!(e.kind, ParseErrorKind::Truncated { what: "header", needed: 24, available: 5 });
        assert_eq!(e.offset, 5);
    }

    /// The one published 2Wire header (notes §3) reads raw, not strictly.
    #[test]
    fn raw_header_reads_the_published_dialect_header() {
        let published =
            [0x32, 0x57, 0x49, 0x52, 0x45, 0x5f, 0x53, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x51, 0x30, 0x01, 0xe9, 0xba, 0x61];
        let h = RawHeader::parse(&published).unwrap();
        assert_eq!((h.major, h.minor, h.command_list_length, h.payload_length), (1, 1, 0x15130, 32_094_817));
        assert_eq!(h.to_bytes(), published);
        assert_eq!(Header::parse(&published).unwrap_err().kind, ParseErrorKind::CommandListTooLong(86_320));
        assert!(matches!(RawHeader::parse(b"BZh91AY&SY").unwrap_err().kind, ParseErrorKind::BadPreamble { .. }));
    }

    #[test]
    fn rejects_truncation_everywhere() {
        let b = sample().to_bytes();
        for n in 0..HEADER_LEN {
            let e = Header::parse(&b[..n]).unwrap_err();
            assert!(matches!(e.kind, ParseErrorKind::Truncated { .. }), "{n}: {e}");
        }
    }
}
