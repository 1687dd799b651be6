//! E.4.11, Table 75 — Value format for the role command.

use super::ValueError;
use crate::error::ParseErrorKind;

/// Table 75 — the target application or purpose of the package.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Role {
    /// 1
    SoftwareUpgrade,
    /// 2
    SoftwareRecovery,
    /// 3
    WebContent,
    /// 4
    VendorConfiguration,
    /// `0xFF` most significant octet: the next three octets are the vendor
    /// OUI; "the vendor may define subsequent additional arguments".
    Vendor { oui: [u8; 3], args: Vec<u8> },
    /// Any other value ("reserved").
    Reserved(u32),
}

impl Role {
    /// The 32-bit Role field.
    pub fn code(&self) -> u32 {
        match self {
            Role::SoftwareUpgrade => 1,
            Role::SoftwareRecovery => 2,
            Role::WebContent => 3,
            Role::VendorConfiguration => 4,
            Role::Vendor { oui, .. } => u32::from_be_bytes([0xFF, oui[0], oui[1], oui[2]]),
            Role::Reserved(v) => *v,
        }
    }

    pub fn from_code(code: u32) -> Role {
        match code {
            1 => Role::SoftwareUpgrade,
            2 => Role::SoftwareRecovery,
            3 => Role::WebContent,
            4 => Role::VendorConfiguration,
            c if c >> 24 == 0xFF => {
                let b = c.to_be_bytes();
                Role::Vendor { oui: [b[1], b[2], b[3]], args: Vec::new() }
            }
            c => Role::Reserved(c),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Role::SoftwareUpgrade => "Software upgrade",
            Role::SoftwareRecovery => "Software recovery",
            Role::WebContent => "Web content",
            Role::VendorConfiguration => "Vendor configuration",
            Role::Vendor { .. } => "Vendor-specific",
            Role::Reserved(_) => "Reserved",
        }
    }

    pub(crate) fn decode(value: &[u8]) -> Result<Self, ValueError> {
        if value.len() < 4 {
            return Err((0, ParseErrorKind::BadLength { command: "Role", expected: "at least 4", found: value.len() as u32 }));
        }
        let code = u32::from_be_bytes(value[..4].try_into().unwrap());
        let extra = &value[4..];
        match Role::from_code(code) {
            Role::Vendor { oui, .. } => Ok(Role::Vendor { oui, args: extra.to_vec() }),
            r if extra.is_empty() => Ok(r),
            _ => Err((4, ParseErrorKind::RoleArguments { role: code, extra: extra.len() })),
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = self.code().to_be_bytes().to_vec();
        if let Role::Vendor { args, .. } = self {
            out.extend_from_slice(args);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_and_vendor_roles() {
        assert_eq!(Role::decode(&[0, 0, 0, 3]).unwrap(), Role::WebContent);
        assert_eq!(Role::decode(&[0, 0, 0, 9]).unwrap(), Role::Reserved(9));
        let v = Role::decode(&[0xFF, 0x00, 0x0D, 0x2B, 1, 2]).unwrap();
        assert_eq!(v, Role::Vendor { oui: [0, 0x0D, 0x2B], args: vec![1, 2] });
        assert_eq!(v.encode(), vec![0xFF, 0x00, 0x0D, 0x2B, 1, 2]);
        assert!(Role::decode(&[0, 0, 0, 1, 5]).is_err());
        assert!(Role::decode(&[0, 0, 1]).is_err());
    }
}
