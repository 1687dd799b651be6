//! One CWMP transaction session (3.7, Figure 3), sans-IO: the caller does
//! HTTP and feeds each response body back; the session says what to POST
//! next, and when the session is over.
//!
//! * 3.7.1.1: the first POST carries the Inform alone; a Fault 8005 to it
//!   means "retry now" (A.5.3) with RetryCount incremented.
//! * 3.7.1.2: ACS requests are answered in the order received, through a
//!   [`Handler`]; responses are never held back waiting for the ACS.
//! * 3.7.1.3 / Table 5: CPE requests (e.g. TransferComplete) are sent only
//!   while HoldRequests is false — as decided by the *last* envelope of the
//!   most recent HTTP response; an empty POST when nothing is due.
//! * 3.4.1: no POST carries more envelopes than the ACS's MaxEnvelopes
//!   (Table 32: 0 means no limit).
//! * 3.7.1.4: the session ends when the ACS has no more requests (empty
//!   HTTP response, or NoMoreRequests on its last envelope), the CPE has
//!   no requests left, every CPE request was answered and every ACS
//!   request was responded to.

use std::collections::VecDeque;
use std::path::Path;

use super::datamodel::store::Store;
use super::datamodel::Schema;
use super::rpc::{self, Effects};
use super::soap::{self, Body, DeviceId, Envelope, Event, ParameterValue};

/// Table 33 parameters carried in every Inform (those present in the tree).
pub const INFORM_PARAMETERS: &[&str] = &[
    "InternetGatewayDevice.DeviceInfo.SpecVersion",
    "InternetGatewayDevice.DeviceInfo.HardwareVersion",
    "InternetGatewayDevice.DeviceInfo.SoftwareVersion",
    "InternetGatewayDevice.DeviceInfo.ProvisioningCode",
    "InternetGatewayDevice.ManagementServer.ConnectionRequestURL",
    "InternetGatewayDevice.ManagementServer.ParameterKey",
];

/// What the session wants from its caller next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Call [`Session::next_post`] and POST what it returns.
    SendInform,
    AwaitInformResponse,
    /// Call [`Session::next_post`] (responses, requests, or an empty POST).
    Send,
    /// Feed the HTTP response to [`Session::on_response`].
    Await,
    /// Over: close the connection and discard the session cookies (3.4.2).
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("ACS sent something that is not SOAP: {0}")]
    NotSoap(String),
    #[error("ACS answered the Inform with fault {code}: {string}")]
    InformFault { code: u32, string: String },
    #[error("expected an InformResponse, got {0}")]
    Unexpected(String),
    #[error("ACS sent {got} envelopes in one HTTP response; our Inform allowed {allowed} (3.4.1)")]
    TooManyEnvelopes { got: usize, allowed: u32 },
    #[error("response fed in state {0:?}")]
    WrongState(State),
    #[error("ACS kept answering the Inform with 8005 Retry request ({0} times)")]
    TooManyRetries(u32),
}

/// The CPE's side of the RPCs a session carries.
pub trait Handler {
    /// Answer one ACS request (a response body or a `Body::Fault`).
    fn request(&mut self, req: &Body) -> Body;
    /// The ACS answered one of our requests (`resp` may be a Fault).
    fn response(&mut self, _request: &Body, _resp: &Body) {}
}

/// More CPE methods than the parameter RPCs (transfers A.3.2.8–A.3.2.9,
/// vouchers A.4.1.3–A.4.1.4, ...). The session's handler offers each ACS
/// request to its extensions in turn before the parameter RPCs.
pub trait Extension {
    /// The methods it adds to the GetRPCMethods answer (A.3.2.1).
    fn methods(&self) -> &'static [&'static str];
    /// Answer `req` if it is one of this extension's methods (None: not
    /// ours). Parameters it changes on the ACS's behalf go in `fx` (they
    /// are persisted and never trigger an active notification).
    fn request(&mut self, schema: &Schema, store: &mut Store, req: &Body, fx: &mut Effects) -> Option<Body>;
    /// The ACS answered a CPE request (`resp` may be a Fault). Every
    /// extension sees every answer; each picks out its own requests.
    fn response(&mut self, _request: &Body, _resp: &Body) {}
}

/// The agent core's handler: the parameter RPCs against the tree, plus
/// any [`Extension`]s.
///
/// With [`ParameterHandler::persisting_to`], a request that changed the
/// tree is answered only after the tree was saved: what the ACS is told is
/// applied survives a crash right after the answer. If the save fails, the
/// failure is logged, a parameter RPC's change is undone
/// ([`rpc::handle_committed`]) and the request is answered with 9002.
pub struct ParameterHandler<'a> {
    pub schema: &'a Schema,
    pub store: &'a mut Store,
    /// What the ACS changed (persistence; never an active notification).
    pub effects: Effects,
    pub extensions: Vec<&'a mut dyn Extension>,
    /// Where the tree is saved before a change is acknowledged.
    persist: Option<&'a Path>,
}

