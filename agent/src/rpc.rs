//! The CPE side of the Appendix A parameter RPCs (A.3.2.1–A.3.2.7), sans-IO:
//! a decoded request and the parameter tree in, the response body (or the
//! fault to send) out.

use super::datamodel::notify;
use super::datamodel::store::{Refusal, SetFault, Store};
use super::datamodel::Schema;
use super::soap::*;

/// Methods the CPE supports (A.3.2.1 GetRPCMethods).
pub const CPE_METHODS: &[&str] = &[
    "GetRPCMethods",
    "SetParameterValues",
    "GetParameterValues",
    "GetParameterNames",
    "SetParameterAttributes",
    "GetParameterAttributes",
    "AddObject",
    "DeleteObject",
];

const PARAMETER_KEY: &str = "InternetGatewayDevice.ManagementServer.ParameterKey";

/// Most parameters one GetParameterValues or GetParameterAttributes response
/// may hold. A.3.2.2 lets a request name partial paths and does not forbid
/// naming one twice, so N copies of "InternetGatewayDevice." would make N
/// copies of the whole tree (a 780 KB request: 780 MB). The whole
/// InternetGatewayDevice:1.0 tree of a gateway with many table instances is
/// a few thousand parameters: 32,768 is that several times over, and what
/// one request can make the agent build. Checked before any value is read.
pub const MAX_RESPONSE_PARAMETERS: usize = 1 << 15;

/// Most bytes of names and values in one GetParameterValues response (hook
/// values may be long): half the largest HTTP body the agent accepts from
/// the ACS ([`crate::http::MAX_RESPONSE_BYTES`]), leaving room for the XML
/// around them.
pub const MAX_RESPONSE_VALUE_BYTES: usize = (crate::http::MAX_RESPONSE_BYTES / 2) as usize;

/// 9004 for a response over [`MAX_RESPONSE_PARAMETERS`], before building it;
/// a name that does not exist is 9005 as before.
fn check_response_size(store: &Store, method: &str, names: &[String]) -> Result<(), Refusal> {
    let mut total = 0usize;
    for n in names {
        total += store.count_under(n)?;
        if total > MAX_RESPONSE_PARAMETERS {
            return Err(Refusal {
                code: 9004,
                message: format!(
                    "Resources exceeded: the {method} response would hold more than {MAX_RESPONSE_PARAMETERS} parameters ({} names requested)",
                    names.len()
                ),
            });
        }
    }
    Ok(())
}

fn fault(r: Refusal) -> Body {
    Body::Fault(Fault::new(r.code, r.message))
}

/// What a handled request changed, for the session (notifications, persistence).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Parameters set by the ACS (never trigger active notification).
    pub changed: Vec<String>,
    /// Other parameters the ACS's request changed as a consequence
    /// (ParameterKey, `…NumberOfEntries`): no notification either.
    pub side_changes: Vec<String>,
    /// Parameters whose Notification attribute the ACS set (the notifier
    /// takes their current value as the new baseline).
    pub notification_set: Vec<String>,
    /// The tree changed and must be persisted.
    pub dirty: bool,
}

impl Effects {
    /// Add what another request changed.
    pub fn merge(&mut self, other: Effects) {
        self.changed.extend(other.changed);
        self.side_changes.extend(other.side_changes);
        self.notification_set.extend(other.notification_set);
        self.dirty |= other.dirty;
    }

    /// Everything the ACS changed, for `Notifier::acs_changed`.
    pub fn acs_changed(&self) -> impl Iterator<Item = &String> {
        self.changed.iter().chain(&self.side_changes).chain(&self.notification_set)
    }
}

/// Makes a change durable before the response that acknowledges it exists:
/// called with the changed tree after SetParameterValues,
/// SetParameterAttributes, AddObject or DeleteObject applied it. An error
/// (its message, already logged by the caller) undoes the change and fails
/// the request with 9002: the ACS is never told that something is applied
/// which a restart would lose.
pub type Commit<'c> = &'c mut dyn FnMut(&Store) -> Result<(), String>;

