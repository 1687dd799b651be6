//! The CWMP 1.0 SOAP codec (3.5, Appendix A), sans-IO: HTTP bodies in,
//! [`Envelope`]s out, and back. Namespace-aware (any prefixes), several
//! envelopes per HTTP body, unknown elements, attributes, comments and PIs
//! ignored. Every message of Appendix A is covered both ways, so the CPE
//! and a test ACS share it. A message that cannot be decoded becomes the
//! fault to answer with: 9000 for an unknown method, 9003 for wrong
//! arguments (A.2.2), 8003 instead when the method is a Server's (A.5.2).
//! Array sizes are taken from the elements present, never from
//! `soapenc:arrayType`.

pub mod message;
#[cfg(any(test, feature = "soap-samples"))]
#[doc(hidden)]
pub mod samples;
mod xml;

pub use message::*;

use roxmltree::Node;
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
    let got: Vec<Node<'a, 'i>> = m.children().filter(|c| c.is_element() && matches!(c.tag_name().namespace(), None | Some(CWMP))).collect();
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

/// `items` with the maximum the schema puts on the array (A.2.1: a bounded
/// array larger than declared is not a valid argument).
fn items_max<'a, 'i>(array: Node<'a, 'i>, member: &str, max: usize) -> Result<Vec<Node<'a, 'i>>, Fault> {
    let v = items(array, member)?;
    if v.len() > max {
        return Err(invalid(format!("{} holds {} entries, at most {max} allowed", array.tag_name().name(), v.len())));
    }
    Ok(v)
}

fn boolean_arg(n: Node<'_, '_>) -> Result<bool, Fault> {
    boolean(&text(n)).ok_or_else(|| invalid(format!("{} is not a boolean", n.tag_name().name())))
}

/// An int/unsignedInt argument restricted to `lo..=hi` (A.2.1 `int[Min:Max]`).
fn ranged(n: Node<'_, '_>, lo: u8, hi: u8) -> Result<u8, Fault> {
    let v: i64 = text(n).trim().parse().map_err(|_| invalid(format!("{} is not an integer", n.tag_name().name())))?;
    if v < i64::from(lo) || v > i64::from(hi) {
        return Err(invalid(format!("{} must be in {lo}..{hi}, got {v}", n.tag_name().name())));
    }
    Ok(v as u8)
}

/// A.2.1 dateTime: the SOAP (XML Schema) lexical form
/// `[-]YYYY-MM-DDThh:mm:ss[.s+][Z|(+|-)hh:mm]`. Field ranges are not
/// checked: A.2.1 itself uses `0000-00-02T03:04:05` for time since boot.
pub fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let year = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    if year < 4 {
        return false;
    }
    i += year;
    // D = digit, anything else literal.
    let fixed = |i: usize, pat: &[u8]| -> bool {
        b.len() >= i + pat.len() && pat.iter().zip(&b[i..]).all(|(p, c)| if *p == b'D' { c.is_ascii_digit() } else { p == c })
    };
    if !fixed(i, b"-DD-DDTDD:DD:DD") {
        return false;
    }
    i += 15;
    if b.get(i) == Some(&b'.') {
        let frac = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if frac == 0 {
            return false;
        }
        i += 1 + frac;
    }
    match b.get(i) {
        None => true,
        Some(b'Z') => i + 1 == b.len(),
        Some(b'+' | b'-') => fixed(i + 1, b"DD:DD") && i + 6 == b.len(),
        _ => false,
    }
}

fn date_time(n: Node<'_, '_>) -> Result<String, Fault> {
    let s = text(n);
    let t = s.trim();
    if is_date_time(t) {
        Ok(t.to_string())
    } else {
        Err(invalid(format!("{} is not a dateTime: {t:?}", n.tag_name().name())))
    }
}

/// A.4.1.3: a base64[] array; whitespace (line breaks) inside a value is
/// not significant.
fn vouchers(list: Node<'_, '_>) -> Result<Vec<Vec<u8>>, Fault> {
    use base64::Engine;
    items(list, "base64")?
        .into_iter()
        .map(|v| {
            let t: String = text(v).chars().filter(|c| !c.is_ascii_whitespace()).collect();
            base64::engine::general_purpose::STANDARD.decode(t).map_err(|e| invalid(format!("VoucherList entry is not base64: {e}")))
        })
        .collect()
}

