//! `cpekit package sign`: add or remove a signature. E.5: "additional
//! signatures can be added to an existing signed package file without
//! modifying any part of the file other than the signature block itself."
//!
//! In place (no `--output`), the new package is written to a temporary
//! file next to PKG and checked (it parses, with the same header and
//! command list, and the same payload length) before it replaces PKG:
//! by rename, with PKG's mode and owner, or — when PKG has other hard
//! links — by copying it over PKG's own inode, so that every name sees the
//! signed package (SIGINT/SIGTERM are held off during that copy).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result};
use foundation::durable::{AtomicFile, Mode};
use pkgfmt::signature::SignatureBlock;
use pkgfmt::{Prefix, DEFAULT_PREFIX_LIMIT};

use super::{atomic_write, load_signers, open_prefix, sign_all};
use crate::cli::SignArgs;

pub fn run(a: SignArgs) -> Result<u8> {
    foundation::interrupt::install_handlers();
    let signers = if a.remove.is_none() { load_signers(&a.signer)? } else { Vec::new() };
    let (prefix, mut payload, _) = open_prefix(&a.package)?;
    let block = match &a.remove {
        Some(which) => {
            let index = signer_index(&prefix.signatures, which)?;
            eprintln!("removing signer #{index}: {}", prefix.signatures.signers()[index].subject);
            prefix.signatures.remove_signer(index).context("removing the signature")?
        }
        None => {
            for s in &signers {
                if !a.allow_duplicate && prefix.signatures.is_signed_by(&s.cert)? {
                    return Err(crate::exit::usage(format!(
                        "{} already signed this package (same issuer and serial number); give --allow-duplicate to add it again",
                        s.cert.tbs_certificate.subject
                    )));
                }
            }
            sign_all(prefix.signatures.clone(), prefix.signed_message(), &signers)?
        }
    };
    let declared = prefix.header.payload_length as u64;
    let write = |f: &mut File| -> Result<()> {
        let mut w = io::BufWriter::with_capacity(pkgfmt::payload::STREAM_CHUNK, f);
        // Header and command list exactly as read, never re-encoded.
        w.write_all(prefix.signed_message())?;
        w.write_all(&block.to_der())?;
        let bar = crate::progress::bytes_bar(declared, "signing");
        let copied = io::copy(&mut bar.wrap_read(&mut payload), &mut w)?;
        bar.finish_and_clear();
        // Refuse to sign a truncated or padded package; the output is
        // discarded and the input left untouched.
        if copied < declared {
            return Err(pkgfmt::Error::PayloadTruncated { expected: declared, actual: copied }.into());
        }
        if copied > declared {
            return Err(pkgfmt::Error::PayloadTooLong { expected: declared }.into());
        }
        w.flush()?;
        Ok(())
    };
    let out = match &a.output {
        Some(o) => {
            atomic_write(o, write)?;
            o.clone()
        }
        None => {
            replace_in_place(&a.package, &prefix, write)?;
            a.package.clone()
        }
    };
    eprintln!("signed {}: {} signer(s) now", out.display(), block.signers().len());
    Ok(crate::exit::SUCCESS)
}

/// `--remove SIGNER`: an index, or the one signer whose subject is or contains SIGNER.
fn signer_index(block: &SignatureBlock, which: &str) -> Result<usize> {
    let signers = block.signers();
    if let Ok(i) = which.parse::<usize>() {
        if i < signers.len() {
            return Ok(i);
        }
        return Err(crate::exit::usage(format!("--remove {i}: the package has {} signer(s) (0 is the first)", signers.len())));
    }
    let exact: Vec<usize> = (0..signers.len()).filter(|i| signers[*i].subject == which).collect();
    let found: Vec<usize> = if exact.is_empty() { (0..signers.len()).filter(|i| signers[*i].subject.contains(which)).collect() } else { exact };
    match found.as_slice() {
        [i] => Ok(*i),
        [] => Err(crate::exit::usage(format!("--remove {which:?}: no signer's subject matches (see `package inspect`)"))),
        many => Err(crate::exit::usage(format!("--remove {which:?} matches signers {many:?}; give the index"))),
    }
}

/// Write the new package for `pkg` through `write` into a temporary file,
/// check it, then put it in place keeping `pkg`'s mode, owner and links.
fn replace_in_place(pkg: &Path, old: &Prefix, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let meta = fs::metadata(pkg).with_context(|| format!("reading {}", pkg.display()))?;
    let mut tmp = AtomicFile::create(pkg, Mode::Exactly(meta.mode())).with_context(|| format!("creating a temporary file next to {}", pkg.display()))?;
    write(tmp.file())?;
    tmp.sync()?;
    let mut written = File::open(tmp.temp_path())?;
    check_written(&mut written, old).with_context(|| format!("checking the signed copy of {}", pkg.display()))?;
    if meta.nlink() > 1 {
        copy_over(&mut written, pkg).with_context(|| format!("rewriting {} in place", pkg.display()))?;
        return Ok(()); // `tmp` is removed when dropped.
    }
    // A new inode: give it the old one's owner (root can; others keep their
    // own, which is the old owner unless they could not have written it),
    // then the mode again, as chown clears the set-id bits.
    if let Err(e) = std::os::unix::fs::fchown(tmp.file(), Some(meta.uid()), Some(meta.gid())) {
        eprintln!("warning: {}: cannot keep owner {}:{} ({e}); the signed file is owned by you", pkg.display(), meta.uid(), meta.gid());
    }
    tmp.file().set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    tmp.commit().with_context(|| format!("writing {}", pkg.display()))
}

/// The written package parses, signs the same header and command list and
/// has the same payload length as the one read.
fn check_written(f: &mut File, old: &Prefix) -> Result<()> {
    f.seek(SeekFrom::Start(0))?;
    let mut r = io::BufReader::new(&mut *f);
    let new = Prefix::read_from(&mut r, DEFAULT_PREFIX_LIMIT)?;
    if new.signed_message() != old.signed_message() {
        anyhow::bail!("the header or command list changed");
    }
    let len = f.metadata()?.len();
    if len != new.payload_offset() + new.header.payload_length as u64 {
        anyhow::bail!("{len} bytes written, expected {}", new.payload_offset() + new.header.payload_length as u64);
    }
    Ok(())
}

/// Copy `from` over `to`'s own inode (so hard links follow), with SIGINT
/// and SIGTERM blocked so that an interrupt cannot leave it half written.
fn copy_over(from: &mut File, to: &Path) -> Result<()> {
    let _held = HoldSignals::new();
    let mut dst = OpenOptions::new().write(true).open(to)?;
    from.seek(SeekFrom::Start(0))?;
    let n = io::copy(from, &mut dst)?;
    dst.set_len(n)?;
    dst.sync_all()?;
    Ok(())
}

/// SIGINT and SIGTERM blocked while alive (delivered when dropped).
struct HoldSignals(libc::sigset_t);

impl HoldSignals {
    fn new() -> HoldSignals {
        // SAFETY: sigset operations on local values; pthread_sigmask on this thread.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            HoldSignals(old)
        }
    }
}

impl Drop for HoldSignals {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `new`.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut());
        }
    }
}
