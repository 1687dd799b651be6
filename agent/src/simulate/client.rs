//! The simulator's non-blocking HTTP client side of a session (3.4), the
//! event-driven counterpart of [`crate::http::AcsConnection`] with the same
//! rules:
//!
//! * 3.4.2: one TCP connection for the whole session (HTTP/1.1
//!   keep-alive; if the ACS closes it between POSTs, the next POST opens a
//!   new one), cookies returned on every POST and discarded with the
//!   connection object at the end of the session;
//! * 3.4.4: Basic or Digest on a 401 challenge, answered once per fresh
//!   challenge (a stale nonce once more), pre-emptively on later POSTs with
//!   the next nonce count — through [`crate::digest`];
//! * 3.7.1.4: no response within the response timeout fails the POST.
//!
//! [`Exchange`] is sans-IO (bytes in, bytes out); [`Connection`] adds the
//! `mio` socket. Plain `http://` only: the event-driven simulator does not
//! speak TLS (see the module docs of [`super`]).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};

use crate::digest::{self, Challenge, Scheme};
use crate::http::{TransportError, MAX_RESPONSE_BYTES};

/// Largest response head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Most header fields in a response.
const MAX_HEADERS: usize = 48;
/// Most cookies kept for one session.
const MAX_COOKIES: usize = 16;

/// Where the ACS is: its resolved address and what goes into the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addr: SocketAddr,
    /// `Host:` header value.
    pub host: String,
    /// Request-URI (path and query).
    pub uri: String,
}

impl Target {
    /// Parse and resolve an `http://host[:port]/path` URL.
    pub fn parse(url: &str) -> Result<Target, TransportError> {
        let err = |message: &str| TransportError::Connect { url: url.to_string(), message: message.to_string() };
        let Some(rest) = url.strip_prefix("http://").or_else(|| url.strip_prefix("HTTP://")) else {
            return Err(err("the event-driven simulator speaks plain http:// only"));
        };
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = path.split('#').next().unwrap_or("/");
        let uri = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
        if authority.is_empty() || authority.contains('@') {
            return Err(err("no host (or user info) in the URL"));
        }
        let with_port = if authority.starts_with('[') {
            if authority.contains("]:") {
                authority.to_string()
            } else {
                format!("{authority}:80")
            }
        } else if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port.to_socket_addrs().map_err(|e| err(&e.to_string()))?.next().ok_or_else(|| err("host has no address"))?;
        Ok(Target { addr, host: authority.to_string(), uri })
    }
}

enum Auth {
    None,
    Basic,
    Digest { challenge: Challenge, nc: u32 },
}

/// A parsed response.
#[derive(Debug, Default)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub body: String,
    /// The server will close the connection (or the body ran to EOF).
    pub close: bool,
    pub www_authenticate: Vec<String>,
    pub set_cookie: Vec<String>,
}

enum BodyLen {
    None,
    Length(usize),
    Chunked,
    ToEof,
}

