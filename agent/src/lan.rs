//! The LAN-side web server (TR-069 Appendix D, B ManagementServer.KickURL
//! and DownloadProgressURL).
//!
//! * **KickURL** (`/kick`, D.4): a browser on the LAN is sent here by a web
//!   site associated with the ACS, with the CGI arguments of Table 64
//!   (`command`, `arg`, `next`). The CPE opens a session ("5 KICKED",
//!   Table 35), calls Kicked (A.4.2.1) with those arguments and the
//!   request's Referer header, and redirects the browser to the NextURL of
//!   the KickedResponse (D.3 step 5). On a fault, an unreachable ACS, bad
//!   arguments or an exceeded rate limit (D.4: "SHOULD limit the number of
//!   Kicked method calls ... per hour") the browser is redirected to an
//!   error page on the CPE itself (A.4.2.1).
//! * **DownloadProgressURL** (`/progress`, `/progress.json`, B Table 61): the
//!   running download's progress from the shared [`Progress`] handle (bytes
//!   as they arrive; for a signed package, the phase the installer reports),
//!   as an auto-refreshing HTML page and as JSON.
//!
//! Layout, as in [`super::connreq`]: the request decision ([`Pages`]) is
//! sans-IO apart from the kick hand-off; [`LanServer`] is the thin socket
//! layer (a std::net loop with request heads bounded by
//! [`http_head`](super::http_head), read deadlines and a connection cap, for
//! the reasons given in connreq.rs). The server only
//! *queues* a kick: the agent's main loop runs the session when no other
//! session is in progress and answers through a [`KickReplier`].

use std::collections::VecDeque;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use foundation::random;
use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS, NON_ALPHANUMERIC};

use super::http_head::{parse_head, HeadError, RequestHead};
use super::progress::{Phase, Progress, Snapshot};
use super::soap::Body;
use super::tcp_server::{send_and_close, Limits, TcpServer};

/// Path of the KickURL (D.4 gives `/kick.html` as an example).
pub const KICK_PATH: &str = "/kick";
/// Path of the DownloadProgressURL (HTML).
pub const PROGRESS_PATH: &str = "/progress";
/// The same snapshot as JSON.
pub const PROGRESS_JSON_PATH: &str = "/progress.json";
/// The CPE-resident error page a failed kick is redirected to (A.4.2.1).
pub const KICK_ERROR_PATH: &str = "/kick-error";

/// Most simultaneous connections; a kick holds its connection for the
/// whole session with the ACS, so this also bounds waiting browsers.
pub const MAX_CONNECTIONS: usize = 16;
/// Timeout of each socket read or write.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-head deadline.
const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// Failed kicks remembered for their error page.
const MAX_ERROR_PAGES: usize = 64;
/// Seconds between refreshes of the progress page.
const PROGRESS_REFRESH_SECONDS: u32 = 2;

// Table 64 / Table 53 limits.
const MAX_COMMAND: usize = 32;
const MAX_ARG: usize = 256;
const MAX_NEXT: usize = 1024;
const MAX_REFERER: usize = 64;
/// Table 54: NextURL string(1024).
const MAX_NEXT_URL: usize = 1024;

/// LAN server settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address (`[agent] lan_address`); port 0 picks a free port.
    pub listen: SocketAddr,
    /// Host name or IP put in KickURL / DownloadProgressURL and used for
    /// path-only NextURLs (B: "MUST be an absolute URL including a host
    /// name or IP address as would be used on the LAN side"). Default: the
    /// listen IP.
    pub host: Option<String>,
    /// D.4: most Kicked calls per hour.
    pub kicks_per_hour: u32,
    /// How long a browser waits for the kick's session before it gets the
    /// error page (the session may be queued behind another one).
    pub kick_timeout: Duration,
}

/// The Kicked arguments (A.4.2.1 Table 53) gathered from one kick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KickArgs {
    pub command: String,
    pub referer: String,
    pub arg: String,
    pub next: String,
}

