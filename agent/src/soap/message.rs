//! Appendix A messages: every CWMP 1.0 RPC of A.3 and A.4, its response,
//! and the SOAP Fault detail of A.5.
//!
//! This file is the one description of each message: every structure and
//! every method's arguments are declared once, `rust_field: RustType =>
//! ElementName: DataType` in the order of the spec's table, and both the
//! decoder and the encoder are generated from it (see `types.rs`). Dates
//! are kept as the xsd:dateTime strings of the wire (A.2.1 allows time
//! since boot, e.g. `0000-00-02T03:04:05`, which no date type would hold).

use roxmltree::Node;

use super::types::{args, cwmp_messages, cwmp_structs, invalid, text, Array, Base64, Boolean, DataType, DateTime, Int, Optional, Str, UnsignedInt};
use super::xml::W;
use super::XSI;

/// A.3.2.1 Table 11 ParameterValueStruct; `xsd_type` is the `xsi:type` of
/// Value (e.g. `xsd:string`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterValue {
    pub name: String,
    pub value: String,
    pub xsd_type: String,
}

/// Value is of type `any` (A.2.1): the element carries its type as
/// `xsi:type`, kept beside the value (`xsd:string` when absent), so this
/// structure is written out rather than declared with `cwmp_structs!`.
impl DataType for ParameterValue {
    type Value = ParameterValue;
    const TYPE: &'static str = "cwmp:ParameterValueStruct";
    fn decode(n: Node<'_, '_>) -> Result<ParameterValue, Fault> {
        let mut a = args(n, &[("Name", false), ("Value", false)])?.into_iter().flatten();
        let (Some(name), Some(value)) = (a.next(), a.next()) else { return Err(invalid("ParameterValueStruct without Name and Value")) };
        let xsd_type = value
            .attribute((XSI, "type"))
            .map(|t| match t.split_once(':') {
                Some((_, local)) => format!("xsd:{local}"),
                None => format!("xsd:{t}"),
            })
            .unwrap_or_else(|| "xsd:string".into());
        Ok(ParameterValue { name: text(name), value: text(value), xsd_type })
    }
    fn encode(p: &ParameterValue, w: &mut W, tag: &str) {
        w.open(tag).leaf("Name", &p.name).leaf_attrs("Value", &[("xsi:type", &p.xsd_type)], &p.value).close(tag);
    }
}

