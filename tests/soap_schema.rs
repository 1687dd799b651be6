//! Every message body the codec emits validates against the Broadband
//! Forum CWMP 1.0 schema (testdata/bbf, local SOAP stubs) with xmllint.

use std::path::PathBuf;
use std::process::Command;

use agent::soap::*;

fn schema() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/bbf/cwmp-1-0-local.xsd")
}

/// The body element as a standalone document with its namespaces declared.
fn standalone(body: &Body) -> String {
    let xml = body_xml(body);
    let decl = format!(" xmlns:cwmp=\"{CWMP}\" xmlns:soapenc=\"{SOAP_ENC}\" xmlns:xsi=\"{XSI}\" xmlns:xsd=\"{XSD}\" xmlns:soap=\"{SOAP_ENV}\"");
    if let Body::Fault(_) = body {
        // 3.5: the schema covers the cwmp:Fault in the SOAP detail.
        let s = xml.find("<cwmp:Fault>").unwrap();
        let e = xml.find("</cwmp:Fault>").unwrap() + "</cwmp:Fault>".len();
        return xml[s..e].replacen("<cwmp:Fault", &format!("<cwmp:Fault{decl}"), 1);
    }
    let tag_end = xml.find(['>', '/']).unwrap();
    format!("{}{decl}{}", &xml[..tag_end], &xml[tag_end..])
}

/// Exhaustive on purpose (no `_` arm): adding a Body variant fails to
/// compile here until `emitted()` gets a case for it.
fn variant(b: &Body) -> usize {
    match b {
        Body::GetRPCMethods => 0,
        Body::SetParameterValues { .. } => 1,
        Body::GetParameterValues { .. } => 2,
        Body::GetParameterNames { .. } => 3,
        Body::SetParameterAttributes { .. } => 4,
        Body::GetParameterAttributes { .. } => 5,
        Body::AddObject { .. } => 6,
        Body::DeleteObject { .. } => 7,
        Body::Download(_) => 8,
        Body::Reboot { .. } => 9,
        Body::GetQueuedTransfers => 10,
        Body::ScheduleInform { .. } => 11,
        Body::SetVouchers { .. } => 12,
        Body::GetOptions { .. } => 13,
        Body::Upload(_) => 14,
        Body::FactoryReset => 15,
        Body::GetRPCMethodsResponse { .. } => 16,
        Body::SetParameterValuesResponse { .. } => 17,
        Body::GetParameterValuesResponse { .. } => 18,
        Body::GetParameterNamesResponse { .. } => 19,
        Body::SetParameterAttributesResponse => 20,
        Body::GetParameterAttributesResponse { .. } => 21,
        Body::AddObjectResponse { .. } => 22,
        Body::DeleteObjectResponse { .. } => 23,
        Body::DownloadResponse { .. } => 24,
        Body::RebootResponse => 25,
        Body::GetQueuedTransfersResponse { .. } => 26,
        Body::ScheduleInformResponse => 27,
        Body::SetVouchersResponse => 28,
        Body::GetOptionsResponse { .. } => 29,
        Body::UploadResponse { .. } => 30,
        Body::FactoryResetResponse => 31,
        Body::Inform { .. } => 32,
        Body::InformResponse { .. } => 33,
        Body::TransferComplete { .. } => 34,
        Body::TransferCompleteResponse => 35,
        Body::Kicked { .. } => 36,
        Body::KickedResponse { .. } => 37,
        Body::RequestDownload { .. } => 38,
        Body::RequestDownloadResponse => 39,
        Body::Fault(_) => 40,
    }
}
const VARIANTS: usize = 41;

