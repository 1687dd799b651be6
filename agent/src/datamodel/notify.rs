//! Parameter change notification (3.2.1, A.3.2.4, A.3.3.1), sans-IO.
//!
//! The [`Notifier`] remembers the last value seen of every watched
//! parameter and compares on [`Notifier::poll`]. Watched are:
//! - parameters whose Notification attribute is 1 (passive: A.3.2.4 "the
//!   CPE MUST include the new value in the ParameterList in the Inform
//!   message that is sent the next time a session is established") or 2
//!   (active: "the CPE MUST initiate a session to the ACS, and include the
//!   new value");
//! - the "Inform on Change" parameters of Table 33 — DeviceInfo.SoftwareVersion,
//!   DeviceInfo.ProvisioningCode, ManagementServer.ConnectionRequestURL and
//!   the ExternalIPAddress of the default WAN connection. A.3.3.1: "any
//!   change in the value of the parameter MUST result in the CPE initiating
//!   a connection to the ACS ... regardless of whether the ACS has marked
//!   these parameters for notification", so they always count as active.
//!   Footnote 9 adds that the default WAN connection changing to another
//!   connection also triggers it. (Issue 1 has no "forced" attribute value:
//!   GetParameterAttributes reports what the ACS set.)
//!
//! Changes made by the ACS never notify (3.2.1: "Parameter changes made by
//! the ACS itself via SetParameterValues MUST NOT cause a new session to be
//! initiated"): the caller passes what the ACS changed to
//! [`Notifier::acs_changed`], which takes the new values as the baseline.
//! The same call after SetParameterAttributes re-baselines the parameters
//! whose Notification was set.
//!
//! Use by the agent:
//! 1. `poll` whenever external changes may have happened (timer, after a
//!    local `set`), not in the middle of a session (3.2.1: a change during
//!    a session is reported in a new session after it).
//! 2. If [`Notifier::needs_session`]: start a session with "4 VALUE CHANGE".
//! 3. Every Inform includes the current values of
//!    [`Notifier::pending_inform_parameters`], and "4 VALUE CHANGE" when
//!    that list is not empty (A.3.2.4: "Whenever a parameter change is sent
//!    in the Inform message due to a non-zero Notification setting, the
//!    Event code "4 VALUE CHANGE" MUST be included").
//! 4. After the InformResponse, [`Notifier::reported`] with those names.
//! 5. After the session, `acs_changed(store, effects.acs_changed())`.
//!
//! The Notifier is serde-serializable so pending notifications survive a
//! restart; the caller persists it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::hooks::{CURRENT_LOCAL_TIME, UPTIME};
use super::store::Store;

/// Table 33 parameters marked "Inform on Change" (besides the default WAN
/// connection's ExternalIPAddress, which is resolved at run time).
pub const INFORM_ON_CHANGE: &[&str] = &[
    "InternetGatewayDevice.DeviceInfo.SoftwareVersion",
    "InternetGatewayDevice.DeviceInfo.ProvisioningCode",
    "InternetGatewayDevice.ManagementServer.ConnectionRequestURL",
];

/// Names the default WAN connection service (B.2.3 Layer3Forwarding).
pub const DEFAULT_CONNECTION_SERVICE: &str = "InternetGatewayDevice.Layer3Forwarding.DefaultConnectionService";

/// Parameters that vary continuously: A.3.2.4 lets the CPE reject
/// notification on them ("notification request rejected", 9009). Active
/// notification is refused (it would mean a session every second);
/// passive is accepted.
pub fn refuses_active(path: &str) -> bool {
    path == UPTIME || path == CURRENT_LOCAL_TIME
}

/// What one [`Notifier::poll`] found changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Changed parameters with active notification (or Inform on Change).
    pub active: Vec<String>,
    /// Changed parameters with passive notification.
    pub passive: Vec<String>,
}

