//! The CPE's HTTP client side of one session (3.3, 3.4): SOAP over HTTP
//! POST to the ACS URL.
//!
//! * 3.4.2: one TCP connection kept for the whole session (one pooled
//!   connection, HTTP/1.1 keep-alive); cookies returned on every POST; at
//!   the end the connection is closed and the cookies discarded — both
//!   live in the [`AcsConnection`] and go when it is dropped.
//! * 3.4.4: Basic or Digest (MD5, qop=auth) on a 401 challenge
//!   ([`crate::auth`]). The retry
//!   goes over the same connection (the 401's body is drained first so the
//!   connection is reused): some ACSes bind the nonce to the connection.
//!   Later POSTs of the session authenticate pre-emptively with the next
//!   nonce count.
//! * 3.3: HTTPS authenticates the ACS by its certificate, checked against
//!   the URL's host (rustls), with configurable trust anchors.
//! * 3.7.1.4: "The CPE MUST also terminate a session if it has received no
//!   HTTP response from an ACS for a locally determined time period of not
//!   less than 30 seconds": each exchange (our POST and the ACS's whole
//!   response, headers and body) must be complete within the configured
//!   time ([`HttpConfig::timeout`]), and the whole session within
//!   [`HttpConfig::session_timeout`]. Deadlines, not per-read timeouts: an
//!   ACS trickling a byte a second cannot hold the agent.

use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use foundation::random::RandomError;

use super::auth::{AuthError, Authenticator};

/// Largest HTTP response body accepted from the ACS.
pub const MAX_RESPONSE_BYTES: u64 = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot reach the ACS at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("ACS answered HTTP {status} {text}")]
    Status { status: u16, text: String },
    /// A 3xx: TR-069 Issue 1 defines no redirection of a session, and
    /// following one would send the Inform (and the credentials) elsewhere.
    #[error("ACS answered HTTP {status} {text}, redirecting to {location}: redirects are not followed")]
    Redirect { status: u16, text: String, location: String },
    #[error("ACS refused our credentials (HTTP 401 after authenticating)")]
    AuthFailed,
    #[error("ACS sent an authentication challenge we cannot answer: {0}")]
    Challenge(String),
    #[error("ACS response larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("reading the ACS response: {0}")]
    Read(std::io::Error),
    #[error("ACS response timed out: no complete HTTP response within {0:?} (3.7.1.4; [agent] response_timeout_seconds)")]
    ResponseDeadline(Duration),
    #[error("session timed out: not over within {0:?} ([agent] session_timeout_seconds)")]
    SessionDeadline(Duration),
    #[error("TLS set-up: {0}")]
    Tls(String),
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// Where and how to reach the ACS.
#[derive(Clone)]
pub struct HttpConfig {
    pub url: String,
    pub username: String,
    pub password: String,
    /// Custom trust anchors for HTTPS (None: ureq's webpki roots).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// 3.7.1.4: the longest one exchange may take, from sending a POST to
    /// the last byte of the ACS's response; also the connect timeout.
    pub timeout: Duration,
    /// The longest a whole session may take.
    pub session_timeout: Duration,
}