/// Try to parse a complete response from `buf`; `eof`: the peer closed.
/// `Ok(None)`: read more. `Ok(Some((resp, used)))`.
pub fn parse_response(buf: &[u8], eof: bool) -> Result<Option<(Response, usize)>, TransportError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut r = httparse::Response::new(&mut headers);
    let bad = |m: String| TransportError::Read(io::Error::new(io::ErrorKind::InvalidData, m));
    let head_len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_HEAD {
                return Err(bad(format!("response head longer than {MAX_HEAD} bytes")));
            }
            if eof {
                return Err(bad(if buf.is_empty() { "connection closed before a response".into() } else { "truncated response head".into() }));
            }
            return Ok(None);
        }
        Err(e) => return Err(bad(format!("malformed response head: {e}"))),
    };
    let status = r.code.unwrap_or(0);
    let mut resp = Response { status, reason: r.reason.unwrap_or("").to_string(), close: r.version == Some(0), ..Response::default() };
    let mut len = if status == 204 || status == 304 || (100..200).contains(&status) { BodyLen::None } else { BodyLen::ToEof };
    for h in r.headers.iter() {
        let v = std::str::from_utf8(h.value).map_err(|_| bad("non-UTF-8 header value".into()))?.trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            if !matches!(len, BodyLen::None | BodyLen::Chunked) {
                let n: u64 = v.parse().map_err(|_| bad(format!("bad Content-Length {v:?}")))?;
                if n > MAX_RESPONSE_BYTES {
                    return Err(TransportError::TooLarge);
                }
                len = BodyLen::Length(n as usize);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if v.eq_ignore_ascii_case("chunked") {
                if !matches!(len, BodyLen::None) {
                    len = BodyLen::Chunked;
                }
            } else {
                return Err(bad(format!("unsupported Transfer-Encoding {v:?}")));
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            for t in v.split(',').map(str::trim) {
                if t.eq_ignore_ascii_case("close") {
                    resp.close = true;
                } else if t.eq_ignore_ascii_case("keep-alive") {
                    resp.close = false;
                }
            }
        } else if h.name.eq_ignore_ascii_case("www-authenticate") {
            resp.www_authenticate.push(v.to_string());
        } else if h.name.eq_ignore_ascii_case("set-cookie") {
            resp.set_cookie.push(v.to_string());
        }
    }
    let rest = &buf[head_len..];
    let (body, used): (Vec<u8>, usize) = match len {
        BodyLen::None => (Vec::new(), 0),
        BodyLen::Length(n) => {
            if rest.len() < n {
                if eof {
                    return Err(bad("connection closed inside the response body".into()));
                }
                return Ok(None);
            }
            (rest[..n].to_vec(), n)
        }
        BodyLen::ToEof => {
            if rest.len() as u64 > MAX_RESPONSE_BYTES {
                return Err(TransportError::TooLarge);
            }
            if !eof {
                return Ok(None);
            }
            resp.close = true;
            (rest.to_vec(), rest.len())
        }
        BodyLen::Chunked => match dechunk(rest)? {
            Some(x) => x,
            None if eof => return Err(bad("connection closed inside a chunked body".into())),
            None => return Ok(None),
        },
    };
    resp.body = String::from_utf8(body).map_err(|_| bad("response body is not UTF-8".into()))?;
    Ok(Some((resp, head_len + used)))
}

/// Decode a complete chunked body (RFC 7230 4.1; trailers skipped).
fn dechunk(mut buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, TransportError> {
    let bad = |m: &str| TransportError::Read(io::Error::new(io::ErrorKind::InvalidData, m.to_string()));
    let start_len = buf.len();
    let mut out = Vec::new();
    loop {
        let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
            return if buf.len() > 1024 { Err(bad("chunk size line too long")) } else { Ok(None) };
        };
        let line = std::str::from_utf8(&buf[..eol]).map_err(|_| bad("bad chunk size"))?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).map_err(|_| bad("bad chunk size"))?;
        buf = &buf[eol + 2..];
        if size == 0 {
            // Trailer fields up to an empty line.
            loop {
                let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else { return Ok(None) };
                buf = &buf[eol + 2..];
                if eol == 0 {
                    return Ok(Some((out, start_len - buf.len())));
                }
            }
        }
        if (out.len() + size) as u64 > MAX_RESPONSE_BYTES {
            return Err(TransportError::TooLarge);
        }
        if buf.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&buf[..size]);
        if &buf[size..size + 2] != b"\r\n" {
            return Err(bad("chunk not followed by CRLF"));
        }
        buf = &buf[size + 2..];
    }
}

/// The sans-IO part of one session's HTTP: builds requests, consumes
/// responses, answers challenges, keeps cookies.
pub struct Exchange {
    target: Target,
    username: String,
    password: String,
    auth: Auth,
    cookies: Vec<(String, String)>,
    /// The POST body in flight (kept for a 401 retry).
    body: String,
    /// Challenges answered for the POST in flight.
    answered: u32,
    /// Challenges answered in this session.
    pub challenges: u32,
}

