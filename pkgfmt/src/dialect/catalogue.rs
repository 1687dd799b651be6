//! The dialect's record types (2wire-pkgstream-notes §6, "TLV type
//! catalogue"), declared once: each row gives the type number, the name the
//! source repository gives it (`lib2spy`'s `_TLV_NAMES` and its 010
//! template; per the notes many are "documentation aid, not proof"), what
//! the notes say it is, whether a real file is documented to carry it, the
//! confidence of those facts and how its value is read.
//!
//! Types 7 and 8 are seen in real files with layouts that are not known
//! (§6: "32-byte uniform records"), so they are shown as hex, not read as
//! Annex E's Remove Sub-Tree and Move File; the other types the notes give
//! only a label are read as Annex E when their value decodes so.
//! Types the notes do not list: Annex E's own (Table 68) are read as
//! Annex E; any other is skipped by the device's payload phase ("≥ 0x30,
//! other", §6) and shown as hex.

use super::Confidence::{self, Code, Decomp, Derived, Doc};
use crate::command_type::{is_vendor_type, CommandType};

/// How a FILE record's target is written (notes §6, §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileMode {
    /// Type 1: create or truncate, then write (`O_WRONLY|O_CREAT|O_TRUNC`).
    CreateOrTruncate,
    /// Type 3: written only if the target does not exist.
    CreateIfAbsent,
    /// Type 47: data in 32 KiB length-prefixed blocks, holes between ([`super::sparse`]).
    Sparse,
}

impl FileMode {
    /// How the notes describe it.
    pub fn describe(self) -> &'static str {
        match self {
            FileMode::CreateOrTruncate => "create or truncate",
            FileMode::CreateIfAbsent => "create only if absent",
            FileMode::Sparse => "sparse (32 KiB blocks)",
        }
    }
}

/// How a record's value is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Type 0: ends the command list.
    End,
    /// A FILE record (§6.1).
    File(FileMode),
    /// A SCRIPT record (§6.2).
    Script,
    /// An ASCII text value.
    Text,
    /// The install-method tag (`run`).
    InstallMethod,
    /// Annex E's layout for this Table 68 type, shown as hex when it does
    /// not decode (the dialect's layout is not published).
    AnnexE,
    /// Layout unknown: labelled hex.
    Opaque,
}

/// One row of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordType {
    pub number: u32,
    /// The source repository's name; empty where it has none.
    pub name: &'static str,
    /// What the notes say the record is or does on the device.
    pub meaning: &'static str,
    /// Where a real file is documented to carry it; `None`: not documented.
    pub seen: Option<&'static str>,
    pub confidence: &'static [Confidence],
    pub layout: Layout,
}

macro_rules! catalogue {
    ($( $number:literal $name:literal $layout:expr, $conf:expr, seen $seen:expr, $meaning:literal; )*) => {
        /// The rows of notes §6, in numeric order.
        pub const CATALOGUE: &[RecordType] = &[
            $( RecordType { number: $number, name: $name, meaning: $meaning, seen: $seen, confidence: $conf, layout: $layout }, )*
        ];
    };
}

use FileMode::*;
use Layout::*;

