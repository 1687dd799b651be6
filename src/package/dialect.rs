//! The 2Wire `.pkgstream` dialect in `package inspect`, `dump`, `verify`
//! and `extract`: how `pkgfmt::dialect`'s findings are shown. The reading
//! itself, its bounds and its sources are in that module.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use install::attributes::{resolve, DEFAULT_FILE_MODE};
use install::beneath::{self, AtomicFileAt, Dir};
use pkgfmt::command::metadata::mode_string;
use pkgfmt::dialect::{
    Confidence, DialectFile, DialectPrefix, ItemCheck, ItemKind, Layout, PassMode, PayloadPass, PayloadReport, Record, RecordBody, RecordType, Script, Source,
    Wrapper, Write,
};
use serde_json::{json, Map, Value};

use super::{command_detail, command_json, metadata, preview_hex, signer_json};
use crate::cli::{DumpArgs, ExtractArgs, InspectArgs, VerifyArgs};
use crate::progress::bytes_bar;

/// How deep `inspect --recursive` descends into nested packages.
const MAX_NESTING: usize = 4;

/// A package read as the 2Wire dialect, its source at the payload base.
pub struct Dialected {
    pub prefix: DialectPrefix,
    pub source: Source<'static>,
    /// The file's size on disk.
    pub size: u64,
    /// Why the dialect reader was used.
    pub reason: String,
}

/// Open `path` with the dialect reader.
pub fn open(path: &Path, reason: String) -> Result<Dialected> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let size = f.metadata()?.len();
    let mut source = Source::open_file(f).with_context(|| format!("reading {}", path.display()))?;
    let prefix = DialectPrefix::read_from(&mut source).with_context(|| format!("{} (as the 2Wire dialect)", path.display()))?;
    Ok(Dialected { prefix, source, size, reason })
}

fn confidence(r: &RecordType) -> Vec<&'static str> {
    r.confidence.iter().map(|c| c.label()).collect()
}

fn digest_json(algorithm: pkgfmt::dialect::DigestAlgorithm, value: &[u8]) -> Value {
    json!({ "hash_type": algorithm.code(), "hash_algorithm": algorithm.name(), "hash": hex::encode(value) })
}

fn merge(o: &mut Map<String, Value>, v: Value) {
    if let Value::Object(m) = v {
        o.extend(m);
    }
}

fn file_json(f: &DialectFile) -> Value {
    let mut o = Map::new();
    o.insert("write".into(), json!(f.mode.describe()));
    o.insert("form".into(), json!(if f.is_extended() { "extended" } else { "short" }));
    o.insert("flags".into(), json!(f.flags));
    o.insert("path".into(), json!(f.path));
    merge(&mut o, digest_json(f.digest.algorithm, &f.digest.value));
    o.insert("data_offset".into(), json!(f.data_offset));
    o.insert("data_size".into(), json!(f.data_size));
    o.insert("short_offset".into(), json!(f.short_offset));
    o.insert("short_size".into(), json!(f.short_size));
    if let Some(h) = f.header_length {
        o.insert("header_length".into(), json!(h));
    }
    if let Some(m) = f.mode_word {
        o.insert("mode_word".into(), json!(format!("{m:06o}")));
    }
    if let Some(m) = &f.metadata {
        o.insert("metadata".into(), metadata::metadata_json(m));
    }
    Value::Object(o)
}

fn script_json(s: &Script) -> Value {
    let mut v = json!({
        "name": s.name,
        "label": s.label,
        "phase": s.phase(),
        "flags": s.flags,
        "header_length": s.header_length,
        "payload_offset": s.payload_offset,
        "payload_size": s.payload_size,
    });
    merge(v.as_object_mut().expect("object"), digest_json(s.digest.algorithm, &s.digest.value));
    v
}

