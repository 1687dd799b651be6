//! An event-driven load-test ACS (test and benchmark support, not a
//! product feature): `mio`, one poll per thread, many concurrent sessions.
//! It answers every Inform with an InformResponse (the cwmp:ID echoed,
//! A.3.3.1) and an empty POST with 204 (3.7.1.4: the session ends), unless
//! a one-off request is queued for that CPE's serial number: then the
//! empty POST gets that request and the CPE's response a 204.
//!
//! Used by `examples/sim_acs.rs` (`scripts/bench-simulate`) and by
//! `tests/agent_simulate.rs`. With `record`, every Inform is decoded with
//! the agent's SOAP codec and kept (serial, events, ConnectionRequestURL);
//! without, the serial number is picked out of the text (cheap, for
//! benchmarks).

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use agent::soap::{self, Body};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};

const LISTENER: Token = Token(usize::MAX);
/// Largest request accepted (head + body).
const MAX_REQUEST: usize = 4 << 20;

/// One Inform as the ACS saw it.
#[derive(Debug, Clone)]
pub struct InformSeen {
    pub serial: String,
    pub events: Vec<String>,
    pub connection_request_url: Option<String>,
}

#[derive(Default)]
pub struct Shared {
    pub informs: AtomicU64,
    /// Sessions ended by a 204.
    pub sessions: AtomicU64,
    pub serials: Mutex<HashSet<String>>,
    pub seen: Mutex<Vec<InformSeen>>,
    /// One-off requests by serial number, sent in reply to its next empty POST.
    pub scripts: Mutex<HashMap<String, Body>>,
    /// (serial, body) of what the CPEs posted besides Informs and empty POSTs.
    pub responses: Mutex<Vec<(String, String)>>,
    record: bool,
    stop: AtomicBool,
}

pub struct LoadAcs {
    pub url: String,
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let i = s.find(open)? + open.len();
    let j = s[i..].find(close)? + i;
    Some(&s[i..j])
}

impl LoadAcs {
    pub fn start(listen: &str, threads: usize, record: bool) -> LoadAcs {
        let std_listener = std::net::TcpListener::bind(listen).expect("bind load ACS");
        // std listens with a backlog of 128: thousands of CPEs connecting at
        // once would overflow it and wait for SYN retransmits (1 s).
        // SAFETY: listen(2) on a socket we own; Linux raises the backlog.
        unsafe { libc::listen(std::os::unix::io::AsRawFd::as_raw_fd(&std_listener), 4096) };
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let shared = Arc::new(Shared { record, ..Shared::default() });
        let threads = (0..threads.max(1))
            .map(|_| {
                let l = TcpListener::from_std(std_listener.try_clone().unwrap());
                let shared = shared.clone();
                std::thread::spawn(move || serve(l, &shared))
            })
            .collect();
        LoadAcs { url: format!("http://{addr}/acs"), addr, shared, threads }
    }

    pub fn informs(&self) -> u64 {
        self.shared.informs.load(Ordering::Acquire)
    }

    pub fn seen(&self) -> Vec<InformSeen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Send `req` in the next session of `serial` (after its InformResponse).
    pub fn script(&self, serial: &str, req: Body) {
        self.shared.scripts.lock().unwrap().insert(serial.to_string(), req);
    }

    pub fn responses(&self) -> Vec<(String, String)> {
        self.shared.responses.lock().unwrap().clone()
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for LoadAcs {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Conn {
    stream: TcpStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    written: usize,
    serial: String,
}

fn serve(mut listener: TcpListener, shared: &Shared) {
    let mut poll = Poll::new().unwrap();
    poll.registry().register(&mut listener, LISTENER, Interest::READABLE).unwrap();
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut events = Events::with_capacity(1024);
    // The InformResponse around the echoed ID.
    let ir = soap::to_xml(Some("\u{1}"), false, &Body::InformResponse { max_envelopes: 1 });
    let (ir_head, ir_tail) = ir.split_once('\u{1}').unwrap();
    while !shared.stop.load(Ordering::Relaxed) {
        if poll.poll(&mut events, Some(Duration::from_millis(100))).is_err() {
            continue;
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            let i = free.pop().unwrap_or_else(|| {
                                conns.push(None);
                                conns.len() - 1
                            });
                            poll.registry().register(&mut stream, Token(i), Interest::READABLE | Interest::WRITABLE).unwrap();
                            conns[i] = Some(Conn { stream, inbuf: Vec::new(), out: Vec::new(), written: 0, serial: String::new() });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(_) => break,
                    }
                }
                continue;
            }
            let i = ev.token().0;
            let Some(c) = conns[i].as_mut() else { continue };
            if !step(c, shared, ir_head, ir_tail) {
                // Closing the socket takes it out of the poll.
                conns[i] = None;
                free.push(i);
            }
        }
    }
}

