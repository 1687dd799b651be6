//! The CPE's HTTP clients answering an authentication challenge: one
//! request helper for the session client ([`crate::http`], 3.4.4) and the
//! file-transfer client ([`crate::transfer::http`], A.3.2.8 / A.4.1.5).
//!
//! 3.4.4: "If SSL/TLS is being used for encryption, the ACS MAY use either
//! basic or digest authentication. If SSL/TLS is not being used, then the
//! ACS MUST use digest authentication." The exchange:
//!
//! 1. send the request (with an `Authorization` header once a challenge has
//!    been answered: later requests on the same [`Authenticator`]
//!    authenticate pre-emptively, Digest with the next nonce count);
//! 2. on HTTP 401, read the `WWW-Authenticate` values, drain the body (so
//!    that the retry can reuse the connection: some servers bind the nonce
//!    to it) and pick a scheme ([`digest::pick`]);
//! 3. retry with the credentials. One answer per fresh challenge; a Digest
//!    challenge with `stale=true` (the previous nonce expired, the
//!    credentials were right, RFC 2617 3.2.1) is answered once more. A
//!    further 401 means the credentials were refused.

use std::io::Read;

use foundation::random::RandomError;

use crate::digest::{self, Challenge, DigestError, Scheme};

/// Most of a 401 response body read to keep the connection reusable; a
/// longer one is dropped with its connection.
const MAX_CHALLENGE_BODY: u64 = 1 << 20;

/// Why an authenticated request did not get a response.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// HTTP 401 again after answering: the credentials were refused.
    #[error("credentials refused (HTTP 401 after authenticating)")]
    Refused,
    /// HTTP 401 and no credentials to answer with (see
    /// [`Authenticator::requiring_credentials`]).
    #[error("authentication required but no credentials were given")]
    NoCredentials,
    /// No usable challenge in the 401.
    #[error("unusable challenge: {0}")]
    Challenge(#[source] DigestError),
    /// No cnonce could be made.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// Any other HTTP status, or a transport failure: the caller's to
    /// interpret.
    #[error(transparent)]
    Http(Box<ureq::Error>),
}

enum Auth {
    None,
    Basic,
    Digest { challenge: Challenge, nc: u32 },
}

/// The authentication state of one client (one session, one transfer).
pub struct Authenticator {
    username: String,
    password: String,
    require_credentials: bool,
    auth: Auth,
    /// Number of 401 challenges answered.
    pub challenges: u32,
}

impl Authenticator {
    /// Answers challenges with `username` and `password` (even empty ones).
    pub fn new(username: &str, password: &str) -> Authenticator {
        Authenticator { username: username.to_string(), password: password.to_string(), require_credentials: false, auth: Auth::None, challenges: 0 }
    }

    /// With an empty username and password, a 401 is
    /// [`AuthError::NoCredentials`] instead of an answer.
    pub fn requiring_credentials(mut self) -> Authenticator {
        self.require_credentials = true;
        self
    }

    /// The Authorization header value for the next request, if a challenge
    /// was answered.
    fn authorization(&mut self, method: &str, uri: &str) -> Result<Option<String>, RandomError> {
        Ok(match &mut self.auth {
            Auth::None => None,
            Auth::Basic => Some(digest::basic_authorization(&self.username, &self.password)),
            Auth::Digest { challenge, nc } => {
                *nc += 1;
                Some(digest::digest_authorization(challenge, method, uri, &self.username, &self.password, *nc, &digest::cnonce()?))
            }
        })
    }