/// Handle one ACS request; changes stay in memory (see [`handle_committed`]).
pub fn handle(schema: &Schema, store: &mut Store, req: &Body) -> (Body, Effects) {
    handle_committed(schema, store, req, &mut |_| Ok(()))
}

/// Handle one ACS request; a request that changed the tree is answered
/// only once `commit` made the change durable. If `commit` fails, the tree
/// is restored as it was before the request (SetParameterValues: set hooks
/// run again with the old values, as when a set hook fails) and the answer
/// is 9002.
pub fn handle_committed(schema: &Schema, store: &mut Store, req: &Body, commit: Commit<'_>) -> (Body, Effects) {
    let changes_tree =
        matches!(req, Body::SetParameterValues { .. } | Body::SetParameterAttributes { .. } | Body::AddObject { .. } | Body::DeleteObject { .. });
    let before = changes_tree.then(|| store.clone());
    let mut undo = None;
    let (resp, fx) = apply(schema, store, req, &mut undo);
    if !fx.dirty {
        return (resp, fx);
    }
    match commit(store) {
        Ok(()) => (resp, fx),
        Err(message) => {
            if let Some((entries, old)) = undo {
                store.undo_set(&entries, &old);
            }
            if let Some(before) = before {
                *store = before;
            }
            (Body::Fault(Fault::new(9002, format!("Internal error: {message}"))), Effects::default())
        }
    }
}

/// The entries a SetParameterValues applied and their old values.
type Undo = Option<(Vec<(String, String, String)>, Vec<String>)>;

