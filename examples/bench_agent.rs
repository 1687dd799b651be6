//! `scripts/bench-agent` driver: CPU time of full CWMP sessions (Inform +
//! GetParameterNames of the whole tree + SetParameterValues) measured on
//! the agent's own thread (CLOCK_THREAD_CPUTIME_ID; the test ACS runs on
//! other threads), and the RSS of the real `cpekit agent` process (from
//! /proc/PID/smaps_rollup: anonymous vs file-backed), idle and after a
//! SetVouchers, with its XML-DSig library mappings (none: issue 14).
//!
//!   bench_agent SESSIONS PATH/TO/cpekit

#[path = "../tests/support/acs.rs"]
mod acs;

use std::time::Duration;

use acs::{Step, TestAcs};
use agent::config::AgentConfig;
use agent::runner::Agent;
use agent::soap::{Body, ParameterValue};

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn config(dir: &std::path::Path, url: &str, extra: &str) -> std::path::PathBuf {
    let f = dir.join("agent.toml");
    std::fs::write(
        &f,
        format!(
            "[acs]\nurl = \"{url}\"\n[device]\nmanufacturer = \"cpekit\"\noui = \"00D09E\"\nproduct_class = \"Gateway\"\nserial_number = \"BENCH1\"\n[agent]\nstate_dir = \"{}\"\n{extra}\n",
            dir.join("state").display()
        ),
    )
    .unwrap();
    f
}

fn script() -> Vec<Step> {
    vec![
        Step::one(Body::GetParameterNames { path: String::new(), next_level: false }),
        Step::one(Body::SetParameterValues {
            list: vec![ParameterValue {
                name: "InternetGatewayDevice.ManagementServer.PeriodicInformInterval".into(),
                value: "3600".into(),
                xsd_type: "xsd:unsignedInt".into(),
            }],
            parameter_key: "bench".into(),
        }),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(50);
    let bin = args.get(2).cloned().unwrap_or_else(|| "target/release/cpekit".into());

    // 1. Session CPU time, in-process.
    let acs = TestAcs::start();
    let d = tempfile::tempdir().unwrap();
    let cfg = AgentConfig::load(&config(d.path(), &acs.url, "")).unwrap();
    let mut agent = Agent::new(cfg).unwrap();
    let mut samples = Vec::with_capacity(n);
    let mut params = 0;
    for i in 0..=n {
        acs.push_script(script());
        agent.state.add_event("6 CONNECTION REQUEST", "");
        let t = thread_cpu();
        agent.run_session().expect("session");
        let dt = thread_cpu() - t;
        if i > 0 {
            samples.push(dt); // the first (bootstrap, cold caches) is not counted
        }
    }
    if let Some(Body::GetParameterNamesResponse { list }) = acs.sessions().last().and_then(|s| s.responses().first().cloned()) {
        params = list.len();
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    let p90 = samples[samples.len() * 9 / 10];
    let bytes: usize = acs.posts().iter().rev().take(3).map(|p| p.body.len()).sum();
    println!("session_cpu_ms_median {:.3}", median.as_secs_f64() * 1e3);
    println!("session_cpu_ms_p90 {:.3}", p90.as_secs_f64() * 1e3);
    println!("session_parameters {params}");
    println!("session_bytes_posted {bytes}");

    // 2. RSS of the real binary, idle after its bootstrap session, and
    // again after a SetVouchers (verified by the cpekit-xmldsig helper
    // process beside it: the agent itself must map no XML-DSig library).
    let d2 = tempfile::tempdir().unwrap();
    let acs2 = TestAcs::start();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let voucher = d2.path().join("voucher.xml");
    let signed = std::process::Command::new(&bin)
        .args(["voucher", "sign", "--options"])
        .arg(root.join("testdata/vouchers/options.toml"))
        .arg("--key")
        .arg(root.join("testdata/keys/signer.key"))
        .arg("--cert")
        .arg(root.join("testdata/keys/signer.pem"))
        .arg("-o")
        .arg(&voucher)
        .output()
        .expect("cpekit voucher sign");
    assert!(signed.status.success(), "{}", String::from_utf8_lossy(&signed.stderr));
    // The Options' device (testdata/vouchers/options.toml); a session every 5 s.
    let extra = format!(
        "connection_request = \"127.0.0.1:0\"\nperiodic_inform_interval = 5\n[trust]\nvouchers = [\"{}\"]",
        root.join("testdata/keys/ca.pem").display()
    );
    let f = config(d2.path(), &acs2.url, &extra).to_string_lossy().into_owned();
    std::fs::write(&f, std::fs::read_to_string(&f).unwrap().replace("BENCH1", "CPE0001")).unwrap();
    let mut child = std::process::Command::new(&bin).args(["agent", "--config"]).arg(&f).env("RUST_LOG", "warn").spawn().expect("run cpekit agent");
    let pid = child.id();
    let ok = acs2.wait_sessions(1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    let idle = footprint(pid);
    acs2.push_script(vec![
        Step::one(Body::SetVouchers { vouchers: vec![std::fs::read(&voucher).unwrap()] }),
        Step::one(Body::GetOptions { option_name: String::new() }),
    ]);
    let t = std::time::Instant::now();
    let mut answered = None;
    while answered.is_none() && t.elapsed() < Duration::from_secs(30) {
        answered = acs2.sessions().iter().skip(1).find(|s| s.responses().len() >= 2).map(|s| s.responses());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(2));
    let after = footprint(pid);
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "the agent did not reach the ACS");
    let r = answered.expect("no session ran the SetVouchers");
    assert_eq!(r[0], Body::SetVouchersResponse, "{r:?}");
    let applied = match &r[1] {
        Body::GetOptionsResponse { options } => options.iter().filter(|o| o.state & 1 == 1).count(),
        other => panic!("{other:?}"),
    };
    for (when, f) in [("idle", &idle), ("after_vouchers", &after)] {
        println!("{when}_rss_kib {}", f.rss);
        // Where the RSS is: anonymous (heap, stacks: the agent's own memory)
        // vs file-backed (mapped text of the binary and shared libraries:
        // clean, shared with other processes, reclaimable).
        println!("{when}_rss_anon_kib {}", f.anon);
        println!("{when}_rss_file_kib {}", f.rss - f.anon);
        println!("{when}_xmldsig_mappings {}", f.xml_maps);
    }
    println!("idle_hwm_kib {}", idle.hwm);
    println!("options_enabled_by_voucher {applied}");
}

struct Footprint {
    rss: u64,
    anon: u64,
    hwm: u64,
    /// Mappings of libxmlsec1, libxml2 or ICU.
    xml_maps: usize,
}

/// /proc/PID/smaps_rollup (Rss, Anonymous), VmHWM and the XML-DSig mappings.
fn footprint(pid: u32) -> Footprint {
    let read = |f: &str| std::fs::read_to_string(format!("/proc/{pid}/{f}")).unwrap_or_default();
    let field = |text: &str, k: &str| -> u64 {
        text.lines().find(|l| l.starts_with(k)).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let rollup = read("smaps_rollup");
    let maps = read("maps");
    Footprint {
        rss: field(&rollup, "Rss:"),
        anon: field(&rollup, "Anonymous:"),
        hwm: field(&read("status"), "VmHWM:"),
        xml_maps: maps.lines().filter(|l| ["libxmlsec1", "libxml2", "libicu"].iter().any(|lib| l.contains(lib))).count(),
    }
}
