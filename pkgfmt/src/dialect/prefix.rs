//! Header, command list and signature block of a dialect package: what the
//! signatures cover (2wire-pkgstream-notes §3–§5, §7), read from a
//! [`Source`] with every size bounded before it is read.
//!
//! ```text
//! [0x00..0x18)   header (24 bytes)
//! [0x18..P)      command list: records up to and including a type-0 one
//! [P..P+S)       DER PKCS#7 SignedData (detached; over [0, P))
//! [P+S..)        payload region, then (older drops) PEM certificates
//! ```
//!
//! The header's command list length word does not give `P` (in the one
//! published header it is 16 × `P − 24`, §3 `[DERIVED]`, one sample), so
//! `P` is found the way the device and the source's parser find it: by
//! walking records to the type-0 terminator, after which the SignedData
//! starts at once. A list without a terminator ends where a SignedData
//! starts (the source's heuristic, §5).

use std::fmt;

use super::catalogue::RecordType;
use super::digest::DigestAlgorithm;
use super::limits::{MAX_COMMAND_LIST_LEN, MAX_RECORDS, MAX_RECORD_LEN, MAX_SIGNATURE_LEN};
use super::record::{Record, RecordBody};
use super::wrapper::{Source, Wrapper};
use crate::codec::Reader;
use crate::command::Tlv;
use crate::error::{Error, ParseError, ParseErrorKind};
use crate::header::{RawHeader, HEADER_LEN};
use crate::package::der_tlv_len;
use crate::signature::{SignatureBlock, VerifyOptions, VerifyReport};

/// What in a package says it is of the dialect rather than a malformed
/// Annex E package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Evidence {
    /// Wrapped whole in bzip2 (§2); Annex E has no wrapper.
    Bzip2Wrapper,
    /// The header's command list length word is not the list's length (§3).
    LengthWord { header: u32, derived: u64 },
    /// Record types Annex E does not define and the notes list (§6).
    RecordTypes(Vec<u32>),
    /// FILE records with the dialect's MD5 or SHA-256 digests (§6.1).
    DigestAlgorithms(Vec<&'static str>),
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Evidence::Bzip2Wrapper => write!(f, "bzip2 wrapper"),
            Evidence::LengthWord { header, derived } => {
                write!(f, "header command-list length word {header} for a {derived}-byte list")?;
                if *header as u64 == derived * 16 {
                    write!(f, " (16x, as in the published header)")?;
                }
                Ok(())
            }
            Evidence::RecordTypes(t) => write!(f, "record types {}", t.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")),
            Evidence::DigestAlgorithms(a) => write!(f, "{} file digests", a.join("/")),
        }
    }
}

/// How the header's command list length word relates to the derived length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LengthWord {
    /// It is the length, as Annex E says.
    Exact,
    /// It is 16 × the length (the published header, §3 `[DERIVED]`).
    Sixteenfold,
    /// Neither.
    Unexplained,
}

impl LengthWord {
    pub fn id(self) -> &'static str {
        match self {
            LengthWord::Exact => "exact",
            LengthWord::Sixteenfold => "16x",
            LengthWord::Unexplained => "unexplained",
        }
    }
}

/// The start of a SignedData ContentInfo: SEQUENCE, then the signedData
/// OID (1.2.840.113549.1.7.2) after the length octets.
const SIGNED_DATA_OID: [u8; 11] = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];

fn starts_signed_data(b: &[u8]) -> bool {
    let Some(&[0x30, l]) = b.get(..2) else { return false };
    let oid_at = if l & 0x80 == 0 { 2 } else { 2 + (l & 0x7f) as usize };
    (l & 0x80 == 0 || (1..=4).contains(&(l & 0x7f))) && b.get(oid_at..oid_at + SIGNED_DATA_OID.len()) == Some(&SIGNED_DATA_OID[..])
}

/// Header, records and signature block of a dialect package.
#[derive(Debug, Clone)]
pub struct DialectPrefix {
    pub wrapper: Wrapper,
    pub header: RawHeader,
    pub records: Vec<Record>,
    /// The list ended with a type-0 record (else where the SignedData starts).
    pub terminated: bool,
    pub signatures: SignatureBlock,
    /// `[0, P)`: header and command list as read, the signed message.
    signed: Vec<u8>,
    signature_len: u64,
    pub evidence: Vec<Evidence>,
}

/// The buffered start of the package.
struct Window<'s, 'a> {
    source: &'s mut Source<'a>,
    buf: Vec<u8>,
}

