use super::*;

const ENV: &str = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">"#;

fn one(body: &str) -> Envelope {
    let mut v = parse(&format!("{ENV}<soapenv:Header><cwmp:ID soapenv:mustUnderstand=\"1\">42</cwmp:ID></soapenv:Header><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>")).unwrap();
    assert_eq!(v.len(), 1);
    v.remove(0)
}

#[test]
fn set_parameter_values_with_types_and_any_prefix() {
    let xml = r#"<?xml version="1.0"?><!-- c --><E:Envelope xmlns:E="http://schemas.xmlsoap.org/soap/envelope/" xmlns:C="urn:dslforum-org:cwmp-1-0" xmlns:i="http://www.w3.org/2001/XMLSchema-instance" xmlns:enc="http://schemas.xmlsoap.org/soap/encoding/"><E:Header><C:ID E:mustUnderstand="1">id-7</C:ID><C:HoldRequests E:mustUnderstand="1">1</C:HoldRequests><X:Other xmlns:X="urn:x">ignored</X:Other></E:Header><E:Body><?pi x?><C:SetParameterValues><ParameterList enc:arrayType="C:ParameterValueStruct[2]"><ParameterValueStruct><Name>InternetGatewayDevice.ManagementServer.PeriodicInformInterval</Name><Value i:type="xsd:unsignedInt">60</Value></ParameterValueStruct><ParameterValueStruct><Name>A.B</Name><Value>x &amp; y</Value></ParameterValueStruct></ParameterList><ParameterKey>k1</ParameterKey></C:SetParameterValues></E:Body></E:Envelope>"#;
    let e = parse(xml).unwrap().remove(0);
    assert_eq!(e.id.as_deref(), Some("id-7"));
    assert!(e.hold_requests);
    let Ok(Body::SetParameterValues { list, parameter_key }) = e.body else { panic!("{:?}", e.body) };
    assert_eq!(parameter_key, "k1");
    assert_eq!(list[0].xsd_type, "xsd:unsignedInt");
    assert_eq!(list[1].value, "x & y");
    assert_eq!(list[1].xsd_type, "xsd:string");
}

#[test]
fn unknown_method_is_9000_and_bad_arguments_9003() {
    let e = one("<cwmp:FlyToTheMoon/>");
    assert_eq!(e.body.unwrap_err().code, 9000);
    let e = one("<cwmp:GetParameterNames><NextLevel>1</NextLevel><ParameterPath>A.</ParameterPath></cwmp:GetParameterNames>");
    assert_eq!(e.body.unwrap_err().code, 9003, "wrong order");
    let e = one("<cwmp:GetParameterNames><ParameterPath>A.</ParameterPath></cwmp:GetParameterNames>");
    assert_eq!(e.body.unwrap_err().code, 9003, "missing argument");
    let e = one("<cwmp:GetParameterNames><ParameterPath>A.</ParameterPath><NextLevel>maybe</NextLevel></cwmp:GetParameterNames>");
    assert_eq!(e.body.unwrap_err().code, 9003, "bad boolean");
    // Extension elements in another namespace are ignored.
    let e = one("<cwmp:GetParameterNames><ParameterPath>A.</ParameterPath><x:y xmlns:x=\"urn:x\"/><NextLevel>true</NextLevel></cwmp:GetParameterNames>");
    assert_eq!(e.body.unwrap(), Body::GetParameterNames { path: "A.".into(), next_level: true });
}

#[test]
fn several_envelopes_and_empty_body() {
    let a = to_xml(Some("1"), false, &Body::GetRPCMethods);
    let b = to_xml(Some("2"), true, &Body::GetParameterValues { names: vec!["A.B".into(), "A.C".into()] });
    let v = parse(&format!("<?xml version=\"1.0\"?>{a}\n<?xml version=\"1.0\"?>{b}")).unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[1].id.as_deref(), Some("2"));
    assert!(v[1].no_more_requests);
    assert_eq!(v[1].body, Ok(Body::GetParameterValues { names: vec!["A.B".into(), "A.C".into()] }));
    assert!(parse("  \r\n").unwrap().is_empty());
    assert!(parse("<html/>").is_err());
}

#[test]
fn requests_round_trip() {
    let bodies = vec![
        Body::GetRPCMethods,
        Body::SetParameterValues {
            list: vec![ParameterValue { name: "X.Y".into(), value: "<v>".into(), xsd_type: "xsd:string".into() }],
            parameter_key: "key".into(),
        },
        Body::GetParameterValues { names: vec!["X.".into()] },
        Body::GetParameterNames { path: String::new(), next_level: false },
        Body::SetParameterAttributes {
            list: vec![SetAttributes { name: "X.Y".into(), notification_change: true, notification: 2, access_list_change: true, access_list: vec!["Subscriber".into()] }],
        },
        Body::GetParameterAttributes { names: vec!["X.Y".into()] },
        Body::AddObject { object_name: "X.Z.".into(), parameter_key: "k".into() },
        Body::DeleteObject { object_name: "X.Z.3.".into(), parameter_key: "k".into() },
        Body::InformResponse { max_envelopes: 1 },
    ];
    for b in bodies {
        let e = parse(&to_xml(Some("9"), false, &b)).unwrap().remove(0);
        assert_eq!(e.body, Ok(b));
    }
}

#[test]
fn fault_envelope_as_3_5() {
    let f = Fault {
        code: 9003,
        string: "Invalid arguments".into(),
        set_parameter_values: vec![SetParameterValuesFault { name: "A.B".into(), code: 9008, string: "not writable".into() }],
    };
    let xml = to_xml(Some("5"), false, &Body::Fault(f.clone()));
    assert!(xml.contains("<faultcode>soap:Client</faultcode><faultstring>CWMP fault</faultstring>"), "{xml}");
    let e = parse(&xml).unwrap().remove(0);
    assert_eq!(e.body, Ok(Body::Fault(f)));
    assert_eq!(Fault::new(9002, "x").soap_faultcode(), "Server");
}