/// `inspect --json` and `manifest.json` form of a record.
pub fn record_json(r: &Record) -> Value {
    let t = r.record_type();
    let mut o = Map::new();
    o.insert("index".into(), json!(r.index));
    o.insert("offset".into(), json!(r.offset));
    o.insert("type".into(), json!(r.kind));
    o.insert("name".into(), json!(t.display_name()));
    o.insert("in_notes".into(), json!(t.in_notes()));
    o.insert("confidence".into(), json!(confidence(&t)));
    o.insert("meaning".into(), json!(t.meaning));
    o.insert("seen".into(), json!(t.seen));
    o.insert("length".into(), json!(r.value.len()));
    match &r.body {
        RecordBody::End => {}
        RecordBody::Text { text, utf8 } => {
            o.insert("text".into(), json!(text));
            o.insert("utf8".into(), json!(utf8));
        }
        RecordBody::InstallMethod(m) => {
            o.insert("install_method".into(), json!(m));
        }
        RecordBody::File(f) => {
            o.insert("file".into(), file_json(f));
        }
        RecordBody::Script(s) => {
            o.insert("script".into(), script_json(s));
        }
        RecordBody::AnnexE(c) => {
            o.insert("annex_e".into(), command_json(r.index, c));
        }
        RecordBody::Opaque => {
            o.insert("hex".into(), json!(hex::encode(&r.value)));
        }
        RecordBody::Malformed { offset, error } => {
            o.insert("hex".into(), json!(hex::encode(&r.value)));
            o.insert("error".into(), json!(format!("at value offset {offset}: {error}")));
        }
    }
    Value::Object(o)
}

fn file_detail(f: &DialectFile) -> String {
    let mut s = format!(
        "{}  {} bytes @ payload+{}  {} {}  {}, {} form",
        f.path,
        f.data_size,
        f.data_offset,
        f.digest.algorithm.name(),
        f.digest.to_hex(),
        f.mode.describe(),
        if f.is_extended() { "extended" } else { "short" }
    );
    if let Some(m) = f.mode_word {
        s += &format!("  mode {:04o} ({})", m & 0o7777, mode_string(m & 0o7777));
    }
    if let Some(m) = &f.metadata {
        if m.uid.is_some() || m.gid.is_some() {
            let id = |v: Option<u32>| v.map_or("-".to_string(), |v| v.to_string());
            s += &format!("  owner {}:{}", id(m.uid), id(m.gid));
        }
    }
    s
}

/// One-line description of a record's value.
pub fn record_detail(r: &Record) -> String {
    match &r.body {
        RecordBody::End => String::new(),
        RecordBody::Text { text, .. } => format!("{text:?}"),
        RecordBody::InstallMethod(m) => format!("install method {m:?}"),
        RecordBody::File(f) => file_detail(f),
        RecordBody::Script(s) => {
            format!("{:?}  {}  {} bytes @ payload+{}  {} {}", s.name, s.phase(), s.payload_size, s.payload_offset, s.digest.algorithm.name(), s.digest.to_hex())
        }
        RecordBody::AnnexE(c) => format!("as Annex E {}: {}", c.name(), command_detail(c)),
        RecordBody::Opaque => format!("{} bytes, layout unknown: {}", r.value.len(), preview_hex(&r.value, 24)),
        RecordBody::Malformed { error, .. } => format!("{} bytes, not read ({error}): {}", r.value.len(), preview_hex(&r.value, 24)),
    }
}

fn header_json(p: &DialectPrefix) -> Value {
    json!({
        "major": p.header.major,
        "minor": p.header.minor,
        "command_list_length_word": p.header.command_list_length,
        "command_list_length_derived": p.derived_command_list_length(),
        "command_list_length_relation": p.length_word().id(),
        "payload_length": p.header.payload_length,
    })
}

fn length_word_line(p: &DialectPrefix) -> String {
    let (word, derived) = (p.header.command_list_length, p.derived_command_list_length());
    let how = match p.length_word() {
        pkgfmt::dialect::LengthWord::Exact => "equal, as Annex E says".to_string(),
        pkgfmt::dialect::LengthWord::Sixteenfold => "the header's word is 16 x the derived length, as in the one published header [DERIVED]".to_string(),
        pkgfmt::dialect::LengthWord::Unexplained => "unexplained".to_string(),
    };
    format!(
        "header word {word} (0x{word:08x}) | derived {derived} (0x{derived:08x}), to the {} at {} and the SignedData there: {how}",
        if p.terminated { "type-0 terminator" } else { "last record" },
        p.command_list_end()
    )
}

/// The legend of the record types a package uses: name, confidence, meaning.
fn legend(p: &DialectPrefix) -> Vec<String> {
    let types: BTreeSet<u32> = p.records.iter().map(|r| r.kind).collect();
    types
        .into_iter()
        .map(|k| {
            let t = RecordType::of(k);
            let seen = t.seen.map_or_else(|| "not documented in a real file".to_string(), |s| format!("seen: {s}"));
            let conf = if t.confidence.is_empty() { String::new() } else { format!(" {}", Confidence::labels(t.confidence)) };
            format!("{k:>5} {}{conf}: {}; {seen}", t.display_name(), t.meaning)
        })
        .collect()
}

