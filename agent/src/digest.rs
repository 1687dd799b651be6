//! HTTP Basic and Digest access authentication (RFC 2617), sans-IO.
//!
//! TR-069 3.4.4: the ACS authenticates the CPE with HTTP Basic (only over
//! SSL/TLS) or Digest; 3.2.2: the CPE SHOULD authenticate Connection Requests
//! with Digest. This module serves both directions: the client side
//! ([`pick`], [`digest_authorization`], [`basic_authorization`]) used by the
//! agent's HTTP client, and the server side ([`Server`]) used by the
//! Connection Request server and the in-repo test ACS.
//!
//! Supported: algorithm MD5 and MD5-sess, `qop=auth` or no qop (RFC 2069
//! compatibility). `auth-int` is not supported (no CWMP peer needs it).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use base64::Engine as _;
use foundation::random::{self, RandomError};
use md5::{Digest as _, Md5};

/// Longest header value (WWW-Authenticate or Authorization) we parse; real
/// challenges and credentials are a few hundred bytes.
pub const MAX_HEADER_LEN: usize = 4096;
/// Most WWW-Authenticate header values considered by [`pick`].
const MAX_HEADER_VALUES: usize = 16;
/// Most challenges / auth-params in one header value.
const MAX_CHALLENGES: usize = 16;
const MAX_PARAMS: usize = 32;

/// A usable Digest challenge (RFC 2617 3.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    /// The server offered `qop="auth"` (possibly among others). When false the
    /// RFC 2069 form of the response is used.
    pub qop_auth: bool,
    pub algorithm: Algorithm,
    /// `stale=true`: the previous nonce expired but the credentials were right.
    pub stale: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
}

impl Algorithm {
    fn token(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
        }
    }
}

/// The authentication scheme chosen from a 401 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    Basic { realm: String },
    Digest(Challenge),
}

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("authentication header longer than {MAX_HEADER_LEN} bytes")]
    TooLong,
    #[error("too many authentication headers, challenges or parameters")]
    TooMany,
    #[error("malformed authentication header: {0}")]
    Malformed(&'static str),
    #[error("duplicate authentication parameter {0:?}")]
    DuplicateParameter(String),
    #[error("no WWW-Authenticate challenge")]
    NoChallenge,
    #[error("no supported authentication scheme offered (have: {0})")]
    Unsupported(String),
}

/// One challenge or credentials as written on the wire: a scheme followed by
/// either auth-params or a token68 (RFC 7235 2.1).
#[derive(Debug, Default)]
struct RawAuth {
    /// Lower-cased scheme name.
    scheme: String,
    token68: Option<String>,
    /// Lower-cased parameter names with unquoted values, no duplicates.
    params: Vec<(String, String)>,
}

