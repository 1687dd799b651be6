//! The device's parameter tree: concrete objects and parameters with their
//! values and attributes, instance numbers never reused (A.3.2.6), and the
//! Appendix A operations on it. Persisted as JSON with atomic writes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::hooks::{HookError, Hooks};
use super::{template_of, BaseType, ParamDef, Schema};

/// Notification and AccessList of one parameter (A.3.2.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    pub notification: u8,
    pub access_list: Vec<String>,
}

/// A fault code and message (A.5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u32,
    pub message: String,
}

fn refuse(code: u32, message: impl Into<String>) -> Refusal {
    Refusal { code, message: message.into() }
}

/// Why SetParameterValues was refused (A.3.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetFault {
    /// Per-parameter faults, sent inside 9003 Invalid arguments.
    Invalid(Vec<(String, Refusal)>),
    /// A fault for the whole request (9002).
    Internal(Refusal),
}

/// The concrete tree.
///
/// Every parameter present has an entry in `values`; for a parameter
/// bound to a hook (see [`Hooks`], attached with [`Store::attach_hooks`])
/// the entry only marks its presence and records the last value set
/// through the store, while reads go to the hook.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Store {
    pub values: BTreeMap<String, String>,
    pub attributes: BTreeMap<String, Attributes>,
    pub objects: BTreeSet<String>,
    /// Next instance number per multi-instance table ("A.B." → n).
    pub next_instance: BTreeMap<String, u32>,
    /// Not persisted: attached again at each start.
    #[serde(skip)]
    hooks: Option<Arc<Hooks>>,
}

/// A.3.2.1: password parameters read back as empty strings.
pub fn is_password(path: &str) -> bool {
    path.rsplit('.').next().is_some_and(|n| n.ends_with("Password"))
}

fn default_value(p: &ParamDef) -> String {
    if let Some(d) = &p.default {
        return d.clone();
    }
    match p.ty {
        BaseType::Boolean => "false".into(),
        BaseType::UnsignedInt | BaseType::Int => {
            let lo = p.ranges.iter().filter_map(|r| r.0).min().unwrap_or(0);
            if p.validate("0").is_ok() {
                "0".into()
            } else {
                lo.to_string()
            }
        }
        BaseType::DateTime => "0001-01-01T00:00:00Z".into(),
        BaseType::String | BaseType::Base64 => p.enumerations.first().cloned().filter(|_| !p.list).unwrap_or_default(),
    }
}

impl Store {
    /// A fresh tree: every object that is not below a multi-instance
    /// table, with default values.
    pub fn new(schema: &Schema) -> Store {
        let mut s = Store::default();
        for o in schema.objects.iter().filter(|o| !o.path.contains("{i}")) {
            s.instantiate(schema, &o.path, &o.path);
        }
        s
    }

    /// Create the concrete object `concrete` (template `template`) with its
    /// parameters and its single-instance sub-objects.
    fn instantiate(&mut self, schema: &Schema, template: &str, concrete: &str) {
        self.objects.insert(concrete.to_string());
        for p in schema.params.iter().filter(|p| p.path.starts_with(template) && !p.path[template.len()..].contains('.')) {
            let path = format!("{concrete}{}", &p.path[template.len()..]);
            self.values.entry(path).or_insert_with(|| default_value(p));
        }
        for o in schema.objects.iter() {
            let Some(rest) = o.path.strip_prefix(template) else { continue };
            // A direct, single-instance child object: "Name.".
            if !rest.is_empty() && rest.matches('.').count() == 1 && !rest.contains("{i}") {
                self.instantiate(schema, &o.path, &format!("{concrete}{rest}"));
            }
        }
    }

    /// Add what the schema has and the tree lacks (objects and parameters
    /// of existing objects, with defaults), e.g. vendor parameters newly
    /// configured since the tree was saved. Existing values are kept.
    pub fn complete(&mut self, schema: &Schema) {
        for o in schema.objects.iter().filter(|o| !o.path.contains("{i}")) {
            self.instantiate(schema, &o.path, &o.path);
        }
        let instances: Vec<String> = self.objects.iter().filter(|o| o.contains(|c: char| c.is_ascii_digit()) && schema.object(o).is_some()).cloned().collect();
        for o in instances {
            self.instantiate(schema, &template_of(&o), &o);
        }
    }

