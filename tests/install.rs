//! Installer engine: per-command semantics, the malicious corpus (root
//! byte-identical after every rejection) and crash injection with recovery.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command as Proc;
use std::sync::{Arc, Mutex};

use install::{self, DeviceConfig, IgnoreVendor, InstallError, InstallOptions, SystemClock};
use pkgfmt::{Builder, Command, FileCommand, MoveCommand, PayloadSource, RemoveCommand};

fn file(path: &str, flags: u32) -> Command {
    Command::ExtractFile(FileCommand { flags, path: path.into(), sha1: [0; 20], file_offset: 0, file_length: 0, metadata: None })
}

fn with_kind(c: Command, kind: u32) -> Command {
    let f = c.file().unwrap().clone();
    match kind {
        1 => Command::ExtractFile(f),
        2 => Command::ExtractVersionedFile(f),
        3 => Command::AddFile(f),
        _ => Command::AddVersionedFile(f),
    }
}

fn rm(kind: u32, path: &str) -> Command {
    let r = RemoveCommand { flags: 0, path: path.into() };
    match kind {
        5 => Command::RemoveFile(r),
        6 => Command::RemoveVersionedFile(r),
        _ => Command::RemoveSubTree(r),
    }
}

fn mv(versioned: bool, src: &str, dst: &str) -> Command {
    let m = MoveCommand { flags: 0, src: src.into(), dst: dst.into() };
    if versioned {
        Command::MoveVersionedFile(m)
    } else {
        Command::MoveFile(m)
    }
}

enum Step {
    Cmd(Command),
    File(u32, &'static str, Vec<u8>),
}

fn build(steps: Vec<Step>) -> Vec<u8> {
    let mut b = Builder::new();
    for s in steps {
        match s {
            Step::Cmd(c) => {
                b.command(c);
            }
            Step::File(kind, path, data) => {
                b.file(with_kind(file(path, 0), kind), PayloadSource::Bytes(data)).unwrap();
            }
        }
    }
    let built = b.build(|_, _| {}).unwrap();
    let mut out = Vec::new();
    built.write_to(&mut out, |_, _| {}).unwrap();
    out
}

/// A package without payload and without the builder's checks.
fn raw(commands: Vec<Command>) -> Vec<u8> {
    let prefix = pkgfmt::Prefix::new(0, pkgfmt::CommandList::new(commands), 0).unwrap();
    pkgfmt::Package { prefix, payload: vec![] }.to_bytes()
}

struct Env {
    _t: tempfile::TempDir,
    root: PathBuf,
    state: PathBuf,
}

fn env(files: &[(&str, &str)]) -> Env {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    for (p, content) in files {
        let full = root.join(p);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, content).unwrap();
    }
    let state = t.path().join("state");
    Env { _t: t, root, state }
}

fn opts(e: &Env) -> InstallOptions {
    InstallOptions {
        root: e.root.clone(),
        state_dir: Some(e.state.clone()),
        trust: vec![],
        allow_unsigned: true,
        verify: Default::default(),
        device: DeviceConfig { current_version: Some("3.0.21".parse().unwrap()), nonvolatile_storage: Some(10 << 20), ..Default::default() },
        dry_run: false,
        observer: None,
    }
}

fn run(e: &Env, pkg: &[u8]) -> Result<install::InstallReport, InstallError> {
    install::install(&mut &pkg[..], &opts(e), &mut IgnoreVendor, &SystemClock)
}

/// Every entry under `root`: path -> "d", "f:<content>" or "l:<target>".
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().display().to_string();
        let ft = e.file_type();
        let v = if ft.is_symlink() {
            format!("l:{}", std::fs::read_link(e.path()).unwrap().display())
        } else if ft.is_dir() {
            "d".into()
        } else {
            format!("f:{}", String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()))
        };
        m.insert(rel, v);
    }
    m
}

fn files(e: &Env) -> Vec<String> {
    tree(&e.root).into_iter().filter(|(_, v)| v != "d").map(|(k, v)| format!("{k}={v}")).collect()
}

#[test]
fn extract_replaces_and_add_only_if_absent() {
    let e = env(&[("etc/a", "old"), ("etc/b", "old")]);
    let pkg = build(vec![
        Step::File(1, "/etc/a", b"new-a".to_vec()),
        Step::File(3, "/etc/b", b"new-b".to_vec()),
        Step::File(3, "/etc/c", b"new-c".to_vec()),
        Step::File(1, "/deep/er/d", b"d".to_vec()),
    ]);
    run(&e, &pkg).unwrap();
    assert_eq!(files(&e), vec!["deep/er/d=f:d", "etc/a=f:new-a", "etc/b=f:old", "etc/c=f:new-c"]);
}

