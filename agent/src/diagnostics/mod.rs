//! Appendix B diagnostics: IPPingDiagnostics run by the agent, and what
//! happens to WANATMF5LoopbackDiagnostics.
//!
//! B, DiagnosticsState: "Value may be set to Requested to initiate the
//! diagnostic test ... When requested, the CPE SHOULD wait until after
//! completion of the communication session with the ACS before starting
//! the diagnostic. When the diagnostic initiated by the ACS is completed
//! (successfully or not), the CPE MUST establish a new connection to the
//! ACS to allow the ACS to view the results, indicating the Event code
//! "8 DIAGNOSTICS COMPLETE" in the Inform message."
//!
//! * IPPingDiagnostics: between sessions, [`Diagnostics::poll`] starts a
//!   test whose DiagnosticsState is "Requested" (also one left requested by
//!   a restart) on a thread ([`ping`]), and when it ends writes the result
//!   parameters and DiagnosticsState "Complete" ("Error_CannotResolveHostName"
//!   when Host does not resolve) and reports that "8 DIAGNOSTICS COMPLETE"
//!   is due. A test that cannot send any echo (no ICMP socket, no `ping`)
//!   completes with every repetition failed; the reason is logged. While a
//!   test runs, DiagnosticsState reads "Requested"; a new request made
//!   meanwhile (see [`Diagnostics::acs_changed`]) runs after it.
//! * WANATMF5LoopbackDiagnostics: there is no ATM on the machines the agent
//!   runs on itself, so unless a data-model provider serves the object (the
//!   provider runs the test and reports its end), requesting the test is
//!   refused with fault 9001 Request denied, and DiagnosticsState stays
//!   what it was.

pub mod ping;
pub mod ping_command;

use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use crate::datamodel::store::{Refusal, Store};
use crate::datamodel::template_of;

/// Table 35.
pub const DIAGNOSTICS_COMPLETE: &str = "8 DIAGNOSTICS COMPLETE";
/// The IPPingDiagnostics object.
pub const IP_PING: &str = "InternetGatewayDevice.IPPingDiagnostics.";
const ATM_F5: &str = "InternetGatewayDevice.WANDevice.{i}.WANConnectionDevice.{i}.WANATMF5LoopbackDiagnostics.DiagnosticsState";
const REQUESTED: &str = "Requested";

/// Whether setting `name` to `value` must be refused (9001): an ATM F5
/// loopback test the agent cannot run.
pub fn refuse_request(store: &Store, name: &str, value: &str) -> Option<Refusal> {
    (value == REQUESTED && template_of(name) == ATM_F5 && store.values.contains_key(name) && !store.served_by_provider(name)).then(|| Refusal {
        code: 9001,
        message: "Request denied: this device has no ATM link for an F5 loopback test (WANATMF5LoopbackDiagnostics needs a data-model provider)".into(),
    })
}

/// What [`Diagnostics::poll`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Poll {
    /// A test ended and its results are in the tree: queue
    /// [`DIAGNOSTICS_COMPLETE`] and persist.
    pub completed: bool,
}

/// The agent's diagnostics (see the module documentation).
pub struct Diagnostics {
    running: Option<Receiver<Result<ping::Outcome, ping::PingError>>>,
    /// Requested again while running: run again after it.
    again: bool,
    /// Called (from the test's thread) when a test ends, to wake the main loop.
    wake: Arc<dyn Fn() + Send + Sync>,
}

fn p(name: &str) -> String {
    format!("{IP_PING}{name}")
}

impl Diagnostics {
    pub fn new(wake: Arc<dyn Fn() + Send + Sync>) -> Diagnostics {
        Diagnostics { running: None, again: false, wake }
    }

    /// A test is running.
    pub fn busy(&self) -> bool {
        self.running.is_some()
    }

    /// The ACS changed these parameters in a session: a new request of a
    /// running test makes it run again when it ends.
    pub fn acs_changed(&mut self, changed: &[String]) {
        if self.running.is_some() && changed.iter().any(|c| *c == p("DiagnosticsState")) {
            self.again = true;
        }
    }

