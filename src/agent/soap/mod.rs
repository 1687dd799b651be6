//! The CWMP 1.0 SOAP codec (3.5, Appendix A), sans-IO: HTTP bodies in,
//! [`Envelope`]s out, and back. Namespace-aware (any prefixes), several
//! envelopes per HTTP body, unknown elements, attributes, comments and PIs
//! ignored. A request the CPE cannot decode becomes the fault to answer
//! with: 9000 for an unknown method, 9003 for wrong arguments.

pub mod message;
mod xml;

pub use message::*;

use roxmltree::Node;
use xml::W;

pub const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const SOAP_ENC: &str = "http://schemas.xmlsoap.org/soap/encoding/";
pub const XSD: &str = "http://www.w3.org/2001/XMLSchema";
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
pub const CWMP: &str = "urn:dslforum-org:cwmp-1-0";

/// One SOAP envelope: header fields (3.5) and body (None = empty body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `cwmp:ID`, echoed in the response (mustUnderstand=1).
    pub id: Option<String>,
    /// `cwmp:HoldRequests` (ACS → CPE).
    pub hold_requests: bool,
    /// `cwmp:NoMoreRequests`.
    pub no_more_requests: bool,
    /// The request or response, or why it could not be decoded.
    pub body: Result<Body, Fault>,
}

/// The HTTP body is not SOAP at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SOAP message: {0}")]
pub struct CodecError(pub String);

fn err(s: impl Into<String>) -> CodecError {
    CodecError(s.into())
}

fn invalid(why: impl Into<String>) -> Fault {
    Fault::new(9003, format!("Invalid arguments: {}", why.into()))
}

fn text(n: Node<'_, '_>) -> String {
    n.children().filter(|c| c.is_text()).filter_map(|c| c.text()).collect::<String>()
}

fn is(n: Node<'_, '_>, ns: &str, name: &str) -> bool {
    n.is_element() && n.tag_name().name() == name && n.tag_name().namespace() == Some(ns)
}