impl RawAuth {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Parse a header value holding one or more challenges (or one set of
/// credentials). Quoted strings may hold commas and escaped quotes; names are
/// matched case-insensitively.
fn parse_auth_list(value: &str) -> Result<Vec<RawAuth>, DigestError> {
    if value.len() > MAX_HEADER_LEN {
        return Err(DigestError::TooLong);
    }
    let b = value.as_bytes();
    let n = b.len();
    let mut i = 0;
    let mut out: Vec<RawAuth> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < n && is_ws(b[*i]) {
            *i += 1;
        }
    };
    loop {
        while i < n && (is_ws(b[i]) || b[i] == b',') {
            i += 1;
        }
        if i >= n {
            break;
        }
        let start = i;
        while i < n && is_tchar(b[i]) {
            i += 1;
        }
        if i == start {
            return Err(DigestError::Malformed("expected a scheme or parameter name"));
        }
        let name = value[start..i].to_ascii_lowercase();
        let after_name = i;
        skip_ws(&mut i);
        // `name = value` is an auth-param of the current challenge; a bare
        // name starts a new challenge.
        let mut j = i;
        let is_param = if i < n && b[i] == b'=' {
            j += 1;
            skip_ws(&mut j);
            j < n && (b[j] == b'"' || is_tchar(b[j]))
        } else {
            false
        };
        if is_param {
            let Some(current) = out.last_mut() else {
                return Err(DigestError::Malformed("parameter before any scheme"));
            };
            if current.token68.is_some() {
                return Err(DigestError::Malformed("parameters after token68"));
            }
            i = j;
            let val = if b[i] == b'"' {
                i += 1;
                let mut buf = Vec::new();
                loop {
                    if i >= n {
                        return Err(DigestError::Malformed("unterminated quoted string"));
                    }
                    match b[i] {
                        b'"' => {
                            i += 1;
                            break;
                        }
                        b'\\' if i + 1 < n => {
                            buf.push(b[i + 1]);
                            i += 2;
                        }
                        c => {
                            buf.push(c);
                            i += 1;
                        }
                    }
                }
                // Only ASCII backslashes were removed from valid UTF-8.
                String::from_utf8(buf).map_err(|_| DigestError::Malformed("invalid UTF-8 in quoted string"))?
            } else {
                let s = i;
                while i < n && is_tchar(b[i]) {
                    i += 1;
                }
                value[s..i].to_string()
            };
            if current.params.iter().any(|(k, _)| *k == name) {
                return Err(DigestError::DuplicateParameter(name));
            }
            if current.params.len() >= MAX_PARAMS {
                return Err(DigestError::TooMany);
            }
            current.params.push((name, val));
            skip_ws(&mut i);
            if i < n && b[i] != b',' {
                return Err(DigestError::Malformed("expected ',' after parameter"));
            }
        } else {
            if out.len() >= MAX_CHALLENGES {
                return Err(DigestError::TooMany);
            }
            let mut auth = RawAuth { scheme: name, ..RawAuth::default() };
            // Optional token68 (e.g. Basic credentials): token68 chars, then
            // '='s, then the end of this challenge.
            i = after_name;
            if i < n && is_ws(b[i]) {
                skip_ws(&mut i);
                let s = i;
                let mut k = i;
                while k < n && is_token68_char(b[k]) {
                    k += 1;
                }
                if k > s {
                    while k < n && b[k] == b'=' {
                        k += 1;
                    }
                    let end = k;
                    skip_ws(&mut k);
                    if k >= n || b[k] == b',' {
                        auth.token68 = Some(value[s..end].to_string());
                        i = k;
                    }
                }
            }
            out.push(auth);
        }
    }
    Ok(out)
}

fn parse_algorithm(v: Option<&str>) -> Option<Algorithm> {
    match v {
        None => Some(Algorithm::Md5),
        Some(a) if a.eq_ignore_ascii_case("MD5") => Some(Algorithm::Md5),
        Some(a) if a.eq_ignore_ascii_case("MD5-sess") => Some(Algorithm::Md5Sess),
        Some(_) => None,
    }
}

fn digest_challenge(raw: &RawAuth) -> Option<Challenge> {
    let realm = raw.param("realm")?.to_string();
    let nonce = raw.param("nonce")?.to_string();
    let algorithm = parse_algorithm(raw.param("algorithm"))?;
    let qop_auth = match raw.param("qop") {
        None => false,
        Some(list) => {
            let auth = list.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth"));
            if !auth {
                // Only auth-int (or unknown) offered: we cannot comply.
                return None;
            }
            true
        }
    };
    let stale = raw.param("stale").is_some_and(|s| s.eq_ignore_ascii_case("true"));
    Some(Challenge { realm, nonce, opaque: raw.param("opaque").map(str::to_string), qop_auth, algorithm, stale })
}

/// Choose the scheme from all WWW-Authenticate header values: the first
/// usable Digest challenge, else Basic (3.4.4: Basic only makes sense over
/// TLS; the caller decides whether to accept that).
pub fn pick(www_authenticate: &[&str]) -> Result<Scheme, DigestError> {
    if www_authenticate.len() > MAX_HEADER_VALUES {
        return Err(DigestError::TooMany);
    }
    let mut basic = None;
    let mut seen: Vec<String> = Vec::new();
    for value in www_authenticate {
        for raw in parse_auth_list(value)? {
            match raw.scheme.as_str() {
                "digest" => {
                    if let Some(ch) = digest_challenge(&raw) {
                        return Ok(Scheme::Digest(ch));
                    }
                }
                "basic" if basic.is_none() => {
                    basic = Some(Scheme::Basic { realm: raw.param("realm").unwrap_or_default().to_string() });
                }
                _ => {}
            }
            if !seen.contains(&raw.scheme) {
                seen.push(raw.scheme);
            }
        }
    }
    match basic {
        Some(b) => Ok(b),
        None if seen.is_empty() => Err(DigestError::NoChallenge),
        None => Err(DigestError::Unsupported(seen.join(", "))),
    }
}

/// `Basic base64(user:pass)` header value (RFC 2617 2).
pub fn basic_authorization(user: &str, pass: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {b64}")
}

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for (k, p) in parts.iter().enumerate() {
        if k > 0 {
            h.update(b":");
        }
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// RFC 2617 3.2.2.1–3.2.2.3 request-digest. `qop` is `Some((nc, cnonce))`
/// for qop=auth, `None` for the RFC 2069 form.
#[allow(clippy::too_many_arguments)]
fn request_digest(algorithm: Algorithm, user: &str, realm: &str, pass: &str, nonce: &str, cnonce: &str, method: &str, uri: &str, qop: Option<&str>) -> String {
    let mut ha1 = md5_hex(&[user.as_bytes(), realm.as_bytes(), pass.as_bytes()]);
    if algorithm == Algorithm::Md5Sess {
        ha1 = md5_hex(&[ha1.as_bytes(), nonce.as_bytes(), cnonce.as_bytes()]);
    }
    let ha2 = md5_hex(&[method.as_bytes(), uri.as_bytes()]);
    match qop {
        Some(nc) => md5_hex(&[ha1.as_bytes(), nonce.as_bytes(), nc.as_bytes(), cnonce.as_bytes(), b"auth", ha2.as_bytes()]),
        None => md5_hex(&[ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]),
    }
}

/// Append `name="value"` with `"` and `\` escaped.
fn push_quoted(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Client: the Authorization header value for one request. `nc` counts from 1
/// per nonce; `cnonce` is chosen by the caller (random, see [`cnonce`]).
pub fn digest_authorization(ch: &Challenge, method: &str, uri: &str, user: &str, pass: &str, nc: u32, cnonce: &str) -> String {
    let nc_hex = format!("{nc:08x}");
    let response = request_digest(ch.algorithm, user, &ch.realm, pass, &ch.nonce, cnonce, method, uri, ch.qop_auth.then_some(nc_hex.as_str()));
    let mut out = String::from("Digest ");
    push_quoted(&mut out, "username", user);
    out.push_str(", ");
    push_quoted(&mut out, "realm", &ch.realm);
    out.push_str(", ");
    push_quoted(&mut out, "nonce", &ch.nonce);
    out.push_str(", ");
    push_quoted(&mut out, "uri", uri);
    let _ = write!(out, ", algorithm={}, ", ch.algorithm.token());
    push_quoted(&mut out, "response", &response);
    if let Some(opaque) = &ch.opaque {
        out.push_str(", ");
        push_quoted(&mut out, "opaque", opaque);
    }
    if ch.qop_auth {
        let _ = write!(out, ", qop=auth, nc={nc_hex}, ");
        push_quoted(&mut out, "cnonce", cnonce);
    } else if ch.algorithm == Algorithm::Md5Sess {
        // MD5-sess needs the cnonce even without qop (RFC 2617 3.2.2.2).
        out.push_str(", ");
        push_quoted(&mut out, "cnonce", cnonce);
    }
    out
}

/// Client: a fresh cnonce (RFC 2617 3.2.2: "an opaque quoted string value
/// provided by the client"), 128 random bits as hex.
pub fn cnonce() -> Result<String, RandomError> {
    random::hex_secret(16)
}

/// The request-URI of `url` as the `uri` directive carries it (RFC 2617
/// 3.2.2: "the URI from Request-URI of the Request-Line"): its path and
/// query, as an HTTP client sends them; `/` for a URL that does not parse.
pub fn request_uri(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => u[url::Position::BeforePath..url::Position::AfterQuery].to_string(),
        Err(_) => "/".into(),
    }
}

/// Length-independent-of-content comparison for response hashes.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

/// Result of checking an Authorization header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Right credentials, expired nonce: answer 401 with `stale=true`.
    Stale,
    Denied,
}

#[derive(Debug)]
struct NonceState {
    issued: Instant,
    expires: Instant,
    /// Highest nc accepted so far (0: none). RFC 2617 3.2.2: a repeated nc
    /// is a replay.
    last_nc: u32,
    /// Used once without qop (RFC 2069 form has no nc, so one use only).
    used_without_qop: bool,
}

/// Server side of Digest authentication: issues nonces and verifies
/// responses (qop=auth, MD5), with per-nonce replay protection.
#[derive(Debug)]
pub struct Server {
    realm: String,
    opaque: String,
    nonce_lifetime: Duration,
    max_nonces: usize,
    nonces: HashMap<String, NonceState>,
}

impl Server {
    /// Default nonce lifetime: a challenge/response exchange takes well
    /// under a second; a few minutes allows keep-alive reuse.
    pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(300);
    /// Default bound on outstanding nonces, so unauthenticated clients
    /// cannot grow the table.
    pub const DEFAULT_MAX_NONCES: usize = 64;

