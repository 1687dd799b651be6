//! Appendix B — the InternetGatewayDevice:1.0 data model, read from the
//! Broadband Forum's XML (`tr-069-1-0-0-full.xml`, BSD-3-Clause, embedded)
//! rather than retyped: every object and parameter with its type, string
//! length, ranges, enumerations, writability, and which objects are
//! multi-instance (and may be added/deleted).

pub mod hooks;
pub mod linux;
pub mod notify;
pub mod provider;
pub mod store;

use std::collections::HashMap;
use std::sync::OnceLock;

use roxmltree::Node;

const BBF_XML: &str = include_str!("tr-069-1-0-0-full.xml");

/// Base types of Appendix A.2 / the BBF schema. Deserializes from the
/// BBF spellings (`string`, `unsignedInt`, `int`, `boolean`, `dateTime`,
/// `base64`) for vendor parameters given in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BaseType {
    String,
    UnsignedInt,
    Int,
    Boolean,
    DateTime,
    Base64,
}

impl BaseType {
    /// The `xsi:type` used on the wire.
    pub fn xsd(self) -> &'static str {
        match self {
            BaseType::String => "xsd:string",
            BaseType::UnsignedInt => "xsd:unsignedInt",
            BaseType::Int => "xsd:int",
            BaseType::Boolean => "xsd:boolean",
            BaseType::DateTime => "xsd:dateTime",
            // A.2: SOAP encoding's base64 (XML Schema has no "base64" type).
            BaseType::Base64 => "soapenc:base64",
        }
    }
}

/// One parameter definition (path with `{i}` placeholders).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamDef {
    pub path: String,
    pub writable: bool,
    pub ty: BaseType,
    /// Comma-separated list of `ty` values.
    pub list: bool,
    pub max_length: Option<u32>,
    pub enumerations: Vec<String>,
    /// Enumeration values the CPE reports but the ACS may not write (BBF
    /// `access="readOnly"`; e.g. B IPPingDiagnostics.DiagnosticsState:
    /// "When writing, the only allowed value is Requested").
    pub read_only_values: Vec<String>,
    /// Inclusive ranges (min, max); empty = unrestricted.
    pub ranges: Vec<(Option<i64>, Option<i64>)>,
    /// The value a new instance starts with; `None` = the type's neutral
    /// value (see `store`). Set for vendor parameters from configuration.
    pub default: Option<String>,
}

/// One object definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectDef {
    pub path: String,
    /// `readWrite` multi-instance objects accept AddObject/DeleteObject.
    pub writable: bool,
    /// Ends in `{i}.`.
    pub multi_instance: bool,
    pub max_entries: Option<u32>,
    pub num_entries_parameter: Option<String>,
}

/// The whole model.
#[derive(Debug, Clone)]
pub struct Schema {
    pub name: String,
    pub objects: Vec<ObjectDef>,
    pub params: Vec<ParamDef>,
    params_by_path: HashMap<String, usize>,
    objects_by_path: HashMap<String, usize>,
}

/// Replace instance numbers by `{i}`: `A.B.3.C` → `A.B.{i}.C`.
pub fn template_of(path: &str) -> String {
    path.split('.').map(|s| if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) { "{i}" } else { s }).collect::<Vec<_>>().join(".")
}

fn el<'a, 'i>(n: Node<'a, 'i>, name: &str) -> Option<Node<'a, 'i>> {
    n.children().find(|c| c.is_element() && c.tag_name().name() == name)
}

fn num(s: Option<&str>) -> Option<i64> {
    s.and_then(|v| v.parse().ok())
}