impl<'a> ParameterHandler<'a> {
    pub fn new(schema: &'a Schema, store: &'a mut Store) -> Self {
        ParameterHandler { schema, store, effects: Effects::default(), extensions: Vec::new(), persist: None }
    }

    /// Add an extension (builder style).
    pub fn with(mut self, ext: &'a mut dyn Extension) -> Self {
        self.extensions.push(ext);
        self
    }

    /// Save the tree to `path` before answering a request that changed it
    /// (builder style).
    pub fn persisting_to(mut self, path: &'a Path) -> Self {
        self.persist = Some(path);
        self
    }
}

/// Save the tree before `method`'s answer; a failure is logged here, and
/// its message is for the 9002 fault (the file's name, not its path).
fn save_tree(path: &Path, store: &Store, method: &str) -> Result<(), String> {
    store.save(path).map_err(|e| {
        tracing::error!(file = %path.display(), error = %foundation::error_kind::chain(&e), method, "cannot save the parameter tree: the request fails with 9002");
        format!("cannot save the parameter tree ({}): {e}", path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
    })
}

impl Handler for ParameterHandler<'_> {
    fn request(&mut self, req: &Body) -> Body {
        if let Body::GetRPCMethods = req {
            let mut methods: Vec<String> = rpc::CPE_METHODS.iter().map(|s| s.to_string()).collect();
            for e in &self.extensions {
                methods.extend(e.methods().iter().map(|s| s.to_string()).filter(|m| !rpc::CPE_METHODS.contains(&m.as_str())));
            }
            return Body::GetRPCMethodsResponse { methods };
        }
        let mut fx = Effects::default();
        let mut answered = None;
        for e in self.extensions.iter_mut() {
            if let Some(resp) = e.request(self.schema, self.store, req, &mut fx) {
                answered = Some(resp);
                break;
            }
        }
        let resp = match (answered, self.persist) {
            // An extension's change to the tree is saved before its answer
            // too (it is not undone: extensions keep their own state).
            (Some(resp), Some(path)) if fx.dirty => match save_tree(path, self.store, req.method()) {
                Ok(()) => resp,
                Err(message) => Body::Fault(soap::Fault::new(9002, format!("Internal error: {message}"))),
            },
            (Some(resp), _) => resp,
            (None, persist) => {
                let method = req.method();
                let mut commit = |s: &Store| persist.map_or(Ok(()), |path| save_tree(path, s, method));
                let (resp, rpc_fx) = rpc::handle_committed(self.schema, self.store, req, &mut commit);
                fx.merge(rpc_fx);
                resp
            }
        };
        self.effects.merge(fx);
        resp
    }

    fn response(&mut self, request: &Body, resp: &Body) {
        for e in self.extensions.iter_mut() {
            e.response(request, resp);
        }
    }
}

/// The Inform's arguments that do not come from the tree (A.3.3.1 Table 31).
#[derive(Debug, Clone)]
pub struct InformArgs {
    pub device: DeviceId,
    pub events: Vec<Event>,
    pub retry_count: u32,
    pub current_time: String,
    /// How many envelopes the ACS may put in one HTTP response (3.4.1).
    pub max_envelopes: u32,
}

/// The Inform for this session (A.3.3.1): Table 33 parameters present in
/// the tree, the external IP address of every WAN connection, and `extra`
/// (changed notified parameters, A.3.3.1 "must also be included").
pub fn inform_body(schema: &Schema, store: &Store, args: InformArgs, extra: &[String]) -> Body {
    let InformArgs { device, events, retry_count, current_time, max_envelopes } = args;
    let pv = |p: &str| {
        store.get(p).map(|value| ParameterValue { name: p.to_string(), value, xsd_type: schema.param(p).map(|d| d.ty.xsd()).unwrap_or("xsd:string").into() })
    };
    let mut names: Vec<String> = INFORM_PARAMETERS.iter().map(|s| s.to_string()).collect();
    // Table 33: ExternalIPAddress of the WAN{IP,PPP}Connection(s).
    names.extend(
        store.values.keys().filter(|k| (k.contains(".WANIPConnection.") || k.contains(".WANPPPConnection.")) && k.ends_with(".ExternalIPAddress")).cloned(),
    );
    for e in extra {
        if !names.contains(e) {
            names.push(e.clone());
        }
    }
    Body::Inform { device_id: device, events, max_envelopes, current_time, retry_count, parameters: names.iter().filter_map(|n| pv(n)).collect() }
}

/// How many 8005 answers to one Inform we retry immediately before giving
/// the session up to the caller's back-off.
const MAX_IMMEDIATE_RETRIES: u32 = 8;

