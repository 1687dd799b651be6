//! E.4.11, Table 75 — Value format for the role command.
//!
//! > "Values with 0xFF as their most significant octet are to be
//! > interpreted as a vendor-specific Role. In this case, the subsequent
//! > three octets contain the OUI ... When this value is used, the vendor
//! > may define subsequent additional arguments to be included in this
//! > command in order to specifically identify the role."

use std::io::Cursor;

use binrw::{binrw, BinRead, BinResult};

use super::value::ValueLayout;
use crate::codec::{encode, Reader, ValueError, WholeValue};
use crate::command_type::CommandType;
use crate::error::ParseErrorKind;

/// Table 75: the Role field, then (vendor roles only) the vendor's
/// arguments, up to the end of the Value.
#[binrw]
#[brw(big)]
#[br(import(len: usize))]
struct RoleValue {
    code: u32,
    #[br(count = len.saturating_sub(4))]
    #[br(try_map = |args: Vec<u8>| if is_vendor(code) || args.is_empty() { Ok(args) } else { Err(ParseErrorKind::RoleArguments { role: code, extra: args.len() }) })]
    args: Vec<u8>,
}

impl WholeValue for RoleValue {
    const EXPECTED: &'static str = "at least 4";
    fn read(cursor: &mut Cursor<&[u8]>, len: usize) -> BinResult<Self> {
        <RoleValue as BinRead>::read_args(cursor, (len,))
    }
}

/// Table 75: "Values with 0xFF as their most significant octet".
fn is_vendor(code: u32) -> bool {
    code >> 24 == 0xFF
}

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
            c if is_vendor(c) => {
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
}

impl ValueLayout for Role {
    fn decode(t: CommandType, value: &[u8]) -> Result<Self, ValueError> {
        let v: RoleValue = Reader::new(value).read_whole(t.name())?;
        Ok(match Role::from_code(v.code) {
            Role::Vendor { oui, .. } => Role::Vendor { oui, args: v.args },
            r => r,
        })
    }

    fn encode(&self) -> Vec<u8> {
        let args = match self {
            Role::Vendor { args, .. } => args.clone(),
            _ => Vec::new(),
        };
        encode(&RoleValue { code: self.code(), args })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_and_vendor_roles() {
        assert_eq!(Role::decode(CommandType::Role, &[0, 0, 0, 3]).unwrap(), Role::WebContent);
        assert_eq!(Role::decode(CommandType::Role, &[0, 0, 0, 9]).unwrap(), Role::Reserved(9));
        let v = Role::decode(CommandType::Role, &[0xFF, 0x00, 0x0D, 0x2B, 1, 2]).unwrap();
        assert_eq!(v, Role::Vendor { oui: [0, 0x0D, 0x2B], args: vec![1, 2] });
        assert_eq!(v.encode(), vec![0xFF, 0x00, 0x0D, 0x2B, 1, 2]);
        assert!(Role::decode(CommandType::Role, &[0, 0, 0, 1, 5]).is_err());
        assert!(Role::decode(CommandType::Role, &[0, 0, 1]).is_err());
        assert_eq!(Role::decode(CommandType::Role, &[0, 0, 0, 1, 5]).unwrap_err(), (4, ParseErrorKind::RoleArguments { role: 1, extra: 1 }));
        let e = Role::decode(CommandType::Role, &[0, 0, 1]).unwrap_err();
        assert_eq!(e, (0, ParseErrorKind::BadLength { command: "Role", expected: "at least 4", found: 3 }));
    }
}
