//! The payload region of a dialect package, walked once as a stream
//! (2wire-pkgstream-notes §7–§9, §11).
//!
//! * FILE and SCRIPT records give their data as an offset and size from
//!   the payload base (the end of the SignedData); the region's length is
//!   the header's payload word (§3 `[DERIVED]`: it equals the file's size
//!   less the base in the published sample).
//! * Each record's digest is "checked over the streamed bytes" (§11
//!   `[DECOMP]`): for types 1, 3 and 38 those are the stored bytes. For
//!   type 47 the stored bytes are the encoded blocks, and whether the
//!   digest covers them or the decoded file is not documented; the pass
//!   computes the stored-bytes digest (the notes' reading) and, to tell
//!   which it is, the digests of the decoded file (holes as zeros) and of
//!   the chunks' data alone, and says which matched ([`Coverage`]) and
//!   that this is uncertain.
//! * After the region, older drops append PEM certificates (§7): they are
//!   reported, never trusted.
//!
//! Memory does not grow with the payload: bytes go through a fixed
//! buffer, split per record by the same [`RangeSplitter`] Annex E's
//! verifier uses.

use std::io::Read;

use super::catalogue::FileMode;
use super::digest::{Digest, DigestAlgorithm, Hasher};
use super::limits::{MAX_TRAILER_EXAMINED, MAX_TRAILING_CERTIFICATES};
use super::prefix::DialectPrefix;
use super::record::RecordBody;
use super::sparse::{SparseDecoder, SparseError};
use super::wrapper::Source;
use crate::error::Error;
use crate::payload::{Event, RangeSplitter, STREAM_CHUNK};

/// What a payload item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    File(FileMode),
    Script,
}

/// A FILE or SCRIPT body in the payload region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadItem {
    /// Index of its record.
    pub record: usize,
    pub kind: ItemKind,
    /// The FILE's path or the SCRIPT's name.
    pub name: String,
    /// From the payload base.
    pub offset: u64,
    pub size: u64,
    pub digest: Digest,
}

impl PayloadItem {
    pub fn is_sparse(&self) -> bool {
        self.kind == ItemKind::File(FileMode::Sparse)
    }
}

impl DialectPrefix {
    /// Every FILE and SCRIPT body, in record order.
    pub fn items(&self) -> Vec<PayloadItem> {
        self.records
            .iter()
            .filter_map(|r| match &r.body {
                RecordBody::File(f) => Some(PayloadItem {
                    record: r.index,
                    kind: ItemKind::File(f.mode),
                    name: f.path.clone(),
                    offset: f.data_offset,
                    size: f.data_size,
                    digest: f.digest.clone(),
                }),
                RecordBody::Script(s) => Some(PayloadItem {
                    record: r.index,
                    kind: ItemKind::Script,
                    name: s.name.clone(),
                    offset: s.payload_offset,
                    size: s.payload_size,
                    digest: s.digest.clone(),
                }),
                _ => None,
            })
            .collect()
    }
}

/// What an item's digest was found to cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coverage {
    /// The bytes as stored in the payload region.
    Stored,
    /// Type 47: the decoded file, holes as zeros.
    Decoded,
    /// Type 47: the chunks' data, without length prefixes or holes.
    ChunkData,
}

impl Coverage {
    pub fn id(self) -> &'static str {
        match self {
            Coverage::Stored => "stored-bytes",
            Coverage::Decoded => "decoded-file",
            Coverage::ChunkData => "chunk-data",
        }
    }
}

/// Why what a type-47 digest covers is uncertain.
pub const SPARSE_COVERAGE_NOTE: &str = "type 47: the notes say the digest is checked over the streamed bytes (§11, a reading of decompiled code); \
     whether those are the stored blocks or the decoded file is not documented, so all three were computed";

/// The outcome for one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemCheck {
    pub item: PayloadItem,
    /// The digest over what the notes say it covers (the stored bytes);
    /// `None` when the item was not hashed or not read whole.
    pub computed: Option<Vec<u8>>,
    /// Which reading of the coverage matched the record's digest; `None`: none did.
    pub matched: Option<Coverage>,
    /// Set when what the digest covers is uncertain (type 47).
    pub uncertain: Option<&'static str>,
    /// Type 47: the decoded file's size.
    pub decoded_size: Option<u64>,
    /// The first octets of the (decoded) data, to recognise a nested package.
    pub head: Vec<u8>,
    /// Why the item could not be checked or read.
    pub problem: Option<String>,
}

impl ItemCheck {
    /// Read whole and its digest matched.
    pub fn ok(&self) -> bool {
        self.problem.is_none() && self.matched.is_some()
    }

