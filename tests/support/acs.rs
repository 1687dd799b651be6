//! A scripted test ACS (test support only, not a product feature): serves
//! CWMP over real HTTP on loopback with tiny_http, answers Informs, sends
//! the requests of a per-session script, answers CPE requests, and records
//! every POST (body, peer address = TCP connection, cookies, credentials)
//! so tests can assert on the wire behaviour and validate every envelope
//! the agent emitted against the CWMP 1.0 schema.

#![allow(dead_code)]

use std::collections::{HashSet, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use agent::digest;
use agent::soap::{self, Body, Envelope, Fault};

/// One step of a session script: the envelopes of one HTTP response.
#[derive(Debug, Clone)]
pub struct Step {
    pub requests: Vec<Body>,
    /// Set HoldRequests on the last envelope.
    pub hold: bool,
}

impl Step {
    pub fn one(b: Body) -> Step {
        Step { requests: vec![b], hold: false }
    }
    pub fn many(b: Vec<Body>) -> Step {
        Step { requests: b, hold: false }
    }
}

#[derive(Debug, Clone)]
pub enum AuthMode {
    None,
    Basic {
        user: String,
        pass: String,
    },
    /// Digest; the authentication holds for the TCP connection (3.4.4) and
    /// the nonce is bound to the connection it was issued on (GenieACS).
    Digest {
        user: String,
        pass: String,
    },
}

/// One POST as received.
#[derive(Debug, Clone)]
pub struct Post {
    pub body: String,
    pub peer: SocketAddr,
    pub cookie: Option<String>,
    pub authorization: Option<String>,
    pub soap_action: Option<String>,
    pub status: u16,
    pub session: usize,
}

/// What happened in one session.
#[derive(Debug, Clone, Default)]
pub struct SessionLog {
    pub inform: Option<Envelope>,
    /// Every envelope the CPE sent after the Inform.
    pub received: Vec<Envelope>,
    pub sent_requests: Vec<Body>,
}

impl SessionLog {
    pub fn events(&self) -> Vec<String> {
        match self.inform.as_ref().map(|e| &e.body) {
            Some(Ok(Body::Inform { events, .. })) => events.iter().map(|e| e.code.clone()).collect(),
            _ => vec![],
        }
    }
    pub fn inform_param(&self, name: &str) -> Option<String> {
        match self.inform.as_ref().map(|e| &e.body) {
            Some(Ok(Body::Inform { parameters, .. })) => parameters.iter().find(|p| p.name == name).map(|p| p.value.clone()),
            _ => None,
        }
    }
    pub fn retry_count(&self) -> Option<u32> {
        match self.inform.as_ref().map(|e| &e.body) {
            Some(Ok(Body::Inform { retry_count, .. })) => Some(*retry_count),
            _ => None,
        }
    }
    /// The responses (bodies) the CPE sent, in order.
    pub fn responses(&self) -> Vec<Body> {
        self.received.iter().filter_map(|e| e.body.clone().ok()).collect()
    }
}

#[derive(Default)]
pub struct AcsState {
    /// Scripts for the coming sessions (one Vec<Step> per session).
    pub scripts: VecDeque<Vec<Step>>,
    pub auth: Option<AuthMode>,
    pub digest: Option<digest::Server>,
    /// Connections (peer addresses) that authenticated.
    pub authenticated: HashSet<SocketAddr>,
    /// Peer address each Digest nonce was issued to.
    pub nonce_peers: Vec<(String, SocketAddr)>,
    /// Refuse this many Informs with HTTP 503 (ACS "down").
    pub refuse_informs: u32,
    /// Answer this many Informs with Fault 8005 first.
    pub retry_informs: u32,
    pub max_envelopes: u32,
    /// Answers to CPE requests (A.4.2: Kicked, RequestDownload, ...) before
    /// the defaults; None falls through to them.
    pub cpe_answer: Option<CpeAnswer>,
    /// Answer this many TransferCompletes with Fault 8002 first (A.5.3 retry).
    pub transfer_complete_faults: u32,
    pub posts: Vec<Post>,
    pub sessions: Vec<SessionLog>,
    current: Option<VecDeque<Step>>,
    outstanding: usize,
    next_id: u64,
}

/// A test's answer to a CPE request.
pub type CpeAnswer = Arc<dyn Fn(&Body) -> Option<Body> + Send + Sync>;

pub struct TestAcs {
    pub url: String,
    pub state: Arc<Mutex<AcsState>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl TestAcs {
    pub fn start() -> TestAcs {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind test ACS"));
        let port = server.server_addr().to_ip().unwrap().port();
        let state = Arc::new(Mutex::new(AcsState { max_envelopes: 1, ..Default::default() }));
        let (s2, st2) = (server.clone(), state.clone());
        let thread = std::thread::spawn(move || {
            for req in s2.incoming_requests() {
                serve(req, &st2);
            }
        });
        TestAcs { url: format!("http://127.0.0.1:{port}/acs"), state, server, thread: Some(thread) }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut AcsState) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    pub fn push_script(&self, steps: Vec<Step>) {
        self.with(|s| s.scripts.push_back(steps));
    }

    pub fn set_auth(&self, mode: AuthMode) {
        self.with(|s| {
            s.digest = matches!(mode, AuthMode::Digest { .. }).then(|| digest::Server::new("cpekit-test-acs").expect("random opaque"));
            s.auth = Some(mode);
        });
    }

    pub fn sessions(&self) -> Vec<SessionLog> {
        self.with(|s| s.sessions.clone())
    }

    pub fn posts(&self) -> Vec<Post> {
        self.with(|s| s.posts.clone())
    }

    /// Wait until `n` sessions have started (Informs answered).
    pub fn wait_sessions(&self, n: usize, timeout: Duration) -> bool {
        let t = Instant::now();
        while t.elapsed() < timeout {
            if self.with(|s| s.sessions.len() >= n && s.current.is_none()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Validate every envelope the CPE posted against cwmp-1-0.xsd with
    /// xmllint; returns the number of envelopes checked.
    pub fn validate_all(&self) -> usize {
        let posts = self.posts();
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for (i, p) in posts.iter().enumerate() {
            for (j, env) in split_envelopes(&p.body).into_iter().enumerate() {
                let f = dir.path().join(format!("{i}-{j}.xml"));
                std::fs::write(&f, standalone_body(&env)).unwrap();
                files.push(f);
            }
        }
        if files.is_empty() {
            return 0;
        }
        let out = Command::new("xmllint")
            .args(["--noout", "--nonet", "--schema"])
            .arg(schema_path())
            .args(&files)
            .output()
            .expect("xmllint (make test installs libxml2-utils)");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "schema violations in emitted envelopes:\n{err}");
        assert_eq!(err.matches(" validates").count(), files.len(), "{err}");
        files.len()
    }
}

impl Drop for TestAcs {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/bbf/cwmp-1-0-local.xsd")
}

/// The envelopes of an HTTP body as text (our emitter writes each as one
/// `<soap:Envelope ...>...</soap:Envelope>`).
pub fn split_envelopes(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = rest.find("<soap:Envelope") {
        let end = rest[i..].find("</soap:Envelope>").expect("unterminated envelope") + i + "</soap:Envelope>".len();
        out.push(rest[i..end].to_string());
        rest = &rest[end..];
    }
    out
}

/// The cwmp element inside an envelope's Body (or the cwmp:Fault detail),
/// as a standalone document with the namespaces declared.
pub fn standalone_body(envelope: &str) -> String {
    let decl = format!(
        " xmlns:cwmp=\"{}\" xmlns:soapenc=\"{}\" xmlns:xsi=\"{}\" xmlns:xsd=\"{}\" xmlns:soap=\"{}\"",
        soap::CWMP,
        soap::SOAP_ENC,
        soap::XSI,
        soap::XSD,
        soap::SOAP_ENV
    );
    let (s, e) = if let Some(s) = envelope.find("<cwmp:Fault>") {
        (s, envelope.find("</cwmp:Fault>").unwrap() + "</cwmp:Fault>".len())
    } else {
        let s = envelope.find("<soap:Body>").unwrap() + "<soap:Body>".len();
        (s, envelope.find("</soap:Body>").unwrap())
    };
    let inner = &envelope[s..e];
    let tag_end = inner.find(['>', '/']).unwrap();
    format!("{}{decl}{}", &inner[..tag_end], &inner[tag_end..])
}

fn header(req: &tiny_http::Request, name: &str) -> Option<String> {
    req.headers().iter().find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name)).map(|h| h.value.as_str().to_string())
}

fn respond(req: tiny_http::Request, status: u16, body: String, headers: Vec<(&str, String)>) {
    let mut r = tiny_http::Response::from_string(body).with_status_code(status);
    for (k, v) in headers {
        r.add_header(tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap());
    }
    let _ = req.respond(r);
}

fn envelope(id: &str, body: &Body, hold: bool) -> String {
    let x = soap::to_xml(Some(id), false, body);
    if hold {
        x.replacen("<soap:Header>", "<soap:Header><cwmp:HoldRequests soap:mustUnderstand=\"1\">1</cwmp:HoldRequests>", 1)
    } else {
        x
    }
}

/// Answer a CPE request (A.3.3: ACS methods).
fn answer(req: &Body, s: &mut AcsState) -> Body {
    match req {
        Body::TransferComplete { .. } if s.transfer_complete_faults > 0 => {
            s.transfer_complete_faults -= 1;
            Body::Fault(Fault::new(8002, "Internal error (test ACS)"))
        }
        Body::TransferComplete { .. } => Body::TransferCompleteResponse,
        Body::GetRPCMethods => Body::GetRPCMethodsResponse { methods: ["Inform", "GetRPCMethods", "TransferComplete"].iter().map(|s| s.to_string()).collect() },
        other => Body::Fault(Fault::new(8000, format!("test ACS does not support {}", other.method()))),
    }
}

fn serve(mut req: tiny_http::Request, st: &Arc<Mutex<AcsState>>) {
    let peer = *req.remote_addr().unwrap();
    let mut body = String::new();
    let _ = req.as_reader().take(8 << 20).read_to_string(&mut body);
    let cookie = header(&req, "Cookie");
    let authorization = header(&req, "Authorization");
    let soap_action = header(&req, "SOAPAction");
    let mut s = st.lock().unwrap();
    let session = s.sessions.len();
    let mut post = Post { body: body.clone(), peer, cookie, authorization: authorization.clone(), soap_action, status: 200, session };

    // 3.4.4: authenticate once per TCP connection.
    if let Some(mode) = s.auth.clone() {
        if !s.authenticated.contains(&peer) {
            let ok = match (&mode, authorization.as_deref()) {
                (AuthMode::None, _) => true,
                (AuthMode::Basic { user, pass }, Some(a)) => a == digest::basic_authorization(user, pass),
                (AuthMode::Digest { user, pass }, Some(a)) => {
                    // The nonce must have been issued on this very connection.
                    let bound = s.nonce_peers.iter().any(|(n, p)| *p == peer && a.contains(&format!("nonce=\"{n}\"")));
                    let v = s.digest.as_mut().unwrap().verify(a, "POST", user, pass, Instant::now());
                    bound && v == digest::Verdict::Ok
                }
                _ => false,
            };
            if ok {
                s.authenticated.insert(peer);
            } else {
                let challenge = match mode {
                    AuthMode::Basic { .. } => "Basic realm=\"cpekit-test-acs\"".to_string(),
                    _ => {
                        let c = s.digest.as_mut().unwrap().challenge(Instant::now(), false).expect("random nonce");
                        let nonce = c.split("nonce=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or_default().to_string();
                        s.nonce_peers.push((nonce, peer));
                        c
                    }
                };
                post.status = 401;
                s.posts.push(post);
                drop(s);
                respond(req, 401, "authentication required".into(), vec![("WWW-Authenticate", challenge)]);
                return;
            }
        }
    }

    let envs = match soap::parse(&body) {
        Ok(e) => e,
        Err(e) => {
            post.status = 400;
            s.posts.push(post);
            drop(s);
            respond(req, 400, format!("bad SOAP: {e}"), vec![]);
            return;
        }
    };
    let is_inform = envs.first().is_some_and(|e| matches!(e.body, Ok(Body::Inform { .. })));
    if is_inform {
        if s.refuse_informs > 0 {
            s.refuse_informs -= 1;
            post.status = 503;
            s.posts.push(post);
            drop(s);
            respond(req, 503, "down for the test".into(), vec![]);
            return;
        }
        let env = envs.into_iter().next().unwrap();
        let id = env.id.clone().unwrap_or_default();
        s.posts.push(post);
        if s.retry_informs > 0 {
            s.retry_informs -= 1;
            drop(s);
            respond(req, 200, soap::to_xml(Some(&id), false, &Body::Fault(Fault::new(8005, "Retry request"))), vec![]);
            return;
        }
        let n = s.sessions.len() + 1;
        s.sessions.push(SessionLog { inform: Some(env), ..Default::default() });
        let script = s.scripts.pop_front().unwrap_or_default();
        s.current = Some(script.into());
        s.outstanding = 0;
        let max = s.max_envelopes;
        drop(s);
        respond(
            req,
            200,
            soap::to_xml(Some(&id), false, &Body::InformResponse { max_envelopes: max }),
            vec![("Set-Cookie", format!("acs_session=s{n}; Path=/")), ("Content-Type", "text/xml; charset=\"utf-8\"".into())],
        );
        return;
    }
    s.posts.push(post);
    // Responses to our requests, and CPE requests to answer.
    let mut reply = String::new();
    for e in envs {
        let is_req = matches!(&e.body, Ok(b) if !b.method().ends_with("Response") && !matches!(b, Body::Fault(_)));
        if is_req {
            let b = e.body.clone().unwrap();
            let custom = s.cpe_answer.as_ref().and_then(|f| f(&b));
            let a = match custom {
                Some(a) => a,
                None => answer(&b, &mut s),
            };
            reply.push_str(&soap::to_xml(e.id.as_deref(), false, &a));
        } else {
            s.outstanding = s.outstanding.saturating_sub(1);
        }
        if let Some(log) = s.sessions.last_mut() {
            log.received.push(e);
        }
    }
    if s.outstanding == 0 {
        let next = s.current.as_mut().and_then(|c| c.pop_front());
        match next {
            Some(step) => {
                let k = step.requests.len();
                for (i, r) in step.requests.iter().enumerate() {
                    s.next_id += 1;
                    let id = format!("acs-{}", s.next_id);
                    reply.push_str(&envelope(&id, r, step.hold && i + 1 == k));
                }
                s.outstanding = k;
                if let Some(log) = s.sessions.last_mut() {
                    log.sent_requests.extend(step.requests);
                }
            }
            // Nothing more to send: our empty response ends the session
            // once the CPE has nothing left either (3.7.1.4).
            None if reply.is_empty() => s.current = None,
            None => {}
        }
    }
    drop(s);
    if reply.is_empty() {
        respond(req, 204, String::new(), vec![]);
    } else {
        respond(req, 200, reply, vec![("Content-Type", "text/xml; charset=\"utf-8\"".into())]);
    }
}
