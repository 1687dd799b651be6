//! Figure 8 (E.2): header, command list, signature block, payload.
//!
//! [`Prefix`] is everything before the payload — what the signatures
//! cover plus the signatures themselves. E.5 lets a recipient assume it is
//! at most 150 KB, which is what lets a device verify a package before
//! downloading its payload.

use std::io::Read;

use crate::command_list::CommandList;
use crate::error::{Error, ParseError, ParseErrorKind};
use crate::header::{Header, HEADER_LEN};
use crate::signature::{der_block_len, SignatureBlock, SignatureError, VerifyOptions, VerifyReport};

/// E.5: "the combined length of the header, command list, and signature
/// block is no greater than 150 kilobytes."
pub const DEFAULT_PREFIX_LIMIT: usize = 150 * 1024;

/// Header, command list and signature block of a package, as parsed.
#[derive(Debug, Clone)]
pub struct Prefix {
    pub header: Header,
    pub commands: CommandList,
    pub signatures: SignatureBlock,
    /// The header and command list bytes exactly as read: the signed message.
    signed: Vec<u8>,
}

impl Prefix {
    /// A new, unsigned prefix; the header's command list length is computed.
    pub fn new(minor: u32, commands: CommandList, payload_length: u32) -> Result<Prefix, Error> {
        let list = commands.encode();
        let len = u32::try_from(list.len()).ok().filter(|l| *l < crate::header::MAX_COMMAND_LIST_LEN);
        let Some(command_list_length) = len else {
            return Err(Error::Build(format!("command list is {} bytes; E.3 requires less than 65536", list.len())));
        };
        let header = Header { major: crate::header::MAJOR_VERSION, minor, command_list_length, payload_length };
        let mut signed = header.to_bytes().to_vec();
        signed.extend_from_slice(&list);
        Ok(Prefix { header, commands, signatures: SignatureBlock::empty(), signed })
    }

    /// Parse a prefix from the start of `bytes` (which may continue into
    /// the payload). Returns the prefix and the payload's offset.
    pub fn parse(bytes: &[u8]) -> Result<(Prefix, usize), ParseError> {
        let header = Header::parse(bytes)?;
        let list_end = HEADER_LEN + header.command_list_length as usize;
        if bytes.len() < list_end {
            return Err(ParseError::at(
                bytes.len() as u64,
                ParseErrorKind::Truncated { what: "command list", needed: header.command_list_length as u64, available: (bytes.len() - HEADER_LEN) as u64 },
            ));
        }
        let commands = CommandList::parse(&bytes[HEADER_LEN..list_end], HEADER_LEN as u64)?;
        check_payload_ranges(&header, &commands)?;
        let sig_bytes = &bytes[list_end..];
        let sig_err = |e: SignatureError| ParseError::at(list_end as u64, ParseErrorKind::Signature(e));
        let sig_len = der_block_len(sig_bytes).map_err(sig_err)?;
        let signatures = SignatureBlock::parse(&sig_bytes[..sig_len]).map_err(sig_err)?;
        let prefix = Prefix { header, commands, signatures, signed: bytes[..list_end].to_vec() };
        Ok((prefix, list_end + sig_len))
    }

    /// Read exactly the prefix from a stream, never more than `limit` bytes
    /// and never allocating by an untrusted length beyond that limit. The
    /// reader is left at the first payload byte.
    pub fn read_from<R: Read>(r: &mut R, limit: usize) -> Result<Prefix, Error> {
        let mut buf = vec![0u8; HEADER_LEN];
        // Header::parse reports a wrong preamble even in a short file.
        let got = read_up_to(r, &mut buf)?;
        let header = Header::parse(&buf[..got])?;
        let list_end = HEADER_LEN + header.command_list_length as usize;
        if list_end > limit {
            return Err(ParseError::at(0, ParseErrorKind::PrefixTooLarge { limit }).into());
        }
        buf.resize(list_end, 0);
        read_exact_or_truncated(r, &mut buf[HEADER_LEN..], HEADER_LEN as u64, "command list")?;
        // DER identifier + length octets: at most 1 + 1 + 4 for any block we accept.
        let mut probe = [0u8; 6];
        let got = read_up_to(r, &mut probe)?;
        let sig_len = der_tlv_len(&probe[..got]).map_err(|k| ParseError::at(list_end as u64, k))?;
        if list_end.saturating_add(sig_len) > limit {
            return Err(ParseError::at(list_end as u64, ParseErrorKind::PrefixTooLarge { limit }).into());
        }
        buf.extend_from_slice(&probe[..got]);
        let start = buf.len();
        buf.resize(list_end + sig_len, 0);
        read_exact_or_truncated(r, &mut buf[start..], start as u64, "signature block")?;
        let (prefix, _) = Prefix::parse(&buf)?;
        Ok(prefix)
    }

    /// Read the prefix as an installer must: strictly, as [`read_from`](Self::read_from)
    /// does. A package of the 2Wire dialect is refused as such
    /// ([`Error::NotAnnexE`], the strict parser's error as its source)
    /// rather than with the first deviation the strict parser met; any
    /// other failure is returned as it is.
    pub fn read_conformant<R: Read>(r: &mut R, limit: usize) -> Result<Prefix, Error> {
        let mut recorder = Recorder { inner: r, seen: Vec::new() };
        let reason = match Prefix::read_from(&mut recorder, limit) {
            Err(Error::Parse(reason)) => reason,
            other => return other,
        };
        // What the strict parser read (at most `limit` and a few octets), then the rest.
        let seen = std::mem::take(&mut recorder.seen);
        let rest = std::io::Cursor::new(seen).chain(recorder.inner);
        let dialect = crate::dialect::Source::from_reader(rest).ok().and_then(|mut s| crate::dialect::DialectPrefix::read_from(&mut s).ok());
        match dialect {
            Some(d) if d.matches() => Err(Error::NotAnnexE { dialect: crate::dialect::Dialect::TwoWire, reason }),
            _ => Err(Error::Parse(reason)),
        }
    }

