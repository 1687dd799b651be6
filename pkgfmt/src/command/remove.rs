//! E.4.4, Table 70 — Value format for the remove commands: Flags, Path
//! Offset ("from the beginning of the Value field"), Path Length, Path.

use binrw::binrw;

use super::value::{utf8, ValueLayout, UNSAFE_FLAG};
use crate::codec::{encode, Fixed, Reader, ValueError};
use crate::command_type::CommandType;

/// The three fixed 32-bit fields of Table 70.
#[binrw]
#[brw(big)]
struct RemoveFields {
    flags: u32,
    path_offset: u32,
    path_length: u32,
}

impl Fixed for RemoveFields {
    const LEN: usize = 12;
    const WHAT: &'static str = "Remove command fixed fields";
}

/// Remove File, Remove Versioned File, Remove Sub-Tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoveCommand {
    /// Bit 0: Unsafe Flag; other bits reserved (kept for round trips).
    pub flags: u32,
    /// Path of the file or directory.
    pub path: String,
}

impl RemoveCommand {
    pub fn is_unsafe(&self) -> bool {
        self.flags & UNSAFE_FLAG != 0
    }
}

impl ValueLayout for RemoveCommand {
    fn decode(_: CommandType, value: &[u8]) -> Result<Self, ValueError> {
        let mut r = Reader::new(value);
        let f: RemoveFields = r.read()?;
        let path = r.field("Path", f.path_offset, f.path_length)?;
        Ok(RemoveCommand { flags: f.flags, path: utf8(path, "Path").map_err(|(o, k)| (f.path_offset as usize + o, k))? })
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = encode(&RemoveFields { flags: self.flags, path_offset: RemoveFields::LEN as u32, path_length: self.path.len() as u32 });
        out.extend_from_slice(self.path.as_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ParseErrorKind;

    #[test]
    fn round_trip_and_bounds() {
        let r = RemoveCommand { flags: 0, path: "/var/old".into() };
        let b = r.encode();
        assert_eq!(b.len(), 20);
        assert_eq!(RemoveCommand::decode(CommandType::RemoveFile, &b).unwrap(), r);
        let mut bad = b.clone();
        bad[8..12].copy_from_slice(&9u32.to_be_bytes());
        assert!(matches!(RemoveCommand::decode(CommandType::RemoveFile, &bad).unwrap_err().1, ParseErrorKind::FieldOutOfBounds { .. }));
        assert!(RemoveCommand::decode(CommandType::RemoveFile, &b[..11]).is_err());
    }
}
