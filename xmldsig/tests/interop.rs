//! Vouchers against the reference engine, the `xmlsec1` CLI, both ways,
//! and the attack corpus.

use std::path::PathBuf;
use std::process::Command;

use vouchers::*;
use xmldsig::*;

fn keys() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/keys")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(keys().join(name)).unwrap()
}

fn option(ident: &str, serial: &str) -> VoucherOption {
    VoucherOption {
        vserial_num: format!("VS-{ident}-{serial}"),
        device_id: DeviceId { manufacturer: "cpekit".into(), oui: "00D09E".into(), product_class: "Gateway".into(), serial_number: serial.into() },
        option_ident: ident.into(),
        option_desc: format!("{ident} & more <test>"),
        start_date: Some(vouchers::option::parse_date("2026-01-31T00:00:00Z").unwrap()),
        duration: Some((1, DurationUnits::Months)),
        mode: Mode::EnableWithExpiration,
        transferable: false,
    }
}

fn signed(alg: SignAlgorithm) -> String {
    sign(&[option("VoIP", "123"), option("IPTV", "123")], &read("signer.key"), &read("signer.pem"), &[], alg).unwrap()
}

fn ours(xml: &str) -> Result<VerifiedVoucher, VoucherError> {
    verify(xml.as_bytes(), &[read("ca.pem")], None)
}

fn xmlsec1_verify(xml: &str) -> std::process::Output {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("v.xml");
    std::fs::write(&f, xml).unwrap();
    Command::new("xmlsec1")
        .args(["--verify", "--enabled-key-data", "x509", "--trusted-pem"])
        .arg(keys().join("ca.pem"))
        .arg("--id-attr:Id")
        .arg("Object")
        .arg(&f)
        .output()
        .expect("xmlsec1 must be installed (make test installs it)")
}

#[test]
fn ours_round_trip_and_xmlsec1_verifies_ours() {
    for alg in [SignAlgorithm::RsaSha1, SignAlgorithm::RsaSha256] {
        let xml = signed(alg);
        let v = ours(&xml).unwrap();
        assert_eq!(v.options.len(), 2);
        assert_eq!(v.options[0].option_ident, "VoIP");
        assert_eq!(v.options[0].option_desc, "VoIP & more <test>");
        assert!(v.signer.as_deref().unwrap().contains("Package Signer"));
        let out = xmlsec1_verify(&xml);
        assert!(out.status.success(), "{alg:?}: {}", String::from_utf8_lossy(&out.stderr));
        // Base64 wire form.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&xml);
        assert_eq!(verify(b64.as_bytes(), &[read("ca.pem")], None).unwrap().options.len(), 2);
    }
}

#[test]
fn we_verify_xmlsec1_signed_template() {
    let t = tempfile::tempdir().unwrap();
    let tmpl = format!(
        r##"<?xml version="1.0"?>
<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo><CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/><SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/><Reference URI="#option0"><Transforms><Transform Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/></Transforms><DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/><DigestValue/></Reference></SignedInfo><SignatureValue/><KeyInfo><X509Data/></KeyInfo>
<dsig:Object xmlns="" xmlns:dsig="http://www.w3.org/2000/09/xmldsig#" Id="option0">{}</dsig:Object></Signature>"##,
        option("Gaming", "123").to_xml()
    );
    let tf = t.path().join("tmpl.xml");
    let out_f = t.path().join("out.xml");
    std::fs::write(&tf, tmpl).unwrap();
    let st = Command::new("xmlsec1")
        .arg("--sign")
        .arg("--privkey-pem")
        .arg(format!("{},{}", keys().join("signer.key").display(), keys().join("signer.pem").display()))
        .args(["--id-attr:Id", "Object", "--output"])
        .arg(&out_f)
        .arg(&tf)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let xml = std::fs::read_to_string(&out_f).unwrap();
    let v = ours(&xml).unwrap();
    assert_eq!(v.options[0].option_ident, "Gaming");
}

fn expect(xml: &str, what: fn(&VoucherError) -> bool) {
    match ours(xml) {
        Ok(_) => panic!("accepted: {}", &xml[xml.len().saturating_sub(700)..]),
        Err(e) => assert!(what(&e), "wrong error {e:?} for:\n{xml}"),
    }
}