fn boolean(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// The method's arguments: element children that are unqualified or in the
/// CWMP namespace (others are extensions and ignored), which must be
/// exactly `names`, in order (else 9003).
fn args<'a, 'i>(m: Node<'a, 'i>, names: &[&str]) -> Result<Vec<Node<'a, 'i>>, Fault> {
    let got: Vec<Node<'a, 'i>> = m
        .children()
        .filter(|c| c.is_element() && matches!(c.tag_name().namespace(), None | Some(CWMP)))
        .collect();
    let found: Vec<&str> = got.iter().map(|c| c.tag_name().name()).collect();
    if found != names {
        return Err(invalid(format!("{} expects {:?}, got {:?}", m.tag_name().name(), names, found)));
    }
    Ok(got)
}

fn items<'a, 'i>(array: Node<'a, 'i>, member: &str) -> Result<Vec<Node<'a, 'i>>, Fault> {
    let v: Vec<_> = array.children().filter(|c| c.is_element()).collect();
    if let Some(bad) = v.iter().find(|c| c.tag_name().name() != member) {
        return Err(invalid(format!("{} holds {}, expected {member}", array.tag_name().name(), bad.tag_name().name())));
    }
    Ok(v)
}

fn uint(n: Node<'_, '_>) -> Result<u32, Fault> {
    text(n).trim().parse().map_err(|_| invalid(format!("{} is not an unsignedInt", n.tag_name().name())))
}

fn strings(array: Node<'_, '_>) -> Result<Vec<String>, Fault> {
    Ok(items(array, "string")?.into_iter().map(text).collect())
}

fn param_values(list: Node<'_, '_>) -> Result<Vec<ParameterValue>, Fault> {
    items(list, "ParameterValueStruct")?
        .into_iter()
        .map(|p| {
            let a = args(p, &["Name", "Value"])?;
            let xsd_type = a[1]
                .attribute((XSI, "type"))
                .map(|t| match t.split_once(':') {
                    Some((_, local)) => format!("xsd:{local}"),
                    None => format!("xsd:{t}"),
                })
                .unwrap_or_else(|| "xsd:string".into());
            Ok(ParameterValue { name: text(a[0]), value: text(a[1]), xsd_type })
        })
        .collect()
}

fn decode(m: Node<'_, '_>) -> Result<Body, Fault> {
    let name = m.tag_name().name();
    Ok(match name {
        "GetRPCMethods" => {
            args(m, &[])?;
            Body::GetRPCMethods
        }
        "SetParameterValues" => {
            let a = args(m, &["ParameterList", "ParameterKey"])?;
            Body::SetParameterValues { list: param_values(a[0])?, parameter_key: text(a[1]) }
        }
        "GetParameterValues" => Body::GetParameterValues { names: strings(args(m, &["ParameterNames"])?[0])? },
        "GetParameterNames" => {
            let a = args(m, &["ParameterPath", "NextLevel"])?;
            let next_level = boolean(&text(a[1])).ok_or_else(|| invalid("NextLevel is not a boolean"))?;
            Body::GetParameterNames { path: text(a[0]), next_level }
        }
        "SetParameterAttributes" => {
            let a = args(m, &["ParameterList"])?;
            let list = items(a[0], "SetParameterAttributesStruct")?
                .into_iter()
                .map(|s| {
                    let f = args(s, &["Name", "NotificationChange", "Notification", "AccessListChange", "AccessList"])?;
                    let b = |n: Node<'_, '_>| boolean(&text(n)).ok_or_else(|| invalid(format!("{} is not a boolean", n.tag_name().name())));
                    let notification = uint(f[2])?;
                    if notification > 2 {
                        return Err(invalid("Notification must be 0, 1 or 2"));
                    }
                    Ok(SetAttributes {
                        name: text(f[0]),
                        notification_change: b(f[1])?,
                        notification: notification as u8,
                        access_list_change: b(f[3])?,
                        access_list: strings(f[4])?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Body::SetParameterAttributes { list }
        }
        "GetParameterAttributes" => Body::GetParameterAttributes { names: strings(args(m, &["ParameterNames"])?[0])? },
        "AddObject" | "DeleteObject" => {
            let a = args(m, &["ObjectName", "ParameterKey"])?;
            let (object_name, parameter_key) = (text(a[0]), text(a[1]));
            if name == "AddObject" {
                Body::AddObject { object_name, parameter_key }
            } else {
                Body::DeleteObject { object_name, parameter_key }
            }
        }
        "InformResponse" => Body::InformResponse { max_envelopes: uint(args(m, &["MaxEnvelopes"])?[0])? },
        other => return Err(Fault::new(9000, format!("Method not supported: {other}"))),
    })
}

/// Decode every envelope in an HTTP body (3.4: several may be sent in one).
/// An empty body (the empty POST / empty response of 3.4) gives no envelopes.
pub fn parse(http_body: &str) -> Result<Vec<Envelope>, CodecError> {
    if http_body.trim().is_empty() {
        return Ok(Vec::new());
    }
    // Several top-level envelopes are not one XML document: drop XML
    // declarations and parse them under a synthetic root.
    let mut body = String::with_capacity(http_body.len() + 16);
    let mut rest = http_body;
    while let Some(i) = rest.find("<?xml") {
        body.push_str(&rest[..i]);
        let end = rest[i..].find("?>").ok_or_else(|| err("unterminated XML declaration"))?;
        rest = &rest[i + end + 2..];
    }
    body.push_str(rest);
    let wrapped = format!("<cpekit-envelopes>{body}</cpekit-envelopes>");
    let doc = roxmltree::Document::parse(&wrapped).map_err(|e| err(e.to_string()))?;
    let mut out = Vec::new();
    for env in doc.root_element().children().filter(|c| c.is_element()) {
        if !is(env, SOAP_ENV, "Envelope") {
            return Err(err(format!("expected a SOAP 1.1 Envelope, found {}", env.tag_name().name())));
        }
        let mut e = Envelope { id: None, hold_requests: false, no_more_requests: false, body: Err(invalid("empty")) };
        if let Some(h) = env.children().find(|c| is(*c, SOAP_ENV, "Header")) {
            for f in h.children().filter(|c| c.is_element() && c.tag_name().namespace() == Some(CWMP)) {
                match f.tag_name().name() {
                    "ID" => e.id = Some(text(f)),
                    "HoldRequests" => e.hold_requests = boolean(&text(f)).unwrap_or(false),
                    "NoMoreRequests" => e.no_more_requests = boolean(&text(f)).unwrap_or(false),
                    _ => {}
                }
            }
        }
        let b = env.children().find(|c| is(*c, SOAP_ENV, "Body")).ok_or_else(|| err("Envelope without Body"))?;
        let mut calls = b.children().filter(|c| c.is_element());
        e.body = match (calls.next(), calls.next()) {
            (None, _) => Err(invalid("empty Body")),
            (Some(_), Some(_)) => Err(invalid("more than one element in Body")),
            (Some(m), None) if is(m, SOAP_ENV, "Fault") => Ok(Body::Fault(decode_fault(m))),
            (Some(m), None) if m.tag_name().namespace() == Some(CWMP) => decode(m),
            (Some(m), None) => Err(Fault::new(9000, format!("Method not supported: {}", m.tag_name().name()))),
        };
        out.push(e);
    }
    Ok(out)
}

fn decode_fault(f: Node<'_, '_>) -> Fault {
    let detail = f
        .descendants()
        .find(|d| is(*d, CWMP, "Fault"))
        .map(|c| {
            let get = |n: &str| c.children().find(|x| x.is_element() && x.tag_name().name() == n).map(text).unwrap_or_default();
            let spv = c
                .children()
                .filter(|x| x.is_element() && x.tag_name().name() == "SetParameterValuesFault")
                .map(|s| {
                    let g = |n: &str| s.children().find(|x| x.is_element() && x.tag_name().name() == n).map(text).unwrap_or_default();
                    SetParameterValuesFault { name: g("ParameterName"), code: g("FaultCode").trim().parse().unwrap_or(0), string: g("FaultString") }
                })
                .collect();
            Fault { code: get("FaultCode").trim().parse().unwrap_or(0), string: get("FaultString"), set_parameter_values: spv }
        });
    detail.unwrap_or_else(|| Fault::new(0, "SOAP Fault without a cwmp:Fault detail"))
}

fn array_type(ty: &str, n: usize) -> String {
    format!("{ty}[{n}]")
}

fn write_values(w: &mut W, list: &[ParameterValue]) {
    w.open_attrs("ParameterList", &[("soapenc:arrayType", &array_type("cwmp:ParameterValueStruct", list.len()))]);
    for p in list {
        w.open("ParameterValueStruct").leaf("Name", &p.name).leaf_attrs("Value", &[("xsi:type", &p.xsd_type)], &p.value);
        w.close("ParameterValueStruct");
    }
    w.close("ParameterList");
}

fn write_strings(w: &mut W, tag: &str, list: &[String]) {
    w.open_attrs(tag, &[("soapenc:arrayType", &array_type("xsd:string", list.len()))]);
    for s in list {
        w.leaf("string", s);
    }
    w.close(tag);
}

/// The body element of a message (for schema validation and for [`to_xml`]).
pub fn body_xml(body: &Body) -> String {
    let mut w = W::default();
    let m = format!("cwmp:{}", body.method());
    match body {
        Body::Fault(f) => {
            w.open("soap:Fault").leaf("faultcode", &format!("soap:{}", f.soap_faultcode())).leaf("faultstring", "CWMP fault");
            w.open("detail").open("cwmp:Fault").leaf("FaultCode", &f.code.to_string()).leaf("FaultString", &f.string);
            for p in &f.set_parameter_values {
                w.open("SetParameterValuesFault").leaf("ParameterName", &p.name).leaf("FaultCode", &p.code.to_string()).leaf("FaultString", &p.string);
                w.close("SetParameterValuesFault");
            }
            w.close("cwmp:Fault").close("detail").close("soap:Fault");
            return w.out;
        }
        _ => {
            w.open(&m);
        }
    }
    match body {
        Body::GetRPCMethods | Body::SetParameterAttributesResponse | Body::Fault(_) => {}
        Body::SetParameterValues { list, parameter_key } => {
            write_values(&mut w, list);
            w.leaf("ParameterKey", parameter_key);
        }
        Body::GetParameterValues { names } | Body::GetParameterAttributes { names } => write_strings(&mut w, "ParameterNames", names),
        Body::GetParameterNames { path, next_level } => {
            w.leaf("ParameterPath", path).leaf("NextLevel", if *next_level { "1" } else { "0" });
        }
        Body::SetParameterAttributes { list } => {
            w.open_attrs("ParameterList", &[("soapenc:arrayType", &array_type("cwmp:SetParameterAttributesStruct", list.len()))]);
            for s in list {
                w.open("SetParameterAttributesStruct").leaf("Name", &s.name);
                w.leaf("NotificationChange", if s.notification_change { "1" } else { "0" });
                w.leaf("Notification", &s.notification.to_string());
                w.leaf("AccessListChange", if s.access_list_change { "1" } else { "0" });
                write_strings(&mut w, "AccessList", &s.access_list);
                w.close("SetParameterAttributesStruct");
            }
            w.close("ParameterList");
        }
        Body::AddObject { object_name, parameter_key } | Body::DeleteObject { object_name, parameter_key } => {
            w.leaf("ObjectName", object_name).leaf("ParameterKey", parameter_key);
        }
        Body::GetRPCMethodsResponse { methods } => write_strings(&mut w, "MethodList", methods),
        Body::SetParameterValuesResponse { status } | Body::DeleteObjectResponse { status } => {
            w.leaf("Status", &status.to_string());
        }
        Body::GetParameterValuesResponse { list } => write_values(&mut w, list),
        Body::GetParameterNamesResponse { list } => {
            w.open_attrs("ParameterList", &[("soapenc:arrayType", &array_type("cwmp:ParameterInfoStruct", list.len()))]);
            for p in list {
                w.open("ParameterInfoStruct").leaf("Name", &p.name).leaf("Writable", if p.writable { "1" } else { "0" });
                w.close("ParameterInfoStruct");
            }
            w.close("ParameterList");
        }
        Body::GetParameterAttributesResponse { list } => {
            w.open_attrs("ParameterList", &[("soapenc:arrayType", &array_type("cwmp:ParameterAttributeStruct", list.len()))]);
            for p in list {
                w.open("ParameterAttributeStruct").leaf("Name", &p.name).leaf("Notification", &p.notification.to_string());
                write_strings(&mut w, "AccessList", &p.access_list);
                w.close("ParameterAttributeStruct");
            }
            w.close("ParameterList");
        }
        Body::AddObjectResponse { instance_number, status } => {
            w.leaf("InstanceNumber", &instance_number.to_string()).leaf("Status", &status.to_string());
        }
        Body::Inform { device_id, events, max_envelopes, current_time, retry_count, parameters } => {
            w.open("DeviceId").leaf("Manufacturer", &device_id.manufacturer).leaf("OUI", &device_id.oui);
            w.leaf("ProductClass", &device_id.product_class).leaf("SerialNumber", &device_id.serial_number).close("DeviceId");
            w.open_attrs("Event", &[("soapenc:arrayType", &array_type("cwmp:EventStruct", events.len()))]);
            for e in events {
                w.open("EventStruct").leaf("EventCode", &e.code).leaf("CommandKey", &e.command_key).close("EventStruct");
            }
            w.close("Event");
            w.leaf("MaxEnvelopes", &max_envelopes.to_string()).leaf("CurrentTime", current_time).leaf("RetryCount", &retry_count.to_string());
            write_values(&mut w, parameters);
        }
        Body::InformResponse { max_envelopes } => {
            w.leaf("MaxEnvelopes", &max_envelopes.to_string());
        }
    }
    w.close(&m);
    w.out
}

/// A complete envelope as sent on the wire.
pub fn to_xml(id: Option<&str>, no_more_requests: bool, body: &Body) -> String {
    let mut w = W::default();
    w.open_attrs(
        "soap:Envelope",
        &[("xmlns:soap", SOAP_ENV), ("xmlns:soapenc", SOAP_ENC), ("xmlns:xsd", XSD), ("xmlns:xsi", XSI), ("xmlns:cwmp", CWMP)],
    );
    if id.is_some() || no_more_requests {
        w.open("soap:Header");
        if let Some(id) = id {
            w.leaf_attrs("cwmp:ID", &[("soap:mustUnderstand", "1")], id);
        }
        if no_more_requests {
            w.leaf("cwmp:NoMoreRequests", "1");
        }
        w.close("soap:Header");
    }
    w.open("soap:Body");
    w.out.push_str(&body_xml(body));
    w.close("soap:Body").close("soap:Envelope");
    w.out
}

#[cfg(test)]
mod tests;