cwmp_structs! {
    /// A.3.2.3 Table 16 ParameterInfoStruct.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ParameterInfo as ParameterInfoStruct {
        pub name: String => Name: Str,
        pub writable: bool => Writable: Boolean,
    }

    /// A.3.2.4 Table 19 SetParameterAttributesStruct.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SetAttributes as SetParameterAttributesStruct {
        pub name: String => Name: Str,
        pub notification_change: bool => NotificationChange: Boolean,
        pub notification: u8 => Notification: Int<0, 2>,
        pub access_list_change: bool => AccessListChange: Boolean,
        pub access_list: Vec<String> => AccessList: Array<Str>,
    }

    /// A.3.2.5 Table 22 ParameterAttributeStruct.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ParameterAttribute as ParameterAttributeStruct {
        pub name: String => Name: Str,
        pub notification: u8 => Notification: Int<0, 2>,
        pub access_list: Vec<String> => AccessList: Array<Str>,
    }

    /// A.3.3.1 Table 34 DeviceIdStruct.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DeviceId as DeviceIdStruct {
        pub manufacturer: String => Manufacturer: Str,
        pub oui: String => OUI: Str,
        pub product_class: String => ProductClass: Str,
        pub serial_number: String => SerialNumber: Str,
    }

    /// A.3.3.1 Table 35 EventStruct.
    #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
    pub struct Event as EventStruct {
        pub code: String => EventCode: Str,
        pub command_key: String => CommandKey: Str,
    }

    /// A.3.2.8 Table 27: Download arguments.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct DownloadArgs {
        pub command_key: String => CommandKey: Str,
        pub file_type: String => FileType: Str,
        pub url: String => URL: Str,
        pub username: String => Username: Str,
        pub password: String => Password: Str,
        pub file_size: u32 => FileSize: UnsignedInt,
        pub target_file_name: String => TargetFileName: Str,
        pub delay_seconds: u32 => DelaySeconds: UnsignedInt,
        pub success_url: String => SuccessURL: Str,
        pub failure_url: String => FailureURL: Str,
    }

    /// A.4.1.5 Table 49: Upload arguments.
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct UploadArgs {
        pub command_key: String => CommandKey: Str,
        pub file_type: String => FileType: Str,
        pub url: String => URL: Str,
        pub username: String => Username: Str,
        pub password: String => Password: Str,
        pub delay_seconds: u32 => DelaySeconds: UnsignedInt,
    }

    /// A.3.3.2 Table 38 FaultStruct: the outcome of a transfer (code 0 = success).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct TransferFault as FaultStruct {
        pub code: u32 => FaultCode: UnsignedInt,
        pub string: String => FaultString: Str,
    }

    /// A.4.1.1 Table 41 QueuedTransferStruct.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct QueuedTransfer as QueuedTransferStruct {
        pub command_key: String => CommandKey: Str,
        /// 1 = not yet started, 2 = in progress, 3 = completed, finishing cleanup.
        pub state: u8 => State: Int<1, 3>,
    }

    /// A.4.1.4 Table 48 OptionStruct (named so as not to shadow `Option`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OptionStruct as OptionStruct {
        pub option_name: String => OptionName: Str,
        pub voucher_sn: u32 => VoucherSN: UnsignedInt,
        /// Bit 0: enabled; bit 1: set up.
        pub state: u8 => State: Int<0, 3>,
        /// 0 = disabled, 1 = enabled with expiration, 2 = enabled without.
        pub mode: u8 => Mode: Int<0, 2>,
        pub start_date: String => StartDate: DateTime,
        /// Optional in the schema (an option without expiration).
        pub expiration_date: Option<String> => ExpirationDate: Optional<DateTime>,
        /// Table 48 calls it boolean, the schema int 0|1: both are read.
        pub is_transferable: bool => IsTransferable: Boolean,
    }

    /// A.4.2.2 Table 57 ArgStruct (RequestDownload FileTypeArg).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Arg as ArgStruct {
        pub name: String => Name: Str,
        pub value: String => Value: Str,
    }
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

