use super::samples::{samples, NASTY};
use super::*;

const ENV: &str = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema">"#;

fn one(body: &str) -> Envelope {
    let mut v = parse(&format!(
        "{ENV}<soapenv:Header><cwmp:ID soapenv:mustUnderstand=\"1\">42</cwmp:ID></soapenv:Header><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    ))
    .unwrap();
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
            list: vec![SetAttributes {
                name: "X.Y".into(),
                notification_change: true,
                notification: 2,
                access_list_change: true,
                access_list: vec!["Subscriber".into()],
            }],
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

/// Exhaustive on purpose (no `_` arm): a new variant fails to compile
/// here until it gets a sample.
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

#[test]
fn every_variant_round_trips() {
    let all = samples();
    let mut seen: Vec<usize> = all.iter().map(variant).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, (0..=40).collect::<Vec<_>>(), "a Body variant has no sample");
    for b in all {
        let xml = to_xml(Some("id&<1>"), false, &b);
        let e = parse(&xml).unwrap().remove(0);
        assert_eq!(e.id.as_deref(), Some("id&<1>"));
        assert_eq!(e.body.as_ref(), Ok(&b), "{xml}");
        // The element carries the method's name.
        if !matches!(b, Body::Fault(_)) {
            assert!(xml.contains(&format!("<cwmp:{}>", b.method())) || xml.contains(&format!("<cwmp:{}></", b.method())), "{xml}");
        }
    }
}

#[test]
fn escaping_is_on_the_wire() {
    let xml = body_xml(&Body::Reboot { command_key: NASTY.into() });
    assert_eq!(xml, "<cwmp:Reboot><CommandKey>a&amp;b&lt;c&gt;d&quot;e&apos;f ü</CommandKey></cwmp:Reboot>");
    let xml = body_xml(&Body::SetVouchers { vouchers: vec![b"hi".to_vec()] });
    assert!(xml.contains("<VoucherList soapenc:arrayType=\"soapenc:base64[1]\"><base64>aGk=</base64></VoucherList>"), "{xml}");
}

#[test]
fn header_fields_round_trip() {
    for h in [
        Header::default(),
        Header { id: Some("7".into()), hold_requests: true, no_more_requests: false },
        Header { id: None, hold_requests: false, no_more_requests: true },
        Header { id: Some(String::new()), hold_requests: true, no_more_requests: true },
    ] {
        let xml = to_xml_with(&h, &Body::GetRPCMethods);
        assert_eq!(xml.contains("<cwmp:HoldRequests soap:mustUnderstand=\"1\">1</cwmp:HoldRequests>"), h.hold_requests, "{xml}");
        assert_eq!(parse(&xml).unwrap().remove(0).header(), h);
    }
    // to_xml is to_xml_with without HoldRequests.
    assert_eq!(
        to_xml(Some("1"), true, &Body::RebootResponse),
        to_xml_with(&Header { id: Some("1".into()), hold_requests: false, no_more_requests: true }, &Body::RebootResponse)
    );
}

#[test]
fn spec_layout_two_envelopes_pretty_printed() {
    // 3.4.1 example layout: encodingStyle on the Envelope, line breaks
    // everywhere, a response with an ID followed by an unrelated request.
    let http = r#"<soap:Envelope
xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
soap:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"
xmlns:cwmp="urn:dslforum-org:cwmp-1-0">
<soap:Header>
<cwmp:ID soap:mustUnderstand="1">1234</cwmp:ID>
</soap:Header>
<soap:Body>
<cwmp:InformResponse>
<MaxEnvelopes>1</MaxEnvelopes>
</cwmp:InformResponse>
</soap:Body>
</soap:Envelope>
<soap:Envelope
xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"
soap:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"
xmlns:cwmp="urn:dslforum-org:cwmp-1-0">
<soap:Body>
<cwmp:ScheduleInform>
<DelaySeconds>
 30
</DelaySeconds>
<CommandKey>sched</CommandKey>
</cwmp:ScheduleInform>
</soap:Body>
</soap:Envelope>
"#;
    let v = parse(http).unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].id.as_deref(), Some("1234"));
    assert_eq!(v[0].body, Ok(Body::InformResponse { max_envelopes: 1 }));
    assert_eq!(v[1].id, None);
    assert_eq!(v[1].body, Ok(Body::ScheduleInform { delay_seconds: 30, command_key: "sched".into() }));
}

