//! End-to-end tests of `cpekit package ...` with the TEST keys, including
//! interop with the `openssl cms` CLI in both directions.

use std::path::{Path, PathBuf};
use std::process::Command as Proc;

use serde_json::Value;

#[path = "support/cli.rs"]
mod cli;
use cli::{cpekit, key, openssl, repo as root};

fn demo_manifest() -> String {
    root().join("testdata/demo/manifest.toml").display().to_string()
}

/// Build the demo package with the given signers (key, cert base names).
fn build(dir: &Path, name: &str, signers: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut c = cpekit();
    c.args(["package", "build", "--manifest", &demo_manifest(), "-o"]).arg(&out);
    for s in signers {
        c.args(["--key", &key(&format!("{s}.key")), "--cert", &key(&format!("{s}.pem"))]);
    }
    c.assert().success();
    out
}

fn inspect_json(pkg: &Path) -> Value {
    let out = cpekit().args(["package", "inspect", "--json"]).arg(pkg).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn verify(pkg: &Path, ca: &str) -> std::process::Output {
    cpekit().args(["package", "verify", "--json"]).arg(pkg).args(["--trust", &key(ca)]).output().unwrap()
}

/// (signed message, signature block, payload) of a package on disk.
fn split(pkg: &Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let j = inspect_json(pkg);
    let bytes = std::fs::read(pkg).unwrap();
    let msg_len = 24 + j["header"]["command_list_length"].as_u64().unwrap() as usize;
    let pay = j["payload_offset"].as_u64().unwrap() as usize;
    (bytes[..msg_len].to_vec(), bytes[msg_len..pay].to_vec(), bytes[pay..].to_vec())
}

/// A package written with the library's builder, which writes whatever
/// paths it is given (unlike `package build`), signed by `cpekit package
/// sign` with the TEST key `signer` when asked.
fn write_package(dir: &Path, name: &str, steps: Vec<(pkgfmt::Command, Option<Vec<u8>>)>, signer: Option<&str>) -> PathBuf {
    let mut b = pkgfmt::Builder::new();
    for (c, data) in steps {
        match data {
            Some(d) => {
                b.file(c, pkgfmt::PayloadSource::Bytes(d)).unwrap();
            }
            None => {
                b.command(c);
            }
        }
    }
    let built = b.build(|_, _| {}).unwrap();
    let mut bytes = Vec::new();
    built.write_to(&mut bytes, |_, _| {}).unwrap();
    let out = dir.join(name);
    std::fs::write(&out, bytes).unwrap();
    if let Some(s) = signer {
        cpekit().args(["package", "sign", "--key", &key(&format!("{s}.key")), "--cert", &key(&format!("{s}.pem"))]).arg(&out).assert().success();
    }
    out
}

fn extract(path: &str) -> pkgfmt::Command {
    pkgfmt::Command::ExtractFile(pkgfmt::FileCommand { flags: 0, path: path.into(), sha1: [0; 20], file_offset: 0, file_length: 0, metadata: None })
}

fn remove(path: &str) -> pkgfmt::Command {
    pkgfmt::Command::RemoveFile(pkgfmt::RemoveCommand { flags: 0, path: path.into() })
}

#[test]
fn build_inspect_verify_demo() {
    let t = tempfile::tempdir().unwrap();
    let pkg = build(t.path(), "demo.pkg", &["signer"]);
    let j = inspect_json(&pkg);
    assert_eq!(j["header"]["major"], 1);
    assert_eq!(j["header"]["minor"], 0);
    let cmds = j["commands"].as_array().unwrap();
    // Timeouts, version, description, role, min/max, storage, 5 commands, reboot.
    let names: Vec<&str> = cmds.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names.first(), Some(&"Initial Timeout"));
    assert_eq!(names.last(), Some(&"Reboot"));
    let app = cmds.iter().find(|c| c["path"] == "/bin/app").unwrap();
    assert_eq!(app["type"], 1);
    assert_eq!(app["hash_type"], 1);
    assert_eq!(app["unsafe"], true);
    assert_eq!(app["hash"].as_str().unwrap().len(), 40);
    let mv = cmds.iter().find(|c| c["type"] == 8).unwrap();
    assert_eq!(mv["src"], "/var/old.log");
    let minv = cmds.iter().find(|c| c["type"] == 18).unwrap();
    assert_eq!(minv["version"], serde_json::json!([3, 0, 0]));
    assert_eq!(cmds.iter().find(|c| c["type"] == 10).unwrap()["text"], "3.0.22");
    let sigs = j["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 1);
    assert!(sigs[0]["subject"].as_str().unwrap().contains("TEST"), "{}", sigs[0]);

    let out = verify(&pkg, "ca.pem");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["files"].as_array().unwrap().len(), 3);

    // Human output names the signer that validated.
    let out = cpekit().args(["package", "verify"]).arg(&pkg).args(["--trust", &key("ca.pem")]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("VALID") && text.contains("OK"), "{text}");
}

