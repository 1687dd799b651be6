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
    let ignore = VerifyOptions { ignore_time: true, ..Default::default() };
    assert!(b.verify(MSG, &[cert("ca")], &ignore).is_trusted());
    // In 2017 the signer was valid but the (newer) root CA was not yet:
    // anchors' dates are checked too.
    let then = VerifyOptions { now: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_500_000_000)), ..Default::default() };
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

/// Certificates made with `openssl` for one test, issued by the TEST root
/// (testdata/keys/ca) or by each other, with the extensions each test needs
/// (as testdata/gen-keys.sh makes the TEST PKI).
struct TestPki {
    dir: tempfile::TempDir,
}

impl TestPki {
    fn new() -> TestPki {
        TestPki { dir: tempfile::tempdir().unwrap() }
    }

    fn path(&self, name: &str, ext: &str) -> PathBuf {
        match name {
            "ca" => keys().join(format!("ca.{ext}")),
            _ => self.dir.path().join(format!("{name}.{ext}")),
        }
    }

    /// Issue NAME under ISSUER with the given `openssl x509 -extfile` lines.
    fn issue(&self, name: &str, issuer: &str, extensions: &str) {
        let run = |args: &[&str]| {
            let out = Command::new("openssl").args(args).current_dir(self.dir.path()).output().expect("openssl");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let key = self.path(name, "key");
        let csr = self.path(name, "csr");
        let ext = self.path(name, "ext");
        std::fs::write(&ext, format!("[x]\n{extensions}\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n")).unwrap();
        run(&["genpkey", "-quiet", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key.to_str().unwrap()]);
        let subj = format!("/O=cpekit TEST ONLY/CN=cpekit TEST {name}");
        run(&["req", "-new", "-key", key.to_str().unwrap(), "-subj", &subj, "-out", csr.to_str().unwrap()]);
        run(&[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            self.path(issuer, "pem").to_str().unwrap(),
            "-CAkey",
            self.path(issuer, "key").to_str().unwrap(),
            "-set_serial",
            "0x1234",
            "-days",
            "30",
            "-sha256",
            "-extfile",
            ext.to_str().unwrap(),
            "-extensions",
            "x",
            "-out",
            self.path(name, "pem").to_str().unwrap(),
        ]);
    }

    fn cert(&self, name: &str) -> Certificate {
        load_certs_pem(&std::fs::read(self.path(name, "pem")).unwrap()).unwrap().remove(0)
    }

    /// A block signed by NAME, carrying `chain`.
    fn sign(&self, name: &str, chain: &[&str]) -> SignatureBlock {
        let key = load_private_key_pem(&std::fs::read(self.path(name, "key")).unwrap()).unwrap();
        let chain: Vec<Certificate> = chain.iter().map(|c| self.cert(c)).collect();
        SignatureBlock::empty().add_signer(MSG, &key, &self.cert(name), &chain, true).unwrap()
    }

    /// What `openssl verify` says of NAME's path to the TEST root.
    fn openssl_verify(&self, name: &str, chain: &[&str]) -> bool {
        let untrusted = self.dir.path().join("untrusted.pem");
        let pems: Vec<u8> = chain.iter().flat_map(|c| std::fs::read(self.path(c, "pem")).unwrap()).collect();
        std::fs::write(&untrusted, pems).unwrap();
        let mut c = Command::new("openssl");
        c.arg("verify").arg("-CAfile").arg(keys().join("ca.pem"));
        if !chain.is_empty() {
            c.arg("-untrusted").arg(&untrusted);
        }
        c.arg(self.path(name, "pem")).output().expect("openssl").status.success()
    }
}

const CA_EXT: &str = "basicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign";
const LEAF_EXT: &str = "basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature";

/// RFC 5280 4.2: an unrecognised critical extension in the signer or an
/// intermediate certificate rejects the path; the same extension not
/// marked critical is ignored. `openssl verify` agrees.
#[test]
fn unrecognised_critical_extension_is_rejected() {
    let pki = TestPki::new();
    // 1.3.6.1.4.1.55555.1: a private OID nobody recognises.
    pki.issue("crit-leaf", "ca", &format!("{LEAF_EXT}\n1.3.6.1.4.1.55555.1 = critical, ASN1:NULL"));
    pki.issue("noncrit-leaf", "ca", &format!("{LEAF_EXT}\n1.3.6.1.4.1.55555.1 = ASN1:NULL"));
    // Critical policy constraints are a real extension, but not processed here.
    pki.issue("crit-int", "ca", &format!("{CA_EXT}\npolicyConstraints = critical, requireExplicitPolicy:0"));
    pki.issue("under-crit-int", "crit-int", LEAF_EXT);

    let e = first_err(&pki.sign("crit-leaf", &[]), MSG, &[cert("ca")], &now());
    assert!(matches!(&e, SignatureError::Certificate { problem, .. } if problem.contains("unrecognised critical extension 1.3.6.1.4.1.55555.1")), "{e}");
    assert!(e.to_string().contains("RFC 5280 4.2"), "{e}");
    assert!(!pki.openssl_verify("crit-leaf", &[]), "openssl also rejects it");

    assert!(pki.sign("noncrit-leaf", &[]).verify(MSG, &[cert("ca")], &now()).is_trusted());
    assert!(pki.openssl_verify("noncrit-leaf", &[]));

    let e = first_err(&pki.sign("under-crit-int", &["crit-int"]), MSG, &[cert("ca")], &now());
    assert!(e.to_string().contains("crit-int") && e.to_string().contains("policyConstraints"), "{e}");
    // The same intermediate given as a trust anchor is trusted as given.
    assert!(pki.sign("under-crit-int", &[]).verify(MSG, &[pki.cert("crit-int")], &now()).is_trusted());
}

/// RFC 5280 4.2.1.9: pathLenConstraint bounds the intermediate CAs below a
/// CA, the trust anchor's included (as `openssl verify` does).
#[test]
fn path_len_constraint_is_enforced() {
    let pki = TestPki::new();
    pki.issue("int0", "ca", &format!("{CA_EXT}\nbasicConstraints = critical, CA:TRUE, pathlen:0"));
    pki.issue("int1", "ca", &format!("{CA_EXT}\nbasicConstraints = critical, CA:TRUE, pathlen:1"));
    for top in ["int0", "int1"] {
        pki.issue(&format!("{top}-sub"), top, CA_EXT);
        pki.issue(&format!("{top}-sub-leaf"), &format!("{top}-sub"), LEAF_EXT);
        pki.issue(&format!("{top}-leaf"), top, LEAF_EXT);
    }
    // Directly under a pathlen:0 CA: fine.
    assert!(pki.sign("int0-leaf", &["int0"]).verify(MSG, &[cert("ca")], &now()).is_trusted());
    // One intermediate CA below a pathlen:0 CA: rejected, and openssl agrees.
    let e = first_err(&pki.sign("int0-sub-leaf", &["int0-sub", "int0"]), MSG, &[cert("ca")], &now());
    assert!(e.to_string().contains("int0") && e.to_string().contains("pathLenConstraint 0"), "{e}");
    assert!(!pki.openssl_verify("int0-sub-leaf", &["int0-sub", "int0"]));
    // With pathlen:1 the same shape validates.
    let r = pki.sign("int1-sub-leaf", &["int1-sub", "int1"]).verify(MSG, &[cert("ca")], &now());
    assert_eq!(r.trusted().expect("trusted").result.as_ref().unwrap().subjects.len(), 4);
    assert!(pki.openssl_verify("int1-sub-leaf", &["int1-sub", "int1"]));
    // A trust anchor's own pathLenConstraint counts too.
    let e = first_err(&pki.sign("int0-sub-leaf", &["int0-sub"]), MSG, &[pki.cert("int0")], &now());
    assert!(e.to_string().contains("pathLenConstraint 0"), "{e}");
}

/// RFC 5280 4.2.1.12: a signer whose extendedKeyUsage allows neither
/// codeSigning nor anyExtendedKeyUsage is not trusted, unless the legacy
/// option is set; no extendedKeyUsage at all is fine.
#[test]
fn extended_key_usage_must_allow_code_signing_unless_relaxed() {
    let pki = TestPki::new();
    pki.issue("server", "ca", &format!("{LEAF_EXT}\nextendedKeyUsage = serverAuth, clientAuth"));
    pki.issue("codesign", "ca", &format!("{LEAF_EXT}\nextendedKeyUsage = serverAuth, codeSigning"));
    pki.issue("any", "ca", &format!("{LEAF_EXT}\nextendedKeyUsage = anyExtendedKeyUsage"));

    let server = pki.sign("server", &[]);
    let e = first_err(&server, MSG, &[cert("ca")], &now());
    assert!(e.to_string().contains("extendedKeyUsage [id-kp-serverAuth, id-kp-clientAuth]") && e.to_string().contains("codeSigning"), "{e}");
    let legacy = VerifyOptions { allow_legacy_eku: true, ..Default::default() };
    assert!(server.verify(MSG, &[cert("ca")], &legacy).is_trusted());
    assert!(pki.sign("codesign", &[]).verify(MSG, &[cert("ca")], &now()).is_trusted());
    assert!(pki.sign("any", &[]).verify(MSG, &[cert("ca")], &now()).is_trusted());
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
