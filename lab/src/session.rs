//! The lab ACS's side of CWMP sessions (TR-069 3.7), sans-IO: HTTP POST
//! bodies in, HTTP replies and plain account lines out. It answers each
//! Inform, sends the script's requests one at a time once the CPE has
//! nothing more to send (3.7.1.4), answers TransferComplete, and checks
//! every outcome against the script. What it saw is kept in a [`Record`].

use std::collections::VecDeque;
use std::path::PathBuf;

use agent::soap::{self, Body, Fault};
use serde::Serialize;

use crate::script::{Rpc, Script, SessionScript};

const SOFTWARE_VERSION: &str = "InternetGatewayDevice.DeviceInfo.SoftwareVersion";

/// What happened, for `--record` (JSON).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Record {
    pub sessions: Vec<SessionRecord>,
    /// Files served: (name, HTTP status, bytes).
    pub files: Vec<(String, u16, u64)>,
    /// Expectations not met; empty when everything happened as scripted.
    pub failures: Vec<String>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct SessionRecord {
    /// Inform event codes, with the CommandKey after a space when not empty.
    pub events: Vec<String>,
    pub software_version: Option<String>,
    pub rpcs: Vec<RpcRecord>,
    pub transfer_completes: Vec<TransferCompleteRecord>,
    pub ended: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RpcRecord {
    pub method: String,
    /// The response's method, or "Fault".
    pub response: Option<String>,
    pub fault: Option<u32>,
    /// GetOptions: (OptionName, enabled).
    pub options: Vec<(String, bool)>,
    /// GetParameterValues: (name, value).
    pub values: Vec<(String, String)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TransferCompleteRecord {
    pub command_key: String,
    pub fault_code: u32,
    pub fault_string: String,
}

/// An HTTP reply: 200 with envelopes, or 204 (empty).
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

struct Current {
    index: usize,
    script: SessionScript,
    pending: VecDeque<Rpc>,
    outstanding: Option<(String, Rpc)>,
}

pub struct Lab {
    scripts: Vec<SessionScript>,
    serve: PathBuf,
    files_url: String,
    current: Option<Current>,
    next_id: u64,
    pub record: Record,
    /// Account lines not yet printed.
    pub lines: Vec<String>,
}

impl Lab {
    pub fn new(script: Script, serve: PathBuf, files_url: String) -> Lab {
        Lab { scripts: script.sessions, serve, files_url, current: None, next_id: 0, record: Record::default(), lines: Vec::new() }
    }

    /// Every scripted session has ended.
    pub fn done(&self) -> bool {
        self.record.sessions.iter().filter(|s| s.ended).count() >= self.scripts.len()
    }

    /// What the lab ACS is waiting for (for a time-out message).
    pub fn waiting_for(&self) -> String {
        match &self.current {
            Some(c) => match &c.outstanding {
                Some((_, rpc)) => format!("the {}Response in session {}", rpc_method(rpc), c.index + 1),
                None => format!("the end of session {}", c.index + 1),
            },
            None => format!("session {} (scripted: {})", self.record.sessions.len() + 1, self.scripts.len()),
        }
    }

    fn say(&mut self, line: String) {
        self.lines.push(line);
    }

    fn fail(&mut self, what: String) {
        self.say(format!("     !! {what}"));
        self.record.failures.push(what);
    }

    pub fn served(&mut self, name: &str, status: u16, bytes: u64) {
        self.say(format!("   file server: GET /files/{name} -> {status}{}", if status == 200 { format!(", {bytes} bytes") } else { String::new() }));
        self.record.files.push((name.to_string(), status, bytes));
    }

    /// Handle one POST to the CWMP URL.
    pub fn post(&mut self, body: &str) -> Reply {
        let envelopes = match soap::parse(body) {
            Ok(e) => e,
            Err(e) => {
                self.fail(format!("unreadable POST from the device: {e}"));
                return Reply { status: 400, body: e.to_string() };
            }
        };
        if let Some(Ok(Body::Inform { events, parameters, .. })) = envelopes.first().map(|e| &e.body) {
            let id = envelopes[0].id.clone().unwrap_or_default();
            let events: Vec<String> =
                events.iter().map(|e| if e.command_key.is_empty() { e.code.clone() } else { format!("{} {}", e.code, e.command_key) }).collect();
            let version = parameters.iter().find(|p| p.name == SOFTWARE_VERSION).map(|p| p.value.clone());
            self.inform(events, version);
            return Reply { status: 200, body: soap::to_xml(Some(&id), false, &Body::InformResponse { max_envelopes: 1 }) };
        }
        if self.current.is_none() {
            self.fail("a POST outside a session (no Inform first)".into());
            return Reply { status: 400, body: "no session: send an Inform first".into() };
        }
        let mut reply = String::new();
        for env in envelopes {
            match env.body {
                Ok(b) if b.is_request() => {
                    let answer = self.cpe_request(b);
                    reply.push_str(&soap::to_xml(env.id.as_deref(), false, &answer));
                }
                Ok(b) => self.response(env.id.as_deref(), Ok(b)),
                Err(f) => self.response(env.id.as_deref(), Err(f)),
            }
        }
        if !reply.is_empty() {
            return Reply { status: 200, body: reply };
        }
        self.next_request()
    }

    fn inform(&mut self, events: Vec<String>, version: Option<String>) {
        if let Some(c) = self.current.take() {
            self.fail(format!("session {} ended without its empty POST", c.index + 1));
            self.end(c);
        }
        let index = self.record.sessions.len();
        let v = version.as_deref().map(|v| format!("; SoftwareVersion {v}")).unwrap_or_default();
        self.say(format!("   session {}: Inform [{}]{v}", index + 1, events.join(", ")));
        let script = self.scripts.get(index).cloned();
        if script.is_none() {
            self.fail(format!("session {} was not in the script", index + 1));
        }
        let script = script.unwrap_or_default();
        for want in &script.expect_events {
            if !events.iter().any(|e| e == want || e.starts_with(&format!("{want} "))) {
                self.fail(format!("session {}: the Inform lacks the event {want:?}", index + 1));
            }
        }
        self.record.sessions.push(SessionRecord { events, software_version: version, ..Default::default() });
        let pending = script.rpcs.iter().cloned().collect();
        self.current = Some(Current { index, script, pending, outstanding: None });
    }

    /// A.3.3: answer a CPE request.
    fn cpe_request(&mut self, b: Body) -> Body {
        match b {
            Body::TransferComplete { command_key, fault, .. } => {
                let code = if fault.code == 0 { "0 (success)".to_string() } else { format!("{} {:?}", fault.code, shorten(&fault.string, 60)) };
                self.say(format!("     <- TransferComplete {command_key}: FaultCode {code}"));
                let tc = TransferCompleteRecord { command_key, fault_code: fault.code, fault_string: fault.string };
                self.check_transfer_complete(&tc);
                self.record.sessions.last_mut().expect("in a session").transfer_completes.push(tc);
                Body::TransferCompleteResponse
            }
            Body::GetRPCMethods => {
                self.say("     <- GetRPCMethods".into());
                Body::GetRPCMethodsResponse { methods: ["Inform", "GetRPCMethods", "TransferComplete"].iter().map(|m| m.to_string()).collect() }
            }
            other => {
                self.say(format!("     <- {} (not supported by the lab ACS: Fault 8000)", other.method()));
                Body::Fault(Fault::new(8000, format!("the lab ACS does not support {}", other.method())))
            }
        }
    }

    fn check_transfer_complete(&mut self, tc: &TransferCompleteRecord) {
        let c = self.current.as_ref().expect("in a session");
        let n = c.index + 1;
        let Some(want) = c.script.expect_transfer_complete.clone() else { return };
        if tc.command_key != want.command_key {
            return self.fail(format!("session {n}: TransferComplete for {:?}, expected {:?}", tc.command_key, want.command_key));
        }
        if tc.fault_code != want.fault_code {
            return self.fail(format!("session {n}: TransferComplete {} FaultCode {}, expected {}", tc.command_key, tc.fault_code, want.fault_code));
        }
        if !tc.fault_string.contains(&want.fault_string_contains) {
            return self.fail(format!("session {n}: FaultString {:?} does not say {:?}", tc.fault_string, want.fault_string_contains));
        }
        self.say(format!("        as expected: FaultCode {}", want.fault_code));
    }

    /// A response (or fault) to the request we sent.
    fn response(&mut self, id: Option<&str>, body: Result<Body, Fault>) {
        let c = self.current.as_mut().expect("in a session");
        let n = c.index + 1;
        let Some((sent_id, rpc)) = c.outstanding.take() else {
            let what = body.map(|b| b.method().to_string()).unwrap_or_else(|f| format!("Fault {}", f.code));
            return self.fail(format!("session {n}: unexpected {what} (no request outstanding)"));
        };
        if id != Some(sent_id.as_str()) {
            self.fail(format!("session {n}: response cwmp:ID {id:?}, expected {sent_id:?}"));
        }
        let method = rpc_method(&rpc);
        let mut rec = RpcRecord { method: method.into(), response: None, fault: None, options: vec![], values: vec![] };
        match body {
            Err(f) | Ok(Body::Fault(f)) => {
                rec.response = Some("Fault".into());
                rec.fault = Some(f.code);
                self.say(format!("     <- Fault {} {:?}", f.code, f.string));
                self.fail(format!("session {n}: {method} failed: Fault {} {}", f.code, f.string));
            }
            Ok(b) => {
                rec.response = Some(b.method().into());
                if b.method() != format!("{method}Response") {
                    self.fail(format!("session {n}: {method} answered with {}", b.method()));
                }
                match (&rpc, &b) {
                    (_, Body::DownloadResponse { status: 1, .. }) => self.say("     <- DownloadResponse: Status 1 (the download follows the session)".into()),
                    (_, Body::DownloadResponse { status, .. }) => self.say(format!("     <- DownloadResponse: Status {status} (done within the session)")),
                    (Rpc::GetOptions { expect_enabled, .. }, Body::GetOptionsResponse { options }) => {
                        rec.options = options.iter().map(|o| (o.option_name.clone(), o.state & 1 == 1)).collect();
                        if options.is_empty() {
                            self.say("     <- GetOptionsResponse: no Options".into());
                        }
                        for o in options {
                            let state = if o.state & 1 == 1 { "enabled" } else { "disabled" };
                            let mode = match (o.mode, &o.expiration_date) {
                                (1, Some(d)) => format!(", expires {d}"),
                                (2, _) => ", without expiration".into(),
                                _ => String::new(),
                            };
                            self.say(format!("     <- GetOptionsResponse: {} {state}{mode} (voucher {})", o.option_name, o.voucher_sn));
                        }
                        for want in expect_enabled {
                            if !rec.options.iter().any(|(name, on)| name == want && *on) {
                                self.fail(format!("session {n}: Option {want:?} is not enabled"));
                            }
                        }
                    }
                    (Rpc::GetParameterValues { expect_values, .. }, Body::GetParameterValuesResponse { list }) => {
                        rec.values = list.iter().map(|p| (p.name.clone(), p.value.clone())).collect();
                        for p in list {
                            self.say(format!("     <- {} = {:?}", p.name, p.value));
                        }
                        for (name, want) in expect_values {
                            match rec.values.iter().find(|(k, _)| k == name) {
                                Some((_, v)) if v == want => {}
                                Some((_, v)) => self.fail(format!("session {n}: {name} is {v:?}, expected {want:?}")),
                                None => self.fail(format!("session {n}: {name} missing from the response")),
                            }
                        }
                    }
                    (_, b) => self.say(format!("     <- {}", b.method())),
                }
            }
        }
        self.record.sessions.last_mut().expect("in a session").rpcs.push(rec);
    }

    /// Send the next scripted request, or end the session (an empty reply
    /// to the CPE's empty POST, 3.7.1.4).
    fn next_request(&mut self) -> Reply {
        let c = self.current.as_mut().expect("in a session");
        if let Some((_, rpc)) = &c.outstanding {
            let (n, m) = (c.index + 1, rpc_method(rpc));
            self.fail(format!("session {n}: the device sent an empty POST while the {m} was unanswered"));
            return Reply { status: 204, body: String::new() };
        }
        let Some(rpc) = c.pending.pop_front() else {
            let c = self.current.take().expect("in a session");
            self.end(c);
            return Reply { status: 204, body: String::new() };
        };
        let body = match rpc.body(&self.serve, &self.files_url) {
            Ok(b) => b,
            Err(e) => {
                let (n, m) = (c.index + 1, rpc_method(&rpc));
                self.fail(format!("session {n}: cannot build the {m}: {e}"));
                return self.next_request();
            }
        };
        self.next_id += 1;
        let id = format!("lab-{}", self.next_id);
        c.outstanding = Some((id.clone(), rpc.clone()));
        let line = match (&rpc, &body) {
            (_, Body::Download(a)) => format!("     -> Download {}: {}, {} ({} bytes)", a.command_key, a.file_type, a.url, a.file_size),
            (Rpc::SetVouchers { files }, _) => format!("     -> SetVouchers: {}", files.join(", ")),
            (Rpc::GetOptions { option_name, .. }, _) if option_name.is_empty() => "     -> GetOptions: all Options".into(),
            (Rpc::GetOptions { option_name, .. }, _) => format!("     -> GetOptions: {option_name}"),
            (Rpc::GetParameterValues { names, .. }, _) => format!("     -> GetParameterValues: {}", names.join(", ")),
            (_, b) => format!("     -> {}", b.method()),
        };
        self.say(line);
        Reply { status: 200, body: soap::to_xml(Some(&id), false, &body) }
    }

    fn end(&mut self, c: Current) {
        let n = c.index + 1;
        for rpc in c.pending.iter().chain(c.outstanding.as_ref().map(|(_, r)| r)) {
            self.fail(format!("session {n}: the {} was never answered", rpc_method(rpc)));
        }
        if let Some(want) = &c.script.expect_transfer_complete {
            let seen = self.record.sessions.last().is_some_and(|s| s.transfer_completes.iter().any(|t| t.command_key == want.command_key));
            if !seen {
                self.fail(format!("session {n}: no TransferComplete for {:?}", want.command_key));
            }
        }
        self.say(format!("   session {n} ends"));
        if let Some(s) = self.record.sessions.get_mut(c.index) {
            s.ended = true;
        }
    }
}

/// At most `n` characters of `s`, "..." marking a cut.
fn shorten(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

fn rpc_method(r: &Rpc) -> &'static str {
    match r {
        Rpc::Download { .. } => "Download",
        Rpc::SetVouchers { .. } => "SetVouchers",
        Rpc::GetOptions { .. } => "GetOptions",
        Rpc::GetParameterValues { .. } => "GetParameterValues",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent::soap::{DeviceId, Event, OptionStruct, ParameterValue, TransferFault};

    const SCRIPT: &str = r#"
[[session]]
expect_events = ["0 BOOTSTRAP"]
[[session.rpc]]
method = "Download"
command_key = "k1"
file_type = "1 Firmware Upgrade Image"
file = "fw.pkg"
[[session.rpc]]
method = "GetOptions"
expect_enabled = ["VoIP"]

[[session]]
expect_events = ["7 TRANSFER COMPLETE", "M Download"]
expect_transfer_complete = { command_key = "k1", fault_code = 0 }
"#;

    fn new_lab() -> (Lab, tempfile_dir::Dir) {
        let d = tempfile_dir::Dir::new();
        std::fs::write(d.0.join("fw.pkg"), b"0123456789").unwrap();
        (Lab::new(Script::parse(SCRIPT).unwrap(), d.0.clone(), "http://127.0.0.1:1/files".into()), d)
    }

    /// A scratch directory without a dev-dependency.
    mod tempfile_dir {
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let p = std::env::temp_dir().join(format!("cpekit-lab-test-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn inform(events: &[(&str, &str)]) -> String {
        let b = Body::Inform {
            device_id: DeviceId { manufacturer: "cpekit".into(), oui: "00D09E".into(), product_class: "Gateway".into(), serial_number: "X".into() },
            events: events.iter().map(|(c, k)| Event { code: c.to_string(), command_key: k.to_string() }).collect(),
            max_envelopes: 1,
            current_time: "2026-01-01T00:00:00Z".into(),
            retry_count: 0,
            parameters: vec![ParameterValue { name: SOFTWARE_VERSION.into(), value: "3.0.21".into(), xsd_type: "xsd:string".into() }],
        };
        soap::to_xml(Some("cpe-1"), false, &b)
    }

    /// The cwmp:ID of the request in a reply.
    fn id(r: &Reply) -> String {
        soap::parse(&r.body).unwrap()[0].id.clone().unwrap()
    }

    fn options(on: bool) -> Body {
        Body::GetOptionsResponse {
            options: vec![OptionStruct {
                option_name: "VoIP".into(),
                voucher_sn: 1,
                state: on as u8,
                mode: 2,
                start_date: "2026-01-01T00:00:00Z".into(),
                expiration_date: None,
                is_transferable: false,
            }],
        }
    }

    fn transfer_complete(code: u32) -> String {
        let fault = TransferFault { code, string: if code == 0 { String::new() } else { "package signature not trusted".into() } };
        soap::to_xml(
            Some("cpe-2"),
            false,
            &Body::TransferComplete {
                command_key: "k1".into(),
                fault,
                start_time: "2026-01-01T00:00:01Z".into(),
                complete_time: "2026-01-01T00:00:02Z".into(),
            },
        )
    }

    /// Play both sessions; `tc` is the FaultCode the CPE reports.
    fn play(lab: &mut Lab, option_on: bool, tc: u32) {
        assert!(lab.post(&inform(&[("0 BOOTSTRAP", "")])).body.contains("InformResponse"));
        let r = lab.post("");
        assert!(
            r.body.contains("<cwmp:Download>") && r.body.contains("http://127.0.0.1:1/files/fw.pkg") && r.body.contains("<FileSize>10</FileSize>"),
            "{}",
            r.body
        );
        let dl = Body::DownloadResponse { status: 1, start_time: "0001-01-01T00:00:00Z".into(), complete_time: "0001-01-01T00:00:00Z".into() };
        let r = lab.post(&soap::to_xml(Some(&id(&r)), false, &dl));
        assert!(r.body.contains("<cwmp:GetOptions>"), "{}", r.body);
        let r = lab.post(&soap::to_xml(Some(&id(&r)), false, &options(option_on)));
        assert_eq!(r, Reply { status: 204, body: String::new() });
        assert!(!lab.done());
        lab.post(&inform(&[("7 TRANSFER COMPLETE", ""), ("M Download", "k1")]));
        assert!(lab.post(&transfer_complete(tc)).body.contains("TransferCompleteResponse"));
        assert_eq!(lab.post("").status, 204);
        assert!(lab.done());
    }

    #[test]
    fn a_session_as_scripted_passes() {
        let (mut lab, _d) = new_lab();
        play(&mut lab, true, 0);
        assert!(lab.record.failures.is_empty(), "{:?}", lab.record.failures);
        assert_eq!(lab.record.sessions[1].transfer_completes[0].fault_code, 0);
        assert_eq!(lab.record.sessions[0].rpcs[1].options, vec![("VoIP".to_string(), true)]);
        assert!(lab.lines.iter().any(|l| l.contains("<- TransferComplete k1: FaultCode 0 (success)")), "{:#?}", lab.lines);
    }

    #[test]
    fn each_unmet_expectation_is_a_failure() {
        let (mut lab, _d) = new_lab();
        play(&mut lab, false, 9010);
        assert_eq!(lab.record.failures.len(), 2, "{:?}", lab.record.failures);
        assert!(lab.record.failures[0].contains("\"VoIP\" is not enabled"));
        assert!(lab.record.failures[1].contains("FaultCode 9010, expected 0"));

        // A missing event, a faulted RPC, a session that never comes.
        let (mut lab, _d) = new_lab();
        lab.post(&inform(&[("1 BOOT", "")]));
        let r = lab.post("");
        lab.post(&soap::to_xml(Some(&id(&r)), false, &Body::Fault(Fault::new(9002, "Internal error"))));
        assert!(!lab.done());
        let f = &lab.record.failures;
        assert!(f[0].contains("lacks the event \"0 BOOTSTRAP\"") && f[1].contains("Download failed: Fault 9002"), "{f:?}");
        assert_eq!(lab.waiting_for(), "the GetOptionsResponse in session 1");
    }
}