/// One session's state.
pub struct Session<H: Handler> {
    handler: H,
    inform: Body,
    state: State,
    next_id: u64,
    immediate_retries: u32,
    /// The ACS's MaxEnvelopes (Table 32; 0 = no limit).
    acs_max_envelopes: u32,
    /// Our MaxEnvelopes, from the Inform.
    our_max_envelopes: u32,
    /// Responses to ACS requests not yet sent, in order (3.7.1.2).
    responses: VecDeque<String>,
    /// CPE requests not yet sent.
    requests: VecDeque<Body>,
    /// CPE requests sent and not yet answered: (cwmp:ID, request).
    outstanding: Vec<(String, Body)>,
    /// From the last envelope of the most recent HTTP response (3.7.1.3).
    hold_requests: bool,
    /// The ACS has no more requests (3.7.1.4 condition 1).
    acs_done: bool,
}

impl<H: Handler> Session<H> {
    /// `inform` must be a `Body::Inform`; `requests` are CPE requests to
    /// send once the Inform is acknowledged (e.g. TransferComplete).
    pub fn new(inform: Body, requests: Vec<Body>, handler: H) -> Self {
        let our_max_envelopes = match &inform {
            Body::Inform { max_envelopes, .. } => (*max_envelopes).max(1),
            _ => 1,
        };
        Session {
            handler,
            inform,
            state: State::SendInform,
            next_id: 1,
            immediate_retries: 0,
            acs_max_envelopes: 1,
            our_max_envelopes,
            responses: VecDeque::new(),
            requests: requests.into(),
            outstanding: Vec::new(),
            hold_requests: false,
            acs_done: false,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn handler(&self) -> &H {
        &self.handler
    }

    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    pub fn into_handler(self) -> H {
        self.handler
    }

    /// The Inform as it will be (or was last) sent.
    pub fn inform(&self) -> &Body {
        &self.inform
    }

    /// The ACS's MaxEnvelopes (after the InformResponse).
    pub fn acs_max_envelopes(&self) -> u32 {
        self.acs_max_envelopes
    }

    /// The Inform was acknowledged: its events are delivered (the caller
    /// may clear them from its persistent queue).
    pub fn inform_acknowledged(&self) -> bool {
        !matches!(self.state, State::SendInform | State::AwaitInformResponse)
    }

    /// Queue another CPE request (sent when HoldRequests allows).
    pub fn push_request(&mut self, req: Body) {
        self.requests.push_back(req);
        if self.state == State::Done {
            self.state = State::Send;
        }
    }

    fn id(&mut self) -> String {
        let id = format!("cpe-{}", self.next_id);
        self.next_id += 1;
        id
    }

    /// 3.7.1.4: all four termination conditions hold.
    fn finished(&self) -> bool {
        self.acs_done && self.responses.is_empty() && self.requests.is_empty() && self.outstanding.is_empty()
    }

    /// The body of the next HTTP POST (possibly empty), or None when the
    /// session is over or a response is awaited.
    pub fn next_post(&mut self) -> Option<String> {
        match self.state {
            State::SendInform => {
                let id = self.id();
                self.state = State::AwaitInformResponse;
                // 3.7.1.1: the initial POST carries the Inform alone.
                Some(soap::to_xml(Some(&id), false, &self.inform))
            }
            State::Send => {
                if self.finished() {
                    self.state = State::Done;
                    return None;
                }
                let limit = if self.acs_max_envelopes == 0 { usize::MAX } else { self.acs_max_envelopes as usize };
                let mut post = String::new();
                let mut n = 0;
                while n < limit {
                    let Some(r) = self.responses.pop_front() else { break };
                    post.push_str(&r);
                    n += 1;
                }
                // Table 5: requests only while HoldRequests is false.
                while n < limit && !self.hold_requests {
                    let Some(req) = self.requests.pop_front() else { break };
                    let id = self.id();
                    post.push_str(&soap::to_xml(Some(&id), false, &req));
                    self.outstanding.push((id, req));
                    n += 1;
                }
                self.state = State::Await;
                Some(post)
            }
            State::AwaitInformResponse | State::Await | State::Done => None,
        }
    }

    /// Feed the body of the HTTP response to the last POST.
    pub fn on_response(&mut self, http_body: &str) -> Result<(), SessionError> {
        match self.state {
            State::AwaitInformResponse => self.on_inform_response(http_body),
            State::Await => {
                let envs = soap::parse(http_body).map_err(|e| SessionError::NotSoap(e.0))?;
                if self.our_max_envelopes > 0 && envs.len() > self.our_max_envelopes as usize {
                    return Err(SessionError::TooManyEnvelopes { got: envs.len(), allowed: self.our_max_envelopes });
                }
                match envs.last() {
                    // 3.7.1.3: an empty response may be read as HoldRequests false.
                    None => {
                        self.hold_requests = false;
                        self.acs_done = true;
                    }
                    Some(last) => {
                        self.hold_requests = last.hold_requests;
                        self.acs_done = last.no_more_requests;
                    }
                }
                for e in envs {
                    self.dispatch(e);
                }
                self.state = if self.finished() { State::Done } else { State::Send };
                Ok(())
            }
            ref s => Err(SessionError::WrongState(s.clone())),
        }
    }

    fn on_inform_response(&mut self, http_body: &str) -> Result<(), SessionError> {
        let envs = soap::parse(http_body).map_err(|e| SessionError::NotSoap(e.0))?;
        let Some(e) = envs.first() else { return Err(SessionError::Unexpected("an empty response".into())) };
        match &e.body {
            Ok(Body::InformResponse { max_envelopes }) => {
                self.acs_max_envelopes = *max_envelopes;
                self.hold_requests = envs.last().is_some_and(|l| l.hold_requests);
                // Anything after the InformResponse in the same HTTP
                // response is handled like any other envelope.
                for e in envs.into_iter().skip(1) {
                    self.dispatch(e);
                }
                self.state = State::Send;
                Ok(())
            }
            Ok(Body::Fault(f)) if f.code == 8005 => {
                // A.5.3: retry the Inform immediately.
                self.immediate_retries += 1;
                if self.immediate_retries > MAX_IMMEDIATE_RETRIES {
                    return Err(SessionError::TooManyRetries(self.immediate_retries - 1));
                }
                if let Body::Inform { retry_count, .. } = &mut self.inform {
                    *retry_count += 1;
                }
                self.state = State::SendInform;
                Ok(())
            }
            Ok(Body::Fault(f)) => Err(SessionError::InformFault { code: f.code, string: f.string.clone() }),
            Ok(b) => Err(SessionError::Unexpected(b.method().into())),
            Err(f) => Err(SessionError::Unexpected(f.string.clone())),
        }
    }

    /// One envelope from the ACS: a response to one of our requests, or a
    /// request to answer.
    fn dispatch(&mut self, e: Envelope) {
        if e.empty_body {
            // 3.5: an envelope carrying only header flags; nothing to answer.
            return;
        }
        let is_response = match &e.body {
            Ok(b) => b.method().ends_with("Response") || matches!(b, Body::Fault(_)),
            // An undecodable envelope answering one of our requests.
            Err(_) => e.id.as_ref().is_some_and(|id| self.outstanding.iter().any(|(i, _)| i == id)),
        };
        if is_response {
            let pos =
                e.id.as_ref().and_then(|id| self.outstanding.iter().position(|(i, _)| i == id)).or(if self.outstanding.is_empty() { None } else { Some(0) });
            if let Some(pos) = pos {
                let (_, req) = self.outstanding.remove(pos);
                let resp = e.body.unwrap_or_else(Body::Fault);
                self.handler.response(&req, &resp);
            }
            // A response to nothing we asked is ignored.
            return;
        }
        let reply = match &e.body {
            Ok(req) => self.handler.request(req),
            Err(f) => Body::Fault(f.clone()),
        };
        self.responses.push_back(soap::to_xml(e.id.as_deref(), false, &reply));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::Fault;

    fn device() -> DeviceId {
        DeviceId { manufacturer: "cpekit".into(), oui: "00D09E".into(), product_class: "Gateway".into(), serial_number: "CPE0001".into() }
    }

    fn acs(body: &Body, id: &str) -> String {
        soap::to_xml(Some(id), false, body)
    }

    fn hold(body: &Body, id: &str) -> String {
        acs(body, id).replacen("<soap:Header>", "<soap:Header><cwmp:HoldRequests soap:mustUnderstand=\"1\">1</cwmp:HoldRequests>", 1)
    }

    fn inform(store: &Store, max_env: u32) -> Body {
        let events = vec![Event { code: "0 BOOTSTRAP".into(), command_key: String::new() }];
        inform_body(
            Schema::igd(),
            store,
            InformArgs { device: device(), events, retry_count: 0, current_time: "2026-11-24T12:00:00Z".into(), max_envelopes: max_env },
            &[],
        )
    }

    const PII: &str = "InternetGatewayDevice.ManagementServer.PeriodicInformInterval";

    #[test]
    fn full_session_inform_requests_empty() {
        let schema = Schema::igd();
        let mut store = Store::new(schema);
        let inf = inform(&store, 1);
        let mut s = Session::new(inf, vec![], ParameterHandler::new(schema, &mut store));
        assert_eq!(*s.state(), State::SendInform);
        let post = s.next_post().unwrap();
        let parsed = soap::parse(&post).unwrap();
        assert!(post.contains("<EventCode>0 BOOTSTRAP</EventCode>"));
        assert!(parsed[0].id.is_some());
        assert!(s.next_post().is_none(), "waits for the InformResponse");
        assert!(!s.inform_acknowledged());
        s.on_response(&acs(&Body::InformResponse { max_envelopes: 1 }, "1")).unwrap();
        assert!(s.inform_acknowledged());
        assert_eq!(s.next_post().unwrap(), "", "empty POST: the CPE has nothing to send");
        s.on_response(&acs(&Body::GetParameterValues { names: vec![PII.into()] }, "a")).unwrap();
        let raw1 = s.next_post().unwrap();
        let r1 = soap::parse(&raw1).unwrap().remove(0);
        assert_eq!(r1.id.as_deref(), Some("a"));
        assert!(raw1.contains("<Value xsi:type=\"xsd:unsignedInt\">"), "{raw1}");
        // An unknown method in the next response: 9000, ID echoed.
        let unknown = format!(
            "<soap:Envelope xmlns:soap=\"{}\" xmlns:cwmp=\"{}\"><soap:Header><cwmp:ID soap:mustUnderstand=\"1\">b</cwmp:ID></soap:Header><soap:Body><cwmp:FlyToTheMoon/></soap:Body></soap:Envelope>",
            soap::SOAP_ENV,
            soap::CWMP
        );
        s.on_response(&unknown).unwrap();
        let r2 = soap::parse(&s.next_post().unwrap()).unwrap().remove(0);
        assert_eq!(r2.id.as_deref(), Some("b"));
        assert!(matches!(r2.body, Ok(Body::Fault(Fault { code: 9000, .. }))));
        let spv = Body::SetParameterValues {
            list: vec![ParameterValue { name: PII.into(), value: "120".into(), xsd_type: "xsd:unsignedInt".into() }],
            parameter_key: "k".into(),
        };
        s.on_response(&acs(&spv, "c")).unwrap();
        let raw3 = s.next_post().unwrap();
        assert!(raw3.contains("<cwmp:SetParameterValuesResponse><Status>0</Status>"), "{raw3}");
        // 3.7.1.4: empty response, nothing left → over.
        s.on_response("").unwrap();
        assert_eq!(*s.state(), State::Done);
        assert!(s.next_post().is_none());
        let h = s.into_handler();
        assert!(h.effects.dirty);
        assert_eq!(h.effects.changed, vec![PII.to_string()]);
        assert_eq!(store.get(PII).unwrap(), "120");
    }

    #[test]
    fn fault_8005_retries_inform_and_other_faults_end() {
        let schema = Schema::igd();
        let mut store = Store::new(schema);
        let inf = inform(&store, 1);
        let mut s = Session::new(inf, vec![], ParameterHandler::new(schema, &mut store));
        s.next_post().unwrap();
        s.on_response(&acs(&Body::Fault(Fault::new(8005, "Retry request")), "1")).unwrap();
        let again = s.next_post().unwrap();
        assert!(again.contains("<RetryCount>1</RetryCount>"), "{again}");
        let e = s.on_response(&acs(&Body::Fault(Fault::new(8002, "Internal error")), "2")).unwrap_err();
        assert!(matches!(e, SessionError::InformFault { code: 8002, .. }));
    }

    #[test]
    fn endless_8005_gives_up() {
        let schema = Schema::igd();
        let mut store = Store::new(schema);
        let inf = inform(&store, 1);
        let mut s = Session::new(inf, vec![], ParameterHandler::new(schema, &mut store));
        let mut err = None;
        for _ in 0..20 {
            s.next_post().unwrap();
            if let Err(e) = s.on_response(&acs(&Body::Fault(Fault::new(8005, "Retry request")), "1")) {
                err = Some(e);
                break;
            }
        }
        assert_eq!(err, Some(SessionError::TooManyRetries(MAX_IMMEDIATE_RETRIES)));
    }

    #[test]
    fn not_soap_and_wrong_state() {
        let schema = Schema::igd();
        let mut store = Store::new(schema);
        let inf = inform(&store, 1);
        let mut s = Session::new(inf, vec![], ParameterHandler::new(schema, &mut store));
        assert!(matches!(s.on_response(""), Err(SessionError::WrongState(State::SendInform))));
        s.next_post().unwrap();
        assert!(matches!(s.on_response("not xml <"), Err(SessionError::NotSoap(_))));
    }

    /// Records what the ACS answered to our requests.
    struct Recorder<'a>(ParameterHandler<'a>, Vec<(String, String)>);
    impl Handler for Recorder<'_> {
        fn request(&mut self, req: &Body) -> Body {
            self.0.request(req)
        }
        fn response(&mut self, request: &Body, resp: &Body) {
            self.1.push((request.method().into(), resp.method().into()));
        }
    }

    #[test]
    fn table5_hold_requests_and_max_envelopes() {
        let schema = Schema::igd();
        let mut store = Store::new(schema);
        let inf = inform(&store, 3);
        let mut s = Session::new(inf, vec![Body::GetRPCMethods], Recorder(ParameterHandler::new(schema, &mut store), vec![]));
        s.next_post().unwrap();
        // InformResponse with HoldRequests: the CPE may not send its request.
        s.on_response(&hold(&Body::InformResponse { max_envelopes: 2 }, "1")).unwrap();
        assert_eq!(s.next_post().unwrap(), "", "held: empty POST although a request is pending");
        // Three requests in one response (our MaxEnvelopes is 3), still held.
        let gpv = |id: &str| acs(&Body::GetParameterValues { names: vec![PII.into()] }, id);
        let three = format!("{}{}{}", gpv("x"), gpv("y"), hold(&Body::GetParameterNames { path: "InternetGatewayDevice.Time.".into(), next_level: true }, "z"));
        s.on_response(&three).unwrap();
        // ACS MaxEnvelopes 2: two responses, then one; no request while held.
        let p1 = soap::parse(&s.next_post().unwrap()).unwrap();
        assert_eq!(p1.iter().map(|e| e.id.clone().unwrap()).collect::<Vec<_>>(), ["x", "y"]);
        s.on_response(&hold(&Body::GetParameterValues { names: vec![PII.into()] }, "w")).unwrap();
        let p2 = soap::parse(&s.next_post().unwrap()).unwrap();
        assert_eq!(p2.iter().map(|e| e.id.clone().unwrap()).collect::<Vec<_>>(), ["z", "w"], "order kept across posts");
        // Hold released (empty response): our request goes out; then its response ends the session.
        s.on_response("").unwrap();
        let p3 = soap::parse(&s.next_post().unwrap()).unwrap();
        assert!(matches!(p3[0].body, Ok(Body::GetRPCMethods)));
        let our_id = p3[0].id.clone().unwrap();
        s.on_response(&acs(&Body::GetRPCMethodsResponse { methods: vec!["Inform".into()] }, &our_id)).unwrap();
        // The ACS's response envelope had no NoMoreRequests: keep going with an empty POST.
        assert_eq!(s.next_post().unwrap(), "");
        s.on_response("").unwrap();
        assert_eq!(*s.state(), State::Done);
        assert_eq!(s.handler().1, vec![("GetRPCMethods".to_string(), "GetRPCMethodsResponse".to_string())]);
    }

    #[test]
    fn empty_body_envelope_only_carries_hold_requests() {
        let schema = Schema::igd();
        let mut store = Store::new(schema);
        let inf = inform(&store, 1);
        let mut s = Session::new(inf, vec![Body::GetRPCMethods], ParameterHandler::new(schema, &mut store));
        s.next_post().unwrap();
        s.on_response(&acs(&Body::InformResponse { max_envelopes: 1 }, "1")).unwrap();
        s.next_post().unwrap(); // our GetRPCMethods
        let empty = format!(
            "<soap:Envelope xmlns:soap=\"{}\" xmlns:cwmp=\"{}\"><soap:Header><cwmp:HoldRequests soap:mustUnderstand=\"1\">1</cwmp:HoldRequests></soap:Header><soap:Body/></soap:Envelope>",
            soap::SOAP_ENV,
            soap::CWMP
        );
        s.on_response(&empty).unwrap();
        assert_eq!(s.next_post().unwrap(), "", "nothing to answer, no fault sent");
    }

    #[test]
    fn too_many_envelopes_is_an_error() {
        let schema = Schema::igd();
        let mut store = Store::new(schema);
        let inf = inform(&store, 1);
        let mut s = Session::new(inf, vec![], ParameterHandler::new(schema, &mut store));
        s.next_post().unwrap();
        s.on_response(&acs(&Body::InformResponse { max_envelopes: 1 }, "1")).unwrap();
        s.next_post().unwrap();
        let two = format!("{}{}", acs(&Body::GetRPCMethods, "a"), acs(&Body::GetRPCMethods, "b"));
        assert_eq!(s.on_response(&two), Err(SessionError::TooManyEnvelopes { got: 2, allowed: 1 }));
    }

    #[test]
    fn no_more_requests_ends_after_last_response() {
        let schema = Schema::igd();
        let mut store = Store::new(schema);
        let inf = inform(&store, 1);
        let mut s = Session::new(inf, vec![], ParameterHandler::new(schema, &mut store));
        s.next_post().unwrap();
        s.on_response(&acs(&Body::InformResponse { max_envelopes: 0 }, "1")).unwrap();
        s.next_post().unwrap();
        let last = soap::to_xml(Some("q"), true, &Body::GetRPCMethods);
        s.on_response(&last).unwrap();
        assert_eq!(*s.state(), State::Send, "the response is still due");
        let p = s.next_post().unwrap();
        assert!(p.contains("GetRPCMethodsResponse"));
        assert_eq!(*s.state(), State::Await);
        assert!(s.next_post().is_none());
    }

    #[test]
    fn inform_carries_table33_and_extra_parameters() {
        let schema = Schema::igd();
        let store = Store::new(schema);
        let extra = vec!["InternetGatewayDevice.ManagementServer.PeriodicInformInterval".to_string()];
        let b = inform_body(
            schema,
            &store,
            InformArgs { device: device(), events: vec![], retry_count: 0, current_time: "2026-11-24T12:00:00Z".into(), max_envelopes: 1 },
            &extra,
        );
        let Body::Inform { parameters, .. } = b else { panic!() };
        let names: Vec<_> = parameters.iter().map(|p| p.name.as_str()).collect();
        assert!(names.len() >= 6, "{names:?}");
        for p in INFORM_PARAMETERS.iter().filter(|p| store.get(p).is_some()) {
            assert!(names.contains(p), "{p} missing from {names:?}");
        }
        assert!(names.contains(&extra[0].as_str()));
    }

    /// A session past its InformResponse whose handler saves the tree to `path`.
    fn persisting_session<'a>(store: &'a mut Store, path: &'a Path) -> Session<ParameterHandler<'a>> {
        let schema = Schema::igd();
        let inf = inform(store, 1);
        let mut s = Session::new(inf, vec![], ParameterHandler::new(schema, store).persisting_to(path));
        s.next_post().unwrap();
        s.on_response(&acs(&Body::InformResponse { max_envelopes: 1 }, "1")).unwrap();
        assert_eq!(s.next_post().unwrap(), "");
        s
    }

    /// Feed one ACS request; the response the session will POST next.
    fn exchange<H: Handler>(s: &mut Session<H>, req: &Body, id: &str) -> (Body, String) {
        s.on_response(&acs(req, id)).unwrap();
        let raw = s.next_post().unwrap();
        (soap::parse(&raw).unwrap().remove(0).body.unwrap_or_else(Body::Fault), raw)
    }

    const TABLE: &str = "InternetGatewayDevice.Layer3Forwarding.Forwarding.";
    const KEY: &str = "InternetGatewayDevice.ManagementServer.ParameterKey";

    fn set_pii(v: &str, key: &str) -> Body {
        Body::SetParameterValues {
            list: vec![ParameterValue { name: PII.into(), value: v.into(), xsd_type: "xsd:unsignedInt".into() }],
            parameter_key: key.into(),
        }
    }

    fn set_notification(n: u8) -> Body {
        Body::SetParameterAttributes {
            list: vec![soap::SetAttributes { name: PII.into(), notification_change: true, notification: n, access_list_change: false, access_list: vec![] }],
        }
    }

    /// Issue 10 item 11: a change the ACS is told is applied (Status 0) is
    /// on disk before that answer exists, for each of SetParameterValues,
    /// AddObject, SetParameterAttributes and DeleteObject: a process killed
    /// right after the answer (the session never finishes here) keeps it.
    #[test]
    fn acknowledged_changes_are_saved_before_the_answer() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("parameters.json");
        let mut store = Store::new(Schema::igd());
        let mut s = persisting_session(&mut store, &path);
        let saved = || Store::load(&path).unwrap().expect("saved before the answer");

        let (resp, _) = exchange(&mut s, &set_pii("120", "k1"), "a");
        assert_eq!(resp, Body::SetParameterValuesResponse { status: 0 });
        assert_eq!((saved().get(PII).unwrap(), saved().get(KEY).unwrap()), ("120".into(), "k1".into()));

        let (resp, _) = exchange(&mut s, &Body::AddObject { object_name: TABLE.into(), parameter_key: "k2".into() }, "b");
        assert_eq!(resp, Body::AddObjectResponse { instance_number: 1, status: 0 });
        assert!(saved().objects.contains(&format!("{TABLE}1.")));
        assert_eq!(saved().next_instance.get(TABLE), Some(&2));

        let (resp, _) = exchange(&mut s, &set_notification(2), "c");
        assert_eq!(resp, Body::SetParameterAttributesResponse);
        assert_eq!(saved().attributes.get(PII).map(|a| a.notification), Some(2));

        let (resp, _) = exchange(&mut s, &Body::DeleteObject { object_name: format!("{TABLE}1."), parameter_key: "k3".into() }, "d");
        assert_eq!(resp, Body::DeleteObjectResponse { status: 0 });
        assert!(!saved().objects.contains(&format!("{TABLE}1.")));
        assert_eq!(saved().get(KEY).unwrap(), "k3");
        assert_eq!(*s.state(), State::Await, "the session is still running");
    }