/// Notification state (see the module documentation).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notifier {
    /// Last value seen, per watched parameter.
    baseline: BTreeMap<String, String>,
    /// Changed since last reported: name → active.
    pending: BTreeMap<String, bool>,
    /// The default WAN connection's ExternalIPAddress parameter at the last
    /// poll (Table 33 footnote 9).
    default_wan_ip: Option<String>,
    /// `default_wan_ip` is known (a poll happened).
    polled: bool,
}

/// The ExternalIPAddress parameter of the connection named by
/// Layer3Forwarding.DefaultConnectionService, if that names one present.
fn default_wan_ip(store: &Store) -> Option<String> {
    let svc = store.get(DEFAULT_CONNECTION_SERVICE)?;
    let p = format!("{}.ExternalIPAddress", svc.trim().trim_end_matches('.'));
    store.values.contains_key(&p).then_some(p)
}

fn is_wan_ip(p: &str) -> bool {
    p.starts_with("InternetGatewayDevice.WANDevice.")
        && (p.contains(".WANIPConnection.") || p.contains(".WANPPPConnection."))
        && p.ends_with(".ExternalIPAddress")
}

impl Notifier {
    pub fn new() -> Notifier {
        Notifier::default()
    }

    /// Table 33 "Inform on Change" parameters present in `store`. Without
    /// a resolvable default connection, every WAN connection's
    /// ExternalIPAddress counts (any of them may be the default).
    pub fn inform_on_change(store: &Store) -> Vec<String> {
        let mut v: Vec<String> = INFORM_ON_CHANGE.iter().filter(|p| store.values.contains_key(**p)).map(|p| p.to_string()).collect();
        match default_wan_ip(store) {
            Some(p) => v.push(p),
            None => v.extend(store.values.keys().filter(|k| is_wan_ip(k)).cloned()),
        }
        v
    }

    /// Watched parameters → active.
    fn watched(store: &Store) -> BTreeMap<String, bool> {
        let mut w: BTreeMap<String, bool> = store
            .attributes
            .iter()
            .filter(|(k, a)| a.notification > 0 && store.values.contains_key(*k))
            .map(|(k, a)| (k.clone(), a.notification == 2))
            .collect();
        for p in Notifier::inform_on_change(store) {
            w.insert(p, true);
        }
        w
    }

    /// Compare the watched parameters (read through the hooks, so values
    /// changed by a script are seen) with their last values.
    pub fn poll(&mut self, store: &Store) -> Changes {
        let watched = Notifier::watched(store);
        let mut changes = Changes::default();
        self.baseline.retain(|k, _| watched.contains_key(k));
        self.pending.retain(|k, _| store.values.contains_key(k));
        // Footnote 9: the default WAN connection changed to another one.
        let wan = default_wan_ip(store);
        if let Some(now) = wan.as_ref().filter(|w| self.polled && self.default_wan_ip.as_ref() != Some(*w)) {
            self.pending.insert(now.clone(), true);
            changes.active.push(now.clone());
        }
        self.default_wan_ip = wan;
        self.polled = true;
        for (p, active) in watched {
            let v = match store.observe(&p) {
                Ok(Some(v)) => v,
                Ok(None) => continue,
                Err(e) => {
                    // Unreadable now: keep the old baseline, compare next time.
                    tracing::warn!("notification check: {e}");
                    continue;
                }
            };
            let Some(old) = self.baseline.get(&p) else {
                // Newly watched: this value is the reference.
                self.baseline.insert(p, v);
                continue;
            };
            if *old == v {
                continue;
            }
            self.baseline.insert(p.clone(), v);
            *self.pending.entry(p.clone()).or_default() |= active;
            if changes.active.contains(&p) {
                continue;
            }
            if active {
                changes.active.push(p);
            } else {
                changes.passive.push(p);
            }
        }
        changes
    }