#[test]
fn versioned_extract_add_and_remove() {
    let e = env(&[("lib/app.001", "1"), ("lib/app.002", "2"), ("lib/app.txt.bak", "x"), ("lib/apple.001", "y")]);
    let pkg = build(vec![Step::File(2, "/lib/app.003", b"3".to_vec()), Step::File(4, "/lib/apple.009", b"9".to_vec())]);
    run(&e, &pkg).unwrap();
    // Extract Versioned removed every app.XXX; Add Versioned saw apple.001 and skipped.
    assert_eq!(files(&e), vec!["lib/app.003=f:3", "lib/app.txt.bak=f:x", "lib/apple.001=f:y"]);
    let pkg = build(vec![Step::Cmd(rm(6, "/lib/apple.zzz")), Step::Cmd(rm(5, "/lib/nothing"))]);
    run(&e, &pkg).unwrap();
    assert_eq!(files(&e), vec!["lib/app.003=f:3", "lib/app.txt.bak=f:x"]);
}

#[test]
fn move_versioned_lowest_decimal_wins_and_rest_deleted() {
    let e = env(&[("v/fw.010", "ten"), ("v/fw.002", "two"), ("v/fw.abc", "abc")]);
    let pkg = build(vec![Step::Cmd(mv(true, "/v/fw.000", "/boot/fw.bin")), Step::Cmd(mv(false, "/missing", "/x"))]);
    let r = run(&e, &pkg).unwrap();
    assert_eq!(files(&e), vec!["boot/fw.bin=f:two"]);
    assert!(r.actions.iter().any(|a| a.describe().contains("does not exist")));
}

#[test]
fn move_file_overwrites_and_remove_subtree() {
    let e = env(&[("a/x", "x"), ("b/y", "y"), ("t/1/2/3", "deep"), ("t/f", "f")]);
    let pkg = build(vec![Step::Cmd(mv(false, "/a/x", "/b/y")), Step::Cmd(rm(7, "/t"))]);
    run(&e, &pkg).unwrap();
    assert_eq!(files(&e), vec!["b/y=f:x"]);
    assert!(tree(&e.root).contains_key("a"));
    assert!(!e.root.join("t").exists());
}

#[test]
fn format_clears_the_root_then_installs() {
    let e = env(&[("old/1", "1"), ("2", "2")]);
    let pkg = build(vec![Step::Cmd(Command::FormatFileSystem), Step::File(1, "/new", b"n".to_vec()), Step::Cmd(Command::Reboot)]);
    let r = run(&e, &pkg).unwrap();
    assert!(r.reboot_required);
    assert!(r.unsafe_install);
    assert_eq!(tree(&e.root).into_iter().collect::<Vec<_>>(), vec![("new".to_string(), "f:n".to_string())]);
}

#[test]
fn remove_then_add_sees_the_removal() {
    let e = env(&[("etc/conf", "old")]);
    let pkg = build(vec![Step::Cmd(rm(5, "/etc/conf")), Step::File(3, "/etc/conf", b"fresh".to_vec())]);
    run(&e, &pkg).unwrap();
    assert_eq!(files(&e), vec!["etc/conf=f:fresh"]);
}

#[test]
fn dry_run_changes_nothing() {
    let e = env(&[("etc/a", "old")]);
    let before = tree(&e.root);
    let pkg = build(vec![Step::File(1, "/etc/a", b"new".to_vec()), Step::Cmd(rm(7, "/etc"))]);
    let mut o = opts(&e);
    o.dry_run = true;
    let r = install::install(&mut &pkg[..], &o, &mut IgnoreVendor, &SystemClock).unwrap();
    assert_eq!(r.actions.len(), 2);
    assert_eq!(tree(&e.root), before);
}

