//! `scripts/bench-agent` driver: CPU time of full CWMP sessions (Inform +
//! GetParameterNames of the whole tree + SetParameterValues) measured on
//! the agent's own thread (CLOCK_THREAD_CPUTIME_ID; the test ACS runs on
//! other threads), and the idle RSS of the real `cpekit agent` process.
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

    // 2. Idle RSS of the real binary after its bootstrap session.
    let d2 = tempfile::tempdir().unwrap();
    let acs2 = TestAcs::start();
    let f = config(d2.path(), &acs2.url, "connection_request = \"127.0.0.1:0\"\nperiodic_inform_interval = 86400");
    let mut child = std::process::Command::new(&bin).args(["agent", "--config"]).arg(&f).env("RUST_LOG", "warn").spawn().expect("run cpekit agent");
    let ok = acs2.wait_sessions(1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    let kb = |k: &str| status.lines().find(|l| l.starts_with(k)).and_then(|l| l.split_whitespace().nth(1)).unwrap_or("0").to_string();
    assert!(ok, "the agent did not reach the ACS");
    println!("idle_rss_kib {}", kb("VmRSS:"));
    println!("idle_hwm_kib {}", kb("VmHWM:"));
    // Where the RSS is: anonymous (heap, stacks: the agent's own memory) vs
    // file-backed (mapped text of the binary and shared libraries: clean,
    // shared with other processes, reclaimable).
    println!("idle_rss_anon_kib {}", kb("RssAnon:"));
    println!("idle_rss_file_kib {}", kb("RssFile:"));
}
