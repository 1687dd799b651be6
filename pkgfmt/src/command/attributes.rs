//! E.4.13, Table 77 — Value format for the required attributes command.

use super::ValueError;
use crate::error::ParseErrorKind;

/// Table 77. Defining Entity 0 = standard definitions (none exist in Issue
/// 1), `0xFF` + OUI = vendor-specific; unknown entities or classes are to be
/// ignored by the recipient (the installer's job, not the codec's).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequiredAttributes {
    pub defining_entity: u32,
    pub class: u32,
    /// Allowed values; the device meets the requirement if it matches any.
    pub attributes: Vec<u32>,
}

impl RequiredAttributes {
    /// Vendor OUI when the defining entity is vendor-specific.
    pub fn vendor_oui(&self) -> Option<[u8; 3]> {
        let b = self.defining_entity.to_be_bytes();
        (b[0] == 0xFF).then_some([b[1], b[2], b[3]])
    }

    pub(crate) fn decode(value: &[u8]) -> Result<Self, ValueError> {
        if value.len() < 8 || !value.len().is_multiple_of(4) {
            return Err((0, ParseErrorKind::BadLength { command: "Required Attributes", expected: "8 + a multiple of 4", found: value.len() as u32 }));
        }
        let mut words = value.chunks_exact(4).map(|c| u32::from_be_bytes(c.try_into().unwrap()));
        let defining_entity = words.next().unwrap();
        let class = words.next().unwrap();
        Ok(RequiredAttributes { defining_entity, class, attributes: words.collect() })
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        [self.defining_entity, self.class].iter().chain(&self.attributes).flat_map(|v| v.to_be_bytes()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_lengths() {
        let a = RequiredAttributes { defining_entity: 0xFF00_0D2B, class: 2, attributes: vec![5, 6] };
        let b = a.encode();
        assert_eq!(b.len(), 16);
        assert_eq!(RequiredAttributes::decode(&b).unwrap(), a);
        assert_eq!(a.vendor_oui(), Some([0, 0x0D, 0x2B]));
        assert!(RequiredAttributes::decode(&b[..7]).is_err());
        assert!(RequiredAttributes::decode(&b[..10]).is_err());
    }
}