impl KickArgs {
    /// The Kicked request for these arguments.
    pub fn to_body(&self) -> Body {
        Body::Kicked { command: self.command.clone(), referer: self.referer.clone(), arg: self.arg.clone(), next: self.next.clone() }
    }
}

/// Why a kick did not end in a redirect to the ACS's NextURL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KickError {
    #[error("invalid kick request: {0}")]
    BadArgs(String),
    /// D.4: a kick beyond the hourly maximum is a security violation and
    /// does not result in a Kicked call.
    #[error("too many kick requests: at most {limit} per hour; try again in {retry_after} s")]
    RateLimited { limit: u32, retry_after: u64 },
    #[error("the ACS answered Kicked with fault {code}: {string}")]
    Fault { code: u32, string: String },
    #[error("the session with the ACS failed: {0}")]
    Session(String),
    #[error("the ACS ended the session without answering the Kicked request")]
    NoAnswer,
    #[error("the ACS returned an unusable NextURL: {0:?}")]
    BadNextUrl(String),
    #[error("no answer from the ACS within {0} s")]
    Timeout(u64),
    #[error("the CPE agent is not running")]
    AgentGone,
}

impl KickError {
    /// HTTP status of the error page.
    fn status(&self) -> u16 {
        match self {
            KickError::BadArgs(_) => 400,
            KickError::RateLimited { .. } => 429,
            KickError::AgentGone => 503,
            KickError::Timeout(_) => 504,
            _ => 502,
        }
    }
}

/// What a kick resolved to: the NextURL (A.4.2.1 Table 54) or an error.
pub type KickOutcome = Result<String, KickError>;

#[derive(Debug, Default)]
struct ReplySlot {
    outcome: Mutex<Option<KickOutcome>>,
    cv: Condvar,
    /// The browser gave up waiting: there is no one to redirect.
    abandoned: AtomicBool,
}

/// The agent's side of one kick's answer channel.
#[derive(Debug, Clone)]
pub struct KickReplier(Arc<ReplySlot>);

impl PartialEq for KickReplier {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for KickReplier {}

impl KickReplier {
    /// A connected replier / waiter pair.
    pub fn pair() -> (KickReplier, KickWaiter) {
        let slot = Arc::new(ReplySlot::default());
        (KickReplier(Arc::clone(&slot)), KickWaiter(slot))
    }

    /// Deliver the outcome (the first one wins).
    pub fn reply(&self, outcome: KickOutcome) {
        let mut o = self.0.outcome.lock().unwrap_or_else(|e| e.into_inner());
        if o.is_none() {
            *o = Some(outcome);
            self.0.cv.notify_all();
        }
    }

    /// Nobody waits for the answer any more (the browser's wait timed out).
    pub fn abandoned(&self) -> bool {
        self.0.abandoned.load(Ordering::SeqCst)
    }
}

/// The LAN server's side of one kick's answer channel.
#[derive(Debug)]
pub struct KickWaiter(Arc<ReplySlot>);

impl KickWaiter {
    /// Wait for the outcome; on timeout the kick is marked abandoned.
    pub fn wait(self, timeout: Duration) -> KickOutcome {
        let deadline = Instant::now() + timeout;
        let mut o = self.0.outcome.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(r) = o.take() {
                return r;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.0.abandoned.store(true, Ordering::SeqCst);
                return Err(KickError::Timeout(timeout.as_secs()));
            }
            o = self.0.cv.wait_timeout(o, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

impl Drop for KickWaiter {
    fn drop(&mut self) {
        self.0.abandoned.store(true, Ordering::SeqCst);
    }
}

/// One kick handed to the agent's main loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KickRequest {
    pub args: KickArgs,
    pub reply: KickReplier,
}

/// Decode one `application/x-www-form-urlencoded` component ('+' is a
/// space, %XX a byte); `None` when a `%` is not followed by two hex digits
/// or the result is not UTF-8 (stricter than `form_urlencoded::parse`,
/// which keeps both silently).
pub fn form_decode(s: &str) -> Option<String> {
    let well_formed = s.split('%').skip(1).all(|after| after.as_bytes().get(..2).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)));
    if !well_formed {
        return None;
    }
    let plus_as_space = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space).decode_utf8().ok().map(|v| v.into_owned())
}

