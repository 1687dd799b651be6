//! POSIX file attributes: mode, owner, group and three timestamps, as the
//! extended file record of real 2Wire packages carries them after the
//! Table 69 fields (2wire-pkgstream-notes §6.1, a reading of the gateway's
//! decompiled `demarshall_2sp_file`), and as cpekit's
//! [`FilesystemEntry`](super::FilesystemEntry) carries them.
//!
//! Wire form, 48 octets, big-endian (file record offsets `+0x34..+0x64`):
//!
//! | octets | field |
//! |---|---|
//! | 4 | POSIX mode, file-type bits included (`0o100644`) |
//! | 4 | uid |
//! | 4 | gid |
//! | 8 + 4 | access time: seconds since 1970, nanoseconds |
//! | 8 + 4 | modification time |
//! | 8 + 4 | status-change time |
//!
//! `0xFFFFFFFF` in mode, uid or gid means "leave unchanged" (the device
//! uses that value when a record has no extension); a timestamp whose
//! nanoseconds are `0xFFFFFFFF` (written with all-ones seconds) is absent.
//! The sources do not name the three timestamps; they are taken in the
//! order of `struct stat`. A status-change time cannot be set on POSIX and
//! is carried only so that a record round-trips.

use binrw::binrw;

use crate::codec::ValueError;
use crate::error::ParseErrorKind;

/// "Leave unchanged" in the mode, uid and gid fields.
pub const UNCHANGED: u32 = 0xFFFF_FFFF;

/// `S_IFMT`: the file-type bits of a POSIX mode.
pub const S_IFMT: u32 = 0o170000;
/// `S_IFREG`: a regular file.
pub const S_IFREG: u32 = 0o100000;
/// `S_IFDIR`: a directory.
pub const S_IFDIR: u32 = 0o040000;
/// `S_IFLNK`: a symbolic link.
pub const S_IFLNK: u32 = 0o120000;
/// Permission bits, set-user-ID, set-group-ID and sticky.
pub const PERMISSION_BITS: u32 = 0o7777;

/// One timestamp on the wire: seconds, then nanoseconds.
#[binrw]
#[brw(big)]
#[derive(Debug, Clone, Copy)]
struct TimeFields {
    seconds: u64,
    nanoseconds: u32,
}

/// The 48 octets of attributes.
#[binrw]
#[brw(big)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct AttributeFields {
    mode: u32,
    uid: u32,
    gid: u32,
    times: [TimeFields; 3],
}

impl AttributeFields {
    /// Length in octets.
    pub(crate) const LEN: usize = 48;

    /// The mode word as on the wire, file-type bits included.
    pub(crate) fn raw_mode(&self) -> u32 {
        self.mode
    }
}

/// A point in time: seconds since 1970-01-01T00:00:00Z and nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp {
    pub seconds: u64,
    pub nanoseconds: u32,
}

/// Attributes of a file, directory or link. `None` leaves the attribute
/// as it is (or at the installer's default for a new file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FileMetadata {
    /// Permission bits, with set-user-ID, set-group-ID and sticky
    /// (`0o7777`); the file-type bits are implied by the record.
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub atime: Option<Timestamp>,
    pub mtime: Option<Timestamp>,
    /// Carried for round trips; a recipient cannot set it.
    pub ctime: Option<Timestamp>,
}

impl FileMetadata {
    /// Nothing recorded.
    pub fn is_empty(&self) -> bool {
        *self == FileMetadata::default()
    }

    /// The wire fields, with `file_type` (`S_IFREG`, `S_IFDIR`, `S_IFLNK`)
    /// in the mode.
    pub(crate) fn to_fields(self, file_type: u32) -> AttributeFields {
        let word = |v: Option<u32>| v.unwrap_or(UNCHANGED);
        let time = |t: Option<Timestamp>| match t {
            Some(t) => TimeFields { seconds: t.seconds, nanoseconds: t.nanoseconds },
            None => TimeFields { seconds: u64::MAX, nanoseconds: UNCHANGED },
        };
        AttributeFields {
            mode: self.mode.map_or(UNCHANGED, |m| file_type | (m & PERMISSION_BITS)),
            uid: word(self.uid),
            gid: word(self.gid),
            times: [time(self.atime), time(self.mtime), time(self.ctime)],
        }
    }

