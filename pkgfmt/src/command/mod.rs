//! E.4: the command list's type-length-value commands (Tables 67–77).
//!
//! Each command is `Type` (u32), `Length` (u32) and `Length` octets of
//! Value (Table 67). One file per Value layout, named after its table.

mod attributes;
mod file;
mod move_file;
mod remove;
mod role;
mod version;

pub use attributes::RequiredAttributes;
pub use file::{FileCommand, SHA1_HASH_TYPE};
pub use move_file::MoveCommand;
pub use remove::RemoveCommand;
pub use role::Role;
pub use version::VersionNumber;

use binrw::{binrw, BinRead, BinWrite};
use std::io::Cursor;

use crate::error::ParseErrorKind;

/// Bit 0 of the Flags field of Tables 69–71: the Unsafe Flag.
pub const UNSAFE_FLAG: u32 = 1;

/// Table 67: the 8-octet Type/Length prefix of every command.
#[binrw]
#[brw(big)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tlv {
    pub kind: u32,
    pub length: u32,
}

pub(crate) const TLV_LEN: usize = 8;

/// An error inside one Value field: offset relative to the Value start.
pub(crate) type ValueError = (u32, ParseErrorKind);

/// Table 68 — Command Type summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum CommandType {
    End = 0,
    ExtractFile = 1,
    ExtractVersionedFile = 2,
    AddFile = 3,
    AddVersionedFile = 4,
    RemoveFile = 5,
    RemoveVersionedFile = 6,
    RemoveSubTree = 7,
    MoveFile = 8,
    MoveVersionedFile = 9,
    Version = 10,
    Description = 11,
    RecoverableTimeout = 12,
    UnrecoverableTimeout = 13,
    InitialTimeout = 14,
    InitialActivityTimeout = 15,
    Reboot = 16,
    FormatFileSystem = 17,
    MinimumVersion = 18,
    MaximumVersion = 19,
    Role = 20,
    MinimumNonVolatileStorage = 21,
    MinimumVolatileStorage = 22,
    RequiredAttributes = 25,
}

impl CommandType {
    /// Every type defined by Table 68, in numeric order.
    pub const ALL: [CommandType; 24] = [
        Self::End,
        Self::ExtractFile,
        Self::ExtractVersionedFile,
        Self::AddFile,
        Self::AddVersionedFile,
        Self::RemoveFile,
        Self::RemoveVersionedFile,
        Self::RemoveSubTree,
        Self::MoveFile,
        Self::MoveVersionedFile,
        Self::Version,
        Self::Description,
        Self::RecoverableTimeout,
        Self::UnrecoverableTimeout,
        Self::InitialTimeout,
        Self::InitialActivityTimeout,
        Self::Reboot,
        Self::FormatFileSystem,
        Self::MinimumVersion,
        Self::MaximumVersion,
        Self::Role,
        Self::MinimumNonVolatileStorage,
        Self::MinimumVolatileStorage,
        Self::RequiredAttributes,
    ];

    pub fn from_u32(v: u32) -> Option<CommandType> {
        Self::ALL.iter().copied().find(|t| *t as u32 == v)
    }

    /// The Table 68 command name.
    pub fn name(self) -> &'static str {
        match self {
            Self::End => "End",
            Self::ExtractFile => "Extract File",
            Self::ExtractVersionedFile => "Extract Versioned File",
            Self::AddFile => "Add File",
            Self::AddVersionedFile => "Add Versioned File",
            Self::RemoveFile => "Remove File",
            Self::RemoveVersionedFile => "Remove Versioned File",
            Self::RemoveSubTree => "Remove Sub-Tree",
            Self::MoveFile => "Move File",
            Self::MoveVersionedFile => "Move Versioned File",
            Self::Version => "Version",
            Self::Description => "Description",
            Self::RecoverableTimeout => "Recoverable Timeout",
            Self::UnrecoverableTimeout => "Unrecoverable Timeout",
            Self::InitialTimeout => "Initial Timeout",
            Self::InitialActivityTimeout => "Initial Activity Timeout",
            Self::Reboot => "Reboot",
            Self::FormatFileSystem => "Format File System",
            Self::MinimumVersion => "Minimum Version",
            Self::MaximumVersion => "Maximum Version",
            Self::Role => "Role",
            Self::MinimumNonVolatileStorage => "Minimum Non-Volatile Storage",
            Self::MinimumVolatileStorage => "Minimum Volatile Storage Size",
            Self::RequiredAttributes => "Required Attributes",
        }
    }

    /// Name for any numeric type, including reserved and vendor ranges.
    pub fn name_of(v: u32) -> &'static str {
        match Self::from_u32(v) {
            Some(t) => t.name(),
            None if is_vendor_type(v) => "Vendor-specific",
            None => "Unknown",
        }
    }
}

