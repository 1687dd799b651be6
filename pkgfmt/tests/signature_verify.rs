//! Signature block (E.5): signing, verifying and path validation with the
//! TEST PKI in testdata/keys, and OpenSSL-made blocks.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime};

use pkgfmt::signature::*;
use x509_cert::Certificate;

fn keys() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/keys")
}

fn cert(name: &str) -> Certificate {
    load_certs_pem(&std::fs::read(keys().join(format!("{name}.pem"))).unwrap()).unwrap().remove(0)
}

fn key(name: &str) -> rsa::RsaPrivateKey {
    load_private_key_pem(&std::fs::read(keys().join(format!("{name}.key"))).unwrap()).unwrap()
}

const MSG: &[u8] = b"2WIRE_SP\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\0 header and command list";

fn sign(name: &str, chain: &[Certificate], attrs: bool) -> SignatureBlock {
    SignatureBlock::empty().add_signer(MSG, &key(name), &cert(name), chain, attrs).unwrap()
}

fn now() -> VerifyOptions {
    VerifyOptions::default()
}

fn first_err(b: &SignatureBlock, msg: &[u8], anchors: &[Certificate], o: &VerifyOptions) -> SignatureError {
    b.verify(msg, anchors, o).signers[0].result.clone().unwrap_err()
}

#[test]
fn empty_block_is_the_fixed_37_bytes() {
    assert_eq!(EMPTY_SIGNATURE_BLOCK.len(), 37);
    let b = SignatureBlock::empty();
    assert_eq!(b.to_der(), EMPTY_SIGNATURE_BLOCK.to_vec());
    assert!(b.signers().is_empty());
    let r = b.verify(MSG, &[cert("ca")], &now());
    assert!(!r.is_trusted());
    assert!(r.explain().contains("unsigned"));
    assert_eq!(der_block_len(&EMPTY_SIGNATURE_BLOCK).unwrap(), 37);
}

#[test]
fn signs_and_verifies_with_and_without_attributes() {
    for attrs in [true, false] {
        let b = sign("signer", &[], attrs);
        assert_eq!(b.signers()[0].signed_attributes, attrs);
        let reparsed = SignatureBlock::parse(&b.to_der()).unwrap();
        assert_eq!(reparsed.to_der(), b.to_der());
        let r = reparsed.verify(MSG, &[cert("ca")], &now());
        let ok = r.trusted().expect("trusted");
        assert_eq!(ok.result.as_ref().unwrap().subjects.len(), 2);
        // Any change to the message is caught.
        let mut bad = MSG.to_vec();
        bad[30] ^= 1;
        let e = first_err(&reparsed, &bad, &[cert("ca")], &now());
        if attrs {
            assert_eq!(e, SignatureError::MessageDigestMismatch);
        } else {
            assert!(matches!(e, SignatureError::BadSignature(_)), "{e}");
        }
    }
}

#[test]
fn chain_through_intermediate_needs_the_chain_certs() {
    let with_chain = sign("signer-int", &[cert("intermediate")], true);
    let r = with_chain.verify(MSG, &[cert("ca")], &now());
    assert_eq!(r.trusted().unwrap().result.as_ref().unwrap().subjects.len(), 3);
    let without = sign("signer-int", &[], true);
    let e = first_err(&without, MSG, &[cert("ca")], &now());
    assert!(matches!(e, SignatureError::Untrusted(_)), "{e}");
    // Trusting the intermediate directly also works.
    assert!(without.verify(MSG, &[cert("intermediate")], &now()).is_trusted());
}

#[test]
fn non_ca_issuer_is_rejected() {
    let b = sign("under-notca", &[cert("notca")], true);
    let e = first_err(&b, MSG, &[cert("ca")], &now());
    assert!(e.to_string().contains("is not a CA"), "{e}");
}

#[test]
fn expired_signer_rejected_unless_time_ignored() {
    let b = sign("expired", &[], true);
    let e = first_err(&b, MSG, &[cert("ca")], &now());
    assert!(e.to_string().contains("expired"), "{e}");
    let ignore = VerifyOptions { ignore_time: true, now: None };
    assert!(b.verify(MSG, &[cert("ca")], &ignore).is_trusted());
    // In 2017 the signer was valid but the (newer) root CA was not yet:
    // anchors' dates are checked too.
    let then = VerifyOptions { ignore_time: false, now: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_500_000_000)) };
    let e = first_err(&b, MSG, &[cert("ca")], &then);
    assert!(e.to_string().contains("Root CA") && e.to_string().contains("not valid before"), "{e}");
    // The good signer is "not yet valid" in 2017.
    let e = first_err(&sign("signer", &[], true), MSG, &[cert("ca")], &then);
    assert!(e.to_string().contains("not valid before"), "{e}");
}

#[test]
fn rogue_self_signed_is_untrusted_unless_it_is_the_anchor() {
    let b = sign("rogue", &[], true);
    let e = first_err(&b, MSG, &[cert("ca")], &now());
    assert!(e.to_string().contains("does not reach a trust anchor"), "{e}");
    assert!(b.verify(MSG, &[cert("rogue")], &now()).is_trusted());
}