    /// The ACS changed these parameters (values, or their Notification
    /// attribute): take the current values as the baseline, and drop any
    /// pending notification for them.
    pub fn acs_changed<I, S>(&mut self, store: &Store, names: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let watched = Notifier::watched(store);
        for n in names {
            let n = n.as_ref();
            self.pending.remove(n);
            self.rebaseline(store, &watched, n);
            if n == DEFAULT_CONNECTION_SERVICE {
                // The ACS switched the default connection: not a footnote-9 change.
                let wan = default_wan_ip(store);
                if let Some(p) = &wan {
                    self.pending.remove(p);
                    self.rebaseline(store, &watched, p);
                }
                self.default_wan_ip = wan;
            }
        }
    }

    fn rebaseline(&mut self, store: &Store, watched: &BTreeMap<String, bool>, n: &str) {
        if !watched.contains_key(n) {
            self.baseline.remove(n);
            return;
        }
        match store.observe(n) {
            Ok(Some(v)) => {
                self.baseline.insert(n.to_string(), v);
            }
            // Compare against the next readable value instead.
            _ => {
                self.baseline.remove(n);
            }
        }
    }

    /// An active change awaits its session (also after a restart).
    pub fn needs_session(&self) -> bool {
        self.pending.values().any(|a| *a)
    }

    /// Changed notified parameters for the next Inform's ParameterList (read
    /// their values when building it: A.3.3.1 "only the most recent
    /// parameter value is given").
    pub fn pending_inform_parameters(&self) -> Vec<String> {
        self.pending.keys().cloned().collect()
    }