#[test]
fn attack_corpus() {
    let xml = signed(SignAlgorithm::RsaSha1);
    // Tampered option text.
    expect(&xml.replace("<OptionIdent>VoIP</OptionIdent>", "<OptionIdent>VoIQ</OptionIdent>"), |e| matches!(e, VoucherError::BadSignature(_)));
    // Unsigned Option added beside the signed one (inside the same Object).
    let extra = option("Free", "123").to_xml();
    let idx = xml.find("</Option></dsig:Object>").unwrap() + "</Option>".len();
    let mut wrapped = xml.clone();
    wrapped.insert_str(idx, &extra);
    expect(&wrapped, |e| matches!(e, VoucherError::BadSignature(_) | VoucherError::Structure(_)));
    // Unsigned Object with an Option appended.
    let unsigned_obj = format!("<dsig:Object xmlns=\"\" xmlns:dsig=\"http://www.w3.org/2000/09/xmldsig#\" Id=\"option9\">{extra}</dsig:Object></Signature>");
    expect(&xml.replace("</Signature>", &unsigned_obj), |e| *e == VoucherError::UnsignedOption);
    // Duplicate Id placed after the signed Object.
    let dup = format!("<dsig:Object xmlns=\"\" xmlns:dsig=\"http://www.w3.org/2000/09/xmldsig#\" Id=\"option0\">{extra}</dsig:Object></Signature>");
    expect(&xml.replace("</Signature>", &dup), |e| matches!(e, VoucherError::DuplicateId(_)));
    // Signed Object moved inside another element (wrapping).
    let start = xml.find("<dsig:Object").unwrap();
    let end = xml.find("</dsig:Object>").unwrap() + "</dsig:Object>".len();
    let obj = &xml[start..end];
    let moved = xml.replacen(obj, "", 1).replace("</KeyInfo>", &format!("</KeyInfo><Wrapper xmlns=\"\">{obj}</Wrapper>"));
    expect(&moved, |e| *e == VoucherError::UnsignedOption);
    // Comment injected into OptionIdent: signature still valid (C14N drops
    // comments) and the value read is the digested, comment-free one.
    let commented = xml.replace("<OptionIdent>VoIP</OptionIdent>", "<OptionIdent>Vo<!-- x -->IP</OptionIdent>");
    let v = ours(&commented).unwrap();
    assert_eq!(v.options[0].option_ident, "VoIP");
    // DOCTYPE with entities.
    let dtd = format!("<!DOCTYPE Signature [<!ENTITY e \"VoIP\">]>{}", xml.trim_start_matches("<?xml version=\"1.0\"?>\n"));
    expect(&dtd, |e| *e == VoucherError::Doctype);
    // External reference.
    expect(&xml.replacen("URI=\"#option0\"", "URI=\"file:///etc/passwd\"", 1), |e| matches!(e, VoucherError::ExternalReference(_)));
    // Unknown transform.
    let xslt = xml.replacen(
        "<Transform Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315\"",
        "<Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xslt-19991116\"",
        1,
    );
    assert_ne!(xslt, xml);
    expect(&xslt, |e| matches!(e, VoucherError::Algorithm(_)));
    // Signer not under the trust anchor.
    let rogue = sign(&[option("VoIP", "123")], &read("rogue.key"), &read("rogue.pem"), &[], SignAlgorithm::RsaSha1).unwrap();
    expect(&rogue, |e| matches!(e, VoucherError::Untrusted(m) if m.contains("does not reach a trust anchor")));
    // KeyValue-only key: the certificate removed, a KeyValue put instead.
    let ks = xml.find("<KeyInfo>").unwrap();
    let ke = xml.find("</KeyInfo>").unwrap() + "</KeyInfo>".len();
    let keyvalue_only = format!(
        "{}<KeyInfo><KeyValue><RSAKeyValue><Modulus>AA==</Modulus><Exponent>AQAB</Exponent></RSAKeyValue></KeyValue></KeyInfo>{}",
        &xml[..ks],
        &xml[ke..]
    );
    expect(&keyvalue_only, |e| *e == VoucherError::NoTrustedKey);
    // Something after the Objects (SignedInfo and every digest intact): the
    // Signature's content model (XML-DSig 4.1) refused, as xmlsec1 does.
    let trailing = xml.replace("</Signature>", "<Trailer xmlns=\"\"/></Signature>");
    expect(&trailing, |e| matches!(e, VoucherError::Structure(m) if m.contains("only SignedInfo, SignatureValue, KeyInfo and Objects")));
    assert!(!xmlsec1_verify(&trailing).status.success());
}