    /// Send `method` to `url` through `agent`; `send` completes and sends
    /// the request (headers, body) and is called again for each retry.
    // ureq's own error type, handed to the caller inside `AuthError::Http`.
    #[allow(clippy::result_large_err)]
    pub fn request(
        &mut self,
        agent: &ureq::Agent,
        method: &str,
        url: &str,
        mut send: impl FnMut(ureq::Request) -> Result<ureq::Response, ureq::Error>,
    ) -> Result<ureq::Response, AuthError> {
        let uri = digest::request_uri(url);
        let mut answered = 0;
        loop {
            let mut req = agent.request(method, url);
            if let Some(a) = self.authorization(method, &uri)? {
                req = req.set("Authorization", &a);
            }
            let resp = match send(req) {
                Ok(resp) => return Ok(resp),
                Err(ureq::Error::Status(401, resp)) => resp,
                Err(e) => return Err(AuthError::Http(Box::new(e))),
            };
            let headers: Vec<String> = resp.all("WWW-Authenticate").iter().map(|s| s.to_string()).collect();
            let _ = std::io::copy(&mut resp.into_reader().take(MAX_CHALLENGE_BODY), &mut std::io::sink());
            if self.require_credentials && self.username.is_empty() && self.password.is_empty() {
                return Err(AuthError::NoCredentials);
            }
            let refs: Vec<&str> = headers.iter().map(|s| s.as_str()).collect();
            let scheme = digest::pick(&refs).map_err(AuthError::Challenge)?;
            let stale = matches!(&scheme, Scheme::Digest(c) if c.stale);
            if answered >= 1 && !(stale && answered < 2) {
                return Err(AuthError::Refused);
            }
            answered += 1;
            self.challenges += 1;
            self.auth = match scheme {
                Scheme::Basic { .. } => Auth::Basic,
                Scheme::Digest(challenge) => Auth::Digest { challenge, nc: 0 },
            };
        }
    }
}