/// Each malicious package is rejected and the tree is byte-identical.
#[test]
fn malicious_corpus_changes_nothing() {
    let outside = tempfile::tempdir().unwrap();
    let e = env(&[("etc/a", "old"), ("keep", "k")]);
    std::os::unix::fs::symlink(outside.path(), e.root.join("link")).unwrap();
    let before = tree(&e.root);
    let good = |p: &'static str| Step::File(1, p, b"x".to_vec());
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("traversal in extract path", build(vec![good("/etc/ok"), good("/../escape")])),
        ("traversal in add path", build(vec![good("/etc/ok"), Step::File(3, "/a/../../escape", b"x".to_vec())])),
        ("traversal in remove path", build(vec![good("/etc/ok"), Step::Cmd(rm(5, "/../../etc/passwd"))])),
        ("traversal in remove sub-tree", build(vec![good("/etc/ok"), Step::Cmd(rm(7, ".."))])),
        ("traversal in move source", build(vec![good("/etc/ok"), Step::Cmd(mv(false, "/../x", "/y"))])),
        ("traversal in move destination", build(vec![good("/etc/ok"), Step::Cmd(mv(false, "/etc/a", "/../../y"))])),
        ("traversal in versioned move", build(vec![good("/etc/ok"), Step::Cmd(mv(true, "/etc/a.001", "/../y"))])),
        ("symlink leading outside (write)", build(vec![good("/etc/ok"), good("/link/evil")])),
        ("symlink leading outside (remove)", build(vec![good("/etc/ok"), Step::Cmd(rm(7, "/link/sub"))])),
        ("symlink leading outside (move)", build(vec![good("/etc/ok"), Step::Cmd(mv(false, "/etc/a", "/link/a"))])),
        ("NUL in path", build(vec![good("/etc/ok"), Step::Cmd(rm(5, "/etc/a\0b"))])),
        ("root itself", build(vec![good("/etc/ok"), Step::Cmd(rm(7, "/"))])),
        ("reboot not last", raw(vec![Command::Reboot, rm(5, "/etc/a")])),
        ("version out of range", build(vec![Step::Cmd(Command::MinimumVersion("4".parse().unwrap())), good("/etc/ok")])),
        ("storage too small", build(vec![Step::Cmd(Command::MinimumNonVolatileStorage(u32::MAX)), good("/etc/ok")])),
    ];
    // Hash mismatch in the last file: corrupt the final payload byte.
    let mut bad = build(vec![good("/etc/ok"), good("/etc/a"), Step::File(1, "/etc/last", b"last".to_vec())]);
    *bad.last_mut().unwrap() ^= 1;
    cases.push(("hash mismatch in the last file", bad));
    // Oversized declared lengths: payload length far beyond the bytes present.
    let mut big = build(vec![good("/etc/ok")]);
    big[20..24].copy_from_slice(&u32::MAX.to_be_bytes());
    cases.push(("payload length beyond the file", big));
    let mut long_list = build(vec![good("/etc/ok")]);
    long_list[16..20].copy_from_slice(&0xFFFFu32.to_be_bytes());
    cases.push(("command list length beyond the file", long_list));
    let mut file_len = build(vec![good("/etc/ok")]);
    let at = 24 + 8 + 28; // file length field of the only Extract
    file_len[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    cases.push(("file length beyond the payload", file_len));

    for (name, pkg) in cases {
        let r = run(&e, &pkg);
        assert!(r.is_err(), "{name}: accepted");
        assert_eq!(tree(&e.root), before, "{name}: tree changed ({})", r.unwrap_err());
        assert!(!outside.path().join("evil").exists() && std::fs::read_dir(outside.path()).unwrap().count() == 0, "{name}");
    }
}

/// Issue 10 item 5: paths beyond Linux's PATH_MAX or NAME_MAX, or deeper
/// than MAX_DEPTH, are refused while planning (dry run and real install),
/// naming the command and the limit, and nothing changes. The 32,700-level
/// path (65,400 bytes, one Remove in a command list just under 2^16 octets)
/// cost 4.3 GB before; it is now refused by its length before any of its
/// components is looked at.
#[test]
fn path_limits_refused_at_plan() {
    let e = env(&[("etc/a", "old")]);
    let before = tree(&e.root);
    let deep = "/a".repeat(32_700);
    let mut long = "/dir".repeat(1025); // 4,100 bytes
    long.truncate(4097);
    let cases = [
        (rm(7, &long), "is 4097 bytes; at most 4095 are allowed (Linux PATH_MAX 4096"),
        (file(&format!("/etc/{}", "n".repeat(256)), 0), "has a 256-byte component; at most 255 bytes are allowed (Linux NAME_MAX)"),
        (mv(false, "/etc/a", &"/d".repeat(257)), "more than 256 levels deep (MAX_DEPTH"),
        // Last: on a build without the limits this one costs gigabytes.
        (rm(5, &deep), "is 65400 bytes; at most 4095 are allowed (Linux PATH_MAX 4096"),
    ];
    for (c, why) in cases {
        let pkg = raw(vec![rm(5, "/etc/gone"), c]);
        assert!(pkg.len() < 65_536 + 100, "{}", pkg.len());
        for dry_run in [true, false] {
            let mut o = opts(&e);
            o.dry_run = dry_run;
            let err = install::install(&mut &pkg[..], &o, &mut IgnoreVendor, &SystemClock).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, InstallError::Rejected { index: 1, .. }), "{msg}");
            assert!(msg.starts_with("command #1 rejected: path ") && msg.contains(why), "{msg}");
            assert!(msg.len() < 400, "the message shows only the start of the path ({} bytes)", msg.len());
            assert_eq!(tree(&e.root), before);
        }
    }
}

