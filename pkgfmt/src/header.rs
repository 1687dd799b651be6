//! E.3, Table 66: the fixed 24-octet signed package header.

use binrw::{binrw, BinRead, BinWrite};
use std::io::Cursor;

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
#[binrw]
#[brw(big, magic = b"2WIRE_SP")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Incompatible format changes; must be 1.
    pub major: u32,
    /// Compatible format changes; any value is accepted on input.
    pub minor: u32,
    /// Length in octets of the command list, `< 2^16`.
    pub command_list_length: u32,
    /// Length in octets of the payload, including all files in it.
    pub payload_length: u32,
}

impl Header {
    /// Strictly parse the first 24 bytes of `bytes`.
    ///
    /// E.3: the preamble must be exact, the major version 1 (other minors
    /// are accepted, as "compatible changes") and the command list shorter
    /// than 2^16 octets.
    pub fn parse(bytes: &[u8]) -> Result<Header, ParseError> {
        if bytes.len() < HEADER_LEN {
            // Report a wrong preamble before a short read if what we have already differs.
            let n = bytes.len().min(8);
            if bytes[..n] != PREAMBLE[..n] {
                return Err(bad_preamble(&bytes[..n]));
            }
            return Err(ParseError::at(
                bytes.len() as u64,
                ParseErrorKind::Truncated { what: "header", needed: HEADER_LEN as u64, available: bytes.len() as u64 },
            ));
        }
        if bytes[..8] != PREAMBLE {
            return Err(bad_preamble(&bytes[..8]));
        }
        let h = Header::read(&mut Cursor::new(&bytes[..HEADER_LEN])).expect("24 bytes with a checked preamble always decode");
        if h.major != MAJOR_VERSION {
            return Err(ParseError::at(8, ParseErrorKind::UnsupportedMajor(h.major)));
        }
        if h.command_list_length >= MAX_COMMAND_LIST_LEN {
            return Err(ParseError::at(16, ParseErrorKind::CommandListTooLong(h.command_list_length)));
        }
        Ok(h)
    }

    /// The 24 header octets.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut c = Cursor::new(Vec::with_capacity(HEADER_LEN));
        self.write(&mut c).expect("writing to a Vec cannot fail");
        c.into_inner().try_into().expect("header is 24 bytes")
    }
}

fn bad_preamble(found: &[u8]) -> ParseError {
    let hex: Vec<String> = found.iter().map(|b| format!("{b:02X}")).collect();
    ParseError::at(0, ParseErrorKind::BadPreamble { found: hex.join(" ") })
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
        h.command_list_length = 65535;
        assert!(Header::parse(&h.to_bytes()).is_ok());
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