    /// Take values from `hooks` from now on.
    pub fn attach_hooks(&mut self, hooks: Hooks) {
        self.hooks = Some(Arc::new(hooks));
    }

    pub fn hooks(&self) -> Option<&Hooks> {
        self.hooks.as_deref()
    }

    pub fn load(path: &Path) -> std::io::Result<Option<Store>> {
        match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map(Some).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Atomic, durable write ([`foundation::durable::write_atomic`]).
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        foundation::durable::write_atomic(path, &serde_json::to_vec(self).map_err(std::io::Error::other)?)
    }

    /// The value as reported to the ACS (passwords empty), read through
    /// the hooks. `None` when the parameter does not exist, or when its
    /// hook fails (logged; use [`Store::try_get`] to see the error).
    pub fn get(&self, path: &str) -> Option<String> {
        self.try_get(path).unwrap_or_else(|e| {
            tracing::warn!("{e}");
            None
        })
    }

    /// The value as reported to the ACS (passwords empty), read through
    /// the hooks; `Ok(None)` when the parameter does not exist.
    pub fn try_get(&self, path: &str) -> Result<Option<String>, HookError> {
        Ok(self.raw_get(path)?.map(|v| if is_password(path) { String::new() } else { v }))
    }

    /// The real value (passwords included), read through the hooks.
    pub fn raw_get(&self, path: &str) -> Result<Option<String>, HookError> {
        let Some(stored) = self.values.get(path) else { return Ok(None) };
        let lookup = |p: &str| self.values.get(p).cloned();
        match self.hooks.as_ref().and_then(|h| h.get(path, &lookup)) {
            Some(v) => v.map(Some),
            None => Ok(Some(stored.clone())),
        }
    }

    /// The parameters named by `name`: itself, or all below a partial path.
    pub fn params_under(&self, name: &str) -> Result<Vec<String>, Refusal> {
        if name.is_empty() || name.ends_with('.') {
            if !name.is_empty() && !self.objects.contains(name) {
                return Err(refuse(9005, format!("Invalid parameter name: {name}")));
            }
            Ok(self.values.range(name.to_string()..).take_while(|(k, _)| k.starts_with(name)).map(|(k, _)| k.clone()).collect())
        } else if self.values.contains_key(name) {
            Ok(vec![name.to_string()])
        } else {
            Err(refuse(9005, format!("Invalid parameter name: {name}")))
        }
    }

    /// How many parameters `name` names (as [`Store::params_under`]),
    /// counted without collecting them.
    pub fn count_under(&self, name: &str) -> Result<usize, Refusal> {
        if name.is_empty() || name.ends_with('.') {
            if !name.is_empty() && !self.objects.contains(name) {
                return Err(refuse(9005, format!("Invalid parameter name: {name}")));
            }
            Ok(self.values.range(name.to_string()..).take_while(|(k, _)| k.starts_with(name)).count())
        } else if self.values.contains_key(name) {
            Ok(1)
        } else {
            Err(refuse(9005, format!("Invalid parameter name: {name}")))
        }
    }

    /// A.3.2.2 GetParameterValues for one name: a parameter or a partial
    /// path. A failing hook makes the whole request fail with 9002.
    pub fn values_under(&self, name: &str) -> Result<Vec<(String, String)>, Refusal> {
        self.params_under(name)?
            .into_iter()
            .map(|k| match self.try_get(&k) {
                Ok(v) => Ok((k, v.unwrap_or_default())),
                Err(e) => Err(refuse(9002, format!("Internal error: {e}"))),
            })
            .collect()
    }

    /// Writable for the ACS: per the schema, and for a hooked parameter
    /// only if its hook can apply values.
    pub fn writable(&self, schema: &Schema, path: &str) -> bool {
        schema.param(path).is_some_and(|d| d.writable) && self.hooks.as_ref().and_then(|h| h.settable(path)).unwrap_or(true)
    }