/// Everything but the RFC 3986 unreserved characters (ALPHA / DIGIT / "-" /
/// "." / "_" / "~").
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encode everything but RFC 3986 unreserved characters.
pub fn url_encode(s: &str) -> String {
    utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

/// Escape text for HTML element content and quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// D.4 Table 64: the kick's CGI arguments; `referer` is the request's
/// Referer header (Table 53 string(64): a longer one is cut to 64
/// characters, it only helps the ACS to identify the browser session).
/// Unknown arguments are ignored; a repeated or over-long one is refused.
pub fn parse_kick(query: &str, referer: Option<&str>) -> Result<KickArgs, KickError> {
    let (mut command, mut arg, mut next) = (None, None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = form_decode(k).ok_or_else(|| KickError::BadArgs("malformed query string".into()))?;
        let (slot, max) = match key.as_str() {
            "command" => (&mut command, MAX_COMMAND),
            "arg" => (&mut arg, MAX_ARG),
            "next" => (&mut next, MAX_NEXT),
            _ => continue,
        };
        let value = form_decode(v).ok_or_else(|| KickError::BadArgs(format!("{key}: malformed percent-encoding or not UTF-8")))?;
        if slot.is_some() {
            return Err(KickError::BadArgs(format!("{key} given more than once")));
        }
        if value.chars().count() > max {
            return Err(KickError::BadArgs(format!("{key} is longer than {max} characters (Table 64)")));
        }
        if value.chars().any(char::is_control) {
            return Err(KickError::BadArgs(format!("{key} contains control characters")));
        }
        *slot = Some(value);
    }
    let referer: String = referer.unwrap_or_default().chars().filter(|c| !c.is_control()).take(MAX_REFERER).collect();
    Ok(KickArgs { command: command.unwrap_or_default(), referer, arg: arg.unwrap_or_default(), next: next.unwrap_or_default() })
}

/// Where to send the browser for a NextURL (A.4.2.1 Table 54): an
/// absolute http(s) URL as is; a path-only URL ("/security/index.html") on
/// the CPE's own canonical host. Anything else (other schemes, control
/// characters that would split the HTTP header) is refused; non-ASCII
/// characters are percent-encoded (the Location header is ASCII).
pub fn redirect_target(next_url: &str, own_base: &str) -> Result<String, KickError> {
    let bad = || KickError::BadNextUrl(next_url.chars().take(128).collect());
    if next_url.is_empty() || next_url.chars().count() > MAX_NEXT_URL || next_url.bytes().any(|b| b < 0x20 || b == 0x7f || b == b' ') {
        return Err(bad());
    }
    // Controls are refused above: this encodes the non-ASCII bytes only.
    let encoded = utf8_percent_encode(next_url, CONTROLS).to_string();
    let next_url = encoded.as_str();
    if next_url.starts_with('/') && !next_url.starts_with("//") {
        return Ok(format!("{own_base}{next_url}"));
    }
    let lower = next_url.to_ascii_lowercase();
    let rest = lower.strip_prefix("http://").or_else(|| lower.strip_prefix("https://")).ok_or_else(bad)?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad());
    }
    Ok(next_url.to_string())
}

/// Sliding one-hour window of kicks sent to the ACS.
#[derive(Debug)]
struct KickLimit {
    max: u32,
    period: Duration,
    sent: VecDeque<Instant>,
}

impl KickLimit {
    /// Take a slot, or say in how many seconds one frees.
    fn take(&mut self, now: Instant) -> Result<(), u64> {
        while self.sent.front().is_some_and(|t| now.saturating_duration_since(*t) >= self.period) {
            self.sent.pop_front();
        }
        if self.sent.len() >= self.max as usize {
            let oldest = self.sent.front().copied().unwrap_or(now);
            let wait = self.period.saturating_sub(now.saturating_duration_since(oldest));
            return Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0));
        }
        self.sent.push_back(now);
        Ok(())
    }
}

