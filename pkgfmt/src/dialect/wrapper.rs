//! The outer wrapper, 2wire-pkgstream-notes §2: "A file either starts
//! directly with the 8-byte magic `2WIRE_SP`, or it is wrapped whole in
//! bzip2 (it starts with `BZh`). When it is wrapped, the decompressed
//! stream must start with `2WIRE_SP`." The gateway compares only the first
//! three octets with `BZh` and streams through `BZ2_bzDecompress` `[DECOMP]`.
//!
//! [`Source`] is the (decompressed) package as one stream: a wrapped file
//! is decompressed as it is read, never held whole in memory; a plain file
//! is read in place, and stretches nobody needs are skipped by seeking.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read};

use crate::error::Error;
use crate::payload::STREAM_CHUNK;

/// The bzip2 stream magic the gateway checks (§2).
pub const BZIP2_MAGIC: &[u8; 3] = b"BZh";

/// What the package was wrapped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wrapper {
    /// Starts with the preamble.
    None,
    /// Wrapped whole in bzip2.
    Bzip2,
}

impl Wrapper {
    pub fn id(self) -> &'static str {
        match self {
            Wrapper::None => "none",
            Wrapper::Bzip2 => "bzip2",
        }
    }
}

enum Inner<'a> {
    File { file: BufReader<File>, len: u64 },
    Stream(Box<dyn Read + 'a>),
}

/// The package bytes after the wrapper, read once from the start.
pub struct Source<'a> {
    inner: Inner<'a>,
    wrapper: Wrapper,
    /// Octets of the (decompressed) package read or skipped so far.
    pos: u64,
}

impl<'a> Source<'a> {
    /// A package file. Only a bzip2-wrapped one is decompressed.
    pub fn open_file(file: File) -> io::Result<Source<'static>> {
        let len = file.metadata()?.len();
        let mut file = BufReader::with_capacity(STREAM_CHUNK, file);
        let wrapped = file.fill_buf()?.starts_with(BZIP2_MAGIC);
        Ok(if wrapped { Source::bzip2(Box::new(file)) } else { Source { inner: Inner::File { file, len }, wrapper: Wrapper::None, pos: 0 } })
    }

    /// A package arriving as a stream.
    pub fn from_reader(mut r: impl Read + 'a) -> io::Result<Source<'a>> {
        let mut head = Vec::with_capacity(BZIP2_MAGIC.len());
        (&mut r).take(BZIP2_MAGIC.len() as u64).read_to_end(&mut head)?;
        let wrapped = head == BZIP2_MAGIC;
        let r = Box::new(Cursor::new(head).chain(r));
        Ok(if wrapped { Source::bzip2(r) } else { Source { inner: Inner::Stream(r), wrapper: Wrapper::None, pos: 0 } })
    }

    fn bzip2(r: Box<dyn Read + 'a>) -> Source<'a> {
        // One bzip2 stream, as the gateway decompresses (§2).
        let decoder = bzip2::read::BzDecoder::new(BufReader::with_capacity(STREAM_CHUNK, r));
        Source { inner: Inner::Stream(Box::new(decoder)), wrapper: Wrapper::Bzip2, pos: 0 }
    }

    pub fn wrapper(&self) -> Wrapper {
        self.wrapper
    }

    /// Octets of the package read or skipped so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Pass over the next `n` octets (seeking in a plain file, else
    /// reading and dropping them). Returns how many there were.
    pub fn skip(&mut self, n: u64) -> io::Result<u64> {
        let done = match &mut self.inner {
            Inner::File { file, len } => {
                let k = n.min(len.saturating_sub(self.pos));
                let mut left = k;
                while left > 0 {
                    let step = left.min(i64::MAX as u64);
                    file.seek_relative(step as i64)?;
                    left -= step;
                }
                k
            }
            Inner::Stream(r) => io::copy(&mut r.take(n), &mut io::sink()).map_err(|e| wrap_error(self.wrapper, e))?,
        };
        self.pos += done;
        Ok(done)
    }

    /// Read until `buf` is full or the package ends; returns the count.
    pub fn read_up_to(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    /// An I/O error while reading this source, as a package error: a
    /// damaged bzip2 stream is malformed input, not an I/O failure.
    pub fn error(&self, e: io::Error) -> Error {
        if self.wrapper == Wrapper::Bzip2 && matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof) {
            Error::Wrapper(e.to_string())
        } else {
            Error::Io(e)
        }
    }
}

fn wrap_error(wrapper: Wrapper, e: io::Error) -> io::Error {
    match wrapper {
        Wrapper::Bzip2 if e.kind() != io::ErrorKind::Interrupted => io::Error::new(io::ErrorKind::InvalidData, format!("bzip2 wrapper: {e}")),
        _ => e,
    }
}

impl Read for Source<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.inner {
            Inner::File { file, .. } => file.read(buf)?,
            Inner::Stream(r) => r.read(buf).map_err(|e| wrap_error(self.wrapper, e))?,
        };
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn bz(data: &[u8]) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn plain_and_wrapped_read_the_same() {
        let data: Vec<u8> = b"2WIRE_SP".iter().copied().chain((0..100_000u32).map(|i| (i % 251) as u8)).collect();
        for (bytes, wrapper) in [(data.clone(), Wrapper::None), (bz(&data), Wrapper::Bzip2)] {
            let mut s = Source::from_reader(Cursor::new(bytes.clone())).unwrap();
            assert_eq!(s.wrapper(), wrapper);
            let mut head = [0u8; 8];
            assert_eq!(s.read_up_to(&mut head).unwrap(), 8);
            assert_eq!(&head, b"2WIRE_SP");
            assert_eq!(s.skip(50_000).unwrap(), 50_000);
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).unwrap();
            assert_eq!(rest, data[50_008..]);
            assert_eq!(s.position(), data.len() as u64);
            assert_eq!(s.skip(10).unwrap(), 0);

            let tmp = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(tmp.path(), &bytes).unwrap();
            let mut s = Source::open_file(File::open(tmp.path()).unwrap()).unwrap();
            assert_eq!(s.wrapper(), wrapper);
            assert_eq!(s.skip(100).unwrap(), 100);
            let mut rest = Vec::new();
            s.read_to_end(&mut rest).unwrap();
            assert_eq!(rest, data[100..]);
            assert_eq!(s.skip(10).unwrap(), 0);
        }
    }

    #[test]
    fn a_damaged_wrapper_is_malformed_not_io() {
        let mut bytes = bz(&[7u8; 10_000]);
        let cut = bytes.len() / 2;
        bytes.truncate(cut);
        let mut s = Source::from_reader(Cursor::new(bytes)).unwrap();
        let e = s.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(matches!(s.error(e), Error::Wrapper(_)));
        let mut s = Source::from_reader(Cursor::new(b"BZh9garbage-garbage".to_vec())).unwrap();
        let e = s.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(matches!(s.error(e), Error::Wrapper(m) if m.contains("bzip2")));
    }
}
