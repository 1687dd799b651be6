//! E.4.6 — Version and Description: "The Value field for both the Version
//! and Description commands contain a single UTF-8 string to be used for
//! informational, display, or logging purposes."

use super::value::{utf8, ValueLayout};
use crate::codec::ValueError;
use crate::command_type::CommandType;

impl ValueLayout for String {
    fn decode(t: CommandType, value: &[u8]) -> Result<Self, ValueError> {
        utf8(value, t.name())
    }

    fn encode(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
}