/// Read, answer complete requests, write. False: close the connection.
fn step(c: &mut Conn, shared: &Shared, ir_head: &str, ir_tail: &str) -> bool {
    let mut open = true;
    let mut chunk = [0u8; 16384];
    loop {
        match c.stream.read(&mut chunk) {
            Ok(0) => {
                open = false;
                break;
            }
            Ok(n) => {
                c.inbuf.extend_from_slice(&chunk[..n]);
                if c.inbuf.len() > MAX_REQUEST {
                    return false;
                }
                // A complete request: the CPE waits for the answer (a
                // close comes as a new readiness event).
                if complete(&c.inbuf) {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let head = match req.parse(&c.inbuf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => break,
            Err(_) => return false,
        };
        let len: usize = req
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
            .unwrap_or(0);
        if c.inbuf.len() < head + len {
            break;
        }
        let body = String::from_utf8_lossy(&c.inbuf[head..head + len]).into_owned();
        c.inbuf.drain(..head + len);
        answer(c, &body, shared, ir_head, ir_tail);
    }
    while c.written < c.out.len() {
        match c.stream.write(&c.out[c.written..]) {
            Ok(n) => c.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    c.out.clear();
    c.written = 0;
    open
}

/// Whether `buf` holds a complete request (head and Content-Length body).
fn complete(buf: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(head)) => {
            let len: usize = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0);
            buf.len() >= head + len
        }
        _ => false,
    }
}

fn answer(c: &mut Conn, body: &str, shared: &Shared, ir_head: &str, ir_tail: &str) {
    let ok = |out: &mut Vec<u8>, xml: &str| {
        out.extend_from_slice(format!("HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=\"utf-8\"\r\nContent-Length: {}\r\n\r\n", xml.len()).as_bytes());
        out.extend_from_slice(xml.as_bytes());
    };
    if body.contains("<cwmp:Inform>") {
        c.serial = between(body, "<SerialNumber>", "</SerialNumber>").unwrap_or("").to_string();
        shared.serials.lock().unwrap().insert(c.serial.clone());
        if shared.record {
            // An Inform the codec cannot read is recorded too (no events,
            // the parse error in place of the URL): the tests' assertions
            // then name it instead of finding one Inform missing.
            let seen = match soap::parse(body).map(|envs| envs.into_iter().next().map(|e| e.body)) {
                Ok(Some(Ok(Body::Inform { device_id, events, parameters, .. }))) => InformSeen {
                    serial: device_id.serial_number,
                    events: events.into_iter().map(|e| e.code).collect(),
                    connection_request_url: parameters.into_iter().find(|p| p.name.ends_with("ManagementServer.ConnectionRequestURL")).map(|p| p.value),
                },
                other => InformSeen { serial: c.serial.clone(), events: Vec::new(), connection_request_url: Some(format!("unreadable Inform: {other:?}")) },
            };
            shared.seen.lock().unwrap().push(seen);
        }
        // Counted after it is recorded: a test that waits on the count
        // then reads `seen` finds every Inform counted there.
        shared.informs.fetch_add(1, Ordering::Release);
        let id = between(body, "<cwmp:ID soap:mustUnderstand=\"1\">", "</cwmp:ID>").unwrap_or("");
        ok(&mut c.out, &format!("{ir_head}{id}{ir_tail}"));
        return;
    }
    if body.is_empty() {
        let script = if shared.record { shared.scripts.lock().unwrap().remove(&c.serial) } else { None };
        if let Some(req) = script {
            ok(&mut c.out, &soap::to_xml(Some("acs-1"), false, &req));
            return;
        }
    } else if shared.record {
        shared.responses.lock().unwrap().push((c.serial.clone(), body.to_string()));
    }
    shared.sessions.fetch_add(1, Ordering::Relaxed);
    c.out.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
}
