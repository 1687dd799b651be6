//! The voucher verifier (`xmldsig::Verifier::verify`, C.3 and XML-DSig)
//! with a real signature around mutated content (issue 10, "How it is
//! checked"). At start-up a voucher of two Options is signed with the test
//! signer (testdata/keys/signer.*, chaining to testdata/keys/ca.pem) and
//! verified once; the fuzz input then replaces parts of it, chosen by the
//! first byte (mode = byte % 4):
//!
//! * 0: the input is the whole voucher (XML or its Base64 wire form);
//! * 1: the signed head (declaration, SignedInfo, SignatureValue, KeyInfo)
//!   is kept and the input is the rest (the Objects and `</Signature>`),
//!   so mutations get past the cheap checks (limits, structure, path
//!   validation, SignatureValue over SignedInfo) and reach Reference
//!   digesting, the digested-bytes Option reader and its refusals;
//! * 2: the input holds `<Option>` elements; those that read are signed
//!   (RSA-SHA1 or RSA-SHA256 by bit 2 of the first byte) and verified;
//! * 3: SignedInfo and SignatureValue are kept, the input is KeyInfo and
//!   what follows (certificate path, leaf selection, key loading).
//!
//! Properties: no panic; in modes 0, 1 and 3 a voucher that verifies has
//! exactly the Options signed at start-up (the SignedInfo digests pin the
//! canonical bytes the Options are read from), and `vouchers::inspect`
//! shows the same Options (the display and the verified result agree);
//! in mode 2 a voucher made by `sign` verifies, with the Options signed
//! (StartDate to the second: `to_xml` writes no fractional seconds).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouchers::{SignAlgorithm, VoucherError, VoucherOption};
use xmldsig::Verifier;

mod voucher_fixture;
use voucher_fixture::{options, AT, CA, CERT, KEY};

/// Mode 2 signs (one RSA private-key operation); a few Options suffice.
const MAX_SIGNED_OPTIONS: usize = 4;

struct Fixture {
    verifier: Verifier,
    options: Vec<VoucherOption>,
    /// The signed voucher cut after `</KeyInfo>` and after `</SignatureValue>`.
    head_keyinfo: String,
    head_signature: String,
}

impl Fixture {
    fn new() -> Fixture {
        let verifier = Verifier::new(&[CA.to_vec()]).expect("test CA loads");
        let options = options();
        let signed = xmldsig::sign(&options, KEY, CERT, &[], SignAlgorithm::RsaSha1).expect("test voucher signs");
        let v = verifier.verify(signed.as_bytes(), Some(AT)).expect("freshly signed test voucher verifies");
        assert_eq!(v.options, options);
        let cut = |tag: &str| signed[..signed.find(tag).unwrap_or_else(|| panic!("{tag} in {signed}")) + tag.len()].to_string();
        Fixture { verifier, options, head_keyinfo: cut("</KeyInfo>"), head_signature: cut("</SignatureValue>") }
    }
}

thread_local! {
    // Verifier holds libxmlsec1 pointers and caches: one per thread.
    static FIXTURE: Fixture = Fixture::new();
}

fn to_the_second(mut o: VoucherOption) -> VoucherOption {
    o.start_date = o.start_date.map(|t| t.replace_nanosecond(0).expect("0 ns is valid"));
    o
}

/// The same Options, in any order (References and Objects may be ordered differently).
fn same_set(a: &[VoucherOption], b: &[VoucherOption]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.iter().filter(|y| *y == x).count() == a.iter().filter(|y| *y == x).count())
}

fn resign(f: &Fixture, text: &str, alg: SignAlgorithm) {
    let wrapped = format!("<r>{text}</r>");
    let Ok(doc) = roxmltree::Document::parse(&wrapped) else { return };
    let opts: Vec<VoucherOption> = doc
        .root_element()
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "Option")
        .filter_map(|o| VoucherOption::from_element(o).ok())
        .take(MAX_SIGNED_OPTIONS)
        .collect();
    if opts.is_empty() {
        return;
    }
    let signed = match xmldsig::sign(&opts, KEY, CERT, &[], alg) {
        Ok(s) => s,
        // The voucher limits also bound what is signed.
        Err(VoucherError::Limit(_)) => return,
        Err(e) => panic!("signing Options that read failed: {e}\n{opts:?}"),
    };
    let v = f.verifier.verify(signed.as_bytes(), Some(AT)).unwrap_or_else(|e| panic!("own voucher refused: {e}\n{signed}"));
    let want: Vec<VoucherOption> = opts.into_iter().map(to_the_second).collect();
    assert_eq!(v.options, want, "verified Options differ from the signed ones\n{signed}");
}

fuzz_target!(|data: &[u8]| {
    let Some((&b, rest)) = data.split_first() else { return };
    FIXTURE.with(|f| {
        let input: Vec<u8> = match b % 4 {
            0 => rest.to_vec(),
            1 => [f.head_keyinfo.as_bytes(), rest].concat(),
            2 => {
                if let Ok(text) = std::str::from_utf8(rest) {
                    resign(f, text, if b & 4 == 0 { SignAlgorithm::RsaSha1 } else { SignAlgorithm::RsaSha256 });
                }
                return;
            }
            _ => [f.head_signature.as_bytes(), rest].concat(),
        };
        if let Ok(v) = f.verifier.verify(&input, Some(AT)) {
            assert_eq!(v.options, f.options, "a verified voucher's Options are not the signed ones");
            let shown = vouchers::inspect(&input).expect("a verified voucher inspects");
            assert!(same_set(&shown.options, &v.options), "inspect shows other Options than verify accepted: {:?}", shown.options);
        }
    });
});
