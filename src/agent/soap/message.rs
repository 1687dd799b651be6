//! Appendix A message structures (the subset the agent core needs first).

/// A.3.2.1 ParameterValueStruct; `xsd_type` is the `xsi:type` (e.g. `xsd:string`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterValue {
    pub name: String,
    pub value: String,
    pub xsd_type: String,
}

/// A.3.2.3 ParameterInfoStruct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterInfo {
    pub name: String,
    pub writable: bool,
}

/// A.3.2.4 SetParameterAttributesStruct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAttributes {
    pub name: String,
    pub notification_change: bool,
    pub notification: u8,
    pub access_list_change: bool,
    pub access_list: Vec<String>,
}

/// A.3.2.5 ParameterAttributeStruct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterAttribute {
    pub name: String,
    pub notification: u8,
    pub access_list: Vec<String>,
}

/// A.3.3.1 DeviceIdStruct.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceId {
    pub manufacturer: String,
    pub oui: String,
    pub product_class: String,
    pub serial_number: String,
}

/// A.3.3.1 EventStruct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub code: String,
    pub command_key: String,
}

/// One parameter fault inside a SetParameterValues 9003 (3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetParameterValuesFault {
    pub name: String,
    pub code: u32,
    pub string: String,
}

/// The `cwmp:Fault` detail of a SOAP Fault (3.5, A.5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: u32,
    pub string: String,
    pub set_parameter_values: Vec<SetParameterValuesFault>,
}

impl Fault {
    pub fn new(code: u32, string: impl Into<String>) -> Fault {
        Fault { code, string: string.into(), set_parameter_values: Vec::new() }
    }

    /// A.5.1: whether the fault is the requester's (Client) or ours (Server).
    pub fn soap_faultcode(&self) -> &'static str {
        match self.code {
            9003 | 9005..=9008 | 8003 | 8005 => "Client",
            _ => "Server",
        }
    }
}

/// The body of one envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    // ACS → CPE requests (A.3.2).
    GetRPCMethods,
    SetParameterValues { list: Vec<ParameterValue>, parameter_key: String },
    GetParameterValues { names: Vec<String> },
    GetParameterNames { path: String, next_level: bool },
    SetParameterAttributes { list: Vec<SetAttributes> },
    GetParameterAttributes { names: Vec<String> },
    AddObject { object_name: String, parameter_key: String },
    DeleteObject { object_name: String, parameter_key: String },
    // CPE → ACS responses.
    GetRPCMethodsResponse { methods: Vec<String> },
    SetParameterValuesResponse { status: u8 },
    GetParameterValuesResponse { list: Vec<ParameterValue> },
    GetParameterNamesResponse { list: Vec<ParameterInfo> },
    SetParameterAttributesResponse,
    GetParameterAttributesResponse { list: Vec<ParameterAttribute> },
    AddObjectResponse { instance_number: u32, status: u8 },
    DeleteObjectResponse { status: u8 },
    // CPE → ACS request (A.3.3.1) and its response.
    Inform {
        device_id: DeviceId,
        events: Vec<Event>,
        max_envelopes: u32,
        current_time: String,
        retry_count: u32,
        parameters: Vec<ParameterValue>,
    },
    InformResponse { max_envelopes: u32 },
    Fault(Fault),
}

impl Body {
    /// The element name in the body.
    pub fn method(&self) -> &'static str {
        match self {
            Body::GetRPCMethods => "GetRPCMethods",
            Body::SetParameterValues { .. } => "SetParameterValues",
            Body::GetParameterValues { .. } => "GetParameterValues",
            Body::GetParameterNames { .. } => "GetParameterNames",
            Body::SetParameterAttributes { .. } => "SetParameterAttributes",
            Body::GetParameterAttributes { .. } => "GetParameterAttributes",
            Body::AddObject { .. } => "AddObject",
            Body::DeleteObject { .. } => "DeleteObject",
            Body::GetRPCMethodsResponse { .. } => "GetRPCMethodsResponse",
            Body::SetParameterValuesResponse { .. } => "SetParameterValuesResponse",
            Body::GetParameterValuesResponse { .. } => "GetParameterValuesResponse",
            Body::GetParameterNamesResponse { .. } => "GetParameterNamesResponse",
            Body::SetParameterAttributesResponse => "SetParameterAttributesResponse",
            Body::GetParameterAttributesResponse { .. } => "GetParameterAttributesResponse",
            Body::AddObjectResponse { .. } => "AddObjectResponse",
            Body::DeleteObjectResponse { .. } => "DeleteObjectResponse",
            Body::Inform { .. } => "Inform",
            Body::InformResponse { .. } => "InformResponse",
            Body::Fault(_) => "Fault",
        }
    }
}