fn apply(schema: &Schema, store: &mut Store, req: &Body, undo: &mut Undo) -> (Body, Effects) {
    let mut fx = Effects::default();
    let resp = match req {
        Body::GetRPCMethods => Body::GetRPCMethodsResponse { methods: CPE_METHODS.iter().map(|s| s.to_string()).collect() },
        Body::GetParameterValues { names } => {
            if let Err(r) = check_response_size(store, "GetParameterValues", names) {
                return (fault(r), fx);
            }
            let mut list = Vec::new();
            let mut bytes = 0usize;
            for n in names {
                match store.values_under(n) {
                    Ok(v) => list.extend(v.into_iter().map(|(name, value)| {
                        bytes += name.len() + value.len();
                        let xsd_type = schema.param(&name).map(|d| d.ty.xsd()).unwrap_or("xsd:string").to_string();
                        ParameterValue { name, value, xsd_type }
                    })),
                    Err(r) => return (fault(r), fx),
                }
                if bytes > MAX_RESPONSE_VALUE_BYTES {
                    let message = format!(
                        "Resources exceeded: the GetParameterValues response would hold more than {MAX_RESPONSE_VALUE_BYTES} bytes of names and values"
                    );
                    return (Body::Fault(Fault::new(9004, message)), fx);
                }
            }
            Body::GetParameterValuesResponse { list }
        }
        Body::GetParameterNames { path, next_level } => match store.names(schema, path, *next_level) {
            Ok(v) => Body::GetParameterNamesResponse { list: v.into_iter().map(|(name, writable)| ParameterInfo { name, writable }).collect() },
            Err(r) => fault(r),
        },
        Body::SetParameterValues { list, parameter_key } => {
            // All or nothing (A.3.2.1): Store::set_values checks everything
            // first and undoes a partly applied request if a set hook fails.
            let entries: Vec<(String, String, String)> = list.iter().map(|p| (p.name.clone(), p.value.clone(), p.xsd_type.clone())).collect();
            match store.set_values(schema, &entries) {
                Ok(old) => *undo = Some((entries, old)),
                Err(SetFault::Invalid(faults)) => {
                    let set_parameter_values = faults.into_iter().map(|(name, r)| SetParameterValuesFault { name, code: r.code, string: r.message }).collect();
                    return (Body::Fault(Fault { code: 9003, string: "Invalid arguments".into(), set_parameter_values }), fx);
                }
                Err(SetFault::Internal(r)) => return (fault(r), fx),
            }
            fx.changed.extend(list.iter().map(|p| p.name.clone()));
            store.set(PARAMETER_KEY, parameter_key);
            fx.side_changes.push(PARAMETER_KEY.into());
            fx.dirty = true;
            Body::SetParameterValuesResponse { status: 0 }
        }
        Body::SetParameterAttributes { list } => {
            // Validate all, then apply all.
            let mut targets = Vec::with_capacity(list.len());
            for a in list {
                let names = match store.params_under(&a.name) {
                    Ok(t) => t,
                    Err(r) => return (fault(r), fx),
                };
                // A.3.2.4: "notification request rejected" for parameters
                // deemed inappropriate (continuously varying).
                if a.notification_change && a.notification == 2 {
                    if let Some(n) = names.iter().find(|n| notify::refuses_active(n)) {
                        return (Body::Fault(Fault::new(9009, format!("Notification request rejected: {n}"))), fx);
                    }
                }
                if a.notification_change && a.notification > 2 {
                    return (Body::Fault(Fault::new(9003, format!("Invalid arguments: Notification {}", a.notification))), fx);
                }
                targets.push(names);
            }
            for (a, names) in list.iter().zip(targets) {
                for n in names {
                    let e = store.attributes.entry(n.clone()).or_default();
                    if a.notification_change {
                        e.notification = a.notification;
                        fx.notification_set.push(n);
                    }
                    if a.access_list_change {
                        e.access_list = a.access_list.clone();
                    }
                }
            }
            fx.dirty = true;
            Body::SetParameterAttributesResponse
        }
        Body::GetParameterAttributes { names } => {
            if let Err(r) = check_response_size(store, "GetParameterAttributes", names) {
                return (fault(r), fx);
            }
            let mut list = Vec::new();
            for n in names {
                match store.params_under(n) {
                    Ok(v) => list.extend(v.into_iter().map(|name| {
                        let a = store.attributes.get(&name).cloned().unwrap_or_default();
                        ParameterAttribute { name, notification: a.notification, access_list: a.access_list }
                    })),
                    Err(r) => return (fault(r), fx),
                }
            }
            Body::GetParameterAttributesResponse { list }
        }
        Body::AddObject { object_name, parameter_key } => match store.add_object(schema, object_name) {
            Ok(n) => {
                store.set(PARAMETER_KEY, parameter_key);
                fx.side_changes.push(PARAMETER_KEY.into());
                fx.side_changes.extend(Store::count_parameter(schema, object_name));
                fx.dirty = true;
                Body::AddObjectResponse { instance_number: n, status: 0 }
            }
            Err(r) => fault(r),
        },
        Body::DeleteObject { object_name, parameter_key } => match store.delete_object(schema, object_name) {
            Ok(()) => {
                store.set(PARAMETER_KEY, parameter_key);
                fx.side_changes.push(PARAMETER_KEY.into());
                let table = object_name.trim_end_matches('.').rsplit_once('.').map(|(t, _)| format!("{t}.")).unwrap_or_default();
                fx.side_changes.extend(Store::count_parameter(schema, &table));
                fx.dirty = true;
                Body::DeleteObjectResponse { status: 0 }
            }
            Err(r) => fault(r),
        },
        other => Body::Fault(Fault::new(9000, format!("Method not supported: {}", other.method()))),
    };
    (resp, fx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (&'static Schema, Store) {
        let s = Schema::igd();
        (s, Store::new(s))
    }

    fn pv(n: &str, v: &str, t: &str) -> ParameterValue {
        ParameterValue { name: n.into(), value: v.into(), xsd_type: t.into() }
    }

    const PII: &str = "InternetGatewayDevice.ManagementServer.PeriodicInformInterval";

    #[test]
    fn spv_atomic_with_per_parameter_faults() {
        let (schema, mut st) = setup();
        let req = Body::SetParameterValues {
            list: vec![
                pv(PII, "300", "xsd:unsignedInt"),
                pv("InternetGatewayDevice.DeviceInfo.Manufacturer", "x", "xsd:string"),
                pv("InternetGatewayDevice.ManagementServer.PeriodicInformEnable", "maybe", "xsd:boolean"),
                pv("InternetGatewayDevice.Nope", "1", "xsd:string"),
            ],
            parameter_key: "k1".into(),
        };
        let (resp, fx) = handle(schema, &mut st, &req);
        let Body::Fault(f) = resp else { panic!("{resp:?}") };
        assert_eq!(f.code, 9003);
        let codes: Vec<u32> = f.set_parameter_values.iter().map(|p| p.code).collect();
        assert_eq!(codes, vec![9008, 9007, 9005]);
        assert_eq!(st.get(PII).unwrap(), "1", "nothing applied");
        assert!(!fx.dirty);
        let ok = Body::SetParameterValues { list: vec![pv(PII, "300", "xsd:unsignedInt")], parameter_key: "k2".into() };
        let (resp, fx) = handle(schema, &mut st, &ok);
        assert_eq!(resp, Body::SetParameterValuesResponse { status: 0 });
        assert_eq!(fx.changed, vec![PII.to_string()]);
        assert_eq!(st.get("InternetGatewayDevice.ManagementServer.ParameterKey").unwrap(), "k2");
    }

    #[test]
    fn gpv_partial_path_types_and_9005() {
        let (schema, mut st) = setup();
        let (resp, _) = handle(schema, &mut st, &Body::GetParameterValues { names: vec!["InternetGatewayDevice.ManagementServer.".into()] });
        let Body::GetParameterValuesResponse { list } = resp else { panic!() };
        assert!(list.iter().any(|p| p.name == PII && p.xsd_type == "xsd:unsignedInt"));
        let (resp, _) = handle(schema, &mut st, &Body::GetParameterValues { names: vec!["InternetGatewayDevice.X".into()] });
        assert!(matches!(resp, Body::Fault(Fault { code: 9005, .. })));
    }

    /// Issue 10 item 14: N copies of "InternetGatewayDevice." in one
    /// GetParameterValues (or GetParameterAttributes) made N copies of the
    /// tree (3.9 MB of request: an abort on a 2 GiB allocation). The
    /// request here is as large as the SOAP limits let through; the answer
    /// is 9004 naming the limit, found before any value is read.
    #[test]
    fn repeated_partial_paths_are_refused_before_the_response_is_built() {
        let (schema, mut st) = setup();
        let igd = "InternetGatewayDevice.";
        let whole = st.count_under(igd).unwrap();
        assert!(whole > 50 && whole * 4 < MAX_RESPONSE_PARAMETERS, "the whole tree fits many times: {whole}");
        let names = |n: usize| -> Vec<String> { vec![igd.to_string(); n] };
        // The whole tree a few times is answered.
        let (resp, _) = handle(schema, &mut st, &Body::GetParameterValues { names: names(4) });
        assert!(matches!(&resp, Body::GetParameterValuesResponse { list } if list.len() == 4 * whole), "{resp:?}");
        // About the largest request the SOAP codec lets through (100,000
        // elements, 8 MiB).
        let n = 99_000;
        let xml = to_xml(Some("big"), false, &Body::GetParameterValues { names: names(n) });
        let req = parse(&xml).unwrap().remove(0).body.unwrap();
        for req in [req, Body::GetParameterAttributes { names: names(n) }] {
            let (resp, fx) = handle(schema, &mut st, &req);
            let Body::Fault(f) = &resp else { panic!("{}: {resp:?}", req.method()) };
            assert_eq!(f.code, 9004, "{f:?}");
            assert!(f.string.contains(&format!("more than {MAX_RESPONSE_PARAMETERS} parameters")), "{}", f.string);
            assert!(!fx.dirty);
        }
        // Exactly at the limit: a name more is refused, one fewer answered.
        let at = MAX_RESPONSE_PARAMETERS / whole;
        assert!(matches!(handle(schema, &mut st, &Body::GetParameterAttributes { names: names(at) }).0, Body::GetParameterAttributesResponse { .. }));
        assert!(matches!(handle(schema, &mut st, &Body::GetParameterAttributes { names: names(at + 1) }).0, Body::Fault(Fault { code: 9004, .. })));
        // An unknown name is still 9005.
        let (resp, _) = handle(schema, &mut st, &Body::GetParameterValues { names: vec!["InternetGatewayDevice.Nope.".into()] });
        assert!(matches!(resp, Body::Fault(Fault { code: 9005, .. })), "{resp:?}");
    }

    #[test]
    fn attributes_and_9009() {
        let (schema, mut st) = setup();
        let set = |name: &str, n: u8| Body::SetParameterAttributes {
            list: vec![SetAttributes {
                name: name.into(),
                notification_change: true,
                notification: n,
                access_list_change: true,
                access_list: vec!["Subscriber".into()],
            }],
        };
        let (resp, _) = handle(schema, &mut st, &set(PII, 2));
        assert_eq!(resp, Body::SetParameterAttributesResponse);
        let (resp, _) = handle(schema, &mut st, &Body::GetParameterAttributes { names: vec![PII.into()] });
        let Body::GetParameterAttributesResponse { list } = resp else { panic!() };
        assert_eq!((list[0].notification, list[0].access_list.clone()), (2, vec!["Subscriber".to_string()]));
        let (resp, _) = handle(schema, &mut st, &set("InternetGatewayDevice.DeviceInfo.UpTime", 2));
        assert!(matches!(resp, Body::Fault(Fault { code: 9009, .. })));
    }

    #[test]
    fn add_delete_object_and_unknown_method() {
        let (schema, mut st) = setup();
        let t = "InternetGatewayDevice.Layer3Forwarding.Forwarding.";
        let (resp, _) = handle(schema, &mut st, &Body::AddObject { object_name: t.into(), parameter_key: "a".into() });
        assert_eq!(resp, Body::AddObjectResponse { instance_number: 1, status: 0 });
        let (resp, _) = handle(schema, &mut st, &Body::DeleteObject { object_name: format!("{t}1."), parameter_key: "b".into() });
        assert_eq!(resp, Body::DeleteObjectResponse { status: 0 });
        let (resp, _) = handle(schema, &mut st, &Body::InformResponse { max_envelopes: 1 });
        assert!(matches!(resp, Body::Fault(Fault { code: 9000, .. })));
        let (resp, _) = handle(schema, &mut st, &Body::GetRPCMethods);
        let Body::GetRPCMethodsResponse { methods } = resp else { panic!() };
        assert!(methods.contains(&"AddObject".to_string()));
    }

    fn vendor_schema() -> &'static Schema {
        use crate::datamodel::{BaseType, VendorParameter};
        static S: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
        S.get_or_init(|| {
            Schema::igd_with(&[
                VendorParameter {
                    name: "InternetGatewayDevice.DeviceInfo.X_00D09E_Colour".into(),
                    ty: BaseType::String,
                    writable: true,
                    default: Some("blue".into()),
                },
                VendorParameter { name: "InternetGatewayDevice.X_00D09E_Box.Speed".into(), ty: BaseType::UnsignedInt, writable: false, default: None },
                VendorParameter { name: "InternetGatewayDevice.X_00D09E_Box.Level".into(), ty: BaseType::Int, writable: true, default: Some("-3".into()) },
            ])
            .unwrap()
        })
    }

    #[test]
    fn vendor_parameters_in_gpn_gpv_spv() {
        let schema = vendor_schema();
        let mut st = Store::new(schema);
        let (resp, _) = handle(schema, &mut st, &Body::GetParameterNames { path: "InternetGatewayDevice.".into(), next_level: true });
        let Body::GetParameterNamesResponse { list } = resp else { panic!() };
        assert!(list.contains(&ParameterInfo { name: "InternetGatewayDevice.X_00D09E_Box.".into(), writable: false }));
        let (resp, _) = handle(schema, &mut st, &Body::GetParameterNames { path: "InternetGatewayDevice.X_00D09E_Box.".into(), next_level: false });
        let Body::GetParameterNamesResponse { list } = resp else { panic!() };
        let names: Vec<(&str, bool)> = list.iter().map(|p| (p.name.as_str(), p.writable)).collect();
        assert_eq!(
            names,
            vec![
                ("InternetGatewayDevice.X_00D09E_Box.", false),
                ("InternetGatewayDevice.X_00D09E_Box.Level", true),
                ("InternetGatewayDevice.X_00D09E_Box.Speed", false)
            ]
        );
        let (resp, _) = handle(
            schema,
            &mut st,
            &Body::GetParameterValues { names: vec!["InternetGatewayDevice.X_00D09E_Box.".into(), "InternetGatewayDevice.DeviceInfo.X_00D09E_Colour".into()] },
        );
        let Body::GetParameterValuesResponse { list } = resp else { panic!() };
        let got: Vec<(&str, &str, &str)> = list.iter().map(|p| (p.name.as_str(), p.value.as_str(), p.xsd_type.as_str())).collect();
        assert_eq!(
            got,
            vec![
                ("InternetGatewayDevice.X_00D09E_Box.Level", "-3", "xsd:int"),
                ("InternetGatewayDevice.X_00D09E_Box.Speed", "0", "xsd:unsignedInt"),
                ("InternetGatewayDevice.DeviceInfo.X_00D09E_Colour", "blue", "xsd:string"),
            ]
        );
        let ok = Body::SetParameterValues {
            list: vec![
                pv("InternetGatewayDevice.X_00D09E_Box.Level", "-7", "xsd:int"),
                pv("InternetGatewayDevice.DeviceInfo.X_00D09E_Colour", "red", "xsd:string"),
            ],
            parameter_key: "v".into(),
        };
        assert_eq!(handle(schema, &mut st, &ok).0, Body::SetParameterValuesResponse { status: 0 });
        assert_eq!(st.get("InternetGatewayDevice.X_00D09E_Box.Level").unwrap(), "-7");
        let bad = Body::SetParameterValues {
            list: vec![pv("InternetGatewayDevice.X_00D09E_Box.Speed", "1", "xsd:unsignedInt"), pv("InternetGatewayDevice.X_00D09E_Box.Level", "x", "xsd:int")],
            parameter_key: "w".into(),
        };
        let Body::Fault(f) = handle(schema, &mut st, &bad).0 else { panic!() };
        assert_eq!(f.set_parameter_values.iter().map(|p| p.code).collect::<Vec<_>>(), vec![9008, 9007]);
        // A tree saved before the vendor parameters were configured gains them.
        let mut old = Store::new(Schema::igd());
        old.set(PII, "77");
        old.complete(schema);
        assert_eq!(old.get("InternetGatewayDevice.DeviceInfo.X_00D09E_Colour").unwrap(), "blue");
        assert_eq!(old.get(PII).unwrap(), "77");
    }

    fn script(dir: &std::path::Path, name: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    }

    const PC: &str = "InternetGatewayDevice.DeviceInfo.ProvisioningCode";
    const UN: &str = "InternetGatewayDevice.ManagementServer.Username";

    #[test]
    fn hooked_parameters_through_the_rpcs() {
        use crate::datamodel::hooks::{HookConfig, Hooks};
        let schema = Schema::igd();
        let d = tempfile::tempdir().unwrap();
        let pc_file = d.path().join("pc");
        std::fs::write(&pc_file, "TLCO").unwrap();
        let un_file = d.path().join("un");
        std::fs::write(&un_file, "admin\n").unwrap();
        let hooks = vec![
            HookConfig {
                parameter: PC.into(),
                get: vec![script(d.path(), "pcget", &format!("cat '{}'", pc_file.display()))],
                set: Some(vec![script(d.path(), "pcset", &format!("cat > '{}'", pc_file.display()))]),
                timeout_ms: None,
            },
            // Set always fails.
            HookConfig {
                parameter: UN.into(),
                get: vec![script(d.path(), "unget", &format!("cat '{}'", un_file.display()))],
                set: Some(vec![script(d.path(), "unset", "exit 1")]),
                timeout_ms: None,
            },
            // Writable in the schema, but no set command: read-only.
            HookConfig {
                parameter: "InternetGatewayDevice.ManagementServer.URL".into(),
                get: vec!["echo".into(), "http://acs.example/".into()],
                set: None,
                timeout_ms: None,
            },
        ];
        let mut st = Store::new(schema);
        st.attach_hooks(Hooks::new(schema, &hooks).unwrap());
        let (resp, _) =
            handle(schema, &mut st, &Body::GetParameterValues { names: vec![PC.into(), UN.into(), "InternetGatewayDevice.DeviceInfo.SpecVersion".into()] });
        let Body::GetParameterValuesResponse { list } = resp else { panic!("{resp:?}") };
        assert_eq!(list.iter().map(|p| p.value.as_str()).collect::<Vec<_>>(), vec!["TLCO", "admin", "1.0"]);
        let (resp, _) = handle(schema, &mut st, &Body::GetParameterNames { path: "InternetGatewayDevice.ManagementServer.URL".into(), next_level: false });
        assert_eq!(
            resp,
            Body::GetParameterNamesResponse { list: vec![ParameterInfo { name: "InternetGatewayDevice.ManagementServer.URL".into(), writable: false }] }
        );
        let (resp, _) = handle(
            schema,
            &mut st,
            &Body::SetParameterValues { list: vec![pv("InternetGatewayDevice.ManagementServer.URL", "http://x/", "xsd:string")], parameter_key: "".into() },
        );
        assert!(matches!(resp, Body::Fault(ref f) if f.set_parameter_values[0].code == 9008), "{resp:?}");
        // The set hook runs with the value.
        let (resp, fx) = handle(
            schema,
            &mut st,
            &Body::SetParameterValues { list: vec![pv(PC, "ABCD", "xsd:string"), pv(PII, "30", "xsd:unsignedInt")], parameter_key: "k".into() },
        );
        assert_eq!(resp, Body::SetParameterValuesResponse { status: 0 });
        assert_eq!(std::fs::read_to_string(&pc_file).unwrap(), "ABCD");
        assert_eq!(fx.changed, vec![PC.to_string(), PII.to_string()]);
        // A failing set hook: 9002, and what was applied is rolled back.
        let req = Body::SetParameterValues {
            list: vec![pv(PC, "WXYZ", "xsd:string"), pv(PII, "40", "xsd:unsignedInt"), pv(UN, "root", "xsd:string")],
            parameter_key: "k2".into(),
        };
        let (resp, fx) = handle(schema, &mut st, &req);
        assert!(matches!(resp, Body::Fault(ref f) if f.code == 9002), "{resp:?}");
        assert!(!fx.dirty && fx.changed.is_empty());
        assert_eq!(std::fs::read_to_string(&pc_file).unwrap(), "ABCD", "set hook ran again with the old value");
        assert_eq!(st.get(PII).unwrap(), "30");
        assert_eq!(st.get("InternetGatewayDevice.ManagementServer.ParameterKey").unwrap(), "k");
        // A failing get hook fails the request with 9002.
        std::fs::remove_file(&pc_file).unwrap();
        let (resp, _) = handle(schema, &mut st, &Body::GetParameterValues { names: vec!["InternetGatewayDevice.DeviceInfo.".into()] });
        assert!(matches!(resp, Body::Fault(ref f) if f.code == 9002), "{resp:?}");
        // ... and SPV too, since the old value cannot be read for a rollback.
        let (resp, _) = handle(schema, &mut st, &Body::SetParameterValues { list: vec![pv(PC, "ABCD", "xsd:string")], parameter_key: "k3".into() });
        assert!(matches!(resp, Body::Fault(ref f) if f.code == 9002), "{resp:?}");
        // Attributes do not run hooks.
        let (resp, _) = handle(schema, &mut st, &Body::GetParameterAttributes { names: vec![PC.into()] });
        assert!(matches!(resp, Body::GetParameterAttributesResponse { .. }), "{resp:?}");
    }
}
