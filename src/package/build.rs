//! `cpekit package build`

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use walkdir::WalkDir;

use super::{atomic_write, load_signers, sign_all};
use crate::cli::BuildArgs;
use crate::manifest::{CommandSpec, Manifest, ManifestError};
use crate::progress::bytes_bar;

pub fn run(a: BuildArgs) -> Result<u8> {
    // Load keys first: a bad key should fail before minutes of hashing.
    let signers = load_signers(&a.signers)?;
    let (mut manifest, base) = match (&a.manifest, &a.from_dir) {
        (Some(m), _) => {
            let base = m.parent().map(Path::to_path_buf).unwrap_or_default();
            (Manifest::load(m)?, base)
        }
        // Sources from the walk already include DIR.
        (None, Some(dir)) => (from_dir(dir, &a.prefix)?, PathBuf::new()),
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

/// `--from-dir`: one Extract File per regular file, sorted by path so the
/// package is deterministic.
fn from_dir(dir: &Path, prefix: &str) -> Result<Manifest> {
    let mut commands = Vec::new();
    for entry in WalkDir::new(dir).follow_links(false).sort_by_file_name() {
        let entry = entry.with_context(|| format!("walking {}", dir.display()))?;
        let ft = entry.file_type();
        if ft.is_dir() {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).expect("walkdir yields paths under its root");
        if !ft.is_file() {
            eprintln!("warning: skipping {} (not a regular file)", entry.path().display());
            continue;
        }
        let rel = rel.to_str().ok_or_else(|| ManifestError(format!("{}: path is not UTF-8", entry.path().display())))?;
        let path = format!("{}/{}", prefix.trim_end_matches('/'), rel);
        commands.push(CommandSpec {
            kind: "extract".into(),
            path: Some(path),
            source: Some(entry.path().to_path_buf()),
            unsafe_flag: false,
            flags: None,
            src: None,
            dst: None,
            value: None,
            version: None,
            code: None,
            role: None,
            defining_entity: None,
            class: None,
            attributes: None,
        });
    }
    if commands.is_empty() {
        return Err(ManifestError(format!("{}: no regular files to package", dir.display())).into());
    }
    Ok(Manifest { commands, ..Manifest::default() })
}