/// Every report the observer of `o` gets during one install.
fn observed(o: &mut InstallOptions, pkg: &[u8]) -> (Result<install::InstallReport, InstallError>, Vec<install::progress::Progress>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    o.observer = Some(Arc::new(move |p| sink.lock().unwrap().push(p)));
    let r = install::install(&mut &pkg[..], o, &mut IgnoreVendor, &SystemClock);
    let seen = seen.lock().unwrap().clone();
    (r, seen)
}

#[test]
fn observer_sees_the_phases_in_order_and_every_byte() {
    use install::progress::{Phase, Progress};
    let e = env(&[("etc/a", "old")]);
    let pkg = build(vec![Step::File(1, "/etc/a", vec![b'a'; 400_000]), Step::File(1, "/b/c", vec![b'c'; 300_000])]);
    let total = pkg.len() as u64;
    let prefix_len = pkgfmt::Package::parse(&pkg).unwrap().prefix.payload_offset();
    let (r, seen) = observed(&mut opts(&e), &pkg);
    r.unwrap();
    let mut phases: Vec<Phase> = seen.iter().map(|p| p.phase).collect();
    phases.dedup();
    assert_eq!(phases, [Phase::VerifyingPrefix, Phase::StreamingPayload, Phase::Committing], "{seen:?}");
    assert!(seen.iter().all(|p| p.total == total && p.done <= total), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].done <= w[1].done), "monotone: {seen:?}");
    assert_eq!(seen[0], Progress { phase: Phase::VerifyingPrefix, done: prefix_len, total });
    let streaming: Vec<u64> = seen.iter().filter(|p| p.phase == Phase::StreamingPayload).map(|p| p.done).collect();
    assert!(streaming.len() >= 4, "reported as the 700 kB payload streams in 256 KiB chunks: {streaming:?}");
    assert_eq!((streaming[0], *streaming.last().unwrap()), (prefix_len, total));
    assert_eq!(seen.last(), Some(&Progress { phase: Phase::Committing, done: total, total }));
    assert_eq!(seen.iter().filter(|p| p.phase == Phase::Committing).count(), 1);
    assert_eq!(files(&e).len(), 2, "installed: {:?}", files(&e));

    // A dry run stops before committing; a refused package right after the prefix.
    let e = env(&[]);
    let mut o = opts(&e);
    o.dry_run = true;
    let (r, seen) = observed(&mut o, &pkg);
    r.unwrap();
    assert_eq!(seen.last().map(|p| (p.phase, p.done)), Some((Phase::StreamingPayload, total)));
    let mut o = opts(&e);
    o.allow_unsigned = false;
    o.trust = pkgfmt::signature::load_certs_pem(&std::fs::read("testdata/keys/ca.pem").unwrap()).unwrap();
    let (r, seen) = observed(&mut o, &pkg);
    assert!(matches!(r, Err(InstallError::Untrusted(_))));
    assert_eq!(seen, [Progress { phase: Phase::VerifyingPrefix, done: prefix_len, total }]);
}

#[test]
fn untrusted_and_unsigned_change_nothing() {
    let e = env(&[("etc/a", "old")]);
    let before = tree(&e.root);
    let pkg = build(vec![Step::File(1, "/etc/a", b"new".to_vec())]);
    let ca = pkgfmt::signature::load_certs_pem(&std::fs::read("testdata/keys/ca.pem").unwrap()).unwrap();
    let mut o = opts(&e);
    o.allow_unsigned = false;
    o.trust = ca.clone();
    let err = install::install(&mut &pkg[..], &o, &mut IgnoreVendor, &SystemClock).unwrap_err();
    assert!(matches!(err, InstallError::Untrusted(_)), "{err}");
    // Signed by the rogue key.
    let mut prefix_pkg = pkgfmt::Package::parse(&pkg).unwrap();
    let key = pkgfmt::signature::load_private_key_pem(&std::fs::read("testdata/keys/rogue.key").unwrap()).unwrap();
    let cert = pkgfmt::signature::load_certs_pem(&std::fs::read("testdata/keys/rogue.pem").unwrap()).unwrap().remove(0);
    prefix_pkg.prefix.signatures = prefix_pkg.prefix.signatures.add_signer(prefix_pkg.prefix.signed_message(), &key, &cert, &[], true).unwrap();
    let rogue = prefix_pkg.to_bytes();
    o.allow_unsigned = true; // never lets a failing signer through
    let err = install::install(&mut &rogue[..], &o, &mut IgnoreVendor, &SystemClock).unwrap_err();
    assert!(err.to_string().contains("trust anchor"), "{err}");
    assert_eq!(tree(&e.root), before);
}

