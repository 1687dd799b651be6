//! The CPE's calls of optional ACS methods (A.4.2): Kicked (A.4.2.1, for
//! a LAN kick, Appendix D) and RequestDownload (A.4.2.2, spooled by
//! `cpekit agent request-download`), as a session [`Extension`].
//!
//! These are *Server* methods: the CPE calls them, so they are not in the
//! CPE's own GetRPCMethods answer (A.3.1.1 lists "the RPC methods the
//! recipient supports"); the extension adds no CPE methods. An ACS that
//! does not support them answers fault 8000, which ends the request like
//! any other answer.
//!
//! Events (A.3.3.1 Table 35): a kick's session carries "5 KICKED" ("a
//! Kicked method will be issued during this session"); it is not persisted,
//! since a kick whose session failed is answered with the error page and
//! never retried. Issue 1's Table 35 has no cause for a RequestDownload
//! session; the BBF cwmp-1-0 schema (Amendment 1, same namespace) defines
//! "9 REQUEST DOWNLOAD" for exactly this, so that code is used. It is
//! queued (persistently) while a request is spooled, so a session that
//! broke before the ACS answered is retried with the usual back-off.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::datamodel::store::Store;
use super::datamodel::Schema;
use super::lan::{KickError, KickRequest};
use super::rpc::Effects;
use super::session::Extension;
use super::soap::{Arg, Body};

/// Table 35: the session was established for web identity management.
pub const KICKED_EVENT: &str = "5 KICKED";
/// The event of a session established to call RequestDownload (BBF
/// cwmp-1-0 schema; see the module documentation).
pub const REQUEST_DOWNLOAD_EVENT: &str = "9 REQUEST DOWNLOAD";
/// Spool directory under the state directory.
pub const SPOOL_DIR: &str = "request-download";

/// A.4.2.2 Table 55: ArgStruct[16].
const MAX_ARGS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum RequestDownloadError {
    #[error("FileType {0:?} is not one of \"1 Firmware Upgrade Image\", \"2 Web Content\", \"3 Vendor Configuration File\" or \"X <OUI> <name>\" (Table 27)")]
    FileType(String),
    #[error("at most {MAX_ARGS} FileTypeArg arguments (A.4.2.2 Table 55), got {0}")]
    TooManyArgs(usize),
    #[error("FileTypeArg {0:?}: the name must be 1 to 64 characters and the value at most 256 (Table 57)")]
    Arg(String),
    #[error("spool {path}: {source}")]
    Spool { path: PathBuf, source: std::io::Error },
}

impl foundation::Kind for RequestDownloadError {
    fn kind(&self) -> foundation::ErrorKind {
        match self {
            RequestDownloadError::FileType(_) | RequestDownloadError::TooManyArgs(_) | RequestDownloadError::Arg(_) => foundation::ErrorKind::Malformed,
            RequestDownloadError::Spool { .. } => foundation::ErrorKind::Runtime,
        }
    }
}

/// One RequestDownload the CPE is to send (A.4.2.2 Table 55).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadRequest {
    pub file_type: String,
    /// FileTypeArg name/value pairs (Table 57).
    #[serde(default)]
    pub args: Vec<(String, String)>,
}

impl DownloadRequest {
    /// Table 27 FileType values, Table 55/57 argument limits.
    pub fn validate(&self) -> Result<(), RequestDownloadError> {
        let ft = &self.file_type;
        let standard = matches!(ft.as_str(), "1 Firmware Upgrade Image" | "2 Web Content" | "3 Vendor Configuration File");
        let vendor = ft
            .strip_prefix("X ")
            .and_then(|r| r.split_once(' '))
            .is_some_and(|(oui, rest)| oui.len() == 6 && oui.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)) && !rest.is_empty());
        if !(standard || vendor) || ft.chars().count() > 64 {
            return Err(RequestDownloadError::FileType(ft.clone()));
        }
        if self.args.len() > MAX_ARGS {
            return Err(RequestDownloadError::TooManyArgs(self.args.len()));
        }
        for (n, v) in &self.args {
            if n.is_empty() || n.chars().count() > 64 || v.chars().count() > 256 {
                return Err(RequestDownloadError::Arg(n.clone()));
            }
        }
        Ok(())
    }

    pub fn to_body(&self) -> Body {
        Body::RequestDownload {
            file_type: self.file_type.clone(),
            args: self.args.iter().map(|(name, value)| Arg { name: name.clone(), value: value.clone() }).collect(),
        }
    }
}

/// Spool a RequestDownload for the agent (running or not): it is sent in
/// the next session, which its spooling causes.
pub fn spool_request_download(state_dir: &Path, req: &DownloadRequest) -> Result<PathBuf, RequestDownloadError> {
    req.validate()?;
    let dir = state_dir.join(SPOOL_DIR);
    let err = |source| RequestDownloadError::Spool { path: dir.clone(), source };
    std::fs::create_dir_all(&dir).map_err(err)?;
    let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let path = dir.join(format!("{stamp:032}-{}.json", std::process::id()));
    super::state::write_json_atomic(&path, req).map_err(err)?;
    Ok(path)
}

