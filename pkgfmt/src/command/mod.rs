//! E.4: the command list's type-length-value commands (Tables 67–77).
//!
//! > Table 67: "Type: Specifies the particular command. Length: Specifies
//! > the length in octets of the Value field. The total length of the
//! > command is Length + 8 octets. Value: Zero or more octets of parameters
//! > associated with the particular command type."
//!
//! [`Command`] is generated from the one Table 68 declaration in
//! [`crate::command_type`]; each row names the Rust type of its Value
//! field, and each such type implements `ValueLayout` in a file named
//! after its table.

mod attributes;
mod file;
mod filesystem_entry;
mod integer;
pub mod metadata;
mod move_file;
mod remove;
mod role;
mod text;
mod value;
mod version;

pub use attributes::RequiredAttributes;
pub(crate) use file::FileRecord;
pub use file::{FileCommand, EXTENDED_HEADER_LEN, SHA1_HASH_TYPE};
pub use filesystem_entry::{EntryKind, FilesystemEntry, ENTRY_DIRECTORY, ENTRY_SYMLINK};
pub use metadata::{FileMetadata, Timestamp};
pub use move_file::MoveCommand;
pub use remove::RemoveCommand;
pub use role::Role;
pub use version::VersionNumber;

pub use value::UNSAFE_FLAG;

pub use crate::command_type::{is_vendor_type, CommandType, VendorCommandType};

use binrw::binrw;

use crate::codec::{encode, Fixed, Reader, ValueError};
use crate::command_type::table_68;
use value::{ValueLayout, VendorLayout};

/// Table 67: the 8-octet Type/Length prefix of every command.
#[binrw]
#[brw(big)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tlv {
    pub kind: u32,
    pub length: u32,
}

impl Fixed for Tlv {
    const LEN: usize = 8;
    const WHAT: &'static str = "command Type/Length";
}