impl Window<'_, '_> {
    /// Make at least `n` octets available; false if the package is shorter.
    fn fill(&mut self, n: usize) -> Result<bool, Error> {
        if self.buf.len() < n {
            let have = self.buf.len();
            self.buf.resize(n, 0);
            let got = self.source.read_up_to(&mut self.buf[have..]).map_err(|e| self.source.error(e))?;
            self.buf.truncate(have + got);
        }
        Ok(self.buf.len() >= n)
    }

    fn truncated(&self, what: &'static str, needed: usize, from: usize) -> Error {
        let available = self.buf.len().saturating_sub(from) as u64;
        ParseError::at(self.buf.len() as u64, ParseErrorKind::Truncated { what, needed: needed as u64, available }).into()
    }
}

impl DialectPrefix {
    /// Read the prefix from the start of `source`, which is left at the
    /// first payload byte. Fails with a typed error, never allocating more
    /// than the [`limits`](super::limits) allow.
    pub fn read_from(source: &mut Source<'_>) -> Result<DialectPrefix, Error> {
        let wrapper = source.wrapper();
        let mut w = Window { source, buf: Vec::with_capacity(4096) };
        w.fill(HEADER_LEN)?;
        // A short or foreign file says what it starts with.
        let header = RawHeader::parse(&w.buf)?;
        let mut records = Vec::new();
        let mut pos = HEADER_LEN;
        let mut terminated = false;
        loop {
            if records.len() >= MAX_RECORDS {
                return Err(ParseError::at(pos as u64, ParseErrorKind::TooManyRecords { limit: MAX_RECORDS }).into());
            }
            if !w.fill(pos + 8)? {
                return Err(w.truncated("record type and length", 8, pos));
            }
            w.fill(pos + 2 + 4 + SIGNED_DATA_OID.len())?;
            if starts_signed_data(&w.buf[pos..]) {
                break;
            }
            let tlv: Tlv = Reader::new(&w.buf[pos..pos + 8]).read().map_err(|(at, k)| ParseError::at((pos + at) as u64, k))?;
            let at = |k| ParseError { offset: pos as u64 + 4, command_index: Some(records.len()), command_type: Some(tlv.kind), kind: k };
            if tlv.length > MAX_RECORD_LEN {
                return Err(at(ParseErrorKind::RecordTooLong { length: tlv.length, limit: MAX_RECORD_LEN }).into());
            }
            let end = pos + 8 + tlv.length as usize;
            if (end - HEADER_LEN) as u64 > MAX_COMMAND_LIST_LEN {
                return Err(at(ParseErrorKind::CommandListUnbounded { limit: MAX_COMMAND_LIST_LEN }).into());
            }
            if !w.fill(end)? {
                let mut e = w.truncated("record value", tlv.length as usize, pos + 8);
                if let Error::Parse(p) = &mut e {
                    p.command_index = Some(records.len());
                    p.command_type = Some(tlv.kind);
                }
                return Err(e);
            }
            records.push(Record::decode(records.len(), pos as u64, tlv.kind, w.buf[pos + 8..end].to_vec()));
            pos = end;
            if tlv.kind == 0 {
                terminated = true;
                break;
            }
        }
        let list_end = pos;
        // The SignedData: its DER length, bounded, before it is read.
        w.fill(list_end + 6)?;
        let sig_len = der_tlv_len(&w.buf[list_end..]).map_err(|k| ParseError::at(list_end as u64, k))?;
        if sig_len as u64 > MAX_SIGNATURE_LEN {
            return Err(ParseError::at(list_end as u64, ParseErrorKind::SignatureTooLong { length: sig_len as u64, limit: MAX_SIGNATURE_LEN }).into());
        }
        if !w.fill(list_end + sig_len)? {
            return Err(w.truncated("signature block", sig_len, list_end));
        }
        let signatures =
            SignatureBlock::parse(&w.buf[list_end..list_end + sig_len]).map_err(|e| ParseError::at(list_end as u64, ParseErrorKind::Signature(e)))?;
        // The window may have read past the signature block (a probe): the
        // source must be left at the first payload byte, so read no further
        // than needed above. `fill` never asks for more than list_end + 17
        // octets before the block's length is known, and a SignedData is
        // longer than that.
        debug_assert!(w.buf.len() <= list_end + sig_len);
        let mut buf = w.buf;
        buf.truncate(list_end);
        let mut prefix = DialectPrefix { wrapper, header, records, terminated, signatures, signed: buf, signature_len: sig_len as u64, evidence: Vec::new() };
        prefix.evidence = prefix.find_evidence();
        Ok(prefix)
    }

