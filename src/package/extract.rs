//! `cpekit package extract`: write each Extract/Add payload file under a
//! directory, and the directories and symlinks of cpekit Filesystem
//! Entries. Nothing in the package is executed or interpreted beyond
//! those, and package paths never escape the directory (nor do link
//! targets). Recorded modes are applied (a file without one is 0644, a
//! directory 0755); recorded owners only when run as root.
//!
//! Nothing in the output directory changes until the whole package checked
//! out: every payload file is first staged in a temporary directory beside
//! the output (`.NAME.cpekit-extract-PID`) while the payload streams once
//! through the hash verifier, and the payload must end exactly at its
//! declared length (truncation and trailing bytes are refused). Only then
//! are directories, links and files placed, each through a walk from the
//! output directory's descriptor that never follows a link
//! ([`install::beneath`]), a staged file renamed into place. The staging
//! directory is removed on every error, and on SIGINT/SIGTERM.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use install::attributes::{self, resolve, DEFAULT_DIR_MODE, DEFAULT_FILE_MODE};
use install::beneath::{self, Dir};
use install::path::RelPath;
use pkgfmt::{Command, EntryKind, FilesystemEntry, PayloadVerifier, Prefix};

use crate::cli::ExtractArgs;

/// Resolve a package path (E.2.1 UNIX format) inside `root`, by the
/// installer's rules ([`pkgfmt::path`]): an absolute path means "relative
/// to the root"; `..`, NUL, the root itself and paths beyond the limits
/// are refused lexically, and symlinks are refused when walking the tree.
pub fn confine(root: &Path, pkg_path: &str) -> Result<PathBuf> {
    Ok(pkgfmt::PackagePath::parse(pkg_path)?.under(root))
}

/// Create the parent directories of `target` below `root`, refusing to
/// traverse any symlink (a walk from `root`'s descriptor).
pub(super) fn make_parents(root: &Path, target: &Path) -> Result<()> {
    let rel = target.strip_prefix(root).expect("confined");
    let dir = Dir::open(root)?;
    dir.walk_create(rel.parent().unwrap_or(Path::new("")), &root.display().to_string(), 0o777)?;
    Ok(())
}

/// The temporary directory beside the output that holds the staged payload
/// files; removed when dropped (and by SIGINT/SIGTERM while registered).
struct Staging {
    parent: Dir,
    name: OsString,
    dir: Dir,
    _interrupt: foundation::interrupt::Registration,
}

impl Staging {
    fn create(output: &Path) -> Result<Staging> {
        let abs = std::path::absolute(output).with_context(|| format!("output {}", output.display()))?;
        let (Some(parent), Some(out_name)) = (abs.parent(), abs.file_name()) else { bail!("output {} has no parent directory", output.display()) };
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        let parent_path = parent.canonicalize().with_context(|| format!("output directory {}", parent.display()))?;
        let parent = Dir::open(&parent_path)?;
        let mut name = OsString::from(".");
        name.push(out_name);
        name.push(format!(".cpekit-extract-{}", std::process::id()));
        // Left by a crashed extract that had our pid.
        parent.remove_all(&name).with_context(|| format!("removing a stale {}", parent_path.join(&name).display()))?;
        parent.mkdir(&name, 0o700).with_context(|| format!("creating {}", parent_path.join(&name).display()))?;
        let _interrupt = foundation::interrupt::Registration::new_dir(&parent_path.join(&name));
        match parent.walk(Path::new(&name), &parent_path.display().to_string()) {
            Ok(dir) => Ok(Staging { parent, name, dir, _interrupt }),
            Err(e) => {
                let _ = parent.remove_all(&name);
                Err(e.into())
            }
        }
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = self.parent.remove_all(&self.name);
    }
}

/// A package path, validated (`..`, NUL and the root itself refused).
fn rel(index: usize, pkg_path: &str) -> Result<RelPath> {
    RelPath::parse(pkg_path).with_context(|| format!("command #{index}"))
}

/// Stream the payload once through the hash verifier, writing every payload
/// file into `stage`; the payload must end exactly at its declared length.
fn stage_payload(package: &Path, prefix: &Prefix, stage: &Dir) -> Result<()> {
    let mut pkg = File::open(package).with_context(|| format!("opening {}", package.display()))?;
    pkg.seek(SeekFrom::Start(prefix.payload_offset()))?;
    let total = prefix.header.payload_length as u64;
    let mut files: HashMap<usize, File> = HashMap::new();
    for (index, _) in prefix.commands.commands.iter().enumerate().filter(|(_, c)| c.file().is_some()) {
        files.insert(index, stage.create_file(OsStr::new(&index.to_string()), 0o600).context("creating a staged file")?);
    }
    let bar = crate::progress::bytes_bar(total, "extracting");
    let mut v = PayloadVerifier::new(&prefix.commands, total);
    let mut buf = vec![0u8; pkgfmt::payload::STREAM_CHUNK];
    loop {
        let want = (total - v.position()).min(buf.len() as u64) as usize;
        if want == 0 {
            break;
        }
        let n = match pkg.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("reading the payload"),
        };
        v.update_with(&buf[..n], |index, bytes| match files.get_mut(&index) {
            Some(f) => f.write_all(bytes),
            None => Ok(()),
        })?;
        bar.set_position(v.position());
    }
    bar.finish_and_clear();
    v.finish()?;
    // Anything after the payload is not part of the package (Figure 8).
    let mut one = [0u8; 1];
    if pkg.read(&mut one)? > 0 {
        return Err(pkgfmt::Error::PayloadTooLong { expected: total }.into());
    }
    Ok(())
}

