//! `cpekit package dump`: every field with its absolute offset and hex.
//! The prefix has already been validated by the strict parser, so the
//! walk over the raw bytes below cannot go out of bounds.

use anyhow::Result;
use pkgfmt::command::metadata::UNCHANGED;
use pkgfmt::command::{CommandType as T, VendorCommandType as V};
use pkgfmt::Command;

use crate::cli::DumpArgs;

pub(super) struct Dumper {
    pub width: usize,
}

impl Dumper {
    /// Print `bytes` found at absolute `offset`, 16 per row, label on row one.
    pub(super) fn field(&self, offset: u64, bytes: &[u8], label: &str) {
        if bytes.is_empty() {
            println!("{:08x}  {:<w$}  {label}", offset, "(empty)", w = self.width);
            return;
        }
        for (i, row) in bytes.chunks(16).enumerate() {
            let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
            let l = if i == 0 { label } else { "" };
            println!("{:08x}  {:<w$}  {l}", offset + (i * 16) as u64, hex.join(" "), w = self.width);
        }
    }

    pub(super) fn u32(&self, offset: u64, b: &[u8], name: &str) -> u32 {
        let v = u32::from_be_bytes(b[..4].try_into().expect("4 bytes"));
        self.field(offset, &b[..4], &format!("{name} = {v}"));
        v
    }

    pub(super) fn u64(&self, offset: u64, b: &[u8], name: &str) {
        let v = u64::from_be_bytes(b[..8].try_into().expect("8 bytes"));
        self.field(offset, &b[..8], &format!("{name} = {v}"));
    }

    /// The 48 octets of mode, uid, gid and three timestamps.
    pub(super) fn attributes(&self, at: u64, b: &[u8], i: usize) {
        let word = |k: usize| u32::from_be_bytes(b[k..k + 4].try_into().expect("4 bytes"));
        let id = |v: u32| if v == UNCHANGED { "0xFFFFFFFF (leave unchanged)".to_string() } else { v.to_string() };
        let mode = word(0);
        let m = if mode == UNCHANGED { id(mode) } else { format!("0o{mode:06o}") };
        self.field(at, &b[..4], &format!("[{i}] Mode = {m}"));
        self.field(at + 4, &b[4..8], &format!("[{i}] Uid = {}", id(word(4))));
        self.field(at + 8, &b[8..12], &format!("[{i}] Gid = {}", id(word(8))));
        for (k, name) in ["Access time", "Modification time", "Status-change time"].iter().enumerate() {
            let o = 12 + 12 * k;
            let nanos = word(o + 8);
            let secs = u64::from_be_bytes(b[o..o + 8].try_into().expect("8 bytes"));
            let t = if nanos == UNCHANGED { "none".to_string() } else { format!("{secs}.{nanos:09}") };
            self.field(at + o as u64, &b[o..o + 12], &format!("[{i}] {name} = {t}"));
        }
    }
}

const FILE_FIELDS: [&str; 8] = ["Flags", "Path Offset", "Path Length", "Hash Type", "Hash Offset", "Hash Length", "File Offset", "File Length"];
const REMOVE_FIELDS: [&str; 3] = ["Flags", "Path Offset", "Path Length"];
const MOVE_FIELDS: [&str; 5] = ["Flags", "Source Path Offset", "Source Path Length", "Destination Path Offset", "Destination Path Length"];

pub fn run(a: DumpArgs) -> Result<u8> {
    let (prefix, size) = match super::open_package(&a.package, a.dialect.dialect)? {
        super::Opened::AnnexE { prefix, size, .. } => (prefix, size),
        super::Opened::TwoWire(d) => return super::dialect::dump(&a, d),
    };
    let d = Dumper { width: 47 };
    let raw = prefix.signed_message();
    println!("# {} ({size} bytes)", a.package.display());
    println!("## header (E.3, Table 66)");
    d.field(0, &raw[..8], "Preamble \"2WIRE_SP\"");
    d.u32(8, &raw[8..], "Major version");
    d.u32(12, &raw[12..], "Minor version");
    d.u32(16, &raw[16..], "Command list length");
    d.u32(20, &raw[20..], "Payload length");

    println!("## command list (E.4)");
    let mut pos = 24usize;
    for (i, c) in prefix.commands.commands.iter().enumerate() {
        let kind = d.u32(pos as u64, &raw[pos..], &format!("[{i}] Type ({})", c.name()));
        let len = d.u32(pos as u64 + 4, &raw[pos + 4..], &format!("[{i}] Length")) as usize;
        let vstart = pos + 8;
        let value = &raw[vstart..vstart + len];
        dump_value(&d, vstart as u64, kind, value, i, c);
        pos = vstart + len;
    }
    if !prefix.commands.trailer.is_empty() {
        d.field(pos as u64, &prefix.commands.trailer, "bytes after End (not interpreted, E.4.2)");
    }

    println!("## signature block (E.5, PKCS#7 SignedData, DER)");
    let sig = prefix.signatures.to_der();
    let sig_off = raw.len() as u64;
    d.field(sig_off, &sig, &format!("ContentInfo, {} bytes", sig.len()));
    for (i, s) in prefix.signatures.signers().iter().enumerate() {
        println!("          signer #{i}: {} (issuer {}, serial {})", s.subject, s.issuer, s.serial);
    }

    println!("## payload (E.2)");
    let base = prefix.payload_offset();
    println!("{:08x}  {} bytes", base, prefix.header.payload_length);
    for (i, f) in prefix.commands.files() {
        println!("{:08x}  [{i}] {} bytes  {}  sha1 {}", base + f.file_offset as u64, f.file_length, f.path, hex::encode(f.sha1));
    }
    Ok(crate::exit::SUCCESS)
}

