//! `cpekit package ...` subcommands.

pub mod build;
pub mod dialect;
pub mod dump;
pub mod extract;
pub mod inspect;
pub mod metadata;
pub mod sign;
pub mod verify;

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{Context, Result};
use pkgfmt::signature::{RsaSha1Signer, SignOptions, SignatureBlock, SignerSummary};
use pkgfmt::{Command, Prefix, Role, DEFAULT_PREFIX_LIMIT};
use serde_json::{json, Value};
use x509_cert::Certificate;

use crate::cli::{DialectChoice, PackageSignerArgs, TrustArgs};

/// Open a package and read its prefix (header, commands, signatures). The
/// returned reader is positioned at the first payload byte.
pub fn open_prefix(path: &Path) -> Result<(Prefix, BufReader<File>, u64)> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = f.metadata()?.len();
    let mut r = BufReader::with_capacity(pkgfmt::payload::STREAM_CHUNK, f);
    let prefix = Prefix::read_from(&mut r, DEFAULT_PREFIX_LIMIT).with_context(|| format!("{}", path.display()))?;
    Ok((prefix, r, size))
}

/// A package opened for a read-only command, in the format `--dialect` chose.
pub enum Opened {
    AnnexE { prefix: Prefix, reader: BufReader<File>, size: u64 },
    TwoWire(dialect::Dialected),
}