fn item_json(c: &ItemCheck) -> Value {
    let it = &c.item;
    let mut v = json!({
        "record": it.record,
        "kind": match it.kind { ItemKind::Script => "script".to_string(), ItemKind::File(m) => format!("file ({})", m.describe()) },
        "name": it.name,
        "offset": it.offset,
        "size": it.size,
        "hash_algorithm": it.digest.algorithm.name(),
        "expected": hex::encode(&it.digest.value),
        "nested": c.nested().map(|w| if w == Wrapper::Bzip2 { "bzip2" } else { "2wire" }),
    });
    let o = v.as_object_mut().expect("object");
    if let Some(h) = &c.computed {
        o.insert("computed".into(), json!(hex::encode(h)));
        o.insert("ok".into(), json!(c.ok()));
        o.insert("covers".into(), json!(c.matched.map(|m| m.id())));
    }
    if let Some(u) = c.uncertain {
        o.insert("uncertain".into(), json!(u));
    }
    if let Some(s) = c.decoded_size {
        o.insert("decoded_size".into(), json!(s));
    }
    if let Some(p) = &c.problem {
        o.insert("problem".into(), json!(p));
    }
    v
}

fn trailer_json(r: &PayloadReport) -> Value {
    json!({
        "bytes": r.trailing_bytes,
        "other_bytes": r.trailing_other,
        "certificates": r.trailing_certificates.iter().map(|c| json!({
            "offset": c.offset, "subject": c.subject, "issuer": c.issuer, "not_after": c.not_after, "error": c.error, "trusted": false,
        })).collect::<Vec<_>>(),
    })
}

fn trailer_lines(r: &PayloadReport) {
    for c in &r.trailing_certificates {
        match &c.error {
            None => println!("trailing certificate at {}: {} (issuer {}, until {}) — reported, not trusted", c.offset, c.subject, c.issuer, c.not_after),
            Some(e) => println!("trailing certificate at {}: unreadable: {e}", c.offset),
        }
    }
    if r.trailing_other > 0 {
        println!("WARNING: {} bytes after the payload region are not PEM certificates", r.trailing_other);
    }
}

fn wrapper_line(d: &Dialected) -> String {
    match d.prefix.wrapper {
        Wrapper::Bzip2 => format!("bzip2 ({} bytes on disk, decompressed as a stream; offsets below are in the decompressed package)", d.size),
        Wrapper::None => "none".into(),
    }
}

/// Where a nested package lies: for each level, its offset in the
/// (decompressed) package around it and its size.
type NestingPath = Vec<(u64, u64)>;

/// The package's findings as JSON, descending into nested packages when
/// `recursive`. `nesting` locates `d` inside the file at `path`.
fn inspect_json(path: &Path, d: &mut Dialected, recursive: bool, nesting: &NestingPath) -> Result<Value> {
    let report = PayloadPass::run(&d.prefix, &mut d.source, PassMode::Heads, |_| Ok(()), |_, _| {})?;
    let p = &d.prefix;
    let mut items: Vec<Value> = report.items.iter().map(item_json).collect();
    if recursive {
        for (c, v) in report.items.iter().zip(items.iter_mut()) {
            if c.nested().is_some() {
                let mut inner = nesting.clone();
                inner.push((p.payload_base() + c.item.offset, c.item.size));
                let nested = match nested_package(path, c, inner) {
                    Ok(n) => n,
                    Err(e) => json!({ "error": format!("{e:#}") }),
                };
                v.as_object_mut().expect("object").insert("package".into(), nested);
            }
        }
    }
    Ok(json!({
        "dialect": "2wire",
        "dialect_reason": d.reason,
        "evidence": p.evidence.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "wrapper": p.wrapper.id(),
        "file_size": d.size,
        "header": header_json(p),
        "command_list_end": p.command_list_end(),
        "terminated": p.terminated,
        "signature_offset": p.command_list_end(),
        "signature_block_length": p.signature_len(),
        "payload_offset": p.payload_base(),
        "records": p.records.iter().map(record_json).collect::<Vec<_>>(),
        "signatures": p.signatures.signers().iter().map(signer_json).collect::<Vec<_>>(),
        "payload": { "length": report.payload_length, "present": report.region_present, "items": items },
        "trailer": trailer_json(&report),
        "warnings": p.warnings(),
    }))
}