/// The spec's own algorithm (Figure 6): DSA-SHA1, signed by `xmlsec1`.
#[test]
fn we_verify_dsa_sha1_from_xmlsec1() {
    let t = tempfile::tempdir().unwrap();
    let tmpl = format!(
        r##"<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo><CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/><SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#dsa-sha1"/><Reference URI="#option0"><Transforms><Transform Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/></Transforms><DigestMethod Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"/><DigestValue/></Reference></SignedInfo><SignatureValue/><KeyInfo><KeyValue/><X509Data/></KeyInfo><dsig:Object xmlns="" xmlns:dsig="http://www.w3.org/2000/09/xmldsig#" Id="option0">{}</dsig:Object></Signature>"##,
        option("DSA", "123").to_xml()
    );
    let tf = t.path().join("tmpl.xml");
    let out_f = t.path().join("out.xml");
    std::fs::write(&tf, tmpl).unwrap();
    let st = Command::new("xmlsec1")
        .arg("--sign")
        .arg("--privkey-pem")
        .arg(format!("{},{}", keys().join("dsa-signer.key").display(), keys().join("dsa-signer.pem").display()))
        .args(["--id-attr:Id", "Object", "--output"])
        .arg(&out_f)
        .arg(&tf)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let xml = std::fs::read_to_string(&out_f).unwrap();
    assert!(xml.contains("<DSAKeyValue>"), "KeyValue filled in like Figure 6");
    let v = ours(&xml).unwrap();
    assert_eq!(v.signature_method, "http://www.w3.org/2000/09/xmldsig#dsa-sha1");
    assert_eq!(v.options[0].option_ident, "DSA");
    // The same voucher with only its KeyValue (certificate stripped) is refused.
    let s = xml.find("<X509Data>").unwrap();
    let e = xml.find("</X509Data>").unwrap() + "</X509Data>".len();
    assert_eq!(ours(&format!("{}{}", &xml[..s], &xml[e..])).unwrap_err(), VoucherError::NoTrustedKey);
}

/// Certificate dates are checked by our path validation at the given time.
#[test]
fn expired_signer_certificate_is_refused() {
    let xml = sign(&[option("VoIP", "123")], &read("expired.key"), &read("expired.pem"), &[], SignAlgorithm::RsaSha1).unwrap();
    let e = ours(&xml).unwrap_err();
    assert!(matches!(&e, VoucherError::Untrusted(m) if m.contains("expired")), "{e:?}");
    // Valid in 2017 for the signer, but the TEST root was created later.
    let then = time::OffsetDateTime::from_unix_timestamp(1_500_000_000).unwrap();
    assert!(verify(xml.as_bytes(), &[read("ca.pem")], Some(then)).is_err());
}

