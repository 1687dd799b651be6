//! E.4.10, Table 74 — Minimum/Maximum Version: an array of 32-bit integers.
//!
//! > Version: "An array of integer elements indicating the version number.
//! > This is considered a hierarchical version number (e.g., “1.0.20.3”),
//! > where each successive integer represents a more minor element of the
//! > version number."

use std::cmp::Ordering;
use std::fmt;
use std::io::Cursor;
use std::str::FromStr;

use binrw::{binrw, BinRead, BinResult};

use super::value::ValueLayout;
use crate::codec::{encode, Reader, ValueError, WholeValue};
use crate::command_type::CommandType;

/// A hierarchical version number such as `1.0.20.3` (Table 74). The
/// Value holds `len / 4` elements; a length that is not a multiple of 4
/// leaves octets over, which the codec's `Reader` rejects.
#[binrw]
#[brw(big)]
#[br(import(len: usize))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct VersionNumber(#[br(count = len / 4)] pub Vec<u32>);

impl WholeValue for VersionNumber {
    const EXPECTED: &'static str = "a multiple of 4";
    fn read(cursor: &mut Cursor<&[u8]>, len: usize) -> BinResult<Self> {
        <VersionNumber as BinRead>::read_args(cursor, (len,))
    }
}

impl ValueLayout for VersionNumber {
    fn decode(t: CommandType, value: &[u8]) -> Result<Self, ValueError> {
        VersionNumber::decode(t.name(), value)
    }

    fn encode(&self) -> Vec<u8> {
        encode(self)
    }
}

impl VersionNumber {
    pub(crate) fn decode(command: &'static str, value: &[u8]) -> Result<Self, ValueError> {
        Reader::new(value).read_whole(command)
    }

    /// E.4.10 Minimum Version procedure: does `actual` meet this minimum?
    pub fn admits_as_minimum(&self, actual: &VersionNumber) -> bool {
        compare_per_e410(actual, self, Ordering::Greater)
    }

    /// E.4.10 Maximum Version procedure: does `actual` meet this maximum?
    pub fn admits_as_maximum(&self, actual: &VersionNumber) -> bool {
        compare_per_e410(actual, self, Ordering::Less)
    }
}

/// The E.4.10 element-by-element walk over the *package's* array. `better`
/// is the direction in which an element of the device version settles the
/// requirement as met. A device version shorter than the array counts its
/// missing elements as 0 (the spec is silent; "3" is read as "3.0").
fn compare_per_e410(actual: &VersionNumber, bound: &VersionNumber, better: Ordering) -> bool {
    for (i, b) in bound.0.iter().enumerate() {
        let a = actual.0.get(i).copied().unwrap_or(0);
        match a.cmp(b) {
            Ordering::Equal => continue,     // step 3b (3a handled by loop end)
            o if o == better => return true, // step 1
            _ => return false,               // step 2
        }
    }
    true // step 3a, or an empty array: no constraint
}

impl fmt::Display for VersionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(u32::to_string).collect();
        f.write_str(&parts.join("."))
    }
}

impl FromStr for VersionNumber {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Err("empty version".into());
        }
        s.trim().split('.').map(|p| p.parse::<u32>().map_err(|e| format!("version element {p:?}: {e}"))).collect::<Result<Vec<_>, _>>().map(VersionNumber)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> VersionNumber {
        s.parse().unwrap()
    }

    #[test]
    fn e410_minimum() {
        let min = v("3.0.21");
        assert!(min.admits_as_minimum(&v("3.0.21")));
        assert!(min.admits_as_minimum(&v("3.1")));
        assert!(min.admits_as_minimum(&v("4")));
        assert!(!min.admits_as_minimum(&v("3.0.20")));
        assert!(!min.admits_as_minimum(&v("2.9.99")));
        // Device longer than the array: array's last element equal → met (3a).
        assert!(min.admits_as_minimum(&v("3.0.21.0.1")));
        // Device shorter: missing elements are 0.
        assert!(!min.admits_as_minimum(&v("3.0")));
        assert!(v("3.0.0").admits_as_minimum(&v("3")));
    }

    #[test]
    fn e410_maximum() {
        let max = v("3.0.21");
        assert!(max.admits_as_maximum(&v("3.0.21")));
        assert!(max.admits_as_maximum(&v("3.0.20.99")));
        assert!(max.admits_as_maximum(&v("2")));
        assert!(!max.admits_as_maximum(&v("3.0.22")));
        assert!(!max.admits_as_maximum(&v("3.1")));
        // Longer device version with equal prefix is "equal" per 3a.
        assert!(max.admits_as_maximum(&v("3.0.21.5")));
    }

    #[test]
    fn codec() {
        let x = v("1.0.20.3");
        assert_eq!(x.encode().len(), 16);
        assert_eq!(VersionNumber::decode("Minimum Version", &x.encode()).unwrap(), x);
        assert!(VersionNumber::decode("Minimum Version", &[0; 5]).is_err());
        let e = VersionNumber::decode("Maximum Version", &[0; 7]).unwrap_err();
        assert_eq!(e, (0, crate::error::ParseErrorKind::BadLength { command: "Maximum Version", expected: "a multiple of 4", found: 7 }));
        assert_eq!(VersionNumber::decode("Minimum Version", &[]).unwrap(), VersionNumber(vec![]));
        assert_eq!(x.to_string(), "1.0.20.3");
        assert!("1..2".parse::<VersionNumber>().is_err());
    }
}
