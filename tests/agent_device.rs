//! The agent on a device managed by a real ACS (issue 13), end to end over
//! HTTP on loopback against the in-repo test ACS (tests/support/acs.rs):
//! tables discovered and managed the way GenieACS does it. Every envelope
//! the agent posts is validated against cwmp-1-0.xsd.

mod support;

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::time::Duration;

use agent::config::AgentConfig;
use agent::runner::Agent;
use agent::soap::{Body, ParameterInfo, ParameterValue};
use support::acs::{Conversation, Step, TestAcs};

const IGD: &str = "InternetGatewayDevice.";

fn config(dir: &Path, acs: &TestAcs, agent_extra: &str, tail: &str) -> AgentConfig {
    let f = dir.join("agent.toml");
    std::fs::write(&f, support::config::agent_toml(&acs.url, dir, "", agent_extra, tail)).unwrap();
    AgentConfig::load(&f).unwrap()
}

fn pv(n: &str, v: &str, t: &str) -> ParameterValue {
    ParameterValue { name: n.into(), value: v.into(), xsd_type: t.into() }
}

fn gpn(c: &Conversation, path: &str, next_level: bool) -> Vec<ParameterInfo> {
    match c.call(Body::GetParameterNames { path: path.into(), next_level }) {
        Body::GetParameterNamesResponse { list } => list,
        other => panic!("GetParameterNames {path:?}: {other:?}"),
    }
}

fn gpv(c: &Conversation, names: &[&str]) -> BTreeMap<String, String> {
    match c.call(Body::GetParameterValues { names: names.iter().map(|s| s.to_string()).collect() }) {
        Body::GetParameterValuesResponse { list } => list.into_iter().map(|p| (p.name, p.value)).collect(),
        other => panic!("GetParameterValues {names:?}: {other:?}"),
    }
}

/// GenieACS's discovery: GetParameterNames with NextLevel=true from the
/// root, then on every partial path listed. Returns every name with its
/// Writable flag.
fn discover(c: &Conversation) -> BTreeMap<String, bool> {
    let mut seen = BTreeMap::new();
    let mut queue = VecDeque::from([String::new()]);
    while let Some(path) = queue.pop_front() {
        for p in gpn(c, &path, true) {
            assert!(p.name.starts_with(&path) && p.name != path, "{p:?} is not one level below {path:?}");
            let rest = p.name[path.len()..].trim_end_matches('.');
            assert!(!rest.is_empty() && !rest.contains('.'), "{} is more than one level below {path:?}", p.name);
            if p.name.ends_with('.') {
                queue.push_back(p.name.clone());
            }
            assert!(seen.insert(p.name.clone(), p.writable).is_none(), "{} listed twice", p.name);
        }
    }
    seen
}