    /// Check and convert the wire fields found at offset `at` of a Value:
    /// the mode's file-type bits must be 0 or `file_type`, it has no bits
    /// above them, and a present timestamp has fewer than 10^9 nanoseconds.
    pub(crate) fn from_fields(f: AttributeFields, file_type: u32, at: usize) -> Result<FileMetadata, ValueError> {
        let mode = match f.mode {
            UNCHANGED => None,
            m if m & !(S_IFMT | PERMISSION_BITS) != 0 || !matches!(m & S_IFMT, 0) && m & S_IFMT != file_type => {
                return Err((at, ParseErrorKind::BadMode { mode: m, expected: file_type }))
            }
            m => Some(m & PERMISSION_BITS),
        };
        let word = |v: u32| (v != UNCHANGED).then_some(v);
        let mut times = [None; 3];
        for (i, t) in f.times.iter().enumerate() {
            let offset = at + 12 + 12 * i;
            times[i] = match t.nanoseconds {
                UNCHANGED => None,
                n if n >= 1_000_000_000 => return Err((offset, ParseErrorKind::BadTimestamp { seconds: t.seconds, nanoseconds: n })),
                n => Some(Timestamp { seconds: t.seconds, nanoseconds: n }),
            };
        }
        Ok(FileMetadata { mode, uid: word(f.uid), gid: word(f.gid), atime: times[0], mtime: times[1], ctime: times[2] })
    }
}

/// `rwxr-x---` style, as `ls -l` shows permission bits.
pub fn mode_string(mode: u32) -> String {
    let mut s = String::with_capacity(9);
    for (shift, special, lower, upper) in [(6, 0o4000, 's', 'S'), (3, 0o2000, 's', 'S'), (0, 0o1000, 't', 'T')] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(match (bits & 1 != 0, mode & special != 0) {
            (true, true) => lower,
            (false, true) => upper,
            (true, false) => 'x',
            (false, false) => '-',
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{encode, Fixed, Reader};

    impl Fixed for AttributeFields {
        const LEN: usize = AttributeFields::LEN;
        const WHAT: &'static str = "attributes";
    }

    fn full() -> FileMetadata {
        FileMetadata {
            mode: Some(0o4755),
            uid: Some(1000),
            gid: Some(0),
            atime: Some(Timestamp { seconds: 1, nanoseconds: 2 }),
            mtime: Some(Timestamp { seconds: 1_700_000_000, nanoseconds: 999_999_999 }),
            ctime: None,
        }
    }

    #[test]
    fn wire_layout_and_round_trip() {
        let b = encode(&full().to_fields(S_IFREG));
        assert_eq!(b.len(), 48);
        assert_eq!(&b[0..4], &0o104755u32.to_be_bytes());
        assert_eq!(&b[4..8], &1000u32.to_be_bytes());
        assert_eq!(&b[8..12], &0u32.to_be_bytes());
        assert_eq!(&b[12..24], &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(&b[36..48], &[0xFF; 12], "absent ctime: all ones");
        let f: AttributeFields = Reader::new(&b).read().unwrap();
        assert_eq!(FileMetadata::from_fields(f, S_IFREG, 0).unwrap(), full());

        let none = encode(&FileMetadata::default().to_fields(S_IFDIR));
        assert_eq!(none, vec![0xFF; 48], "nothing recorded: every field 0xFFFFFFFF");
        let f: AttributeFields = Reader::new(&none).read().unwrap();
        assert!(FileMetadata::from_fields(f, S_IFDIR, 0).unwrap().is_empty());
    }

    #[test]
    fn checks_mode_type_and_timestamps() {
        let read = |b: &[u8], t| FileMetadata::from_fields(Reader::new(b).read().unwrap(), t, 100);
        let mut b = encode(&full().to_fields(S_IFREG));
        // Type bits absent are fine; the wrong type is not.
        b[0..4].copy_from_slice(&0o644u32.to_be_bytes());
        assert_eq!(read(&b, S_IFREG).unwrap().mode, Some(0o644));
        assert_eq!(read(&b, S_IFDIR).unwrap().mode, Some(0o644));
        let e = read(&encode(&full().to_fields(S_IFREG)), S_IFDIR).unwrap_err();
        assert_eq!(e, (100, ParseErrorKind::BadMode { mode: 0o104755, expected: S_IFDIR }));
        b[0..4].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        assert!(matches!(read(&b, S_IFREG).unwrap_err().1, ParseErrorKind::BadMode { .. }));
        // Nanoseconds out of range.
        let mut b = encode(&full().to_fields(S_IFREG));
        b[32..36].copy_from_slice(&1_000_000_000u32.to_be_bytes());
        assert_eq!(read(&b, S_IFREG).unwrap_err(), (124, ParseErrorKind::BadTimestamp { seconds: 1_700_000_000, nanoseconds: 1_000_000_000 }));
    }

    #[test]
    fn mode_strings() {
        assert_eq!(mode_string(0o755), "rwxr-xr-x");
        assert_eq!(mode_string(0o640), "rw-r-----");
        assert_eq!(mode_string(0o4755), "rwsr-xr-x");
        assert_eq!(mode_string(0o1777), "rwxrwxrwt");
        assert_eq!(mode_string(0o2640), "rw-r-S---");
    }
}