#[test]
fn untrusted_unsigned_and_tampered_fail() {
    let t = tempfile::tempdir().unwrap();
    let pkg = build(t.path(), "demo.pkg", &["signer"]);
    // Wrong trust anchor.
    let out = verify(&pkg, "rogue.pem");
    assert_eq!(out.status.code(), Some(1));
    // Unsigned.
    let unsigned = build(t.path(), "unsigned.pkg", &[]);
    let out = verify(&unsigned, "ca.pem");
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["trusted"], false);
    assert_eq!(v["signers"].as_array().unwrap().len(), 0);
    // Tampered command list: change the Version text "3.0.22" -> "3.0.99".
    let mut bytes = std::fs::read(&pkg).unwrap();
    let at = bytes.windows(6).position(|w| w == b"3.0.22").unwrap();
    bytes[at + 4..at + 6].copy_from_slice(b"99");
    let tampered = t.path().join("tampered-cmds.pkg");
    std::fs::write(&tampered, &bytes).unwrap();
    let out = verify(&tampered, "ca.pem");
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let err = v["signers"][0]["error"].as_str().unwrap();
    assert!(err.to_lowercase().contains("digest"), "{err}");
    // Tampered payload: last byte.
    let mut bytes = std::fs::read(&pkg).unwrap();
    *bytes.last_mut().unwrap() ^= 0x20;
    let tampered = t.path().join("tampered-payload.pkg");
    std::fs::write(&tampered, &bytes).unwrap();
    let out = verify(&tampered, "ca.pem");
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["trusted"], true);
    assert!(v["payload_error"].as_str().unwrap().contains("hash mismatch"), "{v}");
    // Truncated payload.
    let bytes = std::fs::read(&pkg).unwrap();
    std::fs::write(&tampered, &bytes[..bytes.len() - 3]).unwrap();
    let out = verify(&tampered, "ca.pem");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn malformed_package_exit_3_with_clear_error() {
    let t = tempfile::tempdir().unwrap();
    let pkg = build(t.path(), "demo.pkg", &["signer"]);
    let mut bytes = std::fs::read(&pkg).unwrap();
    bytes[0] = b'3';
    let bad = t.path().join("bad.pkg");
    std::fs::write(&bad, &bytes).unwrap();
    let out = cpekit().args(["package", "inspect"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad preamble"));
    bytes[0] = b'2';
    bytes[11] = 2; // major 2
    std::fs::write(&bad, &bytes).unwrap();
    let out = verify(&bad, "ca.pem");
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("major version 2"));
    // --json callers get the failure as JSON too.
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["exit_code"], 3);
    assert!(v["error"].as_str().unwrap().contains("at byte offset 8"), "{v}");
    let out = cpekit().args(["package", "inspect"]).arg(t.path().join("missing.pkg")).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn sign_only_rewrites_the_signature_block() {
    let t = tempfile::tempdir().unwrap();
    let pkg = build(t.path(), "rogue.pkg", &["rogue"]);
    let (msg0, sig0, pay0) = split(&pkg);
    let out = t.path().join("both.pkg");
    cpekit().args(["package", "sign"]).arg(&pkg).args(["--key", &key("signer.key"), "--cert", &key("signer.pem"), "-o"]).arg(&out).assert().success();
    let (msg1, sig1, pay1) = split(&out);
    assert_eq!(msg0, msg1);
    assert_eq!(pay0, pay1);
    assert_ne!(sig0, sig1);
    // The new signer chains to the CA; the original rogue signature is
    // still valid against its own (self-signed) anchor.
    let v: Value = serde_json::from_slice(&verify(&out, "ca.pem").stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["signers"][0]["valid"], false);
    assert_eq!(v["signers"][1]["valid"], true);
    let v: Value = serde_json::from_slice(&verify(&out, "rogue.pem").stdout).unwrap();
    assert_eq!(v["signers"][0]["valid"], true);
    // In-place signing (no -o) keeps the file consistent. (The same signer
    // again is refused without --allow-duplicate: tests/sign_in_place.rs.)
    cpekit()
        .args(["package", "sign", "--allow-duplicate"])
        .arg(&out)
        .args(["--key", &key("signer.key"), "--cert", &key("signer.pem"), "--no-signed-attributes"])
        .assert()
        .success();
    assert_eq!(inspect_json(&out)["signatures"].as_array().unwrap().len(), 3);
    assert!(verify(&out, "ca.pem").status.success());
    // A truncated package is refused and left as it was.
    let mut bytes = std::fs::read(&out).unwrap();
    bytes.pop();
    std::fs::write(&out, &bytes).unwrap();
    let o =
        cpekit().args(["package", "sign", "--allow-duplicate"]).arg(&out).args(["--key", &key("signer.key"), "--cert", &key("signer.pem")]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("truncated"));
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
}

#[test]
fn multi_signer_with_one_untrusted_verifies() {
    let t = tempfile::tempdir().unwrap();
    let pkg = build(t.path(), "multi.pkg", &["rogue", "signer"]);
    let out = verify(&pkg, "ca.pem");
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["signers"][0]["valid"], false);
    assert!(v["signers"][0]["error"].as_str().unwrap().len() > 10);
}