/// The signer key cache: a reused [`Verifier`] keeps the key of a trusted
/// signer certificate; it must still check every signature, and a
/// certificate that is not the signer's must not lend its trust.
#[test]
fn reused_verifier_checks_every_signature_with_the_cached_key() {
    let v = Verifier::new(&[read("ca.pem")]).unwrap();
    let xml = signed(SignAlgorithm::RsaSha1);
    for _ in 0..3 {
        assert_eq!(v.verify(xml.as_bytes(), None).unwrap().options.len(), 2);
    }
    // Same trusted certificate in KeyInfo, tampered content: the cached key
    // verifies nothing it should not.
    let tampered = xml.replace("<OptionIdent>VoIP</OptionIdent>", "<OptionIdent>VoIQ</OptionIdent>");
    assert!(matches!(v.verify(tampered.as_bytes(), None), Err(VoucherError::BadSignature(_))));
    // Signed by the rogue key, but carrying the trusted signer's certificate:
    // the digests match, the signature value does not.
    let rogue = sign(&[option("VoIP", "123"), option("IPTV", "123")], &read("rogue.key"), &read("rogue.pem"), &[], SignAlgorithm::RsaSha1).unwrap();
    let cert_b64 = |x: &str| {
        let s = x.find("<X509Certificate>").unwrap() + "<X509Certificate>".len();
        x[s..s + x[s..].find("</X509Certificate>").unwrap()].to_string()
    };
    let borrowed = rogue.replace(&cert_b64(&rogue), &cert_b64(&xml));
    assert_ne!(borrowed, rogue);
    assert!(matches!(v.verify(borrowed.as_bytes(), None), Err(VoucherError::BadSignature(_))), "{:?}", v.verify(borrowed.as_bytes(), None));
    // Two unrelated certificates (no single signer): each is tried as the
    // signer (its chain to our anchors, then its key on the SignatureValue
    // over SignedInfo) before anything is digested; the trusted
    // voucher with the rogue certificate added beside its own still verifies,
    // the rogue voucher with the trusted certificate added is still refused.
    let both = xml.replace("</X509Data>", &format!("<X509Certificate>{}</X509Certificate></X509Data>", cert_b64(&rogue)));
    assert!(both.matches("<X509Certificate>").count() == 2);
    assert!(v.verify(both.as_bytes(), None).is_ok(), "{:?}", v.verify(both.as_bytes(), None));
    let rogue_both = rogue.replace("</X509Data>", &format!("<X509Certificate>{}</X509Certificate></X509Data>", cert_b64(&xml)));
    assert!(v.verify(rogue_both.as_bytes(), None).is_err());
    // The untampered voucher still verifies after all that.
    assert!(v.verify(xml.as_bytes(), None).is_ok());
    // The caches (signer certificate of a KeyInfo and its subject; a key
    // suiting a SignatureMethod) answer per certificate set and per method:
    // the same key under RSA-SHA256, and the two-certificate KeyInfo, read
    // as a fresh Verifier reads them.
    let sha256 = signed(SignAlgorithm::RsaSha256);
    for x in [&xml, &sha256, &both, &xml] {
        let fresh = Verifier::new(&[read("ca.pem")]).unwrap().verify(x.as_bytes(), None).unwrap();
        let reused = v.verify(x.as_bytes(), None).unwrap();
        assert_eq!(reused, fresh);
        assert!(reused.signer.as_deref().is_some_and(|s| s.contains("CN=")), "{reused:?}");
    }
    // A DSA signer under an RSA SignatureMethod: refused, however often.
    let dsa_cert = {
        let pem = String::from_utf8(read("dsa-signer.pem")).unwrap();
        pem.lines().filter(|l| !l.starts_with("-----")).collect::<String>()
    };
    let dsa_in_rsa = xml.replace(&cert_b64(&xml), &dsa_cert);
    for _ in 0..2 {
        assert_eq!(v.verify(dsa_in_rsa.as_bytes(), None).unwrap_err(), VoucherError::NoTrustedKey);
    }
}

/// Issue 10 item 1: ~12,800 nested elements (an 89 KB file) overflowed the
/// stack of the recursive tree parser in the pre-check (an abort). Refused
/// by the limits scan, naming the limit, for `verify` and `inspect` alike.
#[test]
fn deep_nesting_is_refused_before_parsing() {
    let n = 12_800;
    let xml = signed(SignAlgorithm::RsaSha1).replace("</KeyInfo>", &format!("</KeyInfo><Deep xmlns=\"\">{}{}</Deep>", "<a>".repeat(n), "</a>".repeat(n)));
    let too_deep = |e: &VoucherError| matches!(e, VoucherError::Limit(foundation::XmlLimitError::TooDeep { limit: limits::MAX_DEPTH, .. }));
    expect(&xml, too_deep);
    let e = inspect(xml.as_bytes()).unwrap_err();
    assert!(too_deep(&e), "{e:?}");
    assert!(e.to_string().contains(&format!("more than {} levels", limits::MAX_DEPTH)), "{e}");
}

