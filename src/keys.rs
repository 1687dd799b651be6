//! Signer keys and certificates as users have them (`--key`, `--cert`,
//! `--pass`): PEM or DER, PKCS#1 or PKCS#8, encrypted PKCS#8 or legacy
//! encrypted PEM (pkgfmt's `load_private_key`), the passphrase given in
//! openssl's forms; and the warning when a signer certificate is outside
//! its validity period.

use std::io::{BufRead, Read};
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result};
use pkgfmt::signature::{load_certs, load_private_key};
use x509_cert::Certificate;

use crate::exit::{malformed, usage};

/// `--pass SOURCE`, as openssl's `-passin`: `pass:TEXT`, `env:VAR`,
/// `file:PATH` (its first line), `fd:N` (its first line) or `stdin`.
pub fn read_pass(source: &str) -> Result<Vec<u8>> {
    let first_line = |r: &mut dyn BufRead| -> Result<Vec<u8>> {
        let mut line = Vec::new();
        r.read_until(b'\n', &mut line)?;
        while matches!(line.last(), Some(b'\n' | b'\r')) {
            line.pop();
        }
        Ok(line)
    };
    if let Some(text) = source.strip_prefix("pass:") {
        Ok(text.as_bytes().to_vec())
    } else if let Some(var) = source.strip_prefix("env:") {
        std::env::var_os(var).map(std::os::unix::ffi::OsStringExt::into_vec).ok_or_else(|| usage(format!("--pass env:{var}: the variable is not set")))
    } else if let Some(path) = source.strip_prefix("file:") {
        let f = std::fs::File::open(path).with_context(|| format!("--pass file:{path}"))?;
        first_line(&mut std::io::BufReader::new(f))
    } else if let Some(fd) = source.strip_prefix("fd:") {
        let fd: i32 = fd.parse().map_err(|_| usage(format!("--pass fd:{fd}: not a file descriptor number")))?;
        // SAFETY: the caller handed us this descriptor to read the passphrase
        // from; it is read once and closed, as openssl does.
        let f = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        first_line(&mut std::io::BufReader::new(f.take(64 * 1024)))
    } else if source == "stdin" {
        first_line(&mut std::io::stdin().lock())
    } else {
        Err(usage(format!("--pass {source:?}: give pass:TEXT, env:VAR, file:PATH, fd:N or stdin")))
    }
}

/// A private key file, decrypted with `pass` if it is encrypted.
pub fn read_private_key(path: &Path, pass: Option<&[u8]>) -> Result<rsa::RsaPrivateKey> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    load_private_key(&bytes, pass).map_err(|e| malformed(format!("{}: {e}", path.display())))
}

/// The certificates of a PEM or DER file (at least one).
pub fn read_certs(path: &Path) -> Result<Vec<Certificate>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let certs = load_certs(&bytes).map_err(|e| malformed(format!("certificates in {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(malformed(format!("{}: no certificate found", path.display())));
    }
    Ok(certs)
}

/// Warn when `cert` is expired or not yet valid: verifiers that check dates
/// will refuse the signature.
pub fn warn_if_outside_validity(cert: &Certificate) {
    let v = &cert.tbs_certificate.validity;
    let now = SystemTime::now();
    let subject = &cert.tbs_certificate.subject;
    if now > v.not_after.to_system_time() {
        eprintln!("warning: signer certificate {subject} expired on {}; verifiers that check dates will refuse this signature", v.not_after);
    } else if now < v.not_before.to_system_time() {
        eprintln!("warning: signer certificate {subject} is not valid before {}; verifiers that check dates will refuse this signature", v.not_before);
    }
}
