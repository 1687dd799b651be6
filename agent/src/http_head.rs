//! The HTTP/1.x request head parser shared by the agent's two servers: the
//! Connection Request server ([`crate::connreq`], 3.2.2) and the LAN web
//! server ([`crate::lan`], Appendix D). Sans-IO: bytes in, a parsed head (or
//! why not) out; a head longer than [`MAX_HEAD_LEN`] bytes or with more
//! than 32 header fields is refused.

/// Largest request head (request line + headers) accepted. A Connection
/// Request with Digest credentials is well under 1 KiB.
pub const MAX_HEAD_LEN: usize = 8192;
/// Most header fields in one request.
const MAX_HEADERS: usize = 32;

/// A parsed HTTP/1.x request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// The request-target exactly as sent (origin-form).
    pub target: String,
    /// HTTP minor version (0 or 1).
    pub minor_version: u8,
    /// Header fields, names lower-cased, values with surrounding whitespace
    /// removed.
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The path part of the target (the query is ignored: 3.2.2 says any
    /// data in the request SHOULD be ignored).
    pub fn path(&self) -> &str {
        self.target.split_once('?').map_or(self.target.as_str(), |(p, _)| p)
    }

    /// Whether the client wants the connection closed after this request.
    pub fn wants_close(&self) -> bool {
        let conn = self.header_values("connection").flat_map(|v| v.split(',')).map(str::trim);
        let mut close = self.minor_version == 0;
        for token in conn {
            if token.eq_ignore_ascii_case("close") {
                return true;
            }
            if token.eq_ignore_ascii_case("keep-alive") {
                close = false;
            }
        }
        close
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeadError {
    #[error("request head longer than {MAX_HEAD_LEN} bytes")]
    TooLarge,
    #[error("more than {MAX_HEADERS} header fields")]
    TooManyHeaders,
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("unsupported HTTP version")]
    Version,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parse a request head from the start of `buf`. `Ok(None)`: incomplete,
/// read more. `Ok(Some((head, n)))`: the head took the first `n` bytes.
/// Strict (CRLF line ends, no obs-fold, ASCII only): a Connection Request
/// comes from an ACS's HTTP library, anything odd is refused.
pub fn parse_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let scan = &buf[..buf.len().min(MAX_HEAD_LEN)];
    let Some(end) = scan.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() >= MAX_HEAD_LEN { Err(HeadError::TooLarge) } else { Ok(None) };
    };
    let head = &buf[..end];
    if !head.iter().all(|&b| b == b'\r' || b == b'\n' || b == b'\t' || (0x20..0x7f).contains(&b)) {
        return Err(HeadError::Malformed("non-ASCII or control byte in head"));
    }
    // Checked ASCII above.
    let text = std::str::from_utf8(head).map_err(|_| HeadError::Malformed("not ASCII"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(HeadError::Malformed("bad request line"));
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(HeadError::Malformed("bad method"));
    }
    if !target.starts_with('/') || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(HeadError::Malformed("bad request-target"));
    }
    let minor_version = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        v if v.starts_with("HTTP/") => return Err(HeadError::Version),
        _ => return Err(HeadError::Malformed("bad HTTP version")),
    };
    let mut headers = Vec::new();
    for line in lines {
        if line.contains('\n') {
            return Err(HeadError::Malformed("bare LF"));
        }
        if line.starts_with([' ', '\t']) {
            return Err(HeadError::Malformed("obsolete line folding"));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(HeadError::Malformed("header without ':'"));
        };
        // RFC 7230 3.2.4: no whitespace between name and colon.
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(HeadError::Malformed("bad header name"));
        }
        if headers.len() >= MAX_HEADERS {
            return Err(HeadError::TooManyHeaders);
        }
        headers.push((name.to_ascii_lowercase(), value.trim_matches([' ', '\t']).to_string()));
    }
    if request_line.contains('\n') {
        return Err(HeadError::Malformed("bare LF"));
    }
    Ok(Some((RequestHead { method: method.to_string(), target: target.to_string(), minor_version, headers }, end + 4)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_head_sans_io() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        let (h, n) = parse_head(b"GET /a?b HTTP/1.0\r\nHost:  x \r\nX-Y: 1\r\n\r\nGET").unwrap().unwrap();
        assert_eq!(n, 40);
        assert_eq!(h.method, "GET");
        assert_eq!(h.path(), "/a");
        assert_eq!(h.minor_version, 0);
        assert_eq!(h.headers, vec![("host".into(), "x".into()), ("x-y".into(), "1".into())]);
        assert!(h.wants_close());
        for bad in [
            &b"GET  / HTTP/1.1\r\n\r\n"[..],
            b"GET http://x/ HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: \xff\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n",
            b"GET / FTP/1.1\r\n\r\n",
        ] {
            assert!(matches!(parse_head(bad), Err(HeadError::Malformed(_))), "{bad:?}");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("H{i}: v\r\n")).collect();
        assert_eq!(parse_head(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()), Err(HeadError::TooManyHeaders));
        assert_eq!(parse_head(&vec![b'a'; MAX_HEAD_LEN]), Err(HeadError::TooLarge));
    }
}
