//! Man page generation with clap_mangen (ripgrep-style: flags documented
//! once, in `cli.rs`). Sections clap cannot express — EXIT STATUS (from
//! `exit.rs`) and the file formats — are written as proper roff sections.

use std::io::Write;
use std::path::Path;

use clap_mangen::Man;

fn roff_escape(s: &str) -> String {
    s.lines()
        .map(|l| {
            let l = l.replace('\\', "\\\\");
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A long help that documents a file format ("CONFIG FILE (TOML...):\n...")
/// becomes a section of its own, titled by its first words.
fn file_format_section(cmd: &clap::Command) -> Option<(String, String)> {
    let text = cmd.get_after_long_help()?.to_string();
    let (first, rest) = text.split_once('\n')?;
    let title: String = first.split(['(', ':']).next()?.trim().to_string();
    let is_title = title.ends_with(" FILE") && title.chars().all(|c| c.is_ascii_uppercase() || c == ' ');
    is_title.then(|| (title, format!("{first}\n{rest}")))
}

fn write_page(cmd: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    let man = Man::new(cmd.clone()).source(format!("cpekit {}", env!("CARGO_PKG_VERSION"))).manual("cpekit manual");
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out)?;
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        man.render_subcommands_section(&mut out)?;
    }
    if cmd.get_name() == "build" {
        writeln!(out, ".SH \"MANIFEST FORMAT\"\n.nf\n{}\n.fi", roff_escape(crate::cli::MANIFEST_FORMAT))?;
    } else if let Some((title, body)) = file_format_section(cmd) {
        // `agent`'s CONFIG FILE, `voucher sign`'s OPTIONS FILE.
        writeln!(out, ".SH \"{title}\"\n.nf\n{}\n.fi", roff_escape(&body))?;
    }
    // One `.TP` entry per exit status, from the mapping that decides them.
    writeln!(out, ".SH \"EXIT STATUS\"")?;
    for (kind, text) in crate::exit::DOCUMENTED {
        writeln!(out, ".TP\n\\fB{}\\fR\n{text}", crate::exit::documented_status(*kind))?;
    }
    std::fs::write(dir.join(man.get_filename()), out)?;
    Ok(())
}

fn walk(cmd: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        walk(sub, dir)?;
    }
    write_page(cmd, dir)
}

/// Write `cpekit.1`, `cpekit-package.1`, `cpekit-package-build.1`, ...
pub fn generate(cmd: clap::Command, dir: &Path) -> anyhow::Result<()> {
    let mut cmd = cmd.disable_help_subcommand(true);
    // Building sets each subcommand's display name ("cpekit-package-build").
    cmd.build();
    walk(&cmd, dir)
}