    /// Between sessions: collect a finished test, start a requested one.
    pub fn poll(&mut self, store: &mut Store) -> Poll {
        let mut out = Poll::default();
        if let Some(rx) = &self.running {
            match rx.try_recv() {
                Ok(r) => {
                    self.running = None;
                    complete(store, r, std::mem::take(&mut self.again));
                    out.completed = true;
                }
                Err(TryRecvError::Empty) => return out,
                Err(TryRecvError::Disconnected) => {
                    self.running = None;
                    tracing::error!("IPPingDiagnostics: the test thread ended without a result");
                    complete(store, Ok(ping::outcome(&[], 0, ping::Method::Command)), std::mem::take(&mut self.again));
                    out.completed = true;
                }
            }
        }
        // A provider serving IPPingDiagnostics runs the test itself.
        let ours = !store.served_by_provider(IP_PING);
        if ours && self.running.is_none() && store.values.get(&p("DiagnosticsState")).is_some_and(|v| v == REQUESTED) {
            let req = request(store);
            tracing::info!(host = %req.host, repetitions = req.repetitions, "IPPingDiagnostics started");
            let (tx, rx) = mpsc::channel();
            let wake = self.wake.clone();
            let spawned = std::thread::Builder::new().name("ip-ping".into()).spawn(move || {
                let _ = tx.send(ping::run(&req));
                wake();
            });
            match spawned {
                Ok(_) => self.running = Some(rx),
                Err(e) => {
                    tracing::error!("IPPingDiagnostics: cannot start the test thread: {e}");
                    complete(store, Ok(ping::outcome(&[], 0, ping::Method::Command)), std::mem::take(&mut self.again));
                    out.completed = true;
                }
            }
        }
        out
    }
}

/// The test parameters from the tree.
fn request(store: &Store) -> ping::Request {
    let get = |n: &str| store.get(&p(n)).unwrap_or_default();
    let num = |n: &str, default: u32| get(n).parse::<u32>().ok().filter(|v| *v > 0).unwrap_or(default);
    // Interface: the full name of a LAN IPInterface or WAN connection
    // object; its address is the source of the echoes.
    let iface = get("Interface");
    let iface = iface.trim().trim_end_matches('.');
    let source = (!iface.is_empty())
        .then(|| ["IPInterfaceIPAddress", "ExternalIPAddress"].iter().find_map(|a| store.get(&format!("{iface}.{a}"))?.parse().ok()))
        .flatten();
    ping::Request {
        host: get("Host"),
        repetitions: num("NumberOfRepetitions", 1),
        timeout: Duration::from_millis(u64::from(num("Timeout", 1000))),
        data_block_size: num("DataBlockSize", 56),
        dscp: get("DSCP").parse().unwrap_or(0),
        source,
    }
}

