//! What every Value field format shares (E.4, Table 67: "Value: Zero or
//! more octets of parameters associated with the particular command type").

use crate::codec::ValueError;
use crate::command_type::{CommandType, VendorCommandType};
use crate::error::ParseErrorKind;

/// Bit 0 of the Flags field of Tables 69–71: the Unsafe Flag.
pub const UNSAFE_FLAG: u32 = 1;

/// A Value field format (Tables 69–77): how the Value octets of one
/// command decode and encode. Offsets in errors are relative to the Value.
pub(crate) trait ValueLayout: Sized {
    fn decode(t: CommandType, value: &[u8]) -> Result<Self, ValueError>;
    /// Canonical Value bytes (fixed fields, then variable fields in order, no gaps).
    fn encode(&self) -> Vec<u8>;
}

/// The Value format of a vendor-specific command cpekit defines: the whole
/// Value, identifier included (offsets count from the start of the Value).
pub(crate) trait VendorLayout: Sized {
    /// `value` starts with `t`'s identifier.
    fn decode(t: VendorCommandType, value: &[u8]) -> Result<Self, ValueError>;
    /// The whole Value, starting with the identifier.
    fn encode(&self) -> Vec<u8>;
}

/// A UTF-8 text field; the error offset is that of the first bad octet.
pub(crate) fn utf8(bytes: &[u8], field: &'static str) -> Result<String, ValueError> {
    String::from_utf8(bytes.to_vec()).map_err(|e| (e.utf8_error().valid_up_to(), ParseErrorKind::NotUtf8 { field }))
}