    /// Issue 10 item 12: when the tree cannot be saved (here its file is a
    /// directory: rename(2) fails even for root), the request that changed
    /// it is answered 9002 naming the file, the change is undone, the
    /// failure is logged and no temporary file is left.
    #[test]
    fn a_failed_save_fails_the_request_and_undoes_it() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("parameters.json");
        std::fs::create_dir(&path).unwrap();
        let mut store = Store::new(Schema::igd());
        let table_before = store.next_instance.clone();
        let ((), log) = crate::test_log::capture(|| {
            let mut s = persisting_session(&mut store, &path);
            for (i, req) in
                [set_pii("120", "k1"), Body::AddObject { object_name: TABLE.into(), parameter_key: "k2".into() }, set_notification(2)].iter().enumerate()
            {
                let (resp, raw) = exchange(&mut s, req, &format!("r{i}"));
                assert!(
                    matches!(&resp, Body::Fault(f) if f.code == 9002 && f.string.contains("cannot save the parameter tree (parameters.json)")),
                    "{}: {resp:?}",
                    req.method()
                );
                assert!(!raw.contains(d.path().to_str().unwrap()), "the fault names the file, not where it is: {raw}");
            }
            // Reading still works.
            let (resp, _) = exchange(&mut s, &Body::GetParameterValues { names: vec![PII.into()] }, "g");
            assert!(matches!(resp, Body::GetParameterValuesResponse { .. }), "{resp:?}");
        });
        assert_eq!(store.get(PII).unwrap(), "1", "SetParameterValues undone");
        assert_eq!(store.get(KEY).unwrap(), "", "ParameterKey undone");
        assert!(!store.objects.contains(&format!("{TABLE}1.")), "AddObject undone");
        assert_eq!(store.next_instance, table_before);
        assert_eq!(store.attributes.get(PII).map(|a| a.notification).unwrap_or(0), 0, "SetParameterAttributes undone");
        assert_eq!(log.matches("cannot save the parameter tree").count(), 3, "{log}");
        assert!(log.contains(path.to_str().unwrap()) && log.contains("ERROR"), "{log}");
        let left: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("parameters.json")], "no temporary file left");
    }

    /// A SetParameterValues whose save fails is undone through the set
    /// hooks too: the device is back to the old value.
    #[test]
    fn a_failed_save_runs_set_hooks_with_the_old_value() {
        use crate::datamodel::hooks::{HookConfig, Hooks};
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("parameters.json");
        std::fs::create_dir(&path).unwrap();
        let file = d.path().join("pc");
        std::fs::write(&file, "OLD").unwrap();
        let pc = "InternetGatewayDevice.DeviceInfo.ProvisioningCode";
        let schema = Schema::igd();
        let mut store = Store::new(schema);
        let hook = HookConfig {
            parameter: pc.into(),
            get: vec!["cat".into(), file.display().to_string()],
            set: Some(vec!["sh".into(), "-c".into(), format!("cat > '{}'", file.display())]),
            timeout_ms: None,
        };
        store.attach_hooks(Hooks::new(schema, &[hook]).unwrap());
        let mut s = persisting_session(&mut store, &path);
        let spv = Body::SetParameterValues {
            list: vec![ParameterValue { name: pc.into(), value: "NEW".into(), xsd_type: "xsd:string".into() }],
            parameter_key: "k".into(),
        };
        let (resp, _) = exchange(&mut s, &spv, "a");
        assert!(matches!(&resp, Body::Fault(f) if f.code == 9002), "{resp:?}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "OLD");
    }

    /// An extension answering one method, recording the ACS's answers.
    struct Echo {
        seen: Vec<String>,
    }

    impl Extension for Echo {
        fn methods(&self) -> &'static [&'static str] {
            &["ScheduleInform"]
        }
        fn request(&mut self, _: &Schema, _: &mut Store, req: &Body, fx: &mut Effects) -> Option<Body> {
            match req {
                Body::ScheduleInform { .. } => {
                    fx.dirty = true;
                    Some(Body::ScheduleInformResponse)
                }
                _ => None,
            }
        }
        fn response(&mut self, request: &Body, resp: &Body) {
            self.seen.push(format!("{} -> {}", request.method(), resp.method()));
        }
    }

    #[test]
    fn extensions_answer_their_methods_and_see_responses() {
        let schema = Schema::igd();
        let mut store = Store::new(schema);
        let mut echo = Echo { seen: vec![] };
        let mut h = ParameterHandler::new(schema, &mut store).with(&mut echo);
        match h.request(&Body::GetRPCMethods) {
            Body::GetRPCMethodsResponse { methods } => {
                assert!(methods.iter().any(|m| m == "ScheduleInform"));
                assert!(methods.iter().any(|m| m == "GetParameterNames"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(h.request(&Body::ScheduleInform { delay_seconds: 1, command_key: "k".into() }), Body::ScheduleInformResponse);
        assert!(h.effects.dirty);
        // Not the extension's: the parameter RPCs (or 9000) answer.
        assert!(matches!(h.request(&Body::FactoryReset), Body::Fault(Fault { code: 9000, .. })));
        h.response(&Body::TransferCompleteResponse, &Body::TransferCompleteResponse);
        drop(h);
        assert_eq!(echo.seen, vec!["TransferCompleteResponse -> TransferCompleteResponse"]);
    }
}
