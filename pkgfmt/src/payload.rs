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

/// One event of a [`RangeSplitter`] walk, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event<'a> {
    /// Range `id` starts at the current position.
    Start(usize),
    /// The next bytes of range `id`.
    Bytes(usize, &'a [u8]),
    /// Range `id` ended at the current position.
    End(usize),
}

/// Which payload files the bytes at each position belong to: splits a
/// stream of payload bytes at every range's start and end, whatever the
/// chunking, so that each file's bytes are handed on exactly (files may
/// overlap, be empty, or leave gaps). Sans-IO; memory depends only on the
/// number of ranges. The one home of this walk: [`PayloadVerifier`] and
/// the 2Wire dialect's payload pass are built on it.
#[derive(Debug, Clone)]
pub(crate) struct RangeSplitter {
    ranges: Vec<std::ops::Range<u64>>,
    /// Range ids by (start, id); `next` is the first not yet started.
    order: Vec<usize>,
    next: usize,
    /// Ranges being walked now.
    active: Vec<usize>,
    pos: u64,
}

impl RangeSplitter {
    /// `ranges[id]`, by id; an empty or inverted range is empty.
    pub(crate) fn new(ranges: Vec<std::ops::Range<u64>>) -> RangeSplitter {
        let ranges: Vec<_> = ranges.into_iter().map(|r| r.start..r.end.max(r.start)).collect();
        let mut order: Vec<usize> = (0..ranges.len()).collect();
        order.sort_by_key(|&i| (ranges[i].start, i));
        RangeSplitter { ranges, order, next: 0, active: Vec::new(), pos: 0 }
    }

    /// Bytes walked so far.
    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

    /// No range covers the current position: the bytes up to
    /// [`next_boundary`](Self::next_boundary) belong to no file.
    pub(crate) fn is_idle(&self) -> bool {
        self.active.is_empty()
    }

    /// Every range has started and ended.
    pub(crate) fn is_done(&self) -> bool {
        self.next == self.order.len() && self.active.is_empty()
    }

    /// The next position after the current one where a range starts or ends.
    pub(crate) fn next_boundary(&self) -> Option<u64> {
        let start = self.order.get(self.next).map(|&i| self.ranges[i].start);
        let end = self.active.iter().map(|&i| self.ranges[i].end).min();
        start.into_iter().chain(end).filter(|&b| b > self.pos).min()
    }

