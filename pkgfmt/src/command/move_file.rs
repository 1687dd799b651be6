//! E.4.5, Table 71 — Value format for the move commands: Flags, Source
//! Path Offset and Length, Destination Path Offset and Length (offsets
//! "from the beginning of the Value field"), then the two paths.

use binrw::binrw;

use super::value::{utf8, ValueLayout, UNSAFE_FLAG};
use crate::codec::{encode, Fixed, Reader, ValueError};
use crate::command_type::CommandType;

/// The five fixed 32-bit fields of Table 71.
#[binrw]
#[brw(big)]
struct MoveFields {
    flags: u32,
    src_offset: u32,
    src_length: u32,
    dst_offset: u32,
    dst_length: u32,
}

impl Fixed for MoveFields {
    const LEN: usize = 20;
    const WHAT: &'static str = "Move command fixed fields";
}

/// Move File, Move Versioned File.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MoveCommand {
    /// Bit 0: Unsafe Flag; other bits reserved (kept for round trips).
    pub flags: u32,
    /// Source Path.
    pub src: String,
    /// Destination Path.
    pub dst: String,
}

impl MoveCommand {
    pub fn is_unsafe(&self) -> bool {
        self.flags & UNSAFE_FLAG != 0
    }
}

impl ValueLayout for MoveCommand {
    fn decode(_: CommandType, value: &[u8]) -> Result<Self, ValueError> {
        let mut r = Reader::new(value);
        let f: MoveFields = r.read()?;
        let src = r.field("Source Path", f.src_offset, f.src_length)?;
        let dst = r.field("Destination Path", f.dst_offset, f.dst_length)?;
        Ok(MoveCommand {
            flags: f.flags,
            src: utf8(src, "Source Path").map_err(|(o, k)| (f.src_offset as usize + o, k))?,
            dst: utf8(dst, "Destination Path").map_err(|(o, k)| (f.dst_offset as usize + o, k))?,
        })
    }

    /// Canonical layout: fixed fields, Source Path, Destination Path.
    fn encode(&self) -> Vec<u8> {
        let fixed = MoveFields::LEN as u32;
        let src_length = self.src.len() as u32;
        let mut out =
            encode(&MoveFields { flags: self.flags, src_offset: fixed, src_length, dst_offset: fixed + src_length, dst_length: self.dst.len() as u32 });
        out.extend_from_slice(self.src.as_bytes());
        out.extend_from_slice(self.dst.as_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ParseErrorKind;

    #[test]
    fn round_trip_and_bounds() {
        let m = MoveCommand { flags: 1, src: "/a/x.001".into(), dst: "/b/y".into() };
        let b = m.encode();
        assert_eq!(b.len(), 20 + 8 + 4);
        assert_eq!(MoveCommand::decode(CommandType::MoveFile, &b).unwrap(), m);
        let mut bad = b.clone();
        bad[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(MoveCommand::decode(CommandType::MoveFile, &bad).unwrap_err().1, ParseErrorKind::FieldOutOfBounds { field: "Destination Path", .. }));
    }
}
