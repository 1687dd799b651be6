//! Every message body the codec emits validates against the Broadband
//! Forum CWMP 1.0 schema (testdata/bbf, local SOAP stubs) with xmllint.

use std::path::PathBuf;
use std::process::Command;

use cpekit::agent::soap::*;

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

fn emitted() -> Vec<Body> {
    let pv = |n: &str, v: &str, t: &str| ParameterValue { name: n.into(), value: v.into(), xsd_type: t.into() };
    vec![
        Body::Inform {
            device_id: DeviceId { manufacturer: "cpekit".into(), oui: "00D09E".into(), product_class: "Gateway".into(), serial_number: "CPE0001".into() },
            events: vec![Event { code: "0 BOOTSTRAP".into(), command_key: String::new() }, Event { code: "M Download".into(), command_key: "ck1".into() }],
            max_envelopes: 1,
            current_time: "2026-11-24T12:00:00Z".into(),
            retry_count: 0,
            parameters: vec![
                pv("InternetGatewayDevice.DeviceSummary", "InternetGatewayDevice:1.0[](Baseline:1)", "xsd:string"),
                pv("InternetGatewayDevice.ManagementServer.PeriodicInformInterval", "60", "xsd:unsignedInt"),
            ],
        },
        Body::GetRPCMethods,
        Body::GetRPCMethodsResponse { methods: vec!["GetRPCMethods".into(), "SetParameterValues".into()] },
        Body::SetParameterValuesResponse { status: 0 },
        Body::GetParameterValuesResponse { list: vec![pv("A.B", "true", "xsd:boolean"), pv("A.C", "", "xsd:string")] },
        Body::GetParameterNamesResponse { list: vec![ParameterInfo { name: "InternetGatewayDevice.".into(), writable: false }] },
        Body::SetParameterAttributesResponse,
        Body::GetParameterAttributesResponse {
            list: vec![ParameterAttribute { name: "A.B".into(), notification: 2, access_list: vec!["Subscriber".into()] }],
        },
        Body::AddObjectResponse { instance_number: 3, status: 0 },
        Body::DeleteObjectResponse { status: 1 },
        Body::Fault(Fault::new(9000, "Method not supported")),
        Body::Fault(Fault {
            code: 9003,
            string: "Invalid arguments".into(),
            set_parameter_values: vec![SetParameterValuesFault { name: "A.B".into(), code: 9007, string: "Invalid parameter value".into() }],
        }),
    ]
}

/// Responses the RPC handlers produce for the whole generated IGD tree.
fn from_handlers() -> Vec<Body> {
    use cpekit::agent::datamodel::{store::Store, Schema};
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
    let mut out: Vec<Body> = reqs.iter().map(|r| cpekit::agent::rpc::handle(schema, &mut st, r).0).collect();
    let dev = DeviceId { manufacturer: "cpekit".into(), oui: "00D09E".into(), product_class: "Gateway".into(), serial_number: "1".into() };
    let ev = vec![Event { code: "1 BOOT".into(), command_key: String::new() }];
    out.push(cpekit::agent::session::inform_body(schema, &st, dev, ev, 2, "2026-11-24T12:00:00Z".into(), 1, &[]));
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

#[test]
fn the_validator_catches_a_bad_body() {
    // Guard against a check that cannot fail: a wrong element is rejected.
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("bad.xml");
    let bad = standalone(&Body::SetParameterValuesResponse { status: 0 }).replace("<Status>0</Status>", "<Status>7</Status>");
    std::fs::write(&f, bad).unwrap();
    let out = Command::new("xmllint").args(["--noout", "--nonet", "--schema"]).arg(schema()).arg(&f).output().unwrap();
    assert!(!out.status.success());
}