/// Generates [`Command`] from the rows of [`table_68!`].
macro_rules! command_enum {
    (@decode $t:ident, $value:ident, $variant:ident) => {
        Reader::new($value).read_whole::<()>($t.name()).map(|()| Command::$variant)
    };
    (@decode $t:ident, $value:ident, $variant:ident, $layout:ty) => {
        <$layout as ValueLayout>::decode($t, $value).map(Command::$variant)
    };
    (@pattern $variant:ident, $v:ident) => { Command::$variant };
    (@pattern $variant:ident, $v:ident, $layout:ty) => { Command::$variant($v) };
    (@encode $v:ident) => { Vec::new() };
    (@encode $v:ident, $layout:ty) => { <$layout as ValueLayout>::encode($v) };

    (
        standard { $( $(#[$doc:meta])* $variant:ident = $number:literal, $name:literal $(, $layout:ty)? ; )* }
        vendor { $( $(#[$vdoc:meta])* $vvariant:ident = $vnumber:literal @ $ident:literal, $vname:literal, $vlayout:ty ; )* }
    ) => {
        /// One command of the list, decoded. Unknown and other vendors' types
        /// keep their Value bytes so that a package round-trips and a vendor
        /// handler can run.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Command {
            $( $(#[$doc])* $variant $(($layout))?, )*
            $( $(#[$vdoc])* $vvariant($vlayout), )*
            /// Types 1000–9999 other than cpekit's own, Value kept verbatim.
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
                match self {
                    $( Command::$variant { .. } => $number, )*
                    $( Command::$vvariant(_) => $vnumber, )*
                    Command::Vendor { kind, .. } | Command::Unknown { kind, .. } => *kind,
                }
            }

            /// The Table 68 name, or cpekit's name for its vendor commands.
            pub fn name(&self) -> &'static str {
                match self {
                    $( Command::$vvariant(_) => $vname, )*
                    _ => CommandType::name_of(self.type_code()),
                }
            }

            /// Decode one Value field. Offsets in errors are relative to the Value.
            pub(crate) fn decode(kind: u32, value: &[u8]) -> Result<Command, ValueError> {
                let Some(t) = CommandType::from_u32(kind) else {
                    match VendorCommandType::recognise(kind, value) {
                        $( Some(v @ VendorCommandType::$vvariant) => return <$vlayout as VendorLayout>::decode(v, value).map(Command::$vvariant), )*
                        None => {}
                    }
                    let value = value.to_vec();
                    return Ok(if is_vendor_type(kind) { Command::Vendor { kind, value } } else { Command::Unknown { kind, value } });
                };
                match t {
                    $( CommandType::$variant => command_enum!(@decode t, value, $variant $(, $layout)?), )*
                }
            }

            /// Canonical Value bytes (fixed fields, then variable fields in order,
            /// no gaps).
            pub fn encode_value(&self) -> Vec<u8> {
                match self {
                    $( command_enum!(@pattern $variant, value $(, $layout)?) => command_enum!(@encode value $(, $layout)?), )*
                    $( Command::$vvariant(value) => <$vlayout as VendorLayout>::encode(value), )*
                    Command::Vendor { value, .. } | Command::Unknown { value, .. } => value.clone(),
                }
            }
        }
    };
}

table_68!(command_enum);

impl Command {
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
            Command::FilesystemEntry(e) => Some(e.flags),
            c => c.file().map(|f| f.flags),
        }
    }

    /// Bit 0 of Flags (Tables 69–71).
    pub fn is_unsafe(&self) -> bool {
        self.flags().is_some_and(|f| f & UNSAFE_FLAG != 0)
    }

    /// Canonical TLV bytes: Type, Length, Value.
    pub fn encode(&self) -> Vec<u8> {
        let value = self.encode_value();
        let mut out = encode(&Tlv { kind: self.type_code(), length: value.len() as u32 });
        out.extend_from_slice(&value);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ParseErrorKind;

    /// The generated enum: one variant per Table 68 row, each decoding
    /// its own Value and reporting its own number.
    #[test]
    fn one_command_per_table_68_type() {
        let file = FileCommand { flags: 1, path: "/f".into(), sha1: [3; 20], file_offset: 0, file_length: 9, metadata: None };
        let rm = RemoveCommand { flags: 0, path: "/r".into() };
        let mv = MoveCommand { flags: 0, src: "/s".into(), dst: "/d".into() };
        let v = VersionNumber(vec![1, 2]);
        let all = [
            Command::End,
            Command::ExtractFile(file.clone()),
            Command::ExtractVersionedFile(file.clone()),
            Command::AddFile(file.clone()),
            Command::AddVersionedFile(file),
            Command::RemoveFile(rm.clone()),
            Command::RemoveVersionedFile(rm.clone()),
            Command::RemoveSubTree(rm),
            Command::MoveFile(mv.clone()),
            Command::MoveVersionedFile(mv),
            Command::Version("1.0".into()),
            Command::Description("d".into()),
            Command::RecoverableTimeout(1),
            Command::UnrecoverableTimeout(2),
            Command::InitialTimeout(3),
            Command::InitialActivityTimeout(4),
            Command::Reboot,
            Command::FormatFileSystem,
            Command::MinimumVersion(v.clone()),
            Command::MaximumVersion(v),
            Command::Role(Role::WebContent),
            Command::MinimumNonVolatileStorage(5),
            Command::MinimumVolatileStorage(6),
            Command::RequiredAttributes(RequiredAttributes { defining_entity: 0, class: 1, attributes: vec![2] }),
        ];
        assert_eq!(all.len(), CommandType::ALL.len());
        for (c, t) in all.iter().zip(CommandType::ALL) {
            assert_eq!(c.type_code(), t as u32);
            assert_eq!(c.name(), t.name());
            assert_eq!(Command::decode(t as u32, &c.encode_value()).unwrap(), *c);
            assert_eq!(&c.encode()[..4], &(t as u32).to_be_bytes());
        }
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
