//! Appendix A message structures: every CWMP 1.0 RPC of A.3 and A.4, its
//! response, and the SOAP Fault detail of A.5. Dates are kept as the
//! xsd:dateTime strings of the wire (A.2.1 allows time since boot, e.g.
//! `0000-00-02T03:04:05`, which no date type would hold).

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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    pub code: String,
    pub command_key: String,
}

/// A.3.2.8 Table 27: Download arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DownloadArgs {
    pub command_key: String,
    pub file_type: String,
    pub url: String,
    pub username: String,
    pub password: String,
    pub file_size: u32,
    pub target_file_name: String,
    pub delay_seconds: u32,
    pub success_url: String,
    pub failure_url: String,
}

/// A.4.1.5 Table 49: Upload arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UploadArgs {
    pub command_key: String,
    pub file_type: String,
    pub url: String,
    pub username: String,
    pub password: String,
    pub delay_seconds: u32,
}

/// A.3.3.2 Table 38 FaultStruct: the outcome of a transfer (code 0 = success).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransferFault {
    pub code: u32,
    pub string: String,
}

/// A.4.1.1 Table 41 QueuedTransferStruct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedTransfer {
    pub command_key: String,
    /// 1 = not yet started, 2 = in progress, 3 = completed, finishing cleanup.
    pub state: u8,
}

/// A.4.1.4 Table 48 OptionStruct (named so as not to shadow `Option`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionStruct {
    pub option_name: String,
    pub voucher_sn: u32,
    /// Bit 0: enabled; bit 1: set up.
    pub state: u8,
    /// 0 = disabled, 1 = enabled with expiration, 2 = enabled without.
    pub mode: u8,
    pub start_date: String,
    /// Optional in the schema (an option without expiration).
    pub expiration_date: Option<String>,
    pub is_transferable: bool,
}

/// A.4.2.2 Table 57 ArgStruct (RequestDownload FileTypeArg).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub name: String,
    pub value: String,
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
    // A.3.1 / A.3.2 / A.4.1: ACS → CPE requests (GetRPCMethods also CPE → ACS).
    GetRPCMethods,
    SetParameterValues {
        list: Vec<ParameterValue>,
        parameter_key: String,
    },
    GetParameterValues {
        names: Vec<String>,
    },
    GetParameterNames {
        path: String,
        next_level: bool,
    },
    SetParameterAttributes {
        list: Vec<SetAttributes>,
    },
    GetParameterAttributes {
        names: Vec<String>,
    },
    AddObject {
        object_name: String,
        parameter_key: String,
    },
    DeleteObject {
        object_name: String,
        parameter_key: String,
    },
    Download(DownloadArgs),
    Reboot {
        command_key: String,
    },
    GetQueuedTransfers,
    ScheduleInform {
        delay_seconds: u32,
        command_key: String,
    },
    /// A.4.1.3: each voucher as the decoded octets of its base64 element.
    SetVouchers {
        vouchers: Vec<Vec<u8>>,
    },
    GetOptions {
        option_name: String,
    },
    Upload(UploadArgs),
    FactoryReset,
    // Their responses.
    GetRPCMethodsResponse {
        methods: Vec<String>,
    },
    SetParameterValuesResponse {
        status: u8,
    },
    GetParameterValuesResponse {
        list: Vec<ParameterValue>,
    },
    GetParameterNamesResponse {
        list: Vec<ParameterInfo>,
    },
    SetParameterAttributesResponse,
    GetParameterAttributesResponse {
        list: Vec<ParameterAttribute>,
    },
    AddObjectResponse {
        instance_number: u32,
        status: u8,
    },
    DeleteObjectResponse {
        status: u8,
    },
    DownloadResponse {
        status: u8,
        start_time: String,
        complete_time: String,
    },
    RebootResponse,
    GetQueuedTransfersResponse {
        transfers: Vec<QueuedTransfer>,
    },
    ScheduleInformResponse,
    SetVouchersResponse,
    GetOptionsResponse {
        options: Vec<OptionStruct>,
    },
    UploadResponse {
        status: u8,
        start_time: String,
        complete_time: String,
    },
    FactoryResetResponse,
    // A.3.3 / A.4.2: CPE → ACS requests and their responses.
    Inform {
        device_id: DeviceId,
        events: Vec<Event>,
        max_envelopes: u32,
        current_time: String,
        retry_count: u32,
        parameters: Vec<ParameterValue>,
    },
    InformResponse {
        max_envelopes: u32,
    },
    TransferComplete {
        command_key: String,
        fault: TransferFault,
        start_time: String,
        complete_time: String,
    },
    TransferCompleteResponse,
    Kicked {
        command: String,
        referer: String,
        arg: String,
        next: String,
    },
    KickedResponse {
        next_url: String,
    },
    RequestDownload {
        file_type: String,
        args: Vec<Arg>,
    },
    RequestDownloadResponse,
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
            Body::Download(_) => "Download",
            Body::Reboot { .. } => "Reboot",
            Body::GetQueuedTransfers => "GetQueuedTransfers",
            Body::ScheduleInform { .. } => "ScheduleInform",
            Body::SetVouchers { .. } => "SetVouchers",
            Body::GetOptions { .. } => "GetOptions",
            Body::Upload(_) => "Upload",
            Body::FactoryReset => "FactoryReset",
            Body::GetRPCMethodsResponse { .. } => "GetRPCMethodsResponse",
            Body::SetParameterValuesResponse { .. } => "SetParameterValuesResponse",
            Body::GetParameterValuesResponse { .. } => "GetParameterValuesResponse",
            Body::GetParameterNamesResponse { .. } => "GetParameterNamesResponse",
            Body::SetParameterAttributesResponse => "SetParameterAttributesResponse",
            Body::GetParameterAttributesResponse { .. } => "GetParameterAttributesResponse",
            Body::AddObjectResponse { .. } => "AddObjectResponse",
            Body::DeleteObjectResponse { .. } => "DeleteObjectResponse",
            Body::DownloadResponse { .. } => "DownloadResponse",
            Body::RebootResponse => "RebootResponse",
            Body::GetQueuedTransfersResponse { .. } => "GetQueuedTransfersResponse",
            Body::ScheduleInformResponse => "ScheduleInformResponse",
            Body::SetVouchersResponse => "SetVouchersResponse",
            Body::GetOptionsResponse { .. } => "GetOptionsResponse",
            Body::UploadResponse { .. } => "UploadResponse",
            Body::FactoryResetResponse => "FactoryResetResponse",
            Body::Inform { .. } => "Inform",
            Body::InformResponse { .. } => "InformResponse",
            Body::TransferComplete { .. } => "TransferComplete",
            Body::TransferCompleteResponse => "TransferCompleteResponse",
            Body::Kicked { .. } => "Kicked",
            Body::KickedResponse { .. } => "KickedResponse",
            Body::RequestDownload { .. } => "RequestDownload",
            Body::RequestDownloadResponse => "RequestDownloadResponse",
            Body::Fault(_) => "Fault",
        }
    }

    /// Whether this is a request (as opposed to a response or a fault).
    pub fn is_request(&self) -> bool {
        !matches!(self, Body::Fault(_)) && !self.method().ends_with("Response")
    }

    /// A.3.3, A.4.2: methods only a Server implements; a Server answers
    /// their bad arguments with 8003 rather than the CPE's 9003 (A.5.2).
    pub fn is_server_method(name: &str) -> bool {
        matches!(name, "Inform" | "TransferComplete" | "RequestDownload" | "Kicked")
    }
}