#[test]
fn openssl_verifies_our_signatures() {
    for attrs in [true, false] {
        let t = tempfile::tempdir().unwrap();
        let pkg = t.path().join("p.pkg");
        let mut c = cpekit();
        c.args(["package", "build", "--manifest", &demo_manifest(), "-o"]).arg(&pkg);
        c.args(["--key", &key("signer.key"), "--cert", &key("signer.pem")]);
        if !attrs {
            c.arg("--no-signed-attributes");
        }
        c.assert().success();
        let (msg, sig, _) = split(&pkg);
        let (m, s) = (t.path().join("msg.bin"), t.path().join("sig.der"));
        std::fs::write(&m, &msg).unwrap();
        std::fs::write(&s, &sig).unwrap();
        let args = |content: &Path| {
            vec![
                "cms".to_string(),
                "-verify".into(),
                "-binary".into(),
                "-inform".into(),
                "DER".into(),
                "-in".into(),
                s.display().to_string(),
                "-content".into(),
                content.display().to_string(),
                "-CAfile".into(),
                key("ca.pem"),
                "-purpose".into(),
                "any".into(),
                "-out".into(),
                "/dev/null".into(),
            ]
        };
        let a = args(&m);
        let out = openssl(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.status.success(), "attrs={attrs}: {}", String::from_utf8_lossy(&out.stderr));
        // And openssl rejects a tampered message.
        let mut bad = msg.clone();
        *bad.last_mut().unwrap() ^= 1;
        std::fs::write(&m, &bad).unwrap();
        let out = openssl(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!out.status.success(), "attrs={attrs}: openssl accepted a tampered message");
    }
}