impl Schema {
    /// The embedded InternetGatewayDevice:1.0 model (parsed once).
    pub fn igd() -> &'static Schema {
        static S: OnceLock<Schema> = OnceLock::new();
        S.get_or_init(|| Schema::parse(BBF_XML).expect("the embedded BBF model parses"))
    }

    /// Parse a BBF data model document (its first `model`).
    pub fn parse(xml: &str) -> Result<Schema, String> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
        let root = doc.root_element();
        // Named data types (IPAddress, MACAddress) resolve to their base syntax.
        let data_types: HashMap<&str, Node<'_, '_>> =
            root.children().filter(|c| c.is_element() && c.tag_name().name() == "dataType").filter_map(|d| Some((d.attribute("name")?, d))).collect();
        let model = el(root, "model").ok_or("no model element")?;
        let mut s = Schema {
            name: model.attribute("name").unwrap_or_default().to_string(),
            objects: Vec::new(),
            params: Vec::new(),
            params_by_path: HashMap::new(),
            objects_by_path: HashMap::new(),
        };
        for o in model.children().filter(|c| c.is_element() && c.tag_name().name() == "object") {
            let path = o.attribute("name").ok_or("object without name")?.to_string();
            s.objects_by_path.insert(path.clone(), s.objects.len());
            s.objects.push(ObjectDef {
                multi_instance: path.ends_with("{i}."),
                writable: o.attribute("access") == Some("readWrite"),
                max_entries: o.attribute("maxEntries").and_then(|m| m.parse().ok()),
                num_entries_parameter: o.attribute("numEntriesParameter").map(str::to_string),
                path: path.clone(),
            });
            for p in o.children().filter(|c| c.is_element() && c.tag_name().name() == "parameter") {
                let name = p.attribute("name").ok_or("parameter without name")?;
                let syntax = el(p, "syntax").ok_or_else(|| format!("{path}{name}: no syntax"))?;
                let def = param_def(format!("{path}{name}"), p.attribute("access") == Some("readWrite"), syntax, &data_types)?;
                s.params_by_path.insert(def.path.clone(), s.params.len());
                s.params.push(def);
            }
        }
        Ok(s)
    }

    /// The definition for a concrete or template parameter path.
    pub fn param(&self, path: &str) -> Option<&ParamDef> {
        self.params_by_path.get(&template_of(path)).map(|i| &self.params[*i])
    }

    /// The definition for a concrete or template object path (ending in `.`).
    pub fn object(&self, path: &str) -> Option<&ObjectDef> {
        self.objects_by_path.get(&template_of(path)).map(|i| &self.objects[*i])
    }

    /// The tables directly inside the object `template` ("A.{i}.B."): the
    /// names ("Name.") of its multi-instance children "A.{i}.B.Name.{i}.".
    pub fn child_tables<'s>(&'s self, template: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.objects.iter().filter(|o| o.multi_instance).filter_map(move |o| {
            let rest = o.path.strip_prefix(template)?.strip_suffix("{i}.")?;
            (rest.len() > 1 && rest.matches('.').count() == 1).then_some(rest)
        })
    }
}

fn param_def(path: String, writable: bool, syntax: Node<'_, '_>, types: &HashMap<&str, Node<'_, '_>>) -> Result<ParamDef, String> {
    let list = el(syntax, "list").is_some();
    let mut base = syntax.children().find(|c| c.is_element() && c.tag_name().name() != "list" && c.tag_name().name() != "default");
    let mut def = ParamDef {
        path,
        writable,
        ty: BaseType::String,
        list,
        max_length: None,
        enumerations: Vec::new(),
        read_only_values: Vec::new(),
        ranges: Vec::new(),
        default: None,
    };
    // A dataType reference: take the restrictions of the named type, then
    // any given at the use site.
    let mut layers = Vec::new();
    while let Some(b) = base {
        layers.push(b);
        base = match (b.tag_name().name(), b.attribute("ref").or(b.attribute("base"))) {
            ("dataType", Some(r)) => types.get(r).and_then(|d| d.children().find(|c| c.is_element() && c.tag_name().name() != "description")),
            _ => None,
        };
    }
    for b in layers.iter().rev() {
        def.ty = match b.tag_name().name() {
            "string" => BaseType::String,
            "unsignedInt" => BaseType::UnsignedInt,
            "int" => BaseType::Int,
            "boolean" => BaseType::Boolean,
            "dateTime" => BaseType::DateTime,
            "base64" => BaseType::Base64,
            "dataType" => def.ty,
            other => return Err(format!("{}: unsupported type {other}", def.path)),
        };
        for r in b.children().filter(|c| c.is_element()) {
            match r.tag_name().name() {
                "size" => def.max_length = num(r.attribute("maxLength")).map(|v| v as u32).or(def.max_length),
                "enumeration" => {
                    let v = r.attribute("value").unwrap_or_default().to_string();
                    if r.attribute("access") == Some("readOnly") {
                        def.read_only_values.push(v.clone());
                    }
                    def.enumerations.push(v);
                }
                "range" => def.ranges.push((num(r.attribute("minInclusive")), num(r.attribute("maxInclusive")))),
                _ => {}
            }
        }
    }
    Ok(def)
}