    /// A.3.2.3 GetParameterNames.
    pub fn names(&self, schema: &Schema, path: &str, next_level: bool) -> Result<Vec<(String, bool)>, Refusal> {
        let writable_obj = |o: &str| schema.object(o).is_some_and(|d| d.writable && d.multi_instance && !o.ends_with(".{i}."));
        let writable_param = |p: &str| self.writable(schema, p);
        if !path.is_empty() && !path.ends_with('.') {
            if !self.values.contains_key(path) {
                return Err(refuse(9005, format!("Invalid parameter name: {path}")));
            }
            if next_level {
                return Err(refuse(9003, "NextLevel must be false for a parameter"));
            }
            return Ok(vec![(path.to_string(), writable_param(path))]);
        }
        if !path.is_empty() && !self.objects.contains(path) {
            return Err(refuse(9005, format!("Invalid parameter name: {path}")));
        }
        let depth = |s: &str| s.trim_end_matches('.').matches('.').count();
        let base = if path.is_empty() { usize::MAX } else { depth(path) };
        let mut out = Vec::new();
        if !next_level && !path.is_empty() {
            out.push((path.to_string(), writable_obj(path)));
        }
        let mut entries: Vec<(String, bool)> = self
            .objects
            .iter()
            .filter(|o| o.starts_with(path) && o.as_str() != path)
            .map(|o| (o.clone(), writable_obj(o)))
            .chain(self.values.keys().filter(|k| k.starts_with(path)).map(|k| (k.clone(), writable_param(k))))
            .filter(|(n, _)| {
                if !next_level {
                    return true;
                }
                let d = depth(n);
                if path.is_empty() {
                    d == 0
                } else {
                    d == base + 1
                }
            })
            .collect();
        entries.sort();
        out.extend(entries);
        Ok(out)
    }

    /// Validate one SetParameterValues entry (A.3.2.1 faults 9005–9008).
    pub fn check_set(&self, schema: &Schema, name: &str, value: &str, xsd_type: &str) -> Result<(), Refusal> {
        let def = schema.param(name).filter(|_| self.values.contains_key(name)).ok_or_else(|| refuse(9005, "Invalid parameter name"))?;
        if !def.writable || self.hooks.as_ref().and_then(|h| h.settable(name)) == Some(false) {
            return Err(refuse(9008, "Attempt to set a non-writable parameter"));
        }
        let local = |t: &str| t.rsplit(':').next().unwrap_or(t).to_string();
        let (given, want) = (local(xsd_type), local(def.ty.xsd()));
        if !given.is_empty() && given != want && !(want == "string" && def.list) {
            return Err(refuse(9006, format!("Invalid parameter type: {given}, expected {want}")));
        }
        def.validate(value).map_err(|e| refuse(9007, format!("Invalid parameter value: {}", e.reason)))
    }

    /// Set a value (no checks: see [`Store::check_set`]), through the
    /// parameter's set hook if it has one. A hook failure is logged and the
    /// value not recorded; use [`Store::try_set`] to see it.
    pub fn set(&mut self, name: &str, value: &str) {
        if let Err(e) = self.try_set(name, value) {
            tracing::warn!("{e}");
        }
    }

    /// Set a value (no checks), through the parameter's set hook if it has
    /// one; the value is recorded only once the hook succeeded.
    pub fn try_set(&mut self, name: &str, value: &str) -> Result<(), HookError> {
        if let Some(r) = self.hooks.as_ref().and_then(|h| h.set(name, value)) {
            r?;
        }
        self.values.insert(name.to_string(), value.to_string());
        Ok(())
    }

    /// A.3.2.1 SetParameterValues, applied all or none: every entry is
    /// checked first (per-entry faults 9005–9008 inside 9003), and the
    /// current values are read (a failing get hook: 9002). Then values
    /// are applied in order; if a set hook fails, the entries already
    /// applied are set back to their old values (set hooks run again with
    /// the old value) and 9002 is returned. On success, the old values (in
    /// the order of `list`), for [`Store::undo_set`].
    ///
    /// Limit: the rollback is best effort. A script that applied a value
    /// but reported failure, or whose restore itself fails, can leave the
    /// device changed; such restore failures are logged.
    pub fn set_values(&mut self, schema: &Schema, list: &[(String, String, String)]) -> Result<Vec<String>, SetFault> {
        let mut faults = Vec::new();
        let mut seen = BTreeSet::new();
        for (name, value, ty) in list {
            if !seen.insert(name) {
                faults.push((name.clone(), refuse(9003, "parameter given twice")));
            } else if let Err(r) = self.check_set(schema, name, value, ty) {
                faults.push((name.clone(), r));
            }
        }
        if !faults.is_empty() {
            return Err(SetFault::Invalid(faults));
        }
        let mut old = Vec::with_capacity(list.len());
        for (name, _, _) in list {
            match self.raw_get(name) {
                Ok(v) => old.push(v.unwrap_or_default()),
                Err(e) => return Err(SetFault::Internal(refuse(9002, format!("Internal error: {e}")))),
            }
        }
        for (i, (name, value, _)) in list.iter().enumerate() {
            if let Err(e) = self.try_set(name, value) {
                self.undo_set(&list[..i], &old[..i]);
                return Err(SetFault::Internal(refuse(9002, format!("Internal error: {e}"))));
            }
        }
        Ok(old)
    }