#[test]
fn we_verify_openssl_signatures() {
    for noattr in [false, true] {
        let t = tempfile::tempdir().unwrap();
        let unsigned = build(t.path(), "u.pkg", &[]);
        let (msg, _, payload) = split(&unsigned);
        let m = t.path().join("msg.bin");
        let s = t.path().join("sig.der");
        std::fs::write(&m, &msg).unwrap();
        let mut args = vec!["cms", "-sign", "-binary", "-md", "sha1", "-outform", "DER"];
        if noattr {
            args.push("-noattr");
        }
        let (signer, inkey, mp, sp) = (key("signer.pem"), key("signer.key"), m.display().to_string(), s.display().to_string());
        args.extend(["-signer", &signer, "-inkey", &inkey, "-in", &mp, "-out", &sp]);
        let out = openssl(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let sig = std::fs::read(&s).unwrap();
        let spliced = t.path().join("openssl.pkg");
        std::fs::write(&spliced, [msg.clone(), sig, payload.clone()].concat()).unwrap();
        let out = verify(&spliced, "ca.pem");
        assert!(out.status.success(), "noattr={noattr}: {}", String::from_utf8_lossy(&out.stdout));
        // A tampered prefix under the same openssl signature is rejected.
        let mut bad = std::fs::read(&spliced).unwrap();
        let at = bad.windows(6).position(|w| w == b"3.0.22").unwrap();
        bad[at] = b'9';
        std::fs::write(&spliced, &bad).unwrap();
        assert_eq!(verify(&spliced, "ca.pem").status.code(), Some(1), "noattr={noattr}");
    }
}

#[test]
fn extract_writes_files_and_confines_paths() {
    let t = tempfile::tempdir().unwrap();
    let pkg = build(t.path(), "demo.pkg", &["signer"]);
    let out = t.path().join("x");
    cpekit().args(["package", "extract"]).arg(&pkg).arg("-o").arg(&out).assert().success();
    let files = root().join("testdata/demo/files");
    assert_eq!(std::fs::read(out.join("bin/app")).unwrap(), std::fs::read(files.join("app.sh")).unwrap());
    assert_eq!(std::fs::read(out.join("www/index.html")).unwrap(), std::fs::read(files.join("www/index.html")).unwrap());
    assert!(out.join("etc/default.001").exists());

    // A package path with `..` never escapes the output directory
    // (`package build` refuses to make one: written with the library).
    let evil = write_package(t.path(), "evil.pkg", vec![(extract("/../../evil"), Some(std::fs::read(files.join("app.sh")).unwrap()))], None);
    let out2 = t.path().join("y/z");
    let o = cpekit().args(["package", "extract"]).arg(&evil).arg("-o").arg(&out2).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains(".."));
    assert!(!t.path().join("evil").exists() && !t.path().join("y/evil").exists());

    // A symlink planted in the output directory is not followed.
    let out3 = t.path().join("s");
    std::fs::create_dir_all(&out3).unwrap();
    std::os::unix::fs::symlink(t.path(), out3.join("bin")).unwrap();
    let o = cpekit().args(["package", "extract"]).arg(&pkg).arg("-o").arg(&out3).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("symlink"));
    assert!(!t.path().join("app").exists());
}

/// Issue 10 item 8: a signed, intact package that no CPE would install (a
/// `..` escape, `remove /../`, a path over PATH_MAX) is not OK: `verify`
/// exits 3 (malformed input) naming the command index and the rule, in
/// both outputs; the same package with good paths verifies.
#[test]
fn verify_applies_the_installers_path_rules() {
    let t = tempfile::tempdir().unwrap();
    let good =
        write_package(t.path(), "good.pkg", vec![(pkgfmt::Command::Version("1".into()), None), (extract("/etc/x"), Some(b"x".to_vec()))], Some("signer"));
    assert_eq!(verify(&good, "ca.pem").status.code(), Some(0));
    let deep = "/a".repeat(2100);
    let cases = [
        ("escape.pkg", vec![(pkgfmt::Command::Version("1".into()), None), (extract("../x"), Some(b"x".to_vec()))], "Extract File", "contains `..`"),
        ("root.pkg", vec![(pkgfmt::Command::Version("1".into()), None), (remove("/../"), None)], "Remove File", "contains `..`"),
        (
            "long.pkg",
            vec![(pkgfmt::Command::Version("1".into()), None), (remove(&deep), None)],
            "Remove File",
            "is 4200 bytes; at most 4095 are allowed (Linux PATH_MAX 4096",
        ),
    ];
    for (name, steps, command, why) in cases {
        let pkg = write_package(t.path(), name, steps, Some("signer"));
        let o = verify(&pkg, "ca.pem");
        assert_eq!(o.status.code(), Some(3), "{name}: {}", String::from_utf8_lossy(&o.stdout));
        let j: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            (j["ok"].as_bool(), j["trusted"].as_bool(), j["payload_ok"].as_bool(), j["paths_ok"].as_bool()),
            (Some(false), Some(true), Some(true), Some(false)),
            "{j}"
        );
        let e = &j["path_error"];
        assert_eq!((e["index"].as_u64(), e["command"].as_str(), e["field"].as_str()), (Some(1), Some(command), Some("Path")), "{j}");
        assert!(e["reason"].as_str().unwrap().contains(why), "{j}");
        let o = cpekit().args(["package", "verify"]).arg(&pkg).args(["--trust", &key("ca.pem")]).output().unwrap();
        assert_eq!(o.status.code(), Some(3));
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains(&format!("paths: FAILED: command #1 ({command}) Path: path ")) && text.contains(why), "{text}");
        assert!(text.contains("NOT INSTALLABLE"), "{text}");
    }
}

