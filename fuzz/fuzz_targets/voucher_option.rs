//! Voucher reading without signature verification (vouchers crate):
//! `vouchers::inspect` (wire decoding, structure pre-check, Option
//! extraction, signer certificate lookup) must never panic, and an
//! `<Option>` element that `VoucherOption::from_element` accepts must
//! re-encode (`to_xml`) to XML that reads back equal, and encode stably.
//!
//! Narrowed: `StartDate` is compared to the second. `to_xml` writes
//! xsd:dateTime in UTC without fractional seconds (the voucher format,
//! Table 62, has no use for them), so a fractional StartDate loses its
//! fraction by design; everything else must round-trip exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouchers::VoucherOption;

fn to_the_second(mut o: VoucherOption) -> VoucherOption {
    o.start_date = o.start_date.map(|t| t.replace_nanosecond(0).expect("0 ns is valid"));
    o
}

fuzz_target!(|data: &[u8]| {
    let _ = vouchers::inspect(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = roxmltree::Document::parse(text) else {
        return;
    };
    let Ok(opt) = VoucherOption::from_element(doc.root_element()) else {
        return;
    };
    let xml = opt.to_xml();
    let doc2 = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("to_xml output does not parse: {e}\n{xml}"));
    let again = VoucherOption::from_element(doc2.root_element()).unwrap_or_else(|e| panic!("to_xml output does not read back: {e}\n{xml}"));
    assert_eq!(again, to_the_second(opt), "round trip changed the Option\n{xml}");
    assert_eq!(again.to_xml(), xml, "encoding is not stable");
});