    /// Its data starts like a package: `2WIRE_SP`, or a bzip2 stream that may wrap one.
    pub fn nested(&self) -> Option<super::Wrapper> {
        if self.head.starts_with(crate::header::PREAMBLE.as_slice()) {
            Some(super::Wrapper::None)
        } else if self.head.starts_with(super::wrapper::BZIP2_MAGIC) && self.head.get(3).is_some_and(|d| (b'1'..=b'9').contains(d)) {
            Some(super::Wrapper::Bzip2)
        } else {
            None
        }
    }
}

/// A PEM certificate found after the payload region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailingCertificate {
    /// Absolute offset of its `-----BEGIN` line.
    pub offset: u64,
    pub subject: String,
    pub issuer: String,
    pub not_after: String,
    /// Why it could not be read, if it could not.
    pub error: Option<String>,
}

/// The payload pass's findings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadReport {
    /// In record order.
    pub items: Vec<ItemCheck>,
    /// The header's payload word.
    pub payload_length: u64,
    /// Octets of the region present in the package.
    pub region_present: u64,
    /// Octets after the region.
    pub trailing_bytes: u64,
    pub trailing_certificates: Vec<TrailingCertificate>,
    /// Trailing octets that are neither PEM certificates nor whitespace.
    pub trailing_other: u64,
}

impl PayloadReport {
    pub fn all_ok(&self) -> bool {
        self.region_present == self.payload_length && self.items.iter().all(ItemCheck::ok)
    }
}

/// Data for `extract`, as the pass reads it.
#[derive(Debug, PartialEq, Eq)]
pub enum Write<'a> {
    /// `bytes` at `offset` of record `record`'s output (decoded for type 47).
    Data { record: usize, offset: u64, bytes: &'a [u8] },
    /// Record `record`'s data ended: its check (`check.ok()`: intact) and
    /// its output's length (the decoded size for type 47).
    End { record: usize, size: u64, check: &'a ItemCheck },
}

/// How much of each item the pass reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassMode {
    /// Only the first octets of each item (to recognise nested packages),
    /// skipping the rest: seeks in a plain file.
    Heads,
    /// Every octet, hashed; data handed to the sink.
    Full,
}

/// Octets kept of each item's start.
const HEAD_LEN: usize = 8;

struct SparseState {
    decoder: SparseDecoder,
    /// The decoded file's and the chunk data's digests (`Full` mode).
    hashers: Option<(Hasher, Hasher)>,
    /// End of the decoded data hashed so far.
    decoded_pos: u64,
    error: Option<SparseError>,
}

struct ItemState {
    stored: Option<Hasher>,
    sparse: Option<SparseState>,
    /// Stored octets seen.
    seen: u64,
    head: Vec<u8>,
    ended: bool,
}

/// One streaming pass over the payload region and what follows it.
pub struct PayloadPass;