/// Table 68: types 1000–9999 are vendor-specific commands.
pub fn is_vendor_type(v: u32) -> bool {
    (1000..=9999).contains(&v)
}

/// One command of the list, decoded. Unknown and vendor types keep their
/// Value bytes so that a package round-trips and a vendor handler can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// E.4.2: stop parsing the command list.
    End,
    /// E.4.3: replace any existing file.
    ExtractFile(FileCommand),
    /// E.4.3: remove every file with the same base name, then install.
    ExtractVersionedFile(FileCommand),
    /// E.4.3: install only if no file of that name exists.
    AddFile(FileCommand),
    /// E.4.3: install only if no file with that base name exists.
    AddVersionedFile(FileCommand),
    /// E.4.4
    RemoveFile(RemoveCommand),
    /// E.4.4
    RemoveVersionedFile(RemoveCommand),
    /// E.4.4
    RemoveSubTree(RemoveCommand),
    /// E.4.5
    MoveFile(MoveCommand),
    /// E.4.5
    MoveVersionedFile(MoveCommand),
    /// E.4.6: UTF-8 package version, informational.
    Version(String),
    /// E.4.6: UTF-8 description, informational.
    Description(String),
    /// E.4.7, Table 72: seconds from download start, 0 = infinite.
    RecoverableTimeout(u32),
    UnrecoverableTimeout(u32),
    InitialTimeout(u32),
    InitialActivityTimeout(u32),
    /// E.4.8: must be the last command other than End.
    Reboot,
    /// E.4.9
    FormatFileSystem,
    /// E.4.10, Table 74
    MinimumVersion(VersionNumber),
    MaximumVersion(VersionNumber),
    /// E.4.11, Table 75
    Role(Role),
    /// E.4.12, Table 76: bytes.
    MinimumNonVolatileStorage(u32),
    MinimumVolatileStorage(u32),
    /// E.4.13, Table 77
    RequiredAttributes(RequiredAttributes),
    /// Types 1000–9999, Value kept verbatim.
    Vendor {
        kind: u32,
        value: Vec<u8>,
    },
    /// Reserved or undefined types: "MUST ignore the command and continue
    /// parsing ... using the Length value to skip" (E.4). Value kept verbatim.
    Unknown {
        kind: u32,
        value: Vec<u8>,
    },
}