#[test]
fn multi_signer_keeps_existing_signers_byte_for_byte() {
    let one = sign("rogue", &[], true);
    let two = one.add_signer(MSG, &key("signer"), &cert("signer"), &[], false).unwrap();
    let r = two.verify(MSG, &[cert("ca")], &now());
    assert_eq!(r.signers.len(), 2);
    assert!(r.signers[0].result.is_err());
    assert!(r.signers[1].result.is_ok());
    assert_eq!(r.trusted().unwrap().index, 1);
    // The rogue SignerInfo's bytes are present unchanged in the new block.
    let rogue_only = one.to_der();
    let sig_tail = &rogue_only[rogue_only.len() - 256..];
    assert!(two.to_der().windows(256).any(|w| w == sig_tail));
    assert!(two.verify(MSG, &[cert("rogue")], &now()).signers[0].result.is_ok());
}

#[test]
fn key_must_match_certificate() {
    let e = SignatureBlock::empty().add_signer(MSG, &key("rogue"), &cert("signer"), &[], true).unwrap_err();
    assert!(matches!(e, SignatureError::KeyMismatch(_)), "{e}");
}

#[test]
fn garbage_and_truncation_are_errors_not_panics() {
    let der = sign("signer", &[cert("intermediate")], true).to_der();
    for n in 0..der.len() {
        assert!(SignatureBlock::parse(&der[..n]).is_err(), "prefix {n} parsed");
    }
    for i in (0..der.len()).step_by(7) {
        let mut d = der.clone();
        d[i] ^= 0x55;
        let _ = SignatureBlock::parse(&d).map(|b| b.verify(MSG, &[cert("ca")], &now()));
    }
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(SignatureBlock::parse(&trailing).is_err());
    assert!(der_block_len(&der[..der.len() - 1]).is_err());
    assert!(der_block_len(&[0x31, 0x00]).is_err());
    assert!(der_block_len(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_err());
    assert_eq!(der_block_len(&[der.clone(), vec![1, 2, 3]].concat()).unwrap(), der.len());
}

#[test]
fn attached_content_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    let s = t.path().join("s");
    std::fs::write(&m, MSG).unwrap();
    let (signer, inkey) = (keys().join("signer.pem"), keys().join("signer.key"));
    let st = Command::new("openssl")
        .args(["cms", "-sign", "-binary", "-nodetach", "-md", "sha1", "-outform", "DER", "-signer"])
        .arg(&signer)
        .arg("-inkey")
        .arg(&inkey)
        .arg("-in")
        .arg(&m)
        .arg("-out")
        .arg(&s)
        .status()
        .expect("openssl");
    assert!(st.success());
    let e = SignatureBlock::parse(&std::fs::read(&s).unwrap()).unwrap_err();
    assert_eq!(e, SignatureError::NotDetached);
}

#[test]
fn openssl_blocks_verify_including_sha256_digest_rejection() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    std::fs::write(&m, MSG).unwrap();
    let (signer, inkey) = (keys().join("signer.pem"), keys().join("signer.key"));
    for (md, noattr, ok) in [("sha1", false, true), ("sha1", true, true), ("sha256", false, false)] {
        let s = t.path().join(format!("s-{md}-{noattr}"));
        let mut c = Command::new("openssl");
        c.args(["cms", "-sign", "-binary", "-md", md, "-outform", "DER", "-signer"]).arg(&signer).arg("-inkey").arg(&inkey);
        if noattr {
            c.arg("-noattr");
        }
        assert!(c.arg("-in").arg(&m).arg("-out").arg(&s).status().unwrap().success());
        let b = SignatureBlock::parse(&std::fs::read(&s).unwrap()).unwrap();
        let r = b.verify(MSG, &[cert("ca")], &now());
        assert_eq!(r.is_trusted(), ok, "{md} noattr={noattr}: {}", r.explain());
        if !ok {
            assert!(r.explain().contains("not SHA-1"), "{}", r.explain());
        }
    }
}

#[test]
fn signers_are_found_and_removed_keeping_the_others() {
    let one = sign("rogue", &[], true);
    let two = one.add_signer(MSG, &key("signer"), &cert("signer"), &[cert("intermediate")], true).unwrap();
    assert!(two.is_signed_by(&cert("signer")).unwrap());
    assert!(two.is_signed_by(&cert("rogue")).unwrap());
    assert!(!one.is_signed_by(&cert("signer")).unwrap());
    // Removing the rogue signer leaves the trusted one, byte for byte, and drops the rogue's certificate.
    let kept = two.remove_signer(0).unwrap();
    assert_eq!(kept.signers().len(), 1);
    assert_eq!(kept.signers()[0], two.signers()[1]);
    assert!(kept.verify(MSG, &[cert("ca")], &now()).is_trusted());
    assert!(!kept.certificates().contains(&cert("rogue")));
    assert!(kept.certificates().contains(&cert("intermediate")));
    // Removing the last one leaves a block with no signers.
    let none = kept.remove_signer(0).unwrap();
    assert!(none.signers().is_empty());
    assert!(matches!(none.remove_signer(0).unwrap_err(), SignatureError::NoSuchSigner { index: 0, count: 0 }));
    // Signing time as given (SOURCE_DATE_EPOCH): the same bytes twice.
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let opts = SignOptions { signed_attributes: true, signing_time: Some(t) };
    let a = SignatureBlock::empty().add_signer_with(MSG, &key("signer"), &cert("signer"), &[], &opts).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let b = SignatureBlock::empty().add_signer_with(MSG, &key("signer"), &cert("signer"), &[], &opts).unwrap();
    assert_eq!(a.to_der(), b.to_der());
    assert!(a.verify(MSG, &[cert("ca")], &now()).is_trusted());
}
