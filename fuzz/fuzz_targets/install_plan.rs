//! The install planner (`install::plan::plan`, E.4.1–E.4.9) and the
//! precondition check (E.4.10–E.4.13): any command list that parses is
//! planned against a scratch tree (a dry run: the planner only reads), as
//! `cpekit install` does before it stages anything (issue 10, "How it is
//! checked").
//!
//! The scratch tree is made once per process in a fresh directory under
//! /dev/shm (tmpfs) or the temporary directory: files, versioned files
//! (`app.001`, `app.002`, `app.abc`), nested directories, a symbolic link
//! to a directory inside the root, one to `/etc` (outside) and a dangling
//! one. Seeds (fuzz/examples/seeds.rs) name these paths.
//!
//! Properties: no panic; planning changes nothing (the tree, listed with
//! its link targets, is the same after every input) and gives the same
//! plan twice; every action's path is relative and confined (no `..`, `.`
//! or empty component, no NUL), its index a command of the list, in order;
//! directories to create are proper ancestors of the action's path, listed
//! outermost first; a planned symbolic link does not resolve (lexically)
//! above the root; a Reboot before End sets `reboot_required`.
#![no_main]

use std::path::{Component, Path, PathBuf};

use install::beneath::Dir;
use install::plan::{self, Action};
use install::DeviceConfig;
use libfuzzer_sys::fuzz_target;
use pkgfmt::{Command, CommandList, VersionNumber};

struct Scratch {
    root: PathBuf,
    /// The root opened as the installer opens it (plans are made through it).
    dir: Dir,
    device: DeviceConfig,
    listing: Vec<String>,
}

fn scratch() -> Scratch {
    let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    // libFuzzer ends the process with exit(): trees of processes that are
    // gone are removed by the next one.
    for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("cpekit-fuzz-plan-").and_then(|p| p.parse::<u32>().ok()) {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let root = base.join(format!("cpekit-fuzz-plan-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for d in ["etc/ssl/certs", "bin", "lib/modules/5.4", "var/log/old", "empty"] {
        std::fs::create_dir_all(root.join(d)).expect("scratch directory");
    }
    for f in ["etc/config", "etc/app.001", "etc/app.002", "etc/app.abc", "etc/ssl/certs/ca.pem", "bin/tool", "lib/libx.so", "var/log/old/messages", "top.txt"] {
        std::fs::write(root.join(f), f).expect("scratch file");
    }
    std::os::unix::fs::symlink("etc", root.join("lnk")).expect("symlink");
    std::os::unix::fs::symlink("/etc", root.join("escape")).expect("symlink");
    std::os::unix::fs::symlink("nothere", root.join("dangling")).expect("symlink");
    let device = DeviceConfig {
        current_version: Some(VersionNumber(vec![1, 2, 3])),
        nonvolatile_storage: Some(64 << 20),
        volatile_storage: Some(32 << 20),
        attributes: [(1, [(2, 3)].into_iter().collect())].into_iter().collect(),
    };
    let listing = tree_listing(&root);
    let dir = Dir::open(&root).expect("open scratch root");
    Scratch { root, dir, device, listing }
}

/// Every entry below `root` with its type, size and link target.
fn tree_listing(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read scratch directory").flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).expect("lstat");
            let rel = p.strip_prefix(root).expect("below root").display().to_string();
            if m.file_type().is_symlink() {
                out.push(format!("{rel} -> {}", std::fs::read_link(&p).expect("readlink").display()));
            } else if m.is_dir() {
                out.push(format!("{rel}/"));
                stack.push(p);
            } else {
                out.push(format!("{rel} {}", m.len()));
            }
        }
    }
    out.sort();
    out
}

thread_local! {
    static SCRATCH: Scratch = scratch();
}

// The oracles below restate the confinement rules on their own instead of
// calling `pkgfmt::path`: checking the planner with the code it is built on
// could not find a fault in that code.

fn confined(path: &str) {
    assert!(!path.is_empty() && !path.starts_with('/') && !path.contains('\0'), "unconfined path {path:?}");
    for c in path.split('/') {
        assert!(!c.is_empty() && c != "." && c != "..", "unconfined path {path:?}");
    }
}

fn mkdirs_ok(mkdirs: &[String], path: &str) {
    for d in mkdirs {
        confined(d);
        assert!(Path::new(path).starts_with(d) && d != path, "mkdir {d:?} is not an ancestor of {path:?}");
    }
    for w in mkdirs.windows(2) {
        assert!(Path::new(&w[1]).starts_with(&w[0]), "mkdirs not outermost first: {mkdirs:?}");
    }
}

/// Lexical resolution of a link at `path` to `target`: does it stay in the root?
fn link_confined(path: &str, target: &str) -> bool {
    let mut depth: i64 = if target.starts_with('/') { 0 } else { Path::new(path).components().count() as i64 - 1 };
    for c in Path::new(target).components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

fuzz_target!(|data: &[u8]| {
    if data.len() >= 1 << 16 {
        return; // E.3: a command list is shorter than 2^16 octets
    }
    let Ok(list) = CommandList::parse(data, 0) else { return };
    SCRATCH.with(|s| {
        let _ = install::precondition::check(&list, &s.device, &s.root);
        let planned = plan::plan(&list, &s.dir);
        let again = plan::plan(&list, &s.dir);
        match (&planned, &again) {
            (Ok(a), Ok(b)) => assert_eq!(a.actions, b.actions, "planning twice differs"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "planning twice differs"),
            _ => panic!("planning twice differs: {planned:?} / {again:?}"),
        }
        assert_eq!(tree_listing(&s.root), s.listing, "planning changed the scratch tree");
        let Ok(p) = planned else { return };
        let end = list.commands.iter().position(|c| *c == Command::End).unwrap_or(list.commands.len());
        assert_eq!(p.reboot_required, list.commands[..end].contains(&Command::Reboot));
        let mut last = 0;
        for a in &p.actions {
            let _ = a.describe();
            assert!(a.index() < end && a.index() >= last, "action index out of order: {a:?}");
            last = a.index();
            match a {
                Action::Write { path, mkdirs, .. } | Action::Directory { path, mkdirs, .. } => {
                    confined(path);
                    mkdirs_ok(mkdirs, path);
                }
                Action::Remove { path, .. } => confined(path),
                Action::Rename { from, to, mkdirs, .. } => {
                    confined(from);
                    confined(to);
                    mkdirs_ok(mkdirs, to);
                }
                Action::Symlink { path, target, mkdirs, .. } => {
                    confined(path);
                    mkdirs_ok(mkdirs, path);
                    assert!(link_confined(path, target), "link {path:?} -> {target:?} leaves the root");
                }
                Action::Skip { .. } | Action::Info { .. } | Action::Vendor { .. } => {}
            }
        }
    });
});