catalogue! {
    0x00 "PREFIX_END" End, &[Doc, Decomp], seen Some("empty, ends the list"),
        "end of the command list; the PKCS #7 SignedData follows at once";
    0x01 "FILE" File(CreateOrTruncate), &[Doc, Code, Decomp], seen Some("11 in the 11.5.1 install, all SHA-1"),
        "FILE record: data streamed to a path, digest checked";
    0x02 "STRING_LIST" AnnexE, &[Code], seen None,
        "label only; the device has no demarshaller for it";
    0x03 "FILE" File(CreateIfAbsent), &[Decomp], seen None,
        "FILE record, same layout as type 1; the target is written only if it does not exist";
    0x04 "PATH" AnnexE, &[Code], seen None,
        "label only; the device has no demarshaller for it";
    0x05 "CHECKSUM" AnnexE, &[Code, Decomp], seen None,
        "label only; the device takes its path-demarshaller branch";
    0x06 "TIMESTAMP" AnnexE, &[Code], seen None,
        "label only";
    0x07 "CONFIG" Opaque, &[Doc, Decomp], seen Some("x8 in the install, \"32-byte uniform records\""),
        "install phase: path demarshaller, then mkdir / symlink / copy; wire layout not reverse-engineered";
    0x08 "INTEGER" Opaque, &[Doc, Decomp], seen Some("x2 in the install"),
        "move demarshaller (rename/move); wire layout not reverse-engineered";
    0x09 "STRING" AnnexE, &[Code], seen None,
        "label only";
    0x0A "SIGNATURE" Text, &[Doc, Decomp], seen Some("\"11.5.1.532678\""),
        "version string (read by lib2sp_get_version, inferred); the label does not fit the data";
    0x0B "KEY_VALUE" Text, &[Doc], seen Some("\"att_install\""),
        "role string (lib2sp_get_role, inferred)";
    0x0C "BOOLEAN" AnnexE, &[Code], seen None,
        "label only";
    0x0D "BYTE_ARRAY" AnnexE, &[Code], seen None,
        "label only";
    0x1A "METADATA" Text, &[Doc], seen Some("\"firmware\""),
        "group (lib2sp_get_group, inferred)";
    0x1B "WIRE_1B" Text, &[Doc], seen Some("\"config\", only in att_cms-certs"),
        "method (lib2sp_get_method, inferred)";
    0x20 "WIRE_20" Text, &[Doc], seen Some("\"260-2106,260-2169,...\""),
        "description / hardware (PCA part-number) allow-list (lib2sp_get_desc, inferred)";
    0x25 "WIRE_25" Opaque, &[Doc], seen Some("x11 in the install"),
        "per-FILE companion record; layout unknown";
    0x26 "SCRIPT" Script, &[Doc, Code, Decomp], seen Some("x13 in the install, x1 in cms-certs"),
        "SCRIPT record: a /bin/sh body in the payload region, run when closed or queued under a phase label";
    0x27 "PATH_27" Opaque, &[Doc, Decomp], seen Some("x3 in the install"),
        "install-stage descriptor; path demarshaller; layout unknown";
    0x28 "PATH_28" Opaque, &[Code, Decomp], seen None,
        "path demarshaller; layout unknown";
    0x29 "MOVE_29" Opaque, &[Code, Decomp], seen None,
        "the source repo says move demarshaller; the decompiled code, as read, gives it none";
    0x2A "MOVE_2A" Opaque, &[Code, Decomp], seen None,
        "move demarshaller; layout unknown";
    0x2B "MOVE_2B" Opaque, &[Code, Decomp], seen None,
        "move demarshaller; layout unknown";
    0x2C "" Opaque, &[Decomp], seen None,
        "path demarshaller (not in the source repo's tables); layout unknown";
    0x2D "" Opaque, &[Decomp], seen None,
        "path demarshaller (not in the source repo's tables); layout unknown";
    0x2E "RUN" InstallMethod, &[Doc], seen Some("first record at 0x18, value \"run\""),
        "install-method tag (matches TW_PKG_TYPE_RUN); no demarshaller";
    0x2F "PATH_FILE" File(Sparse), &[Decomp, Derived], seen None,
        "FILE record, same layout as type 1; data in 32 KiB length-prefixed blocks, the rest of each block a hole (a reading)";
    0x3E8 "DPI_SIG" Opaque, &[Doc, Decomp], seen None,
        "\"dpi sig\" data written and hashed only for a \"dpi\" download; 'DPI' may mean deep-packet inspection (hedged); not in any 5268 sample";
}

/// A type the notes do not list but Table 68 defines.
const ANNEX_E: RecordType =
    RecordType { number: 0, name: "", meaning: "Annex E command (Table 68); not described by the notes", seen: None, confidence: &[], layout: AnnexE };