#[test]
fn timeouts_abort_a_stalled_download() {
    use std::time::{Duration, Instant};
    struct Fake(std::cell::Cell<Instant>);
    impl install::Clock for Fake {
        fn now(&self) -> Instant {
            // Every look at the clock is 20 s later: the download crawls.
            let t = self.0.get() + Duration::from_secs(20);
            self.0.set(t);
            t
        }
    }
    let e = env(&[]);
    let pkg = build(vec![Step::Cmd(Command::InitialActivityTimeout(10)), Step::File(1, "/a", vec![7; 1 << 20])]);
    let clock = Fake(std::cell::Cell::new(Instant::now()));
    let err = install::install(&mut &pkg[..], &opts(&e), &mut IgnoreVendor, &clock).unwrap_err();
    assert!(matches!(err, InstallError::Timeout(_)), "{err}");
    assert!(tree(&e.root).is_empty());
}

/// The agent streams a download straight into the installer through a
/// reader that returns `Interrupted` while it waits for the network (so
/// the E.4.7 timers are checked between reads). Bytes after the payload
/// that arrive after such a tick are refused like any others.
#[test]
fn trailing_bytes_after_an_interrupted_read_are_refused() {
    struct Ticking {
        data: Vec<u8>,
        pos: usize,
        tick_at: usize,
        ticked: bool,
    }
    impl std::io::Read for Ticking {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.pos == self.tick_at && !self.ticked {
                self.ticked = true;
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let end = if self.pos < self.tick_at { self.tick_at } else { self.data.len() };
            let n = buf.len().min(end - self.pos);
            buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
            self.pos += n;
            Ok(n)
        }
    }
    let e = env(&[]);
    let pkg = build(vec![Step::File(1, "/a", b"new".to_vec())]);
    // Sanity: the package alone installs through the same reader.
    let mut r = Ticking { tick_at: pkg.len(), data: pkg.clone(), pos: 0, ticked: false };
    install::install(&mut r, &opts(&e), &mut IgnoreVendor, &SystemClock).unwrap();
    assert_eq!(files(&e), ["a=f:new"]);

    let e = env(&[]);
    let mut data = pkg.clone();
    data.extend_from_slice(b"junk");
    let mut r = Ticking { tick_at: pkg.len(), data, pos: 0, ticked: false };
    let err = install::install(&mut r, &opts(&e), &mut IgnoreVendor, &SystemClock).unwrap_err();
    assert!(matches!(err, InstallError::Package(pkgfmt::Error::PayloadTooLong { .. })), "{err}");
    assert!(tree(&e.root).is_empty());
}

