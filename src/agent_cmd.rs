//! `cpekit agent`: run the CPE agent, spool a local parameter change, or
//! spool a RequestDownload (A.4.2.2).

use anyhow::{bail, Context, Result};

use cpekit::agent::config::AgentConfig;
use cpekit::agent::cpe_requests::{self, DownloadRequest};
use cpekit::agent::runner::{self, Agent, LocalChange};

use crate::cli::{AgentArgs, AgentCommand};
use crate::exit;

pub fn run(a: AgentArgs) -> Result<u8> {
    match a.command {
        Some(AgentCommand::Set(s)) => {
            let cfg = AgentConfig::load(&s.config)?;
            let schema = cpekit::agent::datamodel::Schema::igd();
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
        None => {
            let Some(path) = a.config else { bail!("--config agent.toml is required (see `cpekit agent --help`)") };
            init_logging();
            let cfg = AgentConfig::load(&path)?;
            let mut agent = Agent::new(cfg).context("starting the agent")?;
            agent.run(a.once, a.max_attempts.max(1))?;
            Ok(exit::OK)
        }
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
