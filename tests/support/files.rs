//! A tiny HTTP file server for transfer tests (test support only): serves
//! registered byte strings over real HTTP on loopback, optionally behind
//! Basic or Digest authentication, optionally stalling mid-body; records
//! every request (method, path, body) so tests can check Upload PUTs.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agent::digest;

#[derive(Debug, Clone)]
pub enum Auth {
    Basic { user: String, pass: String },
    Digest { user: String, pass: String },
}

#[derive(Debug, Clone)]
pub struct Route {
    pub status: u16,
    pub body: Vec<u8>,
    pub auth: Option<Auth>,
    /// Send this many bytes, then stall until released (or 60 s).
    pub stall_after: Option<usize>,
}

impl Route {
    pub fn ok(body: Vec<u8>) -> Route {
        Route { status: 200, body, auth: None, stall_after: None }
    }
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub status: u16,
    pub at: Instant,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Route>,
    requests: Vec<Request>,
    digest: Option<digest::Server>,
}

pub struct FileServer {
    pub base: String,
    state: Arc<Mutex<State>>,
    server: Arc<tiny_http::Server>,
    /// Body bytes sent so far (all responses).
    pub sent: Arc<AtomicU64>,
    /// Set to let stalled bodies continue.
    pub release: Arc<AtomicBool>,
}

struct Stalling {
    data: Vec<u8>,
    pos: usize,
    stall_after: usize,
    sent: Arc<AtomicU64>,
    release: Arc<AtomicBool>,
}

impl Read for Stalling {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.stall_after && !self.release.load(Ordering::SeqCst) {
            let t = Instant::now();
            while !self.release.load(Ordering::SeqCst) {
                if t.elapsed() > Duration::from_secs(60) {
                    return Err(std::io::Error::other("stalled for good"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let limit = if self.release.load(Ordering::SeqCst) { self.data.len() } else { self.stall_after.min(self.data.len()) };
        let n = buf.len().min(limit - self.pos).min(16 * 1024);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        self.sent.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}

impl FileServer {
    pub fn start() -> FileServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind file server"));
        let port = server.server_addr().to_ip().unwrap().port();
        let state = Arc::new(Mutex::new(State { digest: Some(digest::Server::new("cpekit-files").expect("random opaque")), ..Default::default() }));
        let sent = Arc::new(AtomicU64::new(0));
        let release = Arc::new(AtomicBool::new(false));
        let (s2, st2, sent2, rel2) = (server.clone(), state.clone(), sent.clone(), release.clone());
        std::thread::spawn(move || {
            for req in s2.incoming_requests() {
                let (st, sent, rel) = (st2.clone(), sent2.clone(), rel2.clone());
                // One thread per request: a stalled body blocks no one else.
                std::thread::spawn(move || serve(req, &st, sent, rel));
            }
        });
        FileServer { base: format!("http://127.0.0.1:{port}"), state, server, sent, release }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn route(&self, path: &str, r: Route) {
        self.state.lock().unwrap().routes.insert(path.to_string(), r);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.release.store(true, Ordering::SeqCst);
        self.server.unblock();
    }
}

fn header(req: &tiny_http::Request, name: &str) -> Option<String> {
    req.headers().iter().find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name)).map(|h| h.value.as_str().to_string())
}

fn serve(mut req: tiny_http::Request, st: &Arc<Mutex<State>>, sent: Arc<AtomicU64>, release: Arc<AtomicBool>) {
    let mut body = Vec::new();
    let _ = req.as_reader().take(64 << 20).read_to_end(&mut body);
    let method = req.method().as_str().to_string();
    let path = req.url().to_string();
    let authorization = header(&req, "Authorization");
    let mut rec = Request {
        method: method.clone(),
        path: path.clone(),
        body,
        authorization: authorization.clone(),
        content_type: header(&req, "Content-Type"),
        status: 200,
        at: Instant::now(),
    };
    let mut s = st.lock().unwrap();
    let Some(route) = s.routes.get(&path).cloned() else {
        rec.status = 404;
        s.requests.push(rec);
        drop(s);
        let _ = req.respond(tiny_http::Response::from_string("no such file").with_status_code(404));
        return;
    };
    if let Some(auth) = &route.auth {
        let ok = match (auth, authorization.as_deref()) {
            (Auth::Basic { user, pass }, Some(a)) => digest::verify_basic(a, user, pass),
            (Auth::Digest { user, pass }, Some(a)) => s.digest.as_mut().unwrap().verify(a, &method, user, pass, Instant::now()) == digest::Verdict::Ok,
            _ => false,
        };
        if !ok {
            let challenge = match auth {
                Auth::Basic { .. } => "Basic realm=\"cpekit-files\"".to_string(),
                Auth::Digest { .. } => s.digest.as_mut().unwrap().challenge(Instant::now(), false).expect("random nonce"),
            };
            rec.status = 401;
            s.requests.push(rec);
            drop(s);
            let mut r = tiny_http::Response::from_string("authentication required").with_status_code(401);
            r.add_header(tiny_http::Header::from_bytes(&b"WWW-Authenticate"[..], challenge.as_bytes()).unwrap());
            let _ = req.respond(r);
            return;
        }
    }
    rec.status = route.status;
    s.requests.push(rec);
    drop(s);
    if method == "PUT" || method == "POST" {
        let _ = req.respond(tiny_http::Response::from_string("stored").with_status_code(route.status));
        return;
    }
    let len = route.body.len();
    let reader = Stalling { data: route.body, pos: 0, stall_after: route.stall_after.unwrap_or(usize::MAX), sent, release };
    // Content-Length, never chunked (tiny_http chunks large bodies by default).
    let r = tiny_http::Response::new(tiny_http::StatusCode(route.status), vec![], reader, Some(len), None).with_chunked_threshold(usize::MAX);
    let _ = req.respond(r);
}

/// A server that sends the headers (Content-Length of all of `body`) and
/// the first `cut` bytes, then closes the connection: a file server dying
/// mid-body. Returns its URL.
pub fn dying_server(body: Vec<u8>, cut: usize) -> String {
    use std::io::Write;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match c.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&b[..n]),
                }
            }
            let _ = write!(c, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            let _ = c.write_all(&body[..cut]);
            let _ = c.flush();
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    });
    format!("http://127.0.0.1:{port}/dies.pkg")
}
