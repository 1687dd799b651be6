//! `cpekit install`: a thin CLI over `install`.

use anyhow::{Context, Result};
use install::{self, DeviceConfig, IgnoreVendor, InstallOptions, Recovery, SystemClock};
use serde_json::json;

use crate::cli::InstallArgs;
use crate::exit::usage;
use crate::package::trust_anchors;

fn number(s: &str) -> Result<u32> {
    let s = s.trim();
    Ok(match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16)?,
        None => s.parse()?,
    })
}

fn device(a: &InstallArgs) -> Result<DeviceConfig> {
    let mut d = DeviceConfig {
        current_version: match &a.current_version {
            Some(v) => Some(v.parse().map_err(|e: String| usage(format!("--current-version {v:?}: {e}")))?),
            None => None,
        },
        nonvolatile_storage: a.nonvolatile_storage,
        volatile_storage: a.volatile_storage,
        ..Default::default()
    };
    for spec in &a.attributes {
        let parse = || -> Result<(u32, u32, u32)> {
            let (ec, v) = spec.split_once('=').context("expected ENTITY:CLASS=VALUE")?;
            let (e, c) = ec.split_once(':').context("expected ENTITY:CLASS=VALUE")?;
            Ok((number(e)?, number(c)?, number(v)?))
        };
        let (e, c, v) = parse().map_err(|e| usage(format!("--attribute {spec:?}: {e:#}")))?;
        d.attributes.entry(e).or_default().insert(c, v);
    }
    Ok(d)
}

pub fn run(a: InstallArgs) -> Result<u8> {
    if a.recover {
        let r = install::recover(&a.root, a.state_dir.as_deref())?;
        let text = match r {
            Recovery::Clean => "nothing to recover",
            Recovery::RolledBack => "interrupted install rolled back: the tree is back to its old state",
            Recovery::Completed => "interrupted install was committed: clean-up finished, the tree is in its new state",
        };
        if a.output.json {
            println!("{}", json!({"ok": true, "recovery": r}));
        } else {
            println!("{text}");
        }
        return Ok(crate::exit::SUCCESS);
    }
    let Some(pkg) = &a.package else { return Err(usage("a package is required (or --recover)")) };
    let trust = trust_anchors(&a.trust)?;
    let opts = InstallOptions {
        root: a.root.clone(),
        state_dir: a.state_dir.clone(),
        trust,
        allow_unsigned: a.allow_unsigned,
        verify: a.checks.verify_options(),
        device: device(&a)?,
        dry_run: a.dry_run,
        observer: None,
    };
    let mut f =
        std::io::BufReader::with_capacity(pkgfmt::payload::STREAM_CHUNK, std::fs::File::open(pkg).with_context(|| format!("opening {}", pkg.display()))?);
    let report = install::install(&mut f, &opts, &mut IgnoreVendor, &SystemClock).with_context(|| format!("installing {}", pkg.display()))?;
    if a.output.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        if a.dry_run {
            println!("dry run: nothing was changed. Plan for {}:", a.root.display());
        }
        for act in &report.actions {
            println!("  {}", act.describe());
        }
        if let Some(s) = &report.signer {
            println!("signed by: {s}");
        }
        if let Some(v) = &report.version {
            println!("version: {v}");
        }
        for e in &report.vendor_errors {
            println!("warning: {e}");
        }
        let verb = if a.dry_run { "would install" } else { "installed" };
        println!("{verb} {} file(s), {} bytes{}", report.files_staged, report.bytes_staged, if report.reboot_required { "; REBOOT REQUIRED" } else { "" });
    }
    Ok(crate::exit::SUCCESS)
}