/// One HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub status: u16,
    pub content_type: &'static str,
    pub location: Option<String>,
    pub retry_after: Option<u64>,
    pub allow: bool,
    pub body: String,
}

impl Page {
    fn html(status: u16, body: String) -> Page {
        Page { status, content_type: "text/html; charset=utf-8", location: None, retry_after: None, allow: false, body }
    }

    fn redirect(status: u16, to: String) -> Page {
        let e = html_escape(&to);
        let body = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Redirecting</title></head>\
             <body><p>Continue to <a href=\"{e}\">{e}</a>.</p></body></html>\n"
        );
        Page { location: Some(to), ..Page::html(status, body) }
    }

    /// Serialise; `head_only` for HEAD requests.
    pub fn render(&self, head_only: bool) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n\
             X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n\
             Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        if let Some(l) = &self.location {
            out.push_str(&format!("Location: {l}\r\n"));
        }
        if let Some(s) = self.retry_after {
            out.push_str(&format!("Retry-After: {s}\r\n"));
        }
        if self.allow {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        if !head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        303 => "See Other",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#212121;background:#ffffff}\
h1{font-size:1.4em}table{border-collapse:collapse}td,th{padding:.3em .8em;text-align:left}\
.bar{width:100%;max-width:40em;height:2em;background:#e0e0e0;border:1px solid #9e9e9e}\
.fill{height:100%;background:#1565c0}.ok{color:#2e7d32}.err{color:#c62828}";

fn document(title: &str, head_extra: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">{head_extra}<title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n",
        html_escape(title)
    )
}

/// The DownloadProgressURL page (B Table 61): bytes, percentage, phase
/// and outcome of the running (or last) transfer; refreshes itself.
pub fn progress_html(s: &Snapshot) -> String {
    let pct = s.percent();
    let (phase, outcome) = match &s.phase {
        Phase::Idle => ("idle", "<p id=\"outcome\">No download has run since the device started.</p>".to_string()),
        Phase::Downloading => ("downloading", String::new()),
        Phase::Verifying => ("verifying", String::new()),
        Phase::Installing => ("installing", String::new()),
        Phase::Done => ("done", "<p id=\"outcome\" class=\"ok\">The download completed successfully.</p>".to_string()),
        Phase::Failed { code, message } => {
            ("failed", format!("<p id=\"outcome\" class=\"err\">The download failed: fault {code}: {}</p>", html_escape(message)))
        }
    };
    let bytes = match s.total {
        0 => format!("{} bytes", s.bytes),
        t => format!("{} of {} bytes", s.bytes, t),
    };
    let bar = match pct {
        Some(p) => format!(
            "<div class=\"bar\" id=\"bar\" role=\"progressbar\" aria-valuenow=\"{p}\" aria-valuemin=\"0\" aria-valuemax=\"100\"><div class=\"fill\" style=\"width:{p}%\"></div></div>\n"
        ),
        None => String::new(),
    };
    let mut rows = String::new();
    for (id, label, value) in [
        ("phase", "Phase", phase.to_string()),
        ("bytes", "Received", bytes),
        ("percent", "Done", pct.map(|p| format!("{p}%")).unwrap_or_else(|| "unknown".into())),
        ("file-type", "File type", s.file_type.clone()),
        ("url", "Source", s.url.clone()),
        ("command-key", "Command key", s.command_key.clone()),
    ] {
        rows.push_str(&format!("<tr><th>{label}</th><td id=\"{id}\">{}</td></tr>\n", html_escape(&value)));
    }
    document(
        "Download progress",
        &format!("<meta http-equiv=\"refresh\" content=\"{PROGRESS_REFRESH_SECONDS}\">"),
        &format!("<h1>Download progress</h1>\n{bar}<table>\n{rows}</table>\n{outcome}\n"),
    )
}

/// `/progress.json`: the snapshot plus the computed percentage.
pub fn progress_json(s: &Snapshot) -> String {
    let mut v = serde_json::to_value(s).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.insert("percent".into(), s.percent().map_or(serde_json::Value::Null, |p| p.into()));
    }
    v.to_string()
}

/// The CPE-resident error page of a failed kick (A.4.2.1).
pub fn error_html(e: &KickError) -> String {
    document(
        "Request failed",
        "",
        &format!(
            "<h1>The request could not be completed</h1>\n<p id=\"error\" class=\"err\">{}</p>\n\
             <p>Go back to the previous page and try again later.</p>\n",
            html_escape(&e.to_string())
        ),
    )
}

/// Recently failed kicks, for their error pages.
#[derive(Debug, Default)]
struct ErrorPages(VecDeque<(String, KickError)>);

impl ErrorPages {
    fn add(&mut self, id: String, e: KickError) {
        if self.0.len() >= MAX_ERROR_PAGES {
            self.0.pop_front();
        }
        self.0.push_back((id, e));
    }

    fn get(&self, id: &str) -> Option<&KickError> {
        self.0.iter().find(|(i, _)| i == id).map(|(_, e)| e)
    }
}

/// The server's request handling: routing, the rate limit and the pages.
pub struct Pages {
    base: String,
    progress: Progress,
    limit: Mutex<KickLimit>,
    errors: Mutex<ErrorPages>,
    kick_timeout: Duration,
    on_kick: Box<dyn Fn(KickRequest) -> bool + Send + Sync>,
}

impl Pages {
    /// `base` is `http://host:port`; `on_kick` queues a kick with the agent
    /// (false: the agent is gone).
    pub fn new(base: String, cfg: &Config, progress: Progress, on_kick: impl Fn(KickRequest) -> bool + Send + Sync + 'static) -> Pages {
        Pages {
            base,
            progress,
            limit: Mutex::new(KickLimit { max: cfg.kicks_per_hour, period: Duration::from_secs(3600), sent: VecDeque::new() }),
            errors: Mutex::new(ErrorPages::default()),
            kick_timeout: cfg.kick_timeout,
            on_kick: Box::new(on_kick),
        }
    }

    fn error_redirect(&self, e: KickError) -> Page {
        tracing::warn!(error = %foundation::error_kind::chain(&e), "kick failed");
        match random::hex_secret(8) {
            Ok(id) => {
                let to = format!("{}{KICK_ERROR_PATH}?id={id}", self.base);
                self.errors.lock().unwrap_or_else(|p| p.into_inner()).add(id, e);
                // 303: the browser GETs the error page.
                Page::redirect(303, to)
            }
            // No id to find the page again by: show it right away.
            Err(r) => {
                tracing::warn!(error = %r, "kick error page shown in place");
                Page::html(e.status(), error_html(&e))
            }
        }
    }

    /// Answer one request. Blocks for a kick until its session is over.
    pub fn handle(&self, head: &RequestHead) -> Page {
        let (path, query) = head.target.split_once('?').unwrap_or((head.target.as_str(), ""));
        if head.method != "GET" && head.method != "HEAD" {
            return Page { allow: true, ..Page::html(405, document("Method not allowed", "", "<h1>Method not allowed</h1>\n")) };
        }
        // Exact paths only: no file system behind these URLs, so nothing
        // to traverse.
        match path {
            KICK_PATH => {
                // A kick has side effects; HEAD only shows the headers.
                if head.method == "HEAD" {
                    return Page::html(200, String::new());
                }
                let referer = head.headers.iter().find(|(n, _)| n == "referer").map(|(_, v)| v.as_str());
                self.kick(query, referer)
            }
            PROGRESS_PATH => Page::html(200, progress_html(&self.progress.snapshot())),
            PROGRESS_JSON_PATH => Page { content_type: "application/json", ..Page::html(200, progress_json(&self.progress.snapshot())) },
            KICK_ERROR_PATH => {
                let id = query.split('&').find_map(|p| p.strip_prefix("id=")).unwrap_or_default();
                match self.errors.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
                    Some(e) => Page {
                        retry_after: match e {
                            KickError::RateLimited { retry_after, .. } => Some(*retry_after),
                            _ => None,
                        },
                        ..Page::html(e.status(), error_html(e))
                    },
                    None => Page::html(404, document("Not found", "", "<h1>Not found</h1>\n<p>This error report has expired.</p>\n")),
                }
            }
            _ => Page::html(404, document("Not found", "", "<h1>Not found</h1>\n")),
        }
    }

    fn kick(&self, query: &str, referer: Option<&str>) -> Page {
        let args = match parse_kick(query, referer) {
            Ok(a) => a,
            Err(e) => return self.error_redirect(e),
        };
        // D.4: over the hourly maximum, no Kicked call is made.
        let taken = self.limit.lock().unwrap_or_else(|p| p.into_inner()).take(Instant::now());
        if let Err(retry_after) = taken {
            let limit = self.limit.lock().unwrap_or_else(|p| p.into_inner()).max;
            return self.error_redirect(KickError::RateLimited { limit, retry_after });
        }
        tracing::info!(command = %args.command, "kicked from the LAN");
        let (reply, waiter) = KickReplier::pair();
        if !(self.on_kick)(KickRequest { args, reply }) {
            return self.error_redirect(KickError::AgentGone);
        }
        match waiter.wait(self.kick_timeout).and_then(|next| redirect_target(&next, &self.base)) {
            // D.3 step 5 / D.4: an HTTP 302 redirect.
            Ok(to) => Page::redirect(302, to),
            Err(e) => self.error_redirect(e),
        }
    }
}