/// Issue 10 item 8: `package build` refuses the same paths, in a manifest
/// and from a directory, naming the [[command]] and the rule, and writes
/// nothing.
#[test]
fn build_refuses_paths_no_cpe_accepts() {
    let t = tempfile::tempdir().unwrap();
    let src = root().join("testdata/demo/files/app.sh").display().to_string();
    let long_name = "n".repeat(256);
    let long_path = "/dir".repeat(1025);
    let cases = [
        (format!("type = \"extract\"\npath = \"../x\"\nsource = \"{src}\""), "Path: path \"../x\" contains `..`"),
        ("type = \"remove\"\npath = \"/../\"".to_string(), "Path: path \"/../\" contains `..`"),
        ("type = \"move\"\nsrc = \"/a\"\ndst = \"/b/../../c\"".to_string(), "Destination: path \"/b/../../c\" contains `..`"),
        (format!("type = \"remove\"\npath = \"/etc/{long_name}\""), "has a 256-byte component; at most 255 bytes are allowed (Linux NAME_MAX)"),
        (format!("type = \"remove-subtree\"\npath = \"{long_path}\""), "is 4100 bytes; at most 4095 are allowed (Linux PATH_MAX 4096"),
        ("type = \"symlink\"\npath = \"/etc/l\"\ntarget = \"../../x\"".to_string(), "Target: link target \"../../x\" leads outside the install root"),
        ("type = \"raw\"\ncode = 5\nvalue = \"00000000 0000000c 00000004 2f2e2e2f\"".to_string(), "Path: path \"/../\" contains `..`"),
    ];
    for (i, (cmd, why)) in cases.iter().enumerate() {
        let m = t.path().join(format!("m{i}.toml"));
        std::fs::write(&m, format!("version = \"1\"\n[[command]]\ntype = \"remove\"\npath = \"/ok\"\n[[command]]\n{cmd}\n")).unwrap();
        let out = t.path().join(format!("m{i}.pkg"));
        let o = cpekit().args(["package", "build", "--manifest"]).arg(&m).arg("-o").arg(&out).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{cmd}: {err}");
        assert!(err.contains("[[command]] #1 (") && err.contains(why), "{cmd}: {err}");
        assert!(err.len() < 1000, "a long path is shown by its start: {err}");
        assert!(!out.exists());
    }
    // --from-dir: the prefix is part of every path.
    let dir = t.path().join("tree");
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::write(dir.join("etc/f"), "f").unwrap();
    let out = t.path().join("d.pkg");
    let o = cpekit().args(["package", "build", "--from-dir"]).arg(&dir).args(["--prefix", "/../up", "-o"]).arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("path \"/../up/etc\" contains `..`"), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!out.exists());
}

