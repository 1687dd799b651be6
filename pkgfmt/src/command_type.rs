//! E.4.1, Table 68 — Command Type summary, declared once.
//!
//! > "The specific commands defined by this specification are listed in
//! > Table 68." — Type, Command name; 23 and 24 are reserved, and
//! > "1000-9999: Vendor-specific commands".
//!
//! `table_68!` is the only list of command types: each row gives the
//! variant, its Type number, its Table 68 name and the Rust type of its
//! Value field (the layouts of Tables 69–77; none for commands whose
//! Length "MUST be 0"). Like rustls's `enum_builder!`, a row is written
//! once and every list is generated from it: here [`CommandType`] with
//! `ALL`, `name()` and the conversions to and from `u32`, and in the
//! `command` module the `Command` enum with its decoding and encoding.
//! This module only names the Value types; it does not depend on them.
//!
//! The same declaration lists the vendor-specific commands cpekit itself
//! defines in the 1000–9999 range ([`VendorCommandType`]). A vendor number
//! alone identifies nothing — another vendor may use the same number for
//! something else — so each such row also gives the identifier its Value
//! starts with. A Value of that type that does not start with it is
//! another vendor's command and stays an opaque `Command::Vendor`, and a
//! recipient that does not know the command skips it by its Length (E.4).

/// Calls `$generate! { standard { rows } vendor { rows } }`: the rows of
/// Table 68, `Variant = Type, "Command name" [, ValueType];`, then cpekit's
/// vendor-specific commands, `Variant = Type @ b"identifier", "name", ValueType;`,
/// each with its docs.
macro_rules! table_68 {
    ($generate:ident) => {
        $generate! {
            standard {
            /// E.4.2: stop parsing the command list.
            End = 0, "End";
            /// E.4.3: replace any existing file.
            ExtractFile = 1, "Extract File", FileCommand;
            /// E.4.3: remove every file with the same base name, then install.
            ExtractVersionedFile = 2, "Extract Versioned File", FileCommand;
            /// E.4.3: install only if no file of that name exists.
            AddFile = 3, "Add File", FileCommand;
            /// E.4.3: install only if no file with that base name exists.
            AddVersionedFile = 4, "Add Versioned File", FileCommand;
            /// E.4.4
            RemoveFile = 5, "Remove File", RemoveCommand;
            /// E.4.4
            RemoveVersionedFile = 6, "Remove Versioned File", RemoveCommand;
            /// E.4.4
            RemoveSubTree = 7, "Remove Sub-Tree", RemoveCommand;
            /// E.4.5
            MoveFile = 8, "Move File", MoveCommand;
            /// E.4.5
            MoveVersionedFile = 9, "Move Versioned File", MoveCommand;
            /// E.4.6: UTF-8 package version, informational.
            Version = 10, "Version", String;
            /// E.4.6: UTF-8 description, informational.
            Description = 11, "Description", String;
            /// E.4.7, Table 72: seconds from download start, 0 = infinite.
            RecoverableTimeout = 12, "Recoverable Timeout", u32;
            /// E.4.7, Table 72: seconds from download start, 0 = infinite.
            UnrecoverableTimeout = 13, "Unrecoverable Timeout", u32;
            /// E.4.7, Table 72: seconds from download start, 0 = infinite.
            InitialTimeout = 14, "Initial Timeout", u32;
            /// E.4.7, Table 72: seconds since data last arrived, 0 = infinite.
            InitialActivityTimeout = 15, "Initial Activity Timeout", u32;
            /// E.4.8: must be the last command other than End.
            Reboot = 16, "Reboot";
            /// E.4.9
            FormatFileSystem = 17, "Format File System";
            /// E.4.10, Table 74
            MinimumVersion = 18, "Minimum Version", VersionNumber;
            /// E.4.10, Table 74
            MaximumVersion = 19, "Maximum Version", VersionNumber;
            /// E.4.11, Table 75
            Role = 20, "Role", Role;
            /// E.4.12, Table 76: bytes.
            MinimumNonVolatileStorage = 21, "Minimum Non-Volatile Storage", u32;
            /// E.4.12, Table 76: bytes.
            MinimumVolatileStorage = 22, "Minimum Volatile Storage Size", u32;
            /// E.4.13, Table 77
            RequiredAttributes = 25, "Required Attributes", RequiredAttributes;
            }
            vendor {
            /// cpekit: a symbolic link or a directory, with its owner and mode
            /// (`command::FilesystemEntry`).
            FilesystemEntry = 2069 @ b"cpekit/fsentry/1", "cpekit Filesystem Entry", FilesystemEntry;
            }
        }
    };
}
pub(crate) use table_68;