/// Write the results (B: times zero without a successful response).
fn complete(store: &mut Store, r: Result<ping::Outcome, ping::PingError>, requested_again: bool) {
    let (state, o) = match r {
        Ok(o) => ("Complete", o),
        Err(ping::PingError::CannotResolve { host, reason }) => {
            tracing::warn!("IPPingDiagnostics: cannot resolve {host:?}: {reason}");
            ("Error_CannotResolveHostName", ping::outcome(&[], 0, ping::Method::Command))
        }
        Err(e @ ping::PingError::Unavailable { .. }) => {
            tracing::error!("IPPingDiagnostics: {e}");
            let n = store.get(&p("NumberOfRepetitions")).and_then(|v| v.parse().ok()).unwrap_or(1u32).clamp(1, ping::MAX_REPETITIONS);
            ("Complete", ping::outcome(&[], n, ping::Method::Command))
        }
    };
    tracing::info!(state, success = o.success, failure = o.failure, average_ms = o.average_ms, method = ?o.method, "IPPingDiagnostics complete");
    for (name, v) in [
        ("SuccessCount", o.success),
        ("FailureCount", o.failure),
        ("AverageResponseTime", o.average_ms),
        // Spelled as in Issue 1 (B) and the BBF model.
        ("MinimumResponseTmie", o.minimum_ms),
        ("MaximumResponseTime", o.maximum_ms),
    ] {
        store.set(&p(name), &v.to_string());
    }
    // A request made while the test ran stays requested (it runs next).
    if !requested_again {
        store.set(&p("DiagnosticsState"), state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datamodel::Schema;
    use crate::rpc;
    use crate::soap::{Body, ParameterValue};

    fn spv(list: &[(&str, &str, &str)]) -> Body {
        Body::SetParameterValues {
            list: list.iter().map(|(n, v, t)| ParameterValue { name: n.to_string(), value: v.to_string(), xsd_type: t.to_string() }).collect(),
            parameter_key: "d".into(),
        }
    }

    /// Ping 127.0.0.1 through the RPCs and the poll loop as the agent does.
    #[test]
    fn ip_ping_to_loopback() {
        let schema = Schema::igd();
        let mut st = Store::new(schema);
        assert_eq!(st.get(&p("DiagnosticsState")).unwrap(), "None");
        let req = spv(&[
            (&p("Host"), "127.0.0.1", "xsd:string"),
            (&p("NumberOfRepetitions"), "2", "xsd:unsignedInt"),
            (&p("Timeout"), "2000", "xsd:unsignedInt"),
            (&p("DataBlockSize"), "100", "xsd:unsignedInt"),
            (&p("DiagnosticsState"), "Requested", "xsd:string"),
        ]);
        let (resp, fx) = rpc::handle(schema, &mut st, &req);
        assert_eq!(resp, Body::SetParameterValuesResponse { status: 0 });
        let (tx, rx) = mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        let mut d = Diagnostics::new(Arc::new(move || {
            let _ = tx.lock().unwrap().send(());
        }));
        d.acs_changed(&fx.changed);
        assert_eq!(d.poll(&mut st), Poll::default());
        assert!(d.busy());
        assert_eq!(st.get(&p("DiagnosticsState")).unwrap(), "Requested", "reads Requested while running");
        rx.recv_timeout(Duration::from_secs(10)).expect("the test ends and wakes the loop");
        assert_eq!(d.poll(&mut st), Poll { completed: true });
        assert!(!d.busy());
        let get = |n: &str| st.get(&p(n)).unwrap();
        assert_eq!(get("DiagnosticsState"), "Complete");
        assert_eq!((get("SuccessCount"), get("FailureCount")), ("2".into(), "0".into()), "needs ICMP: a ping socket, CAP_NET_RAW or the ping command");
        let (min, avg, max): (u32, u32, u32) =
            (get("MinimumResponseTmie").parse().unwrap(), get("AverageResponseTime").parse().unwrap(), get("MaximumResponseTime").parse().unwrap());
        assert!(min <= avg && avg <= max && max < 1000, "{min} {avg} {max}");
        // Nothing more to do until requested again.
        assert_eq!(d.poll(&mut st), Poll::default());
        assert!(!d.busy());
    }

    #[test]
    fn unresolvable_host_and_request_while_running() {
        let schema = Schema::igd();
        let mut st = Store::new(schema);
        let (_, _) =
            rpc::handle(schema, &mut st, &spv(&[(&p("Host"), "no-such-host.invalid", "xsd:string"), (&p("DiagnosticsState"), "Requested", "xsd:string")]));
        let (tx, rx) = mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        let mut d = Diagnostics::new(Arc::new(move || {
            let _ = tx.lock().unwrap().send(());
        }));
        d.poll(&mut st);
        // Requested again (with another host) while it runs.
        let (_, fx) = rpc::handle(schema, &mut st, &spv(&[(&p("Host"), "127.0.0.1", "xsd:string"), (&p("DiagnosticsState"), "Requested", "xsd:string")]));
        d.acs_changed(&fx.changed);
        rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(d.poll(&mut st), Poll { completed: true });
        // The first test's results are in; the second one started at once.
        assert_eq!(st.get(&p("SuccessCount")).unwrap(), "0");
        assert_eq!(st.get(&p("DiagnosticsState")).unwrap(), "Requested");
        assert!(d.busy());
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(d.poll(&mut st), Poll { completed: true });
        assert_eq!(st.get(&p("DiagnosticsState")).unwrap(), "Complete");
        assert_eq!(st.get(&p("SuccessCount")).unwrap(), "1");
    }

    #[test]
    fn unresolvable_host_is_an_error_state() {
        let schema = Schema::igd();
        let mut st = Store::new(schema);
        st.set(&p("SuccessCount"), "5");
        complete(&mut st, Err(ping::PingError::CannotResolve { host: "x".into(), reason: "NXDOMAIN".into() }), false);
        assert_eq!(st.get(&p("DiagnosticsState")).unwrap(), "Error_CannotResolveHostName");
        assert_eq!(st.get(&p("SuccessCount")).unwrap(), "0");
    }

    /// No ATM here: requesting the F5 loopback test is refused (9001) and
    /// changes nothing.
    #[test]
    fn atm_f5_loopback_is_refused() {
        let schema = Schema::igd();
        let mut st = Store::new(schema);
        let f5 = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANATMF5LoopbackDiagnostics.";
        for n in ["DiagnosticsState", "NumberOfRepetitions"] {
            st.values.insert(format!("{f5}{n}"), if n == "DiagnosticsState" { "None".into() } else { "1".into() });
        }
        let (resp, fx) = rpc::handle(
            schema,
            &mut st,
            &spv(&[(&format!("{f5}NumberOfRepetitions"), "3", "xsd:unsignedInt"), (&format!("{f5}DiagnosticsState"), "Requested", "xsd:string")]),
        );
        assert!(matches!(&resp, Body::Fault(f) if f.code == 9001 && f.string.contains("ATM")), "{resp:?}");
        assert!(!fx.dirty);
        assert_eq!(st.get(&format!("{f5}NumberOfRepetitions")).unwrap(), "1");
        assert_eq!(st.get(&format!("{f5}DiagnosticsState")).unwrap(), "None");
    }
}