    /// A server for `realm`, with a random opaque.
    pub fn new(realm: &str) -> Result<Server, RandomError> {
        Ok(Server {
            realm: realm.to_string(),
            opaque: random::hex_secret(16)?,
            nonce_lifetime: Self::DEFAULT_NONCE_LIFETIME,
            max_nonces: Self::DEFAULT_MAX_NONCES,
            nonces: HashMap::new(),
        })
    }

    pub fn with_nonce_lifetime(mut self, lifetime: Duration) -> Server {
        self.nonce_lifetime = lifetime;
        self
    }

    pub fn with_max_nonces(mut self, max: usize) -> Server {
        self.max_nonces = max.max(1);
        self
    }

    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Forget nonces expired for longer than one lifetime (kept that long so
    /// a late but correct response still gets `stale=true`).
    fn purge(&mut self, now: Instant) {
        let lifetime = self.nonce_lifetime;
        self.nonces.retain(|_, st| now.saturating_duration_since(st.expires) < lifetime);
    }

    fn insert_nonce(&mut self, nonce: String, now: Instant) {
        if self.nonces.len() >= self.max_nonces {
            self.purge(now);
        }
        while self.nonces.len() >= self.max_nonces {
            let oldest = self.nonces.iter().min_by_key(|(_, st)| st.issued).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    self.nonces.remove(&k);
                }
                None => break,
            }
        }
        self.nonces.insert(nonce, NonceState { issued: now, expires: now + self.nonce_lifetime, last_nc: 0, used_without_qop: false });
    }