fn emitted() -> Vec<Body> {
    let pv = |n: &str, v: &str, t: &str| ParameterValue { name: n.into(), value: v.into(), xsd_type: t.into() };
    let time = || "2026-11-24T12:00:00Z".to_string();
    // A string that needs every escape the writer knows.
    let nasty = "a&b<c>d\"e'f";
    vec![
        Body::Inform {
            device_id: DeviceId { manufacturer: "cpekit".into(), oui: "00D09E".into(), product_class: "Gateway".into(), serial_number: "CPE0001".into() },
            events: vec![Event { code: "0 BOOTSTRAP".into(), command_key: String::new() }, Event { code: "M Download".into(), command_key: "ck1".into() }],
            max_envelopes: 1,
            current_time: time(),
            retry_count: 0,
            parameters: vec![
                pv("InternetGatewayDevice.DeviceSummary", "InternetGatewayDevice:1.0[](Baseline:1)", "xsd:string"),
                pv("InternetGatewayDevice.ManagementServer.PeriodicInformInterval", "60", "xsd:unsignedInt"),
            ],
        },
        Body::InformResponse { max_envelopes: 1 },
        Body::TransferComplete {
            command_key: "dl-1".into(),
            fault: TransferFault { code: 0, string: String::new() },
            start_time: time(),
            complete_time: time(),
        },
        Body::TransferComplete {
            command_key: nasty.into(),
            fault: TransferFault { code: 9012, string: "File transfer server authentication failure".into() },
            start_time: "0001-01-01T00:00:00Z".into(),
            complete_time: "2026-11-24T12:00:05.5+01:00".into(),
        },
        Body::TransferCompleteResponse,
        Body::Kicked { command: "cmd".into(), referer: "http://192.168.1.1/".into(), arg: nasty.into(), next: "http://acs.example/next?a=1&b=2".into() },
        Body::KickedResponse { next_url: "/security/index.html".into() },
        Body::RequestDownload { file_type: "2 Web Content".into(), args: vec![Arg { name: "Version".into(), value: "1.2&3".into() }] },
        Body::RequestDownload { file_type: "X 00D09E cpekit-package".into(), args: vec![] },
        Body::RequestDownloadResponse,
        Body::GetRPCMethods,
        Body::SetParameterValues { list: vec![pv("A.B", nasty, "xsd:string"), pv("A.C", "1", "xsd:boolean")], parameter_key: "k1".into() },
        Body::GetParameterValues { names: vec!["InternetGatewayDevice.".into(), "A.B".into()] },
        Body::GetParameterNames { path: String::new(), next_level: true },
        Body::SetParameterAttributes {
            list: vec![SetAttributes {
                name: "A.B".into(),
                notification_change: true,
                notification: 2,
                access_list_change: true,
                access_list: vec!["Subscriber".into()],
            }],
        },
        Body::GetParameterAttributes { names: vec!["A.".into()] },
        Body::AddObject { object_name: "InternetGatewayDevice.Layer3Forwarding.Forwarding.".into(), parameter_key: "k".into() },
        Body::DeleteObject { object_name: "InternetGatewayDevice.Layer3Forwarding.Forwarding.1.".into(), parameter_key: String::new() },
        Body::Download(DownloadArgs {
            command_key: "dl-1".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "http://acs.example/fw.bin?x=1&y=2".into(),
            username: "user".into(),
            password: nasty.into(),
            file_size: 123456,
            target_file_name: String::new(),
            delay_seconds: 0,
            success_url: String::new(),
            failure_url: String::new(),
        }),
        Body::Download(DownloadArgs { file_type: "X 00D09E cpekit-package".into(), ..DownloadArgs::default() }),
        Body::Reboot { command_key: "reboot-1".into() },
        Body::GetQueuedTransfers,
        Body::ScheduleInform { delay_seconds: 60, command_key: "si".into() },
        Body::SetVouchers { vouchers: vec![b"<voucher/>".to_vec(), vec![0, 255, 1, 254]] },
        Body::GetOptions { option_name: String::new() },
        Body::Upload(UploadArgs {
            command_key: "ul".into(),
            file_type: "1 Vendor Configuration File".into(),
            url: "http://acs.example/up".into(),
            username: String::new(),
            password: String::new(),
            delay_seconds: 5,
        }),
        Body::FactoryReset,
        Body::GetRPCMethodsResponse { methods: vec!["GetRPCMethods".into(), "SetParameterValues".into()] },
        Body::SetParameterValuesResponse { status: 0 },
        Body::GetParameterValuesResponse { list: vec![pv("A.B", "true", "xsd:boolean"), pv("A.C", "", "xsd:string")] },
        Body::GetParameterNamesResponse { list: vec![ParameterInfo { name: "InternetGatewayDevice.".into(), writable: false }] },
        Body::SetParameterAttributesResponse,
        Body::GetParameterAttributesResponse { list: vec![ParameterAttribute { name: "A.B".into(), notification: 2, access_list: vec!["Subscriber".into()] }] },
        Body::AddObjectResponse { instance_number: 3, status: 0 },
        Body::DeleteObjectResponse { status: 1 },
        Body::DownloadResponse { status: 1, start_time: "0001-01-01T00:00:00Z".into(), complete_time: "0001-01-01T00:00:00Z".into() },
        Body::RebootResponse,
        Body::GetQueuedTransfersResponse {
            transfers: vec![QueuedTransfer { command_key: "dl-1".into(), state: 1 }, QueuedTransfer { command_key: "ul".into(), state: 3 }],
        },
        Body::GetQueuedTransfersResponse { transfers: vec![] },
        Body::ScheduleInformResponse,
        Body::SetVouchersResponse,
        Body::GetOptionsResponse {
            options: vec![
                OptionStruct {
                    option_name: "VoIP".into(),
                    voucher_sn: 42,
                    state: 1,
                    mode: 1,
                    start_date: time(),
                    expiration_date: Some("2027-11-24T12:00:00Z".into()),
                    is_transferable: true,
                },
                OptionStruct { option_name: nasty.into(), voucher_sn: 7, state: 3, mode: 2, start_date: time(), expiration_date: None, is_transferable: false },
            ],
        },
        Body::UploadResponse { status: 0, start_time: time(), complete_time: time() },
        Body::FactoryResetResponse,
        Body::Fault(Fault::new(9000, "Method not supported")),
        Body::Fault(Fault {
            code: 9003,
            string: "Invalid arguments".into(),
            set_parameter_values: vec![SetParameterValuesFault { name: "A.B".into(), code: 9007, string: "Invalid parameter value".into() }],
        }),
        Body::Fault(Fault::new(8005, "Retry request")),
    ]
}

