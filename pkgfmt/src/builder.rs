//! Building packages: lay out payload files, compute their SHA-1 hashes
//! (Table 69), write header + command list + signature block + payload.
//!
//! Payload sources are streamed twice — once to hash (the hashes are in the
//! signed command list, which precedes the payload), once to copy — and the
//! copy is hashed again so a source that changed in between is caught.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use sha1::{Digest, Sha1};

use crate::command::{Command, FileCommand};
use crate::command_list::CommandList;
use crate::error::Error;
use crate::header::MINOR_VERSION;
use crate::package::Prefix;
use crate::payload::STREAM_CHUNK;

/// Where the bytes of an Extract/Add command come from.
#[derive(Debug, Clone)]
pub enum PayloadSource {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl PayloadSource {
    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(match self {
            PayloadSource::File(p) => Box::new(File::open(p).map_err(|e| annotate(e, p))?),
            PayloadSource::Bytes(b) => Box::new(&b[..]),
        })
    }

    fn describe(&self) -> String {
        match self {
            PayloadSource::File(p) => p.display().to_string(),
            PayloadSource::Bytes(_) => "<in-memory>".into(),
        }
    }
}

fn annotate(e: io::Error, p: &std::path::Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", p.display()))
}

/// A package under construction: commands in order, with the payload
/// source of each Extract/Add command.
#[derive(Debug, Clone, Default)]
pub struct Builder {
    minor: u32,
    steps: Vec<(Command, Option<PayloadSource>)>,
}

/// A built, not yet written, package: the prefix (header, commands and
/// signature block) and the sources to stream as payload, in order.
pub struct Built {
    pub prefix: Prefix,
    sources: Vec<(usize, PayloadSource)>,
}

impl Builder {
    pub fn new() -> Self {
        Builder { minor: MINOR_VERSION, steps: Vec::new() }
    }

    /// Minor format version to write (default 0).
    pub fn minor(mut self, minor: u32) -> Self {
        self.minor = minor;
        self
    }

    /// Append a command that carries no payload.
    pub fn command(&mut self, c: Command) -> &mut Self {
        self.steps.push((c, None));
        self
    }

    /// Append an Extract/Add command whose payload is `source`; its offset,
    /// length and hash are filled in by [`Builder::build`].
    pub fn file(&mut self, c: Command, source: PayloadSource) -> Result<&mut Self, Error> {
        if c.file().is_none() {
            return Err(Error::Build(format!("{} does not carry a payload file", c.name())));
        }
        self.steps.push((c, Some(source)));
        Ok(self)
    }

    /// Lay out the payload (files in command order, back to back), hash
    /// every source, and produce an unsigned prefix. `progress(done, total)`
    /// reports hashed bytes.
    pub fn build(self, mut progress: impl FnMut(u64, u64)) -> Result<Built, Error> {
        check_reboot_last(self.steps.iter().map(|(c, _)| c))?;
        let mut total = 0u64;
        for (_, s) in &self.steps {
            if let Some(PayloadSource::File(p)) = s {
                total += std::fs::metadata(p).map_err(|e| annotate(e, p))?.len();
            } else if let Some(PayloadSource::Bytes(b)) = s {
                total += b.len() as u64;
            }
        }
        let mut done = 0u64;
        let mut offset = 0u64;
        let mut commands = Vec::with_capacity(self.steps.len());
        let mut sources = Vec::new();
        for (mut c, src) in self.steps {
            if let Some(src) = src {
                let (len, sha1) = hash_source(&src, |n| {
                    done += n;
                    progress(done, total)
                })?;
                let f = c.file_mut().expect("checked in Builder::file");
                f.file_offset = u32::try_from(offset).map_err(|_| too_big(offset + len))?;
                f.file_length = u32::try_from(len).map_err(|_| too_big(offset + len))?;
                f.sha1 = sha1;
                offset += len;
                sources.push((commands.len(), src));
            }
            commands.push(c);
        }
        let payload_length = u32::try_from(offset).map_err(|_| too_big(offset))?;
        let prefix = Prefix::new(self.minor, CommandList::new(commands), payload_length)?;
        Ok(Built { prefix, sources })
    }
}

fn too_big(n: u64) -> Error {
    Error::Build(format!("payload of {n} bytes does not fit the 32-bit Payload Length field (E.3)"))
}

/// E.4.8: "If used, this command MUST be the last command in the command
/// list (other than End, if present)."
pub fn check_reboot_last<'a>(commands: impl Iterator<Item = &'a Command>) -> Result<(), Error> {
    let relevant: Vec<&Command> = commands.take_while(|c| **c != Command::End).collect();
    if let Some(i) = relevant.iter().position(|c| **c == Command::Reboot) {
        if i + 1 != relevant.len() {
            return Err(Error::Build(format!("Reboot is command #{i} but must be the last command other than End (E.4.8)")));
        }
    }
    Ok(())
}

fn hash_source(src: &PayloadSource, mut progress: impl FnMut(u64)) -> Result<(u64, [u8; 20]), Error> {
    let mut r = src.open()?;
    let mut h = Sha1::new();
    let mut buf = vec![0u8; STREAM_CHUNK];
    let mut len = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        h.update(&buf[..n]);
        len += n as u64;
        progress(n as u64);
    }
    Ok((len, h.finalize().into()))
}

impl Built {
    /// Write the package: prefix, then every source streamed in order. Each
    /// source is re-hashed while copied and must match what was signed.
    pub fn write_to<W: Write>(&self, w: &mut W, mut progress: impl FnMut(u64, u64)) -> Result<u64, Error> {
        let prefix = self.prefix.to_bytes();
        w.write_all(&prefix)?;
        let total = self.prefix.header.payload_length as u64;
        let mut done = 0u64;
        for (index, src) in &self.sources {
            let f: &FileCommand = self.prefix.commands.commands[*index].file().expect("file command");
            let mut r = src.open()?.take(f.file_length as u64 + 1);
            let mut h = Sha1::new();
            let mut buf = vec![0u8; STREAM_CHUNK];
            let mut len = 0u64;
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e.into()),
                };
                len += n as u64;
                if len > f.file_length as u64 {
                    break;
                }
                h.update(&buf[..n]);
                w.write_all(&buf[..n])?;
                done += n as u64;
                progress(done, total);
            }
            let got: [u8; 20] = h.finalize().into();
            if len != f.file_length as u64 || got != f.sha1 {
                return Err(Error::Build(format!("{} changed while the package was being built", src.describe())));
            }
        }
        Ok(prefix.len() as u64 + done)
    }
}
