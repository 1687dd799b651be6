//! Issue 11: signing respects the file. In-place `package sign` keeps mode,
//! owner and hard links; duplicate signers are refused unless asked for;
//! `--remove` drops one; interrupted builds leave no temporary file; output
//! files honour the umask.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command as Proc;
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "support/cli.rs"]
mod cli;
use cli::{cpekit, is_root, key, repo as root};

fn build_unsigned(out: &Path) {
    cpekit().args(["package", "build", "--manifest"]).arg(root().join("testdata/demo/manifest.toml")).arg("-o").arg(out).assert().success();
}

fn sign(pkg: &Path, who: &str) -> std::process::Output {
    cpekit().args(["package", "sign"]).arg(pkg).args(["--key", &key(&format!("{who}.key")), "--cert", &key(&format!("{who}.pem"))]).output().unwrap()
}

fn signers(pkg: &Path) -> Vec<String> {
    let out = cpekit().args(["package", "inspect", "--json"]).arg(pkg).output().unwrap();
    let j: Value = serde_json::from_slice(&out.stdout).unwrap();
    j["signatures"].as_array().unwrap().iter().map(|s| s["subject"].as_str().unwrap().to_string()).collect()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn in_place_sign_keeps_mode_owner_and_hard_links() {
    let t = tempfile::tempdir().unwrap();
    let pkg = t.path().join("p.pkg");
    build_unsigned(&pkg);
    std::fs::set_permissions(&pkg, std::fs::Permissions::from_mode(0o644)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&pkg, Some(1000), Some(1000)).unwrap();
    }
    let out = sign(&pkg, "signer");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m = std::fs::metadata(&pkg).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o644);
    if is_root() {
        assert_eq!((m.uid(), m.gid()), (1000, 1000));
    }
    assert_eq!(entries(t.path()), ["p.pkg"], "no temporary file left");

    // Hard links: both names see the signed package, on the same inode.
    let link = t.path().join("link.pkg");
    std::fs::hard_link(&pkg, &link).unwrap();
    let ino = m.ino();
    let out = sign(&pkg, "rogue");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::metadata(&pkg).unwrap().ino(), ino);
    assert_eq!(std::fs::metadata(&link).unwrap().nlink(), 2);
    assert_eq!(std::fs::read(&pkg).unwrap(), std::fs::read(&link).unwrap());
    assert_eq!(signers(&link).len(), 2);
    assert_eq!(entries(t.path()), ["link.pkg", "p.pkg"]);
    let v = cpekit().args(["package", "verify"]).arg(&link).args(["--trust", &key("ca.pem")]).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
}

#[test]
fn duplicate_signers_refused_and_signers_removed() {
    let t = tempfile::tempdir().unwrap();
    let pkg = t.path().join("p.pkg");
    build_unsigned(&pkg);
    assert!(sign(&pkg, "signer").status.success());
    let before = std::fs::read(&pkg).unwrap();
    let out = sign(&pkg, "signer");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already signed"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&pkg).unwrap(), before, "a refused sign changes nothing");
    let out =
        cpekit().args(["package", "sign", "--allow-duplicate"]).arg(&pkg).args(["--key", &key("signer.key"), "--cert", &key("signer.pem")]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(sign(&pkg, "rogue").status.success());
    let s = signers(&pkg);
    assert_eq!(s.len(), 3);
    // By index, then by subject.
    cpekit().args(["package", "sign", "--remove", "1"]).arg(&pkg).assert().success();
    assert_eq!(signers(&pkg).len(), 2);
    let rogue = s[2].clone();
    cpekit().args(["package", "sign", "--remove", &rogue]).arg(&pkg).assert().success();
    assert_eq!(signers(&pkg), vec![s[0].clone()]);
    let v = cpekit().args(["package", "verify"]).arg(&pkg).args(["--trust", &key("ca.pem")]).output().unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    // A bad --remove, and --remove with a key, are usage errors.
    assert_eq!(cpekit().args(["package", "sign", "--remove", "7"]).arg(&pkg).output().unwrap().status.code(), Some(2));
    assert_eq!(cpekit().args(["package", "sign", "--remove", "0", "--key", &key("signer.key")]).arg(&pkg).output().unwrap().status.code(), Some(2));
    // The last one can go too: an unsigned package that verify refuses.
    cpekit().args(["package", "sign", "--remove", "0"]).arg(&pkg).assert().success();
    assert!(signers(&pkg).is_empty());
    assert_eq!(cpekit().args(["package", "verify"]).arg(&pkg).args(["--trust", &key("ca.pem")]).output().unwrap().status.code(), Some(1));
}

#[test]
fn output_files_honour_the_umask() {
    let t = tempfile::tempdir().unwrap();
    let bin = assert_cmd::cargo::cargo_bin("cpekit");
    let out = t.path().join("u.pkg");
    let st = Proc::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 027 && exec '{}' package build --manifest '{}' -o '{}'",
            bin.display(),
            root().join("testdata/demo/manifest.toml").display(),
            out.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(std::fs::metadata(&out).unwrap().mode() & 0o777, 0o640);
}

/// SIGINT while a build writes a large (sparse) input: the process ends by
/// the signal, and neither the output nor its temporary file remains.
#[test]
fn interrupted_build_leaves_no_temporary_file() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("in");
        std::fs::create_dir(&src).unwrap();
        let big = std::fs::File::create(src.join("image.bin")).unwrap();
        big.set_len(512 << 20).unwrap(); // 512 MiB, sparse
        drop(big);
        let outdir = t.path().join("out");
        std::fs::create_dir(&outdir).unwrap();
        let mut child = Proc::new(assert_cmd::cargo::cargo_bin("cpekit"))
            .args(["package", "build", "--from-dir"])
            .arg(&src)
            .arg("-o")
            .arg(outdir.join("big.pkg"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the temporary output file exists and has data in it.
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let tmp: Vec<_> = std::fs::read_dir(&outdir).unwrap().map(|e| e.unwrap().path()).collect();
            if tmp.iter().any(|p| std::fs::metadata(p).map(|m| m.len() > 1 << 20).unwrap_or(false)) {
                break;
            }
            assert!(child.try_wait().unwrap().is_none(), "the build ended before it was interrupted");
            assert!(Instant::now() < deadline, "no temporary file appeared");
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: signalling our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(sig), "ended by the signal: {status:?}");
        assert!(entries(&outdir).is_empty(), "left behind: {:?}", entries(&outdir));
    }
}
