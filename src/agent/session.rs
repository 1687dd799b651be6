//! One CWMP session (3.7, Figure 3), sans-IO: the caller does HTTP and
//! feeds each response body back; the session says what to POST next.
//!
//! CPE → ACS: Inform first (with every pending event), then — having no
//! requests of its own here — an empty POST; ACS → CPE requests are
//! answered one envelope per POST (the ACS's MaxEnvelopes is honoured by
//! never sending more than one); an empty HTTP response while the CPE has
//! nothing left to send ends the session (3.7.1.5). A Fault 8005 to the
//! Inform means "retry now" (A.5.3).

use std::collections::VecDeque;

use super::datamodel::store::Store;
use super::datamodel::Schema;
use super::rpc::{self, Effects};
use super::soap::{self, Body, DeviceId, Event, ParameterValue};

/// Table 33 parameters carried in every Inform (those present in the tree).
pub const INFORM_PARAMETERS: &[&str] = &[
    "InternetGatewayDevice.DeviceSummary",
    "InternetGatewayDevice.DeviceInfo.SpecVersion",
    "InternetGatewayDevice.DeviceInfo.HardwareVersion",
    "InternetGatewayDevice.DeviceInfo.SoftwareVersion",
    "InternetGatewayDevice.DeviceInfo.ProvisioningCode",
    "InternetGatewayDevice.ManagementServer.ConnectionRequestURL",
    "InternetGatewayDevice.ManagementServer.ParameterKey",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    SendInform,
    AwaitInformResponse,
    SendEmpty,
    AwaitRequests,
    SendResponse,
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
    #[error("response fed in state {0:?}")]
    WrongState(State),
}

/// One session's state.
pub struct Session<'a> {
    schema: &'a Schema,
    store: &'a mut Store,
    device: DeviceId,
    events: Vec<Event>,
    retry_count: u32,
    current_time: String,
    state: State,
    next_id: u64,
    outbox: VecDeque<String>,
    /// What the ACS changed (for persistence; never an active notification).
    pub effects: Effects,
    /// The ACS's MaxEnvelopes from its InformResponse.
    pub acs_max_envelopes: u32,
}