cwmp_messages! {
    /// The body of one envelope: a method call or response of Appendix A,
    /// or a SOAP Fault.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Body {
        // A.3.1, A.3.2, A.4.1: requests to the CPE (GetRPCMethods also CPE → ACS).
        /// A.3.1.1 Table 7.
        GetRPCMethods,
        /// A.3.2.1 Table 9.
        SetParameterValues {
            list: Vec<ParameterValue> => ParameterList: Array<ParameterValue>,
            parameter_key: String => ParameterKey: Str,
        },
        /// A.3.2.2 Table 12.
        GetParameterValues { names: Vec<String> => ParameterNames: Array<Str> },
        /// A.3.2.3 Table 14.
        GetParameterNames {
            path: String => ParameterPath: Str,
            next_level: bool => NextLevel: Boolean,
        },
        /// A.3.2.4 Table 17.
        SetParameterAttributes { list: Vec<SetAttributes> => ParameterList: Array<SetAttributes> },
        /// A.3.2.5 Table 20.
        GetParameterAttributes { names: Vec<String> => ParameterNames: Array<Str> },
        /// A.3.2.6 Table 23.
        AddObject {
            object_name: String => ObjectName: Str,
            parameter_key: String => ParameterKey: Str,
        },
        /// A.3.2.7 Table 25.
        DeleteObject {
            object_name: String => ObjectName: Str,
            parameter_key: String => ParameterKey: Str,
        },
        /// A.3.2.8 Table 27.
        Download(DownloadArgs),
        /// A.3.2.9 Table 29.
        Reboot { command_key: String => CommandKey: Str },
        /// A.4.1.1 Table 39.
        GetQueuedTransfers,
        /// A.4.1.2 Table 42.
        ScheduleInform {
            delay_seconds: u32 => DelaySeconds: UnsignedInt,
            command_key: String => CommandKey: Str,
        },
        /// A.4.1.3 Table 44: each voucher as the decoded octets of its base64 element.
        SetVouchers { vouchers: Vec<Vec<u8>> => VoucherList: Array<Base64> },
        /// A.4.1.4 Table 46.
        GetOptions { option_name: String => OptionName: Str },
        /// A.4.1.5 Table 49.
        Upload(UploadArgs),
        /// A.4.1.6 Table 51.
        FactoryReset,

        // Their responses.
        /// A.3.1.1 Table 8.
        GetRPCMethodsResponse { methods: Vec<String> => MethodList: Array<Str> },
        /// A.3.2.1 Table 10.
        SetParameterValuesResponse { status: u8 => Status: Int<0, 1> },
        /// A.3.2.2 Table 13.
        GetParameterValuesResponse { list: Vec<ParameterValue> => ParameterList: Array<ParameterValue> },
        /// A.3.2.3 Table 15.
        GetParameterNamesResponse { list: Vec<ParameterInfo> => ParameterList: Array<ParameterInfo> },
        /// A.3.2.4 Table 18.
        SetParameterAttributesResponse,
        /// A.3.2.5 Table 21.
        GetParameterAttributesResponse { list: Vec<ParameterAttribute> => ParameterList: Array<ParameterAttribute> },
        /// A.3.2.6 Table 24.
        AddObjectResponse {
            instance_number: u32 => InstanceNumber: UnsignedInt<1>,
            status: u8 => Status: Int<0, 1>,
        },
        /// A.3.2.7 Table 26.
        DeleteObjectResponse { status: u8 => Status: Int<0, 1> },
        /// A.3.2.8 Table 28.
        DownloadResponse {
            status: u8 => Status: Int<0, 1>,
            start_time: String => StartTime: DateTime,
            complete_time: String => CompleteTime: DateTime,
        },
        /// A.3.2.9 Table 30.
        RebootResponse,
        /// A.4.1.1 Table 40.
        GetQueuedTransfersResponse { transfers: Vec<QueuedTransfer> => TransferList: Array<QueuedTransfer, 16> },
        /// A.4.1.2 Table 43.
        ScheduleInformResponse,
        /// A.4.1.3 Table 45.
        SetVouchersResponse,
        /// A.4.1.4 Table 47.
        GetOptionsResponse { options: Vec<OptionStruct> => OptionList: Array<OptionStruct> },
        /// A.4.1.5 Table 50.
        UploadResponse {
            status: u8 => Status: Int<0, 1>,
            start_time: String => StartTime: DateTime,
            complete_time: String => CompleteTime: DateTime,
        },
        /// A.4.1.6 Table 52.
        FactoryResetResponse,

        // A.3.3, A.4.2: requests to the ACS, and their responses.
        /// A.3.3.1 Table 31. Event is `EventStruct[16]` in the table, `[64]` in
        /// the schema; the schema's bound is applied.
        Inform {
            device_id: DeviceId => DeviceId: DeviceId,
            events: Vec<Event> => Event: Array<Event, 64>,
            max_envelopes: u32 => MaxEnvelopes: UnsignedInt,
            current_time: String => CurrentTime: DateTime,
            retry_count: u32 => RetryCount: UnsignedInt,
            parameters: Vec<ParameterValue> => ParameterList: Array<ParameterValue>,
        },
        /// A.3.3.1 Table 32.
        InformResponse { max_envelopes: u32 => MaxEnvelopes: UnsignedInt },
        /// A.3.3.2 Table 36.
        TransferComplete {
            command_key: String => CommandKey: Str,
            fault: TransferFault => FaultStruct: TransferFault,
            start_time: String => StartTime: DateTime,
            complete_time: String => CompleteTime: DateTime,
        },
        /// A.3.3.2 Table 37.
        TransferCompleteResponse,
        /// A.4.2.1 Table 53.
        Kicked {
            command: String => Command: Str,
            referer: String => Referer: Str,
            arg: String => Arg: Str,
            next: String => Next: Str,
        },
        /// A.4.2.1 Table 54.
        KickedResponse { next_url: String => NextURL: Str },
        /// A.4.2.2 Table 55.
        RequestDownload {
            file_type: String => FileType: Str,
            args: Vec<Arg> => FileTypeArg: Array<Arg, 16>,
        },
        /// A.4.2.2 Table 56.
        RequestDownloadResponse,
    }
}

impl Body {
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
