//! `cpekit package build`

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use walkdir::WalkDir;

use super::{atomic_write, load_signers, sign_all};
use crate::cli::BuildArgs;
use crate::manifest::{CommandSpec, Manifest, ManifestError};
use crate::progress::bytes_bar;

pub fn run(a: BuildArgs) -> Result<u8> {
    // An interrupted build leaves no temporary file (up to the payload's size).
    foundation::interrupt::install_handlers();
    // Load keys first: a bad key should fail before minutes of hashing.
    let signers = load_signers(&a.signers)?;
    let (mut manifest, base) = match (&a.manifest, &a.from_dir) {
        (Some(m), _) => {
            let base = m.parent().map(Path::to_path_buf).unwrap_or_default();
            (Manifest::load(m)?, base)
        }
        // Sources from the walk already include DIR.
        (None, Some(dir)) => (from_dir(dir, &a.prefix, a.normalize_owners)?, PathBuf::new()),
        (None, None) => unreachable!("clap requires one of --manifest/--from-dir"),
    };
    if let Some(v) = a.pkg_version {
        manifest.version = Some(v);
    }
    if let Some(d) = a.description {
        manifest.description = Some(d);
    }
    manifest.reboot |= a.reboot;

    let builder = manifest.to_builder(&base)?;
    // The builder learns the total size first; create the bar on first report.
    let mut hash_bar = None;
    let mut built = builder.build(|done, total| hash_bar.get_or_insert_with(|| bytes_bar(total, "hashing")).set_position(done))?;
    if let Some(b) = hash_bar {
        b.finish_and_clear();
    }
    built.prefix.signatures = sign_all(built.prefix.signatures.clone(), built.prefix.signed_message(), &signers)?;

    let total = built.prefix.header.payload_length as u64;
    let bar = bytes_bar(total, "writing");
    let mut written = 0;
    atomic_write(&a.output, |f| {
        let mut w = std::io::BufWriter::with_capacity(pkgfmt::payload::STREAM_CHUNK, f);
        written = built.write_to(&mut w, |done, _| bar.set_position(done))?;
        std::io::Write::flush(&mut w)?;
        Ok(())
    })?;
    bar.finish_and_clear();
    let files = built.prefix.commands.files().count();
    eprintln!(
        "built {}: {} bytes, {} commands ({} payload files), {} signer(s)",
        a.output.display(),
        written,
        built.prefix.commands.commands.len(),
        files,
        signers.len()
    );
    Ok(crate::exit::SUCCESS)
}

/// `--from-dir`: the tree under DIR, in sorted order (so the package is
/// the same on every machine): a Filesystem Entry for each directory and
/// symlink (target verbatim), an Extract File for each regular file, each
/// with its mode, uid and gid (0:0 with `normalize_owners`). Times are not
/// recorded, so the package does not depend on when the tree was checked
/// out. FIFOs, sockets and device nodes are refused.
fn from_dir(dir: &Path, prefix: &str, normalize_owners: bool) -> Result<Manifest> {
    let top = std::fs::metadata(dir).with_context(|| format!("--from-dir {}", dir.display()))?;
    if !top.is_dir() {
        return Err(ManifestError(format!("--from-dir {}: not a directory (use --manifest to package single files)", dir.display())).into());
    }
    let mut commands = Vec::new();
    for entry in WalkDir::new(dir).follow_links(false).sort_by_file_name().min_depth(1) {
        let entry = entry.with_context(|| format!("walking {}", dir.display()))?;
        let md = entry.metadata().with_context(|| format!("reading {}", entry.path().display()))?;
        let rel = entry.path().strip_prefix(dir).expect("walkdir yields paths under its root");
        let rel = rel.to_str().ok_or_else(|| ManifestError(format!("{}: path is not UTF-8", entry.path().display())))?;
        let path = format!("{}/{}", prefix.trim_end_matches('/'), rel);
        let (uid, gid) = if normalize_owners { (0, 0) } else { (md.uid(), md.gid()) };
        let mode = Some(toml::Value::String(format!("{:04o}", md.mode() & 0o7777)));
        let ft = entry.file_type();
        let spec = if ft.is_dir() {
            CommandSpec { kind: "directory".into(), path: Some(path), mode, uid: Some(uid), gid: Some(gid), ..CommandSpec::default() }
        } else if ft.is_file() {
            let source = Some(entry.path().to_path_buf());
            CommandSpec { kind: "extract".into(), path: Some(path), source, mode, uid: Some(uid), gid: Some(gid), ..CommandSpec::default() }
        } else if ft.is_symlink() {
            let target = std::fs::read_link(entry.path()).with_context(|| format!("reading link {}", entry.path().display()))?;
            let target = target.to_str().ok_or_else(|| ManifestError(format!("{}: link target is not UTF-8", entry.path().display())))?;
            CommandSpec { kind: "symlink".into(), path: Some(path), target: Some(target.into()), uid: Some(uid), gid: Some(gid), ..CommandSpec::default() }
        } else {
            let what = if ft.is_fifo() {
                "a FIFO"
            } else if ft.is_socket() {
                "a socket"
            } else if ft.is_char_device() {
                "a character device"
            } else if ft.is_block_device() {
                "a block device"
            } else {
                "not a file, directory or symlink"
            };
            return Err(ManifestError(format!(
                "{} is {what}: a package carries regular files, directories and symlinks only (create it on the device, e.g. from a script)",
                entry.path().display()
            ))
            .into());
        };
        commands.push(spec);
    }
    if commands.is_empty() {
        return Err(ManifestError(format!("{}: the directory is empty, nothing to package", dir.display())).into());
    }
    Ok(Manifest { commands, ..Manifest::default() })
}