fn device_id(n: Node<'_, '_>) -> Result<DeviceId, Fault> {
    let a = args(n, &["Manufacturer", "OUI", "ProductClass", "SerialNumber"])?;
    Ok(DeviceId { manufacturer: text(a[0]), oui: text(a[1]), product_class: text(a[2]), serial_number: text(a[3]) })
}

fn option_struct(o: Node<'_, '_>) -> Result<OptionStruct, Fault> {
    // Table 48 / schema: ExpirationDate is the one optional member.
    const WITH: [&str; 7] = ["OptionName", "VoucherSN", "State", "Mode", "StartDate", "ExpirationDate", "IsTransferable"];
    const WITHOUT: [&str; 6] = ["OptionName", "VoucherSN", "State", "Mode", "StartDate", "IsTransferable"];
    let f = args(o, &WITH).or_else(|_| args(o, &WITHOUT))?;
    let expiration_date = if f.len() == WITH.len() { Some(date_time(f[5])?) } else { None };
    let transferable = f[f.len() - 1];
    Ok(OptionStruct {
        option_name: text(f[0]),
        voucher_sn: uint(f[1])?,
        state: ranged(f[2], 0, 3)?,
        mode: ranged(f[3], 0, 2)?,
        start_date: date_time(f[4])?,
        expiration_date,
        // Table 48 calls it boolean, the schema int 0|1: accept both.
        is_transferable: boolean_arg(transferable)?,
    })
}

/// Status, StartTime, CompleteTime of DownloadResponse (Table 28) and
/// UploadResponse (Table 50).
fn transfer_result(m: Node<'_, '_>) -> Result<(u8, String, String), Fault> {
    let a = args(m, &["Status", "StartTime", "CompleteTime"])?;
    Ok((ranged(a[0], 0, 1)?, date_time(a[1])?, date_time(a[2])?))
}

fn decode(m: Node<'_, '_>) -> Result<Body, Fault> {
    let name = m.tag_name().name();
    decode_args(m, name).map_err(|f| {
        // A.5.2: a Server reports invalid arguments as 8003.
        if f.code == 9003 && Body::is_server_method(name) {
            Fault { code: 8003, ..f }
        } else {
            f
        }
    })
}