    /// The octets the signatures cover (E.5): header and command list, as read.
    pub fn signed_message(&self) -> &[u8] {
        &self.signed
    }

    /// Offset of the first payload byte in the package.
    pub fn payload_offset(&self) -> u64 {
        (self.signed.len() + self.signatures.to_der().len()) as u64
    }

    /// The prefix bytes as read (signed message + current signature block).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.signed.clone();
        out.extend_from_slice(&self.signatures.to_der());
        out
    }

    /// Canonical re-encoding: header with the recomputed command list
    /// length, canonically encoded commands, signature block.
    pub fn encode_canonical(&self) -> Vec<u8> {
        let list = self.commands.encode();
        let mut header = self.header;
        header.command_list_length = list.len() as u32;
        let mut out = header.to_bytes().to_vec();
        out.extend_from_slice(&list);
        out.extend_from_slice(&self.signatures.to_der());
        out
    }

    /// Verify the signature block over the signed message (E.5).
    pub fn verify_signatures(&self, anchors: &[x509_cert::Certificate], opts: &VerifyOptions) -> VerifyReport {
        self.signatures.verify(&self.signed, anchors, opts)
    }
}

/// Table 69: every payload file must lie inside the header's payload.
fn check_payload_ranges(header: &Header, commands: &CommandList) -> Result<(), ParseError> {
    for (index, f) in commands.files() {
        if f.payload_range().end > header.payload_length as u64 {
            return Err(ParseError {
                offset: HEADER_LEN as u64,
                command_index: Some(index),
                command_type: Some(commands.commands[index].type_code()),
                kind: ParseErrorKind::PayloadOutOfBounds { file_offset: f.file_offset, file_length: f.file_length, payload_length: header.payload_length },
            });
        }
    }
    Ok(())
}

/// Total length of the signature block's outer DER TLV from its first six
/// octets (identifier + definite length of at most four octets), before
/// anything is allocated for it. A SignedData ContentInfo is a SEQUENCE
/// (tag 0x30; E.5: the identifier fits one octet) and never shorter than
/// these six octets, so the probe never reads into the payload.
pub(crate) fn der_tlv_len(probe: &[u8]) -> Result<usize, ParseErrorKind> {
    let bad = |why: String| ParseErrorKind::Signature(SignatureError::Malformed(why));
    if probe.len() < 6 {
        return Err(ParseErrorKind::Truncated { what: "signature block", needed: 6, available: probe.len() as u64 });
    }
    if probe[0] != 0x30 {
        return Err(bad(format!("expected a DER SEQUENCE (0x30), found tag 0x{:02x}", probe[0])));
    }
    let (hdr, len) = match probe[1] {
        n @ 0..=0x7f => (2, n as usize),
        n @ 0x81..=0x84 => {
            let k = (n & 0x7f) as usize;
            (1 + 1 + k, probe[2..2 + k].iter().fold(0usize, |a, b| (a << 8) | *b as usize))
        }
        0x80 => return Err(bad("indefinite length is not DER".into())),
        n => return Err(bad(format!("length of {} octets is unsupported", n & 0x7f))),
    };
    let total = hdr + len;
    if total < 6 {
        return Err(bad(format!("a {total}-byte block cannot be a SignedData")));
    }
    Ok(total)
}

/// A reader that keeps a copy of what was read through it.
struct Recorder<'r, R> {
    inner: &'r mut R,
    seen: Vec<u8>,
}

impl<R: Read> Read for Recorder<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.seen.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

fn read_up_to<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn read_exact_or_truncated<R: Read>(r: &mut R, buf: &mut [u8], at: u64, what: &'static str) -> Result<(), Error> {
    let n = read_up_to(r, buf)?;
    if n < buf.len() {
        return Err(ParseError::at(at + n as u64, ParseErrorKind::Truncated { what, needed: buf.len() as u64, available: n as u64 }).into());
    }
    Ok(())
}

/// A whole package held in memory (tests, fuzzing, small packages).
#[derive(Debug, Clone)]
pub struct Package {
    pub prefix: Prefix,
    pub payload: Vec<u8>,
}

impl Package {
    /// Strictly parse a complete package: prefix, then exactly
    /// `payload_length` payload bytes and nothing more.
    pub fn parse(bytes: &[u8]) -> Result<Package, ParseError> {
        let (prefix, payload_offset) = Prefix::parse(bytes)?;
        let expected = payload_offset as u64 + prefix.header.payload_length as u64;
        let actual = bytes.len() as u64;
        if actual < expected {
            return Err(ParseError::at(
                actual,
                ParseErrorKind::Truncated { what: "payload", needed: prefix.header.payload_length as u64, available: actual - payload_offset as u64 },
            ));
        }
        if actual > expected {
            return Err(ParseError::at(expected, ParseErrorKind::TrailingBytes { expected, actual }));
        }
        Ok(Package { payload: bytes[payload_offset..].to_vec(), prefix })
    }

    /// Canonical serialization.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.prefix.encode_canonical();
        out.extend_from_slice(&self.payload);
        out
    }
}