    /// An Inform carrying `sent` was answered: they are reported.
    pub fn reported(&mut self, sent: &[String]) {
        for s in sent {
            self.pending.remove(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datamodel::hooks::{HookConfig, Hooks};
    use crate::datamodel::Schema;
    use crate::rpc;
    use crate::soap::{Body, ParameterValue, SetAttributes};

    const PII: &str = "InternetGatewayDevice.ManagementServer.PeriodicInformInterval";
    const URL: &str = "InternetGatewayDevice.ManagementServer.URL";
    const PC: &str = "InternetGatewayDevice.DeviceInfo.ProvisioningCode";

    fn spa(name: &str, n: u8) -> Body {
        Body::SetParameterAttributes {
            list: vec![SetAttributes { name: name.into(), notification_change: true, notification: n, access_list_change: false, access_list: vec![] }],
        }
    }

    fn spv(name: &str, v: &str, t: &str) -> Body {
        Body::SetParameterValues { list: vec![ParameterValue { name: name.into(), value: v.into(), xsd_type: t.into() }], parameter_key: "k".into() }
    }

    /// One ACS request, with the effects passed on as the agent does.
    fn acs(store: &mut Store, n: &mut Notifier, req: &Body) -> Body {
        let (resp, fx) = rpc::handle(Schema::igd(), store, req);
        n.acs_changed(store, fx.acs_changed());
        resp
    }

    #[test]
    fn passive_and_active() {
        let schema = Schema::igd();
        let mut st = Store::new(schema);
        let mut n = Notifier::new();
        assert_eq!(n.poll(&st), Changes::default());
        assert_eq!(acs(&mut st, &mut n, &spa(PII, 1)), Body::SetParameterAttributesResponse);
        assert_eq!(acs(&mut st, &mut n, &spa(URL, 2)), Body::SetParameterAttributesResponse);
        assert_eq!(n.poll(&st), Changes::default(), "setting notification is not a change");
        // Local (non-ACS) changes.
        st.set(PII, "600");
        assert_eq!(n.poll(&st), Changes { active: vec![], passive: vec![PII.into()] });
        assert!(!n.needs_session(), "passive waits for the next session");
        st.set(URL, "http://acs.example/");
        assert_eq!(n.poll(&st), Changes { active: vec![URL.into()], passive: vec![] });
        assert!(n.needs_session());
        assert_eq!(n.poll(&st), Changes::default(), "reported once");
        let pending = n.pending_inform_parameters();
        assert_eq!(pending, vec![PII.to_string(), URL.to_string()]);
        n.reported(&pending);
        assert!(n.pending_inform_parameters().is_empty() && !n.needs_session());
        // Changed twice before a session: one entry.
        st.set(PII, "700");
        st.set(PII, "800");
        n.poll(&st);
        st.set(PII, "900");
        n.poll(&st);
        assert_eq!(n.pending_inform_parameters(), vec![PII.to_string()]);
        // Notification off: no longer watched.
        acs(&mut st, &mut n, &spa(PII, 0));
        st.set(PII, "1000");
        assert_eq!(n.poll(&st), Changes::default());
    }

    #[test]
    fn acs_changes_never_notify() {
        let schema = Schema::igd();
        let mut st = Store::new(schema);
        let mut n = Notifier::new();
        acs(&mut st, &mut n, &spa(PII, 2));
        acs(&mut st, &mut n, &spa("InternetGatewayDevice.ManagementServer.ParameterKey", 1));
        acs(&mut st, &mut n, &spa("InternetGatewayDevice.Layer3Forwarding.ForwardNumberOfEntries", 2));
        n.poll(&st);
        assert_eq!(acs(&mut st, &mut n, &spv(PII, "120", "xsd:unsignedInt")), Body::SetParameterValuesResponse { status: 0 });
        // Table 33 Inform on Change, but set by the ACS.
        assert_eq!(acs(&mut st, &mut n, &spv(PC, "TLCO", "xsd:string")), Body::SetParameterValuesResponse { status: 0 });
        let t = "InternetGatewayDevice.Layer3Forwarding.Forwarding.";
        assert!(matches!(acs(&mut st, &mut n, &Body::AddObject { object_name: t.into(), parameter_key: "a".into() }), Body::AddObjectResponse { .. }));
        assert!(matches!(
            acs(&mut st, &mut n, &Body::DeleteObject { object_name: format!("{t}1."), parameter_key: "b".into() }),
            Body::DeleteObjectResponse { .. }
        ));
        assert_eq!(n.poll(&st), Changes::default());
        assert!(n.pending_inform_parameters().is_empty());
        // The same parameters changed locally do notify.
        st.set(PC, "ABCD");
        st.set(PII, "5");
        assert_eq!(n.poll(&st), Changes { active: vec![PC.into(), PII.into()], passive: vec![] });
    }

    #[test]
    fn inform_on_change_without_attributes() {
        let schema = Schema::igd();
        let mut st = Store::new(schema);
        let mut n = Notifier::new();
        n.poll(&st);
        st.set("InternetGatewayDevice.DeviceInfo.SoftwareVersion", "2.0");
        assert_eq!(n.poll(&st).active, vec!["InternetGatewayDevice.DeviceInfo.SoftwareVersion".to_string()]);
        assert!(n.needs_session());
    }

    #[test]
    fn default_wan_connection_ip() {
        let schema = Schema::igd();
        let mut st = Store::new(schema);
        // WANDevice instances are the device's own (no AddObject): put
        // the two connections' addresses in directly.
        let cd = "InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.";
        let (ip, ppp) = (format!("{cd}WANIPConnection.1.ExternalIPAddress"), format!("{cd}WANPPPConnection.1.ExternalIPAddress"));
        st.values.insert(ip.clone(), String::new());
        st.values.insert(ppp.clone(), String::new());
        let mut n = Notifier::new();
        n.poll(&st);
        // No default connection named: every connection's address counts.
        st.set(&ppp, "192.0.2.7");
        assert_eq!(n.poll(&st).active, vec![ppp.clone()]);
        // Footnote 9: the default connection changes (not by the ACS).
        st.set(DEFAULT_CONNECTION_SERVICE, &format!("{cd}WANIPConnection.1"));
        assert_eq!(n.poll(&st).active, vec![ip.clone()]);
        st.set(&ppp, "192.0.2.8");
        assert_eq!(n.poll(&st), Changes::default(), "no longer the default connection");
        st.set(&ip, "198.51.100.1");
        assert_eq!(n.poll(&st).active, vec![ip.clone()]);
        // The ACS switching the default is not a change to report.
        let r = acs(&mut st, &mut n, &spv(DEFAULT_CONNECTION_SERVICE, &format!("{cd}WANPPPConnection.1"), "xsd:string"));
        assert_eq!(r, Body::SetParameterValuesResponse { status: 0 });
        assert_eq!(n.poll(&st), Changes::default());
    }

    #[test]
    fn script_made_change_is_detected() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join("v");
        std::fs::write(&state, "AAAA\n").unwrap();
        let get = d.path().join("get");
        std::fs::write(&get, format!("#!/bin/sh\ncat '{}'\n", state.display())).unwrap();
        std::fs::set_permissions(&get, std::fs::Permissions::from_mode(0o755)).unwrap();
        let schema = Schema::igd();
        let mut st = Store::new(schema);
        let cfg = HookConfig { parameter: PC.into(), get: vec![get.display().to_string()], set: None, timeout_ms: None };
        st.attach_hooks(Hooks::new(schema, &[cfg]).unwrap());
        let mut n = Notifier::new();
        n.poll(&st);
        assert_eq!(n.poll(&st), Changes::default());
        std::fs::write(&state, "BBBB\n").unwrap();
        assert_eq!(n.poll(&st), Changes { active: vec![PC.into()], passive: vec![] });
        // A failing script is not a change.
        std::fs::remove_file(&state).unwrap();
        assert_eq!(n.poll(&st), Changes::default());
    }

    #[test]
    fn spa_rebaselines() {
        let schema = Schema::igd();
        let mut st = Store::new(schema);
        let mut n = Notifier::new();
        acs(&mut st, &mut n, &spa(PII, 1));
        st.set(PII, "42");
        n.poll(&st);
        assert_eq!(n.pending_inform_parameters(), vec![PII.to_string()]);
        st.set(PII, "43");
        // Setting Notification again (here to active) takes 43 as the
        // reference and drops the pending change.
        acs(&mut st, &mut n, &spa(PII, 2));
        assert!(n.pending_inform_parameters().is_empty());
        assert_eq!(n.poll(&st), Changes::default());
        st.set(PII, "44");
        assert_eq!(n.poll(&st).active, vec![PII.to_string()]);
    }

    #[test]
    fn refuses_active_on_varying_parameters() {
        let schema = Schema::igd();
        let mut st = Store::new(schema);
        let mut n = Notifier::new();
        assert!(matches!(acs(&mut st, &mut n, &spa(UPTIME, 2)), Body::Fault(f) if f.code == 9009));
        assert!(matches!(acs(&mut st, &mut n, &spa("InternetGatewayDevice.DeviceInfo.", 2)), Body::Fault(f) if f.code == 9009));
        assert_eq!(acs(&mut st, &mut n, &spa(CURRENT_LOCAL_TIME, 1)), Body::SetParameterAttributesResponse);
        assert_eq!(st.attributes[CURRENT_LOCAL_TIME].notification, 1);
        assert!(st.attributes.get(UPTIME).is_none_or(|a| a.notification == 0), "refused request changed nothing");
    }

    #[test]
    fn persists_pending_and_baselines() {
        let schema = Schema::igd();
        let mut st = Store::new(schema);
        let mut n = Notifier::new();
        acs(&mut st, &mut n, &spa(PII, 2));
        n.poll(&st);
        st.set(PII, "77");
        n.poll(&st);
        let json = serde_json::to_string(&n).unwrap();
        let mut back: Notifier = serde_json::from_str(&json).unwrap();
        assert_eq!(back, n);
        assert!(back.needs_session(), "an unreported active change survives a restart");
        back.reported(&back.pending_inform_parameters());
        // The baseline survived too: a change while down is seen after restart.
        st.set(PII, "78");
        assert_eq!(back.poll(&st).active, vec![PII.to_string()]);
    }
}
