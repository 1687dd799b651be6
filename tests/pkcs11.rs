//! Issue 11: signing with a key that never leaves a PKCS#11 token, tested
//! against SoftHSM2 (`make test` installs Debian's `softhsm2`): `--key
//! 'pkcs11:token=...;object=...'` for `package build` and `package sign`,
//! verified by `openssl cms -verify` and by cpekit.

#[path = "support/xmldsig.rs"]
mod xmldsig;

use std::path::{Path, PathBuf};
use std::process::Command as Proc;

use assert_cmd::Command;

#[path = "support/cli.rs"]
mod cli;
use cli::{key, repo as root};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A SoftHSM2 token "cpekit" (user PIN 1234) holding the TEST signer key
/// as "signer" (id 01), in its own token directory.
fn token(dir: &Path) -> PathBuf {
    assert!(Path::new(MODULE).exists(), "{MODULE} missing: `make test` installs softhsm2 (apt-get install softhsm2)");
    let tokens = dir.join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(&conf, format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display())).unwrap();
    let util = |args: &[&str]| {
        let out = Proc::new("softhsm2-util").env("SOFTHSM2_CONF", &conf).args(args).output().expect("softhsm2-util");
        assert!(out.status.success(), "softhsm2-util {args:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    };
    util(&["--init-token", "--free", "--label", "cpekit", "--pin", "1234", "--so-pin", "5678"]);
    util(&["--import", &key("signer.key"), "--token", "cpekit", "--label", "signer", "--id", "01", "--pin", "1234"]);
    util(&["--import", &key("rogue.key"), "--token", "cpekit", "--label", "rogue", "--id", "02", "--pin", "1234"]);
    conf
}

fn cpekit(conf: &Path) -> Command {
    // `voucher sign|verify` run the XML-DSig helper beside cpekit.
    xmldsig::helper();
    let mut c = Command::cargo_bin("cpekit").unwrap();
    c.env("SOFTHSM2_CONF", conf);
    c
}

fn openssl_verifies(pkg: &Path, dir: &Path) {
    let j: serde_json::Value =
        serde_json::from_slice(&Command::cargo_bin("cpekit").unwrap().args(["package", "inspect", "--json"]).arg(pkg).output().unwrap().stdout).unwrap();
    let bytes = std::fs::read(pkg).unwrap();
    let n = 24 + j["header"]["command_list_length"].as_u64().unwrap() as usize;
    let p = j["payload_offset"].as_u64().unwrap() as usize;
    std::fs::write(dir.join("msg"), &bytes[..n]).unwrap();
    std::fs::write(dir.join("sig.der"), &bytes[n..p]).unwrap();
    let out = Proc::new("openssl")
        .args(["cms", "-verify", "-binary", "-inform", "DER", "-in"])
        .arg(dir.join("sig.der"))
        .arg("-content")
        .arg(dir.join("msg"))
        .args(["-CAfile", &key("ca.pem"), "-purpose", "any", "-out", "/dev/null"])
        .output()
        .unwrap();
    assert!(out.status.success(), "openssl cms -verify: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn token_keys_sign_packages() {
    let t = tempfile::tempdir().unwrap();
    let conf = token(t.path());
    let manifest = root().join("testdata/demo/manifest.toml");
    // module-path and pin-value in the URI.
    let pkg = t.path().join("hsm.pkg");
    let uri = format!("pkcs11:token=cpekit;object=signer;type=private?module-path={MODULE}&pin-value=1234");
    let out = cpekit(&conf)
        .args(["package", "build", "--manifest"])
        .arg(&manifest)
        .arg("-o")
        .arg(&pkg)
        .args(["--key", &uri, "--cert", &key("signer.pem")])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    openssl_verifies(&pkg, t.path());
    let v = cpekit(&conf).args(["package", "verify"]).arg(&pkg).args(["--trust", &key("ca.pem")]).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    // The token's signature is the one the key file makes (RSA PKCS#1 v1.5 is deterministic).
    let file = t.path().join("file.pkg");
    cpekit(&conf)
        .args(["package", "build", "--manifest"])
        .arg(&manifest)
        .arg("-o")
        .arg(&file)
        .args(["--key", &key("signer.key"), "--cert", &key("signer.pem")])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .assert()
        .success();
    assert_eq!(std::fs::read(&pkg).unwrap(), std::fs::read(&file).unwrap());

    // `package sign` with the module from --pkcs11-module, the key by id, the PIN from --pass.
    let out = cpekit(&conf)
        .args(["package", "sign"])
        .arg(&pkg)
        .args(["--key", "pkcs11:token=cpekit;id=%02", "--cert", &key("rogue.pem"), "--pkcs11-module", MODULE, "--pass", "pass:1234"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = cpekit(&conf).args(["package", "verify", "--json"]).arg(&pkg).args(["--trust", &key("rogue.pem")]).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));

    // pin-source, and failures: wrong PIN, no such key, key and certificate that differ.
    std::fs::write(t.path().join("pin"), "1234\n").unwrap();
    let src = format!("pkcs11:token=cpekit;object=signer?module-path={MODULE}&pin-source=file:{}", t.path().join("pin").display());
    let ok = cpekit(&conf)
        .args(["package", "build", "--manifest"])
        .arg(&manifest)
        .arg("-o")
        .arg(t.path().join("p.pkg"))
        .args(["--key", &src, "--cert", &key("signer.pem")])
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    for (uri, cert, needle) in [
        (format!("pkcs11:token=cpekit;object=signer?module-path={MODULE}&pin-value=0000"), key("signer.pem"), "wrong PIN"),
        (format!("pkcs11:token=cpekit;object=nobody?module-path={MODULE}&pin-value=1234"), key("signer.pem"), "no private key matches"),
        (format!("pkcs11:token=other;object=signer?module-path={MODULE}&pin-value=1234"), key("signer.pem"), "no token matches"),
        (format!("pkcs11:token=cpekit;object=signer?module-path={MODULE}&pin-value=1234"), key("rogue.pem"), "does not match certificate"),
        ("pkcs11:token=cpekit;object=signer?pin-value=1234".to_string(), key("signer.pem"), "no PKCS#11 module"),
    ] {
        let out = cpekit(&conf)
            .env_remove("CPEKIT_PKCS11_MODULE")
            .args(["package", "build", "--manifest"])
            .arg(&manifest)
            .arg("-o")
            .arg(t.path().join("x.pkg"))
            .args(["--key", &uri, "--cert", &cert])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{uri}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(needle), "{uri}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(!t.path().join("x.pkg").exists());
    }
}

/// `voucher sign` with the token key: libxmlsec1 prepares the Signature,
/// the token signs the canonical SignedInfo; `xmlsec1 --verify` and
/// `cpekit voucher verify` accept it, with RSA-SHA1 and RSA-SHA256.
#[test]
fn token_keys_sign_vouchers() {
    let t = tempfile::tempdir().unwrap();
    let conf = token(t.path());
    let uri = format!("pkcs11:token=cpekit;object=signer?module-path={MODULE}&pin-value=1234");
    for extra in [&[][..], &["--sha256"][..]] {
        let xml = t.path().join("v.xml");
        let out = cpekit(&conf)
            .args(["voucher", "sign", "--options"])
            .arg(root().join("testdata/vouchers/options.toml"))
            .arg("-o")
            .arg(&xml)
            .args(["--key", &uri, "--cert", &key("signer.pem")])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let x = Proc::new("xmlsec1")
            .args(["--verify", "--enabled-key-data", "x509", "--trusted-pem", &key("ca.pem"), "--id-attr:Id", "Object"])
            .arg(&xml)
            .output()
            .unwrap();
        assert!(x.status.success(), "xmlsec1 {extra:?}: {}", String::from_utf8_lossy(&x.stderr));
        let v = cpekit(&conf)
            .args(["voucher", "verify"])
            .arg(&xml)
            .args(["--trust", &key("ca.pem"), "--oui", "00d09e", "--product-class", "Gateway", "--serial", "CPE0001", "--now", "2026-12-15T00:00:00Z"])
            .output()
            .unwrap();
        assert!(v.status.success(), "{}{}", String::from_utf8_lossy(&v.stdout), String::from_utf8_lossy(&v.stderr));
    }
    // The token key must be the certificate's.
    let out = cpekit(&conf)
        .args(["voucher", "sign", "--options"])
        .arg(root().join("testdata/vouchers/options.toml"))
        .arg("-o")
        .arg(t.path().join("bad.xml"))
        .args(["--key", &uri, "--cert", &key("rogue.pem")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!t.path().join("bad.xml").exists());
}