    /// Set the entries of `list` back to `old` (their values before
    /// [`Store::set_values`]), last first, set hooks running again with the
    /// old value. A failing restore is logged and the old value recorded.
    pub fn undo_set(&mut self, list: &[(String, String, String)], old: &[String]) {
        for ((n, _, _), old) in list.iter().zip(old).rev() {
            if let Err(re) = self.try_set(n, old) {
                tracing::error!("SetParameterValues rollback of {n} failed: {re}");
                // Still record the old value as ours.
                self.values.insert(n.clone(), old.clone());
            }
        }
    }

    /// The `…NumberOfEntries` parameter counting the table `table` ("A.B.").
    pub fn count_parameter(schema: &Schema, table: &str) -> Option<String> {
        let template = format!("{}{{i}}.", template_of(table));
        let counter = schema.object(&template)?.num_entries_parameter.clone()?;
        let parent = table.trim_end_matches('.').rsplit_once('.').map(|(p, _)| format!("{p}.")).unwrap_or_default();
        Some(format!("{parent}{counter}"))
    }

    /// A.3.2.6 AddObject: a new instance of the table `path` ("A.B.").
    pub fn add_object(&mut self, schema: &Schema, path: &str) -> Result<u32, Refusal> {
        let template = format!("{}{{i}}.", template_of(path));
        let def = schema.object(&template).filter(|d| d.multi_instance).ok_or_else(|| refuse(9005, format!("{path} is not a multi-instance object")))?;
        if !def.writable {
            return Err(refuse(9005, format!("{path} does not allow AddObject")));
        }
        let parent = path.trim_end_matches('.').rsplit_once('.').map(|(p, _)| format!("{p}.")).unwrap_or_default();
        if !parent.is_empty() && !self.objects.contains(&parent) {
            return Err(refuse(9005, format!("{parent} does not exist")));
        }
        if let Some(max) = def.max_entries {
            if self.instances(path).len() as u32 >= max {
                return Err(refuse(9004, "Resources exceeded: table is full"));
            }
        }
        let next = self.next_instance.entry(path.to_string()).or_insert(1);
        let n = *next;
        *next += 1;
        self.instantiate(schema, &template, &format!("{path}{n}."));
        self.update_count(schema, path);
        Ok(n)
    }

    /// A.3.2.7 DeleteObject of an instance ("A.B.3.").
    pub fn delete_object(&mut self, schema: &Schema, path: &str) -> Result<(), Refusal> {
        let def = schema.object(path).filter(|d| d.multi_instance).ok_or_else(|| refuse(9005, format!("{path} is not an object instance")))?;
        if !def.writable || !self.objects.contains(path) {
            return Err(refuse(9005, format!("{path} cannot be deleted")));
        }
        self.objects.retain(|o| !o.starts_with(path));
        self.values.retain(|k, _| !k.starts_with(path));
        self.attributes.retain(|k, _| !k.starts_with(path));
        let table = path.trim_end_matches('.').rsplit_once('.').map(|(t, _)| format!("{t}.")).unwrap_or_default();
        self.update_count(schema, &table);
        Ok(())
    }

    fn instances(&self, table: &str) -> Vec<String> {
        self.objects
            .iter()
            .filter(|o| o.strip_prefix(table).is_some_and(|r| r.trim_end_matches('.').bytes().all(|b| b.is_ascii_digit()) && r.matches('.').count() == 1))
            .cloned()
            .collect()
    }