impl PayloadPass {
    /// Walk the payload of `prefix` from `source` (positioned at the
    /// payload base), handing item data to `sink` in `Full` mode.
    pub fn run(
        prefix: &DialectPrefix,
        source: &mut Source<'_>,
        mode: PassMode,
        mut sink: impl FnMut(Write<'_>) -> std::io::Result<()>,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<PayloadReport, Error> {
        let items = prefix.items();
        let total = prefix.header.payload_length as u64;
        let mut problems: Vec<Option<String>> = vec![None; items.len()];
        // Items inside the region are walked; the others are reported.
        let mut walked = Vec::new();
        let mut ranges = Vec::new();
        for (k, it) in items.iter().enumerate() {
            match it.offset.checked_add(it.size) {
                Some(end) if end <= total => {
                    // Heads: the first octets (of type-47 data, the first chunk's).
                    let end = if mode == PassMode::Heads { end.min(it.offset + HEAD_LEN as u64 + if it.is_sparse() { 4 } else { 0 }) } else { end };
                    walked.push(k);
                    ranges.push(it.offset..end);
                }
                _ => problems[k] = Some(format!("data (offset {}, size {}) lies outside the {total}-byte payload region", it.offset, it.size)),
            }
        }
        let mut checks: Vec<ItemCheck> = items
            .iter()
            .zip(problems)
            .map(|(it, problem)| ItemCheck {
                item: it.clone(),
                computed: None,
                matched: None,
                uncertain: it.is_sparse().then_some(SPARSE_COVERAGE_NOTE),
                decoded_size: None,
                head: Vec::new(),
                problem,
            })
            .collect();
        let mut states: Vec<ItemState> = walked.iter().map(|_| ItemState { stored: None, sparse: None, seen: 0, head: Vec::new(), ended: false }).collect();
        let mut splitter = RangeSplitter::new(ranges);
        let mut buf = vec![0u8; STREAM_CHUNK];
        let hash = mode == PassMode::Full;
        let mut on = |e: Event<'_>| -> Result<(), Error> {
            match e {
                Event::Start(i) => {
                    let it = &items[walked[i]];
                    let s = &mut states[i];
                    if hash {
                        s.stored = Some(it.digest.algorithm.hasher());
                    }
                    if it.is_sparse() {
                        let h = it.digest.algorithm.hasher();
                        let hashers = hash.then(|| (h.clone(), h));
                        s.sparse = Some(SparseState { decoder: SparseDecoder::new(), hashers, decoded_pos: 0, error: None });
                    }
                    Ok(())
                }
                Event::Bytes(i, bytes) => {
                    let it = &items[walked[i]];
                    let s = &mut states[i];
                    if let Some(h) = &mut s.stored {
                        h.update(bytes);
                    }
                    if !it.is_sparse() {
                        let room = HEAD_LEN.saturating_sub(s.head.len()).min(bytes.len());
                        s.head.extend_from_slice(&bytes[..room]);
                        if hash {
                            sink(Write::Data { record: it.record, offset: s.seen, bytes })?;
                        }
                    } else if let Some(sp) = s.sparse.as_mut().filter(|sp| sp.error.is_none()) {
                        let head = &mut s.head;
                        let r = sp.decoder.feed::<SinkOrSparse>(bytes, |at, run| {
                            if let Some((decoded, chunk_data)) = &mut sp.hashers {
                                decoded.update_zeros(at - sp.decoded_pos);
                                decoded.update(run);
                                chunk_data.update(run);
                            }
                            sp.decoded_pos = at + run.len() as u64;
                            if head.len() < HEAD_LEN {
                                head.resize(head.len().max(at.min(HEAD_LEN as u64) as usize), 0);
                                head.extend_from_slice(&run[..run.len().min(HEAD_LEN - head.len())]);
                            }
                            if hash {
                                sink(Write::Data { record: it.record, offset: at, bytes: run }).map_err(SinkOrSparse::Sink)?;
                            }
                            Ok(())
                        });
                        match r {
                            Ok(()) => {}
                            Err(SinkOrSparse::Sparse(e)) => sp.error = Some(e),
                            Err(SinkOrSparse::Sink(e)) => return Err(e.into()),
                        }
                    }
                    s.seen += bytes.len() as u64;
                    Ok(())
                }
                Event::End(i) => {
                    let s = &mut states[i];
                    s.ended = true;
                    let c = &mut checks[walked[i]];
                    c.head = std::mem::take(&mut s.head);
                    let Some(stored) = s.stored.take() else { return Ok(()) };
                    let size = finish_item(c, stored, s.sparse.take());
                    sink(Write::End { record: c.item.record, size, check: c })?;
                    Ok(())
                }
            }
        };
        // Walk the region: read where an item is, skip where none is.
        let err = |source: &Source<'_>, e: std::io::Error| source.error(e);
        loop {
            // Start and end what starts and ends here, so that idleness is known.
            splitter.feed(&[], &mut on)?;
            let pos = splitter.position();
            let Some(boundary) = splitter.next_boundary() else { break };
            if splitter.is_idle() {
                let got = source.skip(boundary - pos).map_err(|e| err(source, e))?;
                splitter.skip(got, &mut on)?;
                if got < boundary - pos {
                    break;
                }
            } else {
                let want = (boundary - pos).min(buf.len() as u64) as usize;
                let n = read_some(source, &mut buf[..want]).map_err(|e| err(source, e))?;
                if n == 0 {
                    break;
                }
                splitter.feed(&buf[..n], &mut on)?;
            }
            progress(splitter.position(), total);
        }
        // An empty range at the very end starts and ends only when fed.
        splitter.feed(&[], &mut on)?;
        let mut region_present = splitter.position();
        if region_present < total && splitter.is_done() {
            region_present += source.skip(total - region_present).map_err(|e| err(source, e))?;
        }
        progress(region_present, total);
        for (i, s) in states.into_iter().enumerate() {
            if !s.ended {
                let c = &mut checks[walked[i]];
                c.head = s.head;
                c.problem = Some(format!("truncated: the package ends {} octets into the data, at payload offset {region_present}", s.seen));
            }
        }
        let (trailing_bytes, trailing_certificates, trailing_other) =
            if region_present == total { read_trailer(source, prefix.payload_base() + total)? } else { (0, Vec::new(), 0) };
        Ok(PayloadReport { items: checks, payload_length: total, region_present, trailing_bytes, trailing_certificates, trailing_other })
    }
}

