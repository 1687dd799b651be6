//! `cpekit package extract`: write each Extract/Add payload file under a
//! directory, and the directories and symlinks of cpekit Filesystem
//! Entries. Nothing in the package is executed or interpreted beyond
//! those; every file is hash-checked before it is renamed into place, and
//! package paths never escape the directory (nor do link targets).
//! Recorded modes are applied (a file without one is 0644, a directory
//! 0755); recorded owners only when run as root.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use foundation::durable::{AtomicFile, Mode};
use install::attributes::{self, resolve, DEFAULT_DIR_MODE, DEFAULT_FILE_MODE};
use pkgfmt::{Command, EntryKind, FilesystemEntry};
use sha1::{Digest, Sha1};

use crate::cli::ExtractArgs;

/// Resolve a package path (E.2.1 UNIX format) inside `root`, by the
/// installer's rules ([`pkgfmt::path`]): an absolute path means "relative
/// to the root"; `..`, NUL, the root itself and paths beyond the limits
/// are refused lexically, and symlinks are refused when walking the tree.
pub fn confine(root: &Path, pkg_path: &str) -> Result<PathBuf> {
    Ok(pkgfmt::PackagePath::parse(pkg_path)?.under(root))
}

/// Create the parent directories of `target` below `root`, refusing to
/// traverse any symlink.
pub(super) fn make_parents(root: &Path, target: &Path) -> Result<()> {
    let rel = target.strip_prefix(root).expect("confined");
    let mut cur = root.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in &comps[..comps.len().saturating_sub(1)] {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => bail!("{} is a symlink; refusing to follow it", cur.display()),
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!("{} exists and is not a directory", cur.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::create_dir(&cur).with_context(|| format!("creating {}", cur.display()))?,
            Err(e) => return Err(e).with_context(|| format!("inspecting {}", cur.display())),
        }
    }
    Ok(())
}

/// A directory or symlink of a Filesystem Entry, under `root`.
fn make_entry(root: &Path, e: &FilesystemEntry) -> Result<()> {
    let target = confine(root, &e.path)?;
    make_parents(root, &target)?;
    match &e.kind {
        EntryKind::Directory => {
            match fs::symlink_metadata(&target) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => bail!("{} exists and is not a directory", target.display()),
                Err(_) => fs::create_dir(&target).with_context(|| format!("creating {}", target.display()))?,
            }
            attributes::apply(&target, &resolve(Some(&e.metadata), None, DEFAULT_DIR_MODE))?;
        }
        EntryKind::Symlink { target: to } => {
            let rel = target.strip_prefix(root).expect("confined");
            if attributes::target_escapes(rel.parent().unwrap_or(Path::new("")), to) {
                bail!("link {} -> {to} points outside the output directory", e.path);
            }
            match fs::symlink_metadata(&target) {
                Ok(m) if m.is_dir() => bail!("{} is a directory", target.display()),
                Ok(_) => fs::remove_file(&target)?,
                Err(_) => {}
            }
            std::os::unix::fs::symlink(to, &target).with_context(|| format!("creating link {}", target.display()))?;
            let attrs = resolve(Some(&e.metadata), None, 0);
            attributes::apply(&target, &pkgfmt::FileMetadata { mode: None, ..attrs })?;
        }
    }
    Ok(())
}

pub fn run(a: ExtractArgs) -> Result<u8> {
    foundation::interrupt::install_handlers();
    let prefix = match super::open_package(&a.package, a.dialect.dialect)? {
        super::Opened::AnnexE { prefix, .. } => prefix,
        super::Opened::TwoWire(d) => return super::dialect::extract(&a, d),
    };
    fs::create_dir_all(&a.output).with_context(|| format!("creating {}", a.output.display()))?;
    let root = a.output.canonicalize()?;
    let mut pkg = File::open(&a.package)?;
    let base = prefix.payload_offset();
    let mut n = 0;
    let bar = crate::progress::bytes_bar(prefix.commands.files().map(|(_, f)| f.file_length as u64).sum(), "extracting");
    for (index, c) in prefix.commands.commands.iter().enumerate() {
        if let Command::FilesystemEntry(e) = c {
            make_entry(&root, e).with_context(|| format!("command #{index} ({})", e.path))?;
            println!("{}", confine(&root, &e.path)?.display());
            n += 1;
        }
        let Some(f) = c.file() else { continue };
        let target = confine(&root, &f.path).with_context(|| format!("command #{index}"))?;
        make_parents(&root, &target).with_context(|| format!("command #{index} ({})", f.path))?;
        if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
            bail!("command #{index}: {} is a directory", target.display());
        }
        let mut tmp = AtomicFile::create(&target, Mode::Exactly(0o600))?;
        pkg.seek(SeekFrom::Start(base + f.file_offset as u64))?;
        let mut src = (&mut pkg).take(f.file_length as u64);
        let mut h = Sha1::new();
        let mut buf = vec![0u8; pkgfmt::payload::STREAM_CHUNK];
        let mut got = 0u64;
        loop {
            let k = src.read(&mut buf)?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            tmp.file().write_all(&buf[..k])?;
            bar.inc(k as u64);
            got += k as u64;
        }
        if got != f.file_length as u64 {
            return Err(pkgfmt::Error::PayloadTruncated {
                expected: base + f.file_offset as u64 + f.file_length as u64,
                actual: base + f.file_offset as u64 + got,
            })
            .with_context(|| format!("command #{index} ({})", f.path));
        }
        let actual: [u8; 20] = h.finalize().into();
        if actual != f.sha1 {
            return Err(pkgfmt::Error::HashMismatch { index, path: f.path.clone(), expected: hex::encode(f.sha1), actual: hex::encode(actual) }.into());
        }
        attributes::apply(tmp.temp_path(), &resolve(f.metadata.as_ref(), None, DEFAULT_FILE_MODE))
            .with_context(|| format!("setting the attributes of {}", target.display()))?;
        // Never write through a symlink planted at the target name: rename
        // replaces the link itself.
        tmp.commit().with_context(|| format!("writing {}", target.display()))?;
        println!("{}", target.display());
        n += 1;
    }
    bar.finish_and_clear();
    eprintln!("extracted {n} file(s), directories and links into {}", a.output.display());
    Ok(crate::exit::SUCCESS)
}
