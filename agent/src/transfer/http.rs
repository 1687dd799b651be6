//! The file-transfer client (A.3.2.8 / A.4.1.5: "HTTP transport MUST be
//! supported"): HTTP and HTTPS GET and PUT with the Download/Upload
//! Username and Password answering a Basic or Digest challenge (3.4.4
//! schemes, reused from [`crate::digest`]).
//!
//! A GET body is read by a helper thread into a small bounded channel, so
//! the reading side ([`BodyReader`]) never blocks longer than a tick: the
//! installer engine checks its E.4.7 timers between reads, and a stalled
//! file server is given up after the configured stall limit even if no
//! package timeout applies. Memory is bounded by the channel (4 chunks).

use std::io::Read;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use foundation::random::RandomError;

use crate::auth::{AuthError, Authenticator};
use crate::progress::Progress;

/// Why a transfer's HTTP exchange failed. `fault_code` maps it to the
/// A.5.1 code for a download; uploads map 9010 to 9011.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// 9013: not http:// or https://.
    #[error("unsupported transfer protocol in {0:?}: only http:// and https:// are supported")]
    UnsupportedProtocol(String),
    /// 9012.
    #[error("file server authentication failed: {0}")]
    Auth(String),
    #[error("file server answered HTTP {status} {text}")]
    Status { status: u16, text: String },
    #[error("cannot reach the file server: {0}")]
    Connect(String),
    /// 9002: no cnonce could be made.
    #[error(transparent)]
    Random(RandomError),
}

impl FetchError {
    pub fn fault_code(&self) -> u32 {
        match self {
            FetchError::UnsupportedProtocol(_) => 9013,
            FetchError::Auth(_) => 9012,
            FetchError::Random(_) => 9002,
            _ => 9010,
        }
    }
}

/// Check the scheme of a transfer URL (A.3.2.8, A.4.1.5; 2.3.2: other
/// transports are optional and not supported here).
pub fn check_url(url: &str) -> Result<(), FetchError> {
    let lower = url.trim().to_ascii_lowercase();
    if (lower.starts_with("http://") || lower.starts_with("https://")) && url.len() > "http://".len() {
        Ok(())
    } else {
        Err(FetchError::UnsupportedProtocol(url.to_string()))
    }
}

/// How to reach the file server.
#[derive(Clone)]
pub struct Client {
    pub username: String,
    pub password: String,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Give up when no data arrives for this long (and connect timeout).
    pub stall: Duration,
}