impl Command {
    /// The numeric Table 68 type.
    pub fn type_code(&self) -> u32 {
        use CommandType as T;
        let t = match self {
            Command::End => T::End,
            Command::ExtractFile(_) => T::ExtractFile,
            Command::ExtractVersionedFile(_) => T::ExtractVersionedFile,
            Command::AddFile(_) => T::AddFile,
            Command::AddVersionedFile(_) => T::AddVersionedFile,
            Command::RemoveFile(_) => T::RemoveFile,
            Command::RemoveVersionedFile(_) => T::RemoveVersionedFile,
            Command::RemoveSubTree(_) => T::RemoveSubTree,
            Command::MoveFile(_) => T::MoveFile,
            Command::MoveVersionedFile(_) => T::MoveVersionedFile,
            Command::Version(_) => T::Version,
            Command::Description(_) => T::Description,
            Command::RecoverableTimeout(_) => T::RecoverableTimeout,
            Command::UnrecoverableTimeout(_) => T::UnrecoverableTimeout,
            Command::InitialTimeout(_) => T::InitialTimeout,
            Command::InitialActivityTimeout(_) => T::InitialActivityTimeout,
            Command::Reboot => T::Reboot,
            Command::FormatFileSystem => T::FormatFileSystem,
            Command::MinimumVersion(_) => T::MinimumVersion,
            Command::MaximumVersion(_) => T::MaximumVersion,
            Command::Role(_) => T::Role,
            Command::MinimumNonVolatileStorage(_) => T::MinimumNonVolatileStorage,
            Command::MinimumVolatileStorage(_) => T::MinimumVolatileStorage,
            Command::RequiredAttributes(_) => T::RequiredAttributes,
            Command::Vendor { kind, .. } | Command::Unknown { kind, .. } => return *kind,
        };
        t as u32
    }

    /// The Table 68 name.
    pub fn name(&self) -> &'static str {
        CommandType::name_of(self.type_code())
    }

    /// The payload file of an Extract/Add command.
    pub fn file(&self) -> Option<&FileCommand> {
        match self {
            Command::ExtractFile(f) | Command::ExtractVersionedFile(f) | Command::AddFile(f) | Command::AddVersionedFile(f) => Some(f),
            _ => None,
        }
    }

    /// Mutable access to the payload file of an Extract/Add command.
    pub fn file_mut(&mut self) -> Option<&mut FileCommand> {
        match self {
            Command::ExtractFile(f) | Command::ExtractVersionedFile(f) | Command::AddFile(f) | Command::AddVersionedFile(f) => Some(f),
            _ => None,
        }
    }

    /// The Flags field of Tables 69–71, if this command has one.
    pub fn flags(&self) -> Option<u32> {
        match self {
            Command::RemoveFile(r) | Command::RemoveVersionedFile(r) | Command::RemoveSubTree(r) => Some(r.flags),
            Command::MoveFile(m) | Command::MoveVersionedFile(m) => Some(m.flags),
            c => c.file().map(|f| f.flags),
        }
    }

    /// Bit 0 of Flags (Tables 69–71).
    pub fn is_unsafe(&self) -> bool {
        self.flags().is_some_and(|f| f & UNSAFE_FLAG != 0)
    }

    /// Decode one Value field. Offsets in errors are relative to the Value.
    pub(crate) fn decode(kind: u32, value: &[u8]) -> Result<Command, ValueError> {
        use CommandType as T;
        let Some(t) = CommandType::from_u32(kind) else {
            let value = value.to_vec();
            return Ok(if is_vendor_type(kind) { Command::Vendor { kind, value } } else { Command::Unknown { kind, value } });
        };
        Ok(match t {
            T::End => exact_empty(t, value).map(|_| Command::End)?,
            T::Reboot => exact_empty(t, value).map(|_| Command::Reboot)?,
            T::FormatFileSystem => exact_empty(t, value).map(|_| Command::FormatFileSystem)?,
            T::ExtractFile => Command::ExtractFile(FileCommand::decode(value)?),
            T::ExtractVersionedFile => Command::ExtractVersionedFile(FileCommand::decode(value)?),
            T::AddFile => Command::AddFile(FileCommand::decode(value)?),
            T::AddVersionedFile => Command::AddVersionedFile(FileCommand::decode(value)?),
            T::RemoveFile => Command::RemoveFile(RemoveCommand::decode(value)?),
            T::RemoveVersionedFile => Command::RemoveVersionedFile(RemoveCommand::decode(value)?),
            T::RemoveSubTree => Command::RemoveSubTree(RemoveCommand::decode(value)?),
            T::MoveFile => Command::MoveFile(MoveCommand::decode(value)?),
            T::MoveVersionedFile => Command::MoveVersionedFile(MoveCommand::decode(value)?),
            T::Version => Command::Version(utf8(value, "Version")?),
            T::Description => Command::Description(utf8(value, "Description")?),
            T::RecoverableTimeout => Command::RecoverableTimeout(u32_value(t, value)?),
            T::UnrecoverableTimeout => Command::UnrecoverableTimeout(u32_value(t, value)?),
            T::InitialTimeout => Command::InitialTimeout(u32_value(t, value)?),
            T::InitialActivityTimeout => Command::InitialActivityTimeout(u32_value(t, value)?),
            T::MinimumVersion => Command::MinimumVersion(VersionNumber::decode(t.name(), value)?),
            T::MaximumVersion => Command::MaximumVersion(VersionNumber::decode(t.name(), value)?),
            T::Role => Command::Role(Role::decode(value)?),
            T::MinimumNonVolatileStorage => Command::MinimumNonVolatileStorage(u32_value(t, value)?),
            T::MinimumVolatileStorage => Command::MinimumVolatileStorage(u32_value(t, value)?),
            T::RequiredAttributes => Command::RequiredAttributes(RequiredAttributes::decode(value)?),
        })
    }

    /// Canonical Value bytes (fixed fields, then variable fields in order,
    /// no gaps).
    pub fn encode_value(&self) -> Vec<u8> {
        match self {
            Command::End | Command::Reboot | Command::FormatFileSystem => Vec::new(),
            Command::ExtractFile(f) | Command::ExtractVersionedFile(f) | Command::AddFile(f) | Command::AddVersionedFile(f) => f.encode(),
            Command::RemoveFile(r) | Command::RemoveVersionedFile(r) | Command::RemoveSubTree(r) => r.encode(),
            Command::MoveFile(m) | Command::MoveVersionedFile(m) => m.encode(),
            Command::Version(s) | Command::Description(s) => s.as_bytes().to_vec(),
            Command::RecoverableTimeout(v)
            | Command::UnrecoverableTimeout(v)
            | Command::InitialTimeout(v)
            | Command::InitialActivityTimeout(v)
            | Command::MinimumNonVolatileStorage(v)
            | Command::MinimumVolatileStorage(v) => v.to_be_bytes().to_vec(),
            Command::MinimumVersion(v) | Command::MaximumVersion(v) => v.encode(),
            Command::Role(r) => r.encode(),
            Command::RequiredAttributes(a) => a.encode(),
            Command::Vendor { value, .. } | Command::Unknown { value, .. } => value.clone(),
        }
    }

    /// Canonical TLV bytes: Type, Length, Value.
    pub fn encode(&self) -> Vec<u8> {
        let value = self.encode_value();
        let mut c = Cursor::new(Vec::with_capacity(TLV_LEN + value.len()));
        Tlv { kind: self.type_code(), length: value.len() as u32 }.write(&mut c).expect("writing to a Vec cannot fail");
        let mut out = c.into_inner();
        out.extend_from_slice(&value);
        out
    }
}