/// A vendor-range type other than 1000.
const VENDOR: RecordType = RecordType {
    number: 0,
    name: "",
    meaning: "vendor-specific (Annex E range 1000-9999); not described by the notes",
    seen: None,
    confidence: &[],
    layout: Opaque,
};
/// Anything else.
const OTHER: RecordType = RecordType {
    number: 0,
    name: "",
    meaning: "not in the notes; the device's payload phase skips it and moves to the next record",
    seen: None,
    confidence: &[Decomp],
    layout: Opaque,
};

impl RecordType {
    /// The row for `number`, or what is known of types the notes do not list.
    pub fn of(number: u32) -> RecordType {
        if let Some(row) = CATALOGUE.iter().find(|r| r.number == number) {
            return *row;
        }
        let base = if CommandType::from_u32(number).is_some() {
            ANNEX_E
        } else if is_vendor_type(number) {
            VENDOR
        } else {
            OTHER
        };
        RecordType { number, ..base }
    }

    /// Whether the notes list this type.
    pub fn in_notes(&self) -> bool {
        CATALOGUE.iter().any(|r| r.number == self.number)
    }

    /// Whether Annex E defines no such type and a file carrying it is, by
    /// that alone, of the dialect: 26, 27, 32 and 37–47 (notes §6: "types
    /// seen in real files that fall outside both ranges", and the ones the
    /// device's code handles).
    pub fn is_dialect_only(&self) -> bool {
        self.in_notes() && CommandType::from_u32(self.number).is_none() && !is_vendor_type(self.number)
    }

    /// The name to show: the source's name, else the Annex E name, else
    /// `(unnamed)`.
    pub fn display_name(&self) -> &'static str {
        match (self.name, CommandType::from_u32(self.number)) {
            ("", Some(t)) => t.name(),
            ("", None) if is_vendor_type(self.number) => "Vendor-specific",
            ("", None) => "(unnamed)",
            (n, _) => n,
        }
    }

    /// `[DOC, CODE]`, or `[]` for a type the notes do not describe.
    pub fn confidence_label(&self) -> String {
        super::Confidence::labels(self.confidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_in_order_and_complete_for_the_types_seen_in_real_files() {
        assert!(CATALOGUE.windows(2).all(|w| w[0].number < w[1].number));
        // Notes §6: "types seen in real files that fall outside both
        // ranges are 0x1A, 0x1B, 0x20, 0x25, 0x26, 0x27 and 0x2E".
        for t in [0x1A, 0x1B, 0x20, 0x25, 0x26, 0x27, 0x2E] {
            let r = RecordType::of(t);
            assert!(r.seen.is_some() && r.is_dialect_only(), "{t:#x}");
        }
        assert_eq!(RecordType::of(0x26).name, "SCRIPT");
        assert_eq!(RecordType::of(0x26).layout, Layout::Script);
        assert_eq!(RecordType::of(0x2E).layout, Layout::InstallMethod);
        assert_eq!(RecordType::of(1).layout, Layout::File(FileMode::CreateOrTruncate));
        assert_eq!(RecordType::of(3).layout, Layout::File(FileMode::CreateIfAbsent));
        assert_eq!(RecordType::of(47).layout, Layout::File(FileMode::Sparse));
        assert_eq!(RecordType::of(1000).name, "DPI_SIG");
        assert!(!RecordType::of(1000).is_dialect_only(), "in Annex E's vendor range");
        assert!(!RecordType::of(1).is_dialect_only());
        assert_eq!(RecordType::of(0x2C).display_name(), "(unnamed)");
        assert_eq!(RecordType::of(16).display_name(), "Reboot");
        assert_eq!(RecordType::of(16).layout, Layout::AnnexE);
        assert_eq!(RecordType::of(4242).display_name(), "Vendor-specific");
        assert_eq!(RecordType::of(0x30).layout, Layout::Opaque);
        assert_eq!(RecordType::of(0x26).confidence_label(), "[DOC, CODE, DECOMP]");
    }
}