#[cfg(test)]
// The requests' closures return ureq's own error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use crate::digest::{Server, Verdict};
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    /// What the scripted server does with one request.
    enum Answer {
        /// 401 with this WWW-Authenticate value.
        Challenge(String),
        /// 200 with this body.
        Ok(&'static str),
    }

    /// A one-thread HTTP/1.1 server deciding each answer from the request's
    /// (method, target, Authorization header); it records what it saw.
    fn serve(decide: impl Fn(&str, &str, Option<&str>) -> Answer + Send + 'static) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/acs/path?q=1", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let mut r = BufReader::new(stream.try_clone().unwrap());
                let mut w = stream;
                // Keep-alive: requests until the client closes.
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let mut parts = line.split_whitespace();
                    let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
                    let (mut auth, mut length) = (None, 0usize);
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (name, value) = h.split_once(':').unwrap();
                        match name.to_ascii_lowercase().as_str() {
                            "authorization" => auth = Some(value.trim().to_string()),
                            "content-length" => length = value.trim().parse().unwrap(),
                            _ => {}
                        }
                    }
                    let mut body = vec![0; length];
                    r.read_exact(&mut body).unwrap();
                    log.lock().unwrap().push(auth.clone());
                    let reply = match decide(&method, &target, auth.as_deref()) {
                        Answer::Challenge(c) => format!("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {c}\r\nContent-Length: 6\r\n\r\ndenied"),
                        Answer::Ok(b) => format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{b}", b.len()),
                    };
                    if w.write_all(reply.as_bytes()).is_err() {
                        break;
                    }
                }
            }
        });
        (url, seen)
    }

    fn body(resp: ureq::Response) -> String {
        resp.into_string().unwrap()
    }

    /// A Digest server for user "cpe" / password "s3cret".
    fn digest_server() -> impl Fn(&str, &str, Option<&str>) -> Answer {
        let srv = Mutex::new(Server::new("test").unwrap());
        move |method, target, auth| {
            let mut srv = srv.lock().unwrap();
            let now = Instant::now();
            match auth.map(|a| srv.verify_request(a, method, Some(target), "cpe", "s3cret", now)) {
                Some(Verdict::Ok) => Answer::Ok("welcome"),
                Some(Verdict::Stale) => Answer::Challenge(srv.challenge(now, true).unwrap()),
                _ => Answer::Challenge(srv.challenge(now, false).unwrap()),
            }
        }
    }

    #[test]
    fn digest_challenge_answered_then_preemptive() {
        let (url, seen) = serve(digest_server());
        let agent = ureq::Agent::new();
        let mut a = Authenticator::new("cpe", "s3cret");
        let r = a.request(&agent, "POST", &url, |req| req.send_string("<Inform/>")).unwrap();
        assert_eq!(body(r), "welcome");
        assert_eq!(a.challenges, 1);
        // The next request authenticates up front with nc 2: no new 401.
        let r = a.request(&agent, "POST", &url, |req| req.send_string("")).unwrap();
        assert_eq!(body(r), "welcome");
        assert_eq!(a.challenges, 1);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3, "401, answered, pre-emptive");
        assert!(seen[0].is_none());
        // The uri directive is the request-target as sent.
        assert!(seen[1].as_deref().unwrap().contains("uri=\"/acs/path?q=1\"") && seen[1].as_deref().unwrap().contains("nc=00000001"));
        assert!(seen[2].as_deref().unwrap().contains("nc=00000002"));
    }

    #[test]
    fn wrong_password_is_refused_after_one_answer() {
        let (url, seen) = serve(digest_server());
        let mut a = Authenticator::new("cpe", "wrong");
        let e = a.request(&ureq::Agent::new(), "GET", &url, |req| req.call()).unwrap_err();
        assert!(matches!(e, AuthError::Refused), "{e}");
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    /// A Digest server that answers the first `stale` authenticated
    /// requests with a fresh challenge marked stale.
    fn stale_server(stale: usize) -> impl Fn(&str, &str, Option<&str>) -> Answer {
        let state = Mutex::new((Server::new("test").unwrap(), 0));
        move |method, target, auth| {
            let (srv, sent) = &mut *state.lock().unwrap();
            let now = Instant::now();
            match auth {
                Some(_) if *sent < stale => {
                    *sent += 1;
                    Answer::Challenge(srv.challenge(now, true).unwrap())
                }
                Some(a) if srv.verify_request(a, method, Some(target), "cpe", "s3cret", now) == Verdict::Ok => Answer::Ok("welcome"),
                _ => Answer::Challenge(srv.challenge(now, false).unwrap()),
            }
        }
    }

    #[test]
    fn a_stale_nonce_is_answered_once_more() {
        let (url, seen) = serve(stale_server(1));
        let mut a = Authenticator::new("cpe", "s3cret");
        let r = a.request(&ureq::Agent::new(), "GET", &url, |req| req.call()).unwrap();
        assert_eq!(body(r), "welcome");
        assert_eq!(seen.lock().unwrap().len(), 3, "challenge, stale, accepted");
        assert_eq!(a.challenges, 2);
        // Stale again: not a third time.
        let (url, seen) = serve(stale_server(2));
        let e = Authenticator::new("cpe", "s3cret").request(&ureq::Agent::new(), "GET", &url, |req| req.call()).unwrap_err();
        assert!(matches!(e, AuthError::Refused), "{e}");
        assert_eq!(seen.lock().unwrap().len(), 3);
    }

    #[test]
    fn basic_and_missing_credentials() {
        let (url, seen) = serve(|_, _, auth| match auth {
            Some(a) if digest::verify_basic(a, "u", "p") => Answer::Ok("in"),
            _ => Answer::Challenge("Basic realm=\"files\"".into()),
        });
        let mut a = Authenticator::new("u", "p");
        assert_eq!(body(a.request(&ureq::Agent::new(), "GET", &url, |req| req.call()).unwrap()), "in");
        // Without credentials, a transfer does not even try.
        let mut a = Authenticator::new("", "").requiring_credentials();
        let e = a.request(&ureq::Agent::new(), "GET", &url, |req| req.call()).unwrap_err();
        assert!(matches!(e, AuthError::NoCredentials), "{e}");
        assert_eq!(seen.lock().unwrap().len(), 3);
        // An unusable challenge.
        let (url, _) = serve(|_, _, _| Answer::Challenge("Negotiate abc".into()));
        let e = Authenticator::new("u", "p").request(&ureq::Agent::new(), "GET", &url, |req| req.call()).unwrap_err();
        assert!(matches!(e, AuthError::Challenge(_)), "{e}");
    }
}