/// Issue 10 item 2: tens of thousands of attributes on one element took
/// quadratic time in both parsers; the size of a voucher was not bounded.
#[test]
fn attributes_and_size_are_bounded_before_parsing() {
    let xml = signed(SignAlgorithm::RsaSha1);
    let attrs: String = (0..20_000).map(|i| format!(" a{i}=\"x\"")).collect();
    let many = xml.replacen("<Signature ", &format!("<Signature{attrs} "), 1);
    assert_ne!(many, xml);
    for e in [ours(&many).unwrap_err(), inspect(many.as_bytes()).unwrap_err()] {
        assert!(matches!(e, VoucherError::Limit(foundation::XmlLimitError::TooManyAttributes { limit: limits::MAX_ATTRIBUTES, .. })), "{e:?}");
        assert!(e.to_string().contains(&format!("more than {} attributes", limits::MAX_ATTRIBUTES)), "{e}");
    }
    // Bigger than MAX_VOUCHER_BYTES, as XML and as Base64: refused before
    // anything is decoded or parsed, the limit in the message.
    let big = xml.replace("</KeyInfo>", &format!("</KeyInfo><!--{}-->", "x".repeat(MAX_VOUCHER_BYTES)));
    use base64::Engine;
    let big_b64 = base64::engine::general_purpose::STANDARD.encode(&big);
    for input in [big.as_bytes(), big_b64.as_bytes()] {
        let e = verify(input, &[read("ca.pem")], None).unwrap_err();
        assert!(matches!(e, VoucherError::Limit(foundation::XmlLimitError::TooLarge { limit: MAX_VOUCHER_BYTES, .. })), "{e:?}");
        assert!(e.to_string().contains(&MAX_VOUCHER_BYTES.to_string()), "{e}");
    }
    // As many elements as a voucher may have, and one more.
    let elements = |n: usize| xml.replace("</KeyInfo>", &format!("</KeyInfo><Pad xmlns=\"\">{}</Pad>", "<a/>".repeat(n)));
    let e = ours(&elements(limits::MAX_ELEMENTS)).unwrap_err();
    assert!(matches!(e, VoucherError::Limit(foundation::XmlLimitError::TooManyElements { limit: limits::MAX_ELEMENTS, .. })), "{e:?}");
}

/// Issue 10 item 3: every Reference was digested before the signature was
/// checked (4,000 in an unsigned voucher: 10 s). References are capped at
/// one per Option for at most MAX_REFERENCES Options, counted before any is
/// digested; sign refuses what verify would.
#[test]
fn references_are_capped_before_digesting() {
    let xml = signed(SignAlgorithm::RsaSha1);
    let s = xml.find("<Reference ").unwrap();
    let e = xml.find("</Reference>").unwrap() + "</Reference>".len();
    let extra = limits::MAX_REFERENCES + 1 - xml.matches("<Reference ").count();
    let flood = format!("{}{}{}", &xml[..e], xml[s..e].repeat(extra), &xml[e..]);
    assert_eq!(flood.matches("<Reference ").count(), limits::MAX_REFERENCES + 1);
    let e = ours(&flood).unwrap_err();
    assert_eq!(e, VoucherError::TooManyReferences { count: limits::MAX_REFERENCES + 1, limit: limits::MAX_REFERENCES });
    assert!(e.to_string().contains(&format!("more than the limit of {}", limits::MAX_REFERENCES)), "{e}");
    assert!(inspect(flood.as_bytes()).is_err());
    // The most a voucher may carry signs, verifies here and with xmlsec1; one more is refused.
    let options: Vec<_> = (0..limits::MAX_REFERENCES).map(|i| option(&format!("Opt{i}"), "123")).collect();
    let most = sign(&options, &read("signer.key"), &read("signer.pem"), &[], SignAlgorithm::RsaSha1).unwrap();
    assert_eq!(ours(&most).unwrap().options.len(), limits::MAX_REFERENCES);
    let out = xmlsec1_verify(&most);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let one_more: Vec<_> = (0..=limits::MAX_REFERENCES).map(|i| option(&format!("Opt{i}"), "123")).collect();
    let e = sign(&one_more, &read("signer.key"), &read("signer.pem"), &[], SignAlgorithm::RsaSha1).unwrap_err();
    assert!(matches!(e, VoucherError::TooManyReferences { .. }), "{e:?}");
}

