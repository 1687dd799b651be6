//! Issue 11: a real root filesystem survives the trip. Build from a tree
//! with modes, owners, symlinks and an empty directory; check the extended
//! file records against a reader that knows only Table 69; reproducible
//! signed builds; manifest errors that name their command.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command as Proc;

use serde_json::Value;

#[path = "support/cli.rs"]
mod cli;
use cli::{cpekit, is_root, key};

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

/// A small root filesystem: 0755/0600/0640 files, files of uid 1000 (when
/// the tests run as root, as in CI), a symlink, a dangling symlink, an empty
/// directory and a directory with its own mode.
fn make_tree(dir: &Path) {
    let w = |rel: &str, body: &[u8], mode: u32| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
        chmod(&p, mode);
    };
    w("bin/app", b"#!/bin/sh\necho app\n", 0o755);
    w("etc/secret", b"hunter2\n", 0o600);
    w("etc/app.conf", b"level=3\n", 0o640);
    w("home/user/notes.txt", b"notes\n", 0o644);
    symlink("app", dir.join("bin/app-link")).unwrap();
    symlink("../nowhere/at/all", dir.join("etc/dangling")).unwrap();
    std::fs::create_dir_all(dir.join("var/empty")).unwrap();
    chmod(&dir.join("var/empty"), 0o1777);
    chmod(&dir.join("home/user"), 0o700);
    if is_root() {
        chown(&dir.join("home/user"), 1000, 1000);
        chown(&dir.join("home/user/notes.txt"), 1000, 1000);
        chown(&dir.join("etc/app.conf"), 0, 1000);
        chown(&dir.join("etc/dangling"), 1000, 1000);
    }
}

