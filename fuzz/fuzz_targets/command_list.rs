//! Any command list that parses re-encodes to a list that parses equal.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pkgfmt::CommandList;

fuzz_target!(|data: &[u8]| {
    if data.len() >= 1 << 16 {
        return; // E.3: a command list is shorter than 2^16 octets
    }
    if let Ok(list) = CommandList::parse(data, 0) {
        let bytes = list.encode();
        let again = CommandList::parse(&bytes, 0).expect("encoded list parses");
        assert_eq!(again, list);
    }
});