pub(crate) fn read_tlv(bytes: &[u8]) -> Tlv {
    Tlv::read(&mut Cursor::new(bytes)).expect("caller checked 8 bytes")
}

/// Read fixed big-endian fields with binrw after checking they are present.
pub(crate) fn read_fixed<T>(value: &[u8], fixed: usize, what: &'static str) -> Result<T, ValueError>
where
    T: for<'a> BinRead<Args<'a> = ()>,
{
    if value.len() < fixed {
        return Err((value.len() as u32, ParseErrorKind::Truncated { what, needed: fixed as u64, available: value.len() as u64 }));
    }
    Ok(T::read_be(&mut Cursor::new(&value[..fixed])).expect("length checked"))
}

/// Write fixed big-endian fields with binrw.
pub(crate) fn write_fixed<T>(fields: &T) -> Vec<u8>
where
    T: for<'a> BinWrite<Args<'a> = ()>,
{
    let mut c = Cursor::new(Vec::new());
    fields.write_be(&mut c).expect("writing to a Vec cannot fail");
    c.into_inner()
}

/// Locate a variable field through its offset/length pair (Tables 69–71),
/// bounded by the Value and never overlapping the fixed fields.
pub(crate) fn field<'a>(value: &'a [u8], fixed: usize, name: &'static str, offset: u32, length: u32) -> Result<&'a [u8], ValueError> {
    let out_of_bounds = || (offset, ParseErrorKind::FieldOutOfBounds { field: name, offset, length, value_len: value.len() as u32 });
    if (offset as usize) < fixed && length > 0 {
        return Err((offset, ParseErrorKind::FieldOverlapsFixed { field: name, offset, fixed: fixed as u32 }));
    }
    let end = (offset as u64) + (length as u64);
    if end > value.len() as u64 {
        return Err(out_of_bounds());
    }
    Ok(&value[offset as usize..end as usize])
}

pub(crate) fn utf8(bytes: &[u8], field: &'static str) -> Result<String, ValueError> {
    String::from_utf8(bytes.to_vec()).map_err(|e| (e.utf8_error().valid_up_to() as u32, ParseErrorKind::NotUtf8 { field }))
}

fn exact_empty(t: CommandType, value: &[u8]) -> Result<(), ValueError> {
    if value.is_empty() {
        Ok(())
    } else {
        Err((0, ParseErrorKind::BadLength { command: t.name(), expected: "0", found: value.len() as u32 }))
    }
}

fn u32_value(t: CommandType, value: &[u8]) -> Result<u32, ValueError> {
    if value.len() != 4 {
        return Err((0, ParseErrorKind::BadLength { command: t.name(), expected: "4", found: value.len() as u32 }));
    }
    Ok(u32::from_be_bytes(value.try_into().expect("4 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_68_type_round_trips_its_number_and_name() {
        for t in CommandType::ALL {
            assert_eq!(CommandType::from_u32(t as u32), Some(t));
            assert_ne!(t.name(), "Unknown");
        }
        assert_eq!(CommandType::from_u32(23), None);
        assert_eq!(CommandType::from_u32(24), None);
        assert_eq!(CommandType::name_of(1000), "Vendor-specific");
        assert_eq!(CommandType::name_of(9999), "Vendor-specific");
        assert_eq!(CommandType::name_of(10000), "Unknown");
        assert_eq!(CommandType::name_of(24), "Unknown");
    }

    #[test]
    fn zero_length_commands_reject_values() {
        for t in [0u32, 16, 17] {
            let e = Command::decode(t, &[0]).unwrap_err();
            assert!(matches!(e.1, ParseErrorKind::BadLength { expected: "0", .. }));
        }
    }

    #[test]
    fn unknown_and_vendor_kept_verbatim() {
        assert_eq!(Command::decode(24, b"abc").unwrap(), Command::Unknown { kind: 24, value: b"abc".to_vec() });
        let v = Command::decode(4242, b"xyz").unwrap();
        assert_eq!(v, Command::Vendor { kind: 4242, value: b"xyz".to_vec() });
        assert_eq!(&v.encode()[..8], &[0, 0, 0x10, 0x92, 0, 0, 0, 3]);
    }

    #[test]
    fn timeouts_and_storage_need_four_bytes() {
        assert_eq!(Command::decode(12, &[0, 0, 1, 0]).unwrap(), Command::RecoverableTimeout(256));
        assert_eq!(Command::decode(21, &[0, 1, 0, 0]).unwrap(), Command::MinimumNonVolatileStorage(65536));
        assert!(Command::decode(13, &[0, 0, 1]).is_err());
        assert!(Command::decode(22, &[0, 0, 1, 0, 0]).is_err());
    }

    #[test]
    fn text_must_be_utf8() {
        assert_eq!(Command::decode(11, "Grüße".as_bytes()).unwrap(), Command::Description("Grüße".into()));
        let e = Command::decode(10, &[b'1', 0xff]).unwrap_err();
        assert_eq!(e.0, 1);
    }
}