/// The spooled requests, oldest first. Unreadable or invalid files are
/// dropped with a warning.
pub fn spooled_request_downloads(state_dir: &Path) -> Vec<(PathBuf, DownloadRequest)> {
    let Ok(rd) = std::fs::read_dir(state_dir.join(SPOOL_DIR)) else { return Vec::new() };
    let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        match std::fs::read(&f).ok().and_then(|b| serde_json::from_slice::<DownloadRequest>(&b).ok()).filter(|r| r.validate().is_ok()) {
            Some(r) => out.push((f, r)),
            None => {
                warn!(file = %f.display(), "unreadable RequestDownload spool file dropped");
                let _ = std::fs::remove_file(&f);
            }
        }
    }
    out
}

/// Whether a RequestDownload waits to be sent.
pub fn has_spooled_request_downloads(state_dir: &Path) -> bool {
    std::fs::read_dir(state_dir.join(SPOOL_DIR)).map(|mut rd| rd.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "json")))).unwrap_or(false)
}

/// What the ACS answered to one RequestDownload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadAnswer {
    Accepted,
    Fault { code: u32, string: String },
}

/// The session extension carrying this session's Kicked and
/// RequestDownload calls and collecting the ACS's answers.
#[derive(Debug, Default)]
pub struct CpeRequests {
    kicks: Vec<(KickRequest, bool)>,
    downloads: Vec<(PathBuf, DownloadRequest, Option<DownloadAnswer>)>,
}

impl CpeRequests {
    pub fn new(kicks: Vec<KickRequest>, downloads: Vec<(PathBuf, DownloadRequest)>) -> CpeRequests {
        CpeRequests { kicks: kicks.into_iter().map(|k| (k, false)).collect(), downloads: downloads.into_iter().map(|(p, r)| (p, r, None)).collect() }
    }

    /// Whether the session calls Kicked (its Inform then carries "5 KICKED").
    pub fn has_kicks(&self) -> bool {
        !self.kicks.is_empty()
    }

    /// The CPE requests for `Session::new`, in order.
    pub fn requests(&self) -> Vec<Body> {
        self.kicks.iter().map(|(k, _)| k.args.to_body()).chain(self.downloads.iter().map(|(_, r, _)| r.to_body())).collect()
    }

    /// The answers to the RequestDownloads so far.
    pub fn download_answers(&self) -> Vec<(DownloadRequest, Option<DownloadAnswer>)> {
        self.downloads.iter().map(|(_, r, a)| (r.clone(), a.clone())).collect()
    }

    /// The session is over (`error`: why it failed). Kicks not answered get
    /// an error; answered RequestDownloads leave the spool, unanswered ones
    /// stay for the next session.
    pub fn finish(self, error: Option<String>) {
        for (k, answered) in self.kicks {
            if !answered {
                k.reply.reply(Err(match &error {
                    Some(e) => KickError::Session(e.clone()),
                    None => KickError::NoAnswer,
                }));
            }
        }
        for (path, _, answer) in self.downloads {
            if answer.is_some() {
                if let Err(e) = std::fs::remove_file(&path) {
                    warn!(file = %path.display(), error = %foundation::error_kind::chain(&e), "cannot remove an answered RequestDownload from the spool");
                }
            }
        }
    }
}