#[test]
fn emitted_covers_every_variant() {
    let mut seen: Vec<usize> = emitted().iter().map(variant).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, (0..VARIANTS).collect::<Vec<_>>(), "a Body variant has no case in emitted()");
}

/// Responses the RPC handlers produce for the whole generated IGD tree.
fn from_handlers() -> Vec<Body> {
    use agent::datamodel::{store::Store, Schema};
    let schema = Schema::igd();
    let mut st = Store::new(schema);
    let reqs = [
        Body::GetRPCMethods,
        Body::GetParameterNames { path: String::new(), next_level: false },
        Body::GetParameterValues { names: vec!["InternetGatewayDevice.".into()] },
        Body::GetParameterAttributes { names: vec!["InternetGatewayDevice.ManagementServer.".into()] },
        Body::AddObject { object_name: "InternetGatewayDevice.Layer3Forwarding.Forwarding.".into(), parameter_key: "k".into() },
        Body::SetParameterValues {
            list: vec![ParameterValue { name: "InternetGatewayDevice.DeviceInfo.Manufacturer".into(), value: "x".into(), xsd_type: "xsd:string".into() }],
            parameter_key: "k".into(),
        },
    ];
    let mut out: Vec<Body> = reqs.iter().map(|r| agent::rpc::handle(schema, &mut st, r).0).collect();
    let dev = DeviceId { manufacturer: "cpekit".into(), oui: "00D09E".into(), product_class: "Gateway".into(), serial_number: "1".into() };
    let ev = vec![Event { code: "1 BOOT".into(), command_key: String::new() }];
    out.push(agent::session::inform_body(
        schema,
        &st,
        agent::session::InformArgs { device: dev, events: ev, retry_count: 2, current_time: "2026-11-24T12:00:00Z".into(), max_envelopes: 1 },
        &[],
    ));
    out
}