/// Inspect the package in item `c`'s data, found by following `nesting`
/// from the file at `path` (each level unwrapped, skipped to and bounded
/// as a stream; a plain outermost file is sought).
fn nested_package(path: &Path, c: &ItemCheck, nesting: NestingPath) -> Result<Value> {
    if nesting.len() > MAX_NESTING {
        anyhow::bail!("nested more than {MAX_NESTING} levels deep; not descended");
    }
    if c.item.is_sparse() {
        anyhow::bail!("type-47 data is not descended into");
    }
    // The outermost package: sought in a plain file, decompressed otherwise.
    let mut root = Source::open_file(File::open(path)?)?;
    let (at, size) = nesting[0];
    if root.skip(at).map_err(|e| root.error(e))? != at {
        anyhow::bail!("the package ends before the nested one at {at}");
    }
    let mut outer: Box<dyn Read> = Box::new(root.take(size));
    for &(at, size) in &nesting[1..] {
        let mut s = Source::from_reader(outer)?;
        if s.skip(at).map_err(|e| s.error(e))? != at {
            anyhow::bail!("the package ends before the nested one at {at}");
        }
        outer = Box::new(s.take(size));
    }
    let mut source = Source::from_reader(outer)?;
    let prefix = DialectPrefix::read_from(&mut source)?;
    let reason = format!("nested in record #{} ({}), {} level(s) deep", c.item.record, c.item.name, nesting.len());
    let mut d = Dialected { prefix, source, size: c.item.size, reason };
    inspect_json(path, &mut d, true, &nesting)
}

pub fn inspect(a: &InspectArgs, mut d: Dialected) -> Result<u8> {
    let v = inspect_json(&a.package, &mut d, a.recursive, &Vec::new())?;
    if a.output.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(crate::exit::SUCCESS);
    }
    let p = &d.prefix;
    println!("package:        {}", a.package.display());
    println!("dialect:        2wire ({})", d.reason);
    println!("wrapper:        {}", wrapper_line(&d));
    println!("format version: {}.{}", p.header.major, p.header.minor);
    println!("command list:   {}", length_word_line(p));
    println!("records:        {}", p.records.len());
    println!("signatures:     {} bytes at {}, {} signer(s)", p.signature_len(), p.command_list_end(), p.signatures.signers().len());
    println!("payload:        header word {} bytes, region at {}", p.header.payload_length, p.payload_base());
    println!();
    println!("{:>4}  {:>8}  {:>5}  {:<14} {:<22}  DETAILS", "#", "OFFSET", "TYPE", "NAME", "CONFIDENCE");
    for r in &p.records {
        let t = r.record_type();
        let conf = if t.in_notes() { Confidence::labels(t.confidence) } else { "(not in the notes)".into() };
        println!("{:>4}  {:>8}  {:>5}  {:<14} {:<22}  {}", r.index, format!("0x{:x}", r.offset), r.kind, t.display_name(), conf, record_detail(r));
    }
    println!();
    println!("record types (as the notes name them):");
    for l in legend(p) {
        println!("  {l}");
    }
    println!();
    for w in p.warnings() {
        println!("WARNING: {w}");
    }
    for (i, s) in p.signatures.signers().iter().enumerate() {
        println!("signer #{i}: {}", s.subject);
        println!("    issuer {}  serial {}", s.issuer, s.serial);
        let bits = s.key_bits.map_or("unknown key".into(), |b| format!("{b}-bit RSA key"));
        let cert_alg = s.certificate_signature_algorithm.as_deref().unwrap_or("?");
        println!(
            "    {} / {}, {}; {bits}, certificate {cert_alg}, until {}",
            s.digest_algorithm,
            s.signature_algorithm,
            if s.signed_attributes { "signed attributes" } else { "no signed attributes" },
            s.not_after.as_deref().unwrap_or("?")
        );
    }
    for it in v["payload"]["items"].as_array().into_iter().flatten() {
        if let Some(kind) = it["nested"].as_str() {
            let what = if kind == "2wire" { "a nested package" } else { "bzip2 data (a wrapped package?)" };
            println!("record #{}: {} holds {what}{}", it["record"], it["name"].as_str().unwrap_or(""), if a.recursive { "" } else { "; --recursive descends" });
            if let Some(n) = it.get("package") {
                println!("{}", serde_json::to_string_pretty(n)?.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n"));
            }
        }
    }
    let t = &v["trailer"];
    for c in t["certificates"].as_array().into_iter().flatten() {
        println!(
            "trailing certificate at {}: {} (issuer {}, until {}) — reported, not trusted",
            c["offset"],
            c["subject"].as_str().unwrap_or(""),
            c["issuer"].as_str().unwrap_or(""),
            c["not_after"].as_str().unwrap_or("")
        );
    }
    Ok(crate::exit::SUCCESS)
}