/// What to do after a response.
pub enum Next {
    /// The POST's response body.
    Done(String),
    /// Send the request again (it was challenged), on a new connection if
    /// `reconnect`.
    Retry { reconnect: bool },
}

impl Exchange {
    pub fn new(target: Target, username: String, password: String) -> Exchange {
        Exchange { target, username, password, auth: Auth::None, cookies: Vec::new(), body: String::new(), answered: 0, challenges: 0 }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Start a POST of `body` (empty: the empty POST of 3.7.1.3).
    pub fn begin(&mut self, body: String) {
        self.body = body;
        self.answered = 0;
    }

    /// The request bytes for the POST in flight (an error only when no
    /// Digest cnonce can be made).
    pub fn request(&mut self) -> Result<Vec<u8>, TransportError> {
        use std::fmt::Write as _;
        let mut h = String::with_capacity(256);
        let _ = write!(h, "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: cpekit/{}\r\n", self.target.uri, self.target.host, env!("CARGO_PKG_VERSION"));
        if !self.body.is_empty() {
            // 3.4.1: SOAPAction with no value.
            h.push_str("Content-Type: text/xml; charset=\"utf-8\"\r\nSOAPAction: \r\n");
        }
        let _ = write!(h, "Content-Length: {}\r\n", self.body.len());
        if !self.cookies.is_empty() {
            h.push_str("Cookie: ");
            for (i, (n, v)) in self.cookies.iter().enumerate() {
                if i > 0 {
                    h.push_str("; ");
                }
                let _ = write!(h, "{n}={v}");
            }
            h.push_str("\r\n");
        }
        let auth = match &mut self.auth {
            Auth::None => None,
            Auth::Basic => Some(digest::basic_authorization(&self.username, &self.password)),
            Auth::Digest { challenge, nc } => {
                *nc += 1;
                Some(digest::digest_authorization(challenge, "POST", &self.target.uri, &self.username, &self.password, *nc, &digest::cnonce()?))
            }
        };
        if let Some(a) = auth {
            let _ = write!(h, "Authorization: {a}\r\n");
        }
        h.push_str("\r\n");
        let mut out = h.into_bytes();
        out.extend_from_slice(self.body.as_bytes());
        Ok(out)
    }

    fn keep_cookies(&mut self, set_cookie: &[String]) {
        for c in set_cookie {
            let pair = c.split(';').next().unwrap_or("").trim();
            let Some((n, v)) = pair.split_once('=') else { continue };
            let (n, v) = (n.trim(), v.trim());
            if n.is_empty() {
                continue;
            }
            if let Some(slot) = self.cookies.iter_mut().find(|(k, _)| k == n) {
                slot.1 = v.to_string();
            } else if self.cookies.len() < MAX_COOKIES {
                self.cookies.push((n.to_string(), v.to_string()));
            }
        }
    }

    /// A complete response to the POST in flight.
    pub fn on_response(&mut self, resp: Response) -> Result<Next, TransportError> {
        self.keep_cookies(&resp.set_cookie);
        match resp.status {
            200..=299 => Ok(Next::Done(resp.body)),
            401 => {
                let refs: Vec<&str> = resp.www_authenticate.iter().map(String::as_str).collect();
                let scheme = digest::pick(&refs).map_err(|e| TransportError::Challenge(e.to_string()))?;
                let stale = matches!(&scheme, Scheme::Digest(c) if c.stale);
                // One retry per fresh challenge; a stale nonce may be renewed once more.
                if self.answered >= 1 && !(stale && self.answered < 2) {
                    return Err(TransportError::AuthFailed);
                }
                self.answered += 1;
                self.challenges += 1;
                self.auth = match scheme {
                    Scheme::Basic { .. } => Auth::Basic,
                    Scheme::Digest(challenge) => Auth::Digest { challenge, nc: 0 },
                };
                Ok(Next::Retry { reconnect: resp.close })
            }
            code => Err(TransportError::Status { status: code, text: resp.reason }),
        }
    }
}

/// One session's TCP connection to the ACS (registered with the caller's
/// `mio` poll under the caller's token).
pub struct Connection {
    pub stream: mio::net::TcpStream,
    out: Vec<u8>,
    written: usize,
    inbuf: Vec<u8>,
    /// Requests already answered on this connection (a reused connection
    /// closed by the peer before answering is retried once on a new one).
    pub answered: u32,
}

/// What a readiness event produced.
pub enum Io {
    /// Nothing complete yet.
    Pending,
    Response(Response),
}

impl Connection {
    pub fn connect(addr: SocketAddr) -> io::Result<Connection> {
        let stream = mio::net::TcpStream::connect(addr)?;
        Ok(Connection { stream, out: Vec::new(), written: 0, inbuf: Vec::new(), answered: 0 })
    }

