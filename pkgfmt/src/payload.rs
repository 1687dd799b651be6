//! Payload hashing (E.4.3, E.5): the signatures cover only header and
//! command list, and each Extract/Add command carries the SHA-1 of its
//! payload file, so checking every file hash extends the signature to the
//! whole package.
//!
//! [`PayloadVerifier`] is sans-IO: feed it the payload in chunks of any
//! size, in order, as they arrive (from a file or a download). Memory use
//! is independent of the payload size, and a mismatching file is reported
//! as soon as its last byte has arrived.

use sha1::{Digest, Sha1};

use crate::command_list::CommandList;
use crate::error::Error;

/// One payload file's hash check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    /// Index of the Extract/Add command in the command list.
    pub index: usize,
    pub path: String,
    pub sha1: [u8; 20],
}

struct Range {
    index: usize,
    start: u64,
    end: u64,
    expected: [u8; 20],
    path: String,
}

/// Streaming SHA-1 check of every payload file in one pass.
pub struct PayloadVerifier {
    /// Sorted by start offset; `next` is the first not yet started.
    ranges: Vec<Range>,
    next: usize,
    /// Ranges being hashed now (files may overlap in the payload).
    active: Vec<(usize, Sha1)>,
    done: Vec<FileDigest>,
    pos: u64,
    total: u64,
}

impl PayloadVerifier {
    /// `payload_length` from the header; ranges were bounds-checked at parse.
    pub fn new(commands: &CommandList, payload_length: u64) -> PayloadVerifier {
        let mut ranges: Vec<Range> = commands
            .files()
            .map(|(index, f)| Range { index, start: f.payload_range().start, end: f.payload_range().end, expected: f.sha1, path: f.path.clone() })
            .collect();
        ranges.sort_by_key(|r| (r.start, r.index));
        PayloadVerifier { ranges, next: 0, active: Vec::new(), done: Vec::new(), pos: 0, total: payload_length }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Declared payload length.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Feed the next chunk of payload. Fails on the first file whose hash
    /// does not match, or if more bytes arrive than the header declared.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), Error> {
        self.update_with(chunk, |_, _| Ok(()))
    }

    /// Like [`update`](Self::update), also handing every payload file's
    /// bytes to `sink(command_index, bytes)` as they arrive (to stage files
    /// while hashing them; overlapping files each get their bytes).
    pub fn update_with(&mut self, mut chunk: &[u8], mut sink: impl FnMut(usize, &[u8]) -> std::io::Result<()>) -> Result<(), Error> {
        if (chunk.len() as u64) > self.total - self.pos {
            return Err(Error::PayloadTooLong { expected: self.total });
        }
        while !chunk.is_empty() {
            self.start_and_finish_ranges()?;
            // Hash up to the next boundary (a range start or end) so that
            // ranges open and close exactly at their offsets.
            let mut boundary = self.pos + chunk.len() as u64;
            if let Some(r) = self.ranges.get(self.next) {
                boundary = boundary.min(r.start);
            }
            for (i, _) in &self.active {
                boundary = boundary.min(self.ranges[*i].end);
            }
            let n = (boundary - self.pos) as usize;
            let (now, rest) = chunk.split_at(n);
            for (i, h) in &mut self.active {
                h.update(now);
                sink(self.ranges[*i].index, now)?;
            }
            self.pos += n as u64;
            chunk = rest;
        }
        self.start_and_finish_ranges()
    }

    fn start_and_finish_ranges(&mut self) -> Result<(), Error> {
        while let Some(r) = self.ranges.get(self.next) {
            if r.start != self.pos {
                break;
            }
            self.active.push((self.next, Sha1::new()));
            self.next += 1;
        }
        let mut k = 0;
        while k < self.active.len() {
            let i = self.active[k].0;
            if self.ranges[i].end == self.pos {
                let (_, h) = self.active.swap_remove(k);
                let r = &self.ranges[i];
                let got: [u8; 20] = h.finalize().into();
                if got != r.expected {
                    return Err(Error::HashMismatch { index: r.index, path: r.path.clone(), expected: hex::encode(r.expected), actual: hex::encode(got) });
                }
                self.done.push(FileDigest { index: r.index, path: r.path.clone(), sha1: got });
            } else {
                k += 1;
            }
        }
        Ok(())
    }