    /// A fresh WWW-Authenticate header value with a new random nonce,
    /// `qop="auth"`, `algorithm=MD5` and our opaque; `stale=true` when the
    /// client's previous nonce had expired. Fails only when no random
    /// nonce can be made.
    pub fn challenge(&mut self, now: Instant, stale: bool) -> Result<String, RandomError> {
        let nonce = random::hex_secret(16)?;
        let mut out = String::from("Digest ");
        push_quoted(&mut out, "realm", &self.realm);
        out.push_str(", qop=\"auth\", ");
        push_quoted(&mut out, "nonce", &nonce);
        out.push_str(", ");
        push_quoted(&mut out, "opaque", &self.opaque);
        out.push_str(", algorithm=MD5");
        if stale {
            out.push_str(", stale=true");
        }
        self.insert_nonce(nonce, now);
        Ok(out)
    }

    /// Check an Authorization header for `method` against the expected
    /// user/password. The `uri` parameter must be present; see
    /// [`Server::verify_request`] to also match it against the request-target.
    pub fn verify(&mut self, authorization: &str, method: &str, user: &str, pass: &str, now: Instant) -> Verdict {
        self.verify_request(authorization, method, None, user, pass, now)
    }

    /// As [`Server::verify`], and when `request_uri` is given the `uri`
    /// parameter must equal it (RFC 2617 3.2.2.5: a digest computed for
    /// another URI must not be accepted).
    pub fn verify_request(&mut self, authorization: &str, method: &str, request_uri: Option<&str>, user: &str, pass: &str, now: Instant) -> Verdict {
        let creds = match parse_auth_list(authorization) {
            Ok(mut v) if v.len() == 1 => v.remove(0),
            _ => return Verdict::Denied,
        };
        if creds.scheme != "digest" || creds.token68.is_some() {
            return Verdict::Denied;
        }
        let (Some(username), Some(realm), Some(nonce), Some(uri), Some(response)) =
            (creds.param("username"), creds.param("realm"), creds.param("nonce"), creds.param("uri"), creds.param("response"))
        else {
            return Verdict::Denied;
        };
        if username != user || realm != self.realm {
            return Verdict::Denied;
        }
        if request_uri.is_some_and(|r| r != uri) {
            return Verdict::Denied;
        }
        // We only ever offer MD5.
        if parse_algorithm(creds.param("algorithm")) != Some(Algorithm::Md5) {
            return Verdict::Denied;
        }
        if creds.param("opaque") != Some(self.opaque.as_str()) {
            return Verdict::Denied;
        }
        let qop = match creds.param("qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let (Some(nc), Some(cnonce)) = (creds.param("nc"), creds.param("cnonce")) else {
                    return Verdict::Denied;
                };
                if nc.len() != 8 || !nc.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return Verdict::Denied;
                }
                let Ok(nc_val) = u32::from_str_radix(nc, 16) else {
                    return Verdict::Denied;
                };
                Some((nc, nc_val, cnonce))
            }
            Some(_) => return Verdict::Denied,
        };
        let Some(state) = self.nonces.get(nonce) else {
            // Not issued by us (or long forgotten).
            return Verdict::Denied;
        };
        let expected =
            request_digest(Algorithm::Md5, user, &self.realm, pass, nonce, qop.map(|(_, _, c)| c).unwrap_or(""), method, uri, qop.map(|(nc, _, _)| nc));
        if !ct_eq(expected.as_bytes(), response.to_ascii_lowercase().as_bytes()) {
            return Verdict::Denied;
        }
        if now >= state.expires {
            return Verdict::Stale;
        }
        let state = self.nonces.get_mut(nonce).expect("looked up above");
        match qop {
            Some((_, nc_val, _)) => {
                if nc_val <= state.last_nc {
                    return Verdict::Denied;
                }
                state.last_nc = nc_val;
            }
            None => {
                if state.used_without_qop {
                    return Verdict::Denied;
                }
                state.used_without_qop = true;
            }
        }
        Verdict::Ok
    }

    #[cfg(test)]
    fn issue_fixed(&mut self, nonce: &str, opaque: &str, now: Instant) {
        self.opaque = opaque.to_string();
        self.insert_nonce(nonce.to_string(), now);
    }
}