/// A directory or symlink of a Filesystem Entry, below the output `out`.
fn make_entry(out: &Dir, shown: &str, p: &RelPath, e: &FilesystemEntry) -> Result<()> {
    let (parent, name) = beneath::split(p.as_path());
    let d = out.walk_create(parent, shown, 0o777)?;
    let is_dir = |d: &Dir| -> Result<Option<bool>> { Ok(d.stat(name)?.map(|s| is_dir_mode(s.st_mode))) };
    match &e.kind {
        EntryKind::Directory => {
            match is_dir(&d)? {
                Some(true) => {}
                Some(false) => bail!("{shown}{} exists and is not a directory", p.display()),
                None => d.mkdir(name, 0o700).with_context(|| format!("creating {shown}{}", p.display()))?,
            }
            d.set_attributes(name, &resolve(Some(&e.metadata), None, DEFAULT_DIR_MODE), true)?;
        }
        EntryKind::Symlink { target: to } => {
            match is_dir(&d)? {
                Some(true) => bail!("{shown}{} is a directory", p.display()),
                Some(false) => d.remove_file(name)?,
                None => {}
            }
            d.symlink(OsStr::new(to), name).with_context(|| format!("creating link {shown}{}", p.display()))?;
            let attrs = resolve(Some(&e.metadata), None, 0);
            d.set_attributes(name, &pkgfmt::FileMetadata { mode: None, ..attrs }, false)?;
        }
    }
    Ok(())
}

/// An `st_mode` of a directory.
fn is_dir_mode(mode: u32) -> bool {
    mode & 0o170000 == 0o040000
}

pub fn run(a: ExtractArgs) -> Result<u8> {
    foundation::interrupt::install_handlers();
    let prefix = match super::open_package(&a.package, a.dialect.dialect)? {
        super::Opened::AnnexE { prefix, .. } => prefix,
        super::Opened::TwoWire(d) => return super::dialect::extract(&a, d),
    };
    // 1. Every path confined, and link targets too, before anything is written.
    let mut places: Vec<(usize, RelPath)> = Vec::new();
    for (index, c) in prefix.commands.commands.iter().enumerate() {
        let path = match (c, c.file()) {
            (Command::FilesystemEntry(e), _) => {
                if let EntryKind::Symlink { target } = &e.kind {
                    let p = rel(index, &e.path)?;
                    if target.contains('\0') || attributes::target_escapes(p.parent().as_ref().map_or(Path::new(""), |d| d.as_path()), target) {
                        bail!("command #{index}: link {} -> {target} points outside the output directory", e.path);
                    }
                }
                &e.path
            }
            (_, Some(f)) => &f.path,
            _ => continue,
        };
        places.push((index, rel(index, path)?));
    }
    // An existing output directory: a link or file in the way is refused now.
    if let Ok(root) = a.output.canonicalize() {
        let out = Dir::open(&root)?;
        let shown = root.display().to_string();
        for (index, p) in &places {
            match out.walk(p.as_path().parent().unwrap_or(Path::new("")), &shown) {
                Err(e) if !e.is_not_found() => return Err(e).with_context(|| format!("command #{index} ({})", p.display())),
                _ => {}
            }
        }
    }

    // 2. Stage and verify the whole payload.
    let staging = Staging::create(&a.output)?;
    stage_payload(&a.package, &prefix, &staging.dir).with_context(|| format!("extracting {}", a.package.display()))?;

    // 3. Place everything, in command order.
    fs::create_dir_all(&a.output).with_context(|| format!("creating {}", a.output.display()))?;
    let root = a.output.canonicalize()?;
    let out = Dir::open(&root)?;
    let shown = root.display().to_string();
    let mut n = 0;
    for (index, p) in &places {
        let c = &prefix.commands.commands[*index];
        let target = root.join(p.as_path());
        if let Command::FilesystemEntry(e) = c {
            make_entry(&out, &shown, p, e).with_context(|| format!("command #{index} ({})", e.path))?;
            println!("{}", target.display());
            n += 1;
            continue;
        }
        let Some(f) = c.file() else { continue };
        let (parent, name) = beneath::split(p.as_path());
        let d = out.walk_create(parent, &shown, 0o777).with_context(|| format!("command #{index} ({})", f.path))?;
        if d.stat(name)?.is_some_and(|s| is_dir_mode(s.st_mode)) {
            bail!("command #{index}: {} is a directory", target.display());
        }
        let staged = index.to_string();
        staging
            .dir
            .set_attributes(OsStr::new(&staged), &resolve(f.metadata.as_ref(), None, DEFAULT_FILE_MODE), false)
            .with_context(|| format!("setting the attributes of {}", target.display()))?;
        // Never write through a symlink planted at the target name: rename
        // replaces the link itself.
        staging.dir.rename(OsStr::new(&staged), &d, name).with_context(|| format!("writing {}", target.display()))?;
        println!("{}", target.display());
        n += 1;
    }
    out.sync_fs().with_context(|| format!("syncing {}", root.display()))?;
    drop(staging);
    eprintln!("extracted {n} file(s), directories and links into {}", a.output.display());
    Ok(crate::exit::SUCCESS)
}