/// Finish an item's digests into its check; returns its output's length.
fn finish_item(c: &mut ItemCheck, stored: Hasher, sparse: Option<SparseState>) -> u64 {
    let computed = stored.finalize();
    let expected = &c.item.digest.value;
    c.matched = (&computed == expected).then_some(Coverage::Stored);
    c.computed = Some(computed);
    let Some(sp) = sparse else { return c.item.size };
    match sp.error.map_or_else(|| sp.decoder.finish(), Err) {
        Ok(size) => {
            c.decoded_size = Some(size);
            if c.matched.is_none() {
                let (decoded, data) = sp.hashers.map(|(d, c)| (d.finalize(), c.finalize())).unwrap_or_default();
                c.matched = if &decoded == expected {
                    Some(Coverage::Decoded)
                } else if &data == expected {
                    Some(Coverage::ChunkData)
                } else {
                    None
                };
            }
            size
        }
        Err(e) => {
            c.problem = Some(e.to_string());
            0
        }
    }
}

/// A sparse item's decoding stops at its first error; the sink's errors stop the pass.
enum SinkOrSparse {
    Sink(std::io::Error),
    Sparse(SparseError),
}

impl From<SparseError> for SinkOrSparse {
    fn from(e: SparseError) -> Self {
        SinkOrSparse::Sparse(e)
    }
}

fn read_some(source: &mut Source<'_>, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match source.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

const PEM_BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
const PEM_END: &[u8] = b"-----END CERTIFICATE-----";

/// Read what follows the region (at absolute offset `at`): the first
/// [`MAX_TRAILER_EXAMINED`] octets are examined for PEM certificates, the
/// rest only counted.
fn read_trailer(source: &mut Source<'_>, at: u64) -> Result<(u64, Vec<TrailingCertificate>, u64), Error> {
    let mut examined = Vec::new();
    (&mut *source).take(MAX_TRAILER_EXAMINED).read_to_end(&mut examined).map_err(|e| source.error(e))?;
    let mut total = examined.len() as u64;
    if total == MAX_TRAILER_EXAMINED {
        loop {
            let n = source.skip(STREAM_CHUNK as u64).map_err(|e| source.error(e))?;
            if n == 0 {
                break;
            }
            total += n;
        }
    }
    let (certs, pem_octets) = pem_certificates(&examined, at);
    let blank = examined.iter().filter(|b| b.is_ascii_whitespace()).count() as u64;
    Ok((total, certs, total - pem_octets - blank.min(total - pem_octets)))
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// The certificates among `bytes` and how many octets their PEM blocks
/// take (whitespace inside them excluded).
fn pem_certificates(bytes: &[u8], at: u64) -> (Vec<TrailingCertificate>, u64) {
    let mut out = Vec::new();
    let mut pem_octets = 0u64;
    let mut from = 0;
    while let Some(begin) = find(bytes, PEM_BEGIN, from) {
        if out.len() == MAX_TRAILING_CERTIFICATES {
            break;
        }
        let Some(end) = find(bytes, PEM_END, begin) else { break };
        let block = &bytes[begin..end + PEM_END.len()];
        pem_octets += block.iter().filter(|b| !b.is_ascii_whitespace()).count() as u64;
        from = end + PEM_END.len();
        let offset = at + begin as u64;
        out.push(match crate::signature::load_certs_pem(block).map(|mut c| c.pop()) {
            Ok(Some(c)) => {
                let tbs = &c.tbs_certificate;
                TrailingCertificate {
                    offset,
                    subject: tbs.subject.to_string(),
                    issuer: tbs.issuer.to_string(),
                    not_after: tbs.validity.not_after.to_string(),
                    error: None,
                }
            }
            Ok(None) => TrailingCertificate { offset, subject: String::new(), issuer: String::new(), not_after: String::new(), error: Some("empty".into()) },
            Err(e) => TrailingCertificate { offset, subject: String::new(), issuer: String::new(), not_after: String::new(), error: Some(e.to_string()) },
        });
    }
    (out, pem_octets)
}

/// Hash `data` with `algorithm` (for tests and samples).
pub fn digest_of(algorithm: DigestAlgorithm, data: &[u8]) -> Digest {
    let mut h = algorithm.hasher();
    h.update(data);
    Digest { algorithm, value: h.finalize() }
}
