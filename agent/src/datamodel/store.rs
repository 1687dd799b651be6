//! The device's parameter tree: concrete objects and parameters with their
//! values and attributes, instance numbers never reused (A.3.2.6), and the
//! Appendix A operations on it. Persisted as JSON with atomic writes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::hooks::{HookError, Hooks};
use super::provider::{ProviderError, Providers};
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
    /// A fault for the whole request (9002 Internal error, or what a
    /// provider refused the request with, e.g. 9001 Request denied).
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
    /// Not persisted: attached again at each start.
    #[serde(skip)]
    providers: Option<Arc<Providers>>,
}

/// The table holding the instance `object` ("A.B.3." → "A.B.").
fn table_of(object: &str) -> String {
    object.trim_end_matches('.').rsplit_once('.').map(|(t, _)| format!("{t}.")).unwrap_or_default()
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
        for t in self.tables(schema) {
            self.update_count(schema, &t);
        }
    }

    /// Take values from `hooks` from now on.
    pub fn attach_hooks(&mut self, hooks: Hooks) {
        self.hooks = Some(Arc::new(hooks));
    }

    pub fn hooks(&self) -> Option<&Hooks> {
        self.hooks.as_deref()
    }

    /// Take the values and instances of the providers' subtrees from them
    /// from now on. Instances on the way to a subtree (`LANDevice.1.` for
    /// `LANDevice.1.Hosts.`) are created if missing; the providers' own
    /// instances are listed by [`Store::refresh_instances`].
    pub fn attach_providers(&mut self, schema: &Schema, providers: Arc<Providers>) {
        let subtrees: Vec<String> = providers.subtrees().filter(|s| s.ends_with('.')).map(str::to_string).collect();
        self.providers = Some(providers);
        for s in subtrees {
            self.ensure_path(schema, &s);
        }
    }

    pub fn providers(&self) -> Option<&Arc<Providers>> {
        self.providers.as_ref()
    }

    /// Whether `path` (parameter, object or table) is served by a
    /// provider: in its subtree, and not a `[[hooks]]` command parameter
    /// (a command hook wins).
    pub fn served_by_provider(&self, path: &str) -> bool {
        self.owner(path).is_some()
    }

    /// The index and provider serving `path` (see [`Store::served_by_provider`]).
    fn owner(&self, path: &str) -> Option<(usize, &Arc<dyn super::provider::Provider>)> {
        if self.hooks.as_ref().is_some_and(|h| h.has_command(path)) {
            return None;
        }
        self.providers.as_ref()?.owner(path)
    }

    fn provider_for(&self, path: &str) -> Option<&Arc<Providers>> {
        self.providers.as_ref().filter(|_| self.served_by_provider(path))
    }

    /// Create the missing instances on the way to the object `path`.
    fn ensure_path(&mut self, schema: &Schema, path: &str) {
        let mut prefix = String::new();
        for c in path.trim_end_matches('.').split('.') {
            let table = prefix.clone();
            prefix = format!("{prefix}{c}.");
            let is_instance = schema.object(&prefix).is_some_and(|d| d.multi_instance) && c.bytes().all(|b| b.is_ascii_digit());
            if is_instance && !self.objects.contains(&prefix) && self.parent_exists(&table) {
                self.instantiate(schema, &template_of(&prefix), &prefix);
                self.update_count(schema, &table);
            }
        }
    }

    /// The object holding the table `table` ("A.B." → "A.") exists.
    fn parent_exists(&self, table: &str) -> bool {
        let parent = table.trim_end_matches('.').rsplit_once('.').map(|(p, _)| format!("{p}.")).unwrap_or_default();
        !parent.is_empty() && self.objects.contains(&parent)
    }

    /// Bring the instances in the providers' subtrees in line with what the
    /// providers list: always with `force`, else only when a provider
    /// reported a change (or was restarted). Whether the tree changed.
    pub fn refresh_instances(&mut self, schema: &Schema, force: bool) -> bool {
        let Some(p) = self.providers.clone() else { return false };
        if !p.take_instances_changed() && !force {
            return false;
        }
        let mut changed = false;
        for (subtree, provider) in p.entries().filter(|(s, _)| s.ends_with('.')) {
            match provider.instances(subtree) {
                Ok(list) => changed |= self.sync_instances(schema, subtree, list),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        changed
    }

    /// Make the instances inside `subtree` exactly `list` (instance paths
    /// "A.B.3."; others are ignored with a warning).
    fn sync_instances(&mut self, schema: &Schema, subtree: &str, list: Vec<String>) -> bool {
        let is_instance = |o: &str| {
            o.len() > subtree.len()
                && o.starts_with(subtree)
                && o.ends_with('.')
                && !o.contains("..")
                && o.trim_end_matches('.').rsplit('.').next().is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0'))
                && schema.object(o).is_some_and(|d| d.multi_instance)
        };
        let (want, bad): (Vec<String>, Vec<String>) = list.into_iter().partition(|o| is_instance(o));
        let want: BTreeSet<String> = want.into_iter().collect();
        if !bad.is_empty() {
            tracing::warn!(subtree, "provider listed objects that are not instances in its subtree, ignored: {bad:?}");
        }
        let table_of = |o: &str| o.trim_end_matches('.').rsplit_once('.').map(|(t, _)| format!("{t}.")).unwrap_or_default();
        let mut touched = BTreeSet::new();
        let gone: Vec<String> = self.objects.iter().filter(|o| is_instance(o) && !want.contains(*o)).cloned().collect();
        for o in gone {
            self.objects.retain(|x| !x.starts_with(&o));
            self.values.retain(|k, _| !k.starts_with(&o));
            self.attributes.retain(|k, _| !k.starts_with(&o));
            touched.insert(table_of(&o));
        }
        let mut new: Vec<&String> = want.iter().filter(|o| !self.objects.contains(*o)).collect();
        // Parents before children.
        new.sort_by_key(|o| o.matches('.').count());
        for o in new {
            let table = table_of(o);
            if !self.parent_exists(&table) {
                tracing::warn!(subtree, "provider listed {o} whose parent does not exist, ignored");
                continue;
            }
            self.instantiate(schema, &template_of(o), o);
            touched.insert(table);
        }
        let changed = !touched.is_empty();
        for t in touched {
            self.update_count(schema, &t);
        }
        changed
    }

    /// The value last seen, for change notification (3.2.1): for a
    /// provided parameter, what its provider last pushed (or gave when
    /// read) — providers are not polled; else as [`Store::try_get`].
    pub fn observe(&self, path: &str) -> Result<Option<String>, HookError> {
        if let Some(p) = self.provider_for(path) {
            if !self.values.contains_key(path) {
                return Ok(None);
            }
            if let Some(v) = p.observed(path) {
                return Ok(Some(if is_password(path) { String::new() } else { v }));
            }
        }
        self.try_get(path)
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

    /// The real value (passwords included), read through the hooks or
    /// the parameter's provider.
    pub fn raw_get(&self, path: &str) -> Result<Option<String>, HookError> {
        let Some(stored) = self.values.get(path) else { return Ok(None) };
        if let Some(p) = self.provider_for(path) {
            if let Some(v) = p.get(&[path.to_string()])?.remove(path) {
                return Ok(Some(v));
            }
        }
        self.local_get(path, stored)
    }

    /// The value without providers: a hook's (built-in or command), else stored.
    fn local_get(&self, path: &str, stored: &str) -> Result<Option<String>, HookError> {
        let lookup = |p: &str| self.values.get(p).cloned();
        match self.hooks.as_ref().and_then(|h| h.get(path, &lookup)) {
            Some(v) => v.map(Some),
            None => Ok(Some(stored.to_string())),
        }
    }

    /// The parameters named by `name`: itself, or all below a partial path
    /// (an object, or a table: A.3.2.3 lists tables as partial paths, so
    /// they are valid partial paths for the other RPCs too).
    pub fn params_under(&self, schema: &Schema, name: &str) -> Result<Vec<String>, Refusal> {
        if name.is_empty() || name.ends_with('.') {
            if !name.is_empty() && !self.objects.contains(name) && !self.is_table(schema, name) {
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
    pub fn count_under(&self, schema: &Schema, name: &str) -> Result<usize, Refusal> {
        if name.is_empty() || name.ends_with('.') {
            if !name.is_empty() && !self.objects.contains(name) && !self.is_table(schema, name) {
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
    /// path. Provided parameters are read in one call per provider. A
    /// failing hook or provider makes the whole request fail (9002, or the
    /// provider's fault).
    pub fn values_under(&self, schema: &Schema, name: &str) -> Result<Vec<(String, String)>, Refusal> {
        let names = self.params_under(schema, name)?;
        let provided: Vec<String> = names.iter().filter(|n| self.served_by_provider(n)).cloned().collect();
        let mut from_providers = match (&self.providers, provided.is_empty()) {
            (Some(p), false) => p.get(&provided).map_err(|e| e.refusal())?,
            _ => BTreeMap::new(),
        };
        names
            .into_iter()
            .map(|k| {
                if let Some(v) = from_providers.remove(&k) {
                    return Ok((k.clone(), if is_password(&k) { String::new() } else { v }));
                }
                let local = match self.values.get(&k) {
                    Some(stored) => self.local_get(&k, stored).map(|v| v.map(|v| if is_password(&k) { String::new() } else { v })),
                    None => Ok(None),
                };
                match local {
                    Ok(v) => Ok((k, v.unwrap_or_default())),
                    Err(e) => Err(refuse(9002, format!("Internal error: {e}"))),
                }
            })
            .collect()
    }

    /// Writable for the ACS: per the schema, and for a hooked parameter
    /// only if its hook can apply values.
    pub fn writable(&self, schema: &Schema, path: &str) -> bool {
        schema.param(path).is_some_and(|d| d.writable) && self.hooks.as_ref().and_then(|h| h.settable(path)).unwrap_or(true)
    }

    /// The table objects of the tree ("A.B.", the path AddObject takes):
    /// one for each multi-instance object of the schema whose parent
    /// object exists, whether or not it has instances.
    pub fn tables(&self, schema: &Schema) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for o in &self.objects {
            let t = template_of(o);
            out.extend(schema.child_tables(&t).map(|name| format!("{o}{name}")));
        }
        out
    }

    /// Whether `path` ("A.B.") is a table of the tree (see [`Store::tables`]).
    pub fn is_table(&self, schema: &Schema, path: &str) -> bool {
        let Some((parent, _)) = path.strip_suffix('.').and_then(|p| p.rsplit_once('.')) else { return false };
        schema.object(&format!("{}{{i}}.", template_of(path))).is_some_and(|d| d.multi_instance) && self.objects.contains(&format!("{parent}."))
    }

    /// AddObject/DeleteObject may be used on `table` ("A.B."): the data
    /// model allows it, and so does the provider serving the table.
    pub fn add_delete_allowed(&self, schema: &Schema, table: &str) -> bool {
        schema.object(&format!("{}{{i}}.", template_of(table))).is_some_and(|d| d.writable && d.multi_instance)
            && self.owner(table).is_none_or(|(_, p)| p.allows_add_delete(table))
    }

    /// A.3.2.3 GetParameterNames. Objects, tables and instances are listed
    /// as partial paths; Table 16: a table's Writable says whether AddObject
    /// may add instances to it, an instance's whether DeleteObject may
    /// remove it; other objects are not writable.
    pub fn names(&self, schema: &Schema, path: &str, next_level: bool) -> Result<Vec<(String, bool)>, Refusal> {
        let tables = self.tables(schema);
        let writable_obj = |o: &str| {
            if tables.contains(o) {
                self.add_delete_allowed(schema, o)
            } else {
                // An instance: its own template is the multi-instance object.
                schema.object(o).is_some_and(|d| d.multi_instance) && self.add_delete_allowed(schema, &table_of(o))
            }
        };
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
        if !path.is_empty() && !self.objects.contains(path) && !tables.contains(path) {
            return Err(refuse(9005, format!("Invalid parameter name: {path}")));
        }
        let depth = |s: &str| s.trim_end_matches('.').matches('.').count();
        let base = if path.is_empty() { usize::MAX } else { depth(path) };
        let mut out = Vec::new();
        if !next_level && !path.is_empty() {
            out.push((path.to_string(), writable_obj(path)));
        }
        let under = |n: &&String| n.starts_with(path) && n.as_str() != path;
        let mut entries: Vec<(String, bool)> = self
            .objects
            .iter()
            .chain(tables.iter())
            .filter(under)
            .map(|o| (o.clone(), writable_obj(o)))
            .chain(self.values.keys().filter(under).map(|k| (k.clone(), writable_param(k))))
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
        def.validate(value).map_err(|e| refuse(9007, format!("Invalid parameter value: {}", e.reason)))?;
        if def.read_only_values.iter().any(|v| v == value) {
            return Err(refuse(9007, format!("Invalid parameter value: {value:?} is reported by the CPE, not written by the ACS")));
        }
        Ok(())
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
        if let Some((_, p)) = self.owner(name) {
            let v = [(name.to_string(), value.to_string())];
            p.set(&v)?;
            if let Some(all) = &self.providers {
                all.applied(&v);
            }
        } else if let Some(r) = self.hooks.as_ref().and_then(|h| h.set(name, value)) {
            r?;
        }
        self.values.insert(name.to_string(), value.to_string());
        Ok(())
    }

    /// A.3.2.1 SetParameterValues, applied all or none: every entry is
    /// checked first (per-entry faults 9005–9008 inside 9003), and the
    /// current values are read (a failing get hook: 9002). Then the
    /// provided entries go to their providers, one `set` per provider
    /// (each applies all or none; its refusal, with per-parameter faults,
    /// is the request's), then the other values are applied in order. If a
    /// provider or set hook fails, what was already applied is set back to
    /// the old values (providers and set hooks are called again with them)
    /// and the failure is returned. On success, the old values (in the
    /// order of `list`), for [`Store::undo_set`].
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
        // The old values, for a rollback (provided ones in one call each).
        let provided: Vec<String> = list.iter().map(|(n, _, _)| n.clone()).filter(|n| self.served_by_provider(n)).collect();
        let from_providers = match (&self.providers, provided.is_empty()) {
            (Some(p), false) => p.get(&provided).map_err(|e| SetFault::Internal(e.refusal()))?,
            _ => BTreeMap::new(),
        };
        let mut old = BTreeMap::new();
        for (name, _, _) in list {
            let v = if let Some(v) = from_providers.get(name) {
                v.clone()
            } else if self.served_by_provider(name) {
                let stored = self.values.get(name).cloned().unwrap_or_default();
                self.local_get(name, &stored).map_err(|e| SetFault::Internal(refuse(9002, format!("Internal error: {e}"))))?.unwrap_or_default()
            } else {
                self.raw_get(name).map_err(|e| SetFault::Internal(refuse(9002, format!("Internal error: {e}"))))?.unwrap_or_default()
            };
            old.insert(name.clone(), v);
        }
        // Provided entries, one set per provider, all or none each.
        let mut groups: BTreeMap<usize, Vec<(String, String)>> = BTreeMap::new();
        let mut local = Vec::new();
        for (name, value, _) in list {
            match self.owner(name) {
                Some((i, _)) => groups.entry(i).or_default().push((name.clone(), value.clone())),
                None => local.push((name.clone(), value.clone())),
            }
        }
        let mut applied: Vec<(String, String)> = Vec::new();
        let providers = self.providers.clone();
        for (i, entries) in &groups {
            let p = providers.as_ref().and_then(|p| p.entries().nth(*i)).map(|(_, p)| p.clone()).expect("grouped by owner");
            if let Err(e) = p.set(entries) {
                self.roll_back(&applied, &old);
                return Err(match e {
                    ProviderError::Fault { faults, .. } if !faults.is_empty() => SetFault::Invalid(faults),
                    e => SetFault::Internal(e.refusal()),
                });
            }
            if let Some(all) = &providers {
                all.applied(entries);
            }
            for (n, v) in entries {
                self.values.insert(n.clone(), v.clone());
            }
            applied.extend(entries.iter().cloned());
        }
        for (name, value) in &local {
            if let Err(e) = self.try_set(name, value) {
                self.roll_back(&applied, &old);
                return Err(SetFault::Internal(refuse(9002, format!("Internal error: {e}"))));
            }
            applied.push((name.clone(), value.clone()));
        }
        Ok(list.iter().map(|(n, _, _)| old.get(n).cloned().unwrap_or_default()).collect())
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

    /// Set `applied` back to their `old` values (last first), best effort.
    fn roll_back(&mut self, applied: &[(String, String)], old: &BTreeMap<String, String>) {
        for (n, _) in applied.iter().rev() {
            let Some(o) = old.get(n) else { continue };
            if let Err(re) = self.try_set(n, o) {
                tracing::error!("SetParameterValues rollback of {n} failed: {re}");
                // Still record the old value as ours.
                self.values.insert(n.clone(), o.clone());
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
        if !self.add_delete_allowed(schema, path) {
            return Err(refuse(9001, format!("Request denied: the instances of {path} are the device's")));
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
        if let Some((_, p)) = self.owner(path) {
            // The provider numbers its instances.
            let n = p.add(path).map_err(|e| e.refusal())?;
            let object = format!("{path}{n}.");
            if self.objects.contains(&object) {
                return Err(refuse(9002, format!("Internal error: the provider added {object}, which exists already")));
            }
            self.instantiate(schema, &template, &object);
            self.update_count(schema, path);
            return Ok(n);
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
        if !self.add_delete_allowed(schema, &table_of(path)) {
            return Err(refuse(9001, format!("Request denied: {path} is the device's")));
        }
        if let Some((_, p)) = self.owner(path) {
            p.delete(path).map_err(|e| e.refusal())?;
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
        let Some(counter) = Store::count_parameter(schema, table).filter(|c| schema.param(c).is_some()) else { return };
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

    /// A.3.2.3 / Table 16 as an ACS discovering the tree sees it: tables
    /// are listed (Writable = AddObject allowed), instances too (Writable =
    /// DeleteObject allowed), with or without instances.
    #[test]
    fn tables_in_get_parameter_names() {
        let schema = Schema::igd();
        let mut s = Store::new(schema);
        let l3 = "InternetGatewayDevice.Layer3Forwarding.";
        let t = "InternetGatewayDevice.Layer3Forwarding.Forwarding.";
        let names = |s: &Store, p: &str, nl: bool| s.names(schema, p, nl).unwrap();
        assert_eq!(
            names(&s, l3, true),
            vec![(format!("{l3}DefaultConnectionService"), true), (format!("{l3}ForwardNumberOfEntries"), false), (t.to_string(), true)]
        );
        assert_eq!(names(&s, t, true), vec![]);
        assert_eq!(names(&s, t, false), vec![(t.to_string(), true)]);
        // A read-only table (instances are the device's): listed, not writable.
        let igd = names(&s, "InternetGatewayDevice.", true);
        assert!(igd.contains(&("InternetGatewayDevice.LANDevice.".to_string(), false)), "{igd:?}");
        assert!(igd.contains(&("InternetGatewayDevice.WANDevice.".to_string(), false)));
        // The whole tree lists the tables too.
        let all = names(&s, "", false);
        assert!(all.contains(&(t.to_string(), true)));
        // Other RPCs accept the table as a partial path.
        assert_eq!(s.values_under(schema, t).unwrap(), vec![]);
        assert_eq!(s.params_under(schema, "InternetGatewayDevice.LANDevice.").unwrap(), Vec::<String>::new());
        assert_eq!(s.params_under(schema, "InternetGatewayDevice.LANDevice.1.").unwrap_err().code, 9005);
        // Add: the instance appears in the next listing, deletable.
        let n = s.add_object(schema, t).unwrap();
        let inst = format!("{t}{n}.");
        assert_eq!(names(&s, t, true), vec![(inst.clone(), true)]);
        let below = names(&s, &inst, true);
        assert!(below.contains(&(format!("{inst}Enable"), true)) && below.contains(&(format!("{inst}Status"), false)), "{below:?}");
        assert_eq!(s.values_under(schema, t).unwrap().len(), below.len());
        assert_eq!(s.get(&format!("{l3}ForwardNumberOfEntries")).unwrap(), "1");
        assert!(names(&s, "", false).contains(&(inst.clone(), true)));
        // Delete: gone from the listing, the table stays.
        s.delete_object(schema, &inst).unwrap();
        assert_eq!(names(&s, t, true), vec![]);
        assert_eq!(s.names(schema, &inst, true).unwrap_err().code, 9005);
        assert_eq!(s.get(&format!("{l3}ForwardNumberOfEntries")).unwrap(), "0");
        // Nested tables exist only below an existing instance.
        assert!(!s.is_table(schema, "InternetGatewayDevice.LANDevice.1.Hosts.Host."));
        assert!(s.is_table(schema, t));
        assert!(!s.is_table(schema, "InternetGatewayDevice.DeviceInfo."));
    }

    #[test]
    fn counts_follow_the_instances_of_a_loaded_tree() {
        let schema = Schema::igd();
        let mut s = Store::new(schema);
        let t = "InternetGatewayDevice.Layer3Forwarding.Forwarding.";
        s.add_object(schema, t).unwrap();
        s.add_object(schema, t).unwrap();
        // A stale counter (e.g. a tree edited by hand) is corrected.
        s.values.insert("InternetGatewayDevice.Layer3Forwarding.ForwardNumberOfEntries".into(), "7".into());
        s.complete(schema);
        assert_eq!(s.get("InternetGatewayDevice.Layer3Forwarding.ForwardNumberOfEntries").unwrap(), "2");
        assert_eq!(s.get("InternetGatewayDevice.LANDeviceNumberOfEntries").unwrap(), "0");
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
        // B: "When writing, the only allowed value is Requested".
        let ds = "InternetGatewayDevice.IPPingDiagnostics.DiagnosticsState";
        assert!(s.check_set(schema, ds, "Requested", "xsd:string").is_ok());
        for v in ["None", "Complete", "Error_CannotResolveHostName"] {
            assert_eq!(s.check_set(schema, ds, v, "xsd:string").unwrap_err().code, 9007, "{v}");
        }
        let mut s = s;
        s.set(&format!("{ms}Password"), "secret");
        assert_eq!(s.get(&format!("{ms}Password")).unwrap(), "");
        assert_eq!(s.values_under(schema, ms).unwrap().iter().find(|(k, _)| k.ends_with(".Password")).unwrap().1, "");
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
