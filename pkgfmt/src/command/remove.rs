//! E.4.4, Table 70 — Value format for the remove commands.

use binrw::binrw;

use super::{field, read_fixed, utf8, write_fixed, ValueError, UNSAFE_FLAG};

#[binrw]
#[brw(big)]
struct RemoveFields {
    flags: u32,
    path_offset: u32,
    path_length: u32,
}
const FIXED: usize = 12;

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

    pub(crate) fn decode(value: &[u8]) -> Result<Self, ValueError> {
        let f: RemoveFields = read_fixed(value, FIXED, "Remove command fixed fields")?;
        let path = field(value, FIXED, "Path", f.path_offset, f.path_length)?;
        Ok(RemoveCommand { flags: f.flags, path: utf8(path, "Path").map_err(|(o, k)| (f.path_offset + o, k))? })
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = write_fixed(&RemoveFields { flags: self.flags, path_offset: FIXED as u32, path_length: self.path.len() as u32 });
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
        assert_eq!(RemoveCommand::decode(&b).unwrap(), r);
        let mut bad = b.clone();
        bad[8..12].copy_from_slice(&9u32.to_be_bytes());
        assert!(matches!(RemoveCommand::decode(&bad).unwrap_err().1, ParseErrorKind::FieldOutOfBounds { .. }));
        assert!(RemoveCommand::decode(&b[..11]).is_err());
    }
}