    /// Keep `…NumberOfEntries` equal to the table size.
    fn update_count(&mut self, schema: &Schema, table: &str) {
        let Some(counter) = Store::count_parameter(schema, table) else { return };
        let n = self.instances(table).len();
        self.values.insert(counter, n.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IGD: &str = "InternetGatewayDevice.";

    #[test]
    fn fresh_tree_and_names() {
        let schema = Schema::igd();
        let s = Store::new(schema);
        assert!(s.values.contains_key("InternetGatewayDevice.ManagementServer.URL"));
        assert_eq!(s.get("InternetGatewayDevice.ManagementServer.PeriodicInformInterval").unwrap(), "1");
        assert!(!s.objects.iter().any(|o| o.contains("LANDevice.1")));
        let top = s.names(schema, "", true).unwrap();
        assert_eq!(top, vec![(IGD.to_string(), false)]);
        let next = s.names(schema, IGD, true).unwrap();
        assert!(next.iter().any(|(n, _)| n == "InternetGatewayDevice.DeviceInfo."));
        assert!(next.iter().all(|(n, _)| n.trim_end_matches('.').matches('.').count() == 1), "{next:?}");
        let all = s.names(schema, "InternetGatewayDevice.DeviceInfo.", false).unwrap();
        assert_eq!(all[0].0, "InternetGatewayDevice.DeviceInfo.");
        assert!(all.len() > 10);
        assert_eq!(s.names(schema, "InternetGatewayDevice.DeviceInfo.Manufacturer", true).unwrap_err().code, 9003);
        assert_eq!(s.names(schema, "InternetGatewayDevice.Nope.", false).unwrap_err().code, 9005);
    }

    #[test]
    fn add_delete_never_reuse_and_count() {
        let schema = Schema::igd();
        let mut s = Store::new(schema);
        let t = "InternetGatewayDevice.Layer3Forwarding.Forwarding.";
        let a = s.add_object(schema, t).unwrap();
        let b = s.add_object(schema, t).unwrap();
        assert_eq!((a, b), (1, 2));
        assert!(s.values.contains_key(&format!("{t}2.Enable")));
        assert_eq!(s.get("InternetGatewayDevice.Layer3Forwarding.ForwardNumberOfEntries").unwrap(), "2");
        s.delete_object(schema, &format!("{t}2.")).unwrap();
        assert_eq!(s.add_object(schema, t).unwrap(), 3, "instance numbers are never reused");
        assert_eq!(s.get("InternetGatewayDevice.Layer3Forwarding.ForwardNumberOfEntries").unwrap(), "2");
        assert_eq!(s.delete_object(schema, &format!("{t}2.")).unwrap_err().code, 9005);
        assert_eq!(s.add_object(schema, "InternetGatewayDevice.DeviceInfo.").unwrap_err().code, 9005);
    }

    #[test]
    fn set_checks_and_passwords() {
        let schema = Schema::igd();
        let s = Store::new(schema);
        let ms = "InternetGatewayDevice.ManagementServer.";
        assert!(s.check_set(schema, &format!("{ms}PeriodicInformInterval"), "30", "xsd:unsignedInt").is_ok());
        assert_eq!(s.check_set(schema, &format!("{ms}PeriodicInformInterval"), "0", "xsd:unsignedInt").unwrap_err().code, 9007);
        assert_eq!(s.check_set(schema, &format!("{ms}PeriodicInformInterval"), "30", "xsd:boolean").unwrap_err().code, 9006);
        assert_eq!(s.check_set(schema, "InternetGatewayDevice.DeviceInfo.Manufacturer", "x", "xsd:string").unwrap_err().code, 9008);
        assert_eq!(s.check_set(schema, "InternetGatewayDevice.Bogus", "x", "xsd:string").unwrap_err().code, 9005);
        let mut s = s;
        s.set(&format!("{ms}Password"), "secret");
        assert_eq!(s.get(&format!("{ms}Password")).unwrap(), "");
        assert_eq!(s.values_under(ms).unwrap().iter().find(|(k, _)| k.ends_with(".Password")).unwrap().1, "");
    }

    #[test]
    fn persists_atomically() {
        let schema = Schema::igd();
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("params.json");
        let mut s = Store::new(schema);
        let n = s.add_object(schema, "InternetGatewayDevice.Layer3Forwarding.Forwarding.").unwrap();
        s.save(&p).unwrap();
        let mut back = Store::load(&p).unwrap().unwrap();
        assert!(back.objects.contains(&format!("InternetGatewayDevice.Layer3Forwarding.Forwarding.{n}.")));
        assert_eq!(back.add_object(schema, "InternetGatewayDevice.Layer3Forwarding.Forwarding.").unwrap(), n + 1);
    }
}