/// The running LAN server: one accept thread, one thread per connection
/// (at most [`MAX_CONNECTIONS`]), one request per connection.
pub struct LanServer {
    server: TcpServer,
    base: String,
}

impl LanServer {
    /// Start serving. `on_kick` must only queue the kick (false: cannot).
    pub fn start(cfg: Config, progress: Progress, on_kick: impl Fn(KickRequest) -> bool + Send + Sync + 'static) -> std::io::Result<LanServer> {
        let listener = TcpListener::bind(cfg.listen)?;
        let local_addr = listener.local_addr()?;
        let host = cfg.host.clone().unwrap_or_else(|| local_addr.ip().to_string());
        let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host };
        let base = format!("http://{host}:{}", local_addr.port());
        let pages = Pages::new(base.clone(), &cfg, progress, on_kick);
        let limits = Limits {
            name: "lan",
            max_connections: MAX_CONNECTIONS,
            stack_size: 256 * 1024,
            write_timeout: IO_TIMEOUT,
            busy: Page::html(503, document("Busy", "", "<h1>Busy</h1>\n<p>Too many requests at once; try again.</p>\n")).render(false),
        };
        let server = TcpServer::start(listener, limits, move |stream, peer| serve_connection(stream, peer, &pages))?;
        tracing::info!(%local_addr, "LAN web server listening");
        Ok(LanServer { server, base })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// ManagementServer.KickURL.
    pub fn kick_url(&self) -> String {
        format!("{}{KICK_PATH}", self.base)
    }

