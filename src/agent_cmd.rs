//! `cpekit agent`: run the CPE agent, spool a local parameter change, or
//! spool a RequestDownload (A.4.2.2), or simulate many CPEs against one ACS.

use anyhow::{bail, Context, Result};

use agent::config::AgentConfig;
use agent::cpe_requests::{self, DownloadRequest};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agent::runner::{self, Agent, LocalChange};
use agent::simulate::{self, SimOptions};

use crate::cli::{AgentArgs, AgentCommand, AgentSimulateArgs, SimulateCommand, SimulateReportArgs};
use crate::exit;

pub fn run(a: AgentArgs) -> Result<u8> {
    match a.command {
        Some(AgentCommand::Set(s)) => {
            let cfg = AgentConfig::load(&s.config)?;
            let schema = agent::datamodel::Schema::igd();
            let def = schema.param(&s.name).with_context(|| format!("{}: no such parameter in InternetGatewayDevice:1.0", s.name))?;
            if let Err(e) = def.validate(&s.value) {
                bail!("{}: invalid value {:?}: {e:?}", s.name, s.value);
            }
            let f = runner::spool_local_change(&cfg.agent.state_dir, &LocalChange { name: s.name.clone(), value: s.value })
                .with_context(|| format!("spooling the change into {}", cfg.agent.state_dir.display()))?;
            eprintln!("queued {} for the agent ({})", s.name, f.display());
            Ok(exit::OK)
        }
        Some(AgentCommand::RequestDownload(r)) => {
            let cfg = AgentConfig::load(&r.config)?;
            let mut args = Vec::new();
            for a in &r.args {
                let Some((n, v)) = a.split_once('=') else { bail!("--arg {a:?}: expected NAME=VALUE") };
                args.push((n.to_string(), v.to_string()));
            }
            let req = DownloadRequest { file_type: r.file_type, args };
            let f = cpe_requests::spool_request_download(&cfg.agent.state_dir, &req)?;
            eprintln!("queued RequestDownload {:?} for the agent ({})", req.file_type, f.display());
            Ok(exit::OK)
        }
        Some(AgentCommand::Simulate(s)) => simulate(s),
        None => {
            let Some(path) = a.config else { bail!("--config agent.toml is required (see `cpekit agent --help`)") };
            init_logging("info");
            let cfg = AgentConfig::load(&path)?;
            let mut agent = Agent::new(cfg).context("starting the agent")?;
            agent.run(a.once, a.max_attempts.max(1))?;
            Ok(exit::OK)
        }
    }
}

/// Set by SIGINT/SIGTERM during `agent simulate`.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Async-signal-safe: one atomic store.
    STOP.store(true, Ordering::SeqCst);
}

fn seconds(name: &str, v: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| anyhow::anyhow!("--{name} {v}: not a number of seconds"))
}

fn simulate(s: AgentSimulateArgs) -> Result<u8> {
    if let Some(SimulateCommand::Report(r)) = s.command {
        return simulate_report(r);
    }
    let (Some(config), Some(count)) = (s.config, s.count) else { bail!("--config and --count are required") };
    // Per-identity notices would drown the summary lines.
    init_logging("warn,agent::datamodel::store=error");
    let cfg = AgentConfig::load(&config)?;
    let opts = SimOptions {
        count: count as usize,
        duration: s.duration.map(|d| seconds("duration", d)).transpose()?,
        ramp: s.ramp.map(|d| seconds("ramp", d)).transpose()?,
        report_every: seconds("report-every", s.report_every.max(0.1))?,
        state_dir: s.state_dir,
        shard: s.shard.unwrap_or_default(),
        max_sessions: s.max_sessions.max(1),
    };
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let watch = stop.clone();
    // Forward the signal flag to the simulation.
    std::thread::spawn(move || loop {
        if STOP.load(Ordering::SeqCst) {
            watch.store(true, Ordering::SeqCst);
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    });
    let summary =
        simulate::run(&cfg, &opts, stop, |w| eprintln!("{}", w.line())).with_context(|| format!("simulating {count} CPEs from {}", config.display()))?;
    if s.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        eprintln!("final {}", summary.line());
    }
    Ok(exit::OK)
}

/// `agent simulate report`: merge the shards' summaries.
fn simulate_report(r: SimulateReportArgs) -> Result<u8> {
    let mut parts = Vec::new();
    for f in &r.summaries {
        let b = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        parts.push(serde_json::from_slice::<simulate::Summary>(&b).with_context(|| format!("{}: not a simulator summary (--json)", f.display()))?);
    }
    let merged = simulate::merge(&parts)?;
    if r.json {
        println!("{}", serde_json::to_string_pretty(&merged)?);
    } else {
        println!("{}", merged.line());
    }
    Ok(exit::OK)
}

fn init_logging(default: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