    /// Walk `chunk`, the bytes at the current position, telling `on` of
    /// every start, byte run and end; stops at `on`'s first error.
    pub(crate) fn feed<E>(&mut self, mut chunk: &[u8], mut on: impl FnMut(Event<'_>) -> Result<(), E>) -> Result<(), E> {
        loop {
            self.boundaries(&mut on)?;
            if chunk.is_empty() {
                return Ok(());
            }
            let n = self.next_boundary().map_or(chunk.len() as u64, |b| (b - self.pos).min(chunk.len() as u64)) as usize;
            let (now, rest) = chunk.split_at(n);
            for &i in &self.active {
                on(Event::Bytes(i, now))?;
            }
            self.pos += n as u64;
            chunk = rest;
        }
    }

    /// Pass over `n` bytes that belong to no range (the caller checked,
    /// after a `feed(&[])` at this position, [`is_idle`](Self::is_idle) and
    /// that no range starts within them).
    pub(crate) fn skip<E>(&mut self, n: u64, mut on: impl FnMut(Event<'_>) -> Result<(), E>) -> Result<(), E> {
        self.boundaries(&mut on)?;
        debug_assert!(self.is_idle() && self.next_boundary().is_none_or(|b| b >= self.pos + n));
        self.pos += n;
        self.boundaries(&mut on)
    }

    /// Start the ranges that start here and end those that end here (an
    /// empty range does both).
    fn boundaries<E>(&mut self, on: &mut impl FnMut(Event<'_>) -> Result<(), E>) -> Result<(), E> {
        while let Some(&i) = self.order.get(self.next) {
            if self.ranges[i].start != self.pos {
                break;
            }
            self.active.push(i);
            self.next += 1;
            on(Event::Start(i))?;
        }
        let mut k = 0;
        while k < self.active.len() {
            let i = self.active[k];
            if self.ranges[i].end == self.pos {
                self.active.swap_remove(k);
                on(Event::End(i))?;
            } else {
                k += 1;
            }
        }
        Ok(())
    }
}

/// One file's expected hash.
struct Expected {
    index: usize,
    path: String,
    sha1: [u8; 20],
}

/// Streaming SHA-1 check of every payload file in one pass.
pub struct PayloadVerifier {
    /// By range id.
    files: Vec<Expected>,
    hashers: Vec<Option<Sha1>>,
    splitter: RangeSplitter,
    done: Vec<FileDigest>,
    total: u64,
}

impl PayloadVerifier {
    /// `payload_length` from the header; ranges were bounds-checked at parse.
    pub fn new(commands: &CommandList, payload_length: u64) -> PayloadVerifier {
        let (files, ranges): (Vec<_>, Vec<_>) =
            commands.files().map(|(index, f)| (Expected { index, path: f.path.clone(), sha1: f.sha1 }, f.payload_range())).unzip();
        PayloadVerifier { hashers: files.iter().map(|_| None).collect(), files, splitter: RangeSplitter::new(ranges), done: Vec::new(), total: payload_length }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.splitter.position()
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
    pub fn update_with(&mut self, chunk: &[u8], mut sink: impl FnMut(usize, &[u8]) -> std::io::Result<()>) -> Result<(), Error> {
        if (chunk.len() as u64) > self.total - self.position() {
            return Err(Error::PayloadTooLong { expected: self.total });
        }
        let (files, hashers, done) = (&self.files, &mut self.hashers, &mut self.done);
        self.splitter.feed(chunk, |event| match event {
            Event::Start(i) => {
                hashers[i] = Some(Sha1::new());
                Ok(())
            }
            Event::Bytes(i, bytes) => {
                hashers[i].as_mut().expect("started").update(bytes);
                Ok(sink(files[i].index, bytes)?)
            }
            Event::End(i) => {
                let f = &files[i];
                let got: [u8; 20] = hashers[i].take().expect("started").finalize().into();
                if got != f.sha1 {
                    return Err(Error::HashMismatch { index: f.index, path: f.path.clone(), expected: hex::encode(f.sha1), actual: hex::encode(got) });
                }
                done.push(FileDigest { index: f.index, path: f.path.clone(), sha1: got });
                Ok(())
            }
        })
    }

    /// Files verified so far, in completion order.
    pub fn completed(&self) -> &[FileDigest] {
        &self.done
    }

    /// All bytes must have arrived; returns the verified files in command order.
    pub fn finish(mut self) -> Result<Vec<FileDigest>, Error> {
        if self.position() != self.total {
            return Err(Error::PayloadTruncated { expected: self.total, actual: self.position() });
        }
        self.update(&[])?;
        debug_assert!(self.splitter.is_done());
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

    /// The splitter hands each range exactly its bytes, and lets idle
    /// stretches be skipped.
    #[test]
    fn splitter_events_and_skips() {
        let data: Vec<u8> = (0..100u8).collect();
        let ranges = vec![0..5, 10..20, 15..15, 40..60, 50..55, 90..100];
        for chunk in [1usize, 3, 100] {
            let mut s = RangeSplitter::new(ranges.clone());
            let mut got = vec![Vec::new(); ranges.len()];
            let mut ends = Vec::new();
            for c in data.chunks(chunk) {
                s.feed::<()>(c, |e| {
                    match e {
                        Event::Bytes(i, b) => got[i].extend_from_slice(b),
                        Event::End(i) => ends.push(i),
                        Event::Start(_) => {}
                    }
                    Ok(())
                })
                .unwrap();
            }
            for (i, r) in ranges.iter().enumerate() {
                assert_eq!(got[i], data[r.start as usize..r.end as usize], "range {i} chunk {chunk}");
            }
            assert!(s.is_done());
            assert_eq!(ends.len(), ranges.len());
        }
        // Skipping the gaps walks the same ranges.
        let mut s = RangeSplitter::new(ranges.clone());
        let mut got = vec![Vec::new(); ranges.len()];
        loop {
            let mut on = |e: Event<'_>| -> Result<(), ()> {
                if let Event::Bytes(i, bytes) = e {
                    got[i].extend_from_slice(bytes)
                }
                Ok(())
            };
            s.feed(&[], &mut on).unwrap();
            let pos = s.position() as usize;
            let Some(b) = s.next_boundary() else { break };
            if s.is_idle() {
                s.skip(b - pos as u64, &mut on).unwrap();
            } else {
                s.feed(&data[pos..b as usize], &mut on).unwrap();
            }
        }
        assert!(s.is_done());
        assert_eq!(got[0], data[0..5]);
        assert_eq!(got[3], data[40..60]);
        assert_eq!(got[5], data[90..100]);
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
