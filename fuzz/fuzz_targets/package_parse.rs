//! Strict package parsing must never panic; whatever parses must re-encode
//! canonically and idempotently, and the streaming reader must agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pkgfmt::{Package, PayloadVerifier, Prefix, DEFAULT_PREFIX_LIMIT};

fuzz_target!(|data: &[u8]| {
    if let Ok(pkg) = Package::parse(data) {
        let canonical = pkg.to_bytes();
        let again = Package::parse(&canonical).expect("canonical encoding parses");
        assert_eq!(again.to_bytes(), canonical, "canonical encoding is idempotent");
        assert_eq!(again.prefix.commands, pkg.prefix.commands);
    }
    let mut r = data;
    if let Ok(prefix) = Prefix::read_from(&mut r, DEFAULT_PREFIX_LIMIT) {
        assert_eq!(prefix.payload_offset() as usize, data.len() - r.len());
        let _ = prefix.verify_signatures(&[], &Default::default());
        let mut v = PayloadVerifier::new(&prefix.commands, prefix.header.payload_length as u64);
        // Odd-sized chunks exercise range boundaries.
        for chunk in r.chunks(7) {
            if v.update(chunk).is_err() {
                return;
            }
        }
        let _ = v.finish();
    }
});