/// SIGKILL the installer at every fail point; after `--recover` the tree is
/// exactly the old or exactly the new one. (The `cpekit` built for the tests
/// has the install crate's `failpoints` feature: see the root Cargo.toml.)
#[test]
fn crash_injection_recovers_old_or_new_tree() {
    let bin = env!("CARGO_BIN_EXE_cpekit");
    let initial: &[(&str, &str)] = &[("etc/a", "old-a"), ("etc/b", "old-b"), ("lib/m.001", "m1"), ("lib/m.002", "m2"), ("var/log/x", "x"), ("t/1/2", "deep")];
    let pkgs = [
        build(vec![
            Step::File(1, "/etc/a", b"new-a".to_vec()),
            Step::File(3, "/etc/new", b"n".to_vec()),
            Step::Cmd(rm(5, "/etc/b")),
            Step::File(2, "/lib/m.003", b"m3".to_vec()),
            Step::Cmd(mv(false, "/var/log/x", "/var/old/x")),
            Step::Cmd(rm(7, "/t")),
            Step::File(1, "/t/1/again", b"again".to_vec()),
            Step::Cmd(mv(true, "/lib/m.000", "/lib/current")),
            Step::File(1, "/etc/b", b"new-b".to_vec()),
        ]),
        build(vec![Step::Cmd(Command::FormatFileSystem), Step::File(1, "/fresh/a", b"A".to_vec()), Step::File(1, "/fresh/b", b"B".to_vec())]),
        build(
            (0..24)
                .map(|i| match i % 4 {
                    0 => Step::File(1, ["/etc/a", "/n/1/f", "/n/2/g", "/etc/b", "/lib/m.001", "/t/1/2"][i % 6], vec![b'0' + i as u8]),
                    1 => Step::File(2, ["/lib/m.009", "/v/w/x.001"][i % 2], vec![b'a' + i as u8]),
                    2 => Step::Cmd(mv(i % 3 == 0, ["/etc/a", "/lib/m.000", "/n/1/f"][i % 3], ["/z/a", "/z/m", "/etc/a"][i % 3])),
                    _ => Step::Cmd(rm(5 + (i as u32 % 3), ["/etc/b", "/lib/m.000", "/n"][i % 3])),
                })
                .collect(),
        ),
    ];
    let mut kill_points = 0;
    for (k, pkg) in pkgs.iter().enumerate() {
        // Reference old and new trees.
        let e = env(initial);
        let old = tree(&e.root);
        run(&e, pkg).unwrap();
        let new = tree(&e.root);
        assert_ne!(old, new);
        let pkg_path = e._t.path().join("p.pkg");
        std::fs::write(&pkg_path, pkg).unwrap();
        let mut n = 1;
        loop {
            let e = env(initial);
            let out = Proc::new(bin)
                .args(["install", "--allow-unsigned", "--root"])
                .arg(&e.root)
                .arg("--state-dir")
                .arg(&e.state)
                .arg(&pkg_path)
                .env("CPEKIT_FAILPOINT", n.to_string())
                .output()
                .unwrap();
            let killed = out.status.code().is_none();
            // Power is lost again during recovery (at its first and second
            // fail points), then recovery runs to the end.
            let recover = |fail: Option<u32>| {
                let mut c = Proc::new(bin);
                c.args(["install", "--recover", "--root"]).arg(&e.root).arg("--state-dir").arg(&e.state);
                if let Some(f) = fail {
                    c.env("CPEKIT_FAILPOINT", f.to_string());
                }
                c.output().unwrap()
            };
            for f in [1, 2] {
                if recover(Some(f)).status.code().is_none() {
                    kill_points += 1;
                }
            }
            let rec = recover(None);
            assert!(rec.status.success(), "pkg {k} point {n}: recover failed: {}", String::from_utf8_lossy(&rec.stderr));
            let t = tree(&e.root);
            assert!(t == old || t == new, "pkg {k} fail point {n}: tree is neither old nor new: {t:#?}");
            if !killed {
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                assert_eq!(t, new);
                break;
            }
            kill_points += 1;
            n += 1;
        }
    }
    eprintln!("crash injection: {kill_points} kill points, all recovered to the old or new tree");
    assert!(kill_points >= 200, "only {kill_points} kill points");
}

/// Manual soak (`CPEKIT_SOAK_ROUNDS=2000 cargo test --release --test install
/// -- --ignored --nocapture random_kill_soak`): SIGKILL the installer after a
/// random delay instead of at a fail point, so kills also land between fail
/// points and inside system calls, then recover (itself killed at random
/// once in a while). The tree must always be exactly the old or the new one.
#[test]
#[ignore]
fn random_kill_soak() {
    let bin = env!("CARGO_BIN_EXE_cpekit");
    let rounds: u32 = std::env::var("CPEKIT_SOAK_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let initial: &[(&str, &str)] = &[("etc/a", "old-a"), ("etc/b", "old-b"), ("lib/m.001", "m1"), ("t/1/2", "deep")];
    let mut steps = vec![Step::Cmd(rm(7, "/t")), Step::Cmd(mv(false, "/etc/b", "/etc/b.old"))];
    for i in 0..60 {
        steps.push(Step::File(1 + (i % 2), ["/etc/a", "/d/f", "/lib/m.002", "/x/y/z"][i as usize % 4], vec![b'a' + (i % 26) as u8; 64 * 1024]));
    }
    let pkg = build(steps);
    let e = env(initial);
    let old = tree(&e.root);
    run(&e, &pkg).unwrap();
    let new = tree(&e.root);
    let pkg_path = e._t.path().join("p.pkg");
    std::fs::write(&pkg_path, &pkg).unwrap();
    // How long one install takes here: kills are spread over 0..1.5x that.
    let t0 = std::time::Instant::now();
    let e2 = env(initial);
    let ok = Proc::new(bin).args(["install", "--allow-unsigned", "--root"]).arg(&e2.root).arg("--state-dir").arg(&e2.state).arg(&pkg_path).output().unwrap();
    assert!(ok.status.success());
    let span = t0.elapsed().as_micros().max(1000) as u64 * 3 / 2;
    let mut seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n.max(1)
    };
    let (mut killed_install, mut killed_recover, mut completed, mut ended_new) = (0u32, 0u32, 0u32, 0u32);
    for round in 0..rounds {
        let e = env(initial);
        let mut child = Proc::new(bin)
            .args(["install", "--allow-unsigned", "--root"])
            .arg(&e.root)
            .arg("--state-dir")
            .arg(&e.state)
            .arg(&pkg_path)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_micros(rand(span)));
        let _ = child.kill();
        let st = child.wait().unwrap();
        if st.code().is_none() {
            killed_install += 1;
        } else {
            completed += 1;
        }
        let recover = || {
            Proc::new(bin)
                .args(["install", "--recover", "--root"])
                .arg(&e.root)
                .arg("--state-dir")
                .arg(&e.state)
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        };
        if rand(4) == 0 {
            let mut r = recover();
            std::thread::sleep(std::time::Duration::from_micros(rand(span / 4 + 1)));
            let _ = r.kill();
            if r.wait().unwrap().code().is_none() {
                killed_recover += 1;
            }
        }
        let st = recover().wait().unwrap();
        assert!(st.success(), "round {round}: recover failed");
        let t = tree(&e.root);
        assert!(t == old || t == new, "round {round}: tree is neither old nor new: {t:#?}");
        ended_new += u32::from(t == new);
    }
    eprintln!(
        "random-kill soak: {rounds} rounds, {killed_install} installs killed, {completed} completed before the kill, {killed_recover} recoveries killed; every tree old or new ({ended_new} new, {} old)",
        rounds - ended_new
    );
}