/// Generates [`CommandType`] and [`VendorCommandType`] from the rows of [`table_68!`].
macro_rules! command_type_enum {
    (
        standard { $( $(#[$doc:meta])* $variant:ident = $number:literal, $name:literal $(, $value:ty)? ; )* }
        vendor { $( $(#[$vdoc:meta])* $vvariant:ident = $vnumber:literal @ $ident:literal, $vname:literal, $vvalue:ty ; )* }
    ) => {
        /// Table 68 — Command Type summary.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum CommandType {
            $( $(#[$doc])* $variant = $number, )*
        }

        impl CommandType {
            /// Every type defined by Table 68, in numeric order.
            pub const ALL: [CommandType; [$($number),*].len()] = [$(CommandType::$variant),*];

            pub fn from_u32(v: u32) -> Option<CommandType> {
                match v {
                    $( $number => Some(CommandType::$variant), )*
                    _ => None,
                }
            }

            /// The Table 68 command name.
            pub fn name(self) -> &'static str {
                match self {
                    $( CommandType::$variant => $name, )*
                }
            }
        }

        /// Vendor-specific commands (Table 68: 1000–9999) that cpekit defines,
        /// each recognised by its Type *and* the identifier its Value starts with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum VendorCommandType {
            $( $(#[$vdoc])* $vvariant, )*
        }

        impl VendorCommandType {
            /// Every vendor-specific command cpekit defines.
            pub const ALL: [VendorCommandType; [$($vnumber),*].len()] = [$(VendorCommandType::$vvariant),*];

            /// Its Table 68 Type (in 1000–9999).
            pub fn number(self) -> u32 {
                match self {
                    $( VendorCommandType::$vvariant => $vnumber, )*
                }
            }

            /// The octets its Value starts with.
            pub fn identifier(self) -> &'static [u8] {
                match self {
                    $( VendorCommandType::$vvariant => $ident, )*
                }
            }

            /// Its name.
            pub fn name(self) -> &'static str {
                match self {
                    $( VendorCommandType::$vvariant => $vname, )*
                }
            }

            /// The cpekit command a vendor-range command is, if its Type and
            /// the start of its Value both match; `None` for any other vendor's.
            pub fn recognise(kind: u32, value: &[u8]) -> Option<VendorCommandType> {
                Self::ALL.into_iter().find(|t| t.number() == kind && value.starts_with(t.identifier()))
            }
        }
    };
}

table_68!(command_type_enum);

impl CommandType {
    /// Name for any numeric type, including reserved and vendor ranges.
    pub fn name_of(v: u32) -> &'static str {
        match Self::from_u32(v) {
            Some(t) => t.name(),
            None if is_vendor_type(v) => "Vendor-specific",
            None => "Unknown",
        }
    }
}

impl From<CommandType> for u32 {
    fn from(t: CommandType) -> u32 {
        t as u32
    }
}

impl TryFrom<u32> for CommandType {
    /// The number, when Table 68 does not define it.
    type Error = u32;

    fn try_from(v: u32) -> Result<CommandType, u32> {
        CommandType::from_u32(v).ok_or(v)
    }
}

/// Table 68: types 1000–9999 are vendor-specific commands.
pub fn is_vendor_type(v: u32) -> bool {
    (1000..=9999).contains(&v)
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
    fn table_68_numbers_names_and_conversions() {
        assert_eq!(CommandType::ALL.len(), 24);
        assert!(CommandType::ALL.windows(2).all(|w| (w[0] as u32) < (w[1] as u32)), "numeric order");
        assert_eq!(u32::from(CommandType::RequiredAttributes), 25);
        assert_eq!(CommandType::try_from(22), Ok(CommandType::MinimumVolatileStorage));
        assert_eq!(CommandType::MinimumVolatileStorage.name(), "Minimum Volatile Storage Size");
        assert_eq!(CommandType::try_from(23), Err(23));
        assert_eq!(CommandType::RemoveSubTree.name(), "Remove Sub-Tree");
    }

    #[test]
    fn cpekit_vendor_commands_need_their_identifier() {
        for t in VendorCommandType::ALL {
            assert!(is_vendor_type(t.number()), "{t:?}");
            assert_eq!(CommandType::from_u32(t.number()), None);
            assert!(!t.identifier().is_empty());
            let mut value = t.identifier().to_vec();
            value.extend([0; 8]);
            assert_eq!(VendorCommandType::recognise(t.number(), &value), Some(t));
            // Another vendor's command with the same number.
            assert_eq!(VendorCommandType::recognise(t.number(), b"ACME\0\0\0\0"), None);
            assert_eq!(VendorCommandType::recognise(t.number(), &t.identifier()[1..]), None);
            assert_eq!(VendorCommandType::recognise(t.number() + 1, &value), None);
        }
        assert_eq!(VendorCommandType::FilesystemEntry.number(), 2069);
        assert_eq!(VendorCommandType::FilesystemEntry.identifier(), b"cpekit/fsentry/1");
    }
}