/// Open a package as `--dialect` says: `auto` reads Annex E strictly and,
/// when that fails on the bytes (not on I/O), the 2Wire dialect if the
/// package matches it; otherwise the strict error stands.
pub fn open_package(path: &Path, choice: DialectChoice) -> Result<Opened> {
    let strict = match choice {
        DialectChoice::TwoWire => return Ok(Opened::TwoWire(dialect::open(path, "--dialect 2wire".into())?)),
        DialectChoice::AnnexE | DialectChoice::Auto => open_prefix(path),
    };
    match strict {
        Ok((prefix, reader, size)) => Ok(Opened::AnnexE { prefix, reader, size }),
        Err(e) if choice == DialectChoice::Auto && crate::exit::kind_of(&e) == foundation::ErrorKind::Malformed => match dialect::open(path, String::new()) {
            Ok(mut d) if d.prefix.matches() => {
                let evidence: Vec<String> = d.prefix.evidence.iter().map(ToString::to_string).collect();
                d.reason = format!("not Annex E ({}); matches the 2Wire dialect: {}", e.root_cause(), evidence.join("; "));
                Ok(Opened::TwoWire(d))
            }
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

pub use crate::keys::read_certs;

/// Every certificate in every --trust file.
pub fn trust_anchors(t: &TrustArgs) -> Result<Vec<Certificate>> {
    let mut anchors = Vec::new();
    for f in &t.trust {
        anchors.extend(read_certs(f)?);
    }
    Ok(anchors)
}

/// One signer to add: key, certificate and chain, all loaded and checked.
pub struct Signer {
    pub key: Box<dyn RsaSha1Signer>,
    pub cert: Certificate,
    pub chain: Vec<Certificate>,
    pub signed_attributes: bool,
}

/// `SOURCE_DATE_EPOCH` (reproducible-builds.org): when set, the signingTime
/// of every signature made, so that two builds of the same input with the
/// same key are byte-identical. Unset or empty: now.
pub fn source_date_epoch() -> Result<Option<std::time::SystemTime>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => {
            let secs: u64 = v.trim().parse().map_err(|_| crate::exit::usage(format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds since 1970")))?;
            Ok(Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)))
        }
        _ => Ok(None),
    }
}

pub fn load_signers(a: &PackageSignerArgs) -> Result<Vec<Signer>> {
    let pairs = a.signer.pairs()?;
    let pass = a.signer.pass.as_deref().map(crate::keys::read_pass).transpose()?;
    let chain = match &a.signer.chain {
        Some(p) => read_certs(p)?,
        None => Vec::new(),
    };
    pairs
        .into_iter()
        .map(|(k, c)| {
            let key: Box<dyn RsaSha1Signer> = if crate::pkcs11::is_uri(k) {
                Box::new(crate::pkcs11::open(&k.to_string_lossy(), a.signer.pkcs11_module.as_deref(), pass.as_deref())?)
            } else {
                Box::new(crate::keys::read_private_key(k, pass.as_deref())?)
            };
            let cert = read_certs(c)?.remove(0);
            crate::keys::warn_if_outside_validity(&cert);
            Ok(Signer { key, cert, chain: chain.clone(), signed_attributes: !a.no_signed_attributes })
        })
        .collect()
}

/// Add every signer to `block`, signing `message` (at `SOURCE_DATE_EPOCH`
/// when set).
pub fn sign_all(mut block: SignatureBlock, message: &[u8], signers: &[Signer]) -> Result<SignatureBlock> {
    let signing_time = source_date_epoch()?;
    for s in signers {
        let opts = SignOptions { signed_attributes: s.signed_attributes, signing_time };
        block = block.add_signer_with(message, s.key.as_ref(), &s.cert, &s.chain, &opts).context("signing")?;
    }
    Ok(block)
}

/// `inspect --json` representation of one command.
pub fn command_json(index: usize, c: &Command) -> Value {
    let mut v = json!({ "index": index, "type": c.type_code(), "name": c.name() });
    let o = v.as_object_mut().expect("object");
    if let Some(flags) = c.flags() {
        o.insert("flags".into(), json!(flags));
        o.insert("unsafe".into(), json!(c.is_unsafe()));
    }
    match c {
        Command::ExtractFile(f) | Command::ExtractVersionedFile(f) | Command::AddFile(f) | Command::AddVersionedFile(f) => {
            o.insert("path".into(), json!(f.path));
            o.insert("hash_type".into(), json!(pkgfmt::command::SHA1_HASH_TYPE));
            o.insert("hash".into(), json!(hex::encode(f.sha1)));
            o.insert("file_offset".into(), json!(f.file_offset));
            o.insert("file_length".into(), json!(f.file_length));
            o.insert("record".into(), json!(if f.metadata.is_some() { "extended" } else { "table-69" }));
            if let Some(m) = &f.metadata {
                o.insert("metadata".into(), metadata::metadata_json(m));
            }
        }
        Command::FilesystemEntry(e) => metadata::entry_json(o, e),
        Command::RemoveFile(r) | Command::RemoveVersionedFile(r) | Command::RemoveSubTree(r) => {
            o.insert("path".into(), json!(r.path));
        }
        Command::MoveFile(m) | Command::MoveVersionedFile(m) => {
            o.insert("src".into(), json!(m.src));
            o.insert("dst".into(), json!(m.dst));
        }
        Command::Version(s) | Command::Description(s) => {
            o.insert("text".into(), json!(s));
        }
        Command::RecoverableTimeout(n)
        | Command::UnrecoverableTimeout(n)
        | Command::InitialTimeout(n)
        | Command::InitialActivityTimeout(n)
        | Command::MinimumNonVolatileStorage(n)
        | Command::MinimumVolatileStorage(n) => {
            o.insert("value".into(), json!(n));
        }
        Command::MinimumVersion(v) | Command::MaximumVersion(v) => {
            o.insert("version".into(), json!(v.0));
        }
        Command::Role(r) => {
            o.insert("value".into(), json!(r.code()));
            o.insert("role".into(), json!(r.name()));
            if let Role::Vendor { oui, args } = r {
                o.insert("oui".into(), json!(hex::encode_upper(oui)));
                o.insert("args".into(), json!(hex::encode(args)));
            }
        }
        Command::RequiredAttributes(a) => {
            o.insert("defining_entity".into(), json!(a.defining_entity));
            o.insert("class".into(), json!(a.class));
            o.insert("attributes".into(), json!(a.attributes));
        }
        Command::Vendor { value, .. } | Command::Unknown { value, .. } => {
            o.insert("value".into(), json!(hex::encode(value)));
        }
        Command::End | Command::Reboot | Command::FormatFileSystem => {}
    }
    v
}

/// One-line human description of a command's arguments.
pub fn command_detail(c: &Command) -> String {
    let flag = |u: bool| if u { " [unsafe]" } else { "" };
    match c {
        Command::ExtractFile(f) | Command::ExtractVersionedFile(f) | Command::AddFile(f) | Command::AddVersionedFile(f) => {
            let meta = f.metadata.as_ref().map(metadata::metadata_detail).unwrap_or_default();
            format!("{}  {} bytes @ payload+{}  sha1 {}{meta}{}", f.path, f.file_length, f.file_offset, hex::encode(f.sha1), flag(f.is_unsafe()))
        }
        Command::FilesystemEntry(e) => metadata::entry_detail(e),
        Command::RemoveFile(r) | Command::RemoveVersionedFile(r) | Command::RemoveSubTree(r) => {
            format!("{}{}", r.path, flag(r.is_unsafe()))
        }
        Command::MoveFile(m) | Command::MoveVersionedFile(m) => format!("{} -> {}{}", m.src, m.dst, flag(m.is_unsafe())),
        Command::Version(s) | Command::Description(s) => format!("{s:?}"),
        Command::RecoverableTimeout(n) | Command::UnrecoverableTimeout(n) | Command::InitialTimeout(n) | Command::InitialActivityTimeout(n) => {
            if *n == 0 {
                "infinite".into()
            } else {
                format!("{n} s")
            }
        }
        Command::MinimumNonVolatileStorage(n) | Command::MinimumVolatileStorage(n) => format!("{n} bytes"),
        Command::MinimumVersion(v) | Command::MaximumVersion(v) => v.to_string(),
        Command::Role(Role::Vendor { oui, args }) => {
            format!("vendor OUI {} args {}", hex::encode_upper(oui), hex::encode(args))
        }
        Command::Role(r) => format!("{} ({})", r.code(), r.name()),
        Command::RequiredAttributes(a) => {
            format!("entity 0x{:08X} class {} any of {:?}", a.defining_entity, a.class, a.attributes)
        }
        Command::Vendor { value, .. } | Command::Unknown { value, .. } => {
            format!("{} bytes: {}", value.len(), preview_hex(value, 32))
        }
        Command::End | Command::Reboot | Command::FormatFileSystem => String::new(),
    }
}

pub fn preview_hex(b: &[u8], max: usize) -> String {
    let s = hex::encode(&b[..b.len().min(max)]);
    if b.len() > max {
        s + "…"
    } else {
        s
    }
}

pub fn signer_json(s: &SignerSummary) -> Value {
    json!({
        "subject": s.subject,
        "issuer": s.issuer,
        "serial": s.serial,
        "digest": s.digest_algorithm,
        "signature_algorithm": s.signature_algorithm,
        "signed_attributes": s.signed_attributes,
        "key_bits": s.key_bits,
        "certificate_signature_algorithm": s.certificate_signature_algorithm,
        "not_after": s.not_after,
    })
}

/// Write `out` atomically and durably through `write`
/// ([`foundation::durable::write_atomic_with`]): `out` is replaced only
/// once `write` succeeded, so `write` may stream from `out` itself (signing
/// in place), and a refused write leaves it untouched. The file keeps the
/// mode of the one it replaces (a new one: `0o666` less the umask).
pub fn atomic_write(out: &Path, write: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    // `write`'s own errors come back as they are; the file system's get the path.
    let mut in_write = false;
    foundation::durable::write_atomic_with(out, foundation::durable::Mode::Inherit, |f| write(f).inspect_err(|_| in_write = true)).map_err(|e| {
        if in_write {
            e
        } else {
            e.context(format!("writing {}", out.display()))
        }
    })
}
