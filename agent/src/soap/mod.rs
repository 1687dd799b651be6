//! The CWMP 1.0 SOAP codec (3.5, Appendix A), sans-IO: HTTP bodies in,
//! [`Envelope`]s out, and back. Namespace-aware (any prefixes), several
//! envelopes per HTTP body, unknown elements, attributes, comments and PIs
//! ignored. Every message of Appendix A is covered both ways, so the CPE
//! and a test ACS share it; each is described once ([`message`]: its
//! arguments' element names, order and A.2.1 types), and that description
//! drives both directions. A message that cannot be decoded becomes the
//! fault to answer with: 9000 for an unknown method, 9003 for wrong
//! arguments (A.2.2), 8003 instead when the method is a Server's (A.5.2).
//! Array sizes are taken from the elements present, never from
//! `soapenc:arrayType`.

pub mod message;
#[cfg(any(test, feature = "soap-samples"))]
#[doc(hidden)]
pub mod samples;
mod types;
mod xml;

pub use message::*;
pub use types::is_date_time;

use roxmltree::Node;
use types::{boolean, invalid, text};
use xml::W;

pub const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const SOAP_ENC: &str = "http://schemas.xmlsoap.org/soap/encoding/";
pub const XSD: &str = "http://www.w3.org/2001/XMLSchema";
pub const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";
pub const CWMP: &str = "urn:dslforum-org:cwmp-1-0";

/// One SOAP envelope: header fields (3.5) and body. An empty Body element
/// (3.5 lets an ACS send one just to carry HoldRequests) sets `empty_body`;
/// `body` then holds a 9003 fault for callers that expect a method.
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
    /// The Body element was empty: nothing to answer.
    pub empty_body: bool,
}

/// The HTTP body is not SOAP at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SOAP message: {0}")]
pub struct CodecError(pub String);

fn err(s: impl Into<String>) -> CodecError {
    CodecError(s.into())
}

fn is(n: Node<'_, '_>, ns: &str, name: &str) -> bool {
    n.is_element() && n.tag_name().name() == name && n.tag_name().namespace() == Some(ns)
}

/// A method element in the CWMP namespace: its message, or the fault to
/// answer with.
fn decode(m: Node<'_, '_>) -> Result<Body, Fault> {
    Body::decode_arguments(m).map_err(|f| {
        // A.5.2: a Server reports invalid arguments as 8003.
        if f.code == 9003 && Body::is_server_method(m.tag_name().name()) {
            Fault { code: 8003, ..f }
        } else {
            f
        }
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
    xml::LIMITS.check(body.as_bytes()).map_err(|e| err(e.to_string()))?;
    let wrapped = format!("<cpekit-envelopes>{body}</cpekit-envelopes>");
    let doc = document(&wrapped)?;
    let mut out = Vec::new();
    for env in doc.root_element().children().filter(|c| c.is_element()) {
        if !is(env, SOAP_ENV, "Envelope") {
            return Err(err(format!("expected a SOAP 1.1 Envelope, found {}", env.tag_name().name())));
        }
        let mut e = Envelope { id: None, hold_requests: false, no_more_requests: false, body: Err(invalid("empty")), empty_body: false };
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
        e.empty_body = b.children().all(|c| !c.is_element());
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

/// The one place where XML text becomes a tree: bounds on the document
/// itself (depth, attributes, size) belong here, before the tree is built.
fn document(xml: &str) -> Result<roxmltree::Document<'_>, CodecError> {
    roxmltree::Document::parse(xml).map_err(|e| err(e.to_string()))
}

fn decode_fault(f: Node<'_, '_>) -> Fault {
    let detail = f.descendants().find(|d| is(*d, CWMP, "Fault")).map(|c| {
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

/// The body element of a message (for schema validation and for [`to_xml`]).
pub fn body_xml(body: &Body) -> String {
    let mut w = W::default();
    match body {
        Body::Fault(f) => {
            w.open("soap:Fault").leaf("faultcode", &format!("soap:{}", f.soap_faultcode())).leaf("faultstring", "CWMP fault");
            w.open("detail").open("cwmp:Fault").leaf("FaultCode", &f.code.to_string()).leaf("FaultString", &f.string);
            for p in &f.set_parameter_values {
                w.open("SetParameterValuesFault").leaf("ParameterName", &p.name).leaf("FaultCode", &p.code.to_string()).leaf("FaultString", &p.string);
                w.close("SetParameterValuesFault");
            }
            w.close("cwmp:Fault").close("detail").close("soap:Fault");
        }
        _ => {
            let m = format!("cwmp:{}", body.method());
            w.open(&m);
            body.encode_arguments(&mut w);
            w.close(&m);
        }
    }
    w.out
}

/// The CWMP header fields of one envelope (3.5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// `cwmp:ID`, sent with mustUnderstand=1.
    pub id: Option<String>,
    /// `cwmp:HoldRequests` (ACS → CPE only), sent with mustUnderstand=1.
    pub hold_requests: bool,
    /// `cwmp:NoMoreRequests`.
    pub no_more_requests: bool,
}

impl Envelope {
    /// The header fields received with this envelope.
    pub fn header(&self) -> Header {
        Header { id: self.id.clone(), hold_requests: self.hold_requests, no_more_requests: self.no_more_requests }
    }
}

/// A complete envelope as sent on the wire.
pub fn to_xml(id: Option<&str>, no_more_requests: bool, body: &Body) -> String {
    to_xml_with(&Header { id: id.map(str::to_string), hold_requests: false, no_more_requests }, body)
}

/// A complete envelope with every header field; a false flag is left out
/// (3.5: absent means false).
pub fn to_xml_with(header: &Header, body: &Body) -> String {
    let mut w = W::default();
    w.open_attrs("soap:Envelope", &[("xmlns:soap", SOAP_ENV), ("xmlns:soapenc", SOAP_ENC), ("xmlns:xsd", XSD), ("xmlns:xsi", XSI), ("xmlns:cwmp", CWMP)]);
    if header.id.is_some() || header.hold_requests || header.no_more_requests {
        w.open("soap:Header");
        if let Some(id) = &header.id {
            w.leaf_attrs("cwmp:ID", &[("soap:mustUnderstand", "1")], id);
        }
        if header.hold_requests {
            w.leaf_attrs("cwmp:HoldRequests", &[("soap:mustUnderstand", "1")], "1");
        }
        if header.no_more_requests {
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