/// Issue 10 item 3: the SignatureValue over SignedInfo is checked with the
/// signer's key before libxmlsec1 dereferences and digests a Reference. A
/// Reference added to SignedInfo that points nowhere would make libxmlsec1
/// fail while digesting; the altered SignedInfo is refused first.
#[test]
fn signature_value_is_checked_before_any_reference_is_digested() {
    let xml = signed(SignAlgorithm::RsaSha1);
    let s = xml.find("<Reference ").unwrap();
    let e = xml.find("</Reference>").unwrap() + "</Reference>".len();
    let dangling = xml[s..e].replacen("URI=\"#option0\"", "URI=\"#nowhere\"", 1);
    let added = format!("{}{dangling}{}", &xml[..e], &xml[e..]);
    match ours(&added) {
        Err(VoucherError::BadSignature(m)) => assert!(m.contains("over SignedInfo"), "{m}"),
        other => panic!("{other:?}"),
    }
    // A SignatureValue that is not Base64 is refused there too.
    let vs = xml.find("<SignatureValue>").unwrap() + "<SignatureValue>".len();
    let garbled = format!("{}!!{}", &xml[..vs], &xml[vs + 2..]);
    assert!(matches!(ours(&garbled), Err(VoucherError::BadSignature(_))), "{:?}", ours(&garbled));
    // A KeyInfo full of certificates is refused before any is parsed.
    let c = xml.find("<X509Certificate>").unwrap();
    let ce = xml.find("</X509Certificate>").unwrap() + "</X509Certificate>".len();
    let certs = format!("{}{}{}", &xml[..ce], xml[c..ce].repeat(limits::MAX_CERTIFICATES), &xml[ce..]);
    assert_eq!(ours(&certs).unwrap_err(), VoucherError::TooManyCertificates { count: limits::MAX_CERTIFICATES + 1, limit: limits::MAX_CERTIFICATES });
}

/// A voucher signer certificate made with `openssl` under the TEST root,
/// with the given extensions; returns (key PEM, certificate PEM).
fn openssl_signer(dir: &std::path::Path, name: &str, extensions: &str) -> (Vec<u8>, Vec<u8>) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!("[x]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\n{extensions}\n"),
    )
    .unwrap();
    run(&["genpkey", "-quiet", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", &format!("{name}.key")]);
    run(&["req", "-new", "-key", &format!("{name}.key"), "-subj", &format!("/O=cpekit TEST ONLY/CN=cpekit TEST {name}"), "-out", &format!("{name}.csr")]);
    let (ca_pem, ca_key) = (keys().join("ca.pem"), keys().join("ca.key"));
    run(&[
        "x509",
        "-req",
        "-in",
        &format!("{name}.csr"),
        "-CA",
        ca_pem.to_str().unwrap(),
        "-CAkey",
        ca_key.to_str().unwrap(),
        "-set_serial",
        "0x4321",
        "-days",
        "30",
        "-sha256",
        "-extfile",
        &format!("{name}.ext"),
        "-extensions",
        "x",
        "-out",
        &format!("{name}.pem"),
    ]);
    (std::fs::read(dir.join(format!("{name}.key"))).unwrap(), std::fs::read(dir.join(format!("{name}.pem"))).unwrap())
}

/// Voucher signers pass the same certificate rules as package signers
/// (one path validation in pkgfmt): an unrecognised critical extension
/// (RFC 5280 4.2) or an extendedKeyUsage without codeSigning (4.2.1.12)
/// is not trusted; the same signer without them is.
#[test]
fn voucher_signer_certificate_rules_are_the_package_rules() {
    let t = tempfile::tempdir().unwrap();
    let voucher = |name: &str, ext: &str| {
        let (key, cert) = openssl_signer(t.path(), name, ext);
        sign(&[option("VoIP", "123")], &key, &cert, &[], SignAlgorithm::RsaSha1).unwrap()
    };
    let crit = voucher("crit", "1.3.6.1.4.1.55555.1 = critical, ASN1:NULL");
    let e = ours(&crit).unwrap_err();
    assert!(matches!(&e, VoucherError::Untrusted(m) if m.contains("unrecognised critical extension 1.3.6.1.4.1.55555.1")), "{e:?}");
    assert!(!xmlsec1_verify(&crit).status.success(), "xmlsec1 (OpenSSL) rejects it too");

    let server = voucher("server", "extendedKeyUsage = serverAuth");
    let e = ours(&server).unwrap_err();
    assert!(matches!(&e, VoucherError::Untrusted(m) if m.contains("extendedKeyUsage") && m.contains("codeSigning")), "{e:?}");

    let fine = voucher("fine", "extendedKeyUsage = codeSigning\n1.3.6.1.4.1.55555.1 = ASN1:NULL");
    assert_eq!(ours(&fine).unwrap().options.len(), 1);
}