/// Every entry below `dir`, for "nothing was written here" checks.
fn entries(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name().into_iter().map(|e| e.unwrap().path().display().to_string()).collect()
}

/// Issue 10, item 4: a local process swaps `ROOT/etc` between the real
/// directory and a link to a directory outside the root in a tight loop
/// while packages install into it. The installer walks from the root's
/// descriptor and renames relative to the directories it opened, so no
/// install may ever write outside the root (it may be refused, or roll
/// back). Runs on tmpfs where there is one: syncs there cost nothing.
#[test]
fn racing_symlink_swap_never_writes_outside_the_root() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    const INSTALLS: usize = 2_000;
    let base = if Path::new("/dev/shm").is_dir() { tempfile::tempdir_in("/dev/shm") } else { tempfile::tempdir() }.unwrap();
    let root = base.path().join("root");
    let outside = base.path().join("outside");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::create_dir(&outside).unwrap();
    let e = Env { _t: tempfile::tempdir().unwrap(), root: root.clone(), state: base.path().join("state") };
    let pkg = build(vec![
        Step::File(1, "/etc/a", b"a".to_vec()),
        Step::File(1, "/etc/b", b"b".to_vec()),
        Step::File(1, "/etc/sub/c", b"c".to_vec()),
        Step::Cmd(mv(false, "/etc/b", "/etc/d")),
        Step::Cmd(rm(7, "/etc/sub")),
        Step::File(1, "/etc/e", b"e".to_vec()),
    ]);
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (stop, swaps, root, outside) = (Arc::clone(&stop), Arc::clone(&swaps), root.clone(), outside.clone());
        std::thread::spawn(move || {
            let (etc, real) = (root.join("etc"), root.join("etc.real"));
            while !stop.load(Ordering::Relaxed) {
                if std::fs::rename(&etc, &real).is_ok() {
                    if std::os::unix::fs::symlink(&outside, &etc).is_ok() {
                        swaps.fetch_add(1, Ordering::Relaxed);
                        std::thread::yield_now();
                        let _ = std::fs::remove_file(&etc);
                    }
                    let _ = std::fs::rename(&real, &etc);
                }
                std::thread::yield_now();
            }
        })
    };
    let (mut ok, mut refused, mut escaped) = (0, 0, None);
    for i in 0..INSTALLS {
        match run(&e, &pkg) {
            Ok(_) => ok += 1,
            Err(_) => {
                refused += 1;
                // A failed rollback (or one interrupted) leaves a journal:
                // recovery runs under the same race.
                for _ in 0..100 {
                    if install::recover(&e.root, Some(&e.state)).is_ok() {
                        break;
                    }
                }
            }
        }
        if !entries(&outside).is_empty() {
            escaped = Some(i);
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    let swaps = swaps.load(Ordering::Relaxed);
    eprintln!("symlink race: {ok} installs succeeded, {refused} refused or rolled back, {swaps} swaps to a link");
    assert_eq!(escaped, None, "install #{escaped:?} wrote outside the root: {:?}", entries(&outside));
    assert!(entries(&outside).is_empty());
    assert!(swaps > 100 && ok > 0, "the race did not happen: {swaps} swaps, {ok} successful installs");
}

/// Issue 10, item 6: recovery validates the journal. A tampered one that
/// names paths outside the root (or files outside the transaction
/// directory) is refused, saying which file; one whose paths are fine but
/// lead through a link planted in the root fails without following it.
/// Nothing outside the root is deleted or created.
#[test]
fn tampered_journal_is_refused_and_changes_nothing_outside() {
    use foundation::Kind;
    let e = env(&[("etc/a", "old")]);
    let outside = e._t.path().join("outside");
    std::fs::create_dir_all(outside.join("victim")).unwrap();
    std::fs::write(outside.join("keep"), b"k").unwrap();
    let outside_before = entries(&outside);
    let root = e.root.canonicalize().unwrap();
    let state = &e.state;
    let stage_journal = |ops: serde_json::Value| {
        std::fs::create_dir_all(state.join("txn/stage")).unwrap();
        std::fs::create_dir_all(state.join("txn/backup")).unwrap();
        std::fs::write(state.join("txn/backup/1"), b"planted").unwrap();
        let j = serde_json::json!({ "format": 1, "root": root, "unsafe_install": false, "ops": ops });
        std::fs::write(state.join("journal.json"), serde_json::to_vec(&j).unwrap()).unwrap();
    };
    let bin = env!("CARGO_BIN_EXE_cpekit");
    let malformed = [
        // Undo of a Mkdir whose staged directory is gone removes the path.
        serde_json::json!([{ "op": "mkdir", "path": "../outside/victim", "stage": "d1" }]),
        // Undo of a Remove puts the backup back at the path.
        serde_json::json!([{ "op": "remove", "path": "/../outside/created", "backup": "1" }]),
        // A backup name that climbs out of the transaction directory.
        serde_json::json!([{ "op": "remove", "path": "etc/a", "backup": "../../outside/keep" }]),
        serde_json::json!([{ "op": "mkdir", "path": "etc/x", "stage": "d1", "extra": true }]),
    ];
    for (k, ops) in malformed.into_iter().enumerate() {
        stage_journal(ops);
        let before = tree(&e.root);
        let err = install::recover(&e.root, Some(state)).expect_err("a tampered journal is refused");
        let text = foundation::error_kind::chain(&err);
        assert_eq!(err.kind(), foundation::ErrorKind::Malformed, "case {k}: {text}");
        assert!(text.contains("journal.json") && text.contains("malformed"), "case {k}: {text}");
        assert_eq!(entries(&outside), outside_before, "case {k}: outside changed");
        assert_eq!(tree(&e.root), before, "case {k}: root changed");
        // The CLI says so too, with the malformed-input exit status.
        let out = Proc::new(bin).args(["install", "--recover", "--root"]).arg(&e.root).arg("--state-dir").arg(state).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "case {k}: {stderr}");
        assert!(stderr.contains("journal.json") && stderr.contains("malformed"), "case {k}: {stderr}");
        assert_eq!(entries(&outside), outside_before);
    }
    // Well-formed paths through a link planted in the root: refused at the link.
    std::fs::remove_dir_all(e.root.join("etc")).unwrap();
    std::os::unix::fs::symlink(&outside, e.root.join("etc")).unwrap();
    stage_journal(serde_json::json!([
        { "op": "remove", "path": "etc/created", "backup": "1" },
        { "op": "mkdir", "path": "etc/victim", "stage": "d9" },
    ]));
    let err = install::recover(&e.root, Some(state)).expect_err("a link in the root is not followed");
    assert!(foundation::error_kind::chain(&err).contains("/etc is a symlink"), "{}", foundation::error_kind::chain(&err));
    assert_eq!(entries(&outside), outside_before, "outside changed");
}