    fn find_evidence(&self) -> Vec<Evidence> {
        let mut e = Vec::new();
        if self.wrapper == Wrapper::Bzip2 {
            e.push(Evidence::Bzip2Wrapper);
        }
        if self.header.command_list_length as u64 != self.derived_command_list_length() {
            e.push(Evidence::LengthWord { header: self.header.command_list_length, derived: self.derived_command_list_length() });
        }
        let mut types: Vec<u32> = self.records.iter().map(|r| r.kind).filter(|&k| RecordType::of(k).is_dialect_only()).collect();
        types.sort_unstable();
        types.dedup();
        if !types.is_empty() {
            e.push(Evidence::RecordTypes(types));
        }
        let mut algs: Vec<&'static str> =
            self.records.iter().filter_map(|r| r.file()).map(|f| f.digest.algorithm).filter(|a| *a != DigestAlgorithm::Sha1).map(|a| a.name()).collect();
        algs.sort_unstable();
        algs.dedup();
        if !algs.is_empty() {
            e.push(Evidence::DigestAlgorithms(algs));
        }
        e
    }

    /// Whether anything marks the package as the dialect's (rather than a
    /// damaged Annex E package).
    pub fn matches(&self) -> bool {
        !self.evidence.is_empty()
    }

    /// `P`: where the command list ends and the SignedData starts.
    pub fn command_list_end(&self) -> u64 {
        self.signed.len() as u64
    }

    /// The command list's real length, `P − 24`.
    pub fn derived_command_list_length(&self) -> u64 {
        self.command_list_end() - HEADER_LEN as u64
    }

    /// How the header's word relates to the derived length.
    pub fn length_word(&self) -> LengthWord {
        let (word, derived) = (self.header.command_list_length as u64, self.derived_command_list_length());
        if word == derived {
            LengthWord::Exact
        } else if word == derived * 16 {
            LengthWord::Sixteenfold
        } else {
            LengthWord::Unexplained
        }
    }

    pub fn signature_len(&self) -> u64 {
        self.signature_len
    }

    /// The payload base: the end of the SignedData (§8).
    pub fn payload_base(&self) -> u64 {
        self.command_list_end() + self.signature_len
    }

    /// The octets the signatures cover: `[0, P)` (§7).
    pub fn signed_message(&self) -> &[u8] {
        &self.signed
    }

    /// Check every signer over `[0, P)` and its path to one of `anchors`.
    pub fn verify_signatures(&self, anchors: &[x509_cert::Certificate], opts: &VerifyOptions) -> VerifyReport {
        self.signatures.verify(&self.signed, anchors, opts)
    }

    /// What does not look as the notes describe, as sentences.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.header.major != 1 {
            out.push(format!("major version {} (the samples have 1)", self.header.major));
        }
        if !self.terminated {
            out.push("no type-0 terminator: the list ends where the SignedData starts (the source parser's heuristic, notes §5)".into());
        }
        for r in &self.records {
            match &r.body {
                RecordBody::End if !r.value.is_empty() => out.push(format!("record #{}: the type-0 terminator carries {} bytes", r.index, r.value.len())),
                RecordBody::Malformed { offset, error } => out.push(format!(
                    "record #{} (type {}, {}) at offset {}: value not read as its layout, shown as hex: {error} (value offset {offset})",
                    r.index,
                    r.kind,
                    r.record_type().display_name(),
                    r.offset
                )),
                RecordBody::File(f) => out.extend(f.warnings.iter().map(|w| format!("record #{} ({}): {w}", r.index, f.path))),
                RecordBody::Text { utf8: false, .. } => out.push(format!("record #{}: text is not UTF-8 (shown lossily)", r.index)),
                _ => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_data_is_recognised_by_its_oid() {
        let mut b = vec![0x30, 0x82, 0x1f, 0x89];
        b.extend(SIGNED_DATA_OID);
        assert!(starts_signed_data(&b));
        assert!(starts_signed_data(&[&[0x30, 0x23][..], &SIGNED_DATA_OID].concat()));
        assert!(!starts_signed_data(&b[..10]));
        b[14] = 0x01; // data, not signedData
        assert!(!starts_signed_data(&b));
        assert!(!starts_signed_data(&[0x30, 0x85, 0, 0, 0, 0, 0]));
        assert!(!starts_signed_data(&[0, 0, 0, 0x2e, 0, 0, 0, 3]));
    }
}
