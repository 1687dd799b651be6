//! Issue 11: keys as users have them. The same package signed from PEM,
//! DER, PKCS#1, PKCS#8, encrypted PKCS#8 and legacy encrypted PEM keys
//! verifies (with `openssl cms` too); `--pass` in openssl's forms; EC and
//! DSA keys refused naming their algorithm; a warning for an expired
//! signer certificate; vouchers signed from an encrypted key verify with
//! `xmlsec1`.

#[path = "support/xmldsig.rs"]
mod xmldsig;

use std::path::Path;
use std::process::Command as Proc;

#[path = "support/cli.rs"]
mod cli;
use cli::{key, openssl_ok as openssl, repo as root};

fn cpekit() -> assert_cmd::Command {
    // `voucher sign` runs the XML-DSig helper beside cpekit.
    xmldsig::helper();
    cli::cpekit()
}

fn build(dir: &Path, name: &str, key_file: &Path, cert: &str, extra: &[&str]) -> std::process::Output {
    cpekit()
        .args(["package", "build", "--manifest"])
        .arg(root().join("testdata/demo/manifest.toml"))
        .arg("-o")
        .arg(dir.join(name))
        .arg("--key")
        .arg(key_file)
        .args(["--cert", cert])
        .args(extra)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap()
}

#[test]
fn every_key_form_signs_the_same_package() {
    let t = tempfile::tempdir().unwrap();
    let d = |n: &str| t.path().join(n).display().to_string();
    let signer = key("signer.key");
    openssl(&["pkcs8", "-topk8", "-nocrypt", "-in", &signer, "-outform", "DER", "-out", &d("pkcs8.der")]);
    openssl(&["rsa", "-in", &signer, "-traditional", "-out", &d("pkcs1.pem")]);
    openssl(&["rsa", "-in", &signer, "-traditional", "-outform", "DER", "-out", &d("pkcs1.der")]);
    openssl(&["pkcs8", "-topk8", "-in", &signer, "-v2", "aes-256-cbc", "-passout", "pass:s3cret", "-out", &d("enc8.pem")]);
    openssl(&["pkcs8", "-topk8", "-in", &signer, "-v2", "aes-128-cbc", "-passout", "pass:s3cret", "-outform", "DER", "-out", &d("enc8.der")]);
    openssl(&["pkcs8", "-topk8", "-in", &signer, "-v2", "des3", "-passout", "pass:s3cret", "-out", &d("enc8-3des.pem")]);
    openssl(&["rsa", "-in", &signer, "-traditional", "-aes256", "-passout", "pass:s3cret", "-out", &d("legacy-aes.pem")]);
    openssl(&["rsa", "-in", &signer, "-traditional", "-des3", "-passout", "pass:s3cret", "-out", &d("legacy-3des.pem")]);
    openssl(&["x509", "-in", &key("signer.pem"), "-outform", "DER", "-out", &d("signer.der")]);
    std::fs::write(t.path().join("pass.txt"), "s3cret\nignored second line\n").unwrap();

    let reference = build(t.path(), "ref.pkg", Path::new(&signer), &key("signer.pem"), &[]);
    assert!(reference.status.success(), "{}", String::from_utf8_lossy(&reference.stderr));
    let expected = std::fs::read(t.path().join("ref.pkg")).unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("pkcs8.der", &[]),
        ("pkcs1.pem", &[]),
        ("pkcs1.der", &[]),
        ("enc8.pem", &["--pass", "pass:s3cret"]),
        ("enc8.der", &["--pass", "env:CPEKIT_TEST_PASS"]),
        ("enc8-3des.pem", &["--pass", &format!("file:{}", d("pass.txt"))]),
        ("legacy-aes.pem", &["--pass", "pass:s3cret"]),
        ("legacy-3des.pem", &["--pass", "pass:s3cret"]),
    ];
    for (file, extra) in cases {
        let out = cpekit()
            .args(["package", "build", "--manifest"])
            .arg(root().join("testdata/demo/manifest.toml"))
            .arg("-o")
            .arg(t.path().join(format!("{file}.pkg")))
            .arg("--key")
            .arg(t.path().join(file))
            .args(["--cert", &d("signer.der")])
            .args(*extra)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .env("CPEKIT_TEST_PASS", "s3cret")
            .output()
            .unwrap();
        assert!(out.status.success(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
        // The same key and time: the same bytes as from the PEM key.
        assert_eq!(std::fs::read(t.path().join(format!("{file}.pkg"))).unwrap(), expected, "{file}");
    }
    let v = cpekit().args(["package", "verify"]).arg(t.path().join("ref.pkg")).args(["--trust", &key("ca.pem")]).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));

    // fd: and stdin.
    let out = Proc::new("sh")
        .arg("-c")
        .arg(format!(
            "exec 3<'{}'; exec '{}' package build --manifest '{}' -o '{}' --key '{}' --cert '{}' --pass fd:3",
            d("pass.txt"),
            assert_cmd::cargo::cargo_bin("cpekit").display(),
            root().join("testdata/demo/manifest.toml").display(),
            d("fd.pkg"),
            d("enc8.pem"),
            key("signer.pem")
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "fd: {}", String::from_utf8_lossy(&out.stderr));
    let out = cpekit()
        .args(["package", "build", "--manifest"])
        .arg(root().join("testdata/demo/manifest.toml"))
        .arg("-o")
        .arg(d("stdin.pkg"))
        .args(["--key", &d("legacy-aes.pem"), "--cert", &key("signer.pem"), "--pass", "stdin"])
        .write_stdin("s3cret\n")
        .output()
        .unwrap();
    assert!(out.status.success(), "stdin: {}", String::from_utf8_lossy(&out.stderr));

    // Wrong, missing, malformed passphrases.
    for (file, extra, needle) in [
        ("enc8.pem", vec!["--pass", "pass:wrong"], "wrong passphrase"),
        ("legacy-aes.pem", vec!["--pass", "pass:wrong"], "wrong passphrase"),
        ("enc8.pem", vec![], "--pass"),
        ("legacy-3des.pem", vec![], "--pass"),
    ] {
        let out = build(t.path(), "x.pkg", &t.path().join(file), &key("signer.pem"), &extra);
        assert_eq!(out.status.code(), Some(3), "{file} {extra:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(needle), "{file}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = build(t.path(), "x.pkg", &t.path().join("enc8.pem"), &key("signer.pem"), &["--pass", "s3cret"]);
    assert_eq!(out.status.code(), Some(2), "a bare passphrase is a usage error");
    assert!(!t.path().join("x.pkg").exists());
}

#[test]
fn ec_and_dsa_keys_are_refused_by_name() {
    let t = tempfile::tempdir().unwrap();
    let d = |n: &str| t.path().join(n).display().to_string();
    openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", &d("ec.pem")]);
    openssl(&["pkcs8", "-topk8", "-nocrypt", "-in", &d("ec.pem"), "-outform", "DER", "-out", &d("ec8.der")]);
    openssl(&["ec", "-in", &d("ec.pem"), "-outform", "DER", "-out", &d("ec1.der")]);
    openssl(&["ec", "-in", &d("ec.pem"), "-out", &d("ec1.pem")]);
    openssl(&["pkcs8", "-topk8", "-nocrypt", "-in", &key("dsa-signer.key"), "-outform", "DER", "-out", &d("dsa8.der")]);
    // OpenSSL 3's `pkey -outform DER` writes the traditional DSA form.
    openssl(&["pkey", "-in", &key("dsa-signer.key"), "-outform", "DER", "-out", &d("dsa1.der")]);
    for (file, name) in [
        (d("ec.pem"), "EC (id-ecPublicKey)"),
        (d("ec8.der"), "EC (id-ecPublicKey)"),
        (d("ec1.der"), "EC (SEC 1)"),
        (d("ec1.pem"), "an EC key"),
        (key("dsa-signer.key"), "DSA (id-dsa)"),
        (d("dsa8.der"), "DSA (id-dsa)"),
        (d("dsa1.der"), "a DSA key"),
    ] {
        let out = build(t.path(), "x.pkg", Path::new(&file), &key("signer.pem"), &[]);
        assert_eq!(out.status.code(), Some(3), "{file}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(name) && err.contains("RSA with SHA-1") && !err.contains("1.2.840.113549.1.1.1"), "{file}: {err}");
    }
}

#[test]
fn expired_signer_certificate_warns() {
    let t = tempfile::tempdir().unwrap();
    let out = build(t.path(), "e.pkg", Path::new(&key("expired.key")), &key("expired.pem"), &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning: signer certificate") && err.contains("expired on"), "{err}");
    let out = build(t.path(), "s.pkg", Path::new(&key("signer.key")), &key("signer.pem"), &[]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
}

#[test]
fn vouchers_sign_from_encrypted_and_der_keys() {
    let t = tempfile::tempdir().unwrap();
    let d = |n: &str| t.path().join(n).display().to_string();
    openssl(&["pkcs8", "-topk8", "-in", &key("signer.key"), "-v2", "aes-256-cbc", "-passout", "pass:s3cret", "-outform", "DER", "-out", &d("k.der")]);
    openssl(&["x509", "-in", &key("signer.pem"), "-outform", "DER", "-out", &d("c.der")]);
    let xml = t.path().join("v.xml");
    let out = cpekit()
        .args(["voucher", "sign", "--options"])
        .arg(root().join("testdata/vouchers/options.toml"))
        .arg("-o")
        .arg(&xml)
        .args(["--key", &d("k.der"), "--cert", &d("c.der"), "--pass", "pass:s3cret"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let x = Proc::new("xmlsec1")
        .args(["--verify", "--enabled-key-data", "x509", "--trusted-pem", &key("ca.pem"), "--id-attr:Id", "Object"])
        .arg(&xml)
        .output()
        .unwrap();
    assert!(x.status.success(), "{}", String::from_utf8_lossy(&x.stderr));
}