fn decode_args(m: Node<'_, '_>, name: &str) -> Result<Body, Fault> {
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
            Body::GetParameterNames { path: text(a[0]), next_level: boolean_arg(a[1])? }
        }
        "SetParameterAttributes" => {
            let a = args(m, &["ParameterList"])?;
            let list = items(a[0], "SetParameterAttributesStruct")?
                .into_iter()
                .map(|s| {
                    let f = args(s, &["Name", "NotificationChange", "Notification", "AccessListChange", "AccessList"])?;
                    Ok(SetAttributes {
                        name: text(f[0]),
                        notification_change: boolean_arg(f[1])?,
                        notification: ranged(f[2], 0, 2)?,
                        access_list_change: boolean_arg(f[3])?,
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
        "Download" => {
            let a =
                args(m, &["CommandKey", "FileType", "URL", "Username", "Password", "FileSize", "TargetFileName", "DelaySeconds", "SuccessURL", "FailureURL"])?;
            Body::Download(DownloadArgs {
                command_key: text(a[0]),
                file_type: text(a[1]),
                url: text(a[2]),
                username: text(a[3]),
                password: text(a[4]),
                file_size: uint(a[5])?,
                target_file_name: text(a[6]),
                delay_seconds: uint(a[7])?,
                success_url: text(a[8]),
                failure_url: text(a[9]),
            })
        }
        "Reboot" => Body::Reboot { command_key: text(args(m, &["CommandKey"])?[0]) },
        "GetQueuedTransfers" => {
            args(m, &[])?;
            Body::GetQueuedTransfers
        }
        "ScheduleInform" => {
            let a = args(m, &["DelaySeconds", "CommandKey"])?;
            Body::ScheduleInform { delay_seconds: uint(a[0])?, command_key: text(a[1]) }
        }
        "SetVouchers" => Body::SetVouchers { vouchers: vouchers(args(m, &["VoucherList"])?[0])? },
        "GetOptions" => Body::GetOptions { option_name: text(args(m, &["OptionName"])?[0]) },
        "Upload" => {
            let a = args(m, &["CommandKey", "FileType", "URL", "Username", "Password", "DelaySeconds"])?;
            Body::Upload(UploadArgs {
                command_key: text(a[0]),
                file_type: text(a[1]),
                url: text(a[2]),
                username: text(a[3]),
                password: text(a[4]),
                delay_seconds: uint(a[5])?,
            })
        }
        "FactoryReset" => {
            args(m, &[])?;
            Body::FactoryReset
        }
        "GetRPCMethodsResponse" => Body::GetRPCMethodsResponse { methods: strings(args(m, &["MethodList"])?[0])? },
        "SetParameterValuesResponse" => Body::SetParameterValuesResponse { status: ranged(args(m, &["Status"])?[0], 0, 1)? },
        "GetParameterValuesResponse" => Body::GetParameterValuesResponse { list: param_values(args(m, &["ParameterList"])?[0])? },
        "GetParameterNamesResponse" => {
            let list = items(args(m, &["ParameterList"])?[0], "ParameterInfoStruct")?
                .into_iter()
                .map(|p| {
                    let f = args(p, &["Name", "Writable"])?;
                    Ok(ParameterInfo { name: text(f[0]), writable: boolean_arg(f[1])? })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Body::GetParameterNamesResponse { list }
        }
        "SetParameterAttributesResponse" => {
            args(m, &[])?;
            Body::SetParameterAttributesResponse
        }
        "GetParameterAttributesResponse" => {
            let list = items(args(m, &["ParameterList"])?[0], "ParameterAttributeStruct")?
                .into_iter()
                .map(|p| {
                    let f = args(p, &["Name", "Notification", "AccessList"])?;
                    Ok(ParameterAttribute { name: text(f[0]), notification: ranged(f[1], 0, 2)?, access_list: strings(f[2])? })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Body::GetParameterAttributesResponse { list }
        }
        "AddObjectResponse" => {
            let a = args(m, &["InstanceNumber", "Status"])?;
            let instance_number = uint(a[0])?;
            // Schema: InstanceNumber is unsignedInt with minInclusive 1.
            if instance_number == 0 {
                return Err(invalid("InstanceNumber must be at least 1"));
            }
            Body::AddObjectResponse { instance_number, status: ranged(a[1], 0, 1)? }
        }
        "DeleteObjectResponse" => Body::DeleteObjectResponse { status: ranged(args(m, &["Status"])?[0], 0, 1)? },
        "DownloadResponse" => {
            let (status, start_time, complete_time) = transfer_result(m)?;
            Body::DownloadResponse { status, start_time, complete_time }
        }
        "RebootResponse" => {
            args(m, &[])?;
            Body::RebootResponse
        }
        "GetQueuedTransfersResponse" => {
            // A.4.1.1 Table 40: QueuedTransferStruct[16].
            let transfers = items_max(args(m, &["TransferList"])?[0], "QueuedTransferStruct", 16)?
                .into_iter()
                .map(|t| {
                    let f = args(t, &["CommandKey", "State"])?;
                    Ok(QueuedTransfer { command_key: text(f[0]), state: ranged(f[1], 1, 3)? })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Body::GetQueuedTransfersResponse { transfers }
        }
        "ScheduleInformResponse" => {
            args(m, &[])?;
            Body::ScheduleInformResponse
        }
        "SetVouchersResponse" => {
            args(m, &[])?;
            Body::SetVouchersResponse
        }
        "GetOptionsResponse" => {
            let options = items(args(m, &["OptionList"])?[0], "OptionStruct")?.into_iter().map(option_struct).collect::<Result<Vec<_>, _>>()?;
            Body::GetOptionsResponse { options }
        }
        "UploadResponse" => {
            let (status, start_time, complete_time) = transfer_result(m)?;
            Body::UploadResponse { status, start_time, complete_time }
        }
        "FactoryResetResponse" => {
            args(m, &[])?;
            Body::FactoryResetResponse
        }
        "Inform" => {
            let a = args(m, &["DeviceId", "Event", "MaxEnvelopes", "CurrentTime", "RetryCount", "ParameterList"])?;
            // A.3.3.1 / schema: EventStruct[64].
            let events = items_max(a[1], "EventStruct", 64)?
                .into_iter()
                .map(|e| {
                    let f = args(e, &["EventCode", "CommandKey"])?;
                    Ok(Event { code: text(f[0]), command_key: text(f[1]) })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Body::Inform {
                device_id: device_id(a[0])?,
                events,
                max_envelopes: uint(a[2])?,
                current_time: date_time(a[3])?,
                retry_count: uint(a[4])?,
                parameters: param_values(a[5])?,
            }
        }
        "InformResponse" => Body::InformResponse { max_envelopes: uint(args(m, &["MaxEnvelopes"])?[0])? },
        "TransferComplete" => {
            let a = args(m, &["CommandKey", "FaultStruct", "StartTime", "CompleteTime"])?;
            let f = args(a[1], &["FaultCode", "FaultString"])?;
            Body::TransferComplete {
                command_key: text(a[0]),
                fault: TransferFault { code: uint(f[0])?, string: text(f[1]) },
                start_time: date_time(a[2])?,
                complete_time: date_time(a[3])?,
            }
        }
        "TransferCompleteResponse" => {
            args(m, &[])?;
            Body::TransferCompleteResponse
        }
        "Kicked" => {
            let a = args(m, &["Command", "Referer", "Arg", "Next"])?;
            Body::Kicked { command: text(a[0]), referer: text(a[1]), arg: text(a[2]), next: text(a[3]) }
        }
        "KickedResponse" => Body::KickedResponse { next_url: text(args(m, &["NextURL"])?[0]) },
        "RequestDownload" => {
            let a = args(m, &["FileType", "FileTypeArg"])?;
            // A.4.2.2 Table 55: ArgStruct[16].
            let list = items_max(a[1], "ArgStruct", 16)?
                .into_iter()
                .map(|x| {
                    let f = args(x, &["Name", "Value"])?;
                    Ok(Arg { name: text(f[0]), value: text(f[1]) })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Body::RequestDownload { file_type: text(a[0]), args: list }
        }
        "RequestDownloadResponse" => {
            args(m, &[])?;
            Body::RequestDownloadResponse
        }
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
    xml::LIMITS.check(body.as_bytes()).map_err(|e| err(e.to_string()))?;
    let wrapped = format!("<cpekit-envelopes>{body}</cpekit-envelopes>");
    let doc = roxmltree::Document::parse(&wrapped).map_err(|e| err(e.to_string()))?;
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

/// A.2.1: booleans are sent as 1 / 0.
fn bit(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
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
        Body::GetRPCMethods
        | Body::GetQueuedTransfers
        | Body::FactoryReset
        | Body::SetParameterAttributesResponse
        | Body::RebootResponse
        | Body::ScheduleInformResponse
        | Body::SetVouchersResponse
        | Body::FactoryResetResponse
        | Body::TransferCompleteResponse
        | Body::RequestDownloadResponse
        | Body::Fault(_) => {}
        Body::SetParameterValues { list, parameter_key } => {
            write_values(&mut w, list);
            w.leaf("ParameterKey", parameter_key);
        }
        Body::GetParameterValues { names } | Body::GetParameterAttributes { names } => write_strings(&mut w, "ParameterNames", names),
        Body::GetParameterNames { path, next_level } => {
            w.leaf("ParameterPath", path).leaf("NextLevel", bit(*next_level));
        }
        Body::SetParameterAttributes { list } => {
            w.open_attrs("ParameterList", &[("soapenc:arrayType", &array_type("cwmp:SetParameterAttributesStruct", list.len()))]);
            for s in list {
                w.open("SetParameterAttributesStruct").leaf("Name", &s.name);
                w.leaf("NotificationChange", bit(s.notification_change));
                w.leaf("Notification", &s.notification.to_string());
                w.leaf("AccessListChange", bit(s.access_list_change));
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
                w.open("ParameterInfoStruct").leaf("Name", &p.name).leaf("Writable", bit(p.writable));
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
        Body::Download(d) => {
            w.leaf("CommandKey", &d.command_key).leaf("FileType", &d.file_type).leaf("URL", &d.url);
            w.leaf("Username", &d.username).leaf("Password", &d.password).leaf("FileSize", &d.file_size.to_string());
            w.leaf("TargetFileName", &d.target_file_name).leaf("DelaySeconds", &d.delay_seconds.to_string());
            w.leaf("SuccessURL", &d.success_url).leaf("FailureURL", &d.failure_url);
        }
        Body::Upload(u) => {
            w.leaf("CommandKey", &u.command_key).leaf("FileType", &u.file_type).leaf("URL", &u.url);
            w.leaf("Username", &u.username).leaf("Password", &u.password).leaf("DelaySeconds", &u.delay_seconds.to_string());
        }
        Body::Reboot { command_key } => {
            w.leaf("CommandKey", command_key);
        }
        Body::ScheduleInform { delay_seconds, command_key } => {
            w.leaf("DelaySeconds", &delay_seconds.to_string()).leaf("CommandKey", command_key);
        }
        Body::SetVouchers { vouchers } => {
            use base64::Engine;
            w.open_attrs("VoucherList", &[("soapenc:arrayType", &array_type("soapenc:base64", vouchers.len()))]);
            for v in vouchers {
                w.leaf("base64", &base64::engine::general_purpose::STANDARD.encode(v));
            }
            w.close("VoucherList");
        }
        Body::GetOptions { option_name } => {
            w.leaf("OptionName", option_name);
        }
        Body::DownloadResponse { status, start_time, complete_time } | Body::UploadResponse { status, start_time, complete_time } => {
            w.leaf("Status", &status.to_string()).leaf("StartTime", start_time).leaf("CompleteTime", complete_time);
        }
        Body::GetQueuedTransfersResponse { transfers } => {
            w.open_attrs("TransferList", &[("soapenc:arrayType", &array_type("cwmp:QueuedTransferStruct", transfers.len()))]);
            for t in transfers {
                w.open("QueuedTransferStruct").leaf("CommandKey", &t.command_key).leaf("State", &t.state.to_string());
                w.close("QueuedTransferStruct");
            }
            w.close("TransferList");
        }
        Body::GetOptionsResponse { options } => {
            w.open_attrs("OptionList", &[("soapenc:arrayType", &array_type("cwmp:OptionStruct", options.len()))]);
            for o in options {
                w.open("OptionStruct").leaf("OptionName", &o.option_name).leaf("VoucherSN", &o.voucher_sn.to_string());
                w.leaf("State", &o.state.to_string()).leaf("Mode", &o.mode.to_string()).leaf("StartDate", &o.start_date);
                if let Some(e) = &o.expiration_date {
                    w.leaf("ExpirationDate", e);
                }
                w.leaf("IsTransferable", bit(o.is_transferable)).close("OptionStruct");
            }
            w.close("OptionList");
        }
        Body::TransferComplete { command_key, fault, start_time, complete_time } => {
            w.leaf("CommandKey", command_key);
            w.open("FaultStruct").leaf("FaultCode", &fault.code.to_string()).leaf("FaultString", &fault.string).close("FaultStruct");
            w.leaf("StartTime", start_time).leaf("CompleteTime", complete_time);
        }
        Body::Kicked { command, referer, arg, next } => {
            w.leaf("Command", command).leaf("Referer", referer).leaf("Arg", arg).leaf("Next", next);
        }
        Body::KickedResponse { next_url } => {
            w.leaf("NextURL", next_url);
        }
        Body::RequestDownload { file_type, args } => {
            w.leaf("FileType", file_type);
            w.open_attrs("FileTypeArg", &[("soapenc:arrayType", &array_type("cwmp:ArgStruct", args.len()))]);
            for a in args {
                w.open("ArgStruct").leaf("Name", &a.name).leaf("Value", &a.value).close("ArgStruct");
            }
            w.close("FileTypeArg");
        }
    }
    w.close(&m);
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