impl Extension for CpeRequests {
    fn methods(&self) -> &'static [&'static str] {
        &[]
    }

    fn request(&mut self, _: &Schema, _: &mut Store, _: &Body, _: &mut Effects) -> Option<Body> {
        None
    }

    fn response(&mut self, request: &Body, resp: &Body) {
        match request {
            Body::Kicked { .. } => {
                let Some((k, answered)) = self.kicks.iter_mut().find(|(k, a)| !*a && k.args.to_body() == *request) else { return };
                *answered = true;
                k.reply.reply(match resp {
                    Body::KickedResponse { next_url } => {
                        info!(%next_url, "KickedResponse");
                        Ok(next_url.clone())
                    }
                    // A.4.2.1: on a fault the browser goes to the CPE's error page.
                    Body::Fault(f) => Err(KickError::Fault { code: f.code, string: f.string.clone() }),
                    other => Err(KickError::Session(format!("the ACS answered Kicked with {}", other.method()))),
                });
            }
            Body::RequestDownload { .. } => {
                let Some((_, r, answer)) = self.downloads.iter_mut().find(|(_, r, a)| a.is_none() && r.to_body() == *request) else { return };
                *answer = Some(match resp {
                    Body::RequestDownloadResponse => {
                        // A.4.2.2: the ACS MAY now call Download.
                        info!(file_type = %r.file_type, "RequestDownload accepted by the ACS");
                        DownloadAnswer::Accepted
                    }
                    Body::Fault(f) => {
                        warn!(file_type = %r.file_type, code = f.code, fault = %f.string, "the ACS refused RequestDownload");
                        DownloadAnswer::Fault { code: f.code, string: f.string.clone() }
                    }
                    other => {
                        warn!(file_type = %r.file_type, answer = other.method(), "unexpected answer to RequestDownload");
                        DownloadAnswer::Fault { code: 0, string: format!("unexpected {}", other.method()) }
                    }
                });
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lan::{KickArgs, KickReplier};
    use crate::soap::Fault;
    use std::time::Duration;

    #[test]
    fn file_types_and_limits() {
        let ok = |ft: &str| DownloadRequest { file_type: ft.into(), args: vec![] }.validate().is_ok();
        assert!(ok("1 Firmware Upgrade Image") && ok("2 Web Content") && ok("3 Vendor Configuration File") && ok("X 00D09E Blob"));
        assert!(!ok("1 Firmware Upgrade") && !ok("X 00d09e Blob") && !ok("X 00D09E ") && !ok(""));
        let many = DownloadRequest { file_type: "2 Web Content".into(), args: (0..17).map(|i| (format!("n{i}"), "v".into())).collect() };
        assert!(matches!(many.validate(), Err(RequestDownloadError::TooManyArgs(17))));
        let empty_name = DownloadRequest { file_type: "2 Web Content".into(), args: vec![(String::new(), "v".into())] };
        assert!(matches!(empty_name.validate(), Err(RequestDownloadError::Arg(_))));
    }

    #[test]
    fn spool_and_answers() {
        let d = tempfile::tempdir().unwrap();
        assert!(!has_spooled_request_downloads(d.path()));
        let r1 = DownloadRequest { file_type: "2 Web Content".into(), args: vec![("Version".into(), "2.1".into())] };
        let r2 = DownloadRequest { file_type: "1 Firmware Upgrade Image".into(), args: vec![] };
        spool_request_download(d.path(), &r1).unwrap();
        spool_request_download(d.path(), &r2).unwrap();
        std::fs::write(d.path().join(SPOOL_DIR).join("zz-broken.json"), b"{").unwrap();
        assert!(has_spooled_request_downloads(d.path()));
        let spooled = spooled_request_downloads(d.path());
        assert_eq!(spooled.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(), vec![r1.clone(), r2.clone()]);

        let (reply, waiter) = KickReplier::pair();
        let args = KickArgs { command: "c".into(), referer: "r".into(), arg: "a".into(), next: "n".into() };
        let mut x = CpeRequests::new(vec![KickRequest { args: args.clone(), reply }], spooled);
        let reqs = x.requests();
        assert_eq!(reqs.len(), 3);
        assert_eq!(reqs[0], args.to_body());
        x.response(&reqs[0], &Body::KickedResponse { next_url: "/next".into() });
        x.response(&reqs[1], &Body::RequestDownloadResponse);
        // The second RequestDownload is not answered: it stays spooled.
        assert_eq!(x.download_answers()[0].1, Some(DownloadAnswer::Accepted));
        x.finish(Some("connection reset".into()));
        assert_eq!(waiter.wait(Duration::from_secs(1)), Ok("/next".into()));
        let left = spooled_request_downloads(d.path());
        assert_eq!(left.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(), vec![r2]);
    }

    #[test]
    fn server_methods_are_not_cpe_methods() {
        // A.3.1.1: GetRPCMethods lists what the CPE supports; Kicked and
        // RequestDownload are the ACS's methods (A.4.2).
        let schema = Schema::igd();
        let mut store = Store::new(schema);
        let mut x = CpeRequests::default();
        let mut h = crate::session::ParameterHandler::new(schema, &mut store).with(&mut x);
        use crate::session::Handler;
        let Body::GetRPCMethodsResponse { methods } = h.request(&Body::GetRPCMethods) else { panic!() };
        assert!(methods.iter().any(|m| m == "GetParameterValues"));
        assert!(!methods.iter().any(|m| m == "Kicked" || m == "RequestDownload"), "{methods:?}");
    }

    #[test]
    fn kick_faults_and_unanswered() {
        let (r1, w1) = KickReplier::pair();
        let (r2, w2) = KickReplier::pair();
        let a = |c: &str| KickArgs { command: c.into(), referer: String::new(), arg: String::new(), next: String::new() };
        let mut x = CpeRequests::new(vec![KickRequest { args: a("1"), reply: r1 }, KickRequest { args: a("2"), reply: r2 }], vec![]);
        let reqs = x.requests();
        x.response(&reqs[0], &Body::Fault(Fault::new(8001, "Request denied")));
        x.finish(None);
        assert_eq!(w1.wait(Duration::from_secs(1)), Err(KickError::Fault { code: 8001, string: "Request denied".into() }));
        assert_eq!(w2.wait(Duration::from_secs(1)), Err(KickError::NoAnswer));
    }
}