#[test]
fn spec_fault_example_decodes() {
    // 3.5: the SetParameterValues fault example (faultcode without prefix).
    let http = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" soap:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0">
<soap:Header><cwmp:ID soap:mustUnderstand="1">1234</cwmp:ID></soap:Header>
<soap:Body><soap:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring>
<detail><cwmp:Fault><FaultCode>9003</FaultCode><FaultString>Invalid arguments</FaultString>
<SetParameterValuesFault><ParameterName>InternetGatewayDevice.Time.LocalTimeZone</ParameterName><FaultCode>9012</FaultCode><FaultString>Not a valid time zone value</FaultString></SetParameterValuesFault>
<SetParameterValuesFault><ParameterName>InternetGatewayDevice.Time.LocalTimeZoneName</ParameterName><FaultCode>9012</FaultCode><FaultString>String too long</FaultString></SetParameterValuesFault>
</cwmp:Fault></detail></soap:Fault></soap:Body></soap:Envelope>"#;
    let Ok(Body::Fault(f)) = parse(http).unwrap().remove(0).body else { panic!() };
    assert_eq!((f.code, f.string.as_str()), (9003, "Invalid arguments"));
    assert_eq!(f.set_parameter_values.len(), 2);
    assert_eq!(f.set_parameter_values[1].name, "InternetGatewayDevice.Time.LocalTimeZoneName");
    assert_eq!(f.set_parameter_values[1].string, "String too long");
}

#[test]
fn inform_with_default_namespaces_decodes() {
    // The ACS side reading a CPE that declares default namespaces: every
    // argument is then in the CWMP namespace rather than unqualified, and
    // xsi:type uses yet another prefix for XML Schema.
    let http = r#"<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://www.w3.org/2001/XMLSchema-instance" xmlns:s="http://www.w3.org/2001/XMLSchema" xmlns:e="http://schemas.xmlsoap.org/soap/encoding/">
 <Header><ID xmlns="urn:dslforum-org:cwmp-1-0" xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" soap:mustUnderstand="1">77</ID></Header>
 <Body>
  <Inform xmlns="urn:dslforum-org:cwmp-1-0" vendor-attr="ignored">
   <DeviceId><Manufacturer>ACME &amp; Co</Manufacturer><OUI>00D09E</OUI><ProductClass>IGD</ProductClass><SerialNumber>S1</SerialNumber></DeviceId>
   <Event e:arrayType="EventStruct[2]">
    <EventStruct><EventCode>1 BOOT</EventCode><CommandKey/></EventStruct>
    <!-- a comment between members -->
    <EventStruct><EventCode>M Reboot</EventCode><CommandKey>rb-1</CommandKey></EventStruct>
   </Event>
   <MaxEnvelopes>1</MaxEnvelopes>
   <CurrentTime>2026-11-24T12:00:00.123+01:00</CurrentTime>
   <RetryCount>0</RetryCount>
   <ParameterList e:arrayType="ParameterValueStruct[2]">
    <ParameterValueStruct><Name>InternetGatewayDevice.DeviceInfo.UpTime</Name><Value t:type="s:unsignedInt">3600</Value></ParameterValueStruct>
    <ParameterValueStruct><Name>InternetGatewayDevice.DeviceInfo.SoftwareVersion</Name><Value>1.0</Value></ParameterValueStruct>
   </ParameterList>
  </Inform>
 </Body>
</Envelope>"#;
    let e = parse(http).unwrap().remove(0);
    assert_eq!(e.id.as_deref(), Some("77"));
    let Ok(Body::Inform { device_id, events, max_envelopes, current_time, retry_count, parameters }) = e.body else { panic!("{:?}", e.body) };
    assert_eq!(device_id.manufacturer, "ACME & Co");
    assert_eq!(device_id.serial_number, "S1");
    assert_eq!(events, vec![Event { code: "1 BOOT".into(), command_key: String::new() }, Event { code: "M Reboot".into(), command_key: "rb-1".into() }]);
    assert_eq!((max_envelopes, retry_count), (1, 0));
    assert_eq!(current_time, "2026-11-24T12:00:00.123+01:00");
    assert_eq!(parameters[0].xsd_type, "xsd:unsignedInt");
    assert_eq!(parameters[1].xsd_type, "xsd:string");
}