/// Server side Basic check (3.4.4 allows Basic only over TLS; the test ACS
/// uses it). Compares in constant time.
pub fn verify_basic(authorization: &str, user: &str, pass: &str) -> bool {
    if authorization.len() > MAX_HEADER_LEN {
        return false;
    }
    let expected = basic_authorization(user, pass);
    // The scheme name is case-insensitive.
    let Some((scheme, rest)) = authorization.trim().split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("basic") && ct_eq(rest.trim().as_bytes(), &expected.as_bytes()["Basic ".len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_NONCE: &str = "dcd98b7102dd2f0e8b11d0f600bfb0c093";
    const RFC_OPAQUE: &str = "5ccc069c403ebaf9f0171e9517f40e41";

    fn rfc_challenge_header() -> String {
        format!(
            "Digest\r\n realm=\"testrealm@host.com\",\r\n qop=\"auth,auth-int\",\r\n \
             nonce=\"{RFC_NONCE}\",\r\n opaque=\"{RFC_OPAQUE}\""
        )
        .replace("\r\n", "")
    }

    #[test]
    fn rfc2617_worked_example() {
        let Scheme::Digest(ch) = pick(&[&rfc_challenge_header()]).unwrap() else {
            panic!("expected digest");
        };
        assert_eq!(ch.realm, "testrealm@host.com");
        assert!(ch.qop_auth);
        assert_eq!(ch.algorithm, Algorithm::Md5);
        assert_eq!(ch.opaque.as_deref(), Some(RFC_OPAQUE));
        let auth = digest_authorization(&ch, "GET", "/dir/index.html", "Mufasa", "Circle Of Life", 1, "0a4f113b");
        assert!(auth.contains("response=\"6629fae49393a05397450978507c4ef1\""), "{auth}");
        assert!(auth.contains("nc=00000001"), "{auth}");
        assert!(auth.contains("cnonce=\"0a4f113b\""), "{auth}");

        // The RFC's own Authorization header verifies on the server side.
        let now = Instant::now();
        let mut srv = Server::new("testrealm@host.com").unwrap();
        srv.issue_fixed(RFC_NONCE, RFC_OPAQUE, now);
        let rfc_auth = format!(
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", nonce=\"{RFC_NONCE}\", \
             uri=\"/dir/index.html\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", \
             response=\"6629fae49393a05397450978507c4ef1\", opaque=\"{RFC_OPAQUE}\""
        );
        assert_eq!(srv.verify_request(&rfc_auth, "GET", Some("/dir/index.html"), "Mufasa", "Circle Of Life", now), Verdict::Ok);
        // Same request again: replay.
        assert_eq!(srv.verify(&rfc_auth, "GET", "Mufasa", "Circle Of Life", now), Verdict::Denied);
    }

    #[test]
    fn rfc2069_and_md5_sess_forms() {
        let mut ch =
            Challenge { realm: "testrealm@host.com".into(), nonce: RFC_NONCE.into(), opaque: None, qop_auth: false, algorithm: Algorithm::Md5, stale: false };
        // Independent computation of MD5(HA1:nonce:HA2).
        let ha1 = md5_hex(&[b"Mufasa", b"testrealm@host.com", b"Circle Of Life"]);
        let ha2 = md5_hex(&[b"GET", b"/dir/index.html"]);
        let want = md5_hex(&[ha1.as_bytes(), RFC_NONCE.as_bytes(), ha2.as_bytes()]);
        let a = digest_authorization(&ch, "GET", "/dir/index.html", "Mufasa", "Circle Of Life", 1, "x");
        assert!(a.contains(&format!("response=\"{want}\"")), "{a}");
        assert!(!a.contains("qop="));

        ch.algorithm = Algorithm::Md5Sess;
        ch.qop_auth = true;
        let sess = md5_hex(&[ha1.as_bytes(), RFC_NONCE.as_bytes(), b"0a4f113b"]);
        let want = md5_hex(&[sess.as_bytes(), RFC_NONCE.as_bytes(), b"00000002", b"0a4f113b", b"auth", ha2.as_bytes()]);
        let a = digest_authorization(&ch, "GET", "/dir/index.html", "Mufasa", "Circle Of Life", 2, "0a4f113b");
        assert!(a.contains(&format!("response=\"{want}\"")), "{a}");
        assert!(a.contains("algorithm=MD5-sess"));
    }

    #[test]
    fn pick_prefers_digest_and_handles_lists() {
        // Basic first, Digest later in the same header; a comma inside a quoted realm.
        let h = r#"Basic realm="a, b", Digest realm="x,y", nonce="n1", qop="auth", algorithm=md5-SESS, STALE=TRUE"#;
        let Scheme::Digest(ch) = pick(&[h]).unwrap() else { panic!() };
        assert_eq!(ch.realm, "x,y");
        assert_eq!(ch.nonce, "n1");
        assert_eq!(ch.algorithm, Algorithm::Md5Sess);
        assert!(ch.stale);

        // Separate header values; Basic only.
        assert_eq!(pick(&["Negotiate abc==", r#"Basic realm="r\"q""#]).unwrap(), Scheme::Basic { realm: "r\"q".into() });
        // A Digest challenge we cannot use (SHA-256, auth-int only) falls back to Basic.
        let h2 = [r#"Digest realm="r", nonce="n", algorithm=SHA-256"#, r#"Digest realm="r", nonce="n", qop="auth-int""#, r#"Basic realm="b""#];
        assert_eq!(pick(&h2).unwrap(), Scheme::Basic { realm: "b".into() });
        assert!(matches!(pick(&h2[..2]), Err(DigestError::Unsupported(_))));
        assert!(matches!(pick(&[]), Err(DigestError::NoChallenge)));
    }

    #[test]
    fn parser_bounds_and_errors() {
        let long = format!("Digest realm=\"{}\"", "a".repeat(MAX_HEADER_LEN));
        assert!(matches!(pick(&[&long]), Err(DigestError::TooLong)));
        assert!(matches!(pick(&[r#"Digest realm="unterminated"#]), Err(DigestError::Malformed(_))));
        assert!(matches!(pick(&[r#"realm="x", Digest nonce="n""#]), Err(DigestError::Malformed(_))));
        assert!(matches!(pick(&[r#"Digest realm="x", REALM="y", nonce="n""#]), Err(DigestError::DuplicateParameter(_))));
        let many: String = (0..MAX_PARAMS + 1).map(|i| format!("p{i}=v, ")).collect();
        assert!(matches!(pick(&[&format!("Digest {many}")]), Err(DigestError::TooMany)));
        let h: Vec<&str> = vec!["Basic"; MAX_HEADER_VALUES + 1];
        assert!(matches!(pick(&h), Err(DigestError::TooMany)));
    }

    fn challenge_of(srv: &mut Server, now: Instant) -> Challenge {
        match pick(&[&srv.challenge(now, false).unwrap()]).unwrap() {
            Scheme::Digest(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn round_trip_and_failures() {
        let now = Instant::now();
        let mut srv = Server::new("cpekit").unwrap();
        let ch = challenge_of(&mut srv, now);
        assert!(ch.qop_auth && !ch.stale && ch.opaque.is_some());
        assert_eq!(ch.realm, "cpekit");

        let a1 = digest_authorization(&ch, "GET", "/cr/x", "acs", "s3cret", 1, "c1");
        // Wrong password, wrong method, wrong user, wrong uri: denied, and
        // they do not consume nc 1.
        assert_eq!(srv.verify(&a1, "GET", "acs", "wrong", now), Verdict::Denied);
        assert_eq!(srv.verify(&a1, "POST", "acs", "s3cret", now), Verdict::Denied);
        assert_eq!(srv.verify(&a1, "GET", "other", "s3cret", now), Verdict::Denied);
        assert_eq!(srv.verify_request(&a1, "GET", Some("/cr/y"), "acs", "s3cret", now), Verdict::Denied);
        assert_eq!(srv.verify_request(&a1, "GET", Some("/cr/x"), "acs", "s3cret", now), Verdict::Ok);
        // Replayed nc.
        assert_eq!(srv.verify(&a1, "GET", "acs", "s3cret", now), Verdict::Denied);
        // nc 3 then 2: only increasing accepted.
        let a3 = digest_authorization(&ch, "GET", "/cr/x", "acs", "s3cret", 3, "c3");
        let a2 = digest_authorization(&ch, "GET", "/cr/x", "acs", "s3cret", 2, "c2");
        assert_eq!(srv.verify(&a3, "GET", "acs", "s3cret", now), Verdict::Ok);
        assert_eq!(srv.verify(&a2, "GET", "acs", "s3cret", now), Verdict::Denied);

        // Wrong realm in the credentials (computed for another realm).
        let mut other = ch.clone();
        other.realm = "elsewhere".into();
        let bad_realm = digest_authorization(&other, "GET", "/cr/x", "acs", "s3cret", 4, "c4");
        assert_eq!(srv.verify(&bad_realm, "GET", "acs", "s3cret", now), Verdict::Denied);

        // A nonce we never issued, even with a correct hash.
        let mut forged = ch.clone();
        forged.nonce = "00112233".into();
        let f = digest_authorization(&forged, "GET", "/cr/x", "acs", "s3cret", 1, "c");
        assert_eq!(srv.verify(&f, "GET", "acs", "s3cret", now), Verdict::Denied);

        // Missing uri parameter.
        let no_uri = a3.replace("uri=\"/cr/x\", ", "");
        assert_ne!(no_uri, a3);
        assert_eq!(srv.verify(&no_uri, "GET", "acs", "s3cret", now), Verdict::Denied);

        // Basic credentials are not Digest.
        assert_eq!(srv.verify(&basic_authorization("acs", "s3cret"), "GET", "acs", "s3cret", now), Verdict::Denied);
    }

    #[test]
    fn stale_nonce() {
        let t0 = Instant::now();
        let mut srv = Server::new("cpekit").unwrap().with_nonce_lifetime(Duration::from_secs(10));
        let ch = challenge_of(&mut srv, t0);
        let a = digest_authorization(&ch, "GET", "/p", "u", "p", 1, "c");
        let later = t0 + Duration::from_secs(11);
        assert_eq!(srv.verify(&a, "GET", "u", "p", later), Verdict::Stale);
        // Wrong password with an expired nonce is plainly denied.
        assert_eq!(srv.verify(&a, "GET", "u", "x", later), Verdict::Denied);
        // The stale challenge carries stale=true and the client reads it.
        let Scheme::Digest(ch2) = pick(&[&srv.challenge(later, true).unwrap()]).unwrap() else { panic!() };
        assert!(ch2.stale);
        let a2 = digest_authorization(&ch2, "GET", "/p", "u", "p", 1, "c");
        assert_eq!(srv.verify(&a2, "GET", "u", "p", later), Verdict::Ok);
        // Long after expiry the nonce is forgotten.
        let much_later = t0 + Duration::from_secs(40);
        srv.challenge(much_later, false).unwrap();
        srv.purge(much_later);
        assert_eq!(srv.verify(&a, "GET", "u", "p", much_later), Verdict::Denied);
    }

    #[test]
    fn nonce_table_is_bounded() {
        let now = Instant::now();
        let mut srv = Server::new("r").unwrap().with_max_nonces(4);
        let first = challenge_of(&mut srv, now);
        for k in 1..10 {
            srv.challenge(now + Duration::from_millis(k), false).unwrap();
        }
        assert_eq!(srv.nonces.len(), 4);
        let a = digest_authorization(&first, "GET", "/", "u", "p", 1, "c");
        assert_eq!(srv.verify(&a, "GET", "u", "p", now), Verdict::Denied);
    }

    #[test]
    fn without_qop_a_nonce_is_single_use() {
        let now = Instant::now();
        let mut srv = Server::new("r").unwrap();
        let mut ch = challenge_of(&mut srv, now);
        ch.qop_auth = false;
        let a = digest_authorization(&ch, "GET", "/", "u", "p", 1, "c");
        assert!(!a.contains("qop"));
        assert_eq!(srv.verify(&a, "GET", "u", "p", now), Verdict::Ok);
        assert_eq!(srv.verify(&a, "GET", "u", "p", now), Verdict::Denied);
    }

    #[test]
    fn quoting_round_trips() {
        let now = Instant::now();
        let mut srv = Server::new("realm \"q\" \\ x").unwrap();
        let ch = challenge_of(&mut srv, now);
        assert_eq!(ch.realm, "realm \"q\" \\ x");
        let a = digest_authorization(&ch, "GET", "/a,b", "us\"er", "p", 1, "c");
        assert_eq!(srv.verify(&a, "GET", "us\"er", "p", now), Verdict::Ok);
    }

    #[test]
    fn request_uri_of_urls() {
        assert_eq!(request_uri("http://acs.example:7547/cwmp?x=1"), "/cwmp?x=1");
        assert_eq!(request_uri("https://acs.example"), "/");
        assert_eq!(request_uri("http://h/a#frag"), "/a");
        assert_eq!(request_uri("http://h:1/a/b?c=d"), "/a/b?c=d");
        // As an HTTP client sends it: percent-encoded, dot segments resolved.
        assert_eq!(request_uri("http://h/caf\u{e9}/./x/../y"), "/caf%C3%A9/y");
        assert_eq!(request_uri("not a url"), "/");
    }

    #[test]
    fn cnonces_are_fresh() {
        let (a, b) = (cnonce().unwrap(), cnonce().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn basic() {
        assert_eq!(basic_authorization("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert!(verify_basic("basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "Aladdin", "open sesame"));
        assert!(!verify_basic("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "Aladdin", "closed"));
        assert!(!verify_basic("Digest QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "Aladdin", "open sesame"));
        // Basic credentials parse as a token68.
        let raw = parse_auth_list("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==").unwrap();
        assert_eq!(raw[0].token68.as_deref(), Some("QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
    }
}