impl<'a> Session<'a> {
    pub fn new(
        schema: &'a Schema,
        store: &'a mut Store,
        device: DeviceId,
        events: Vec<Event>,
        retry_count: u32,
        current_time: String,
    ) -> Self {
        Session {
            schema,
            store,
            device,
            events,
            retry_count,
            current_time,
            state: State::SendInform,
            next_id: 1,
            outbox: VecDeque::new(),
            effects: Effects::default(),
            acs_max_envelopes: 1,
        }
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// The Inform this session sends (A.3.3.1).
    pub fn inform(&self) -> Body {
        let parameters = INFORM_PARAMETERS
            .iter()
            .filter_map(|p| {
                self.store.get(p).map(|value| ParameterValue {
                    name: p.to_string(),
                    value,
                    xsd_type: self.schema.param(p).map(|d| d.ty.xsd()).unwrap_or("xsd:string").into(),
                })
            })
            .chain(
                // Table 33: the external IP address of every WANIPConnection present.
                self.store
                    .values
                    .keys()
                    .filter(|k| k.contains(".WANIPConnection.") && k.ends_with(".ExternalIPAddress"))
                    .map(|k| ParameterValue { name: k.clone(), value: self.store.get(k).unwrap_or_default(), xsd_type: "xsd:string".into() }),
            )
            .collect();
        Body::Inform {
            device_id: self.device.clone(),
            events: self.events.clone(),
            max_envelopes: 1,
            current_time: self.current_time.clone(),
            retry_count: self.retry_count,
            parameters,
        }
    }

    /// The body of the next HTTP POST (possibly empty), or None when over.
    pub fn next_post(&mut self) -> Option<String> {
        match self.state {
            State::SendInform => {
                let id = self.next_id.to_string();
                self.next_id += 1;
                self.state = State::AwaitInformResponse;
                Some(soap::to_xml(Some(&id), false, &self.inform()))
            }
            State::SendEmpty => {
                self.state = State::AwaitRequests;
                Some(String::new())
            }
            State::SendResponse => {
                let body = self.outbox.pop_front().unwrap_or_default();
                self.state = State::AwaitRequests;
                Some(body)
            }
            State::Done => None,
            State::AwaitInformResponse | State::AwaitRequests => None,
        }
    }

    /// Feed the body of the HTTP response to the last POST.
    pub fn on_response(&mut self, http_body: &str) -> Result<(), SessionError> {
        let envs = soap::parse(http_body).map_err(|e| SessionError::NotSoap(e.0))?;
        match self.state {
            State::AwaitInformResponse => {
                let Some(e) = envs.first() else { return Err(SessionError::Unexpected("an empty response".into())) };
                match &e.body {
                    Ok(Body::InformResponse { max_envelopes }) => {
                        self.acs_max_envelopes = (*max_envelopes).max(1);
                        self.state = State::SendEmpty;
                        Ok(())
                    }
                    Ok(Body::Fault(f)) if f.code == 8005 => {
                        // A.5.3: retry the Inform immediately.
                        self.retry_count += 1;
                        self.state = State::SendInform;
                        Ok(())
                    }
                    Ok(Body::Fault(f)) => Err(SessionError::InformFault { code: f.code, string: f.string.clone() }),
                    Ok(b) => Err(SessionError::Unexpected(b.method().into())),
                    Err(f) => Err(SessionError::Unexpected(f.string.clone())),
                }
            }
            State::AwaitRequests => {
                if envs.is_empty() {
                    // 3.7.1.5: empty response and nothing left to send.
                    self.state = if self.outbox.is_empty() { State::Done } else { State::SendResponse };
                    return Ok(());
                }
                for e in envs {
                    let reply = match &e.body {
                        Ok(req) => {
                            let (resp, fx) = rpc::handle(self.schema, self.store, req);
                            self.effects.changed.extend(fx.changed);
                            self.effects.dirty |= fx.dirty;
                            resp
                        }
                        Err(f) => Body::Fault(f.clone()),
                    };
                    self.outbox.push_back(soap::to_xml(e.id.as_deref(), false, &reply));
                }
                self.state = State::SendResponse;
                Ok(())
            }
            ref s => Err(SessionError::WrongState(s.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> DeviceId {
        DeviceId { manufacturer: "cpekit".into(), oui: "00D09E".into(), product_class: "Gateway".into(), serial_number: "CPE0001".into() }
    }

    fn acs(body: &Body, id: &str) -> String {
        soap::to_xml(Some(id), false, body)
    }

    #[test]
    fn full_session_inform_requests_empty() {
        let schema = Schema::igd();
        let mut store = Store::new(schema);
        let events = vec![Event { code: "0 BOOTSTRAP".into(), command_key: String::new() }];
        let mut s = Session::new(schema, &mut store, device(), events, 0, "2026-11-24T12:00:00Z".into());
        let inform = s.next_post().unwrap();
        let parsed = soap::parse(&inform).unwrap();
        assert!(inform.contains("<EventCode>0 BOOTSTRAP</EventCode>"));
        assert!(parsed[0].id.is_some());
        assert!(s.next_post().is_none(), "waits for the InformResponse");
        s.on_response(&acs(&Body::InformResponse { max_envelopes: 1 }, "1")).unwrap();
        assert_eq!(s.next_post().unwrap(), "", "empty POST: the CPE has no requests");
        // Two ACS requests in one HTTP body, answered one per POST with IDs echoed.
        let unknown = format!(
            "<soap:Envelope xmlns:soap=\"{}\" xmlns:cwmp=\"{}\"><soap:Header><cwmp:ID soap:mustUnderstand=\"1\">b</cwmp:ID></soap:Header><soap:Body><cwmp:FlyToTheMoon/></soap:Body></soap:Envelope>",
            soap::SOAP_ENV,
            soap::CWMP
        );
        let pii = "InternetGatewayDevice.ManagementServer.PeriodicInformInterval";
        let two = format!("{}{unknown}", acs(&Body::GetParameterValues { names: vec![pii.into()] }, "a"));
        s.on_response(&two).unwrap();
        // (The codec decodes what a CPE receives; check responses as text.)
        let raw1 = s.next_post().unwrap();
        let r1 = soap::parse(&raw1).unwrap().remove(0);
        assert_eq!(r1.id.as_deref(), Some("a"));
        assert!(raw1.contains("<cwmp:GetParameterValuesResponse>") && raw1.contains("<Value xsi:type=\"xsd:unsignedInt\">1</Value>"), "{raw1}");
        // The ACS answers a response POST with an empty body: send the next one.
        s.on_response("").unwrap();
        let r2 = soap::parse(&s.next_post().unwrap()).unwrap().remove(0);
        assert_eq!(r2.id.as_deref(), Some("b"));
        assert!(matches!(r2.body, Ok(Body::Fault(soap::Fault { code: 9000, .. }))));
        // A SetParameterValues, then the ACS ends the session.
        let spv = Body::SetParameterValues {
            list: vec![ParameterValue { name: pii.into(), value: "120".into(), xsd_type: "xsd:unsignedInt".into() }],
            parameter_key: "k".into(),
        };
        s.on_response(&acs(&spv, "c")).unwrap();
        let raw3 = s.next_post().unwrap();
        assert!(raw3.contains("<cwmp:SetParameterValuesResponse><Status>0</Status>"), "{raw3}");
        s.on_response("").unwrap();
        assert_eq!(*s.state(), State::Done);
        assert!(s.next_post().is_none());
        assert!(s.effects.dirty);
        assert_eq!(s.effects.changed, vec![pii.to_string()]);
        assert_eq!(store.get(pii).unwrap(), "120");
    }

    #[test]
    fn fault_8005_retries_inform_and_other_faults_end() {
        let schema = Schema::igd();
        let mut store = Store::new(schema);
        let mut s = Session::new(schema, &mut store, device(), vec![], 0, "2026-11-24T12:00:00Z".into());
        s.next_post().unwrap();
        s.on_response(&acs(&Body::Fault(soap::Fault::new(8005, "Retry request")), "1")).unwrap();
        let again = s.next_post().unwrap();
        assert!(again.contains("<RetryCount>1</RetryCount>"), "{again}");
        let e = s.on_response(&acs(&Body::Fault(soap::Fault::new(8002, "Internal error")), "2")).unwrap_err();
        assert!(matches!(e, SessionError::InformFault { code: 8002, .. }));
        assert!(matches!(s.on_response("not xml <"), Err(SessionError::NotSoap(_)) | Err(SessionError::WrongState(_))));
    }
}