/// A GPN-driven walk from the root finds the Forwarding table (listed as a
/// writable object although empty), adds a row, sees it in the next GPN,
/// sets its parameters, deletes it; NumberOfEntries follows.
#[test]
fn discovery_walk_adds_sets_and_deletes_a_table_row() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let conv = acs.converse();
    let mut agent = Agent::new(config(d.path(), &acs, "", "")).unwrap();
    let runner = std::thread::spawn(move || {
        agent.run(true, 3).unwrap();
        agent
    });

    let tree = discover(&conv);
    let l3 = format!("{IGD}Layer3Forwarding.");
    let table = format!("{l3}Forwarding.");
    // Table 16: a table's Writable = AddObject allowed.
    assert_eq!(tree.get(&table), Some(&true), "the empty Forwarding table is discovered as a writable object");
    assert_eq!(tree.get(&format!("{IGD}LANDevice.")), Some(&false), "LANDevice instances are the device's: no AddObject");
    assert_eq!(tree.get(&format!("{IGD}DeviceInfo.")), Some(&false));
    assert_eq!(tree.get(&format!("{IGD}ManagementServer.PeriodicInformInterval")), Some(&true));
    let params: Vec<&String> = tree.keys().filter(|k| !k.ends_with('.')).collect();
    assert!(params.len() > 50, "{}", params.len());
    // The values of everything discovered, as GenieACS refreshes them.
    let values = gpv(&conv, &[IGD]);
    assert_eq!(values.len(), params.len(), "GPV of the root returns exactly the parameters GPN listed");
    assert_eq!(values[&format!("{l3}ForwardNumberOfEntries")], "0");

    let n = match conv.call(Body::AddObject { object_name: table.clone(), parameter_key: "add-1".into() }) {
        Body::AddObjectResponse { instance_number, status: 0 } => instance_number,
        other => panic!("{other:?}"),
    };
    let row = format!("{table}{n}.");
    // GenieACS refreshes the table after AddObject.
    assert_eq!(gpn(&conv, &table, true), vec![ParameterInfo { name: row.clone(), writable: true }], "the new instance, deletable");
    let fields = gpn(&conv, &row, true);
    for (f, w) in [("Enable", true), ("Status", false), ("DestIPAddress", true), ("GatewayIPAddress", true)] {
        assert!(fields.contains(&ParameterInfo { name: format!("{row}{f}"), writable: w }), "{f}: {fields:?}");
    }
    assert_eq!(gpv(&conv, &[&format!("{l3}ForwardNumberOfEntries")])[&format!("{l3}ForwardNumberOfEntries")], "1");
    let set = Body::SetParameterValues {
        list: vec![
            pv(&format!("{row}Enable"), "true", "xsd:boolean"),
            pv(&format!("{row}DestIPAddress"), "198.51.100.0", "xsd:string"),
            pv(&format!("{row}DestSubnetMask"), "255.255.255.0", "xsd:string"),
            pv(&format!("{row}GatewayIPAddress"), "192.0.2.1", "xsd:string"),
        ],
        parameter_key: "set-1".into(),
    };
    assert_eq!(conv.call(set), Body::SetParameterValuesResponse { status: 0 });
    let v = gpv(&conv, &[&row]);
    assert_eq!(v[&format!("{row}Enable")], "true");
    assert_eq!(v[&format!("{row}DestIPAddress")], "198.51.100.0");
    assert_eq!(v[&format!("{row}GatewayIPAddress")], "192.0.2.1");
    // The table as a partial path of GPV lists the row's values too.
    assert_eq!(gpv(&conv, &[&table]), v);

    assert_eq!(conv.call(Body::DeleteObject { object_name: row.clone(), parameter_key: "del-1".into() }), Body::DeleteObjectResponse { status: 0 });
    assert_eq!(gpn(&conv, &table, true), vec![], "the deleted row is gone, the table stays");
    assert_eq!(gpn(&conv, &l3, true).iter().find(|p| p.name == table), Some(&ParameterInfo { name: table.clone(), writable: true }));
    assert!(matches!(conv.call(Body::GetParameterNames { path: row.clone(), next_level: true }), Body::Fault(f) if f.code == 9005));
    assert_eq!(gpv(&conv, &[&format!("{l3}ForwardNumberOfEntries")])[&format!("{l3}ForwardNumberOfEntries")], "0");
    // A second walk sees the same tree as the first.
    assert_eq!(discover(&conv), tree);
    conv.end();

    let agent = runner.join().unwrap();
    assert_eq!(agent.store.get(&format!("{IGD}ManagementServer.ParameterKey")).as_deref(), Some("del-1"));
    assert!(acs.wait_sessions(1, Duration::from_secs(5)));
    // The Inform and one response per request, all schema-valid.
    let requests = acs.sessions()[0].sent_requests.len();
    assert!(requests > 30, "{requests}");
    assert_eq!(acs.validate_all(), requests + 1);
}

/// B IPPingDiagnostics: requested in one session, run after it (a real
/// ICMP echo to 127.0.0.1), reported in a new session with "8 DIAGNOSTICS
/// COMPLETE", results readable by the ACS.
#[test]
fn ip_ping_diagnostics_complete_in_a_new_session() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let ping = format!("{IGD}IPPingDiagnostics.");
    let p = |n: &str| format!("{ping}{n}");
    acs.push_script(vec![Step::one(Body::SetParameterValues {
        list: vec![
            pv(&p("Host"), "127.0.0.1", "xsd:string"),
            pv(&p("NumberOfRepetitions"), "3", "xsd:unsignedInt"),
            pv(&p("Timeout"), "2000", "xsd:unsignedInt"),
            pv(&p("DiagnosticsState"), "Requested", "xsd:string"),
        ],
        parameter_key: "ping-1".into(),
    })]);
    acs.push_script(vec![Step::one(Body::GetParameterValues { names: vec![ping.clone()] })]);
    let mut agent = Agent::new(config(d.path(), &acs, "", "")).unwrap();
    agent.run(true, 3).unwrap();

    let s = acs.sessions();
    assert_eq!(s.len(), 2, "one session to request, one to report");
    assert_eq!(s[0].responses(), vec![Body::SetParameterValuesResponse { status: 0 }]);
    assert_eq!(s[1].events(), vec!["8 DIAGNOSTICS COMPLETE"]);
    let Body::GetParameterValuesResponse { list } = &s[1].responses()[0] else { panic!("{:?}", s[1].responses()) };
    let v: BTreeMap<&str, &str> = list.iter().map(|p| (&p.name[ping.len()..], p.value.as_str())).collect();
    assert_eq!(v["DiagnosticsState"], "Complete");
    let success: u32 = v["SuccessCount"].parse().unwrap();
    assert!(success > 0, "{v:?}");
    assert_eq!(success + v["FailureCount"].parse::<u32>().unwrap(), 3);
    assert!(v["MinimumResponseTmie"].parse::<u32>().unwrap() <= v["MaximumResponseTime"].parse::<u32>().unwrap());
    assert!(agent.state.pending_events.is_empty());
    assert!(acs.validate_all() >= 4);
}

