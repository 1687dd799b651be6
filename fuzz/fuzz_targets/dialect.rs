//! The 2Wire dialect reader (issue 12) must never panic or allocate by an
//! untrusted length: every input is read or refused with a typed error,
//! bzip2-wrapped or not; whatever reads has a consistent layout, and the
//! strict installer path refuses it without panicking either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pkgfmt::dialect::{DialectPrefix, PassMode, PayloadPass, Source, Write};
use pkgfmt::{Prefix, DEFAULT_PREFIX_LIMIT};

/// The one published header (notes §3); inputs whose first byte is odd get
/// it in front, with the length word set to 16 × the rest, so that
/// mutations reach the records and the signature block quickly.
const HEADER: [u8; 16] = *b"2WIRE_SP\0\0\0\x01\0\0\0\x01";

fuzz_target!(|data: &[u8]| {
    let input: Vec<u8> = match data.split_first() {
        Some((b, rest)) if b & 1 == 1 => {
            let mut v = HEADER.to_vec();
            v.extend(((rest.len() as u32).wrapping_mul(16)).to_be_bytes());
            v.extend((rest.len() as u32 / 2).to_be_bytes());
            v.extend_from_slice(rest);
            v
        }
        _ => data.to_vec(),
    };
    let _ = Prefix::read_conformant(&mut &input[..], DEFAULT_PREFIX_LIMIT);
    for mode in [PassMode::Heads, PassMode::Full] {
        let Ok(mut source) = Source::from_reader(&input[..]) else { return };
        let Ok(prefix) = DialectPrefix::read_from(&mut source) else { return };
        assert_eq!(source.position(), prefix.payload_base(), "left at the payload base");
        assert_eq!(prefix.signed_message().len() as u64, prefix.command_list_end());
        let _ = prefix.warnings();
        let _ = prefix.length_word();
        let _ = prefix.verify_signatures(&[], &Default::default());
        let items = prefix.items();
        let report = PayloadPass::run(
            &prefix,
            &mut source,
            mode,
            |w| {
                if let Write::Data { offset, bytes, .. } = w {
                    assert!(offset.checked_add(bytes.len() as u64).is_some());
                }
                Ok(())
            },
            |done, total| assert!(done <= total),
        );
        if let Ok(r) = report {
            assert_eq!(r.items.len(), items.len());
            assert!(r.region_present <= r.payload_length);
        }
    }
});