#[test]
fn dump_annotates_every_field() {
    let t = tempfile::tempdir().unwrap();
    let pkg = build(t.path(), "demo.pkg", &["signer"]);
    let out = cpekit().args(["package", "dump"]).arg(&pkg).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "00000000  32 57 49 52 45 5f 53 50",
        "Major version = 1",
        "Command list length",
        "Path Offset = 32",
        "Hash (SHA-1)",
        "Source Path",
        "Timeout (s) = 120",
        "Version[0] = 3",
        "ContentInfo",
        "/bin/app",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn from_dir_is_deterministic_and_prefixed() {
    let t = tempfile::tempdir().unwrap();
    let dir = root().join("testdata/demo/files");
    let a = t.path().join("a.pkg");
    let b = t.path().join("b.pkg");
    for out in [&a, &b] {
        cpekit()
            .args(["package", "build", "--from-dir"])
            .arg(&dir)
            .args(["--prefix", "/opt/demo", "--version", "1.2.3", "--reboot", "-o"])
            .arg(out)
            .assert()
            .success();
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // A relative DIR works the same (sources are not joined twice).
    let c = t.path().join("c.pkg");
    cpekit()
        .current_dir(root())
        .args(["package", "build", "--from-dir", "testdata/demo/files", "--prefix", "/opt/demo"])
        .args(["--version", "1.2.3", "--reboot", "-o"])
        .arg(&c)
        .assert()
        .success();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());
    let j = inspect_json(&a);
    let paths: Vec<&str> = j["commands"].as_array().unwrap().iter().filter_map(|c| c["path"].as_str()).collect();
    // Sorted, parents first: the directory is a Filesystem Entry before its file.
    assert_eq!(paths, vec!["/opt/demo/app.sh", "/opt/demo/default.cfg", "/opt/demo/www", "/opt/demo/www/index.html"]);
}

#[test]
fn reboot_not_last_is_refused_at_build() {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m.toml");
    std::fs::write(&m, "[[command]]\ntype = \"reboot\"\n[[command]]\ntype = \"remove\"\npath = \"/x\"\n").unwrap();
    let out = cpekit().args(["package", "build", "--manifest"]).arg(&m).arg("-o").arg(t.path().join("o")).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("E.4.8"));
}

