//! E.4.13, Table 77 — Value format for the required attributes command:
//! Defining Entity, Class (32-bit integers) and an Attribute Array ("A
//! variable-length array attribute, where each attribute is an enumeration
//! of a particular allowed value for the particular class").

use std::io::Cursor;

use binrw::{binrw, BinRead, BinResult};

use super::value::ValueLayout;
use crate::codec::{encode, Reader, ValueError, WholeValue};
use crate::command_type::CommandType;

/// Table 77. Defining Entity 0 = standard definitions (none exist in Issue
/// 1), `0xFF` + OUI = vendor-specific; unknown entities or classes are to be
/// ignored by the recipient (the installer's job, not the codec's).
///
/// The Value is 8 octets and `(len - 8) / 4` attributes; a length that is
/// not 8 plus a multiple of 4 leaves octets over, which the codec's `Reader` rejects.
#[binrw]
#[brw(big)]
#[br(import(len: usize))]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequiredAttributes {
    pub defining_entity: u32,
    pub class: u32,
    /// Allowed values; the device meets the requirement if it matches any.
    #[br(count = len.saturating_sub(8) / 4)]
    pub attributes: Vec<u32>,
}

impl RequiredAttributes {
    /// Vendor OUI when the defining entity is vendor-specific.
    pub fn vendor_oui(&self) -> Option<[u8; 3]> {
        let b = self.defining_entity.to_be_bytes();
        (b[0] == 0xFF).then_some([b[1], b[2], b[3]])
    }
}

impl WholeValue for RequiredAttributes {
    const EXPECTED: &'static str = "8 + a multiple of 4";
    fn read(cursor: &mut Cursor<&[u8]>, len: usize) -> BinResult<Self> {
        <RequiredAttributes as BinRead>::read_args(cursor, (len,))
    }
}

impl ValueLayout for RequiredAttributes {
    fn decode(t: CommandType, value: &[u8]) -> Result<Self, ValueError> {
        Reader::new(value).read_whole(t.name())
    }

    fn encode(&self) -> Vec<u8> {
        encode(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lengths() {
        let a = RequiredAttributes { defining_entity: 0xFF00_0D2B, class: 2, attributes: vec![5, 6] };
        let b = a.encode();
        assert_eq!(b.len(), 16);
        assert_eq!(RequiredAttributes::decode(CommandType::RequiredAttributes, &b).unwrap(), a);
        assert_eq!(a.vendor_oui(), Some([0, 0x0D, 0x2B]));
        assert!(RequiredAttributes::decode(CommandType::RequiredAttributes, &b[..7]).is_err());
        assert!(RequiredAttributes::decode(CommandType::RequiredAttributes, &b[..10]).is_err());
        let e = RequiredAttributes::decode(CommandType::RequiredAttributes, &b[..9]).unwrap_err();
        assert_eq!(e, (0, crate::error::ParseErrorKind::BadLength { command: "Required Attributes", expected: "8 + a multiple of 4", found: 9 }));
        let bare = RequiredAttributes::decode(CommandType::RequiredAttributes, &b[..8]).unwrap();
        assert!(bare.attributes.is_empty());
    }
}
