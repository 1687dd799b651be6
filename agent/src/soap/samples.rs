//! One sample of every CWMP message (every `Body` variant) with non-trivial
//! values: shared by the codec's round-trip tests and the fuzz seeds
//! (`fuzz/examples/seeds.rs`, feature `soap-samples`). Not product code.

use super::*;

/// A.2.1: a string needing every XML escape, plus non-ASCII.
pub const NASTY: &str = "a&b<c>d\"e'f ü";

/// One sample of every variant, with non-trivial values.
pub fn samples() -> Vec<Body> {
    let pv = |n: &str, v: &str, t: &str| ParameterValue { name: n.into(), value: v.into(), xsd_type: t.into() };
    let time = "2026-11-24T12:00:00Z".to_string();
    vec![
        Body::GetRPCMethods,
        Body::SetParameterValues { list: vec![pv("X.Y", NASTY, "xsd:string"), pv("X.Z", "42", "xsd:unsignedInt")], parameter_key: NASTY.into() },
        Body::GetParameterValues { names: vec!["X.".into(), NASTY.into()] },
        Body::GetParameterNames { path: "X.".into(), next_level: true },
        Body::SetParameterAttributes {
            list: vec![
                SetAttributes {
                    name: "X.Y".into(),
                    notification_change: true,
                    notification: 2,
                    access_list_change: true,
                    access_list: vec!["Subscriber".into()],
                },
                SetAttributes { name: NASTY.into(), notification_change: false, notification: 0, access_list_change: false, access_list: vec![] },
            ],
        },
        Body::GetParameterAttributes { names: vec!["X.Y".into()] },
        Body::AddObject { object_name: "X.Z.".into(), parameter_key: NASTY.into() },
        Body::DeleteObject { object_name: "X.Z.3.".into(), parameter_key: "k".into() },
        Body::Download(DownloadArgs {
            command_key: "dl-1".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "http://acs.example/fw?a=1&b=2".into(),
            username: "u<".into(),
            password: "p\"".into(),
            file_size: 4_000_000_000,
            target_file_name: "fw.bin".into(),
            delay_seconds: 30,
            success_url: "http://x/ok".into(),
            failure_url: NASTY.into(),
        }),
        Body::Reboot { command_key: NASTY.into() },
        Body::GetQueuedTransfers,
        Body::ScheduleInform { delay_seconds: 3600, command_key: "si".into() },
        Body::SetVouchers { vouchers: vec![vec![0, 1, 2, 255, b'<'], b"second voucher".to_vec()] },
        Body::GetOptions { option_name: NASTY.into() },
        Body::Upload(UploadArgs {
            command_key: "ul".into(),
            file_type: "2 Vendor Log File".into(),
            url: "http://acs.example/up".into(),
            username: String::new(),
            password: NASTY.into(),
            delay_seconds: 0,
        }),
        Body::FactoryReset,
        Body::GetRPCMethodsResponse { methods: vec!["GetRPCMethods".into(), "Inform".into()] },
        Body::SetParameterValuesResponse { status: 1 },
        Body::GetParameterValuesResponse { list: vec![pv("A.B", "true", "xsd:boolean"), pv("A.C", NASTY, "xsd:string"), pv("A.D", "", "xsd:string")] },
        Body::GetParameterNamesResponse {
            list: vec![ParameterInfo { name: "A.".into(), writable: false }, ParameterInfo { name: "A.B".into(), writable: true }],
        },
        Body::SetParameterAttributesResponse,
        Body::GetParameterAttributesResponse {
            list: vec![ParameterAttribute { name: "A.B".into(), notification: 1, access_list: vec!["Subscriber".into(), NASTY.into()] }],
        },
        Body::AddObjectResponse { instance_number: 7, status: 1 },
        Body::DeleteObjectResponse { status: 0 },
        Body::DownloadResponse { status: 0, start_time: time.clone(), complete_time: "2026-11-24T12:00:05.25+01:00".into() },
        Body::RebootResponse,
        Body::GetQueuedTransfersResponse {
            transfers: vec![QueuedTransfer { command_key: "dl-1".into(), state: 1 }, QueuedTransfer { command_key: NASTY.into(), state: 3 }],
        },
        Body::ScheduleInformResponse,
        Body::SetVouchersResponse,
        Body::GetOptionsResponse {
            options: vec![
                OptionStruct {
                    option_name: NASTY.into(),
                    voucher_sn: 12345,
                    state: 3,
                    mode: 1,
                    start_date: time.clone(),
                    expiration_date: Some("2027-01-01T00:00:00Z".into()),
                    is_transferable: true,
                },
                OptionStruct {
                    option_name: "Other".into(),
                    voucher_sn: 0,
                    state: 0,
                    mode: 2,
                    start_date: "0001-01-01T00:00:00Z".into(),
                    expiration_date: None,
                    is_transferable: false,
                },
            ],
        },
        Body::UploadResponse { status: 1, start_time: "0001-01-01T00:00:00Z".into(), complete_time: "0001-01-01T00:00:00Z".into() },
        Body::FactoryResetResponse,
        Body::Inform {
            device_id: DeviceId { manufacturer: NASTY.into(), oui: "00D09E".into(), product_class: "Gateway".into(), serial_number: "CPE0001".into() },
            events: vec![Event { code: "0 BOOTSTRAP".into(), command_key: String::new() }, Event { code: "M Reboot".into(), command_key: NASTY.into() }],
            max_envelopes: 1,
            // A.2.1: time since boot when absolute time is unknown.
            current_time: "0000-00-02T03:04:05".into(),
            retry_count: 3,
            parameters: vec![pv("InternetGatewayDevice.DeviceInfo.SoftwareVersion", NASTY, "xsd:string")],
        },
        Body::InformResponse { max_envelopes: 1 },
        Body::TransferComplete {
            command_key: "dl-1".into(),
            fault: TransferFault { code: 9010, string: NASTY.into() },
            start_time: time.clone(),
            complete_time: time.clone(),
        },
        Body::TransferCompleteResponse,
        Body::Kicked { command: "c".into(), referer: "http://lan/x?a&b".into(), arg: NASTY.into(), next: "/next".into() },
        Body::KickedResponse { next_url: "/security/index.html?a=1&b=<2>".into() },
        Body::RequestDownload { file_type: "2 Web Content".into(), args: vec![Arg { name: "Version".into(), value: NASTY.into() }] },
        Body::RequestDownloadResponse,
        Body::Fault(Fault::new(9001, NASTY)),
        Body::Fault(Fault {
            code: 9003,
            string: "Invalid arguments".into(),
            set_parameter_values: vec![
                SetParameterValuesFault { name: "A.B".into(), code: 9007, string: NASTY.into() },
                SetParameterValuesFault { name: "A.C".into(), code: 9008, string: "not writable".into() },
            ],
        }),
        Body::Fault(Fault::new(8005, "Retry request")),
    ]
}