impl Client {
    fn agent(&self) -> ureq::Agent {
        let mut b = ureq::AgentBuilder::new()
            .timeout_connect(self.stall)
            // A backstop for the reader thread; the reading side gives up
            // at `stall` by itself.
            .timeout_read(self.stall + Duration::from_secs(1))
            .timeout_write(self.stall)
            .redirects(5)
            .user_agent(concat!("cpekit/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = &self.tls {
            b = b.tls_config(tls.clone());
        }
        b.build()
    }

    /// Send `method` to `url`, answering a 401 challenge with the
    /// credentials ([`crate::auth`]). `send` makes the request (it is
    /// called again for the authenticated retry).
    #[allow(clippy::result_large_err)]
    fn exchange(&self, method: &str, url: &str, send: impl FnMut(ureq::Request) -> Result<ureq::Response, ureq::Error>) -> Result<ureq::Response, FetchError> {
        check_url(url)?;
        let mut auth = Authenticator::new(&self.username, &self.password).requiring_credentials();
        auth.request(&self.agent(), method, url, send).map_err(|e| match e {
            AuthError::Refused => FetchError::Auth("the file server refused the Username/Password (HTTP 401)".into()),
            AuthError::NoCredentials => FetchError::Auth("the file server requires authentication but no Username was given".into()),
            AuthError::Challenge(e) => FetchError::Auth(format!("unusable challenge: {e}")),
            AuthError::Random(e) => FetchError::Random(e),
            AuthError::Http(e) => match *e {
                ureq::Error::Status(status, resp) => FetchError::Status { status, text: resp.status_text().to_string() },
                ureq::Error::Transport(t) => FetchError::Connect(t.to_string()),
            },
        })
    }

    /// GET `url`; the body streams through the returned reader, counted
    /// into `progress`.
    // ureq's own error type, handled inside `exchange`.
    #[allow(clippy::result_large_err)]
    pub fn get(&self, url: &str, progress: Progress) -> Result<BodyReader, FetchError> {
        let resp = self.exchange("GET", url, |r| r.call())?;
        let length = resp.header("Content-Length").and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(n) = length {
            progress.update(|s| {
                if s.total == 0 {
                    s.total = n
                }
            });
        }
        Ok(BodyReader::spawn(resp.into_reader(), self.stall, progress, length))
    }

    /// PUT `body` to `url` (A.4.1.5: the Upload destination).
    #[allow(clippy::result_large_err)]
    /// Send `body` with `method` (PUT or POST: Upload, A.4.1.5).
    pub fn send(&self, method: &str, url: &str, content_type: &str, body: &[u8]) -> Result<u16, FetchError> {
        let resp = self.exchange(method, url, |r| r.set("Content-Type", content_type).send_bytes(body))?;
        let status = resp.status();
        // Drain so the server sees a completed exchange.
        let _ = std::io::copy(&mut resp.into_reader().take(1 << 20), &mut std::io::sink());
        Ok(status)
    }
}

/// Largest chunk handed from the receiving thread to the reader.
const CHUNK: usize = 64 * 1024;

/// ureq 2 hands a body out through its 8 KiB `BufReader`, one recv(2) per
/// read: a read this long means the socket may hold more.
const GATHER_READ: usize = 8 * 1024;

enum Msg {
    Data(Vec<u8>),
    End,
    Failed(std::io::Error),
}

/// A GET body being received (see the module doc).
pub struct BodyReader {
    rx: Receiver<Msg>,
    chunk: Vec<u8>,
    pos: usize,
    done: bool,
    last_data: Instant,
    stall: Duration,
    tick: Duration,
    progress: Progress,
    /// Content-Length, if the server sent one.
    pub length: Option<u64>,
    /// Bytes delivered so far.
    pub bytes: u64,
}

impl BodyReader {
    fn spawn(mut inner: Box<dyn Read + Send + Sync>, stall: Duration, progress: Progress, length: Option<u64>) -> BodyReader {
        let (tx, rx) = mpsc::sync_channel::<Msg>(4);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; CHUNK];
            let mut filled = 0;
            loop {
                let end = match inner.read(&mut buf[filled..]) {
                    Ok(0) => Some(Msg::End),
                    Ok(n) => {
                        filled += n;
                        // A full read: more is probably waiting; gather it
                        // into this chunk (fewer, larger hand-offs and
                        // writes). A short one drained the socket: hand
                        // over what we have before a read that may block.
                        if n >= GATHER_READ && filled < buf.len() {
                            continue;
                        }
                        None
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => Some(Msg::Failed(e)),
                };
                // The reader was dropped (transfer given up): stop.
                if filled > 0 && tx.send(Msg::Data(buf[..filled].to_vec())).is_err() {
                    return;
                }
                filled = 0;
                if let Some(m) = end {
                    let _ = tx.send(m);
                    return;
                }
            }
        });
        BodyReader {
            rx,
            chunk: Vec::new(),
            pos: 0,
            done: false,
            last_data: Instant::now(),
            stall,
            tick: Duration::from_millis(100),
            progress,
            length,
            bytes: 0,
        }
    }
}