#[test]
fn cpe_messages_with_comments_pis_and_unknown_headers() {
    let http = r#"<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:c="urn:dslforum-org:cwmp-1-0" xmlns:enc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
<S:Header><v:Session xmlns:v="urn:vendor" S:mustUnderstand="0">abc</v:Session><c:ID S:mustUnderstand="1">t1</c:ID><c:NoMoreRequests>1</c:NoMoreRequests></S:Header>
<S:Body><!-- before --><?vendor hint?><c:TransferComplete>
<CommandKey>dl-1</CommandKey><?pi?>
<FaultStruct x="y"><FaultCode>9010</FaultCode><!-- c --><FaultString>Download failure: 404</FaultString></FaultStruct>
<StartTime>2026-11-24T12:00:00Z</StartTime><CompleteTime>2026-11-24T12:01:00Z</CompleteTime>
</c:TransferComplete></S:Body></S:Envelope>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:c="urn:dslforum-org:cwmp-1-0" xmlns:enc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
<S:Body><c:GetParameterValuesResponse><ParameterList enc:arrayType="c:ParameterValueStruct[1]"><ParameterValueStruct><Name>A.B</Name><Value xmlns:i="http://www.w3.org/2001/XMLSchema-instance" i:type="xsd:dateTime">2026-11-24T12:00:00Z</Value></ParameterValueStruct></ParameterList></c:GetParameterValuesResponse></S:Body></S:Envelope>
<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:c="urn:dslforum-org:cwmp-1-0" xmlns:enc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
<S:Body><c:GetParameterValues><ParameterNames enc:arrayType="xsd:string[2]"><xsd:string>A.</xsd:string><string>B.C</string></ParameterNames></c:GetParameterValues></S:Body></S:Envelope>"#;
    let v = parse(http).unwrap();
    assert_eq!(v.len(), 3);
    assert_eq!(v[0].header(), Header { id: Some("t1".into()), hold_requests: false, no_more_requests: true });
    assert_eq!(
        v[0].body,
        Ok(Body::TransferComplete {
            command_key: "dl-1".into(),
            fault: TransferFault { code: 9010, string: "Download failure: 404".into() },
            start_time: "2026-11-24T12:00:00Z".into(),
            complete_time: "2026-11-24T12:01:00Z".into(),
        })
    );
    let Ok(Body::GetParameterValuesResponse { list }) = &v[1].body else { panic!("{:?}", v[1].body) };
    assert_eq!(list[0].xsd_type, "xsd:dateTime");
    assert_eq!(v[2].body, Ok(Body::GetParameterValues { names: vec!["A.".into(), "B.C".into()] }));
}