    /// Queue a request (written as the socket allows).
    pub fn send(&mut self, bytes: Vec<u8>) {
        self.out = bytes;
        self.written = 0;
    }

    /// Write what is queued; returns whether everything went out. Called
    /// right after `connect` too: on loopback the handshake is usually done
    /// by then, and a connection still in progress just says WouldBlock
    /// (a refused one, an error). Requests go out in one write each and the
    /// previous response was read first, so Nagle never delays them: no
    /// TCP_NODELAY (one system call less per session).
    pub fn flush(&mut self) -> io::Result<bool> {
        while self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "connection closed while sending")),
                Ok(n) => self.written += n,
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::NotConnected) => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Read what is available and try to complete a response. Stops at a
    /// complete response: the ACS sends nothing more before our next
    /// request (a close arrives as a new readiness event).
    pub fn read(&mut self) -> Result<Io, TransportError> {
        let mut chunk = [0u8; 8192];
        loop {
            let eof = match self.stream.read(&mut chunk) {
                Ok(0) => true,
                Ok(n) => {
                    self.inbuf.extend_from_slice(&chunk[..n]);
                    if self.inbuf.len() as u64 > MAX_RESPONSE_BYTES + MAX_HEAD as u64 {
                        return Err(TransportError::TooLarge);
                    }
                    false
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Io::Pending),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(Io::Pending),
                Err(e) => return Err(TransportError::Read(e)),
            };
            if let Some((mut resp, used)) = parse_response(&self.inbuf, eof)? {
                self.inbuf.drain(..used);
                resp.close |= eof;
                self.answered += 1;
                return Ok(Io::Response(resp));
            }
            if eof {
                return Err(TransportError::Read(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed before a response")));
            }
        }
    }

    /// Nothing was received on this connection for the request in flight.
    pub fn nothing_received(&self) -> bool {
        self.inbuf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("http://127.0.0.1:7547/acs?x=1#f").unwrap();
        assert_eq!(t.addr, "127.0.0.1:7547".parse().unwrap());
        assert_eq!((t.host.as_str(), t.uri.as_str()), ("127.0.0.1:7547", "/acs?x=1"));
        let t = Target::parse("http://127.0.0.1").unwrap();
        assert_eq!((t.addr.port(), t.uri.as_str()), (80, "/"));
        assert_eq!(Target::parse("http://[::1]:9/a").unwrap().addr, "[::1]:9".parse().unwrap());
        assert!(Target::parse("https://127.0.0.1/").is_err());
        assert!(Target::parse("http://u:p@127.0.0.1/").is_err());
    }

    #[test]
    fn responses_length_chunked_eof_and_204() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: s=1; Path=/\r\n\r\nhelloNEXT";
        let (resp, used) = parse_response(r, false).unwrap().unwrap();
        assert_eq!((resp.status, resp.body.as_str(), used, resp.close), (200, "hello", r.len() - 4, false));
        assert_eq!(resp.set_cookie, vec!["s=1; Path=/".to_string()]);
        assert!(parse_response(&r[..30], false).unwrap().is_none());
        assert!(parse_response(&r[..30], true).is_err());
        let c = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n";
        let (resp, used) = parse_response(c, false).unwrap().unwrap();
        assert_eq!((resp.body.as_str(), used), ("abcde", c.len()));
        assert!(parse_response(&c[..c.len() - 2], false).unwrap().is_none());
        let e = b"HTTP/1.0 200 OK\r\n\r\nall of it";
        assert!(parse_response(e, false).unwrap().is_none());
        let (resp, _) = parse_response(e, true).unwrap().unwrap();
        assert_eq!((resp.body.as_str(), resp.close), ("all of it", true));
        let r204 = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\nNEXT";
        let (resp, used) = parse_response(r204, false).unwrap().unwrap();
        assert_eq!((resp.status, resp.body.as_str(), resp.close, used), (204, "", true, r204.len() - 4));
        let big = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", MAX_RESPONSE_BYTES + 1);
        assert!(matches!(parse_response(big.as_bytes(), false), Err(TransportError::TooLarge)));
        assert!(parse_response(b"HTTX/1.1 200 OK\r\n\r\n", false).is_err());
        assert!(parse_response(&vec![b'a'; MAX_HEAD + 1], false).is_err());
    }

    #[test]
    fn requests_cookies_and_challenges() {
        let t = Target::parse("http://127.0.0.1:9/acs").unwrap();
        let mut x = Exchange::new(t, "u".into(), "p".into());
        x.begin("<x/>".into());
        let req = String::from_utf8(x.request().unwrap()).unwrap();
        assert!(req.starts_with("POST /acs HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"), "{req}");
        assert!(req.contains("SOAPAction: \r\nContent-Length: 4\r\n") && req.ends_with("\r\n\r\n<x/>"), "{req}");
        assert!(!req.contains("Authorization") && !req.contains("Cookie"));
        // A Digest challenge with a cookie: retry, authenticated, cookie returned.
        let mut srv = digest::Server::new("acs").unwrap();
        let ch = srv.challenge(std::time::Instant::now(), false).unwrap();
        let resp = Response { status: 401, www_authenticate: vec![ch], set_cookie: vec!["sid=42; HttpOnly".into()], ..Response::default() };
        assert!(matches!(x.on_response(resp).unwrap(), Next::Retry { reconnect: false }));
        let req = String::from_utf8(x.request().unwrap()).unwrap();
        let auth = req.lines().find_map(|l| l.strip_prefix("Authorization: ")).unwrap();
        assert_eq!(srv.verify_request(auth, "POST", Some("/acs"), "u", "p", std::time::Instant::now()), digest::Verdict::Ok);
        assert!(req.contains("Cookie: sid=42\r\n"));
        // A second fresh challenge for the same POST: credentials refused.
        let again = Response { status: 401, www_authenticate: vec![srv.challenge(std::time::Instant::now(), false).unwrap()], ..Response::default() };
        assert!(matches!(x.on_response(again), Err(TransportError::AuthFailed)));
        // The next POST authenticates pre-emptively with nc 2; an empty POST has no Content-Type.
        x.begin(String::new());
        let req = String::from_utf8(x.request().unwrap()).unwrap();
        assert!(req.contains("nc=00000002") && !req.contains("Content-Type") && req.contains("Content-Length: 0\r\n"), "{req}");
        assert!(matches!(
            x.on_response(Response { status: 500, reason: "Oops".into(), ..Response::default() }),
            Err(TransportError::Status { status: 500, .. })
        ));
        match x.on_response(Response { status: 204, ..Response::default() }).unwrap() {
            Next::Done(b) => assert!(b.is_empty()),
            Next::Retry { .. } => panic!(),
        }
    }
}