fn inspect_json(pkg: &Path) -> Value {
    let out = cpekit().args(["package", "inspect", "--json"]).arg(pkg).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn word(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// Walk a package's command list the way a reader that knows only Annex E
/// does (Tables 66, 67, 69): for each Extract/Add, the path, hash, offset
/// and length from the eight Table 69 fields; other types skipped by Length.
fn table_69_view(pkg: &[u8]) -> Vec<(String, Vec<u8>, u32, u32)> {
    let list_len = word(pkg, 16) as usize;
    let list = &pkg[24..24 + list_len];
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < list.len() {
        let (kind, len) = (word(list, pos), word(list, pos + 4) as usize);
        let v = &list[pos + 8..pos + 8 + len];
        if (1..=4).contains(&kind) {
            let (po, pl, ho, hl) = (word(v, 4) as usize, word(v, 8) as usize, word(v, 16) as usize, word(v, 20) as usize);
            assert_eq!(word(v, 12), 1, "Hash Type SHA-1");
            out.push((String::from_utf8(v[po..po + pl].to_vec()).unwrap(), v[ho..ho + hl].to_vec(), word(v, 24), word(v, 28)));
        }
        pos += 8 + len;
    }
    out
}

#[test]
fn from_dir_records_modes_owners_links_and_directories() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("rootfs");
    make_tree(&src);
    let pkg = t.path().join("rootfs.pkg");
    cpekit().args(["package", "build", "--from-dir"]).arg(&src).arg("-o").arg(&pkg).assert().success();
    let j = inspect_json(&pkg);
    let cmds = j["commands"].as_array().unwrap();
    let by_path = |p: &str| cmds.iter().find(|c| c["path"] == p).unwrap_or_else(|| panic!("no command for {p}: {cmds:#?}"));
    // Sorted, parents first.
    let paths: Vec<&str> = cmds.iter().map(|c| c["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "/bin",
            "/bin/app",
            "/bin/app-link",
            "/etc",
            "/etc/app.conf",
            "/etc/dangling",
            "/etc/secret",
            "/home",
            "/home/user",
            "/home/user/notes.txt",
            "/var",
            "/var/empty"
        ]
    );
    assert_eq!(by_path("/bin/app")["record"], "extended");
    assert_eq!(by_path("/bin/app")["metadata"]["mode"], "0755");
    assert_eq!(by_path("/etc/secret")["metadata"]["mode"], "0600");
    assert_eq!(by_path("/etc/app.conf")["metadata"]["mode"], "0640");
    assert_eq!(by_path("/bin/app-link")["entry"], "symlink");
    assert_eq!(by_path("/bin/app-link")["target"], "app");
    assert_eq!(by_path("/bin/app-link")["type"], 2069);
    assert_eq!(by_path("/bin/app-link")["name"], "cpekit Filesystem Entry");
    assert_eq!(by_path("/etc/dangling")["target"], "../nowhere/at/all");
    assert_eq!(by_path("/var/empty")["entry"], "directory");
    assert_eq!(by_path("/var/empty")["metadata"]["mode"], "1777");
    assert_eq!(by_path("/home/user")["metadata"]["mode"], "0700");
    if is_root() {
        assert_eq!(by_path("/home/user/notes.txt")["metadata"]["uid"], 1000);
        assert_eq!(by_path("/etc/app.conf")["metadata"]["gid"], 1000);
        assert_eq!(by_path("/etc/dangling")["metadata"]["uid"], 1000);
    }

    // Every extended record still reads right as plain Table 69.
    let bytes = std::fs::read(&pkg).unwrap();
    let old = table_69_view(&bytes);
    let files: Vec<&Value> = cmds.iter().filter(|c| c["hash"].is_string()).collect();
    assert_eq!(old.len(), 4);
    assert_eq!(old.len(), files.len());
    let payload_base = j["payload_offset"].as_u64().unwrap() as usize;
    for ((path, hash, off, len), c) in old.iter().zip(&files) {
        assert_eq!(c["path"], path.as_str());
        assert_eq!(c["hash"], hex::encode(hash));
        assert_eq!(c["file_offset"], *off);
        assert_eq!(c["file_length"], *len);
        let rel = path.trim_start_matches('/');
        let content = &bytes[payload_base + *off as usize..payload_base + (*off + *len) as usize];
        assert_eq!(content, std::fs::read(src.join(rel)).unwrap(), "{path}");
    }

    // --normalize-owners records 0:0 whoever owns the tree.
    let norm = t.path().join("norm.pkg");
    cpekit().args(["package", "build", "--normalize-owners", "--from-dir"]).arg(&src).arg("-o").arg(&norm).assert().success();
    for c in inspect_json(&norm)["commands"].as_array().unwrap() {
        assert_eq!((c["metadata"]["uid"].as_u64(), c["metadata"]["gid"].as_u64()), (Some(0), Some(0)), "{c}");
    }

    // dump shows the extension and the entry byte by byte.
    let out = cpekit().args(["package", "dump"]).arg(&pkg).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["Header Length (extended file record) = 100", "Mode = 0o100755", "Path Offset = 100", "Identifier \"cpekit/fsentry/1\"", "Target \"app\""] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn special_files_a_file_and_an_empty_tree_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("tree");
    std::fs::create_dir(&src).unwrap();
    let build = |dir: &Path| cpekit().args(["package", "build", "--from-dir"]).arg(dir).arg("-o").arg(t.path().join("o.pkg")).output().unwrap();
    let out = build(&src);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(src.join("f"), b"x").unwrap();
    let out = build(&src.join("f"));
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a directory"), "{}", String::from_utf8_lossy(&out.stderr));
    let fifo = std::ffi::CString::new(src.join("pipe").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    let out = build(&src);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pipe") && err.contains("is a FIFO"), "{err}");
    assert!(!t.path().join("o.pkg").exists());
}

#[test]
fn manifest_errors_name_the_command_and_path() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir(t.path().join("adir")).unwrap();
    let build = |manifest: &str| {
        let m = t.path().join("m.toml");
        std::fs::write(&m, manifest).unwrap();
        let out = cpekit().args(["package", "build", "--manifest"]).arg(&m).arg("-o").arg(t.path().join("o.pkg")).output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{manifest}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = build("[[command]]\ntype = \"remove\"\npath = \"/x\"\n[[command]]\ntype = \"extract\"\npath = \"/bin/app\"\nsource = \"missing\"\n");
    assert!(e.contains("[[command]] #1 (extract /bin/app)") && e.contains("missing"), "{e}");
    let e = build("[[command]]\ntype = \"extract\"\npath = \"/etc/d\"\nsource = \"adir\"\n");
    assert!(e.contains("[[command]] #0 (extract /etc/d)") && e.contains("is a directory"), "{e}");
    let e = build("[[command]]\ntype = \"symlink\"\npath = \"/l\"\n");
    assert!(e.contains("[[command]] #0 (symlink /l)") && e.contains("target"), "{e}");
    let e = build("[[command]]\ntype = \"directory\"\npath = \"/d\"\nmode = \"0999\"\n");
    assert!(e.contains("[[command]] #0 (directory /d)") && e.contains("octal"), "{e}");
    let e = build("version = \"1.0\"\n");
    assert!(e.contains("no [[command]]"), "{e}");
    assert!(!t.path().join("o.pkg").exists());

    // And what a manifest can state.
    std::fs::write(t.path().join("app"), b"app").unwrap();
    let m = t.path().join("ok.toml");
    std::fs::write(
        &m,
        "[[command]]\ntype = \"extract\"\npath = \"/bin/app\"\nsource = \"app\"\nmode = 0o4755\nuid = 0\ngid = 50\nmtime = 1700000000\n\
         [[command]]\ntype = \"directory\"\npath = \"/tmp\"\nmode = \"1777\"\n\
         [[command]]\ntype = \"symlink\"\npath = \"/bin/sh\"\ntarget = \"busybox\"\nuid = 0\n\
         [[command]]\ntype = \"extract\"\npath = \"/etc/plain\"\nsource = \"app\"\n",
    )
    .unwrap();
    let pkg = t.path().join("ok.pkg");
    cpekit().args(["package", "build", "--manifest"]).arg(&m).arg("-o").arg(&pkg).assert().success();
    let j = inspect_json(&pkg);
    let c = &j["commands"];
    assert_eq!(c[0]["metadata"], serde_json::json!({"mode": "4755", "uid": 0, "gid": 50, "mtime": {"seconds": 1700000000u64, "nanoseconds": 0}}));
    assert_eq!(c[1]["metadata"], serde_json::json!({"mode": "1777"}));
    assert_eq!(c[2]["target"], "busybox");
    assert_eq!(c[3]["record"], "table-69");
    assert!(c[3].get("metadata").is_none());
}

/// SOURCE_DATE_EPOCH: the signingTime is that time, and two signed builds
/// of the same tree with the same key are byte-identical (`cmp`).
#[test]
fn source_date_epoch_makes_signed_builds_identical() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("rootfs");
    make_tree(&src);
    let build = |name: &str, epoch: Option<&str>| {
        let out = t.path().join(name);
        let mut c = cpekit();
        c.args(["package", "build", "--from-dir"]).arg(&src).arg("-o").arg(&out);
        c.args(["--key", &key("signer.key"), "--cert", &key("signer.pem")]);
        match epoch {
            Some(e) => c.env("SOURCE_DATE_EPOCH", e),
            None => c.env_remove("SOURCE_DATE_EPOCH"),
        };
        c.assert().success();
        out
    };
    let a = build("a.pkg", Some("1700000000"));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = build("b.pkg", Some("1700000000"));
    let cmp = Proc::new("cmp").arg(&a).arg(&b).status().unwrap();
    assert!(cmp.success(), "two builds with SOURCE_DATE_EPOCH differ");
    // The time is the one given: openssl shows the signingTime.
    let (msg, sig) = {
        let j = inspect_json(&a);
        let bytes = std::fs::read(&a).unwrap();
        let n = 24 + j["header"]["command_list_length"].as_u64().unwrap() as usize;
        (bytes[..n].to_vec(), bytes[n..j["payload_offset"].as_u64().unwrap() as usize].to_vec())
    };
    std::fs::write(t.path().join("sig.der"), &sig).unwrap();
    std::fs::write(t.path().join("msg"), &msg).unwrap();
    let out = Proc::new("openssl").args(["cms", "-cmsout", "-print", "-inform", "DER", "-in"]).arg(t.path().join("sig.der")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Nov 14 22:13:20 2023 GMT"), "signingTime is SOURCE_DATE_EPOCH:\n{text}");
    let v = Proc::new("openssl")
        .args(["cms", "-verify", "-binary", "-inform", "DER", "-in"])
        .arg(t.path().join("sig.der"))
        .arg("-content")
        .arg(t.path().join("msg"))
        .args(["-CAfile", &key("ca.pem"), "-purpose", "any", "-out", "/dev/null"])
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    // Without it, the time is now: the builds differ.
    let c = build("c.pkg", None);
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());
    // A bad value is a usage error.
    let out = cpekit()
        .args(["package", "build", "--from-dir"])
        .arg(&src)
        .arg("-o")
        .arg(t.path().join("d.pkg"))
        .args(["--key", &key("signer.key"), "--cert", &key("signer.pem")])
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `find DIR -mindepth 1 -printf '%m %u %g %y %l %P'`, sorted: mode,
/// owner, group, type, link target and path of everything under DIR.
fn find(dir: &Path) -> Vec<String> {
    let out = Proc::new("find").arg(dir).args(["-mindepth", "1", "-printf", "%m %u %g %y %l %P\\n"]).output().unwrap();
    assert!(out.status.success());
    let mut v: Vec<String> = String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect();
    v.sort();
    v
}

fn install(pkg: &Path, root: &Path) -> std::process::Output {
    cpekit().args(["install", "--allow-unsigned", "--root"]).arg(root).arg(pkg).output().unwrap()
}

fn build_manifest(dir: &Path, name: &str, manifest: &str) -> PathBuf {
    let m = dir.join(format!("{name}.toml"));
    std::fs::write(&m, manifest).unwrap();
    let pkg = dir.join(format!("{name}.pkg"));
    let out = cpekit().args(["package", "build", "--manifest"]).arg(&m).arg("-o").arg(&pkg).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    pkg
}

/// `package build` of `manifest` fails with status 3; its stderr.
fn build_manifest_err(dir: &Path, name: &str, manifest: &str) -> String {
    let m = dir.join(format!("{name}.toml"));
    std::fs::write(&m, manifest).unwrap();
    let out = cpekit().args(["package", "build", "--manifest"]).arg(&m).arg("-o").arg(dir.join(format!("{name}.pkg"))).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The check: build from a tree, install into a root, and `find`
/// shows the same modes, owners, types and link targets; `extract` too.
#[test]
fn install_reproduces_the_tree() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("rootfs");
    make_tree(&src);
    let pkg = t.path().join("rootfs.pkg");
    cpekit().args(["package", "build", "--from-dir"]).arg(&src).arg("-o").arg(&pkg).assert().success();
    let dst = t.path().join("target");
    std::fs::create_dir(&dst).unwrap();
    let out = install(&pkg, &dst);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(find(&dst), find(&src));
    for f in ["bin/app", "etc/secret", "home/user/notes.txt"] {
        assert_eq!(std::fs::read(dst.join(f)).unwrap(), std::fs::read(src.join(f)).unwrap(), "{f}");
    }
    // Installing it again over itself changes nothing.
    let out = install(&pkg, &dst);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(find(&dst), find(&src));

    // extract applies modes (owners as root), directories and links.
    let ex = t.path().join("extracted");
    let out = cpekit().args(["package", "extract"]).arg(&pkg).arg("-o").arg(&ex).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    if is_root() {
        assert_eq!(find(&ex), find(&src));
    } else {
        let modes = |v: Vec<String>| {
            v.into_iter()
                .map(|l| l.split(' ').enumerate().filter(|(i, _)| *i != 1 && *i != 2).map(|(_, w)| w.to_string()).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        };
        assert_eq!(modes(find(&ex)), modes(find(&src)));
    }
}

/// Replacing a file without recorded attributes keeps the old file's mode
/// and owner; a new file is 0644 and a new directory 0755.
#[test]
fn replaced_files_keep_their_mode_and_owner() {
    let t = tempfile::tempdir().unwrap();
    let dst = t.path().join("target");
    std::fs::create_dir_all(dst.join("etc")).unwrap();
    std::fs::write(dst.join("etc/secret"), b"old").unwrap();
    chmod(&dst.join("etc/secret"), 0o600);
    if is_root() {
        chown(&dst.join("etc/secret"), 1000, 1000);
    }
    std::fs::write(t.path().join("new"), b"new secret").unwrap();
    let pkg = build_manifest(
        t.path(),
        "p",
        "[[command]]\ntype = \"extract\"\npath = \"/etc/secret\"\nsource = \"new\"\n[[command]]\ntype = \"extract\"\npath = \"/opt/x/fresh\"\nsource = \"new\"\n",
    );
    let out = install(&pkg, &dst);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let f = find(&dst);
    let line = f.iter().find(|l| l.ends_with(" etc/secret")).unwrap();
    assert!(line.starts_with("600 "), "{f:#?}");
    if is_root() {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(dst.join("etc/secret")).unwrap();
        assert_eq!((m.uid(), m.gid()), (1000, 1000));
    }
    assert_eq!(std::fs::read(dst.join("etc/secret")).unwrap(), b"new secret");
    assert!(f.iter().any(|l| l.starts_with("644 ") && l.ends_with(" opt/x/fresh")), "{f:#?}");
    assert!(f.iter().any(|l| l.starts_with("755 ") && l.ends_with(" d  opt/x")), "{f:#?}");
}

/// A symlink the package creates is never followed by a later command of
/// the same package, and a link whose target leaves the root is refused:
/// in both cases before anything changes.
#[test]
fn package_links_are_never_followed_nor_escape() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("f"), b"x").unwrap();
    let dst = t.path().join("target");
    std::fs::create_dir_all(dst.join("etc/sub")).unwrap();
    let before = find(&dst);
    let follow = build_manifest(
        t.path(),
        "follow",
        "[[command]]\ntype = \"symlink\"\npath = \"/etc/l\"\ntarget = \"sub\"\n[[command]]\ntype = \"extract\"\npath = \"/etc/l/file\"\nsource = \"f\"\n",
    );
    let out = install(&follow, &dst);
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("never follows"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(find(&dst), before);
    for target in ["../../outside", "/../x", "../.."] {
        // `package build` refuses such a link (the same rule); the library writes it.
        let m = build_manifest_err(t.path(), "escape", &format!("[[command]]\ntype = \"symlink\"\npath = \"/etc/l\"\ntarget = \"{target}\"\n"));
        assert!(m.contains("leads outside the install root"), "{m}");
        let entry = pkgfmt::FilesystemEntry {
            flags: 0,
            path: "/etc/l".into(),
            kind: pkgfmt::EntryKind::Symlink { target: target.into() },
            metadata: Default::default(),
        };
        let mut b = pkgfmt::Builder::new();
        b.command(pkgfmt::Command::FilesystemEntry(entry));
        let mut bytes = Vec::new();
        b.build(|_, _| {}).unwrap().write_to(&mut bytes, |_, _| {}).unwrap();
        let escape = t.path().join("escape.pkg");
        std::fs::write(&escape, bytes).unwrap();
        let out = install(&escape, &dst);
        assert_eq!(out.status.code(), Some(5), "{target}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("outside the install root"), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(find(&dst), before);
    }
    // Inside the root, absolute or relative, dangling or not: fine.
    let ok = build_manifest(
        t.path(),
        "ok",
        "[[command]]\ntype = \"symlink\"\npath = \"/etc/a\"\ntarget = \"/usr/lib/x\"\n[[command]]\ntype = \"symlink\"\npath = \"/etc/sub/b\"\ntarget = \"../a\"\n",
    );
    let out = install(&ok, &dst);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read_link(dst.join("etc/sub/b")).unwrap(), Path::new("../a"));
    // Another vendor's command 2069 (no cpekit identifier) is skipped.
    let foreign = build_manifest(t.path(), "foreign", "[[command]]\ntype = \"vendor\"\ncode = 2069\nvalue = \"41434d4500000001\"\n");
    let j = inspect_json(&foreign);
    assert_eq!(j["commands"][0]["name"], "Vendor-specific");
    let before = find(&dst);
    let out = install(&foreign, &dst);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(find(&dst), before);
}

/// Attributes are part of the transaction: at every fail point (power
/// loss), recovery gives exactly the old tree or exactly the new one.
#[test]
fn attributes_are_journaled_and_recovered() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("f"), b"payload").unwrap();
    let pkg = build_manifest(
        t.path(),
        "p",
        "[[command]]\ntype = \"directory\"\npath = \"/var\"\nmode = \"0755\"\nuid = 0\ngid = 0\n\
         [[command]]\ntype = \"directory\"\npath = \"/var/new/deep\"\nmode = \"0700\"\n\
         [[command]]\ntype = \"symlink\"\npath = \"/var/link\"\ntarget = \"new\"\n\
         [[command]]\ntype = \"extract\"\npath = \"/var/file\"\nsource = \"f\"\nmode = \"0640\"\n",
    );
    let fresh = |n: u32| {
        let r = t.path().join(format!("root{n}"));
        std::fs::create_dir_all(r.join("var")).unwrap();
        chmod(&r.join("var"), 0o700);
        std::fs::write(r.join("var/file"), b"old").unwrap();
        chmod(&r.join("var/file"), 0o600);
        r
    };
    let old = find(&fresh(0));
    let done = fresh(1000);
    assert!(install(&pkg, &done).status.success());
    let new = find(&done);
    assert_ne!(old, new);
    assert!(new.iter().any(|l| l.starts_with("755 ") && l.ends_with(" var")), "{new:#?}");
    let bin = assert_cmd::cargo::cargo_bin("cpekit");
    let mut killed = 0;
    for n in 1..40 {
        let r = fresh(n);
        let out = Proc::new(&bin).args(["install", "--allow-unsigned", "--root"]).arg(&r).arg(&pkg).env("CPEKIT_FAILPOINT", n.to_string()).output().unwrap();
        if out.status.code().is_some() {
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(find(&r), new);
            break;
        }
        killed += 1;
        let rec = Proc::new(&bin).args(["install", "--recover", "--root"]).arg(&r).output().unwrap();
        assert!(rec.status.success(), "{}", String::from_utf8_lossy(&rec.stderr));
        let got = find(&r);
        assert!(got == old || got == new, "fail point {n}: neither old nor new: {got:#?}");
    }
    assert!(killed > 5, "the fail points were reached ({killed})");
}