/// Issue 10, item 7: a state directory inside the root is refused before
/// anything is created: the root is unchanged.
#[test]
fn state_dir_inside_the_root_is_refused_and_creates_nothing() {
    let e = env(&[("etc/a", "old")]);
    let before = tree(&e.root);
    let pkg = build(vec![Step::File(1, "/etc/a", b"new".to_vec())]);
    for inside in ["st", "new/deeper/st", "etc"] {
        let mut o = opts(&e);
        o.state_dir = Some(e.root.join(inside));
        let err = install::install(&mut &pkg[..], &o, &mut IgnoreVendor, &SystemClock).unwrap_err();
        assert!(err.to_string().contains("must be outside the install root"), "{inside}: {err}");
        assert_eq!(tree(&e.root), before, "{inside}: the root changed");
        let err = install::recover(&e.root, Some(&e.root.join(inside))).unwrap_err();
        assert!(err.to_string().contains("must be outside the install root"), "{inside}: {err}");
        assert_eq!(tree(&e.root), before, "{inside}: recovery changed the root");
    }
    let out = Proc::new(env!("CARGO_BIN_EXE_cpekit"))
        .args(["install", "--allow-unsigned", "--root"])
        .arg(&e.root)
        .arg("--state-dir")
        .arg(e.root.join("st"))
        .arg("/dev/null")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(tree(&e.root), before, "the CLI changed the root: {}", String::from_utf8_lossy(&out.stderr));
}
