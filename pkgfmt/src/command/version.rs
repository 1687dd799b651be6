//! E.4.10, Table 74 — Minimum/Maximum Version: an array of 32-bit integers.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use super::ValueError;
use crate::error::ParseErrorKind;

/// A hierarchical version number such as `1.0.20.3` (Table 74).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct VersionNumber(pub Vec<u32>);

impl VersionNumber {
    pub(crate) fn decode(command: &'static str, value: &[u8]) -> Result<Self, ValueError> {
        if !value.len().is_multiple_of(4) {
            return Err((0, ParseErrorKind::BadLength { command, expected: "a multiple of 4", found: value.len() as u32 }));
        }
        Ok(VersionNumber(value.chunks_exact(4).map(|c| u32::from_be_bytes(c.try_into().unwrap())).collect()))
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        self.0.iter().flat_map(|v| v.to_be_bytes()).collect()
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
        assert_eq!(x.to_string(), "1.0.20.3");
        assert!("1..2".parse::<VersionNumber>().is_err());
    }
}
