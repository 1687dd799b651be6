//! E.4.7, Table 72 and E.4.12, Table 76 — a Value of one 32-bit integer.
//!
//! > Table 72, Timeout: "The timeout value in seconds relative to the
//! > beginning of the package download operation. A value of 0 (zero)
//! > indicates an infinite timeout."
//! > Table 76, Storage Size: "The minimum required storage in bytes of the
//! > type indicated by the command."

use std::io::Cursor;

use binrw::{binrw, BinRead, BinResult};

use super::value::ValueLayout;
use crate::codec::{encode, Reader, ValueError, WholeValue};
use crate::command_type::CommandType;

/// Tables 72 and 76: the Value is exactly one big-endian 32-bit integer.
#[binrw]
#[brw(big)]
struct Integer {
    value: u32,
}

impl WholeValue for Integer {
    const EXPECTED: &'static str = "4";
    fn read(cursor: &mut Cursor<&[u8]>, _len: usize) -> BinResult<Self> {
        <Integer as BinRead>::read(cursor)
    }
}

/// Timeout seconds (Table 72) or storage bytes (Table 76).
impl ValueLayout for u32 {
    fn decode(t: CommandType, value: &[u8]) -> Result<Self, ValueError> {
        Reader::new(value).read_whole::<Integer>(t.name()).map(|i| i.value)
    }

    fn encode(&self) -> Vec<u8> {
        encode(&Integer { value: *self })
    }
}