fn dump_value(d: &Dumper, at: u64, kind: u32, value: &[u8], i: usize, c: &Command) {
    let words =
        |names: &[&str]| -> Vec<u32> { names.iter().enumerate().map(|(k, n)| d.u32(at + 4 * k as u64, &value[4 * k..], &format!("[{i}] {n}"))).collect() };
    let var = |off: u32, len: u32, name: &str| {
        let s = &value[off as usize..(off + len) as usize];
        d.field(at + off as u64, s, &format!("[{i}] {name} {:?}", String::from_utf8_lossy(s)));
    };
    match T::from_u32(kind) {
        Some(T::ExtractFile | T::ExtractVersionedFile | T::AddFile | T::AddVersionedFile) => {
            let w = words(&FILE_FIELDS);
            // The parser decided the form (the gateway's rule); dump what it read.
            if c.file().is_some_and(|f| f.metadata.is_some()) {
                d.u32(at + 32, &value[32..], &format!("[{i}] Header Length (extended file record)"));
                d.u64(at + 36, &value[36..], &format!("[{i}] File Offset (64-bit)"));
                d.u64(at + 44, &value[44..], &format!("[{i}] File Length (64-bit)"));
                d.attributes(at + 52, &value[52..100], i);
            }
            var(w[1], w[2], "Path");
            d.field(at + w[4] as u64, &value[w[4] as usize..(w[4] + w[5]) as usize], &format!("[{i}] Hash (SHA-1)"));
        }
        Some(T::RemoveFile | T::RemoveVersionedFile | T::RemoveSubTree) => {
            let w = words(&REMOVE_FIELDS);
            var(w[1], w[2], "Path");
        }
        Some(T::MoveFile | T::MoveVersionedFile) => {
            let w = words(&MOVE_FIELDS);
            var(w[1], w[2], "Source Path");
            var(w[3], w[4], "Destination Path");
        }
        Some(T::Version | T::Description) => var(0, value.len() as u32, "Text"),
        Some(T::RecoverableTimeout | T::UnrecoverableTimeout | T::InitialTimeout | T::InitialActivityTimeout) => {
            words(&["Timeout (s)"]);
        }
        Some(T::MinimumNonVolatileStorage | T::MinimumVolatileStorage) => {
            words(&["Storage Size"]);
        }
        Some(T::MinimumVersion | T::MaximumVersion) => {
            let names: Vec<String> = (0..value.len() / 4).map(|k| format!("Version[{k}]")).collect();
            words(&names.iter().map(String::as_str).collect::<Vec<_>>());
        }
        Some(T::Role) => {
            words(&["Role"]);
            if value.len() > 4 {
                d.field(at + 4, &value[4..], &format!("[{i}] vendor role arguments"));
            }
        }
        Some(T::RequiredAttributes) => {
            let mut names = vec!["Defining Entity".to_string(), "Class".to_string()];
            names.extend((0..value.len() / 4 - 2).map(|k| format!("Attribute[{k}]")));
            words(&names.iter().map(String::as_str).collect::<Vec<_>>());
        }
        Some(T::End | T::Reboot | T::FormatFileSystem) => {}
        None => match c {
            Command::FilesystemEntry(_) => {
                d.field(at, &value[..16], &format!("[{i}] Identifier {:?}", String::from_utf8_lossy(V::FilesystemEntry.identifier())));
                let names = ["Flags", "Entry Type (1 directory, 2 symlink)", "Path Offset", "Path Length", "Target Offset", "Target Length"];
                let w: Vec<u32> = names.iter().enumerate().map(|(k, n)| d.u32(at + 16 + 4 * k as u64, &value[16 + 4 * k..], &format!("[{i}] {n}"))).collect();
                d.attributes(at + 40, &value[40..88], i);
                var(w[2], w[3], "Path");
                var(w[4], w[5], "Target");
            }
            _ => d.field(at, value, &format!("[{i}] Value ({} bytes, not interpreted)", value.len())),
        },
    }
}