#[test]
fn man_pages_are_fresh() {
    let t = tempfile::tempdir().unwrap();
    cpekit().arg("generate-man").arg(t.path()).assert().success();
    let mut names: Vec<_> = std::fs::read_dir(t.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert!(names.len() >= 8, "{names:?}");
    for n in &names {
        let fresh = std::fs::read(t.path().join(n)).unwrap();
        let committed = std::fs::read(root().join("man").join(n)).unwrap_or_default();
        assert!(fresh == committed, "man/{} is stale: run `make man`", n.to_string_lossy());
    }
    let committed = std::fs::read_dir(root().join("man")).unwrap().count();
    assert_eq!(committed, names.len(), "man/ has pages for commands that no longer exist");
    let top = String::from_utf8(std::fs::read(t.path().join("cpekit.1")).unwrap()).unwrap();
    assert!(top.contains("EXIT STATUS"));
}

#[test]
fn key_and_cert_counts_that_differ_are_a_usage_error() {
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("o.pkg");
    let o = cpekit()
        .args(["package", "build", "--manifest", &demo_manifest(), "-o"])
        .arg(&out)
        .args(["--key", &key("signer.key"), "--key", &key("rogue.key"), "--cert", &key("signer.pem")])
        .output()
        .unwrap();
    // Exit 2 like clap's own usage errors (it was 3, "malformed input").
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--key given 2 times but --cert 1 times"));
    assert!(!out.exists());
    // `package sign` adds one signer: a second --key is clap's usage error.
    let pkg = build(t.path(), "demo.pkg", &["signer"]);
    let before = std::fs::read(&pkg).unwrap();
    let o = cpekit()
        .args(["package", "sign"])
        .arg(&pkg)
        .args(["--key", &key("signer.key"), "--key", &key("rogue.key"), "--cert", &key("signer.pem")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(&pkg).unwrap(), before);
}

#[test]
fn install_flag_values_are_usage_errors_reported_as_json_with_json() {
    let t = tempfile::tempdir().unwrap();
    let pkg = build(t.path(), "demo.pkg", &["signer"]);
    std::fs::create_dir(t.path().join("root")).unwrap();
    for bad in [["--attribute", "1:2"], ["--attribute", "1:x=3"], ["--current-version", "1..2"]] {
        let o = cpekit()
            .arg("install")
            .arg(&pkg)
            .arg("--root")
            .arg(t.path().join("root"))
            .args(["--trust", &key("ca.pem"), "--dry-run", "--json"])
            .args(bad)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!((v["ok"].as_bool(), v["exit_code"].as_u64()), (Some(false), Some(2)), "{bad:?}");
        assert!(v["error"].as_str().unwrap().starts_with(bad[0]), "{v}");
    }
}

/// A signer whose extendedKeyUsage lacks codeSigning (RFC 5280 4.2.1.12),
/// made with `openssl` under the TEST root: `package verify` and `install`
/// refuse it unless `--allow-legacy-eku` is given.
#[test]
fn legacy_eku_signer_needs_allow_legacy_eku() {
    let t = tempfile::tempdir().unwrap();
    let p = |n: &str| t.path().join(n).display().to_string();
    let ok = |o: std::process::Output| assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(
        t.path().join("ext.cnf"),
        "[x]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n",
    )
    .unwrap();
    ok(openssl(&["genpkey", "-quiet", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", &p("tls.key")]));
    ok(openssl(&["req", "-new", "-key", &p("tls.key"), "-subj", "/O=cpekit TEST ONLY/CN=cpekit TEST TLS server", "-out", &p("tls.csr")]));
    ok(openssl(&[
        "x509",
        "-req",
        "-in",
        &p("tls.csr"),
        "-CA",
        &key("ca.pem"),
        "-CAkey",
        &key("ca.key"),
        "-set_serial",
        "0x77",
        "-days",
        "30",
        "-extfile",
        &p("ext.cnf"),
        "-extensions",
        "x",
        "-out",
        &p("tls.pem"),
    ]));
    let pkg = t.path().join("tls.pkg");
    cpekit()
        .args(["package", "build", "--manifest", &demo_manifest(), "-o"])
        .arg(&pkg)
        .args(["--key", &p("tls.key"), "--cert", &p("tls.pem")])
        .assert()
        .success();

    let out = verify(&pkg, "ca.pem");
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let err = v["signers"][0]["error"].as_str().unwrap();
    assert!(err.contains("extendedKeyUsage") && err.contains("codeSigning"), "{err}");
    cpekit().args(["package", "verify", "--allow-legacy-eku"]).arg(&pkg).args(["--trust", &key("ca.pem")]).assert().success();

    std::fs::create_dir(t.path().join("root")).unwrap();
    let install = |extra: &[&str]| {
        cpekit()
            .arg("install")
            .arg(&pkg)
            .arg("--root")
            .arg(t.path().join("root"))
            .args(["--trust", &key("ca.pem"), "--dry-run", "--current-version", "3.0.1"])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = install(&[]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("extendedKeyUsage"), "{}", String::from_utf8_lossy(&o.stderr));
    ok(install(&["--allow-legacy-eku"]));
}

/// `cpekit completions SHELL` prints a script the shell accepts, naming
/// the subcommands and flags; `make install PREFIX=...` puts the binary,
/// the man pages and the completions where each tool looks.
#[test]
fn completions_and_make_install() {
    for (shell, needle) in [("bash", "complete -F"), ("zsh", "#compdef cpekit"), ("fish", "complete -c cpekit")] {
        let out = cpekit().args(["completions", shell]).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(needle) && text.contains("normalize-owners") && text.contains("allow-duplicate"), "{shell}");
    }
    let t = tempfile::tempdir().unwrap();
    let script = t.path().join("c.bash");
    std::fs::write(&script, cpekit().args(["completions", "bash"]).output().unwrap().stdout).unwrap();
    assert!(Proc::new("bash").arg("-n").arg(&script).status().unwrap().success(), "bash accepts the script");
    assert_eq!(cpekit().args(["completions", "tcsh"]).output().unwrap().status.code(), Some(2));

    // DESTDIR staging: `make install` also writes /etc/cpekit and the
    // service unit, which must stay inside the test's directory.
    let dest = t.path().join("dest");
    let prefix = dest.join("usr");
    let bin = assert_cmd::cargo::cargo_bin("cpekit");
    let out = Proc::new("make")
        .current_dir(root())
        .args(["--no-print-directory", "install", "PREFIX=/usr"])
        .arg(format!("DESTDIR={}", dest.display()))
        .arg(format!("CPEKIT_BIN={}", bin.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in [
        "bin/cpekit",
        "share/man/man1/cpekit.1",
        "share/man/man1/cpekit-package-build.1",
        "share/man/man1/cpekit-completions.1",
        "share/bash-completion/completions/cpekit",
        "share/zsh/site-functions/_cpekit",
        "share/fish/vendor_completions.d/cpekit.fish",
    ] {
        let m = std::fs::metadata(prefix.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(m.len() > 0, "{f}");
    }
    let v = Proc::new(prefix.join("bin/cpekit")).arg("--version").output().unwrap();
    assert!(v.status.success());
}

/// Every entry below `dir` with its content ("d" for a directory).
fn snapshot(dir: &Path) -> Vec<(String, String)> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .map(|e| {
            let e = e.unwrap();
            let v = if e.file_type().is_dir() { "d".into() } else { String::from_utf8_lossy(&std::fs::read(e.path()).unwrap_or_default()).into_owned() };
            (e.path().strip_prefix(dir).unwrap().display().to_string(), v)
        })
        .collect()
}

/// Issue 10, item 9: `package extract` writes nothing into `-o` unless every
/// hash matches and the payload ends exactly at its declared length; the
/// staging directory beside `-o` is gone afterwards.
#[test]
fn extract_changes_nothing_unless_the_whole_payload_checks_out() {
    let t = tempfile::tempdir().unwrap();
    let pkg = build(t.path(), "demo.pkg", &["signer"]);
    let good = std::fs::read(&pkg).unwrap();
    let mut mismatch = good.clone();
    *mismatch.last_mut().unwrap() ^= 1; // the last payload file's last byte
    let truncated = good[..good.len() - 1].to_vec();
    let mut junk = good.clone();
    junk.extend_from_slice(b"trailing junk");
    for (name, bytes, says) in [("mismatch", mismatch, "hash mismatch"), ("truncated", truncated, "truncated"), ("junk", junk, "longer")] {
        let bad = t.path().join(format!("{name}.pkg"));
        std::fs::write(&bad, &bytes).unwrap();
        // Into an existing output directory with something in it, and into a new one.
        let parent = t.path().join(format!("out-{name}"));
        std::fs::create_dir_all(parent.join("x")).unwrap();
        std::fs::write(parent.join("x/keep"), b"k").unwrap();
        for out in [parent.join("x"), parent.join("new")] {
            let before = snapshot(&parent);
            let o = cpekit().args(["package", "extract"]).arg(&bad).arg("-o").arg(&out).output().unwrap();
            let stderr = String::from_utf8_lossy(&o.stderr).to_lowercase();
            assert_eq!(o.status.code(), Some(1), "{name}: {stderr}");
            assert!(stderr.contains(says), "{name}: {stderr}");
            assert_eq!(snapshot(&parent), before, "{name}: {} or its staging directory changed", out.display());
        }
    }
    // The intact package still extracts, and leaves no staging directory.
    let parent = t.path().join("out-good");
    cpekit().args(["package", "extract"]).arg(&pkg).arg("-o").arg(parent.join("x")).assert().success();
    assert_eq!(std::fs::read_dir(&parent).unwrap().map(|e| e.unwrap().file_name()).collect::<Vec<_>>(), ["x"]);
    assert!(parent.join("x/bin/app").is_file());
}

/// SIGINT (or SIGTERM) while `package extract` stages a large payload: the
/// process ends by the signal, `-o` is not created and the staging
/// directory beside it is removed.
#[test]
fn interrupted_extract_leaves_no_staging_directory() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("in");
    std::fs::create_dir(&src).unwrap();
    let big = std::fs::File::create(src.join("image.bin")).unwrap();
    big.set_len(256 << 20).unwrap(); // 256 MiB, sparse
    drop(big);
    let pkg = t.path().join("big.pkg");
    cpekit().args(["package", "build", "--from-dir"]).arg(&src).arg("-o").arg(&pkg).assert().success();
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let parent = t.path().join(format!("out-{sig}"));
        std::fs::create_dir(&parent).unwrap();
        let mut child = Proc::new(assert_cmd::cargo::cargo_bin("cpekit"))
            .args(["package", "extract"])
            .arg(&pkg)
            .arg("-o")
            .arg(parent.join("x"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the staging directory holds some of the payload.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        loop {
            let staged: u64 = walkdir::WalkDir::new(&parent).into_iter().filter_map(|e| e.ok()?.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum();
            if staged > 1 << 20 {
                break;
            }
            assert!(child.try_wait().unwrap().is_none(), "the extract ended before it was interrupted");
            assert!(std::time::Instant::now() < deadline, "nothing was staged");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // SAFETY: signalling our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(sig), "ended by the signal: {status:?}");
        let left: Vec<_> = std::fs::read_dir(&parent).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}