    /// Files verified so far, in completion order.
    pub fn completed(&self) -> &[FileDigest] {
        &self.done
    }

    /// All bytes must have arrived; returns the verified files in command order.
    pub fn finish(mut self) -> Result<Vec<FileDigest>, Error> {
        if self.pos != self.total {
            return Err(Error::PayloadTruncated { expected: self.total, actual: self.pos });
        }
        self.start_and_finish_ranges()?;
        debug_assert!(self.active.is_empty() && self.next == self.ranges.len());
        self.done.sort_by_key(|d| d.index);
        Ok(self.done)
    }
}

/// Buffer size for streaming: large enough for SHA-NI throughput, small
/// enough that memory stays flat.
pub const STREAM_CHUNK: usize = 256 * 1024;

/// Stream the payload from `r` (positioned at the first payload byte)
/// through a [`PayloadVerifier`], then insist the stream ends exactly at
/// the declared payload length. `progress(done, total)` is called after
/// every chunk.
pub fn verify_payload<R: std::io::Read>(
    r: &mut R,
    commands: &CommandList,
    payload_length: u64,
    mut progress: impl FnMut(u64, u64),
) -> Result<Vec<FileDigest>, Error> {
    let mut v = PayloadVerifier::new(commands, payload_length);
    let mut buf = vec![0u8; STREAM_CHUNK];
    loop {
        let want = (payload_length - v.position()).min(buf.len() as u64) as usize;
        if want == 0 {
            break;
        }
        let n = match r.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        v.update(&buf[..n])?;
        progress(v.position(), payload_length);
    }
    // Anything after the payload is not part of the package (Figure 8).
    let mut one = [0u8; 1];
    loop {
        match r.read(&mut one) {
            Ok(0) => break,
            Ok(_) if v.position() == payload_length => return Err(Error::PayloadTooLong { expected: payload_length }),
            Ok(_) => unreachable!("read stopped early only on EOF"),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Command, FileCommand};

    fn file(path: &str, payload: &[u8], off: u32, len: u32) -> Command {
        let sha1 = Sha1::digest(&payload[off as usize..(off + len) as usize]).into();
        Command::ExtractFile(FileCommand { flags: 0, path: path.into(), sha1, file_offset: off, file_length: len, metadata: None })
    }

    #[test]
    fn overlapping_gapped_empty_and_any_chunking() {
        let payload: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let list = CommandList::new(vec![
            file("/a", &payload, 0, 300),
            file("/b", &payload, 100, 50),  // inside /a
            file("/c", &payload, 290, 400), // overlaps /a's end
            file("/e", &payload, 0, 0),     // empty
            file("/f", &payload, 1000, 0),  // empty at the very end
            file("/d", &payload, 800, 150), // gap before and after
        ]);
        for chunk in [1usize, 7, 64, 299, 1000] {
            let mut v = PayloadVerifier::new(&list, 1000);
            for c in payload.chunks(chunk) {
                v.update(c).unwrap();
            }
            let done = v.finish().unwrap();
            assert_eq!(done.iter().map(|d| d.index).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 5]);
        }
    }

    #[test]
    fn mismatch_reported_when_file_completes() {
        let payload = vec![1u8; 100];
        let mut list = CommandList::new(vec![file("/a", &payload, 0, 10), file("/b", &payload, 50, 10)]);
        list.commands[1].file_mut().unwrap().sha1[0] ^= 1;
        let mut v = PayloadVerifier::new(&list, 100);
        v.update(&payload[..59]).unwrap();
        let e = v.update(&payload[59..60]).unwrap_err();
        assert!(matches!(e, Error::HashMismatch { index: 1, .. }), "{e}");
    }

    #[test]
    fn truncated_and_overlong() {
        let payload = vec![1u8; 10];
        let list = CommandList::new(vec![file("/a", &payload, 0, 10)]);
        let mut v = PayloadVerifier::new(&list, 10);
        v.update(&payload[..9]).unwrap();
        assert!(matches!(v.finish().unwrap_err(), Error::PayloadTruncated { expected: 10, actual: 9 }));
        let mut v = PayloadVerifier::new(&list, 10);
        assert!(matches!(v.update(&[0; 11]).unwrap_err(), Error::PayloadTooLong { .. }));
    }
}