/// Annotated fields of a dialect package.
pub fn dump(a: &DumpArgs, d: Dialected) -> Result<u8> {
    let p = &d.prefix;
    let raw = p.signed_message();
    let f = super::dump::Dumper { width: 47 };
    println!("# {} ({} bytes; dialect 2wire: {})", a.package.display(), d.size, d.reason);
    if p.wrapper == Wrapper::Bzip2 {
        println!("# bzip2 wrapper: offsets are in the decompressed package");
    }
    println!("## header (notes §3: magic, then four big-endian words)");
    f.field(0, &raw[..8], "Preamble \"2WIRE_SP\"");
    f.u32(8, &raw[8..], "Major version");
    f.u32(12, &raw[12..], "Minor version");
    f.u32(16, &raw[16..], &format!("Command list length word (derived length {}: {})", p.derived_command_list_length(), p.length_word().id()));
    f.u32(20, &raw[20..], "Payload length");
    println!("## command list (notes §5, §6)");
    for r in &p.records {
        let t = r.record_type();
        let at = r.offset;
        let i = r.index;
        f.u32(at, &raw[at as usize..], &format!("[{i}] Type ({} {})", t.display_name(), Confidence::labels(t.confidence)));
        f.u32(at + 4, &raw[at as usize + 4..], &format!("[{i}] Length"));
        dump_value(&f, at + 8, r);
    }
    println!("## signature block (notes §7: detached PKCS#7 over [0, {}))", p.command_list_end());
    let sig = p.signatures.to_der();
    f.field(p.command_list_end(), &sig, &format!("ContentInfo, {} bytes", sig.len()));
    for (i, s) in p.signatures.signers().iter().enumerate() {
        println!("          signer #{i}: {} (issuer {}, serial {})", s.subject, s.issuer, s.serial);
    }
    println!("## payload region (notes §8)");
    let base = p.payload_base();
    println!("{:08x}  {} bytes (header word)", base, p.header.payload_length);
    for it in p.items() {
        println!("{:08x}  [{}] {} bytes  {}  {} {}", base + it.offset, it.record, it.size, it.name, it.digest.algorithm.name(), it.digest.to_hex());
    }
    Ok(crate::exit::SUCCESS)
}

fn dump_value(f: &super::dump::Dumper, at: u64, r: &Record) {
    let v = &r.value;
    let i = r.index;
    let word = |k: usize| u32::from_be_bytes(v[k..k + 4].try_into().expect("4 bytes"));
    let var = |off: u32, len: u32, name: &str| {
        let s = &v[off as usize..(off + len) as usize];
        f.field(at + off as u64, s, &format!("[{i}] {name} {:?}", String::from_utf8_lossy(s)));
    };
    match &r.body {
        RecordBody::End => {}
        RecordBody::Text { .. } | RecordBody::InstallMethod(_) => var(0, v.len() as u32, "Text"),
        RecordBody::File(file) => {
            let names = ["Flags", "Path Offset", "Path Length", "Hash Type", "Hash Offset", "Hash Length", "File Offset (32-bit)", "File Length (32-bit)"];
            for (k, n) in names.iter().enumerate() {
                f.u32(at + 4 * k as u64, &v[4 * k..], &format!("[{i}] {n}"));
            }
            if file.is_extended() {
                f.u32(at + 32, &v[32..], &format!("[{i}] Header Length (extended form)"));
                f.u64(at + 36, &v[36..], &format!("[{i}] File Offset (64-bit)"));
                f.u64(at + 44, &v[44..], &format!("[{i}] File Length (64-bit)"));
                f.attributes(at + 52, &v[52..100], i);
            }
            var(word(4), word(8), "Path");
            f.field(at + word(16) as u64, &v[word(16) as usize..(word(16) + word(20)) as usize], &format!("[{i}] Hash ({})", file.digest.algorithm.name()));
        }
        RecordBody::Script(s) => {
            let names = ["Header Length", "Flags", "Name Offset", "Name Length", "Label Offset", "Label Length", "Hash Type", "Digest Offset", "Digest Length"];
            for (k, n) in names.iter().enumerate() {
                f.u32(at + 4 * k as u64, &v[4 * k..], &format!("[{i}] {n}"));
            }
            f.u64(at + 36, &v[36..], &format!("[{i}] Payload Offset (64-bit)"));
            f.u64(at + 44, &v[44..], &format!("[{i}] Payload Size (64-bit)"));
            var(word(8), word(12), "Name");
            var(word(16), word(20), "Phase label");
            f.field(at + word(28) as u64, &v[word(28) as usize..(word(28) + word(32)) as usize], &format!("[{i}] Digest ({})", s.digest.algorithm.name()));
        }
        RecordBody::AnnexE(c) => f.field(at, v, &format!("[{i}] Value, read as Annex E {} ({})", c.name(), command_detail(c))),
        RecordBody::Opaque => {
            let t = r.record_type();
            let what = if t.layout == Layout::Opaque && t.in_notes() { "layout unknown (notes §6)" } else { "not described by the notes" };
            f.field(at, v, &format!("[{i}] Value ({} bytes, {what})", v.len()))
        }
        RecordBody::Malformed { error, .. } => f.field(at, v, &format!("[{i}] Value ({} bytes, not read: {error})", v.len())),
    }
}