/// A rustls client configuration trusting the certificates in `ca_file`.
pub fn tls_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, TransportError> {
    let f = std::fs::File::open(ca_file).map_err(|e| TransportError::Tls(format!("{}: {e}", ca_file.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut BufReader::new(f)) {
        let cert = cert.map_err(|e| TransportError::Tls(format!("{}: {e}", ca_file.display())))?;
        roots.add(cert).map_err(|e| TransportError::Tls(format!("{}: {e}", ca_file.display())))?;
    }
    if roots.is_empty() {
        return Err(TransportError::Tls(format!("{}: no certificates", ca_file.display())));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TransportError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// One session's connection to the ACS.
pub struct AcsConnection {
    agent: ureq::Agent,
    cfg: HttpConfig,
    auth: Authenticator,
    /// Number of 401 challenges answered in this session.
    pub challenges: u32,
    /// When the session started (for [`HttpConfig::session_timeout`]).
    started: Instant,
}

impl AcsConnection {
    pub fn new(cfg: &HttpConfig) -> AcsConnection {
        let mut b = ureq::AgentBuilder::new()
            .timeout_connect(cfg.timeout)
            .timeout_read(cfg.timeout)
            .timeout_write(cfg.timeout)
            // One connection per session (3.4.2).
            .max_idle_connections(1)
            .max_idle_connections_per_host(1)
            // A redirect would re-POST the Inform elsewhere: refuse.
            .redirects(0)
            .user_agent(concat!("cpekit/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = &cfg.tls {
            b = b.tls_config(tls.clone());
        }
        AcsConnection { agent: b.build(), cfg: cfg.clone(), auth: Authenticator::new(&cfg.username, &cfg.password), challenges: 0, started: Instant::now() }
    }

    /// POST `body` (empty for the empty POST of 3.7.1.3) and return the
    /// response body (empty for an empty HTTP response, e.g. 204).
    // The closure returns ureq's own error type, handled in `auth`.
    #[allow(clippy::result_large_err)]
    pub fn post(&mut self, body: &str) -> Result<String, TransportError> {
        // This exchange ends at the response deadline or at the session's,
        // whichever comes first (ureq's deadline covers connecting, sending,
        // the headers and the body; authentication retries included).
        let session_left = self.cfg.session_timeout.saturating_sub(self.started.elapsed());
        if session_left.is_zero() {
            return Err(TransportError::SessionDeadline(self.cfg.session_timeout));
        }
        let (limit, deadline_error) = if session_left < self.cfg.timeout {
            (session_left, TransportError::SessionDeadline(self.cfg.session_timeout))
        } else {
            (self.cfg.timeout, TransportError::ResponseDeadline(self.cfg.timeout))
        };
        let deadline = Instant::now() + limit;
        let r = self.auth.request(&self.agent, "POST", &self.cfg.url, |mut req| {
            req = req.timeout(deadline.saturating_duration_since(Instant::now()));
            if !body.is_empty() {
                // 3.4.1: SOAPAction with no value (several envelopes may share a POST).
                req = req.set("Content-Type", "text/xml; charset=\"utf-8\"").set("SOAPAction", "");
            }
            req.send_string(body)
        });
        self.challenges = self.auth.challenges;
        let timed_out = || Instant::now() >= deadline;
        match r {
            Ok(resp) if (300..400).contains(&resp.status()) => {
                let (status, text) = (resp.status(), resp.status_text().to_string());
                let location = resp.header("Location").map_or_else(|| "no Location".to_string(), |l| format!("{l:?}"));
                let _ = read_body(resp);
                Err(TransportError::Redirect { status, text, location })
            }
            Ok(resp) => read_body(resp).map_err(|e| match e {
                TransportError::Read(_) if timed_out() => deadline_error,
                e => e,
            }),
            Err(AuthError::Refused | AuthError::NoCredentials) => Err(TransportError::AuthFailed),
            Err(AuthError::Challenge(e)) => Err(TransportError::Challenge(e.to_string())),
            Err(AuthError::Random(e)) => Err(TransportError::Random(e)),
            Err(AuthError::Http(e)) => match *e {
                ureq::Error::Status(code, resp) => {
                    let text = resp.status_text().to_string();
                    let _ = read_body(resp);
                    Err(TransportError::Status { status: code, text })
                }
                ureq::Error::Transport(_) if timed_out() => Err(deadline_error),
                ureq::Error::Transport(t) => Err(TransportError::Connect { url: self.cfg.url.clone(), message: t.to_string() }),
            },
        }
    }
}

fn read_body(resp: ureq::Response) -> Result<String, TransportError> {
    use std::io::Read;
    let mut out = String::new();
    let mut r = resp.into_reader().take(MAX_RESPONSE_BYTES + 1);
    r.read_to_string(&mut out).map_err(TransportError::Read)?;
    if out.len() as u64 > MAX_RESPONSE_BYTES {
        return Err(TransportError::TooLarge);
    }
    Ok(out)
}