fn write_arp(path: &Path, hosts: &[(&str, &str)]) {
    let mut t = String::from("IP address       HW type     Flags       HW address            Mask     Device\n");
    for (ip, mac) in hosts {
        t.push_str(&format!("{ip:<16} 0x1         0x2         {mac}     *        br-test\n"));
    }
    // Another interface's neighbour and an incomplete entry are no hosts.
    t.push_str("192.0.2.99       0x1         0x2         02:00:00:00:00:99     *        eth9\n");
    t.push_str("192.168.1.77     0x1         0x0         00:00:00:00:00:00     *        br-test\n");
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, t).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A provider (the shipped example, examples/provider/hosts-provider.py)
/// serves a dynamic Hosts table: the ACS discovers the hosts, asks for
/// active notification of a host's address; when the neighbour table
/// changes the provider pushes it and the agent opens a session with
/// "4 VALUE CHANGE" carrying the new address, and lists the new host.
#[test]
fn provider_hosts_table_and_pushed_value_change() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let arp = d.path().join("arp");
    write_arp(&arp, &[("192.168.1.20", "02:00:00:00:00:02"), ("192.168.1.10", "02:00:00:00:00:01")]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/provider/hosts-provider.py");
    let hosts = format!("{IGD}LANDevice.1.Hosts.");
    let tail = format!(
        "[[providers]]\nsubtree = \"{hosts}\"\ntimeout_ms = 10000\ncommand = [\"{}\", \"--arp\", \"{}\", \"--interface\", \"br-test\", \"--interval\", \"0.1\"]\n",
        script.display(),
        arp.display()
    );
    let first = acs.converse();
    let second = acs.converse();
    let agent = Agent::new(config(d.path(), &acs, "", &tail)).unwrap();
    let (tx, runner) = support::run_in_background(agent);

    // Session 1: GenieACS's discovery finds LANDevice.1 (created for the
    // provider's subtree) and the provider's hosts, not writable.
    let tree = discover(&first);
    let table = format!("{hosts}Host.");
    assert_eq!(tree.get(&table), Some(&false), "Hosts.Host. is listed, read-only (no AddObject)");
    assert_eq!(tree.get(&format!("{table}1.")), Some(&false));
    assert_eq!(tree.get(&format!("{table}2.")), Some(&false));
    assert!(!tree.contains_key(&format!("{table}3.")));
    let v = gpv(&first, &[&hosts, &format!("{IGD}LANDeviceNumberOfEntries")]);
    assert_eq!(v[&format!("{hosts}HostNumberOfEntries")], "2");
    assert_eq!(v[&format!("{IGD}LANDeviceNumberOfEntries")], "1");
    assert_eq!((v[&format!("{table}1.MACAddress")].as_str(), v[&format!("{table}1.IPAddress")].as_str()), ("02:00:00:00:00:01", "192.168.1.10"));
    assert_eq!(v[&format!("{table}2.IPAddress")], "192.168.1.20");
    assert_eq!(v[&format!("{table}2.Active")], "true");
    // Read-only: SetParameterValues refused per parameter.
    match first.call(Body::SetParameterValues { list: vec![pv(&format!("{table}1.HostName"), "x", "xsd:string")], parameter_key: "".into() }) {
        Body::Fault(f) => assert_eq!((f.code, f.set_parameter_values[0].code), (9003, 9008)),
        other => panic!("{other:?}"),
    }
    let ip1 = format!("{table}1.IPAddress");
    let spa = Body::SetParameterAttributes {
        list: vec![agent::soap::SetAttributes {
            name: ip1.clone(),
            notification_change: true,
            notification: 2,
            access_list_change: false,
            access_list: vec![],
        }],
    };
    assert_eq!(first.call(spa), Body::SetParameterAttributesResponse);
    first.end();
    assert!(acs.wait_sessions(1, Duration::from_secs(10)));

    // The neighbour table changes: host 1 gets a new address, a third host comes.
    write_arp(&arp, &[("192.168.1.20", "02:00:00:00:00:02"), ("192.168.1.11", "02:00:00:00:00:01"), ("192.168.1.30", "02:00:00:00:00:03")]);
    let names = gpn(&second, &table, true);
    assert_eq!(names.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), vec![format!("{table}1."), format!("{table}2."), format!("{table}3.")]);
    assert_eq!(gpv(&second, &[&format!("{table}3.IPAddress")])[&format!("{table}3.IPAddress")], "192.168.1.30");
    second.end();
    assert!(acs.wait_sessions(2, Duration::from_secs(10)));
    tx.send(agent::runner::Trigger::Stop).unwrap();
    runner.join().unwrap();

    let s = acs.sessions();
    assert_eq!(s[1].events(), vec!["4 VALUE CHANGE"]);
    assert_eq!(s[1].inform_param(&ip1).as_deref(), Some("192.168.1.11"), "the pushed value in the Inform");
    assert!(acs.validate_all() > 20);
}