fn verdict(ok: bool, trusted: bool) -> &'static str {
    if ok {
        "OK (trusted, every digest matches)"
    } else if !trusted {
        "NOT TRUSTED"
    } else {
        "PAYLOAD CORRUPT"
    }
}

/// What about a signer's certificate is weak, for the report.
fn weaknesses(s: &pkgfmt::signature::SignerSummary) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(b) = s.key_bits.filter(|b| *b < 2048) {
        w.push(format!("{b}-bit RSA key"));
    }
    if let Some(a) = s.certificate_signature_algorithm.as_deref().filter(|a| a.starts_with("md5") || a.starts_with("sha1")) {
        w.push(format!("certificate signed with {a}"));
    }
    w
}

pub fn verify(a: &VerifyArgs, anchors: &[x509_cert::Certificate], mut d: Dialected) -> Result<u8> {
    let opts = a.checks.verify_options();
    let report = d.prefix.verify_signatures(anchors, &opts);
    let total = d.prefix.header.payload_length as u64;
    let bar = bytes_bar(total, "verifying");
    let payload = PayloadPass::run(&d.prefix, &mut d.source, PassMode::Full, |_| Ok(()), |done, _| bar.set_position(done));
    bar.finish_and_clear();
    let payload = payload.with_context(|| format!("{}", a.package.display()))?;
    let trusted = report.is_trusted();
    let ok = trusted && payload.all_ok();
    if a.output.json {
        let signers: Vec<Value> = report
            .signers
            .iter()
            .map(|s| {
                let mut v = signer_json(&s.summary);
                let o = v.as_object_mut().expect("object");
                o.insert("index".into(), json!(s.index));
                o.insert("weaknesses".into(), json!(weaknesses(&s.summary)));
                match &s.result {
                    Ok(chain) => {
                        o.insert("valid".into(), json!(true));
                        o.insert("trusted".into(), json!(true));
                        o.insert("reason".into(), json!(format!("chains to the trust anchor {}", chain.subjects.last().cloned().unwrap_or_default())));
                        o.insert("chain".into(), json!(chain.subjects));
                    }
                    Err(e) => {
                        o.insert("valid".into(), json!(false));
                        o.insert("trusted".into(), json!(false));
                        o.insert("reason".into(), json!(e.to_string()));
                        o.insert("error".into(), json!(e.to_string()));
                    }
                }
                v
            })
            .collect();
        let out = json!({
            "ok": ok,
            "dialect": "2wire",
            "dialect_reason": d.reason,
            "wrapper": d.prefix.wrapper.id(),
            "trusted": trusted,
            "trust_policy": "at least one signer validates and chains to a --trust anchor (E.5; the gateway: any one trusted signer)",
            "signers": signers,
            "payload_ok": payload.all_ok(),
            "payload": { "length": payload.payload_length, "present": payload.region_present },
            "items": payload.items.iter().map(item_json).collect::<Vec<_>>(),
            "trailer": trailer_json(&payload),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("dialect: 2wire ({})", d.reason);
        if report.signers.is_empty() {
            println!("signatures: none (package is unsigned)");
        }
        for s in &report.signers {
            let weak = weaknesses(&s.summary);
            let weak = if weak.is_empty() { String::new() } else { format!(" [{}]", weak.join(", ")) };
            match &s.result {
                Ok(chain) => println!("signer #{}: TRUSTED   {} (chain: {}){weak}", s.index, s.summary.subject, chain.subjects.join(" <- ")),
                Err(e) => println!("signer #{}: UNTRUSTED {}: {e}{weak}", s.index, s.summary.subject),
            }
        }
        for c in &payload.items {
            let t = RecordType::of(d.prefix.records[c.item.record].kind);
            let what = format!("record #{} {} {}", c.item.record, t.display_name(), c.item.name);
            match (&c.problem, c.matched) {
                (Some(p), _) => println!("{what}: FAILED: {p}"),
                (None, Some(m)) => println!(
                    "{what}: {} matches ({}){}",
                    c.item.digest.algorithm.name(),
                    m.id(),
                    if c.uncertain.is_some() { " — what a type-47 digest covers is uncertain" } else { "" }
                ),
                (None, None) => println!(
                    "{what}: {} MISMATCH: expected {}, stored bytes give {}",
                    c.item.digest.algorithm.name(),
                    hex::encode(&c.item.digest.value),
                    c.computed.as_ref().map(hex::encode).unwrap_or_default()
                ),
            }
        }
        if payload.region_present < payload.payload_length {
            println!("payload: TRUNCATED: {} of {} bytes present", payload.region_present, payload.payload_length);
        }
        trailer_lines(&payload);
        println!("{}: {}", a.package.display(), verdict(ok, trusted));
    }
    Ok(if ok { crate::exit::SUCCESS } else { crate::exit::status(foundation::ErrorKind::VerifyFailed) })
}

/// A file name for a SCRIPT body: `NN-name`, the name's unsafe characters replaced.
fn script_file_name(n: usize, name: &str) -> String {
    let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    let clean = clean.trim_start_matches('.');
    format!("{n:02}-{}", if clean.is_empty() { "script" } else { clean })
}

/// Where each item goes, once its parents exist.
enum Target {
    Write { path: PathBuf, rel: String, create_only: bool },
    Refused(String),
}

pub fn extract(a: &ExtractArgs, mut d: Dialected) -> Result<u8> {
    foundation::interrupt::install_handlers();
    fs::create_dir_all(&a.output).with_context(|| format!("creating {}", a.output.display()))?;
    let root = a.output.canonicalize()?;
    let out = Dir::open(&root)?;
    let shown = root.display().to_string();
    let items = d.prefix.items();
    let mut scripts = 0;
    let targets: Vec<Target> = items
        .iter()
        .map(|it| {
            let rel = match it.kind {
                ItemKind::Script => {
                    scripts += 1;
                    format!("_scripts/{}", script_file_name(scripts - 1, &it.name))
                }
                ItemKind::File(_) => it.name.clone(),
            };
            let placed = super::extract::confine(&root, &rel).and_then(|p| super::extract::make_parents(&root, &p).map(|()| p));
            match placed {
                Ok(path) => Target::Write {
                    path,
                    rel: rel.trim_start_matches('/').to_string(),
                    create_only: it.kind == ItemKind::File(pkgfmt::dialect::FileMode::CreateIfAbsent),
                },
                Err(e) => Target::Refused(format!("{e:#}")),
            }
        })
        .collect();
    let by_record: std::collections::HashMap<usize, usize> = items.iter().enumerate().map(|(k, it)| (it.record, k)).collect();
    let mut open: Vec<Option<AtomicFileAt>> = items.iter().map(|_| None).collect();
    let mut outcome: Vec<Option<String>> = vec![None; items.len()];
    let mut written = 0usize;
    let metadata: Vec<Option<pkgfmt::FileMetadata>> = items.iter().map(|it| d.prefix.records[it.record].file().and_then(|f| f.metadata)).collect();
    let total = d.prefix.header.payload_length as u64;
    let bar = bytes_bar(total, "extracting");
    let report = PayloadPass::run(
        &d.prefix,
        &mut d.source,
        PassMode::Full,
        |w| {
            let k = match &w {
                Write::Data { record, .. } | Write::End { record, .. } => by_record[record],
            };
            let Target::Write { path, create_only, .. } = &targets[k] else { return Ok(()) };
            if open[k].is_none() && outcome[k].is_none() {
                // Through a walk from the output's descriptor: a link planted
                // on the way is refused, never followed.
                let (parent, name) = beneath::split(path.strip_prefix(&root).expect("confined"));
                let dir = out.walk(parent, &shown).map_err(std::io::Error::from)?;
                let existing = dir.stat(name)?;
                if existing.is_some_and(|m| m.st_mode & 0o170000 == 0o040000) {
                    outcome[k] = Some(format!("not written: {} is a directory", path.display()));
                } else if *create_only && existing.is_some() {
                    outcome[k] = Some("not written: the path exists (type 3 writes only if absent)".into());
                } else {
                    open[k] = Some(AtomicFileAt::create(dir, Some(&root.join(parent)), name)?);
                }
            }
            let Some(file) = open[k].as_mut() else { return Ok(()) };
            match w {
                Write::Data { offset, bytes, .. } => file.file().write_all_at(bytes, offset),
                Write::End { size, check, .. } => {
                    let mut file = open[k].take().expect("open");
                    if !check.ok() {
                        outcome[k] = Some(format!("not written: {}", check.problem.clone().unwrap_or_else(|| "digest mismatch".into())));
                        return Ok(());
                    }
                    file.file().set_len(size)?;
                    let attrs = resolve(metadata[k].as_ref(), None, DEFAULT_FILE_MODE);
                    file.set_attributes(&attrs)?;
                    file.commit()?;
                    outcome[k] = Some("written".into());
                    written += 1;
                    Ok(())
                }
            }
        },
        |done, _| bar.set_position(done),
    );
    bar.finish_and_clear();
    let report = report.with_context(|| format!("extracting {}", a.package.display()))?;

    // manifest.json: every record, and what became of each item.
    let mut records: Vec<Value> = d.prefix.records.iter().map(record_json).collect();
    for ((it, c), (t, o)) in items.iter().zip(&report.items).zip(targets.iter().zip(&outcome)) {
        let r = records[it.record].as_object_mut().expect("object");
        let mut check = item_json(c);
        let co = check.as_object_mut().expect("object");
        match t {
            Target::Write { rel, .. } => {
                co.insert("output".into(), json!(rel));
                let result = o.clone().or_else(|| c.problem.as_ref().map(|p| format!("not written: {p}")));
                co.insert("result".into(), json!(result.unwrap_or_else(|| "not written".into())));
            }
            Target::Refused(why) => {
                co.insert("result".into(), json!(format!("not written: {why}")));
            }
        }
        r.insert("payload".into(), check);
    }
    let manifest = json!({
        "package": a.package.file_name().map(|n| n.to_string_lossy().into_owned()),
        "dialect": "2wire",
        "wrapper": d.prefix.wrapper.id(),
        "header": header_json(&d.prefix),
        "payload_offset": d.prefix.payload_base(),
        "records": records,
        "signatures": d.prefix.signatures.signers().iter().map(signer_json).collect::<Vec<_>>(),
        "trailer": trailer_json(&report),
    });
    let out = root.join("manifest.json");
    foundation::durable::write_atomic(&out, format!("{}\n", serde_json::to_string_pretty(&manifest)?).as_bytes())
        .with_context(|| format!("writing {}", out.display()))?;
    let mut failed = 0;
    for ((it, t), o) in items.iter().zip(&targets).zip(&outcome) {
        match (t, o.as_deref()) {
            (Target::Write { path, .. }, Some("written")) => println!("{}", path.display()),
            (Target::Write { create_only: true, .. }, Some(o)) if o.contains("exists") => eprintln!("record #{} ({}): {o}", it.record, it.name),
            (Target::Refused(why), _) => {
                failed += 1;
                eprintln!("record #{} ({}): not written: {why}", it.record, it.name);
            }
            (_, o) => {
                failed += 1;
                let c = &report.items[by_record[&it.record]];
                let why = o.map(str::to_string).or_else(|| c.problem.clone()).unwrap_or_else(|| "not written".into());
                eprintln!("record #{} ({}): {why}", it.record, it.name);
            }
        }
    }
    eprintln!("extracted {written} file(s) and script(s) and manifest.json into {} (2Wire dialect: {})", a.output.display(), d.reason);
    if failed > 0 || !report.all_ok() {
        eprintln!("{failed} item(s) not written");
        return Ok(crate::exit::status(foundation::ErrorKind::VerifyFailed));
    }
    Ok(crate::exit::SUCCESS)
}