    /// ManagementServer.DownloadProgressURL.
    pub fn progress_url(&self) -> String {
        format!("{}{PROGRESS_PATH}", self.base)
    }
}

fn serve_connection(mut stream: TcpStream, peer: SocketAddr, pages: &Pages) {
    if stream.set_read_timeout(Some(IO_TIMEOUT)).is_err() || stream.set_write_timeout(Some(IO_TIMEOUT)).is_err() {
        return;
    }
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let deadline = Instant::now() + HEAD_DEADLINE;
    let plain = |status: u16, title: &str| Page::html(status, document(title, "", &format!("<h1>{}</h1>\n", html_escape(title)))).render(false);
    let head = loop {
        match parse_head(&buf) {
            Ok(Some((h, _))) => break h,
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(%peer, error = %foundation::error_kind::chain(&e), "LAN server: bad request");
                let status = match e {
                    HeadError::TooLarge | HeadError::TooManyHeaders => 431,
                    HeadError::Version => 505,
                    HeadError::Malformed(_) => 400,
                };
                return send_and_close(stream, &plain(status, reason(status)));
            }
        }
        if Instant::now() >= deadline {
            return send_and_close(stream, &plain(408, "Request Timeout"));
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) if buf.is_empty() => return,
            Err(_) => return send_and_close(stream, &plain(408, "Request Timeout")),
        }
    };
    // GET and HEAD carry no body; one would desynchronise nothing here (one
    // request per connection) but is refused all the same.
    let has_body = head.headers.iter().any(|(n, v)| n == "transfer-encoding" || (n == "content-length" && v != "0"));
    let page = if has_body { Page::html(400, document("Bad Request", "", "<h1>Bad Request</h1>\n")) } else { pages.handle(&head) };
    tracing::debug!(%peer, target = %head.target, status = page.status, "LAN request");
    send_and_close(stream, &page.render(head.method == "HEAD"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &str, target: &str, headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: method.into(),
            target: target.into(),
            minor_version: 1,
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        }
    }

    fn cfg(limit: u32) -> Config {
        Config { listen: "127.0.0.1:0".parse().unwrap(), host: None, kicks_per_hour: limit, kick_timeout: Duration::from_secs(2) }
    }

    #[test]
    fn table64_arguments() {
        let a = parse_kick("command=identify&arg=a+b%26c&next=http%3A%2F%2Fweb.example%2Fdone%3Fx%3D1&other=1", Some("http://web.example/start")).unwrap();
        assert_eq!(
            a,
            KickArgs {
                command: "identify".into(),
                referer: "http://web.example/start".into(),
                arg: "a b&c".into(),
                next: "http://web.example/done?x=1".into()
            }
        );
        // Missing ones are empty.
        assert_eq!(parse_kick("", None).unwrap(), KickArgs { command: String::new(), referer: String::new(), arg: String::new(), next: String::new() });
        // Table 64 lengths.
        assert!(matches!(parse_kick(&format!("command={}", "c".repeat(33)), None), Err(KickError::BadArgs(_))));
        assert!(parse_kick(&format!("command={}", "c".repeat(32)), None).is_ok());
        assert!(matches!(parse_kick(&format!("next={}", "n".repeat(1025)), None), Err(KickError::BadArgs(_))));
        assert!(matches!(parse_kick("command=a&command=b", None), Err(KickError::BadArgs(_))));
        assert!(matches!(parse_kick("arg=%zz", None), Err(KickError::BadArgs(_))));
        assert!(matches!(parse_kick("arg=%ff", None), Err(KickError::BadArgs(_))), "not UTF-8");
        assert!(matches!(parse_kick("arg=a%0Ab", None), Err(KickError::BadArgs(_))));
        // Table 53: Referer string(64).
        let long = format!("http://x/{}", "r".repeat(100));
        assert_eq!(parse_kick("", Some(&long)).unwrap().referer.chars().count(), 64);
    }

    #[test]
    fn next_url_targets() {
        let base = "http://192.168.1.1:8080";
        assert_eq!(redirect_target("/security/index.html", base).unwrap(), "http://192.168.1.1:8080/security/index.html");
        assert_eq!(redirect_target("https://acs.example/w?s=1", base).unwrap(), "https://acs.example/w?s=1");
        assert_eq!(redirect_target("http://web.example/caf\u{e9}", base).unwrap(), "http://web.example/caf%C3%A9");
        for bad in ["", "//evil.example/", "javascript:alert(1)", "http://x/\r\nSet-Cookie: a=b", "ftp://x/", "http:///path", "http://a b/"] {
            assert!(matches!(redirect_target(bad, base), Err(KickError::BadNextUrl(_))), "{bad:?}");
        }
    }

    #[test]
    fn escaping_everywhere() {
        let p = Progress::new();
        p.update(|s| {
            s.url = "http://x/<script>alert(1)</script>".into();
            s.file_type = "1 Firmware Upgrade Image".into();
            s.command_key = "\"'&".into();
            s.phase = Phase::Failed { code: 9010, message: "<b>bad</b>".into() };
            s.total = 1000;
            s.bytes = 250;
        });
        let html = progress_html(&p.snapshot());
        assert!(!html.contains("<script>") && !html.contains("<b>bad"), "{html}");
        assert!(html.contains("&lt;script&gt;") && html.contains("&quot;&#39;&amp;"));
        assert!(html.contains("250 of 1000 bytes") && html.contains("25%") && html.contains("width:25%"));
        assert!(html.contains("http-equiv=\"refresh\" content=\"2\""));
        let e = error_html(&KickError::Fault { code: 8002, string: "<i>x</i>".into() });
        assert!(e.contains("&lt;i&gt;x&lt;/i&gt;") && !e.contains("<i>"));
        let j: serde_json::Value = serde_json::from_str(&progress_json(&p.snapshot())).unwrap();
        assert_eq!(j["percent"], 25);
        assert_eq!(j["bytes"], 250);
        assert_eq!(j["phase"]["failed"]["code"], 9010);
    }

    #[test]
    fn routing_methods_and_rate_limit() {
        let kicks = Arc::new(Mutex::new(Vec::new()));
        let k2 = Arc::clone(&kicks);
        let pages = Pages::new("http://lan:1".into(), &cfg(2), Progress::new(), move |k: KickRequest| {
            k2.lock().unwrap().push(k.args.clone());
            k.reply.reply(Ok(format!("/landing?c={}", k.args.command)));
            true
        });
        assert_eq!(pages.handle(&head("POST", "/kick", &[])).status, 405);
        assert!(pages.handle(&head("DELETE", "/progress", &[])).allow);
        assert_eq!(pages.handle(&head("GET", "/kick/../progress", &[])).status, 404);
        assert_eq!(pages.handle(&head("GET", "/etc/passwd", &[])).status, 404);
        assert_eq!(pages.handle(&head("GET", "/progress?x", &[])).status, 200);
        // HEAD does not kick.
        assert_eq!(pages.handle(&head("HEAD", "/kick?command=a", &[])).status, 200);
        assert!(kicks.lock().unwrap().is_empty());
        let p = pages.handle(&head("GET", "/kick?command=a&next=%2Fx", &[("referer", "http://site/")]));
        assert_eq!((p.status, p.location.as_deref()), (302, Some("http://lan:1/landing?c=a")));
        assert_eq!(kicks.lock().unwrap()[0].referer, "http://site/");
        assert_eq!(pages.handle(&head("GET", "/kick?command=b", &[])).status, 302);
        // D.4: the third within the hour is refused without a Kicked call.
        let p = pages.handle(&head("GET", "/kick?command=c", &[]));
        assert_eq!(p.status, 303);
        assert_eq!(kicks.lock().unwrap().len(), 2);
        let err = pages.handle(&head("GET", p.location.unwrap().strip_prefix("http://lan:1").unwrap(), &[]));
        assert_eq!(err.status, 429);
        assert!(err.retry_after.is_some_and(|s| s > 3500));
        assert!(err.body.contains("at most 2 per hour"), "{}", err.body);
        assert_eq!(pages.handle(&head("GET", "/kick-error?id=nope", &[])).status, 404);
    }

    #[test]
    fn waiter_times_out_and_marks_abandoned() {
        let (r, w) = KickReplier::pair();
        assert_eq!(w.wait(Duration::from_millis(50)), Err(KickError::Timeout(0)));
        assert!(r.abandoned());
        let (r, w) = KickReplier::pair();
        let t = std::thread::spawn(move || w.wait(Duration::from_secs(5)));
        r.reply(Ok("/n".into()));
        r.reply(Err(KickError::NoAnswer)); // the first answer wins
        assert_eq!(t.join().unwrap(), Ok("/n".into()));
    }
}