/// `/sys/class/net/lo/statistics/NAME`.
fn lo_stat(name: &str) -> u64 {
    std::fs::read_to_string(format!("/sys/class/net/lo/statistics/{name}")).unwrap().trim().parse().unwrap()
}

/// `before <= v <= after` for counters reported modulo 2^32.
fn between(before: u64, v: &str, after: u64) -> bool {
    let v: u64 = v.parse().unwrap();
    let m = 1u64 << 32;
    let (b, a) = (before % m, after % m);
    (v + m - b) % m <= (a + m - b) % m
}

/// `backend = "linux"` on the test machine: UpTime from /proc/uptime, the
/// loopback interface mapped as the LAN interface with its kernel
/// statistics before and after traffic, and IPPingDiagnostics over it.
#[test]
fn linux_backend_describes_this_machine() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    let f = d.path().join("agent.toml");
    let text = support::config::agent_toml(&acs.url, d.path(), "", "", "")
        .replace("software_version = \"3.0.21\"\n", "software_version = \"3.0.21\"\nbackend = \"linux\"\nlan_interfaces = [\"lo\"]\n");
    std::fs::write(&f, text).unwrap();
    let conv = acs.converse();
    let mut agent = Agent::new(AgentConfig::load(&f).unwrap()).unwrap();
    let runner = std::thread::spawn(move || {
        agent.run(true, 3).unwrap();
        agent
    });
    let lan = format!("{IGD}LANDevice.1.");
    let lo = format!("{lan}LANEthernetInterfaceConfig.1.");
    let uptime = || -> f64 { std::fs::read_to_string("/proc/uptime").unwrap().split_whitespace().next().unwrap().parse().unwrap() };

    let tree = discover(&conv);
    assert_eq!(tree.get(&lo), Some(&false), "the mapped interface is an instance of the machine's");
    assert_eq!(tree.get(&format!("{lan}LANHostConfigManagement.IPInterface.1.")), Some(&false));
    let up = format!("{IGD}DeviceInfo.UpTime");
    let before = uptime();
    let v: f64 = gpv(&conv, &[&up])[&up].parse().unwrap();
    let after = uptime();
    assert!(v >= before - 2.0 && v <= after + 2.0, "UpTime {v} vs /proc/uptime {before}..{after}");

    let stats = ["BytesSent", "BytesReceived", "PacketsSent", "PacketsReceived"];
    let sysfs = ["tx_bytes", "rx_bytes", "tx_packets", "rx_packets"];
    let read = |conv: &Conversation| {
        let b: Vec<u64> = sysfs.iter().map(|s| lo_stat(s)).collect();
        let v = gpv(conv, &[&format!("{lo}Stats.")]);
        let a: Vec<u64> = sysfs.iter().map(|s| lo_stat(s)).collect();
        for (i, s) in stats.iter().enumerate() {
            let got = &v[&format!("{lo}Stats.{s}")];
            assert!(between(b[i], got, a[i]), "{s} = {got}, /sys said {} then {}", b[i], a[i]);
        }
        v[&format!("{lo}Stats.BytesReceived")].parse::<u64>().unwrap()
    };
    let first = read(&conv);
    // 1 MiB through the loopback interface.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let sink = std::thread::spawn(move || std::io::copy(&mut l.accept().unwrap().0, &mut std::io::sink()).unwrap());
    std::io::Write::write_all(&mut std::net::TcpStream::connect(addr).unwrap(), &vec![0u8; 1 << 20]).unwrap();
    assert_eq!(sink.join().unwrap(), 1 << 20);
    let second = read(&conv);
    assert!((second + (1 << 32) - first) % (1 << 32) >= 1 << 20, "BytesReceived grew by the traffic: {first} -> {second}");
    let v = gpv(&conv, &[&lo]);
    assert_eq!((v[&format!("{lo}Status")].as_str(), v[&format!("{lo}Enable")].as_str()), ("Up", "true"));
    let ip = format!("{lan}LANHostConfigManagement.IPInterface.1.");
    assert_eq!(gpv(&conv, &[&format!("{ip}IPInterfaceIPAddress")])[&format!("{ip}IPInterfaceIPAddress")], "127.0.0.1");
    // The machine's values are not the ACS's to change.
    match conv.call(Body::SetParameterValues { list: vec![pv(&format!("{lo}Enable"), "false", "xsd:boolean")], parameter_key: "".into() }) {
        Body::Fault(f) => assert_eq!((f.code, f.set_parameter_values[0].code), (9003, 9001)),
        other => panic!("{other:?}"),
    }
    // IPPingDiagnostics over the LAN IP interface.
    let ping = format!("{IGD}IPPingDiagnostics.");
    let set = Body::SetParameterValues {
        list: vec![
            pv(&format!("{ping}Interface"), &format!("{lan}LANHostConfigManagement.IPInterface.1"), "xsd:string"),
            pv(&format!("{ping}Host"), "127.0.0.1", "xsd:string"),
            pv(&format!("{ping}NumberOfRepetitions"), "2", "xsd:unsignedInt"),
            pv(&format!("{ping}DiagnosticsState"), "Requested", "xsd:string"),
        ],
        parameter_key: "p".into(),
    };
    assert_eq!(conv.call(set), Body::SetParameterValuesResponse { status: 0 });
    conv.end();
    let report = acs.converse();
    let v = gpv(&report, &[&ping]);
    report.end();
    runner.join().unwrap();
    let s = acs.sessions();
    assert_eq!(s[1].events(), vec!["8 DIAGNOSTICS COMPLETE"]);
    assert_eq!(v[&format!("{ping}DiagnosticsState")], "Complete");
    assert!(v[&format!("{ping}SuccessCount")].parse::<u32>().unwrap() > 0, "{v:?}");
    // SoftwareVersion stays the configured one; HardwareVersion too.
    assert_eq!(s[0].inform_param(&format!("{IGD}DeviceInfo.SoftwareVersion")).as_deref(), Some("3.0.21"));
    assert!(acs.validate_all() > 20);
}

/// GenieACS answers a wrong password with a bare 401 (no new challenge):
/// the agent reports that the ACS rejected its credentials.
#[test]
fn rejected_credentials_are_named() {
    let d = tempfile::tempdir().unwrap();
    let acs = TestAcs::start();
    acs.set_auth(support::acs::AuthMode::Digest { user: "cpe".into(), pass: "right".into() });
    acs.with(|s| s.bare_401_on_failure = true);
    let f = d.path().join("agent.toml");
    std::fs::write(&f, support::config::agent_toml(&acs.url, d.path(), "username = \"cpe\"\npassword = \"wrong\"", "", "")).unwrap();
    let mut agent = Agent::new(AgentConfig::load(&f).unwrap()).unwrap();
    let e = agent.run_session().unwrap_err().to_string();
    assert!(e.contains("ACS rejected our credentials"), "{e}");
    let posts = acs.posts();
    assert_eq!(posts.iter().map(|p| (p.status, p.authorization.is_some())).collect::<Vec<_>>(), vec![(401, false), (401, true)]);
}