#[test]
fn new_methods_reject_bad_arguments() {
    let code = |body: &str| one(body).body.unwrap_err().code;
    // A.2.2: exact arguments, in order.
    assert_eq!(code("<cwmp:Reboot/>"), 9003, "missing CommandKey");
    assert_eq!(code("<cwmp:FactoryReset><CommandKey/></cwmp:FactoryReset>"), 9003, "extra argument");
    assert_eq!(code("<cwmp:ScheduleInform><CommandKey/><DelaySeconds>1</DelaySeconds></cwmp:ScheduleInform>"), 9003, "order");
    assert_eq!(code("<cwmp:ScheduleInform><DelaySeconds>-1</DelaySeconds><CommandKey/></cwmp:ScheduleInform>"), 9003, "negative unsignedInt");
    assert_eq!(code("<cwmp:SetVouchers><VoucherList><base64>!!not base64</base64></VoucherList></cwmp:SetVouchers>"), 9003);
    assert_eq!(code("<cwmp:SetVouchers><VoucherList><string>aGk=</string></VoucherList></cwmp:SetVouchers>"), 9003, "wrong member");
    assert_eq!(code("<cwmp:Download><CommandKey/><FileType>1 Firmware Upgrade Image</FileType></cwmp:Download>"), 9003);
    assert_eq!(code("<cwmp:DownloadResponse><Status>2</Status><StartTime>2026-11-24T12:00:00Z</StartTime><CompleteTime>2026-11-24T12:00:00Z</CompleteTime></cwmp:DownloadResponse>"), 9003, "Status int[0:1]");
    assert_eq!(
        code("<cwmp:UploadResponse><Status>0</Status><StartTime></StartTime><CompleteTime>2026-11-24T12:00:00Z</CompleteTime></cwmp:UploadResponse>"),
        9003,
        "empty dateTime"
    );
    assert_eq!(code("<cwmp:AddObjectResponse><InstanceNumber>0</InstanceNumber><Status>0</Status></cwmp:AddObjectResponse>"), 9003);
    let qt = |s: &str| format!("<QueuedTransferStruct><CommandKey>k</CommandKey><State>{s}</State></QueuedTransferStruct>");
    assert_eq!(code(&format!("<cwmp:GetQueuedTransfersResponse><TransferList>{}</TransferList></cwmp:GetQueuedTransfersResponse>", qt("0"))), 9003);
    // Table 40: QueuedTransferStruct[16].
    let sixteen = qt("2").repeat(16);
    let ok = one(&format!("<cwmp:GetQueuedTransfersResponse><TransferList>{sixteen}</TransferList></cwmp:GetQueuedTransfersResponse>"));
    assert!(matches!(ok.body, Ok(Body::GetQueuedTransfersResponse { ref transfers }) if transfers.len() == 16));
    assert_eq!(code(&format!("<cwmp:GetQueuedTransfersResponse><TransferList>{sixteen}{}</TransferList></cwmp:GetQueuedTransfersResponse>", qt("2"))), 9003);
    // A.5.2: a Server answers bad arguments of its own methods with 8003.
    assert_eq!(code("<cwmp:Kicked><Command/><Referer/><Arg/></cwmp:Kicked>"), 8003);
    assert_eq!(code("<cwmp:TransferComplete><CommandKey/><FaultStruct><FaultCode>0</FaultCode><FaultString/></FaultStruct><StartTime>yesterday</StartTime><CompleteTime>2026-11-24T12:00:00Z</CompleteTime></cwmp:TransferComplete>"), 8003);
    let args17 = "<ArgStruct><Name>n</Name><Value>v</Value></ArgStruct>".repeat(17);
    assert_eq!(code(&format!("<cwmp:RequestDownload><FileType>2 Web Content</FileType><FileTypeArg>{args17}</FileTypeArg></cwmp:RequestDownload>")), 8003);
    // The arrayType count is never trusted: a huge declared size decodes
    // what is actually there.
    let e = one("<cwmp:GetOptionsResponse><OptionList soapenc:arrayType=\"cwmp:OptionStruct[4294967295]\" xmlns:soapenc=\"http://schemas.xmlsoap.org/soap/encoding/\"></OptionList></cwmp:GetOptionsResponse>");
    assert_eq!(e.body, Ok(Body::GetOptionsResponse { options: vec![] }));
}

#[test]
fn date_time_lexical_form() {
    for ok in [
        "2026-11-24T12:00:00Z",
        "2026-11-24T12:00:00",
        "2026-11-24T12:00:00.5-05:00",
        "0001-01-01T00:00:00Z",
        "0000-00-02T03:04:05",
        "-0044-03-15T12:00:00Z",
        "12026-01-01T00:00:00Z",
    ] {
        assert!(is_date_time(ok), "{ok}");
    }
    for bad in [
        "",
        "2026-11-24",
        "2026-11-24 12:00:00Z",
        "26-11-24T12:00:00Z",
        "2026-11-24T12:00:00.Z",
        "2026-11-24T12:00:00+0100",
        "2026-11-24T12:00:00Zx",
        "2026-1-24T12:00:00Z",
    ] {
        assert!(!is_date_time(bad), "{bad}");
    }
}

#[test]
fn dtds_are_refused() {
    // SOAP 1.1 section 3: a message must not contain a DTD; refusing it
    // also rules out entity-expansion bombs.
    let bomb = r#"<?xml version="1.0"?><!DOCTYPE e [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&b;</soap:Body></soap:Envelope>"#;
    assert!(parse(bomb).is_err());
}