#[test]
fn every_emitted_body_validates_against_cwmp_1_0_xsd() {
    let t = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, b) in emitted().iter().chain(from_handlers().iter()).enumerate() {
        let f = t.path().join(format!("{i}-{}.xml", b.method()));
        std::fs::write(&f, standalone(b)).unwrap();
        files.push(f);
    }
    let out = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(schema())
        .args(&files)
        .output()
        .expect("xmllint must be installed (make test installs libxml2-utils)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "schema violations:\n{err}");
    assert_eq!(err.matches("validates").count(), files.len(), "{err}");
}

/// 3.5 Table 3: the header elements the schema declares (ID and
/// HoldRequests; NoMoreRequests has no schema element), cut out of a whole
/// envelope as standalone documents.
fn headers() -> Vec<String> {
    let h = Header { id: Some("id-<1>&".into()), hold_requests: true, no_more_requests: true };
    let xml = to_xml_with(&h, &Body::GetRPCMethods);
    let decl = format!(" xmlns:cwmp=\"{CWMP}\" xmlns:soap=\"{SOAP_ENV}\"");
    ["cwmp:ID", "cwmp:HoldRequests"]
        .iter()
        .map(|tag| {
            let s = xml.find(&format!("<{tag} ")).unwrap_or_else(|| panic!("{tag} missing in {xml}"));
            let close = format!("</{tag}>");
            let e = xml[s..].find(&close).unwrap() + s + close.len();
            xml[s..e].replacen(tag, &format!("{tag}{decl}"), 1)
        })
        .collect()
}

#[test]
fn emitted_header_elements_validate() {
    let t = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = headers()
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let f = t.path().join(format!("header-{i}.xml"));
            std::fs::write(&f, x).unwrap();
            f
        })
        .collect();
    let out = Command::new("xmllint").args(["--noout", "--nonet", "--schema"]).arg(schema()).args(&files).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "schema violations:\n{err}");
    assert_eq!(err.matches("validates").count(), 2, "{err}");
}

#[test]
fn the_validator_catches_a_bad_body() {
    // Guard against a check that cannot fail: each of these is rejected.
    // The codec encodes what it is given, so out-of-schema values reach
    // the wire unchanged and the validator must see them.
    let t = tempfile::tempdir().unwrap();
    let bad = [
        standalone(&Body::SetParameterValuesResponse { status: 0 }).replace("<Status>0</Status>", "<Status>7</Status>"),
        standalone(&Body::GetQueuedTransfersResponse { transfers: vec![QueuedTransfer { command_key: "k".into(), state: 4 }] }),
        standalone(&Body::Download(DownloadArgs { file_type: "4 Something Else".into(), ..DownloadArgs::default() })),
        standalone(&Body::TransferComplete {
            command_key: String::new(),
            fault: TransferFault { code: 9003, string: String::new() },
            start_time: "2026-11-24T12:00:00Z".into(),
            complete_time: "2026-11-24T12:00:00Z".into(),
        }),
        standalone(&Body::UploadResponse { status: 0, start_time: String::new(), complete_time: String::new() }),
        standalone(&Body::SetVouchers { vouchers: vec![] }),
    ];
    for (i, x) in bad.iter().enumerate() {
        let f = t.path().join(format!("bad-{i}.xml"));
        std::fs::write(&f, x).unwrap();
        let out = Command::new("xmllint").args(["--noout", "--nonet", "--schema"]).arg(schema()).arg(&f).output().unwrap();
        assert!(!out.status.success(), "accepted: {x}");
    }
}
