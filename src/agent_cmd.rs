//! `cpekit agent`: run the CPE agent, spool a local parameter change, or
//! spool a RequestDownload (A.4.2.2), or simulate many CPEs against one ACS.

use anyhow::{Context, Result};

use agent::config::AgentConfig;
use agent::cpe_requests::{self, DownloadRequest};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use agent::runner::{self, Agent, LocalChange};
use agent::simulate::{self, SimOptions};

use crate::cli::{AgentArgs, AgentCommand, AgentSimulateArgs, SimulateCommand, SimulateReportArgs};
use crate::exit::{self, usage};

pub fn run(a: AgentArgs) -> Result<u8> {
    match a.command {
        Some(AgentCommand::Set(s)) => {
            let cfg = AgentConfig::load(&s.config.config)?;
            // The configured model: vendor parameters included.
            let schema = cfg.schema()?;
            let def = schema
                .param(&s.name)
                .filter(|_| !s.name.contains("{i}"))
                .ok_or_else(|| usage(format!("{}: no such parameter in InternetGatewayDevice:1.0 or [[vendor_parameters]]", s.name)))?;
            if let Err(e) = def.validate(&s.value) {
                return Err(usage(format!("{}: invalid value {:?}: {}", s.name, s.value, e.reason)));
            }
            let f = runner::spool_local_change(&cfg.agent.state_dir, &LocalChange { name: s.name.clone(), value: s.value })
                .with_context(|| format!("spooling the change into {}", cfg.agent.state_dir.display()))?;
            eprintln!("queued {} for the agent ({})", s.name, f.display());
            Ok(exit::SUCCESS)
        }
        Some(AgentCommand::RequestDownload(r)) => {
            let cfg = AgentConfig::load(&r.config.config)?;
            let mut args = Vec::new();
            for a in &r.args {
                let Some((n, v)) = a.split_once('=') else { return Err(usage(format!("--arg {a:?}: expected NAME=VALUE"))) };
                args.push((n.to_string(), v.to_string()));
            }
            let req = DownloadRequest { file_type: r.file_type, args };
            // The request is the command line: what Table 27/55/57 refuse is a usage error.
            req.validate().map_err(|e| usage(e.to_string()))?;
            let f = cpe_requests::spool_request_download(&cfg.agent.state_dir, &req)?;
            eprintln!("queued RequestDownload {:?} for the agent ({})", req.file_type, f.display());
            Ok(exit::SUCCESS)
        }
        Some(AgentCommand::Status(s)) => {
            let cfg = AgentConfig::load(&s.config.config)?;
            let st = agent::status::status(&cfg)?;
            if s.output.json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                println!("{}", st.text());
            }
            Ok(exit::SUCCESS)
        }
        Some(AgentCommand::Simulate(s)) => simulate(s),
        None => {
            // clap requires --config without a subcommand.
            let Some(config) = a.config else { return Err(usage("--config agent.toml is required (see `cpekit agent --help`)")) };
            crate::logging::init(&a.log, "info")?;
            let cfg = AgentConfig::load(&config.config)?;
            let mut agent = Agent::new(cfg).context("starting the agent")?;
            crate::signals::watch(config.config.clone(), agent.trigger_sender(), agent.abort_handle());
            agent.run(a.once, a.max_attempts.max(1))?;
            Ok(exit::SUCCESS)
        }
    }
}

fn seconds(name: &str, v: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| usage(format!("--{name} {v}: not a number of seconds")))
}

fn simulate(s: AgentSimulateArgs) -> Result<u8> {
    if let Some(SimulateCommand::Report(r)) = s.command {
        return simulate_report(r);
    }
    // clap requires --config and --count without a subcommand.
    let (Some(config), Some(count)) = (s.config, s.count) else { return Err(usage("--config and --count are required (see `cpekit agent simulate --help`)")) };
    // Per-identity notices would drown the summary lines.
    init_logging("warn,agent::datamodel::store=error");
    let cfg = AgentConfig::load(&config.config)?;
    let opts = SimOptions {
        count: count as usize,
        duration: s.duration.map(|d| seconds("duration", d)).transpose()?,
        ramp: s.ramp.map(|d| seconds("ramp", d)).transpose()?,
        report_every: seconds("report-every", s.report_every.max(0.1))?,
        state_dir: s.state_dir,
        shard: s.shard.unwrap_or_default(),
        max_sessions: s.max_sessions.max(1),
    };
    crate::signals::install(false);
    let stop = Arc::new(AtomicBool::new(false));
    let watch = stop.clone();
    // Forward the signal flag to the simulation.
    std::thread::spawn(move || loop {
        if crate::signals::stops() > 0 {
            watch.store(true, Ordering::SeqCst);
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    });
    let summary =
        simulate::run(&cfg, &opts, stop, |w| eprintln!("{}", w.line())).with_context(|| format!("simulating {count} CPEs from {}", config.config.display()))?;
    if s.output.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        eprintln!("final {}", summary.line());
    }
    Ok(exit::SUCCESS)
}

/// `agent simulate report`: merge the shards' summaries.
fn simulate_report(r: SimulateReportArgs) -> Result<u8> {
    let mut parts = Vec::new();
    for f in &r.summaries {
        let b = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        // Malformed input (exit status 3), as are summaries that do not fit together.
        let part =
            serde_json::from_slice::<simulate::Summary>(&b).map_err(|e| exit::malformed(format!("{}: not a simulator summary (--json): {e}", f.display())))?;
        parts.push(part);
    }
    let merged = simulate::merge(&parts).map_err(|e| exit::malformed(e.to_string()))?;
    if r.output.json {
        println!("{}", serde_json::to_string_pretty(&merged)?);
    } else {
        println!("{}", merged.line());
    }
    Ok(exit::SUCCESS)
}

fn init_logging(default: &str) {
    let text = crate::cli::LogArgs { log_level: None, verbose: 0, quiet: 0, log_format: "text".into() };
    let _ = crate::logging::init(&text, default);
}