#[test]
fn requests_and_server_methods() {
    assert!(Body::Inform { device_id: DeviceId::default(), events: vec![], max_envelopes: 1, current_time: String::new(), retry_count: 0, parameters: vec![] }
        .is_request());
    assert!(Body::GetQueuedTransfers.is_request());
    assert!(!Body::InformResponse { max_envelopes: 1 }.is_request());
    assert!(!Body::Fault(Fault::new(9000, "x")).is_request());
    assert!(Body::is_server_method("TransferComplete"));
    assert!(!Body::is_server_method("GetRPCMethods"), "both sides implement it (A.3.1)");
}

/// Regression (fuzz/fuzz_targets/soap_parse.rs): a CR from `&#13;` (a
/// literal one is read as LF, XML 2.11) and TAB/LF in an attribute value
/// (read as spaces, XML 3.3.3) must survive encode → parse: the CPE echoes
/// the ACS's `cwmp:ID` and parameter values exactly.
#[test]
fn carriage_returns_and_attribute_whitespace_round_trip() {
    let xml = format!(
        "{ENV}<soapenv:Header><cwmp:ID soapenv:mustUnderstand=\"1\">&#13;id-19</cwmp:ID></soapenv:Header><soapenv:Body><cwmp:SetParameterValues><ParameterList><ParameterValueStruct><Name>A.B</Name><Value xsi:type=\"a&#9;b&#10;c&#13;d\">x&#13;&#10;y&#13;</Value></ParameterValueStruct></ParameterList><ParameterKey>k&#13;</ParameterKey></cwmp:SetParameterValues></soapenv:Body></soapenv:Envelope>"
    );
    let e = parse(&xml).unwrap().remove(0);
    assert_eq!(e.id.as_deref(), Some("\rid-19"));
    let Ok(Body::SetParameterValues { list, parameter_key }) = &e.body else { panic!("{:?}", e.body) };
    assert_eq!(list[0].value, "x\r\ny\r");
    assert_eq!(list[0].xsd_type, "xsd:a\tb\nc\rd");
    assert_eq!(parameter_key, "k\r");
    let again = parse(&to_xml_with(&e.header(), e.body.as_ref().unwrap())).unwrap().remove(0);
    assert_eq!(again, e);
}

/// A.2.2 over every message, driven by the one description: leaving out
/// any argument or struct member is a 9003 (8003 for a Server's method),
/// except an array member (the array is just shorter) and the one optional
/// member, Table 48's ExpirationDate (the option then has none).
#[test]
fn every_argument_and_member_is_required() {
    let mut removed = 0;
    for b in samples().into_iter().filter(|b| !matches!(b, Body::Fault(_))) {
        let xml = body_xml(&b);
        let decl = format!(" xmlns:cwmp=\"{CWMP}\" xmlns:soapenc=\"{SOAP_ENC}\" xmlns:xsi=\"{XSI}\"");
        let standalone = xml.replacen('>', &format!("{decl}>"), 1);
        let doc = roxmltree::Document::parse(&standalone).unwrap();
        for n in doc.root_element().descendants().skip(1).filter(|n| n.is_element()) {
            let r = n.range();
            let cut = format!("{}{}", &standalone[..r.start], &standalone[r.end..]);
            let body = cut.replacen(&decl, "", 1);
            let e = parse(&format!("<soap:Envelope xmlns:soap=\"{SOAP_ENV}\"{decl}><soap:Body>{body}</soap:Body></soap:Envelope>")).unwrap().remove(0);
            let in_array = n.parent_element().is_some_and(|p| p.has_attribute((SOAP_ENC, "arrayType")));
            let name = n.tag_name().name();
            match e.body {
                Ok(got) if in_array || name == "ExpirationDate" => {
                    assert_eq!(got.method(), b.method());
                    assert_ne!(got, b, "removing {name} changed nothing");
                }
                Ok(got) => panic!("{} without {name} decoded as {got:?}", b.method()),
                Err(f) => {
                    assert!(!in_array && name != "ExpirationDate", "{} without {name}: {f:?}", b.method());
                    let code = if Body::is_server_method(b.method()) { 8003 } else { 9003 };
                    assert_eq!(f.code, code, "{} without {name}: {f:?}", b.method());
                    removed += 1;
                }
            }
        }
    }
    // Every required argument and member of the samples was tried.
    assert!(removed > 100, "{removed}");
}