impl Read for BodyReader {
    /// Returns `Interrupted` when nothing arrived within a tick (callers
    /// retry after checking their timers) and `TimedOut` after the stall
    /// limit.
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.pos >= self.chunk.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv_timeout(self.tick) {
                Ok(Msg::Data(d)) => {
                    self.chunk = d;
                    self.pos = 0;
                    self.last_data = Instant::now();
                }
                Ok(Msg::End) | Err(RecvTimeoutError::Disconnected) => {
                    self.done = true;
                    if let Some(n) = self.length.filter(|n| self.bytes < *n) {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("the file server closed the connection after {} of {n} bytes", self.bytes),
                        ));
                    }
                    return Ok(0);
                }
                Ok(Msg::Failed(e)) => {
                    self.done = true;
                    return Err(std::io::Error::new(e.kind(), format!("receiving from the file server after {} bytes: {e}", self.bytes)));
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.last_data.elapsed() > self.stall {
                        self.done = true;
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            format!("no data from the file server for {:?} (after {} bytes)", self.stall, self.bytes),
                        ));
                    }
                    return Err(std::io::ErrorKind::Interrupted.into());
                }
            }
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        self.bytes += n as u64;
        let bytes = self.bytes;
        self.progress.update(|s| s.bytes = bytes);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_schemes() {
        assert!(check_url("http://h/f").is_ok());
        assert!(check_url("HTTPS://h/f").is_ok());
        for bad in ["ftp://h/f", "tftp://h/f", "file:///etc/passwd", "http://", ""] {
            let e = check_url(bad).unwrap_err();
            assert_eq!(e.fault_code(), 9013, "{bad}");
        }
        assert_eq!(crate::digest::request_uri("http://h:1/a/b?c=d"), "/a/b?c=d");
    }

    #[test]
    fn body_reader_ticks_then_stalls() {
        // A source that yields 3 bytes then blocks "forever".
        struct Slow(u8);
        impl Read for Slow {
            fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    self.0 = 1;
                    b[..3].copy_from_slice(b"abc");
                    return Ok(3);
                }
                std::thread::sleep(Duration::from_secs(5));
                Ok(0)
            }
        }
        let p = Progress::new();
        let mut r = BodyReader::spawn(Box::new(Slow(0)), Duration::from_millis(300), p.clone(), Some(10));
        let mut buf = [0u8; 8];
        let mut got = Vec::new();
        let mut interrupted = 0;
        let err = loop {
            match r.read(&mut buf) {
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => interrupted += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(got, b"abc");
        assert!(interrupted >= 1, "ticks let the caller check its timers");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("after 3 bytes"), "{err}");
        assert_eq!(p.snapshot().bytes, 3);
    }

    #[test]
    fn full_reads_are_gathered_into_chunks() {
        // ureq hands a body out 8 KiB per read: those reach the reader in
        // CHUNK-sized pieces (not one channel hand-off and one staged-file
        // write per 8 KiB), and nothing is lost or reordered.
        struct Pieces(Vec<u8>, usize);
        impl Read for Pieces {
            fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
                let n = b.len().min(GATHER_READ).min(self.0.len() - self.1);
                b[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        let data: Vec<u8> = (0..(CHUNK * 3 + 5000)).map(|i| (i % 251) as u8).collect();
        let p = Progress::new();
        let mut r = BodyReader::spawn(Box::new(Pieces(data.clone(), 0)), Duration::from_secs(5), p, Some(data.len() as u64));
        let mut out = Vec::new();
        let mut sizes = Vec::new();
        let mut buf = vec![0u8; 4 * CHUNK];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    sizes.push(n);
                    out.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert!(out == data, "body altered");
        assert_eq!(sizes, [CHUNK, CHUNK, CHUNK, 5000]);
    }

    #[test]
    fn short_body_is_an_error() {
        let p = Progress::new();
        let mut r = BodyReader::spawn(Box::new(&b"12345"[..]), Duration::from_secs(5), p, Some(9));
        let mut out = Vec::new();
        let e = loop {
            let mut b = [0u8; 4];
            match r.read(&mut b) {
                Ok(0) => panic!("EOF accepted"),
                Ok(n) => out.extend_from_slice(&b[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => break e,
            }
        };
        assert_eq!(out, b"12345");
        assert!(e.to_string().contains("5 of 9"), "{e}");
    }
}