/// Why a value is not acceptable (fault 9007, A.5.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid value for {path}: {reason}")]
pub struct InvalidValue {
    pub path: String,
    pub reason: String,
}

impl ParamDef {
    /// Check a value against the type, length, range and enumeration.
    pub fn validate(&self, value: &str) -> Result<(), InvalidValue> {
        let bad = |reason: String| InvalidValue { path: self.path.clone(), reason };
        let items: Vec<&str> = if self.list { value.split(',').map(str::trim).filter(|s| !s.is_empty()).collect() } else { vec![value] };
        if self.list {
            if let Some(max) = self.max_length.filter(|m| value.chars().count() > *m as usize) {
                return Err(bad(format!("longer than {max} characters")));
            }
        }
        for v in items {
            match self.ty {
                BaseType::Boolean if !matches!(v, "0" | "1" | "true" | "false") => return Err(bad(format!("{v:?} is not a boolean"))),
                BaseType::UnsignedInt | BaseType::Int => {
                    let n: i64 = v.parse().map_err(|_| bad(format!("{v:?} is not an integer")))?;
                    let (lo, hi) = if self.ty == BaseType::UnsignedInt { (0, u32::MAX as i64) } else { (i32::MIN as i64, i32::MAX as i64) };
                    if n < lo || n > hi {
                        return Err(bad(format!("{n} is outside the type's range")));
                    }
                    if !self.ranges.is_empty() && !self.ranges.iter().any(|(a, b)| a.is_none_or(|a| n >= a) && b.is_none_or(|b| n <= b)) {
                        return Err(bad(format!("{n} is outside {:?}", self.ranges)));
                    }
                }
                BaseType::DateTime => {
                    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339).map_err(|_| bad(format!("{v:?} is not an xsd:dateTime")))?;
                }
                BaseType::String | BaseType::Base64 => {
                    if !self.list {
                        if let Some(max) = self.max_length.filter(|m| v.chars().count() > *m as usize) {
                            return Err(bad(format!("longer than {max} characters")));
                        }
                    }
                    if !self.enumerations.is_empty() && !self.enumerations.iter().any(|e| e == v) {
                        return Err(bad(format!("{v:?} is not one of {:?}", self.enumerations)));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A vendor-specific parameter added through the agent configuration
/// (B.2.2), e.g. in TOML:
///
/// ```toml
/// [[vendor_parameters]]
/// name = "InternetGatewayDevice.DeviceInfo.X_00D09E_Colour"
/// type = "string"          # string | int | unsignedInt | boolean | dateTime | base64
/// writable = true          # default false
/// default = "blue"         # optional; else the type's neutral value
/// ```
///
/// `name` is a full parameter path (no trailing dot). It may sit in a
/// standard object (also a table, written with `{i}`:
/// `InternetGatewayDevice.LANDevice.{i}.X_00D09E_Foo`) or in new objects,
/// which are created as single-instance, read-only objects. B.2.2: the first
/// component that is not part of the standard model must have the form
/// `X_<VENDOR>_Name`, `<VENDOR>` being an OUI (six upper-case hexadecimal
/// digits) or an upper-case domain name with dots replaced by `-`/`_`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorParameter {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: BaseType,
    #[serde(default)]
    pub writable: bool,
    #[serde(default)]
    pub default: Option<String>,
}

/// Why a [`VendorParameter`] cannot be added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VendorParameterError {
    #[error("vendor parameter {0:?}: not a parameter path of at most 256 characters (components of letters, digits, '-' and '_')")]
    BadName(String),
    #[error("vendor parameter {0:?}: the first component outside the standard model must be X_<VENDOR>_Name (B.2.2)")]
    NotVendorSpecific(String),
    #[error("vendor parameter {0:?}: the name is already used")]
    Duplicate(String),
    #[error("vendor parameter {0:?}: {{i}} may only follow an existing multi-instance object")]
    NewTable(String),
    #[error("vendor parameter {name:?}: bad default: {reason}")]
    BadDefault { name: String, reason: String },
}

/// B.2.2: `X_<VENDOR>_Name` with `<VENDOR>` upper-case (OUI or domain).
pub fn is_vendor_specific(component: &str) -> bool {
    let Some(rest) = component.strip_prefix("X_") else { return false };
    let Some((vendor, name)) = rest.split_once('_') else { return false };
    !vendor.is_empty() && !name.is_empty() && vendor.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

/// B.2.1-style name component: letters, digits, `-`, `_`, starting with a letter.
fn valid_component(c: &str) -> bool {
    c.as_bytes().first().is_some_and(|b| b.is_ascii_alphabetic()) && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Schema {
    /// The InternetGatewayDevice:1.0 model plus vendor parameters (an
    /// owned copy; leak it with `Box::leak` where `&'static` is wanted).
    pub fn igd_with(vendor: &[VendorParameter]) -> Result<Schema, VendorParameterError> {
        let mut s = Schema::igd().clone();
        s.add_vendor_parameters(vendor)?;
        Ok(s)
    }

    /// Add vendor parameters (all or none).
    pub fn add_vendor_parameters(&mut self, vendor: &[VendorParameter]) -> Result<(), VendorParameterError> {
        let mut s = self.clone();
        for v in vendor {
            s.add_vendor_parameter(v)?;
        }
        *self = s;
        Ok(())
    }

    fn add_vendor_parameter(&mut self, v: &VendorParameter) -> Result<(), VendorParameterError> {
        let name = &v.name;
        let comps: Vec<&str> = name.split('.').collect();
        // A.3.2.1: parameter names are string(256).
        let (last, parents) = comps.split_last().ok_or_else(|| VendorParameterError::BadName(name.clone()))?;
        if name.len() > 256 || !valid_component(last) || parents.iter().any(|c| *c != "{i}" && !valid_component(c)) {
            return Err(VendorParameterError::BadName(name.clone()));
        }
        let mut prefix = String::new();
        let mut vendor_seen = false;
        // The previous component names a table ("A.B." of "A.B.{i}."): only
        // an instance placeholder may follow.
        let mut in_table = false;
        for (i, c) in comps.iter().enumerate() {
            if in_table != (*c == "{i}") {
                return Err(if in_table { VendorParameterError::BadName(name.clone()) } else { VendorParameterError::NewTable(name.clone()) });
            }
            if i == parents.len() {
                break;
            }
            let path = format!("{prefix}{c}.");
            if self.params_by_path.contains_key(path.trim_end_matches('.')) {
                return Err(VendorParameterError::BadName(name.clone()));
            }
            vendor_seen |= is_vendor_specific(c);
            in_table = self.objects_by_path.contains_key(&format!("{path}{{i}}."));
            if !in_table && !self.objects_by_path.contains_key(&path) {
                if *c == "{i}" {
                    return Err(VendorParameterError::NewTable(name.clone()));
                }
                if !vendor_seen {
                    return Err(VendorParameterError::NotVendorSpecific(name.clone()));
                }
                self.objects_by_path.insert(path.clone(), self.objects.len());
                self.objects.push(ObjectDef { path: path.clone(), writable: false, multi_instance: false, max_entries: None, num_entries_parameter: None });
            }
            prefix = path;
        }
        if !vendor_seen && !is_vendor_specific(last) {
            return Err(VendorParameterError::NotVendorSpecific(name.clone()));
        }
        if self.params_by_path.contains_key(name) || self.objects_by_path.contains_key(&format!("{name}.")) {
            return Err(VendorParameterError::Duplicate(name.clone()));
        }
        let def = ParamDef {
            path: name.clone(),
            writable: v.writable,
            ty: v.ty,
            list: false,
            max_length: None,
            enumerations: Vec::new(),
            read_only_values: Vec::new(),
            ranges: Vec::new(),
            default: v.default.clone(),
        };
        if let Some(d) = &v.default {
            def.validate(d).map_err(|e| VendorParameterError::BadDefault { name: name.clone(), reason: e.reason })?;
        }
        self.params_by_path.insert(name.clone(), self.params.len());
        self.params.push(def);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_model_is_loaded() {
        let s = Schema::igd();
        assert_eq!(s.name, "InternetGatewayDevice:1.0");
        // 472 parameter elements (the file also names parameters in uniqueKey
        // refs and comments; Python's ElementTree counts the same 472).
        assert_eq!(s.params.len(), 472);
        assert_eq!(s.objects.len(), BBF_XML.matches("<object").count());
        assert!(s.objects.iter().any(|o| o.path == "InternetGatewayDevice.LANDevice.{i}." && o.multi_instance));
    }

    #[test]
    fn types_ranges_enumerations_writability() {
        let s = Schema::igd();
        let p = s.param("InternetGatewayDevice.ManagementServer.PeriodicInformInterval").unwrap();
        assert_eq!((p.ty, p.writable), (BaseType::UnsignedInt, true));
        assert!(p.validate("60").is_ok());
        assert!(p.validate("0").is_err(), "minInclusive 1");
        assert!(p.validate("-1").is_err() && p.validate("abc").is_err());
        let m = s.param("InternetGatewayDevice.DeviceInfo.Manufacturer").unwrap();
        assert!(!m.writable);
        assert_eq!(m.max_length, Some(64));
        assert!(m.validate(&"x".repeat(65)).is_err());
        let b = s.param("InternetGatewayDevice.ManagementServer.PeriodicInformEnable").unwrap();
        assert_eq!(b.ty.xsd(), "xsd:boolean");
        assert!(b.validate("true").is_ok() && b.validate("yes").is_err());
        // Instance numbers map to the {i} template.
        assert_eq!(template_of("InternetGatewayDevice.LANDevice.1.Hosts.Host.12.IPAddress"), "InternetGatewayDevice.LANDevice.{i}.Hosts.Host.{i}.IPAddress");
        let ip = s.param("InternetGatewayDevice.LANDevice.1.Hosts.Host.12.IPAddress").unwrap();
        assert_eq!(ip.ty, BaseType::String, "dataType IPAddress resolves to string");
        assert!(ip.max_length.is_some());
        let enums = s.params.iter().filter(|p| !p.enumerations.is_empty()).count();
        assert!(enums > 20, "{enums}");
        let e = s.params.iter().find(|p| p.enumerations.len() > 1 && !p.list).unwrap();
        assert!(e.validate(&e.enumerations[0]).is_ok());
        assert!(e.validate("NotAValue").is_err());
    }

    fn vp(name: &str, ty: BaseType, writable: bool, default: Option<&str>) -> VendorParameter {
        VendorParameter { name: name.into(), ty, writable, default: default.map(str::to_string) }
    }

    #[test]
    fn vendor_parameters() {
        let s = Schema::igd_with(&[
            vp("InternetGatewayDevice.DeviceInfo.X_00D09E_Colour", BaseType::String, true, Some("blue")),
            vp("InternetGatewayDevice.X_ACME-COM_Box.Fan.Speed", BaseType::UnsignedInt, false, None),
            vp("InternetGatewayDevice.LANDevice.{i}.X_00D09E_Infrared", BaseType::Boolean, true, None),
        ])
        .unwrap();
        assert_eq!(s.params.len(), 475);
        let c = s.param("InternetGatewayDevice.DeviceInfo.X_00D09E_Colour").unwrap();
        assert_eq!((c.writable, c.default.as_deref()), (true, Some("blue")));
        assert!(s.object("InternetGatewayDevice.X_ACME-COM_Box.Fan.").is_some_and(|o| !o.writable && !o.multi_instance));
        assert!(s.param("InternetGatewayDevice.LANDevice.3.X_00D09E_Infrared").is_some());
        assert_eq!(Schema::igd().params.len(), 472, "the shared model is untouched");
        let err = |v: VendorParameter| Schema::igd_with(&[v]).unwrap_err();
        // B.2.2: the name must be vendor-specific, <VENDOR> upper case.
        assert!(matches!(err(vp("InternetGatewayDevice.DeviceInfo.Colour", BaseType::String, false, None)), VendorParameterError::NotVendorSpecific(_)));
        assert!(matches!(
            err(vp("InternetGatewayDevice.DeviceInfo.X_00d09e_Colour", BaseType::String, false, None)),
            VendorParameterError::NotVendorSpecific(_)
        ));
        assert!(matches!(err(vp("InternetGatewayDevice.NewThing.X_00D09E_A", BaseType::String, false, None)), VendorParameterError::NotVendorSpecific(_)));
        assert!(matches!(err(vp("InternetGatewayDevice.X_00D09E_T.{i}.A", BaseType::String, false, None)), VendorParameterError::NewTable(_)));
        assert!(matches!(err(vp("InternetGatewayDevice.LANDevice.X_00D09E_A", BaseType::String, false, None)), VendorParameterError::BadName(_)));
        assert!(Schema::igd_with(&[vp("InternetGatewayDevice.X_00D09E_A.X_00D09E_A", BaseType::String, false, None)]).is_ok());
        assert!(matches!(err(vp("InternetGatewayDevice.DeviceInfo.X_00D09E_A.", BaseType::String, false, None)), VendorParameterError::BadName(_)));
        assert!(matches!(err(vp("InternetGatewayDevice.DeviceInfo.Manufacturer.X_00D09E_A", BaseType::String, false, None)), VendorParameterError::BadName(_)));
        assert!(matches!(err(vp("InternetGatewayDevice.DeviceInfo.X_00D09E_A", BaseType::Int, false, Some("x"))), VendorParameterError::BadDefault { .. }));
        let dup = vp("InternetGatewayDevice.DeviceInfo.X_00D09E_A", BaseType::Int, false, None);
        assert!(matches!(Schema::igd_with(&[dup.clone(), dup]).unwrap_err(), VendorParameterError::Duplicate(_)));
        // From TOML as the agent configuration gives them.
        let t: toml::Table = toml::from_str("[[vendor_parameters]]\nname = \"InternetGatewayDevice.DeviceInfo.X_00D09E_N\"\ntype = \"unsignedInt\"\n").unwrap();
        let v: Vec<VendorParameter> = t["vendor_parameters"].clone().try_into().unwrap();
        assert_eq!(v, vec![vp("InternetGatewayDevice.DeviceInfo.X_00D09E_N", BaseType::UnsignedInt, false, None)]);
    }
}
